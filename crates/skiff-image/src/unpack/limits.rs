//! Limits on what a layer may contain, and the reader that enforces the byte limits while
//! computing the diffID.

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

use sha2::{Digest as _, Sha256};

use super::error::LimitExceeded;
use crate::digest::{self, Digest};

/// Limits a layer must stay within. The defaults admit any real image seen in the wild
/// (the largest public layers are a few tens of GB, a million files) and refuse absurdities.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Tar entries (headers) in one layer.
    pub max_entries: u64,
    /// Uncompressed bytes of the whole tar stream.
    pub max_total_bytes: u64,
    /// Length of an entry's path (and of a hard link's target), in bytes.
    pub max_path_len: usize,
    /// Size of one xattr value (Linux caps them at 64 KiB).
    pub max_xattr_size: usize,
    /// xattrs on one entry.
    pub max_xattrs_per_entry: usize,
    /// Uncompressed:compressed ratio above which a compressed layer is refused as a bomb...
    pub max_ratio: u64,
    /// ...once it has produced at least this many uncompressed bytes.
    pub ratio_min_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entries: 4_000_000,
            max_total_bytes: 256 << 30,
            max_path_len: 4096,
            max_xattr_size: 64 << 10,
            max_xattrs_per_entry: 128,
            max_ratio: 1000,
            ratio_min_bytes: 256 << 20,
        }
    }
}

/// Counts the compressed bytes read from the blob.
pub(crate) struct CountingReader<R> {
    pub(crate) inner: R,
    pub(crate) count: Rc<Cell<u64>>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// Hashes the uncompressed stream (the diffID) and fails once a byte limit is crossed; the
/// failure is recorded in `violation` so the caller can report it precisely even after the
/// tar reader has wrapped the io::Error.
pub(crate) struct LimitedHasher<R> {
    inner: R,
    hasher: Sha256,
    total: u64,
    compressed: Option<Rc<Cell<u64>>>,
    max_total: u64,
    max_ratio: u64,
    ratio_min_bytes: u64,
    pub(crate) violation: Rc<Cell<Option<LimitExceeded>>>,
}

impl<R: Read> LimitedHasher<R> {
    /// `compressed` is the compressed-byte counter when the blob is compressed.
    pub(crate) fn new(inner: R, limits: &Limits, compressed: Option<Rc<Cell<u64>>>) -> Self {
        LimitedHasher {
            inner,
            hasher: Sha256::new(),
            total: 0,
            compressed,
            max_total: limits.max_total_bytes,
            max_ratio: limits.max_ratio,
            ratio_min_bytes: limits.ratio_min_bytes,
            violation: Rc::new(Cell::new(None)),
        }
    }

    pub(crate) fn finish(self) -> (Digest, u64) {
        (digest::finish(self.hasher), self.total)
    }

    fn fail(&self, l: LimitExceeded) -> io::Error {
        let msg = l.to_string();
        self.violation.set(Some(l));
        io::Error::other(msg)
    }
}

impl<R: Read> Read for LimitedHasher<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.total += n as u64;
        if self.total > self.max_total {
            return Err(self.fail(LimitExceeded::TotalBytes(self.max_total)));
        }
        if let Some(c) = &self.compressed {
            let compressed = c.get().max(1);
            if self.total >= self.ratio_min_bytes && self.total / compressed > self.max_ratio {
                return Err(self.fail(LimitExceeded::Ratio {
                    ratio: self.max_ratio,
                    uncompressed: self.total,
                    compressed,
                }));
            }
        }
        Ok(n)
    }
}
