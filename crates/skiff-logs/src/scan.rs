//! A forward cursor over one log file: reads large blocks with `pread` and hands out whole
//! units (entries or skipped bytes) with their file offsets.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::LogError;
use crate::format::{Format, Unit};

#[cfg(test)]
thread_local! {
    /// Bytes read by scanners on this thread (tests check that reads stay bounded).
    pub(crate) static BYTES_READ: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

const BLOCK: usize = 256 * 1024;
/// A json-file line longer than this (no '\n' in sight) is garbage: skip it.
const MAX_UNIT: usize = 8 << 20;

/// One unit handed out by [`Scanner::next_unit`].
pub(crate) enum Item<'a> {
    /// An entry at this file offset.
    Entry(u64, &'a [u8]),
    /// This many bytes that are no entry.
    Skip,
}

pub(crate) struct Scanner {
    file: File,
    path: PathBuf,
    fmt: Format,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// File offset of `buf[0]`.
    base: u64,
}

impl Scanner {
    pub(crate) fn new(file: File, path: PathBuf, fmt: Format, offset: u64) -> Scanner {
        Scanner {
            file,
            path,
            fmt,
            buf: Vec::new(),
            start: 0,
            end: 0,
            base: offset,
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// File offset of the next unit.
    pub(crate) fn offset(&self) -> u64 {
        self.base + self.start as u64
    }

    /// File offset up to which bytes have been read.
    pub(crate) fn read_offset(&self) -> u64 {
        self.base + self.end as u64
    }

    /// Bytes read but not handed out (an incomplete entry at the end).
    pub(crate) fn pending(&self) -> usize {
        self.end - self.start
    }

    /// Starts over at `offset` (after the file was truncated).
    pub(crate) fn reset(&mut self, offset: u64) {
        self.base = offset;
        self.start = 0;
        self.end = 0;
    }

    /// What the next unit among the bytes read so far is; `None` if there is none yet.
    fn classify(&self) -> Option<Unit> {
        let avail = &self.buf[self.start..self.end];
        if avail.is_empty() {
            return None;
        }
        match self.fmt.unit(avail) {
            Unit::Incomplete if avail.len() >= MAX_UNIT => Some(Unit::Skip(avail.len())),
            Unit::Incomplete => None,
            u => Some(u),
        }
    }

    /// Hands out a unit found by [`Scanner::classify`].
    fn take(&mut self, unit: Unit) -> Item<'_> {
        let s = self.start;
        match unit {
            Unit::Entry(n) => {
                self.start += n;
                Item::Entry(self.base + s as u64, &self.buf[s..s + n])
            }
            Unit::Skip(n) => {
                self.start += n;
                Item::Skip
            }
            Unit::Incomplete => Item::Skip,
        }
    }

    /// Reads more of the file; the number of new bytes (0 at end of file).
    pub(crate) fn refill(&mut self) -> Result<usize, LogError> {
        if self.start > 0 && (self.start == self.end || self.start >= self.buf.len() / 2) {
            self.buf.copy_within(self.start..self.end, 0);
            self.base += self.start as u64;
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < BLOCK / 4 {
            let grow = self.buf.len().max(BLOCK);
            self.buf.resize(self.end + grow, 0);
        }
        loop {
            match self
                .file
                .read_at(&mut self.buf[self.end..], self.base + self.end as u64)
            {
                Ok(n) => {
                    #[cfg(test)]
                    BYTES_READ.with(|c| c.set(c.get() + n as u64));
                    self.end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(LogError::Io {
                        op: "read",
                        path: self.path.clone(),
                        source: e,
                    })
                }
            }
        }
    }

    /// The next unit, reading as needed; `None` at end of file (incomplete bytes stay
    /// pending).
    pub(crate) fn next_unit(&mut self) -> Result<Option<Item<'_>>, LogError> {
        loop {
            if let Some(unit) = self.classify() {
                return Ok(Some(self.take(unit)));
            }
            if self.refill()? == 0 {
                // At end of file: if what looked like the start of an entry is followed by
                // whole entries up to the end, it was corruption (a local frame whose
                // length field was hit): skip it.
                let avail = &self.buf[self.start..self.end];
                if let Some(p) = self.fmt.resync(avail) {
                    self.start += p;
                    return Ok(Some(Item::Skip));
                }
                return Ok(None);
            }
        }
    }
}

/// Reads `len` bytes at `offset` (fewer at end of file).
pub(crate) fn read_exact_at(file: &File, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0; len];
    let mut got = 0;
    while got < len {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(got);
    Ok(buf)
}

/// Whether an entry starts at `offset` of a file of `len` bytes.
pub(crate) fn is_boundary(fmt: Format, file: &File, offset: u64, len: u64) -> bool {
    if offset > len {
        return false;
    }
    if offset == 0 {
        return true;
    }
    let Ok(bytes) = read_exact_at(file, offset - 1, 1 + crate::local::HEADER) else {
        return false;
    };
    match bytes.split_first() {
        Some((&prev, head)) => fmt.is_boundary(Some(prev), head),
        None => false,
    }
}
