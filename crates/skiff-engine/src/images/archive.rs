//! `save`, `load` and `import`: images to and from tarballs.
//!
//! - save: the tarball `docker save` (≥ 25) writes: an OCI image layout plus `manifest.json`
//!   and `repositories`, layers as uncompressed tars (decompressed from the stored blobs).
//! - load: docker-save tarballs (legacy and OCI form) and tarred OCI image layouts. The whole
//!   archive is extracted to a scratch dir under the data root and validated (JSON, paths,
//!   digests, diffIDs) by skiff-image before anything is stored; then, under a lease, blobs go
//!   into the content store, layers are unpacked by chainID (diffIDs checked again), an OCI
//!   manifest carrying the GC edges is written, and the names come last.
//! - import: a rootfs tarball into a single-layer image.
//!
//! Images without a name are kept under a dangling record ([`super::DANGLING_PREFIX`]), which
//! `images` shows as `<none>` and `image prune` removes.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor as OciDescriptor, ImageManifestBuilder, MediaType};
use skiff_image::formats::docker_archive::{load_docker_archive, ArchiveError};
use skiff_image::formats::media_types::{oci_layer_media_type, OCI_CONFIG, OCI_MANIFEST};
use skiff_image::formats::{save_docker_archive, SaveFormat, SaveImage, SaveLayer};
use skiff_image::import::{import_rootfs, ImportOptions};
use skiff_image::Compression;
use skiff_registry::Reference;
use skiff_store::{Descriptor, LABEL_REF_CONTENT, LABEL_REF_SNAPSHOT};

use super::pull::{lease_id, put_blob, PullEvent};
use super::{short_id, to_oci, to_store, ImageService, ImagesError, Result, DANGLING_PREFIX};

/// What `load` reports per image, as docker prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loaded {
    /// `Loaded image: busybox:latest` (familiar name).
    Name(String),
    /// `Loaded image ID: sha256:…` (no name in the archive).
    Id(String),
}

/// A layer blob already in the content store, to become part of a new image.
pub(crate) struct NewLayer {
    pub digest: skiff_store::Digest,
    pub media_type: String,
    pub size: u64,
    pub diff_id: skiff_registry::Digest,
}

/// Options of `import` beyond skiff-image's.
#[derive(Debug, Clone, Default)]
pub struct ImportRequest {
    /// `REPOSITORY[:TAG]` to name the image.
    pub reference: Option<String>,
    pub changes: Vec<String>,
    pub message: Option<String>,
    /// `os/arch[/variant]` written into the config.
    pub platform: Option<String>,
    /// Where the tarball came from (`-` for stdin), for the history.
    pub source: String,
}

fn archive_err(what: &str, e: ArchiveError) -> ImagesError {
    ImagesError::Invalid(format!("{what}: {e}"))
}

impl ImageService {
    /// A scratch directory under the data root (same filesystem as the store), removed on drop.
    fn scratch(&self, prefix: &str) -> Result<tempfile::TempDir> {
        let base = self.store.root().join("tmp");
        std::fs::create_dir_all(&base)
            .map_err(|e| ImagesError::store(format!("create {}", base.display()), e))?;
        tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(&base)
            .map_err(|e| ImagesError::store(format!("scratch dir in {}", base.display()), e))
    }

