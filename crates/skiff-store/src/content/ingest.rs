//! Ingests: `content/ingest/<enc(key)>/{lock,meta.json,data}`.
//!
//! A writer holds the `flock` on `lock` for its whole life. Bytes go to `data` and into a
//! running sha256; a dropped writer leaves `data` for a later writer of the same key, which
//! re-hashes the prefix and continues at [`IngestWriter::offset`] (an HTTP Range request).
//! `commit` checks size and digest, fsyncs, and (under the metadata lock, so GC never sees
//! a blob half-owned) renames `data` to `blobs/sha256/<hex>`, adds it to the lease, fsyncs
//! the directory, then removes the ingest. A second writer of the same key waits on the lock
//! and then finds the blob committed: two pulls of one blob share one download.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::{io_err, meta_err, ContentError, ContentStore};
use crate::digest::{Descriptor, Digest};
use crate::fsutil::{self, atomic_write_opts, decode_name, encode_name, fsync_dir};
use crate::layout::Layout;
use crate::lock::{FileLock, LockMode};

/// Metadata file of an ingest.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct IngestMeta {
    key: String,
    #[serde(default)]
    expected: Option<Descriptor>,
    started: DateTime<Utc>,
}

/// What `ingests()` reports about one in-progress write.
#[derive(Clone, Debug)]
pub struct IngestStatus {
    pub key: String,
    pub expected: Option<Descriptor>,
    pub offset: u64,
    pub started: Option<DateTime<Utc>>,
    pub updated: Option<SystemTime>,
    pub busy: bool,
}

/// An open ingest; `io::Write` appends and hashes. Drop without `commit` keeps the bytes
/// for a resume; `abort` discards them.
#[derive(Debug)]
pub struct IngestWriter {
    store: ContentStore,
    key: String,
    dir: PathBuf,
    file: File,
    hasher: Sha256,
    offset: u64,
    expected: Option<Descriptor>,
    lock: Option<FileLock>,
}

fn check_key(key: &str) -> Result<(), ContentError> {
    if key.is_empty() || key.len() > 200 || key.contains('\0') {
        return Err(ContentError::BadKey {
            key: key.to_owned(),
        });
    }
    Ok(())
}

