//! `docker save` / `docker load` tarballs, both forms:
//! - legacy (Docker < 25): `manifest.json`, `repositories`, `<config-hex>.json`,
//!   `<layer-id>/{VERSION,json,layer.tar}` (shared layers may be symlinks to another id's tar);
//! - OCI (Docker ≥ 25): the same `manifest.json` and `repositories` plus an OCI image layout
//!   (`oci-layout`, `index.json`, `blobs/sha256/<hex>`), manifest.json naming blob paths.
//!
//! A tarball with only an OCI layout (no manifest.json) loads too (tags from annotations).
//! Loading extracts the tarball into a caller-given scratch directory (regular files, dirs and
//! in-archive symlinks only; every path checked), then validates: JSON, every referenced file
//! present inside the archive, config digests, layer counts and each layer's diffID.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use super::docker_save::{save_docker_archive, SaveFormat, SaveImage, SaveLayer};
use super::oci_layout::{self, LayoutError, OciLayout};
use crate::compression::{self, Compression};
use crate::digest::{self, Digest, HashingReader};

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("read archive: {0}")]
    Read(#[source] io::Error),
    #[error("archive entry {entry:?}: path escapes the archive")]
    Escapes { entry: String },
    #[error("archive entry {entry:?}: {source}")]
    Extract {
        entry: String,
        #[source]
        source: io::Error,
    },
    #[error("{file}: missing from the archive")]
    Missing { file: String },
    #[error("{file}: malformed JSON: {source}")]
    Json {
        file: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{file}: {source}")]
    Io {
        file: String,
        #[source]
        source: io::Error,
    },
    #[error("{file}: content has digest {actual}, expected {expected}")]
    DigestMismatch {
        file: String,
        expected: Digest,
        actual: Digest,
    },
    #[error(
        "{file}: image config has {diff_ids} diff_ids but manifest.json lists {layers} layers"
    )]
    LayerCount {
        file: String,
        diff_ids: usize,
        layers: usize,
    },
    #[error("{file}: {msg}")]
    Invalid { file: String, msg: String },
    #[error("archive has neither manifest.json nor index.json")]
    NoManifest,
    #[error("oci layout: {0}")]
    Layout(#[from] LayoutError),
    #[error("archive is over the {0}-byte limit")]
    TooLarge(u64),
}

/// One entry of manifest.json.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ManifestEntry {
    pub config: String,
    #[serde(default)]
    pub repo_tags: Option<Vec<String>>,
    pub layers: Vec<String>,
}

/// A layer of a loaded image: a file inside the scratch directory.
#[derive(Debug, Clone)]
pub struct LoadedLayer {
    pub path: PathBuf,
    /// Verified: sha256 of the (decompressed) file content.
    pub diff_id: Digest,
    pub compression: Compression,
    pub size: u64,
}

/// An image found in a docker-save tarball or OCI layout.
#[derive(Debug, Clone)]
pub struct LoadedImage {
    pub config: Vec<u8>,
    pub config_digest: Digest,
    pub repo_tags: Vec<String>,
    pub layers: Vec<LoadedLayer>,
}

/// Largest archive accepted by [`load_docker_archive`] (uncompressed bytes).
pub const MAX_ARCHIVE_BYTES: u64 = 256 << 30;