    /// `save`: the images `names` (names or IDs) as one `docker save` tarball into `out`.
    pub fn save(&self, names: &[String], out: impl Write) -> Result<()> {
        if names.is_empty() {
            return Err(ImagesError::Invalid(
                "save: at least one image is required".into(),
            ));
        }
        let scratch = self.scratch(".save-")?;
        let mut images: Vec<(String, SaveImage)> = Vec::new();
        for name in names {
            let ctx = format!("save {name}");
            let img = self.resolve(name)?;
            let tag = Reference::parse(name)
                .ok()
                .filter(|r| img.records.iter().any(|rec| rec.name == r.to_string()))
                .filter(|r| r.digest().is_none())
                .map(|r| r.familiar());
            if let Some(pos) = images.iter().position(|(id, _)| *id == img.id) {
                let repo_tags = &mut images[pos].1.repo_tags;
                if let Some(t) = tag.filter(|t| !repo_tags.contains(t)) {
                    repo_tags.push(t);
                }
                continue;
            }
            let diff_ids: Vec<skiff_registry::Digest> = img
                .config
                .rootfs()
                .diff_ids()
                .iter()
                .map(to_oci)
                .collect::<Result<_>>()?;
            if diff_ids.len() != img.manifest.layers().len() {
                return Err(ImagesError::Invalid(format!(
                    "{ctx}: manifest has {} layers but the config has {} diff_ids",
                    img.manifest.layers().len(),
                    diff_ids.len()
                )));
            }
            let mut layers = Vec::new();
            for (l, diff_id) in img.manifest.layers().iter().zip(diff_ids) {
                let path = scratch.path().join(format!("{}.tar", diff_id.digest()));
                if !path.exists() {
                    self.decompress_blob(&to_store(l.digest())?, &path, &ctx)?;
                }
                layers.push(SaveLayer { path, diff_id });
            }
            images.push((
                img.id.clone(),
                SaveImage {
                    config: img.config_bytes.clone(),
                    repo_tags: tag.into_iter().collect(),
                    layers,
                },
            ));
        }
        let images: Vec<SaveImage> = images.into_iter().map(|(_, i)| i).collect();
        save_docker_archive(out, &images, SaveFormat::OciLayout).map_err(|e| archive_err("save", e))
    }

    /// A stored layer blob, decompressed, into `dest`.
    fn decompress_blob(&self, d: &skiff_store::Digest, dest: &Path, ctx: &str) -> Result<()> {
        let f = self
            .store
            .content()
            .reader(d)
            .map_err(|e| ImagesError::store(ctx, e))?;
        let io = |e: std::io::Error| ImagesError::store(format!("{ctx}: layer {d}"), e);
        let (c, r) = skiff_image::compression::peek(std::io::BufReader::new(f)).map_err(io)?;
        let mut r = skiff_image::compression::decompress(r, c).map_err(io)?;
        let mut out = std::io::BufWriter::new(std::fs::File::create(dest).map_err(io)?);
        std::io::copy(&mut r, &mut out).map_err(io)?;
        out.flush().map_err(io)?;
        Ok(())
    }

    /// `load`: every image of a docker-save tarball or tarred OCI layout (plain or
    /// compressed) into the store.
    pub fn load(&self, reader: impl Read) -> Result<Vec<Loaded>> {
        let scratch = self.scratch(".load-")?;
        let images =
            load_docker_archive(reader, scratch.path()).map_err(|e| archive_err("load", e))?;
        let lease = lease_id();
        self.store
            .lease_create(
                &lease,
                Some(chrono::Utc::now() + chrono::Duration::hours(1)),
                BTreeMap::new(),
            )
            .map_err(|e| ImagesError::store("load", e))?;
        let res = (|| {
            let mut out = Vec::new();
            for img in &images {
                let ctx = format!("load image {}", img.config_digest);
                let mut layers = Vec::new();
                for l in &img.layers {
                    let digest = self.ingest_file(&l.path, &lease, &ctx)?;
                    layers.push(NewLayer {
                        digest,
                        media_type: oci_layer_media_type(l.compression).to_string(),
                        size: l.size,
                        diff_id: l.diff_id.clone(),
                    });
                }
                let desc = self.commit_image(&img.config, &layers, &lease, &ctx)?;
                let mut named = false;
                for t in &img.repo_tags {
                    let r = Reference::parse(t)
                        .map_err(|e| ImagesError::Invalid(format!("{ctx}: repo tag {t:?}: {e}")))?;
                    if r.digest().is_some() {
                        continue;
                    }
                    self.name_image(&r.to_string(), desc.clone(), BTreeMap::new(), &ctx)?;
                    out.push(Loaded::Name(r.familiar()));
                    named = true;
                }
                if !named {
                    self.name_dangling(desc, &ctx)?;
                    out.push(Loaded::Id(img.config_digest.to_string()));
                }
            }
            Ok(out)
        })();
        let _ = self.store.lease_delete(&lease);
        res
    }

