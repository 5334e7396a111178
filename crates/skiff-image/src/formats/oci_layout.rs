//! OCI image layout directories: `oci-layout`, `index.json`, `blobs/sha256/<hex>`.
//! Reading validates the layout version, the JSON and every blob's digest (and size where a
//! descriptor gives it); blob paths are built from validated hex, so no name can escape.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageIndex, ImageIndexBuilder, ImageManifest, MediaType};

use crate::digest::{self, Digest, HashingReader};

pub const LAYOUT_FILE: &str = "oci-layout";
pub const INDEX_FILE: &str = "index.json";
pub const LAYOUT_VERSION: &str = "1.0.0";
/// Annotation with the full image name (containerd, Docker ≥ 25).
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
/// Annotation with the reference (tag) name (OCI).
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Largest JSON document (index, manifest, config) read into memory.
pub const MAX_JSON_BYTES: u64 = 32 << 20;

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: malformed JSON: {source}", path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{}: unsupported image layout version {version:?}", path.display())]
    Version { version: String, path: PathBuf },
    #[error("blob {digest}: missing from {}", root.display())]
    MissingBlob { digest: Digest, root: PathBuf },
    #[error("blob {digest}: content has digest {actual}")]
    DigestMismatch { digest: Digest, actual: Digest },
    #[error("blob {digest}: size {actual}, the descriptor says {expected}")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("blob {digest}: {size} bytes, over the {limit}-byte limit for JSON")]
    TooLarge {
        digest: Digest,
        size: u64,
        limit: u64,
    },
    #[error("unsupported digest algorithm in {0}")]
    Algorithm(String),
    #[error("build index: {0}")]
    Build(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> LayoutError + '_ {
    move |source| LayoutError::Io {
        path: path.into(),
        source,
    }
}

/// Relative path of a blob: `blobs/sha256/<hex>`.
pub fn blob_rel_path(d: &Digest) -> Result<String, LayoutError> {
    let hex = sha256_hex(d)?;
    Ok(format!("blobs/sha256/{hex}"))
}

fn sha256_hex(d: &Digest) -> Result<&str, LayoutError> {
    match digest::parse_sha256(d.as_ref()) {
        Some(_) => Ok(d.digest()),
        None => Err(LayoutError::Algorithm(d.to_string())),
    }
}

/// Streams `r` and checks that its sha256 (and size) match.
pub fn verify_stream(r: impl Read, d: &Digest, size: Option<u64>) -> Result<u64, io::Error> {
    let mut h = HashingReader::new(r);
    io::copy(&mut h, &mut io::sink())?;
    let (actual, n, _) = h.finish();
    if &actual != d {
        return Err(io::Error::other(LayoutError::DigestMismatch {
            digest: d.clone(),
            actual,
        }));
    }
    if let Some(s) = size {
        if s != n {
            return Err(io::Error::other(LayoutError::SizeMismatch {
                digest: d.clone(),
                expected: s,
                actual: n,
            }));
        }
    }
    Ok(n)
}

/// An OCI image layout opened for reading.
pub struct OciLayout {
    root: PathBuf,
    index: ImageIndex,
}

