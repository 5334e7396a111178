//! Content store: immutable blobs under `content/blobs/sha256/<hex>`, written only through
//! an [`IngestWriter`] that verifies size and digest and then renames the blob into place.
//! Labels of blobs (GC edges) live in the metadata store (`meta/content/<hex>.json`).

mod ingest;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

pub use ingest::{IngestStatus, IngestWriter};

use crate::digest::{Descriptor, Digest};
use crate::fsutil;
use crate::lease;
use crate::lock::LockError;
use crate::meta::{ContentRecord, Kind, MetaError, Txn};
use crate::store::Inner;

/// Errors of the content store.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("content {digest}: not found")]
    NotFound { digest: Digest },
    #[error("content {digest}: already exists")]
    AlreadyExists { digest: Digest },
    #[error("ingest {key:?}: busy (another writer holds it)")]
    IngestBusy { key: String },
    #[error("ingest {key:?}: invalid key (1-200 bytes, no NUL)")]
    BadKey { key: String },
    #[error("content {digest}: size mismatch: expected {expected}, got {got}")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        got: u64,
    },
    #[error("content {expected}: digest mismatch: got {got}")]
    DigestMismatch { expected: Digest, got: Digest },
    #[error("content {what}: {path}: {source}")]
    Io {
        what: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("content {what}: {source}")]
    Meta {
        what: String,
        #[source]
        source: MetaError,
    },
    #[error("ingest {key:?}: {source}")]
    Lock {
        key: String,
        #[source]
        source: LockError,
    },
    #[error("content {digest}: lease {lease:?}: {source}")]
    Lease {
        digest: Digest,
        lease: String,
        #[source]
        source: lease::LeaseError,
    },
}

pub(crate) fn io_err(
    what: impl ToString,
    path: &std::path::Path,
) -> impl FnOnce(io::Error) -> ContentError {
    let what = what.to_string();
    let path = path.to_owned();
    move |source| ContentError::Io { what, path, source }
}

pub(crate) fn meta_err(what: impl ToString) -> impl FnOnce(MetaError) -> ContentError {
    let what = what.to_string();
    move |source| ContentError::Meta { what, source }
}

/// Handle on the content store, optionally bound to a lease: blobs committed through it
/// (or found already present by [`ContentStore::writer`]) are added to the lease.
#[derive(Clone, Debug)]
pub struct ContentStore {
    pub(crate) inner: Arc<Inner>,
    pub(crate) lease: Option<String>,
}

impl ContentStore {
    pub(crate) fn new(inner: Arc<Inner>, lease: Option<String>) -> Self {
        Self { inner, lease }
    }

    /// The same store, adding what it writes to lease `id`.
    pub fn with_lease(&self, id: &str) -> Self {
        Self::new(self.inner.clone(), Some(id.to_owned()))
    }