/// Extracts `reader` (a tar, optionally gzip/zstd compressed) into `scratch` and loads it.
/// `scratch` must be an empty directory the caller deletes afterwards; the returned layer
/// paths point into it.
pub fn load_docker_archive(
    reader: impl Read,
    scratch: &Path,
) -> Result<Vec<LoadedImage>, ArchiveError> {
    let (c, r) = compression::peek(reader).map_err(ArchiveError::Read)?;
    let r = compression::decompress(r, c).map_err(ArchiveError::Read)?;
    let mut archive = tar::Archive::new(r.take(MAX_ARCHIVE_BYTES));
    for e in archive.entries().map_err(ArchiveError::Read)? {
        let mut e = e.map_err(ArchiveError::Read)?;
        let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let rel = clean_rel(&name).ok_or_else(|| ArchiveError::Escapes {
            entry: name.clone(),
        })?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        let dest = scratch.join(&rel);
        let ex = |source| ArchiveError::Extract {
            entry: name.clone(),
            source,
        };
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(ex)?;
            // A parent that is a symlink would let later entries write through it.
            if fs::canonicalize(parent).map_err(ex)?
                != canonical(scratch)?.join(rel.parent().unwrap_or(Path::new("")))
            {
                return Err(ArchiveError::Escapes { entry: name });
            }
        }
        match e.header().entry_type() {
            tar::EntryType::Directory => fs::create_dir_all(&dest).map_err(ex)?,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let _ = fs::remove_file(&dest);
                let mut f = fs::File::create(&dest).map_err(ex)?;
                io::copy(&mut e, &mut f).map_err(ex)?;
            }
            tar::EntryType::Symlink => {
                let target = e
                    .link_name()
                    .map_err(ex)?
                    .ok_or_else(|| ArchiveError::Escapes {
                        entry: name.clone(),
                    })?
                    .into_owned();
                // Must stay inside the archive, judged lexically from the link's directory.
                let joined = rel.parent().unwrap_or(Path::new("")).join(&target);
                if target.is_absolute() || clean_rel(&joined.to_string_lossy()).is_none() {
                    return Err(ArchiveError::Escapes { entry: name });
                }
                let _ = fs::remove_file(&dest);
                std::os::unix::fs::symlink(&target, &dest).map_err(ex)?;
            }
            _ => {} // hard links, devices, …: never part of a docker-save archive
        }
    }
    load_docker_archive_dir(scratch)
}

/// Loads an extracted docker-save archive (or OCI layout) directory.
pub fn load_docker_archive_dir(dir: &Path) -> Result<Vec<LoadedImage>, ArchiveError> {
    let mp = dir.join("manifest.json");
    if !mp.exists() {
        if dir.join(oci_layout::INDEX_FILE).exists() {
            return load_oci_layout(dir);
        }
        return Err(ArchiveError::NoManifest);
    }
    let raw = fs::read(&mp).map_err(|source| ArchiveError::Io {
        file: "manifest.json".into(),
        source,
    })?;
    let entries: Vec<ManifestEntry> =
        serde_json::from_slice(&raw).map_err(|source| ArchiveError::Json {
            file: "manifest.json".into(),
            source,
        })?;
    let mut out = Vec::with_capacity(entries.len());
    for m in entries {
        let config_path = resolve(dir, &m.config)?;
        let config = read_small(&config_path, &m.config)?;
        let config_digest = digest::sha256(&config);
        if let Some(expected) = name_digest(&m.config) {
            if expected != config_digest {
                return Err(ArchiveError::DigestMismatch {
                    file: m.config.clone(),
                    expected,
                    actual: config_digest,
                });
            }
        }
        let diff_ids = config_diff_ids(&config, &m.config)?;
        if diff_ids.len() != m.layers.len() {
            return Err(ArchiveError::LayerCount {
                file: m.config.clone(),
                diff_ids: diff_ids.len(),
                layers: m.layers.len(),
            });
        }
        let mut layers = Vec::with_capacity(m.layers.len());
        for (l, want) in m.layers.iter().zip(diff_ids) {
            let path = resolve(dir, l)?;
            layers.push(verify_layer(path, l, want)?);
        }
        out.push(LoadedImage {
            config,
            config_digest,
            repo_tags: m.repo_tags.unwrap_or_default(),
            layers,
        });
    }
    Ok(out)
}

fn load_oci_layout(dir: &Path) -> Result<Vec<LoadedImage>, ArchiveError> {
    let layout = OciLayout::open(dir)?;
    let mut by_config: BTreeMap<String, LoadedImage> = BTreeMap::new();
    for (top, manifest) in layout.manifests()? {
        let config = layout.read_blob(manifest.config())?;
        let file = oci_layout::blob_rel_path(manifest.config().digest())?;
        let diff_ids = config_diff_ids(&config, &file)?;
        if diff_ids.len() != manifest.layers().len() {
            return Err(ArchiveError::LayerCount {
                file,
                diff_ids: diff_ids.len(),
                layers: manifest.layers().len(),
            });
        }
        let mut layers = Vec::new();
        for (l, want) in manifest.layers().iter().zip(diff_ids) {
            layout.verify_blob(l)?;
            let rel = oci_layout::blob_rel_path(l.digest())?;
            layers.push(verify_layer(layout.blob_path(l.digest())?, &rel, want)?);
        }
        // containerd's full name; else the OCI ref name when it is a whole reference
        // (`repo:tag`, `host/repo`), not a bare tag such as `latest`.
        let tag = top.annotations().as_ref().and_then(|a| {
            a.get(oci_layout::ANNOTATION_IMAGE_NAME)
                .cloned()
                .or_else(|| {
                    a.get(oci_layout::ANNOTATION_REF_NAME)
                        .filter(|r| r.contains(':') || r.contains('/'))
                        .cloned()
                })
        });
        let img = by_config
            .entry(manifest.config().digest().to_string())
            .or_insert_with(|| LoadedImage {
                config_digest: manifest.config().digest().clone(),
                config,
                repo_tags: Vec::new(),
                layers,
            });
        img.repo_tags.extend(tag);
    }
    Ok(by_config.into_values().collect())
}

