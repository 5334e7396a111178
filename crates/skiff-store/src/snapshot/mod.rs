//! Overlayfs snapshotter in the layout of Docker's overlay2 (see [`crate::layout`]).
//!
//! Committed snapshots are image layers named by chainID; active ones are writable (a
//! container, or `extract-<chainID>` while a layer is unpacked into [`Snapshotter::upper_dir`]);
//! views are read-only. The snapshotter returns [`MountSpec`]s and never mounts by itself;
//! [`mount_to`] / [`unmount`] do it for tests and the CLI.
//!
//! Crash safety: a snapshot directory is built as `overlay/.tmp-<id>`, renamed into place,
//! linked in `l/`, and only then recorded; removal deletes the record first and then renames
//! the directory to `.trash-<id>`. A crash therefore leaves at most an unrecorded directory or
//! link, which [`crate::Store::check`] removes.

mod mount;

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};

pub use mount::{
    is_mounted, mount_to, mount_to_with, unmount, unmount_lazy, LongOptions, MountError, MountSpec,
};

use crate::fsutil::{self, fsync_dir, random_hex, random_link_name, temp_name};
use crate::lease;
use crate::meta::{Kind, MetaError, Resource, SnapshotKind, SnapshotRecord, Txn};
use crate::store::Inner;

/// Length of the short names in `overlay/l/` (as Docker).
pub const LINK_LEN: usize = 26;
/// Prefix of snapshot directories being removed.
pub const TRASH_PREFIX: &str = ".trash-";

/// Errors of the snapshotter.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot {0:?}: not found")]
    NotFound(String),
    #[error("snapshot {0:?}: already exists")]
    AlreadyExists(String),
    #[error("snapshot {0:?}: invalid key (1-200 bytes, no NUL)")]
    BadKey(String),
    #[error("snapshot {key:?}: parent {parent:?} is not committed")]
    ParentNotCommitted { key: String, parent: String },
    #[error("snapshot {key:?}: is {kind:?}, expected {expected}")]
    WrongKind {
        key: String,
        kind: SnapshotKind,
        expected: &'static str,
    },
    #[error("snapshot {key:?}: has children ({children})")]
    HasChildren { key: String, children: String },
    #[error("snapshot {key:?}: {path}: {source}")]
    Io {
        key: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("snapshot {key:?}: {source}")]
    Meta {
        key: String,
        #[source]
        source: MetaError,
    },
    #[error("snapshot {key:?}: {source}")]
    Lease {
        key: String,
        #[source]
        source: lease::LeaseError,
    },
}

/// What `stat`/`list` report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub key: String,
    pub kind: SnapshotKind,
    pub parent: Option<String>,
    pub created: DateTime<Utc>,
    pub labels: BTreeMap<String, String>,
    /// Directory name under `overlay/`.
    pub id: String,
}

/// Disk usage of one snapshot's own layer (its `diff` dir).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes allocated (hard links counted once).
    pub size: u64,
    pub inodes: u64,
}

fn io_err(key: &str, path: &Path) -> impl FnOnce(io::Error) -> SnapshotError {
    let (key, path) = (key.to_owned(), path.to_owned());
    move |source| SnapshotError::Io { key, path, source }
}

fn me(key: &str) -> impl FnOnce(MetaError) -> SnapshotError + '_ {
    move |source| SnapshotError::Meta {
        key: key.to_owned(),
        source,
    }
}

fn check_key(key: &str) -> Result<(), SnapshotError> {
    if key.is_empty() || key.len() > 200 || key.contains('\0') {
        return Err(SnapshotError::BadKey(key.to_owned()));
    }
    Ok(())
}

/// Handle on the snapshotter, optionally adding what it creates to a lease.
#[derive(Clone, Debug)]
pub struct Snapshotter {
    inner: Arc<Inner>,
    lease: Option<String>,
    /// fsync what `prepare`/`view`/`remove` write (default). Off for containers' writable
    /// layers: they stay crash-consistent (temp + rename, checked on open), and a process
    /// crash loses nothing, but a power loss may lose a layer made or removed just before.
    durable: bool,
}

impl Snapshotter {
    pub(crate) fn new(inner: Arc<Inner>, lease: Option<String>) -> Self {
        Self {
            inner,
            lease,
            durable: true,
        }
    }

    /// The same snapshotter, adding snapshots it prepares or commits to lease `id`.
    pub fn with_lease(&self, id: &str) -> Self {
        Self {
            lease: Some(id.to_owned()),
            ..self.clone()
        }
    }

    /// The same snapshotter without fsyncs in prepare/view/remove (see the `durable` field):
    /// for containers' writable layers, where an fsync per step would dominate start time.
    pub fn volatile(&self) -> Self {
        Self {
            durable: false,
            ..self.clone()
        }
    }