    /// Path of a blob (it may not exist).
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.inner.layout.blobs().join(d.hex())
    }

    /// Opens a writer for `key`, waiting while another thread or process writes the same key.
    /// If `expected` names a blob that exists (now, or after the other writer committed it),
    /// returns [`ContentError::AlreadyExists`] (after adding it to this handle's lease).
    /// An ingest left by an earlier writer is resumed: see [`IngestWriter::offset`].
    pub fn writer(
        &self,
        key: &str,
        expected: Option<Descriptor>,
    ) -> Result<IngestWriter, ContentError> {
        ingest::open(self, key, expected, true)
    }

    /// Like [`ContentStore::writer`], but returns [`ContentError::IngestBusy`] at once when
    /// another writer holds `key`.
    pub fn try_writer(
        &self,
        key: &str,
        expected: Option<Descriptor>,
    ) -> Result<IngestWriter, ContentError> {
        ingest::open(self, key, expected, false)
    }

    /// The in-progress ingests.
    pub fn ingests(&self) -> Result<Vec<IngestStatus>, ContentError> {
        ingest::list(&self.inner.layout)
    }

    /// Opens a blob for reading.
    pub fn reader(&self, d: &Digest) -> Result<File, ContentError> {
        let p = self.blob_path(d);
        File::open(&p).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => ContentError::NotFound { digest: d.clone() },
            _ => ContentError::Io {
                what: d.to_string(),
                path: p,
                source: e,
            },
        })
    }

    /// Size of a blob, `None` if absent.
    pub fn info(&self, d: &Digest) -> Result<Option<u64>, ContentError> {
        let p = self.blob_path(d);
        match fs::metadata(&p) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(d, &p)(e)),
        }
    }

    /// Deletes a blob and its labels; returns whether it existed.
    pub fn delete(&self, d: &Digest) -> Result<bool, ContentError> {
        let txn = self.inner.meta.txn().map_err(meta_err(d))?;
        delete_locked(&self.inner, &txn, d)
    }

    /// Every committed blob, sorted.
    pub fn list(&self) -> Result<Vec<Digest>, ContentError> {
        let dir = self.inner.layout.blobs();
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).map_err(io_err("list", &dir))? {
            let e = e.map_err(io_err("list", &dir))?;
            if let Some(d) = e
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_hex(n).ok())
            {
                out.push(d);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Labels of a blob (empty when none were set).
    pub fn labels(&self, d: &Digest) -> Result<BTreeMap<String, String>, ContentError> {
        if self.info(d)?.is_none() {
            return Err(ContentError::NotFound { digest: d.clone() });
        }
        let rec: Option<ContentRecord> = self
            .inner
            .meta
            .get(Kind::Content, d.hex())
            .map_err(meta_err(d))?;
        Ok(rec.unwrap_or_default().labels)
    }

    /// Replaces the labels of an existing blob.
    pub fn set_labels(
        &self,
        d: &Digest,
        labels: BTreeMap<String, String>,
    ) -> Result<(), ContentError> {
        let txn = self.inner.meta.txn().map_err(meta_err(d))?;
        if self.info(d)?.is_none() {
            return Err(ContentError::NotFound { digest: d.clone() });
        }
        if labels.is_empty() {
            txn.delete(Kind::Content, d.hex()).map_err(meta_err(d))?;
        } else {
            txn.put(Kind::Content, d.hex(), &ContentRecord { labels })
                .map_err(meta_err(d))?;
        }
        Ok(())
    }

    /// Sets (`Some`) or removes (`None`) one label of an existing blob.
    pub fn set_label(
        &self,
        d: &Digest,
        key: &str,
        value: Option<&str>,
    ) -> Result<(), ContentError> {
        let mut labels = self.labels(d)?;
        match value {
            Some(v) => labels.insert(key.to_owned(), v.to_owned()),
            None => labels.remove(key),
        };
        self.set_labels(d, labels)
    }

    pub(crate) fn add_to_lease(&self, txn: &Txn<'_>, d: &Digest) -> Result<(), ContentError> {
        if let Some(lease) = &self.lease {
            lease::add_resource_locked(txn, lease, crate::meta::Resource::Content(d.clone()))
                .map_err(|source| ContentError::Lease {
                    digest: d.clone(),
                    lease: lease.clone(),
                    source,
                })?;
        }
        Ok(())
    }
}

/// Deletes a blob and its label record while holding the metadata lock.
pub(crate) fn delete_locked(
    inner: &Inner,
    txn: &Txn<'_>,
    d: &Digest,
) -> Result<bool, ContentError> {
    let p = inner.layout.blobs().join(d.hex());
    let existed = fsutil::remove_file_durable(&p).map_err(io_err(d, &p))?;
    txn.delete(Kind::Content, d.hex()).map_err(meta_err(d))?;
    Ok(existed)
}

pub(crate) use ingest::list as ingest_list;
pub(crate) use ingest::remove_dir_if_idle as ingest_remove_dir_if_idle;