    /// `import`: a rootfs tarball into a single-layer image; returns its ID.
    pub fn import(&self, reader: impl Read, req: &ImportRequest) -> Result<String> {
        let ctx = format!("import {}", req.source);
        let target = req.reference.as_deref().map(Reference::parse).transpose()?;
        if target.as_ref().is_some_and(|r| r.digest().is_some()) {
            return Err(ImagesError::Invalid(format!(
                "{ctx}: cannot import to a digest reference"
            )));
        }
        let platform = req
            .platform
            .as_deref()
            .map(|p| {
                p.parse::<skiff_registry::Platform>()
                    .map_err(|e| ImagesError::Invalid(format!("{ctx}: --platform {p}: {e}")))
            })
            .transpose()?;
        // `--change`s as `commit` applies them (a bad one stores nothing).
        let run_config =
            skiff_build::apply_changes(skiff_build::ImageConfig::default(), &req.changes)
                .map_err(|e| ImagesError::Invalid(e.to_string()))?;
        let lease = lease_id();
        self.store
            .lease_create(
                &lease,
                Some(chrono::Utc::now() + chrono::Duration::hours(1)),
                BTreeMap::new(),
            )
            .map_err(|e| ImagesError::store(&ctx, e))?;
        let res = (|| {
            let content = self.store.content().with_lease(&lease);
            let mut w = content
                .writer(&format!("import-{lease}"), None)
                .map_err(|e| ImagesError::store(&ctx, e))?;
            let opts = ImportOptions {
                source: req.source.clone(),
                message: req.message.clone(),
                compression: Compression::Gzip,
                created: None,
            };
            let imported = match import_rootfs(reader, &mut w, &opts) {
                Ok(i) => i,
                Err(e) => {
                    let _ = w.abort();
                    return Err(ImagesError::Invalid(e.to_string()));
                }
            };
            let digest = w.commit().map_err(|e| ImagesError::store(&ctx, e))?;
            let mut config = imported.config;
            if platform.is_some() || run_config != skiff_build::ImageConfig::default() {
                let bad =
                    |e: serde_json::Error| ImagesError::Invalid(format!("{ctx}: config: {e}"));
                let mut v: serde_json::Value = serde_json::from_slice(&config).map_err(bad)?;
                v["config"] = serde_json::to_value(&run_config).map_err(bad)?;
                if let Some(p) = &platform {
                    v["os"] = p.os.clone().into();
                    v["architecture"] = p.architecture.clone().into();
                    if let Some(var) = &p.variant {
                        v["variant"] = var.clone().into();
                    }
                }
                config = serde_json::to_vec(&v).map_err(bad)?;
            }
            let layer = NewLayer {
                digest,
                media_type: oci_layer_media_type(imported.compression).to_string(),
                size: imported.layer.size,
                diff_id: imported.layer.diff_id.clone(),
            };
            let desc = self.commit_image(&config, &[layer], &lease, &ctx)?;
            match &target {
                Some(r) => self.name_image(&r.to_string(), desc, BTreeMap::new(), &ctx)?,
                None => self.name_dangling(desc, &ctx)?,
            }
            Ok(skiff_image::digest::sha256(&config).to_string())
        })();
        let _ = self.store.lease_delete(&lease);
        res
    }

    /// A file into the content store (under `lease`); returns its digest.
    fn ingest_file(&self, path: &PathBuf, lease: &str, ctx: &str) -> Result<skiff_store::Digest> {
        let content = self.store.content().with_lease(lease);
        let mut f = std::fs::File::open(path)
            .map_err(|e| ImagesError::store(format!("{ctx}: {}", path.display()), e))?;
        let mut w = content
            .writer(&format!("load-{lease}-{}", short_id(&path.display())), None)
            .map_err(|e| ImagesError::store(ctx, e))?;
        if w.offset() != 0 {
            w.reset().map_err(|e| ImagesError::store(ctx, e))?;
        }
        std::io::copy(&mut f, &mut w).map_err(|e| ImagesError::store(ctx, e))?;
        w.commit().map_err(|e| ImagesError::store(ctx, e))
    }