    fn overlay(&self) -> PathBuf {
        self.inner.layout.overlay()
    }

    fn record(&self, key: &str) -> Result<SnapshotRecord, SnapshotError> {
        check_key(key)?;
        self.inner
            .meta
            .get(Kind::Snapshots, key)
            .map_err(me(key))?
            .ok_or_else(|| SnapshotError::NotFound(key.to_owned()))
    }

    /// A new writable snapshot on top of committed `parent` (or empty).
    pub fn prepare(
        &self,
        key: &str,
        parent: Option<&str>,
    ) -> Result<Vec<MountSpec>, SnapshotError> {
        self.create(key, parent, SnapshotKind::Active)?;
        self.mounts(key)
    }

    /// A new read-only view of committed `parent` (or empty).
    pub fn view(&self, key: &str, parent: Option<&str>) -> Result<Vec<MountSpec>, SnapshotError> {
        self.create(key, parent, SnapshotKind::View)?;
        self.mounts(key)
    }

    fn create(
        &self,
        key: &str,
        parent: Option<&str>,
        kind: SnapshotKind,
    ) -> Result<(), SnapshotError> {
        check_key(key)?;
        let txn = self.inner.meta.txn().map_err(me(key))?;
        if txn
            .get::<SnapshotRecord>(Kind::Snapshots, key)
            .map_err(me(key))?
            .is_some()
        {
            return Err(SnapshotError::AlreadyExists(key.to_owned()));
        }
        let lower = match parent {
            None => String::new(),
            Some(p) => {
                let prec: SnapshotRecord = txn
                    .get(Kind::Snapshots, p)
                    .map_err(me(key))?
                    .ok_or_else(|| SnapshotError::NotFound(p.to_owned()))?;
                if prec.kind != SnapshotKind::Committed {
                    return Err(SnapshotError::ParentNotCommitted {
                        key: key.to_owned(),
                        parent: p.to_owned(),
                    });
                }
                let pdir = self.overlay().join(&prec.id);
                let rd =
                    |f: &str| fs::read_to_string(pdir.join(f)).map_err(io_err(p, &pdir.join(f)));
                let plink = rd("link")?;
                let plower = rd("lower").unwrap_or_default();
                if plower.is_empty() {
                    format!("l/{}", plink.trim())
                } else {
                    format!("l/{}:{}", plink.trim(), plower.trim())
                }
            }
        };
        let id = random_hex(16);
        let link = random_link_name(LINK_LEN);
        let overlay = self.overlay();
        let tmp = overlay.join(temp_name(&id));
        let dir = overlay.join(&id);
        let build = || -> io::Result<()> {
            fs::create_dir(&tmp)?;
            fs::create_dir(tmp.join("diff"))?;
            fs::create_dir(tmp.join("work"))?;
            let durable = self.durable;
            fsutil::atomic_write_opts(&tmp.join("link"), link.as_bytes(), durable)?;
            if !lower.is_empty() {
                fsutil::atomic_write_opts(&tmp.join("lower"), lower.as_bytes(), durable)?;
            }
            if durable {
                fsync_dir(&tmp)?;
            }
            fs::rename(&tmp, &dir)?;
            std::os::unix::fs::symlink(
                format!("../{id}/diff"),
                self.inner.layout.links().join(&link),
            )?;
            if durable {
                fsync_dir(&self.inner.layout.links())?;
                fsync_dir(&overlay)?;
            }
            Ok(())
        };
        if let Err(e) = build() {
            let _ = fsutil::remove_dir_all_quiet(&tmp);
            let _ = fsutil::remove_dir_all_quiet(&dir);
            let _ = fs::remove_file(self.inner.layout.links().join(&link));
            return Err(io_err(key, &dir)(e));
        }
        let rec = SnapshotRecord {
            id,
            kind,
            parent: parent.map(str::to_owned),
            created: Utc::now(),
            labels: BTreeMap::new(),
        };
        txn.put_opts(Kind::Snapshots, key, &rec, self.durable)
            .map_err(me(key))?;
        self.add_to_lease(&txn, key)
    }

    fn add_to_lease(&self, txn: &Txn<'_>, key: &str) -> Result<(), SnapshotError> {
        if let Some(l) = &self.lease {
            lease::add_resource_locked(txn, l, Resource::Snapshot(key.to_owned())).map_err(
                |source| SnapshotError::Lease {
                    key: key.to_owned(),
                    source,
                },
            )?;
        }
        Ok(())
    }

