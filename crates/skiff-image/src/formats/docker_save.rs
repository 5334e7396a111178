//! Writing `docker save` tarballs (legacy and Docker ≥ 25 OCI-layout form), reproducibly:
//! fixed mtimes/owners, entries in a fixed order, shared layers written once.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use oci_spec::image::{Descriptor, ImageManifestBuilder, MediaType};

use super::chain_id::chain_ids;
use super::docker_archive::{config_diff_ids, ArchiveError, ManifestEntry};
use super::media_types::{OCI_CONFIG, OCI_LAYER, OCI_MANIFEST};
use super::oci_layout::{self, ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME};
use crate::digest::{self, Digest, HashingReader};

/// Which `docker save` layout to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaveFormat {
    /// `<id>/layer.tar` + `<config-hex>.json` (Docker < 25).
    Legacy,
    /// An OCI image layout plus manifest.json (Docker ≥ 25, `docker save` today).
    OciLayout,
}

/// A layer to save: an *uncompressed* layer tar on disk whose sha256 is `diff_id`
/// (checked while writing).
#[derive(Debug, Clone)]
pub struct SaveLayer {
    pub path: PathBuf,
    pub diff_id: Digest,
}

#[derive(Debug, Clone)]
pub struct SaveImage {
    /// The image config JSON, byte for byte (its sha256 is the image ID).
    pub config: Vec<u8>,
    /// `name:tag` references, e.g. `busybox:latest`.
    pub repo_tags: Vec<String>,
    pub layers: Vec<SaveLayer>,
}

/// Writes `images` as one `docker save` tarball to `out`.
pub fn save_docker_archive(
    out: impl Write,
    images: &[SaveImage],
    format: SaveFormat,
) -> Result<(), ArchiveError> {
    let mut w = Writer {
        b: tar::Builder::new(out),
        dirs: HashSet::new(),
        written: HashSet::new(),
    };
    let mut manifest = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut index = Vec::new();
    for img in images {
        let config_digest = digest::sha256(&img.config);
        let file = format!("config of image {config_digest}");
        let diff_ids = config_diff_ids(&img.config, &file)?;
        if diff_ids.len() != img.layers.len()
            || diff_ids
                .iter()
                .zip(&img.layers)
                .any(|(a, b)| *a != b.diff_id)
        {
            return Err(ArchiveError::Invalid {
                file,
                msg: "layers do not match rootfs.diff_ids".into(),
            });
        }
        let chains = chain_ids(&diff_ids);
        let (config_name, layer_names) = match format {
            SaveFormat::Legacy => {
                let config_name = format!("{}.json", config_digest.digest());
                w.bytes(&config_name, &img.config)?;
                let mut names = Vec::new();
                for (i, l) in img.layers.iter().enumerate() {
                    let id = chains[i].digest().to_string();
                    let name = format!("{id}/layer.tar");
                    if w.written.insert(name.clone()) {
                        w.bytes(&format!("{id}/VERSION"), b"1.0")?;
                        let mut v1 =
                            serde_json::json!({ "id": id, "created": "1970-01-01T00:00:00Z" });
                        if i > 0 {
                            v1["parent"] = chains[i - 1].digest().into();
                        }
                        w.bytes(&format!("{id}/json"), v1.to_string().as_bytes())?;
                        w.layer(&name, l)?;
                    }
                    names.push(name);
                }
                (config_name, names)
            }
            SaveFormat::OciLayout => {
                let config_name = oci_layout::blob_rel_path(&config_digest)?;
                w.bytes(&config_name, &img.config)?;
                let mut names = Vec::new();
                let mut descs = Vec::new();
                for l in &img.layers {
                    let name = oci_layout::blob_rel_path(&l.diff_id)?;
                    let size = w.layer(&name, l)?;
                    descs.push(Descriptor::new(
                        MediaType::from(OCI_LAYER),
                        size,
                        l.diff_id.clone(),
                    ));
                    names.push(name);
                }
                let m = ImageManifestBuilder::default()
                    .schema_version(2u32)
                    .media_type(MediaType::from(OCI_MANIFEST))
                    .config(Descriptor::new(
                        MediaType::from(OCI_CONFIG),
                        img.config.len() as u64,
                        config_digest.clone(),
                    ))
                    .layers(descs)
                    .build()
                    .map_err(|e| ArchiveError::Invalid {
                        file: "manifest".into(),
                        msg: e.to_string(),
                    })?;
                let mjson = serde_json::to_vec(&m).map_err(|source| ArchiveError::Json {
                    file: "manifest".into(),
                    source,
                })?;
                let md = digest::sha256(&mjson);
                w.bytes(&oci_layout::blob_rel_path(&md)?, &mjson)?;
                let base = Descriptor::new(MediaType::from(OCI_MANIFEST), mjson.len() as u64, md);
                if img.repo_tags.is_empty() {
                    index.push(base.clone());
                }
                for t in &img.repo_tags {
                    let mut d = base.clone();
                    let (_, tag) = split_tag(t);
                    d.set_annotations(Some(
                        [
                            (ANNOTATION_IMAGE_NAME.to_string(), t.clone()),
                            (ANNOTATION_REF_NAME.to_string(), tag.to_string()),
                        ]
                        .into(),
                    ));
                    index.push(d);
                }
                (config_name, names)
            }
        };
        let top_id = chains
            .last()
            .map(|c| c.digest().to_string())
            .unwrap_or_default();
        for t in &img.repo_tags {
            let (repo, tag) = split_tag(t);
            repositories
                .entry(repo.into())
                .or_default()
                .insert(tag.into(), top_id.clone());
        }
        manifest.push(ManifestEntry {
            config: config_name,
            repo_tags: Some(img.repo_tags.clone()),
            layers: layer_names,
        });
    }
    if format == SaveFormat::OciLayout {
        let idx = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": index,
        });
        w.bytes(oci_layout::INDEX_FILE, idx.to_string().as_bytes())?;
        w.bytes(
            oci_layout::LAYOUT_FILE,
            format!(
                "{{\"imageLayoutVersion\":\"{}\"}}",
                oci_layout::LAYOUT_VERSION
            )
            .as_bytes(),
        )?;
    }
    let mj = serde_json::to_vec(&manifest).map_err(|source| ArchiveError::Json {
        file: "manifest.json".into(),
        source,
    })?;
    w.bytes("manifest.json", &mj)?;
    if !repositories.is_empty() {
        let rj = serde_json::to_vec(&repositories).map_err(|source| ArchiveError::Json {
            file: "repositories".into(),
            source,
        })?;
        w.bytes("repositories", &rj)?;
    }
    w.b.into_inner()
        .map_err(|source| ArchiveError::Io {
            file: "archive".into(),
            source,
        })?
        .flush()
        .map_err(|source| ArchiveError::Io {
            file: "archive".into(),
            source,
        })?;
    Ok(())
}