/// Hashes a layer file (decompressed) and checks it against the config's diffID.
fn verify_layer(path: PathBuf, file: &str, want: Digest) -> Result<LoadedLayer, ArchiveError> {
    let io_err = |source| ArchiveError::Io {
        file: file.into(),
        source,
    };
    let f = fs::File::open(&path).map_err(io_err)?;
    let size = f.metadata().map_err(io_err)?.len();
    let (c, r) = compression::peek(f).map_err(io_err)?;
    let mut h = HashingReader::new(compression::decompress(r, c).map_err(io_err)?);
    io::copy(&mut h, &mut io::sink()).map_err(io_err)?;
    let (actual, _, _) = h.finish();
    if actual != want {
        return Err(ArchiveError::DigestMismatch {
            file: file.into(),
            expected: want,
            actual,
        });
    }
    Ok(LoadedLayer {
        path,
        diff_id: actual,
        compression: c,
        size,
    })
}

/// `rootfs.diff_ids` of an image config.
pub fn config_diff_ids(config: &[u8], file: &str) -> Result<Vec<Digest>, ArchiveError> {
    #[derive(Deserialize)]
    struct RootFs {
        #[serde(rename = "type")]
        kind: String,
        diff_ids: Vec<Digest>,
    }
    #[derive(Deserialize)]
    struct Config {
        rootfs: RootFs,
    }
    let c: Config = serde_json::from_slice(config).map_err(|source| ArchiveError::Json {
        file: file.into(),
        source,
    })?;
    if c.rootfs.kind != "layers" {
        return Err(ArchiveError::Invalid {
            file: file.into(),
            msg: format!("rootfs type {:?}, expected \"layers\"", c.rootfs.kind),
        });
    }
    Ok(c.rootfs.diff_ids)
}

/// The digest a file name carries: `blobs/sha256/<hex>` or `<hex>.json`.
fn name_digest(name: &str) -> Option<Digest> {
    let base = name.rsplit('/').next()?;
    let hex = base.strip_suffix(".json").unwrap_or(base);
    if name.starts_with("blobs/sha256/") || base.ends_with(".json") {
        digest::sha256_from_hex(hex)
    } else {
        None
    }
}

fn read_small(path: &Path, file: &str) -> Result<Vec<u8>, ArchiveError> {
    let io_err = |source| ArchiveError::Io {
        file: file.into(),
        source,
    };
    let n = fs::metadata(path).map_err(io_err)?.len();
    if n > oci_layout::MAX_JSON_BYTES {
        return Err(ArchiveError::Invalid {
            file: file.into(),
            msg: format!("{n} bytes, too large for JSON"),
        });
    }
    fs::read(path).map_err(io_err)
}

/// A path named by manifest.json, resolved (symlinks included) and required to stay inside.
fn resolve(dir: &Path, name: &str) -> Result<PathBuf, ArchiveError> {
    let rel = clean_rel(name).ok_or_else(|| ArchiveError::Escapes { entry: name.into() })?;
    let p = dir.join(rel);
    let real = fs::canonicalize(&p).map_err(|_| ArchiveError::Missing { file: name.into() })?;
    if !real.starts_with(canonical(dir)?) {
        return Err(ArchiveError::Escapes { entry: name.into() });
    }
    if !real.is_file() {
        return Err(ArchiveError::Missing { file: name.into() });
    }
    Ok(real)
}

fn canonical(dir: &Path) -> Result<PathBuf, ArchiveError> {
    fs::canonicalize(dir).map_err(|source| ArchiveError::Io {
        file: dir.display().to_string(),
        source,
    })
}

/// A relative path with `.` removed and `..` applied; `None` if absolute or climbing out.
fn clean_rel(name: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in Path::new(name).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}
