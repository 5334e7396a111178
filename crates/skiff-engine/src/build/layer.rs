//! A step's writable layer: an active overlay snapshot on the previous layer, mounted under
//! `<data-root>/builds/<id>/rootfs`, and its commit: the upper dir written as a gzip layer
//! tar (overlay whiteouts turned into Docker's `.wh.` form) into the content store, and the
//! same directory committed as the snapshot of the new chainID, so nothing is unpacked again.
//! Dropping an uncommitted [`StepLayer`] unmounts and removes everything it made.

use std::path::PathBuf;

use skiff_store::Store;

use super::cache::{LayerRef, CACHE_LEASE};
use super::{io_err, store_e, BuildError};
use crate::images::LABEL_LAYER_SIZE;

/// A prepared, mounted, writable snapshot.
pub(crate) struct StepLayer {
    store: Store,
    /// Snapshot key (`build-<hex>`).
    pub key: String,
    /// `<data-root>/builds/<hex>` (bundle dir of a RUN).
    pub dir: PathBuf,
    pub rootfs: PathBuf,
    mounted: bool,
    live: bool,
}

impl StepLayer {
    /// A writable snapshot on `parent` (a committed chainID; `None` for an empty one).
    pub fn prepare(store: &Store, parent: Option<&str>) -> Result<StepLayer, BuildError> {
        let hex = crate::containers::random_id()[..24].to_string();
        let dir = store.root().join("builds").join(&hex);
        let rootfs = dir.join("rootfs");
        std::fs::create_dir_all(&rootfs).map_err(io_err("create", &rootfs))?;
        let key = format!("build-{hex}");
        let mut l = StepLayer {
            store: store.clone(),
            key,
            dir,
            rootfs,
            mounted: false,
            live: false,
        };
        let mounts = store
            .snapshots()
            .volatile()
            .prepare(&l.key, parent)
            .map_err(|e| store_e("prepare build layer", e))?;
        l.live = true;
        skiff_store::mount_to(&mounts, &l.rootfs).map_err(|e| store_e("mount build layer", e))?;
        l.mounted = true;
        Ok(l)
    }

    /// Unmounts the rootfs (the upper dir stays).
    pub fn unmount(&mut self) -> Result<(), BuildError> {
        if self.mounted {
            skiff_store::unmount(&self.rootfs).map_err(|e| store_e("unmount build layer", e))?;
            self.mounted = false;
        }
        Ok(())
    }

    /// The snapshot's upper directory.
    pub fn upper(&self) -> Result<PathBuf, BuildError> {
        self.store
            .snapshots()
            .upper_dir(&self.key)
            .map_err(|e| store_e("build layer", e))
    }

    /// Commits the layer on top of `below` (the diffIDs under it): the blob goes into the
    /// content store, the snapshot becomes the new chainID's; both held by the cache lease.
    /// Returns the layer and its uncompressed size.
    pub fn commit(mut self, below: &[String]) -> Result<(LayerRef, u64), BuildError> {
        let t0 = std::time::Instant::now();
        self.unmount()?;
        let upper = self.upper()?;
        let t_unmount = t0.elapsed();
        // The step's files are not fsynced one by one (as a pull's layers): the build flushes
        // the filesystem once before it names its image (see `sync_layers`).
        let w = crate::images::write_layer(
            &self.store,
            &upper,
            Vec::new(),
            CACHE_LEASE,
            &format!("{}-layer", self.key),
            "write build layer",
        )?;
        let (l, uncompressed_size) = (w.layer, w.uncompressed_size);
        let t_blob = t0.elapsed();
        let mut ids: Vec<skiff_registry::Digest> =
            below.iter().filter_map(|d| d.parse().ok()).collect();
        ids.push(l.diff_id.clone());
        let chain = skiff_image::formats::chain_id::chain_id(&ids)
            .map(|c| c.to_string())
            .unwrap_or_default();
        let snaps = self.store.snapshots().with_lease(CACHE_LEASE);
        if snaps.stat(&chain).is_ok() {
            // The same layer exists (an identical diff): keep that one.
            let _ = self
                .store
                .lease_add_resource(CACHE_LEASE, skiff_store::Resource::Snapshot(chain));
        } else {
            let mut labels = std::collections::BTreeMap::new();
            labels.insert(LABEL_LAYER_SIZE.to_string(), uncompressed_size.to_string());
            snaps
                .commit_labeled(&self.key, &chain, Some(labels))
                .map_err(|e| store_e("commit build layer", e))?;
            self.live = false;
        }
        tracing::debug!(
            layer = %l.diff_id,
            unmount_ms = t_unmount.as_secs_f64() * 1e3,
            blob_ms = t_blob.as_secs_f64() * 1e3,
            total_ms = t0.elapsed().as_secs_f64() * 1e3,
            "build layer committed"
        );
        Ok((LayerRef::from(&l), uncompressed_size))
    }
}

impl Drop for StepLayer {
    fn drop(&mut self) {
        if self.mounted && skiff_store::unmount(&self.rootfs).is_err() {
            let _ = skiff_store::unmount_lazy(&self.rootfs);
        }
        if self.live {
            let _ = self.store.snapshots().volatile().remove(&self.key);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A read-only view of a committed chain (a `COPY --from` source), mounted.
pub(crate) struct View {
    store: Store,
    key: String,
    dir: PathBuf,
    pub rootfs: PathBuf,
    mounted: bool,
}

impl View {
    pub fn mount(store: &Store, top: Option<&str>) -> Result<View, BuildError> {
        let hex = crate::containers::random_id()[..24].to_string();
        let dir = store.root().join("builds").join(format!("view-{hex}"));
        let rootfs = dir.join("rootfs");
        std::fs::create_dir_all(&rootfs).map_err(io_err("create", &rootfs))?;
        let key = format!("build-view-{hex}");
        let mut v = View {
            store: store.clone(),
            key,
            dir,
            rootfs,
            mounted: false,
        };
        let mounts = store
            .snapshots()
            .volatile()
            .view(&v.key, top)
            .map_err(|e| store_e("view build source", e))?;
        skiff_store::mount_to(&mounts, &v.rootfs).map_err(|e| store_e("mount build source", e))?;
        v.mounted = true;
        Ok(v)
    }
}

impl Drop for View {
    fn drop(&mut self) {
        if self.mounted && skiff_store::unmount(&self.rootfs).is_err() {
            let _ = skiff_store::unmount_lazy(&self.rootfs);
        }
        let _ = self.store.snapshots().volatile().remove(&self.key);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Makes the layers a build committed durable, once, before the image that uses them is
/// named: one `syncfs` of the data root's filesystem instead of an fsync per file and
/// directory (which cost ~45% of a cold build here). Until then a power loss can tear a
/// layer the build cache already names: the same window a pull's unpack has.
pub(crate) fn sync_layers(store: &Store) -> Result<(), BuildError> {
    skiff_store::fsutil::syncfs(store.root()).map_err(io_err("syncfs", store.root()))
}