pub(super) fn open(
    store: &ContentStore,
    key: &str,
    expected: Option<Descriptor>,
    wait: bool,
) -> Result<IngestWriter, ContentError> {
    check_key(key)?;
    let layout = &store.inner.layout;
    let dir = layout.ingest().join(encode_name(key));
    let lock_err = |source| ContentError::Lock {
        key: key.to_owned(),
        source,
    };
    let exists = |store: &ContentStore| -> Result<(), ContentError> {
        if let Some(d) = expected.as_ref().map(|e| &e.digest) {
            if store.info(d)?.is_some() {
                let txn = store.inner.meta.txn().map_err(meta_err(d))?;
                if store.info(d)?.is_some() {
                    store.add_to_lease(&txn, d)?;
                    return Err(ContentError::AlreadyExists { digest: d.clone() });
                }
            }
        }
        Ok(())
    };
    exists(store)?;
    let lock = loop {
        if let Err(e) = fs::create_dir_all(&dir) {
            // `create_dir_all` reports EEXIST when the directory it found existing was removed
            // (a committing writer unlinks its ingest) before it could check it: try again,
            // unless what is there is not a directory.
            let raced = e.kind() == io::ErrorKind::AlreadyExists
                && fs::symlink_metadata(&dir).map_or(true, |m| m.is_dir());
            if raced {
                continue;
            }
            return Err(io_err(format!("ingest {key:?}"), &dir)(e));
        }
        let lp = dir.join("lock");
        let lock = if wait {
            match FileLock::acquire(&lp, LockMode::Exclusive) {
                Ok(l) => l,
                Err(e) if is_not_found(&e) => continue,
                Err(e) => return Err(lock_err(e)),
            }
        } else {
            match FileLock::try_acquire(&lp, LockMode::Exclusive) {
                Ok(Some(l)) => l,
                Ok(None) => {
                    return Err(ContentError::IngestBusy {
                        key: key.to_owned(),
                    })
                }
                Err(e) if is_not_found(&e) => continue,
                Err(e) => return Err(lock_err(e)),
            }
        };
        // The previous holder may have committed and unlinked the ingest meanwhile.
        if lock.still_linked() {
            break lock;
        }
    };
    if let Err(e) = exists(store) {
        // The blob was committed by the writer we waited for: the ingest is of no more use.
        remove_locked_dir(&dir);
        drop(lock);
        return Err(e);
    }

    let meta_path = dir.join("meta.json");
    let data_path = dir.join("data");
    let old: Option<IngestMeta> = fs::read(&meta_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let (expected, reset) = match (old, expected) {
        (Some(o), Some(e)) if o.expected.as_ref() == Some(&e) => (Some(e), false),
        (Some(o), None) if o.key == key => (o.expected, false),
        (_, e) => (e, true),
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(reset)
        .open(&data_path)
        .map_err(io_err(format!("ingest {key:?}"), &data_path))?;
    if reset {
        let m = IngestMeta {
            key: key.to_owned(),
            expected: expected.clone(),
            started: Utc::now(),
        };
        let data = serde_json::to_vec(&m).expect("ingest meta serialises");
        // Not fsynced: a power loss that loses it only makes the next writer start over.
        atomic_write_opts(&meta_path, &data, false)
            .map_err(io_err(format!("ingest {key:?}"), &meta_path))?;
    }
    // Re-hash what is already there, so the writer continues where the last one stopped.
    let mut hasher = Sha256::new();
    let mut offset = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    file.seek(SeekFrom::Start(0))
        .map_err(io_err(format!("ingest {key:?}"), &data_path))?;
    loop {
        let n = file
            .read(&mut buf)
            .map_err(io_err(format!("ingest {key:?}"), &data_path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        offset += n as u64;
    }
    let mut w = IngestWriter {
        store: store.clone(),
        key: key.to_owned(),
        dir,
        file,
        hasher,
        offset,
        expected,
        lock: Some(lock),
    };
    if w.expected.as_ref().is_some_and(|e| offset > e.size) {
        w.reset()?;
    }
    Ok(w)
}

fn is_not_found(e: &crate::lock::LockError) -> bool {
    let crate::lock::LockError::Io { source, .. } = e;
    source.kind() == io::ErrorKind::NotFound
}

impl IngestWriter {
    /// Bytes already written (where a resumed download continues).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The caller's key.
    /// A reader of this ingest's bytes, from the start: it sees what is written as it is
    /// written and stays valid when `commit` renames the file into the store (same inode), so
    /// a consumer can process a blob while it downloads (the pull unpacks layers this way).
    pub fn reader(&self) -> Result<fs::File, ContentError> {
        let p = self.dir.join("data");
        fs::File::open(&p).map_err(io_err(self.what(), &p))
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// What the blob must be, if known.
    pub fn expected(&self) -> Option<&Descriptor> {
        self.expected.as_ref()
    }

    fn what(&self) -> String {
        format!("ingest {:?}", self.key)
    }

    /// Discards the bytes written so far (the ingest stays open at offset 0).
    pub fn reset(&mut self) -> Result<(), ContentError> {
        let p = self.dir.join("data");
        self.file.set_len(0).map_err(io_err(self.what(), &p))?;
        self.file
            .seek(SeekFrom::Start(0))
            .map_err(io_err(self.what(), &p))?;
        self.hasher = Sha256::new();
        self.offset = 0;
        Ok(())
    }

    /// Verifies size and digest and makes the blob visible. A wrong digest discards the
    /// bytes; a short write keeps them so the download can resume.
    pub fn commit(mut self) -> Result<Digest, ContentError> {
        let got = Digest::from_sha256(self.hasher.clone().finalize().as_slice());
        if let Some(e) = self.expected.clone() {
            if self.offset != e.size {
                return Err(ContentError::SizeMismatch {
                    digest: e.digest.clone(),
                    expected: e.size,
                    got: self.offset,
                });
            }
            if got != e.digest {
                self.reset()?;
                return Err(ContentError::DigestMismatch {
                    expected: e.digest,
                    got,
                });
            }
        }
        let data = self.dir.join("data");
        self.file.sync_all().map_err(io_err(self.what(), &data))?;
        fs::set_permissions(&data, fs::Permissions::from_mode(0o444))
            .map_err(io_err(self.what(), &data))?;
        let inner = self.store.inner.clone();
        let blob = inner.layout.blobs().join(got.hex());
        {
            let txn = inner.meta.txn().map_err(meta_err(&got))?;
            if !blob.exists() {
                fs::rename(&data, &blob).map_err(io_err(&got, &blob))?;
                fsync_dir(&inner.layout.blobs()).map_err(io_err(&got, &blob))?;
            }
            self.store.add_to_lease(&txn, &got)?;
        }
        self.remove_ingest();
        Ok(got)
    }

    /// Discards the ingest and its bytes.
    pub fn abort(mut self) -> Result<(), ContentError> {
        self.remove_ingest();
        Ok(())
    }

    /// Removes the ingest while still holding its lock, then releases the lock.
    fn remove_ingest(&mut self) {
        remove_locked_dir(&self.dir);
        self.lock.take();
    }
}

impl Write for IngestWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(e) = &self.expected {
            if self.offset + buf.len() as u64 > e.size {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    ContentError::SizeMismatch {
                        digest: e.digest.clone(),
                        expected: e.size,
                        got: self.offset + buf.len() as u64,
                    },
                ));
            }
        }
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.offset += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Removes an ingest directory whose lock the caller holds. The `rmdir` fails (harmlessly)
/// if a waiter already re-created its lock file in the directory.
fn remove_locked_dir(dir: &Path) {
    for f in ["data", "meta.json", "lock"] {
        let _ = fs::remove_file(dir.join(f));
    }
    // No fsync of `ingest/`: an ingest that comes back after a power loss is a partial
    // download, resumed or reset by its next writer and removed by GC.
    let _ = fs::remove_dir(dir);
}

/// Lists the ingests under `layout` (used by `ingests()`, GC and check).
pub(crate) fn list(layout: &Layout) -> Result<Vec<IngestStatus>, ContentError> {
    let root = layout.ingest();
    let mut out = Vec::new();
    for e in fs::read_dir(&root).map_err(io_err("ingests", &root))? {
        let e = e.map_err(io_err("ingests", &root))?;
        let name = e.file_name();
        let Some(key) = name.to_str().and_then(decode_name) else {
            continue;
        };
        let dir = e.path();
        let meta: Option<IngestMeta> = fs::read(dir.join("meta.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let data = fs::metadata(dir.join("data")).ok();
        out.push(IngestStatus {
            key,
            expected: meta.as_ref().and_then(|m| m.expected.clone()),
            offset: data.as_ref().map_or(0, |m| m.len()),
            started: meta.map(|m| m.started),
            updated: data.and_then(|m| m.modified().ok()),
            busy: crate::lock::is_locked(&dir.join("lock")),
        });
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

/// Removes an ingest directory if its lock is free.
pub(crate) fn remove_dir_if_idle(dir: &Path) -> bool {
    let Ok(Some(_lock)) = FileLock::try_acquire(&dir.join("lock"), LockMode::Exclusive) else {
        return false;
    };
    for f in ["data", "meta.json", "lock"] {
        let _ = fs::remove_file(dir.join(f));
    }
    let _ = fsutil::remove_dir_all_quiet(dir);
    true
}
