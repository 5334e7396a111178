//! Errors of layer application.

use std::io;
use std::path::PathBuf;

use crate::digest::Digest;

/// Why applying a layer failed. The target directory may hold a partial layer afterwards:
/// the caller deletes it (snapshotters apply into a fresh, not-yet-committed directory).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("layer {layer}: open target directory {}: {source}", path.display())]
    Target {
        layer: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("layer {layer}: open lower directory {}: {source}", path.display())]
    Lower {
        layer: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("layer {layer}: read tar stream: {source}")]
    Read {
        layer: String,
        #[source]
        source: io::Error,
    },
    #[error("layer {layer}: {limit}")]
    Limit { layer: String, limit: LimitExceeded },
    #[error("layer {layer}: entry {entry:?}: {kind}")]
    Entry {
        layer: String,
        entry: String,
        #[source]
        kind: EntryError,
    },
    #[error("layer {layer}: diffID mismatch: the config says {expected}, the layer is {actual}")]
    DiffIdMismatch {
        layer: String,
        expected: Digest,
        actual: Digest,
    },
}

/// What is wrong with one tar entry.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    #[error("path escapes the layer root")]
    PathEscapes,
    #[error("hard link target {0:?} escapes the layer root")]
    LinkEscapes(String),
    #[error("path is {len} bytes long, over the limit of {limit}")]
    PathTooLong { len: usize, limit: usize },
    #[error("path contains a NUL byte")]
    NulInPath,
    #[error("entry size {size} is over the limit of {limit} bytes")]
    TooLarge { size: u64, limit: u64 },
    #[error("xattr {name:?} is {size} bytes, over the limit of {limit}")]
    XattrTooLarge {
        name: String,
        size: usize,
        limit: usize,
    },
    #[error("{count} xattrs, over the limit of {limit}")]
    TooManyXattrs { count: usize, limit: usize },
    #[error("parent directory {parent:?} is not a directory (or a dangling symlink)")]
    ParentNotDir { parent: String },
    #[error("hard link needs a target")]
    MissingLinkTarget,
    #[error("unsupported entry type {0:#04x}")]
    Unsupported(u8),
    #[error("bad header field {field}: {source}")]
    Header {
        field: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("{op}: {source}")]
    Io {
        op: &'static str,
        #[source]
        source: io::Error,
    },
}

impl EntryError {
    pub(crate) fn io(op: &'static str) -> impl FnOnce(rustix::io::Errno) -> EntryError {
        move |e| EntryError::Io {
            op,
            source: e.into(),
        }
    }
    pub(crate) fn std_io(op: &'static str) -> impl FnOnce(io::Error) -> EntryError {
        move |source| EntryError::Io { op, source }
    }
}

/// A configured limit that a layer went over.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    #[error("more than {0} entries")]
    Entries(u64),
    #[error("more than {0} uncompressed bytes")]
    TotalBytes(u64),
    #[error("decompression ratio over {ratio}:1 ({uncompressed} bytes out of {compressed}): a decompression bomb?")]
    Ratio {
        ratio: u64,
        uncompressed: u64,
        compressed: u64,
    },
}
