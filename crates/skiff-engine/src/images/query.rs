//! Listing, resolving, tagging and removing images.

use std::collections::BTreeMap;

use oci_spec::image::{ImageConfiguration, ImageManifest};
use skiff_registry::Reference;
use skiff_store::ImageRecord;

use super::{to_store, ImageService, ImagesError, Result, LABEL_REPO_DIGEST};

/// Label on a committed layer snapshot: bytes of the layer's uncompressed tar.
pub const LABEL_LAYER_SIZE: &str = "skiff.layer.size";

/// One row of `images`.
#[derive(Debug, Clone)]
pub struct ImageSummary {
    /// `sha256:<hex>` of the config.
    pub id: String,
    /// Familiar repository (`busybox`) or `<none>`.
    pub repository: String,
    pub tag: String,
    pub digest: Option<String>,
    pub created: Option<String>,
    pub size: u64,
    pub name: String,
}

/// What `rmi` did, in Docker's words (`Untagged: …`, `Deleted: …`).
#[derive(Debug, Clone, Default)]
pub struct RemoveOutcome {
    pub untagged: Vec<String>,
    pub deleted: Vec<String>,
}

/// A resolved local image.
#[derive(Debug, Clone)]
pub struct LocalImage {
    pub records: Vec<ImageRecord>,
    pub manifest: ImageManifest,
    pub config: ImageConfiguration,
    pub config_bytes: Vec<u8>,
    pub id: String,
}

impl LocalImage {
    /// The chainIDs of the image's layers, bottom first (the snapshot keys).
    pub fn chain_ids(&self) -> Vec<String> {
        let diff_ids: Vec<skiff_registry::Digest> = self
            .config
            .rootfs()
            .diff_ids()
            .iter()
            .filter_map(|d| d.parse().ok())
            .collect();
        skiff_image::formats::chain_id::chain_ids(&diff_ids)
            .iter()
            .map(|c| c.to_string())
            .collect()
    }

    /// The chainID of the top layer: the parent snapshot of a container's writable layer.
    pub fn top_chain_id(&self) -> Option<String> {
        self.chain_ids().pop()
    }
}

