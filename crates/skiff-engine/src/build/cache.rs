//! The build cache: a step's cache key (skiff-build's [`skiff_build::cache_key`]) → the image
//! state after that step.
//!
//! Layout (version [`CACHE_VERSION`]), under the data root:
//!
//! ```text
//! build-cache/v1/<key hex>.json   one entry per step result (CacheEntry, JSON)
//! ```
//!
//! An entry holds the whole state after the step: the image config JSON (whose digest is the
//! step's ID, the parent in the next step's key) and every layer of it (blob digest, media
//! type, size, diffID); `layer` names the layer the step itself added, if any. Entries are
//! written temp + rename after their layer is on disk (files, blob and snapshot record
//! fsynced), without an fsync of their own: a crash leaves an entry whole, unreadable (a
//! miss) or absent, never one naming data that was lost. Layer blobs and
//! the committed snapshots of their chainIDs belong to the store lease [`CACHE_LEASE`] (no
//! expiry), so GC keeps them while an entry may name them; a crash between a layer and its
//! entry leaves an unused layer in the lease, removed by the next `builder prune`. An entry
//! whose top snapshot is gone (pruned by hand) is a miss. A newer layout version would live
//! beside this one (`v2/`); `v1` needs no migration.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use skiff_store::{Resource, Store};

use super::BuildError;
use crate::images::{ImagesError, NewLayer};

/// The on-disk version of the cache layout.
pub const CACHE_VERSION: u32 = 1;
/// The store lease that keeps the cache's layers from GC.
pub const CACHE_LEASE: &str = "skiff-build-cache";

/// One layer of an image state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRef {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    pub diff_id: String,
}

impl From<&NewLayer> for LayerRef {
    fn from(l: &NewLayer) -> LayerRef {
        LayerRef {
            digest: l.digest.to_string(),
            media_type: l.media_type.clone(),
            size: l.size,
            diff_id: l.diff_id.to_string(),
        }
    }
}

impl LayerRef {
    /// The layer as the image writer takes it (digests checked).
    pub(crate) fn to_new_layer(&self) -> Result<NewLayer, ImagesError> {
        let bad = |e: String| ImagesError::Invalid(format!("layer {}: {e}", self.digest));
        Ok(NewLayer {
            digest: self.digest.parse().map_err(|e| bad(format!("{e}")))?,
            media_type: self.media_type.clone(),
            size: self.size,
            diff_id: self.diff_id.parse().map_err(|e| bad(format!("{e:?}")))?,
        })
    }
}

/// One cached step result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CacheEntry {
    pub version: u32,
    /// The step's result: `sha256:` of the config bytes.
    pub id: String,
    pub config: Value,
    pub layers: Vec<LayerRef>,
    /// The layer this step added (None: a config-only step).
    #[serde(default)]
    pub layer: Option<LayerRef>,
    /// The layer's uncompressed size (what `system df` counts).
    #[serde(default)]
    pub layer_size: u64,
    /// The history `created_by` of the step.
    #[serde(default)]
    pub created_by: String,
    pub created: String,
}

/// A row of `system df`'s build cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheRecord {
    pub id: String,
    pub description: String,
    pub size: u64,
    pub created: String,
    pub last_used: Option<String>,
    /// BuildKit's record type: `regular` (a step's layer) or `exec.cachemount`.
    pub kind: &'static str,
    /// A RUN uses it now.
    pub in_use: bool,
}

/// What `builder prune` removed.
#[derive(Debug, Clone, Default)]
pub struct CachePruneReport {
    pub deleted: Vec<String>,
    pub space_reclaimed: u64,
}

/// The build cache of one store.
#[derive(Clone)]
pub struct BuildCache {
    store: Store,
    dir: PathBuf,
}

impl BuildCache {
    pub fn new(store: Store) -> BuildCache {
        let dir = store
            .root()
            .join("build-cache")
            .join(format!("v{CACHE_VERSION}"));
        BuildCache { store, dir }
    }

    fn path(&self, key: &str) -> PathBuf {
        let hex = key.strip_prefix("sha256:").unwrap_or(key);
        self.dir.join(format!("{hex}.json"))
    }

