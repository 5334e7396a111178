//! [`Store`]: one data root's content store, snapshotter, metadata, leases and GC.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::check::{CheckError, CheckReport};
use crate::content::ContentStore;
use crate::layout::{Layout, LayoutError};
use crate::meta::{MetaError, MetaStore};
use crate::snapshot::Snapshotter;

/// Errors opening a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Meta(#[from] MetaError),
    #[error("check on open: {0}")]
    Check(#[from] CheckError),
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) layout: Layout,
    pub(crate) meta: MetaStore,
}

/// A local image store rooted at a data root (default `/var/lib/skiff`). Cheap to clone;
/// safe to use from many threads and from several processes at once.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

impl Store {
    /// Opens (creating if needed) the store at `root`, migrates its layout and runs the
    /// check, repairing what a crash can leave. The report says what was found and done.
    pub fn open(root: &Path) -> Result<(Self, CheckReport), StoreError> {
        let layout = Layout::new(root);
        layout.prepare()?;
        let meta = MetaStore::open(layout.meta(), layout.lock_file())?;
        let store = Self {
            inner: Arc::new(Inner { layout, meta }),
        };
        let report = store.check()?;
        Ok((store, report))
    }

    /// The data root.
    pub fn root(&self) -> &Path {
        &self.inner.layout.root
    }

    /// The layout paths.
    pub fn layout(&self) -> &Layout {
        &self.inner.layout
    }

    /// The content store (no lease).
    pub fn content(&self) -> ContentStore {
        ContentStore::new(self.inner.clone(), None)
    }

    /// The overlayfs snapshotter (no lease).
    pub fn snapshots(&self) -> Snapshotter {
        Snapshotter::new(self.inner.clone(), None)
    }

    /// The metadata store.
    pub fn meta(&self) -> &MetaStore {
        &self.inner.meta
    }

    pub(crate) fn overlay_dir(&self, id: &str) -> PathBuf {
        self.inner.layout.overlay().join(id)
    }
}