impl ImageService {
    fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        d: &skiff_store::Digest,
        what: &str,
    ) -> Result<(T, Vec<u8>)> {
        use std::io::Read;
        let mut f = self
            .store
            .content()
            .reader(d)
            .map_err(|e| ImagesError::store(format!("read {what} {d}"), e))?;
        let mut b = Vec::new();
        f.read_to_end(&mut b)
            .map_err(|e| ImagesError::store(format!("read {what} {d}"), e))?;
        let v = serde_json::from_slice(&b)
            .map_err(|e| ImagesError::Invalid(format!("{what} {d}: {e}")))?;
        Ok((v, b))
    }

    /// The manifest and config behind an image record.
    pub fn load_record(
        &self,
        rec: &ImageRecord,
    ) -> Result<(ImageManifest, ImageConfiguration, Vec<u8>)> {
        let (manifest, _): (ImageManifest, _) = self.read_json(&rec.target.digest, "manifest")?;
        let cd = to_store(manifest.config().digest())?;
        let (config, bytes) = self.read_json(&cd, "image config")?;
        Ok((manifest, config, bytes))
    }

    fn config_id(&self, rec: &ImageRecord) -> Result<String> {
        let (manifest, _): (ImageManifest, _) = self.read_json(&rec.target.digest, "manifest")?;
        Ok(manifest.config().digest().to_string())
    }

    /// Every image record with its image ID.
    fn records_with_ids(&self) -> Result<Vec<(ImageRecord, String)>> {
        let recs = self
            .store
            .image_list()
            .map_err(|e| ImagesError::store("list images", e))?;
        let mut out = Vec::new();
        for r in recs {
            match self.config_id(&r) {
                Ok(id) => out.push((r, id)),
                Err(e) => {
                    tracing::warn!(image = %r.name, error = %e, "image record without readable manifest")
                }
            }
        }
        Ok(out)
    }

    /// Resolve a name, a full or short ID, or `name@digest` to a local image, as Docker does.
    pub fn resolve(&self, name_or_id: &str) -> Result<LocalImage> {
        let all = self.records_with_ids()?;
        let want_id = name_or_id.strip_prefix("sha256:").unwrap_or(name_or_id);
        let by_name = Reference::parse(name_or_id).ok().map(|r| r.to_string());
        let mut matched: Vec<(ImageRecord, String)> = Vec::new();
        if let Some(n) = &by_name {
            matched = all.iter().filter(|(r, _)| &r.name == n).cloned().collect();
        }
        if matched.is_empty()
            && want_id.len() >= 3
            && want_id.bytes().all(|b| b.is_ascii_hexdigit())
        {
            let ids: std::collections::BTreeSet<&String> = all
                .iter()
                .map(|(_, id)| id)
                .filter(|id| {
                    id.strip_prefix("sha256:")
                        .unwrap_or(id)
                        .starts_with(want_id)
                })
                .collect();
            if ids.len() > 1 {
                return Err(ImagesError::Conflict(format!(
                    "{name_or_id}: ambiguous image ID prefix"
                )));
            }
            if let Some(id) = ids.into_iter().next() {
                matched = all.iter().filter(|(_, i)| i == id).cloned().collect();
            }
        }
        let Some((first, id)) = matched.first().cloned() else {
            return Err(ImagesError::NotFound(name_or_id.to_string()));
        };
        let records: Vec<ImageRecord> = all
            .iter()
            .filter(|(_, i)| *i == id)
            .map(|(r, _)| r.clone())
            .collect();
        let (manifest, config, config_bytes) = self.load_record(&first)?;
        Ok(LocalImage {
            records,
            manifest,
            config,
            config_bytes,
            id,
        })
    }

    /// The images, one row per name (Docker's `images`), newest first.
    pub fn list(&self) -> Result<Vec<ImageSummary>> {
        let mut rows = Vec::new();
        let mut cache: BTreeMap<String, (Option<String>, u64)> = BTreeMap::new();
        for (rec, id) in self.records_with_ids()? {
            let (created, size) = match cache.get(&id) {
                Some(v) => v.clone(),
                None => {
                    let v = match self.load_record(&rec) {
                        Ok((m, c, _)) => (c.created().clone(), self.image_size(&m, &c)),
                        Err(_) => (None, 0),
                    };
                    cache.insert(id.clone(), v.clone());
                    v
                }
            };
            let (repository, tag) = match Reference::parse(&rec.name) {
                Ok(r) => (r.familiar_name(), r.tag().unwrap_or("<none>").to_string()),
                Err(_) => ("<none>".into(), "<none>".into()),
            };
            let digest = rec
                .labels
                .get(LABEL_REPO_DIGEST)
                .and_then(|d| d.split_once('@').map(|(_, d)| d.to_string()));
            rows.push(ImageSummary {
                id,
                repository,
                tag,
                digest,
                created,
                size,
                name: rec.name.clone(),
            });
        }
        rows.sort_by(|a, b| b.created.cmp(&a.created).then(a.name.cmp(&b.name)));
        Ok(rows)
    }

    /// Unpacked size: the layers' uncompressed sizes recorded on their snapshots.
    pub fn image_size(&self, m: &ImageManifest, c: &ImageConfiguration) -> u64 {
        let diff_ids: Vec<skiff_registry::Digest> = c
            .rootfs()
            .diff_ids()
            .iter()
            .filter_map(|d| d.parse().ok())
            .collect();
        let snaps = self.store.snapshots();
        let by_labels: Option<u64> = skiff_image::formats::chain_id::chain_ids(&diff_ids)
            .iter()
            .map(|c| {
                snaps.stat(c.as_ref()).ok().and_then(|i| {
                    i.labels
                        .get(LABEL_LAYER_SIZE)
                        .and_then(|s| s.parse::<u64>().ok())
                })
            })
            .sum();
        by_labels.unwrap_or_else(|| m.layers().iter().map(|l| l.size()).sum())
    }

    /// `tag SOURCE TARGET`.
    pub fn tag(&self, source: &str, target: &str) -> Result<String> {
        let img = self.resolve(source)?;
        let t = Reference::parse(target)?;
        if t.digest().is_some() {
            return Err(ImagesError::Invalid(format!(
                "refusing to create a tag with a digest reference: {target}"
            )));
        }
        let rec = &img.records[0];
        self.name_image(
            &t.to_string(),
            rec.target.clone(),
            rec.labels.clone(),
            &format!("tag {target}"),
        )?;
        Ok(t.to_string())
    }

    /// `rmi`: untag a name; delete the image when its last name goes (or by ID with `force`
    /// when it has several). `in_use` says whether a container uses an image ID.
    pub fn remove(
        &self,
        name_or_id: &str,
        force: bool,
        in_use: &dyn Fn(&str) -> bool,
    ) -> Result<RemoveOutcome> {
        let img = self.resolve(name_or_id)?;
        let by_name = Reference::parse(name_or_id).ok().map(|r| r.to_string());
        let named = by_name
            .as_ref()
            .filter(|n| img.records.iter().any(|r| &r.name == *n));
        if in_use(&img.id) && !force {
            return Err(ImagesError::Conflict(format!(
                "conflict: unable to remove repository reference \"{name_or_id}\" (must force) - image {} is being used by a container",
                super::short_id(&img.id)
            )));
        }
        let mut out = RemoveOutcome::default();
        let targets: Vec<&ImageRecord> = match named {
            Some(n) if img.records.len() > 1 || !force => {
                img.records.iter().filter(|r| &r.name == n).collect()
            }
            _ => {
                if img.records.len() > 1 && !force {
                    return Err(ImagesError::Conflict(format!(
                        "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                        super::short_id(&img.id)
                    )));
                }
                img.records.iter().collect()
            }
        };
        for r in &targets {
            self.store
                .image_delete(&r.name)
                .map_err(|e| ImagesError::store(format!("untag {}", r.name), e))?;
            if r.name.starts_with(super::DANGLING_PREFIX) {
                continue; // an unnamed image has no tag to report
            }
            let familiar = Reference::parse(&r.name)
                .map(|x| x.familiar())
                .unwrap_or_else(|_| r.name.clone());
            out.untagged.push(familiar);
        }
        if targets.len() == img.records.len() {
            out.deleted.push(img.id.clone());
            // Reclaim what nothing references any more (blobs, snapshots).
            let _ = self.store.gc(&skiff_store::GcOptions::default());
        }
        Ok(out)
    }
}
