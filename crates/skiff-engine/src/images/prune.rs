//! `image prune` and the Images row of `system df`.

use std::collections::{BTreeMap, BTreeSet};

use skiff_registry::Reference;

use super::query::LABEL_LAYER_SIZE;
use super::{ImageService, ImagesError, Result, DANGLING_PREFIX};

/// Record names, `created` (unix seconds) and labels of one image.
type ImageFacts = (Vec<String>, i64, BTreeMap<String, String>);

/// What `image prune` did, in Docker's words.
#[derive(Debug, Clone, Default)]
pub struct PruneReport {
    /// `untagged: busybox:latest` lines' names.
    pub untagged: Vec<String>,
    /// The image ID each `untagged` name pointed at (same order).
    pub untagged_ids: Vec<String>,
    /// `deleted: sha256:…` lines' image IDs.
    pub deleted: Vec<String>,
    /// Bytes GC freed (blobs and snapshots).
    pub space_reclaimed: u64,
}

/// An image `image prune` may remove, for the caller's filters (`until`, `label`).
#[derive(Debug, Clone)]
pub struct PruneCandidate<'a> {
    /// The image ID (config digest).
    pub id: &'a str,
    /// The config's `created`, in seconds since the epoch (0 when absent).
    pub created: i64,
    /// The config's labels.
    pub labels: &'a BTreeMap<String, String>,
}

/// The Images row of `system df`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskUsage {
    /// Distinct images (by ID).
    pub total: usize,
    /// Images a container uses.
    pub active: usize,
    /// Bytes of all layers, each shared layer counted once.
    pub size: u64,
    /// Bytes only unused images hold.
    pub reclaimable: u64,
}

impl ImageService {
    /// Every image ID with its record names.
    fn images_by_id(&self) -> Result<BTreeMap<String, Vec<String>>> {
        Ok(self
            .images_with_config()?
            .into_iter()
            .map(|(id, (names, _, _))| (id, names))
            .collect())
    }

    /// Every image ID with its record names, creation time and labels.
    fn images_with_config(&self) -> Result<BTreeMap<String, ImageFacts>> {
        let mut by_id: BTreeMap<String, ImageFacts> = BTreeMap::new();
        let recs = self
            .store
            .image_list()
            .map_err(|e| ImagesError::store("list images", e))?;
        for rec in recs {
            match self.load_record(&rec) {
                Ok((m, config, _)) => {
                    let e = by_id
                        .entry(m.config().digest().to_string())
                        .or_insert_with(|| {
                            let created = config
                                .created()
                                .as_ref()
                                .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
                                .map(|t| t.timestamp())
                                .unwrap_or(0);
                            let labels = config
                                .config()
                                .as_ref()
                                .and_then(|c| c.labels().clone())
                                .map(|l| l.into_iter().collect())
                                .unwrap_or_default();
                            (Vec::new(), created, labels)
                        });
                    e.0.push(rec.name);
                }
                Err(e) => tracing::warn!(image = %rec.name, error = %e, "unreadable image"),
            }
        }
        Ok(by_id)
    }

    /// `image prune`: remove dangling images (with `all`, every image no container uses),
    /// then collect what they alone held.
    pub fn prune(&self, all: bool, in_use: &dyn Fn(&str) -> bool) -> Result<PruneReport> {
        self.prune_matching(all, in_use, &|_| true)
    }

    /// `image prune` with the caller's filters: only candidates `keep` accepts go.
    pub fn prune_matching(
        &self,
        all: bool,
        in_use: &dyn Fn(&str) -> bool,
        keep: &dyn Fn(&PruneCandidate) -> bool,
    ) -> Result<PruneReport> {
        let mut report = PruneReport::default();
        for (id, (names, created, labels)) in self.images_with_config()? {
            if in_use(&id) {
                continue;
            }
            let dangling = names.iter().all(|n| n.starts_with(DANGLING_PREFIX));
            if !all && !dangling {
                continue;
            }
            let cand = PruneCandidate {
                id: &id,
                created,
                labels: &labels,
            };
            if !keep(&cand) {
                continue;
            }
            for n in &names {
                self.store
                    .image_delete(n)
                    .map_err(|e| ImagesError::store(format!("prune {n}"), e))?;
                if !n.starts_with(DANGLING_PREFIX) {
                    report.untagged.push(
                        Reference::parse(n)
                            .map(|r| r.familiar())
                            .unwrap_or_else(|_| n.clone()),
                    );
                    report.untagged_ids.push(id.clone());
                }
            }
            report.deleted.push(id);
        }
        if !report.deleted.is_empty() {
            let gc = self
                .store
                .gc(&skiff_store::GcOptions::default())
                .map_err(|e| ImagesError::store("prune: gc", e))?;
            report.space_reclaimed = gc.bytes_freed;
        }
        Ok(report)
    }

    /// The Images row of `system df`.
    pub fn disk_usage(&self, in_use: &dyn Fn(&str) -> bool) -> Result<DiskUsage> {
        let snaps = self.store.snapshots();
        let mut du = DiskUsage::default();
        let mut used_layers: BTreeSet<String> = BTreeSet::new();
        let mut all_layers: BTreeMap<String, u64> = BTreeMap::new();
        for (id, names) in self.images_by_id()? {
            let Some(first) = names.first() else { continue };
            let Ok(Some(rec)) = self.store.image_get(first) else {
                continue;
            };
            let Ok((_, config, _)) = self.load_record(&rec) else {
                continue;
            };
            du.total += 1;
            let active = in_use(&id);
            if active {
                du.active += 1;
            }
            let diff_ids: Vec<skiff_registry::Digest> = config
                .rootfs()
                .diff_ids()
                .iter()
                .filter_map(|d| d.parse().ok())
                .collect();
            for c in skiff_image::formats::chain_id::chain_ids(&diff_ids) {
                let key = c.to_string();
                let size = snaps
                    .stat(&key)
                    .ok()
                    .and_then(|s| s.labels.get(LABEL_LAYER_SIZE).and_then(|v| v.parse().ok()))
                    .unwrap_or(0);
                all_layers.insert(key.clone(), size);
                if active {
                    used_layers.insert(key);
                }
            }
        }
        du.size = all_layers.values().sum();
        du.reclaimable = all_layers
            .iter()
            .filter(|(k, _)| !used_layers.contains(*k))
            .map(|(_, s)| s)
            .sum();
        Ok(du)
    }
}
