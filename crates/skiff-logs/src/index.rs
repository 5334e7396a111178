//! The seek index: a sidecar `<log>.idx` next to every log file (`<path>.idx`,
//! `<path>.1.idx`, …), so `tail` and `since` read a bounded part of each file.
//!
//! Format version 1, all integers little-endian:
//!
//! ```text
//! header, 32 bytes:  magic "SKLOGIX1" | dev u64 | ino u64 | format u8 (1 json-file, 2 local) | 7 zero bytes
//! record, 32 bytes:  offset u64 | count u64 | max_time i64 | check u64
//! ```
//!
//! A record is a checkpoint: an entry starts at byte `offset` of the log file, `count`
//! entries come before it, and the latest time among them is `max_time` (nanoseconds since
//! the epoch; `i64::MIN` for none). Offset 0 is an implicit checkpoint. The writer appends
//! a record when an entry starts at least 64 KiB after the previous checkpoint,
//! always after the log bytes it describes have been written. `check` guards against torn
//! or garbage records: starting from `h = 0x534b_4946_465f_4c47`, for `v` in `offset`,
//! `count`, `max_time as u64`: `h = ((h ^ v) * 0x0100_0000_01b3).rotate_left(29)`
//! (wrapping multiplication).
//!
//! Trust: an index is used only when its header names the (dev, inode) of the log file it
//! sits next to (a rename during rotation keeps the inode, so a stale or mismatched pair is
//! caught), its records are checked, increasing and within the file, and the record a
//! read starts from lies on an entry boundary. Otherwise the reader falls back to scanning
//! the file from the start: slower, never wrong. The writer rebuilds a bad index on open.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::LogError;
use crate::format::Format;
use crate::scan::is_boundary;

/// Bytes of log between checkpoints.
pub(crate) const INTERVAL: u64 = 64 * 1024;
const MAGIC: &[u8; 8] = b"SKLOGIX1";
const HEADER: usize = 32;
const RECORD: usize = 32;

/// One checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) offset: u64,
    pub(crate) count: u64,
    pub(crate) max_time: i64,
}

impl Record {
    pub(crate) const START: Record = Record {
        offset: 0,
        count: 0,
        max_time: i64::MIN,
    };

    fn check(&self) -> u64 {
        let mut h = 0x534b_4946_465f_4c47u64;
        for v in [self.offset, self.count, self.max_time as u64] {
            h = (h ^ v).wrapping_mul(0x0100_0000_01b3).rotate_left(29);
        }
        h
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&self.count.to_le_bytes());
        out.extend_from_slice(&self.max_time.to_le_bytes());
        out.extend_from_slice(&self.check().to_le_bytes());
    }

    fn decode(b: &[u8]) -> Option<Record> {
        let u = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
        let r = Record {
            offset: u(0),
            count: u(8),
            max_time: u(16) as i64,
        };
        (r.check() == u(24)).then_some(r)
    }
}

/// The index path of a log file.
pub(crate) fn index_path(log: &Path) -> PathBuf {
    let mut s = log.as_os_str().to_owned();
    s.push(".idx");
    PathBuf::from(s)
}

fn header(file: &File, fmt: Format) -> Result<Vec<u8>, std::io::Error> {
    let meta = file.metadata()?;
    let mut h = Vec::with_capacity(HEADER);
    h.extend_from_slice(MAGIC);
    h.extend_from_slice(&meta.dev().to_le_bytes());
    h.extend_from_slice(&meta.ino().to_le_bytes());
    h.push(fmt.id());
    h.resize(HEADER, 0);
    Ok(h)
}

/// The checked records of an index for `log` (an open log file of `len` bytes), starting
/// with the implicit one at offset 0. Anything wrong yields just that one.
pub(crate) fn load(idx: &[u8], log: &File, len: u64, fmt: Format) -> Vec<Record> {
    let mut out = vec![Record::START];
    let Ok(expect) = header(log, fmt) else {
        return out;
    };
    if idx.len() < HEADER || idx[..HEADER] != expect[..] {
        return out;
    }
    for rec in idx[HEADER..].chunks_exact(RECORD) {
        let Some(r) = Record::decode(rec) else { break };
        let prev = out[out.len() - 1];
        if r.offset <= prev.offset
            || r.offset > len
            || r.count < prev.count
            || r.max_time < prev.max_time
        {
            break;
        }
        out.push(r);
    }
    out
}