    /// The entry for `key`, if it is whole and its layers are still there.
    pub fn get(&self, key: &str) -> Option<CacheEntry> {
        let bytes = std::fs::read(self.path(key)).ok()?;
        let e: CacheEntry = serde_json::from_slice(&bytes).ok()?;
        if e.version != CACHE_VERSION {
            return None;
        }
        if !e.layers.is_empty() {
            let diff_ids: Vec<skiff_registry::Digest> = e
                .layers
                .iter()
                .filter_map(|l| l.diff_id.parse().ok())
                .collect();
            let top = skiff_image::formats::chain_id::chain_id(&diff_ids)?;
            self.store.snapshots().stat(top.as_ref()).ok()?;
        }
        Some(e)
    }

    /// Stores `entry` under `key` (crash-safe).
    pub fn put(&self, key: &str, entry: &CacheEntry) -> Result<(), BuildError> {
        let path = self.path(key);
        let err = |source| BuildError::Cache {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&self.dir).map_err(err)?;
        let bytes = serde_json::to_vec(entry).map_err(|e| err(std::io::Error::other(e)))?;
        // Not fsynced: the layers it names already are, so a crash can lose an entry (a
        // miss next time; a torn entry fails to parse) but never make one name lost data.
        skiff_store::fsutil::atomic_write_opts(&path, &bytes, false).map_err(err)
    }

    /// Makes sure the cache lease exists (before layers are added to it).
    pub fn ensure_lease(&self) -> Result<(), BuildError> {
        if matches!(self.store.lease_get(CACHE_LEASE), Ok(Some(_))) {
            return Ok(());
        }
        match self
            .store
            .lease_create(CACHE_LEASE, None, Default::default())
        {
            Ok(_) => Ok(()),
            Err(_) if matches!(self.store.lease_get(CACHE_LEASE), Ok(Some(_))) => Ok(()),
            Err(e) => Err(super::store_e("build cache lease", e)),
        }
    }

    /// Adds a snapshot that already existed to the lease.
    pub fn hold_snapshot(&self, key: &str) {
        let _ = self
            .store
            .lease_add_resource(CACHE_LEASE, Resource::Snapshot(key.to_string()));
    }

    fn entries(&self) -> Vec<(PathBuf, CacheEntry)> {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        rd.flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
            .filter_map(|e| {
                let b = std::fs::read(e.path()).ok()?;
                Some((e.path(), serde_json::from_slice(&b).ok()?))
            })
            .collect()
    }

    /// The entries that added a layer, as `system df` lists build cache records, then the
    /// cache mounts ([`super::cache_mounts`]).
    pub fn usage(&self) -> Vec<CacheRecord> {
        let mut out: Vec<CacheRecord> = self
            .entries()
            .into_iter()
            .filter(|(_, e)| e.layer.is_some())
            .map(|(p, e)| CacheRecord {
                id: p
                    .file_stem()
                    .map(|s| s.to_string_lossy()[..25.min(s.len())].to_string())
                    .unwrap_or_default(),
                description: e.created_by,
                size: e.layer_size,
                created: e.created,
                last_used: None,
                kind: "regular",
                in_use: false,
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out.extend(self.mounts().usage());
        out
    }

    /// The `RUN --mount=type=cache` directories of this data root.
    pub fn mounts(&self) -> super::cache_mounts::CacheMounts {
        super::cache_mounts::CacheMounts::new(self.store.root())
    }

    /// `builder prune`: forgets every entry, lets go of the lease and collects what only the
    /// cache held (images keep their own layers); removes the cache mounts unless a RUN uses
    /// one now.
    pub fn prune(&self) -> Result<CachePruneReport, BuildError> {
        let mut report = CachePruneReport::default();
        let mut mounts_freed = 0;
        match self.mounts().prune()? {
            Some((ids, freed)) => {
                report.deleted.extend(ids);
                mounts_freed = freed;
            }
            None => tracing::info!("builder prune: cache mounts in use by a build are kept"),
        }
        for (path, e) in self.entries() {
            if e.layer.is_some() {
                report.deleted.push(
                    path.file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                );
            }
            let _ = std::fs::remove_file(&path);
        }
        // Leftovers that were not entries (temp files of a crash).
        if let Ok(rd) = std::fs::read_dir(&self.dir) {
            for e in rd.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        match self.store.lease_delete(CACHE_LEASE) {
            Ok(()) => {}
            Err(_) if !matches!(self.store.lease_get(CACHE_LEASE), Ok(Some(_))) => {}
            Err(e) => return Err(super::store_e("build cache lease", e)),
        }
        let gc = self
            .store
            .gc(&Default::default())
            .map_err(|e| super::store_e("builder prune", e))?;
        report.space_reclaimed = gc.bytes_freed + mounts_freed;
        Ok(report)
    }
}
