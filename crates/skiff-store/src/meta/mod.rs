//! Metadata: one JSON file per object under `meta/<kind>/`, replaced atomically.
//!
//! Every mutation happens inside a [`Txn`], which holds the store-wide exclusive `flock` on
//! `<root>/lock`, so read-modify-write sequences from threads and processes serialise and GC
//! sees a consistent picture. Each record write is write-temp + fsync + rename + fsync-dir
//! ([`crate::fsutil::atomic_write`]): a `kill -9` leaves either the old record, the new one,
//! or a `.tmp-*` file that [`crate::Store::check`] removes. Readers take no lock: a rename is
//! atomic, so they never see a torn record.
//!
//! Multi-record operations (snapshot commit: write new record, delete old one) are ordered so
//! that a crash between the steps leaves a state the checker recognises and repairs.

pub mod records;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::fsutil::{self, decode_name, encode_name, is_temp_name};
use crate::lock::{FileLock, LockError, LockMode};

pub use records::{
    ContentRecord, ImageRecord, LeaseRecord, Resource, SnapshotKind, SnapshotRecord,
};

/// Errors of the metadata store.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("metadata {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("metadata {path}: unreadable record: {source}")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("metadata lock: {0}")]
    Lock(#[from] LockError),
}

/// The kinds of records, each in its own directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Images,
    Content,
    Snapshots,
    Leases,
}

impl Kind {
    /// All kinds.
    pub const ALL: [Kind; 4] = [Kind::Images, Kind::Content, Kind::Snapshots, Kind::Leases];

    /// The directory name under `meta/`.
    pub fn dir_name(self) -> &'static str {
        match self {
            Kind::Images => "images",
            Kind::Content => "content",
            Kind::Snapshots => "snapshots",
            Kind::Leases => "leases",
        }
    }
}

/// Handle on `meta/`.
#[derive(Clone, Debug)]
pub struct MetaStore {
    dir: PathBuf,
    lock_path: PathBuf,
}

/// A held store-wide lock; all metadata writes go through one.
#[derive(Debug)]
pub struct Txn<'a> {
    meta: &'a MetaStore,
    _lock: FileLock,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> MetaError + '_ {
    move |source| MetaError::Io {
        path: path.to_owned(),
        source,
    }
}

impl MetaStore {
    /// Opens (and creates) `meta/` under `root`; `lock_path` is the store-wide lock.
    pub fn open(dir: PathBuf, lock_path: PathBuf) -> Result<Self, MetaError> {
        for k in Kind::ALL {
            let d = dir.join(k.dir_name());
            fs::create_dir_all(&d).map_err(io_err(&d))?;
        }
        Ok(Self { dir, lock_path })
    }

    /// Takes the store-wide lock (blocking).
    pub fn txn(&self) -> Result<Txn<'_>, MetaError> {
        Ok(Txn {
            meta: self,
            _lock: FileLock::acquire(&self.lock_path, LockMode::Exclusive)?,
        })
    }

    /// The directory holding records of `kind`.
    pub fn kind_dir(&self, kind: Kind) -> PathBuf {
        self.dir.join(kind.dir_name())
    }

    /// The file of one record.
    pub fn record_path(&self, kind: Kind, key: &str) -> PathBuf {
        self.kind_dir(kind)
            .join(format!("{}.json", encode_name(key)))
    }

    /// Reads one record; `None` if absent.
    pub fn get<T: DeserializeOwned>(&self, kind: Kind, key: &str) -> Result<Option<T>, MetaError> {
        read_record(&self.record_path(kind, key))
    }

    /// Lists the keys of `kind` (temp files and foreign names skipped).
    pub fn keys(&self, kind: Kind) -> Result<Vec<String>, MetaError> {
        let dir = self.kind_dir(kind);
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let e = e.map_err(io_err(&dir))?;
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            if is_temp_name(name) {
                continue;
            }
            if let Some(key) = name.strip_suffix(".json").and_then(decode_name) {
                out.push(key);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Lists every record of `kind`; a record that vanished meanwhile is skipped.
    pub fn list<T: DeserializeOwned>(&self, kind: Kind) -> Result<Vec<(String, T)>, MetaError> {
        let mut out = Vec::new();
        for key in self.keys(kind)? {
            if let Some(v) = self.get(kind, &key)? {
                out.push((key, v));
            }
        }
        Ok(out)
    }
}

impl Txn<'_> {
    /// Writes (creates or replaces) a record atomically and durably.
    pub fn put<T: Serialize>(&self, kind: Kind, key: &str, value: &T) -> Result<(), MetaError> {
        self.put_opts(kind, key, value, true)
    }

    /// [`Txn::put`], durable or only crash-consistent (see [`fsutil::atomic_write_opts`]).
    pub fn put_opts<T: Serialize>(
        &self,
        kind: Kind,
        key: &str,
        value: &T,
        durable: bool,
    ) -> Result<(), MetaError> {
        let path = self.meta.record_path(kind, key);
        let data = serde_json::to_vec_pretty(value).expect("metadata records always serialise");
        fsutil::atomic_write_opts(&path, &data, durable).map_err(io_err(&path))
    }

    /// Deletes a record durably; returns whether it existed.
    pub fn delete(&self, kind: Kind, key: &str) -> Result<bool, MetaError> {
        self.delete_opts(kind, key, true)
    }

    /// [`Txn::delete`], durable or not.
    pub fn delete_opts(&self, kind: Kind, key: &str, durable: bool) -> Result<bool, MetaError> {
        let path = self.meta.record_path(kind, key);
        fsutil::remove_file_opts(&path, durable).map_err(io_err(&path))
    }

    /// Reads a record (under the lock, for read-modify-write).
    pub fn get<T: DeserializeOwned>(&self, kind: Kind, key: &str) -> Result<Option<T>, MetaError> {
        self.meta.get(kind, key)
    }

    /// Lists records of a kind under the lock.
    pub fn list<T: DeserializeOwned>(&self, kind: Kind) -> Result<Vec<(String, T)>, MetaError> {
        self.meta.list(kind)
    }

    /// The metadata store this transaction locks.
    pub fn meta(&self) -> &MetaStore {
        self.meta
    }
}

/// Reads and parses one record file; `None` if it does not exist.
pub fn read_record<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, MetaError> {
    match fs::read(path) {
        Ok(data) => serde_json::from_slice(&data)
            .map(Some)
            .map_err(|source| MetaError::Corrupt {
                path: path.to_owned(),
                source,
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(MetaError::Io {
            path: path.to_owned(),
            source: e,
        }),
    }
}