    /// How to mount an active snapshot or a view.
    pub fn mounts(&self, key: &str) -> Result<Vec<MountSpec>, SnapshotError> {
        let rec = self.record(key)?;
        if rec.kind == SnapshotKind::Committed {
            return Err(SnapshotError::WrongKind {
                key: key.to_owned(),
                kind: rec.kind,
                expected: "active or view",
            });
        }
        let overlay = self.overlay();
        let dir = overlay.join(&rec.id);
        let lower_path = dir.join("lower");
        let lower = match fs::read_to_string(&lower_path) {
            Ok(s) => s.trim().to_owned(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io_err(key, &lower_path)(e)),
        };
        let lowers: Vec<String> = if lower.is_empty() {
            Vec::new()
        } else {
            lower
                .split(':')
                .map(|l| overlay.join(l).display().to_string())
                .collect()
        };
        let ro = rec.kind == SnapshotKind::View;
        let bind = |src: String| MountSpec {
            typ: "bind".into(),
            source: src,
            target_hint: String::new(),
            options: vec![if ro { "ro" } else { "rw" }.into(), "rbind".into()],
        };
        let spec = match (ro, lowers.len()) {
            (_, 0) => bind(dir.join("diff").display().to_string()),
            (true, 1) => bind(lowers[0].clone()),
            (true, _) => MountSpec {
                typ: "overlay".into(),
                source: "overlay".into(),
                target_hint: String::new(),
                options: overlay_extra()
                    .chain([format!("lowerdir={}", lowers.join(":"))])
                    .collect(),
            },
            (false, _) => MountSpec {
                typ: "overlay".into(),
                source: "overlay".into(),
                target_hint: String::new(),
                options: overlay_extra()
                    .chain([
                        format!("workdir={}", dir.join("work").display()),
                        format!("upperdir={}", dir.join("diff").display()),
                        format!("lowerdir={}", lowers.join(":")),
                    ])
                    .collect(),
            },
        };
        Ok(vec![spec])
    }

    /// The directory an active snapshot's writes land in (where a layer is unpacked).
    pub fn upper_dir(&self, key: &str) -> Result<PathBuf, SnapshotError> {
        let rec = self.record(key)?;
        if rec.kind != SnapshotKind::Active {
            return Err(SnapshotError::WrongKind {
                key: key.to_owned(),
                kind: rec.kind,
                expected: "active",
            });
        }
        Ok(self.overlay().join(rec.id).join("diff"))
    }

    /// Turns active `key` into committed `name` (e.g. after a layer was extracted).
    pub fn commit(&self, key: &str, name: &str) -> Result<(), SnapshotError> {
        self.commit_labeled(key, name, None)
    }

    /// [`Self::commit`] that also sets the committed snapshot's labels, in the same record
    /// write (one durable write instead of two).
    pub fn commit_labeled(
        &self,
        key: &str,
        name: &str,
        labels: Option<BTreeMap<String, String>>,
    ) -> Result<(), SnapshotError> {
        check_key(key)?;
        check_key(name)?;
        let txn = self.inner.meta.txn().map_err(me(key))?;
        let rec: SnapshotRecord = txn
            .get(Kind::Snapshots, key)
            .map_err(me(key))?
            .ok_or_else(|| SnapshotError::NotFound(key.to_owned()))?;
        if rec.kind != SnapshotKind::Active {
            return Err(SnapshotError::WrongKind {
                key: key.to_owned(),
                kind: rec.kind,
                expected: "active",
            });
        }
        if txn
            .get::<SnapshotRecord>(Kind::Snapshots, name)
            .map_err(me(name))?
            .is_some()
        {
            return Err(SnapshotError::AlreadyExists(name.to_owned()));
        }
        let work = self.overlay().join(&rec.id).join("work");
        let _ = fsutil::remove_dir_all_quiet(&work).and_then(|_| fs::create_dir(&work));
        let mut committed = SnapshotRecord {
            kind: SnapshotKind::Committed,
            created: Utc::now(),
            ..rec
        };
        if let Some(l) = labels {
            committed.labels = l;
        }
        // New record first: a crash in between (or a power loss that loses the delete, which
        // is therefore not fsynced) leaves two records of one id, which check resolves in
        // favour of the committed one.
        txn.put(Kind::Snapshots, name, &committed)
            .map_err(me(name))?;
        txn.delete_opts(Kind::Snapshots, key, false)
            .map_err(me(key))?;
        self.add_to_lease(&txn, name)
    }

    /// Removes a snapshot; refused while other snapshots name it as parent.
    pub fn remove(&self, key: &str) -> Result<(), SnapshotError> {
        check_key(key)?;
        let txn = self.inner.meta.txn().map_err(me(key))?;
        remove_locked(&self.inner, &txn, key, self.durable)
    }

    /// One snapshot's record.
    pub fn stat(&self, key: &str) -> Result<SnapshotInfo, SnapshotError> {
        Ok(info(key.to_owned(), self.record(key)?))
    }

    /// Every snapshot, sorted by key.
    pub fn list(&self) -> Result<Vec<SnapshotInfo>, SnapshotError> {
        Ok(self
            .inner
            .meta
            .list::<SnapshotRecord>(Kind::Snapshots)
            .map_err(me(""))?
            .into_iter()
            .map(|(k, r)| info(k, r))
            .collect())
    }