    /// Stores `config`, unpacks `layers` (blobs already stored) into snapshots by chainID and
    /// writes an OCI manifest carrying the GC edges. Returns the manifest's descriptor; the
    /// image is not named yet.
    pub(crate) fn commit_image(
        &self,
        config: &[u8],
        layers: &[NewLayer],
        lease: &str,
        ctx: &str,
    ) -> Result<Descriptor> {
        let content = self.store.content().with_lease(lease);
        let config_digest = to_store(&skiff_image::digest::sha256(config))?;
        put_blob(&content, &config_digest, OCI_CONFIG.into(), config, ctx)?;
        let diff_ids: Vec<skiff_registry::Digest> =
            layers.iter().map(|l| l.diff_id.clone()).collect();
        let chain_ids = skiff_image::formats::chain_id::chain_ids(&diff_ids);
        let snaps = self.store.snapshots().with_lease(lease);
        let (ptx, _prx) = tokio::sync::mpsc::unbounded_channel::<PullEvent>();
        for (i, l) in layers.iter().enumerate() {
            let chain = chain_ids[i].to_string();
            if snaps.stat(&chain).is_ok() {
                let _ = self
                    .store
                    .lease_add_resource(lease, skiff_store::Resource::Snapshot(chain));
                continue;
            }
            let parent = (i > 0).then(|| chain_ids[i - 1].to_string());
            self.unpack_one(
                &l.digest,
                &l.media_type,
                parent.as_deref(),
                &chain,
                l.diff_id.clone(),
                lease,
                l.size,
                &short_id(&l.digest),
                &ptx,
                ctx,
            )?;
        }
        let layer_descs: Vec<OciDescriptor> = layers
            .iter()
            .map(|l| {
                Ok(OciDescriptor::new(
                    MediaType::from(l.media_type.as_str()),
                    l.size,
                    to_oci(&l.digest)?,
                ))
            })
            .collect::<Result<_>>()?;
        let manifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::from(OCI_MANIFEST))
            .config(OciDescriptor::new(
                MediaType::from(OCI_CONFIG),
                config.len() as u64,
                to_oci(&config_digest)?,
            ))
            .layers(layer_descs)
            .build()
            .map_err(|e| ImagesError::Invalid(format!("{ctx}: manifest: {e}")))?;
        let bytes = serde_json::to_vec(&manifest)
            .map_err(|e| ImagesError::Invalid(format!("{ctx}: manifest: {e}")))?;
        let manifest_digest = to_store(&skiff_image::digest::sha256(&bytes))?;
        put_blob(&content, &manifest_digest, OCI_MANIFEST.into(), &bytes, ctx)?;
        let mut labels = BTreeMap::new();
        labels.insert(
            format!("{LABEL_REF_CONTENT}.config"),
            config_digest.to_string(),
        );
        for (i, l) in layers.iter().enumerate() {
            labels.insert(format!("{LABEL_REF_CONTENT}.l.{i}"), l.digest.to_string());
        }
        if let Some(top) = chain_ids.last() {
            labels.insert(LABEL_REF_SNAPSHOT.to_string(), top.to_string());
        }
        content
            .set_labels(&manifest_digest, labels)
            .map_err(|e| ImagesError::store(ctx, e))?;
        Ok(Descriptor {
            media_type: OCI_MANIFEST.into(),
            digest: manifest_digest,
            size: bytes.len() as u64,
        })
    }

    /// Points `name` at `desc`, as docker does when a name moves: the image that held the
    /// name before is kept as dangling (`<none>`) when that was its last name, and the new
    /// image's dangling record (if any) goes.
    pub(crate) fn name_image(
        &self,
        name: &str,
        desc: Descriptor,
        labels: BTreeMap<String, String>,
        ctx: &str,
    ) -> Result<()> {
        let se = |e| ImagesError::store(ctx, e);
        let previous = self.store.image_get(name).map_err(se)?;
        let digest = desc.digest.clone();
        self.store.image_put(name, desc, labels).map_err(se)?;
        let _ = self
            .store
            .image_delete(&format!("{DANGLING_PREFIX}{digest}"));
        if let Some(p) = previous.filter(|p| p.target.digest != digest) {
            self.name_dangling(p.target, ctx)?;
        }
        Ok(())
    }

    /// Keeps an unnamed image (`<none>:<none>`) unless it already has a name.
    pub(crate) fn name_dangling(&self, desc: Descriptor, ctx: &str) -> Result<()> {
        let all = self
            .store
            .image_list()
            .map_err(|e| ImagesError::store(ctx, e))?;
        if all.iter().any(|r| r.target.digest == desc.digest) {
            return Ok(());
        }
        let name = format!("{DANGLING_PREFIX}{}", desc.digest);
        self.store
            .image_put(&name, desc, BTreeMap::new())
            .map_err(|e| ImagesError::store(ctx, e))?;
        Ok(())
    }
}
