//! The on-disk layout of a data root, version [`LAYOUT_VERSION`].
//!
//! ```text
//! <root>/
//!   version                          layout version ("1\n"); written last on first open
//!   lock                             store-wide flock: every metadata mutation and GC
//!   content/blobs/sha256/<hex>       immutable blobs (mode 0444), only ever created by rename
//!   content/ingest/<enc(key)>/       one in-progress write per caller key:
//!       lock                         flock held by the writer (busy = locked)
//!       meta.json                    {key, expected {digest,size}, started}
//!       data                         bytes written so far (resumable)
//!   overlay/<id>/                    one snapshot (id: 32 random hex), as Docker's overlay2:
//!       diff/                        the layer's files / the upper dir
//!       work/                        overlayfs workdir
//!       link                         the short name of this snapshot in l/
//!       lower                        "l/A:l/B:..." its parents' short names, nearest first
//!   overlay/l/<LINK> -> ../<id>/diff short (26 char) names keep lowerdir= under a page
//!   overlay/.tmp-*                   snapshot dirs being made (removed by check)
//!   overlay/.trash-*                 snapshot dirs being removed (removed by check)
//!   meta/images/<enc(name)>.json     ImageRecord
//!   meta/content/<hex>.json          ContentRecord (labels, incl. GC edges)
//!   meta/snapshots/<enc(key)>.json   SnapshotRecord (id, kind, parent, labels)
//!   meta/leases/<enc(id)>.json       LeaseRecord
//!   meta/quarantine/                 unreadable records moved aside by check (never deleted)
//! ```
//! `enc()` is [`crate::fsutil::encode_name`]: `[A-Za-z0-9._-]` kept, other bytes `%XX`.
//!
//! Migrations: [`migrate`] runs on open for an older `version`; a newer version is refused.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::fsutil::atomic_write;

/// The current layout version.
pub const LAYOUT_VERSION: u32 = 1;

/// Errors preparing a data root.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("data root {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("data root {path}: unreadable version file {content:?}")]
    BadVersion { path: PathBuf, content: String },
    #[error("data root {path}: layout version {found} is newer than this skiff supports ({LAYOUT_VERSION})")]
    TooNew { path: PathBuf, found: u32 },
    #[error("data root {path}: no migration from layout version {from}")]
    NoMigration { path: PathBuf, from: u32 },
}

/// Paths of one data root.
#[derive(Clone, Debug)]
pub struct Layout {
    pub root: PathBuf,
}

impl Layout {
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_owned(),
        }
    }
    pub fn version_file(&self) -> PathBuf {
        self.root.join("version")
    }
    pub fn lock_file(&self) -> PathBuf {
        self.root.join("lock")
    }
    pub fn blobs(&self) -> PathBuf {
        self.root.join("content/blobs/sha256")
    }
    pub fn ingest(&self) -> PathBuf {
        self.root.join("content/ingest")
    }
    pub fn overlay(&self) -> PathBuf {
        self.root.join("overlay")
    }
    pub fn links(&self) -> PathBuf {
        self.root.join("overlay/l")
    }
    pub fn meta(&self) -> PathBuf {
        self.root.join("meta")
    }
    pub fn quarantine(&self) -> PathBuf {
        self.root.join("meta/quarantine")
    }

    /// Creates the directories, checks the version and migrates. Returns the version found
    /// before migration (`None` for a fresh root).
    pub fn prepare(&self) -> Result<Option<u32>, LayoutError> {
        for d in [
            self.blobs(),
            self.ingest(),
            self.links(),
            self.meta(),
            self.quarantine(),
        ] {
            fs::create_dir_all(&d).map_err(|source| LayoutError::Io {
                path: d.clone(),
                source,
            })?;
        }
        // The version is read and written under the store lock: a concurrent first open's
        // check removes temp files, which must not include our half-written version.
        let lf = self.lock_file();
        let _lock =
            crate::lock::FileLock::acquire(&lf, crate::lock::LockMode::Exclusive).map_err(|e| {
                LayoutError::Io {
                    path: lf.clone(),
                    source: io::Error::other(e.to_string()),
                }
            })?;
        let vf = self.version_file();
        let found = match fs::read_to_string(&vf) {
            Ok(s) => Some(
                s.trim()
                    .parse::<u32>()
                    .map_err(|_| LayoutError::BadVersion {
                        path: vf.clone(),
                        content: s.clone(),
                    })?,
            ),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(source) => return Err(LayoutError::Io { path: vf, source }),
        };
        match found {
            Some(v) if v > LAYOUT_VERSION => {
                return Err(LayoutError::TooNew {
                    path: self.root.clone(),
                    found: v,
                })
            }
            Some(v) if v < LAYOUT_VERSION => migrate(self, v)?,
            Some(_) => return Ok(found),
            None => {}
        }
        atomic_write(&vf, format!("{LAYOUT_VERSION}\n").as_bytes())
            .map_err(|source| LayoutError::Io { path: vf, source })?;
        Ok(found)
    }
}

/// Migration hook: brings a root at layout `from` to [`LAYOUT_VERSION`], one step at a time.
/// Version 1 is the first layout, so there is nothing to migrate from yet.
pub fn migrate(layout: &Layout, from: u32) -> Result<(), LayoutError> {
    // Future steps: `if v == 1 { migrate_1_to_2(layout)?; v = 2; }` ...
    Err(LayoutError::NoMigration {
        path: layout.root.clone(),
        from,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_root_gets_version_and_newer_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::new(d.path());
        assert_eq!(l.prepare().unwrap(), None);
        assert_eq!(l.prepare().unwrap(), Some(1));
        fs::write(l.version_file(), "7\n").unwrap();
        assert!(matches!(
            l.prepare(),
            Err(LayoutError::TooNew { found: 7, .. })
        ));
        fs::write(l.version_file(), "0\n").unwrap();
        assert!(matches!(
            l.prepare(),
            Err(LayoutError::NoMigration { from: 0, .. })
        ));
        fs::write(l.version_file(), "x").unwrap();
        assert!(l
            .prepare()
            .unwrap_err()
            .to_string()
            .contains("unreadable version"));
    }
}