    /// Replaces a snapshot's labels (e.g. GC edges).
    pub fn set_labels(
        &self,
        key: &str,
        labels: BTreeMap<String, String>,
    ) -> Result<(), SnapshotError> {
        check_key(key)?;
        let txn = self.inner.meta.txn().map_err(me(key))?;
        let mut rec: SnapshotRecord = txn
            .get(Kind::Snapshots, key)
            .map_err(me(key))?
            .ok_or_else(|| SnapshotError::NotFound(key.to_owned()))?;
        rec.labels = labels;
        txn.put(Kind::Snapshots, key, &rec).map_err(me(key))
    }

    /// Bytes and inodes of the snapshot's own layer.
    pub fn usage(&self, key: &str) -> Result<Usage, SnapshotError> {
        let rec = self.record(key)?;
        let diff = self.overlay().join(rec.id).join("diff");
        let mut usage = Usage::default();
        let mut seen = std::collections::HashSet::new();
        let mut stack = vec![diff];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).map_err(io_err(key, &d))? {
                let e = e.map_err(io_err(key, &d))?;
                let m = e.metadata().map_err(io_err(key, &e.path()))?;
                if m.nlink() > 1 && !m.is_dir() && !seen.insert((m.dev(), m.ino())) {
                    continue;
                }
                usage.inodes += 1;
                usage.size += m.blocks() * 512;
                if m.is_dir() {
                    stack.push(e.path());
                }
            }
        }
        Ok(usage)
    }
}

fn info(key: String, r: SnapshotRecord) -> SnapshotInfo {
    SnapshotInfo {
        key,
        kind: r.kind,
        parent: r.parent,
        created: r.created,
        labels: r.labels,
        id: r.id,
    }
}

/// Extra overlay options: `index=off` where the kernel knows the option (as Docker does),
/// so a layer reused under several uppers never trips the inode index.
fn overlay_extra() -> impl Iterator<Item = String> {
    let has_index = Path::new("/sys/module/overlay/parameters/index").exists();
    has_index.then(|| "index=off".to_owned()).into_iter()
}

/// Removes a snapshot while holding the metadata lock (shared with GC).
pub(crate) fn remove_locked(
    inner: &Inner,
    txn: &Txn<'_>,
    key: &str,
    durable: bool,
) -> Result<(), SnapshotError> {
    let all: Vec<(String, SnapshotRecord)> = txn.list(Kind::Snapshots).map_err(me(key))?;
    let Some(rec) = all.iter().find(|(k, _)| k == key).map(|(_, r)| r.clone()) else {
        return Err(SnapshotError::NotFound(key.to_owned()));
    };
    let children: Vec<&str> = all
        .iter()
        .filter(|(_, r)| r.parent.as_deref() == Some(key))
        .map(|(k, _)| k.as_str())
        .collect();
    if !children.is_empty() {
        return Err(SnapshotError::HasChildren {
            key: key.to_owned(),
            children: children.join(", "),
        });
    }
    txn.delete_opts(Kind::Snapshots, key, durable)
        .map_err(me(key))?;
    // Another record may share the id after a crash mid-commit: keep the directory then.
    if all.iter().any(|(k, r)| k != key && r.id == rec.id) {
        return Ok(());
    }
    remove_dir(inner, &rec.id, durable).map_err(|(p, e)| io_err(key, &p)(e))
}

/// Removes `overlay/<id>` and its link: rename to trash first so a crash never leaves a
/// half-deleted directory under a live name.
pub(crate) fn remove_dir(
    inner: &Inner,
    id: &str,
    durable: bool,
) -> Result<(), (PathBuf, io::Error)> {
    let overlay = inner.layout.overlay();
    let dir = overlay.join(id);
    if let Ok(link) = fs::read_to_string(dir.join("link")) {
        let l = inner.layout.links().join(link.trim());
        if !link.trim().is_empty() && !link.contains('/') {
            fs::remove_file(&l)
                .or_else(|e| {
                    if e.kind() == io::ErrorKind::NotFound {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })
                .map_err(|e| (l, e))?;
        }
    }
    let trash = overlay.join(format!("{TRASH_PREFIX}{id}"));
    match fs::rename(&dir, &trash) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err((dir, e)),
    }
    if durable {
        let _ = fsync_dir(&overlay);
    } else {
        // Out of the caller's way: unlinks wait on the journal. A crash leaves a `.trash-*`
        // directory, which the check on open removes.
        std::thread::spawn(move || {
            let _ = fsutil::remove_dir_all_quiet(&trash);
        });
        return Ok(());
    }
    fsutil::remove_dir_all_quiet(&trash).map_err(|e| (trash, e))
}