impl OciLayout {
    pub fn open(root: &Path) -> Result<OciLayout, LayoutError> {
        let lp = root.join(LAYOUT_FILE);
        let raw = fs::read(&lp).map_err(io_err(&lp))?;
        let v: serde_json::Value =
            serde_json::from_slice(&raw).map_err(|source| LayoutError::Json {
                path: lp.clone(),
                source,
            })?;
        match v.get("imageLayoutVersion").and_then(|v| v.as_str()) {
            Some(LAYOUT_VERSION) => {}
            other => {
                return Err(LayoutError::Version {
                    version: other.unwrap_or("<none>").into(),
                    path: lp,
                })
            }
        }
        let ip = root.join(INDEX_FILE);
        let raw = fs::read(&ip).map_err(io_err(&ip))?;
        let index = serde_json::from_slice(&raw)
            .map_err(|source| LayoutError::Json { path: ip, source })?;
        Ok(OciLayout {
            root: root.into(),
            index,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn index(&self) -> &ImageIndex {
        &self.index
    }

    /// Path of a blob that exists as a regular file (not a symlink).
    pub fn blob_path(&self, d: &Digest) -> Result<PathBuf, LayoutError> {
        let p = self.root.join(blob_rel_path(d)?);
        match fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_file() => Ok(p),
            _ => Err(LayoutError::MissingBlob {
                digest: d.clone(),
                root: self.root.clone(),
            }),
        }
    }

    /// Reads a (JSON-sized) blob and verifies its digest and size.
    pub fn read_blob(&self, desc: &Descriptor) -> Result<Vec<u8>, LayoutError> {
        let d = desc.digest();
        let p = self.blob_path(d)?;
        let size = fs::metadata(&p).map_err(io_err(&p))?.len();
        if size > MAX_JSON_BYTES {
            return Err(LayoutError::TooLarge {
                digest: d.clone(),
                size,
                limit: MAX_JSON_BYTES,
            });
        }
        let data = fs::read(&p).map_err(io_err(&p))?;
        check(&data, d, Some(desc.size()))?;
        Ok(data)
    }

    /// Verifies a (possibly large) blob by streaming it.
    pub fn verify_blob(&self, desc: &Descriptor) -> Result<(), LayoutError> {
        let p = self.blob_path(desc.digest())?;
        let f = fs::File::open(&p).map_err(io_err(&p))?;
        verify_stream(f, desc.digest(), Some(desc.size())).map_err(|e| {
            match e.downcast::<LayoutError>() {
                Ok(le) => le,
                Err(e) => LayoutError::Io {
                    path: p.clone(),
                    source: e,
                },
            }
        })?;
        Ok(())
    }

    /// Every image manifest reachable from index.json (nested indexes followed), with the
    /// descriptor that named it at the top level (for its annotations).
    pub fn manifests(&self) -> Result<Vec<(Descriptor, ImageManifest)>, LayoutError> {
        let mut out = Vec::new();
        for top in self.index.manifests() {
            self.collect(top, top, &mut out, 0)?;
        }
        Ok(out)
    }

    fn collect(
        &self,
        top: &Descriptor,
        d: &Descriptor,
        out: &mut Vec<(Descriptor, ImageManifest)>,
        depth: u32,
    ) -> Result<(), LayoutError> {
        let bytes = self.read_blob(d)?;
        let path = self.root.join(blob_rel_path(d.digest())?);
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|source| LayoutError::Json {
                path: path.clone(),
                source,
            })?;
        if v.get("manifests").is_some() && depth < 4 {
            let idx: ImageIndex =
                serde_json::from_value(v).map_err(|source| LayoutError::Json { path, source })?;
            for m in idx.manifests() {
                self.collect(top, m, out, depth + 1)?;
            }
        } else {
            let m: ImageManifest =
                serde_json::from_value(v).map_err(|source| LayoutError::Json { path, source })?;
            out.push((top.clone(), m));
        }
        Ok(())
    }
}

fn check(data: &[u8], d: &Digest, size: Option<u64>) -> Result<(), LayoutError> {
    let actual = digest::sha256(data);
    if &actual != d {
        return Err(LayoutError::DigestMismatch {
            digest: d.clone(),
            actual,
        });
    }
    if let Some(s) = size {
        if s != data.len() as u64 {
            return Err(LayoutError::SizeMismatch {
                digest: d.clone(),
                expected: s,
                actual: data.len() as u64,
            });
        }
    }
    Ok(())
}

/// Writes an OCI image layout: blobs as they are added, `index.json` and `oci-layout` at
/// [`OciLayoutWriter::finish`]. Files are written to a temporary name and renamed.
pub struct OciLayoutWriter {
    root: PathBuf,
    manifests: Vec<Descriptor>,
}

impl OciLayoutWriter {
    pub fn create(root: &Path) -> Result<Self, LayoutError> {
        let blobs = root.join("blobs/sha256");
        fs::create_dir_all(&blobs).map_err(io_err(&blobs))?;
        Ok(OciLayoutWriter {
            root: root.into(),
            manifests: Vec::new(),
        })
    }

    /// Adds a blob from memory; returns its descriptor.
    pub fn add_blob(&mut self, media_type: &str, data: &[u8]) -> Result<Descriptor, LayoutError> {
        let d = digest::sha256(data);
        let p = self.root.join(blob_rel_path(&d)?);
        if !p.exists() {
            write_atomic(&p, data)?;
        }
        Ok(Descriptor::new(
            MediaType::from(media_type),
            data.len() as u64,
            d,
        ))
    }

    /// Adds a blob by streaming `r` (digest computed on the way).
    pub fn add_blob_reader(
        &mut self,
        media_type: &str,
        r: impl Read,
    ) -> Result<Descriptor, LayoutError> {
        let tmp = self.root.join("blobs/sha256/.ingest.tmp");
        let mut f = fs::File::create(&tmp).map_err(io_err(&tmp))?;
        let mut h = HashingReader::new(r);
        io::copy(&mut h, &mut f).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
        let (d, n, _) = h.finish();
        let p = self.root.join(blob_rel_path(&d)?);
        fs::rename(&tmp, &p).map_err(io_err(&p))?;
        Ok(Descriptor::new(MediaType::from(media_type), n, d))
    }

    /// Lists a manifest (already added as a blob) in index.json, with an optional tag.
    pub fn add_manifest(&mut self, mut desc: Descriptor, image_name: Option<&str>) {
        if let Some(name) = image_name {
            let tag = name
                .rsplit_once(':')
                .filter(|(_, t)| !t.contains('/'))
                .map(|(_, t)| t)
                .unwrap_or("latest");
            let mut ann = desc.annotations().clone().unwrap_or_default();
            ann.insert(ANNOTATION_IMAGE_NAME.into(), name.into());
            ann.insert(ANNOTATION_REF_NAME.into(), tag.into());
            desc.set_annotations(Some(ann));
        }
        self.manifests.push(desc);
    }

    pub fn finish(self) -> Result<(), LayoutError> {
        let index = ImageIndexBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageIndex)
            .manifests(self.manifests)
            .build()
            .map_err(|e| LayoutError::Build(e.to_string()))?;
        let json = serde_json::to_vec(&index).map_err(|source| LayoutError::Json {
            path: self.root.join(INDEX_FILE),
            source,
        })?;
        write_atomic(&self.root.join(INDEX_FILE), &json)?;
        write_atomic(
            &self.root.join(LAYOUT_FILE),
            format!("{{\"imageLayoutVersion\":\"{LAYOUT_VERSION}\"}}").as_bytes(),
        )
    }
}

fn write_atomic(p: &Path, data: &[u8]) -> Result<(), LayoutError> {
    let tmp = p.with_extension("tmp");
    let mut f = fs::File::create(&tmp).map_err(io_err(&tmp))?;
    f.write_all(data).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    fs::rename(&tmp, p).map_err(io_err(p))
}