/// `repo:tag` → (repo, tag); a `:` inside a host:port is not a tag separator.
fn split_tag(r: &str) -> (&str, &str) {
    match r.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (r, "latest"),
    }
}

struct Writer<W: Write> {
    b: tar::Builder<W>,
    dirs: HashSet<String>,
    written: HashSet<String>,
}

impl<W: Write> Writer<W> {
    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h
    }

    fn parents(&mut self, name: &str) -> Result<(), ArchiveError> {
        let mut acc = String::new();
        let comps: Vec<&str> = name.split('/').collect();
        for c in &comps[..comps.len() - 1] {
            acc.push_str(c);
            acc.push('/');
            if self.dirs.insert(acc.clone()) {
                let mut h = Self::header(tar::EntryType::Directory, 0o755, 0);
                self.b
                    .append_data(&mut h, &acc, io::empty())
                    .map_err(|source| ArchiveError::Io {
                        file: acc.clone(),
                        source,
                    })?;
            }
        }
        Ok(())
    }

    fn bytes(&mut self, name: &str, data: &[u8]) -> Result<(), ArchiveError> {
        if !self.written.insert(name.to_string()) && name.starts_with("blobs/") {
            return Ok(());
        }
        self.parents(name)?;
        let mut h = Self::header(tar::EntryType::Regular, 0o644, data.len() as u64);
        self.b
            .append_data(&mut h, name, data)
            .map_err(|source| ArchiveError::Io {
                file: name.into(),
                source,
            })
    }

    /// Streams a layer file in, checking its digest on the way; returns its size.
    fn layer(&mut self, name: &str, l: &SaveLayer) -> Result<u64, ArchiveError> {
        let io_err = |source| ArchiveError::Io {
            file: l.path.display().to_string(),
            source,
        };
        let f = fs::File::open(&l.path).map_err(io_err)?;
        let size = f.metadata().map_err(io_err)?.len();
        if name.starts_with("blobs/") && !self.written.insert(name.to_string()) {
            return Ok(size);
        }
        self.parents(name)?;
        let mut h = Self::header(tar::EntryType::Regular, 0o644, size);
        let mut r = HashingReader::new(f.take(size));
        self.b.append_data(&mut h, name, &mut r).map_err(io_err)?;
        let (actual, _, _) = r.finish();
        if actual != l.diff_id {
            return Err(ArchiveError::DigestMismatch {
                file: l.path.display().to_string(),
                expected: l.diff_id.clone(),
                actual,
            });
        }
        Ok(size)
    }
}