/// Reads the index file of `log_path` (empty when missing or unreadable).
pub(crate) fn read_index_file(log_path: &Path) -> Vec<u8> {
    std::fs::read(index_path(log_path)).unwrap_or_default()
}

/// Drops trailing records that do not lie on an entry boundary of `log`.
pub(crate) fn trim_to_boundaries(records: &mut Vec<Record>, fmt: Format, log: &File, len: u64) {
    while records.len() > 1 {
        let r = records[records.len() - 1];
        if is_boundary(fmt, log, r.offset, len) {
            return;
        }
        records.pop();
    }
}

/// The writer's side: appends checkpoints as entries are written.
pub(crate) struct IndexWriter {
    file: File,
    path: PathBuf,
    /// Entries written to the log so far.
    pub(crate) count: u64,
    /// Latest entry time so far.
    pub(crate) max_time: i64,
    last_offset: u64,
    pending: Vec<u8>,
}

impl IndexWriter {
    /// Starts the index of `log` (a log file at its `records[last]` state) at `idx_path`,
    /// keeping `records` (beyond the implicit first one) and rewriting the file.
    pub(crate) fn create(
        idx_path: PathBuf,
        log: &File,
        fmt: Format,
        records: &[Record],
    ) -> Result<IndexWriter, LogError> {
        let io = LogError::io("write index", &idx_path);
        let mut bytes = header(log, fmt).map_err(LogError::io("stat", &idx_path))?;
        for r in records.iter().skip(1) {
            r.encode(&mut bytes);
        }
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o640)
            .open(&idx_path)
            .map_err(LogError::io("open index", &idx_path))?;
        file.write_all(&bytes).map_err(io)?;
        let last = records.last().copied().unwrap_or(Record::START);
        Ok(IndexWriter {
            file,
            path: idx_path,
            count: last.count,
            max_time: last.max_time,
            last_offset: last.offset,
            pending: Vec::new(),
        })
    }

    /// An entry is about to be written at log offset `offset`.
    pub(crate) fn before_entry(&mut self, offset: u64) {
        if offset >= self.last_offset + INTERVAL {
            Record {
                offset,
                count: self.count,
                max_time: self.max_time,
            }
            .encode(&mut self.pending);
            self.last_offset = offset;
        }
    }

    /// An entry with this time was written (or found, on recovery).
    pub(crate) fn after_entry(&mut self, nanos: Option<i64>) {
        self.count += 1;
        if let Some(n) = nanos {
            self.max_time = self.max_time.max(n);
        }
    }

    /// Writes the pending records (after the log bytes they describe).
    pub(crate) fn flush(&mut self) -> Result<(), LogError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let res = self.file.write_all(&self.pending);
        self.pending.clear();
        res.map_err(LogError::io("write index", &self.path))
    }

    /// Forgets records not yet written (their log bytes failed to be written).
    pub(crate) fn discard_pending(&mut self) {
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_checked_and_must_match_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let log_path = dir.path().join("log");
        std::fs::write(&log_path, vec![b'x'; 300_000]).unwrap();
        let log = File::open(&log_path).unwrap();
        let other = File::create(dir.path().join("other")).unwrap();
        let mut w =
            IndexWriter::create(index_path(&log_path), &log, Format::Json, &[Record::START])
                .unwrap();
        for off in [0, 70_000, 140_000, 210_000] {
            w.before_entry(off);
            w.after_entry(Some(off as i64));
        }
        w.flush().unwrap();
        let bytes = read_index_file(&log_path);
        let recs = load(&bytes, &log, 300_000, Format::Json);
        assert_eq!(recs.len(), 4);
        assert_eq!(
            recs[2],
            Record {
                offset: 140_000,
                count: 2,
                max_time: 70_000
            }
        );
        // another file's index, another format, a shorter log, a corrupt or torn record
        assert_eq!(load(&bytes, &other, 300_000, Format::Json).len(), 1);
        assert_eq!(load(&bytes, &log, 300_000, Format::Local).len(), 1);
        assert_eq!(load(&bytes, &log, 100_000, Format::Json).len(), 2);
        let mut bad = bytes.clone();
        bad[HEADER + RECORD + 3] ^= 1;
        assert_eq!(load(&bad, &log, 300_000, Format::Json).len(), 2);
        assert_eq!(
            load(&bytes[..bytes.len() - 5], &log, 300_000, Format::Json).len(),
            3
        );
        assert_eq!(load(&[], &log, 300_000, Format::Json), vec![Record::START]);
    }
}
