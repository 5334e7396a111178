//! The writer's file side: appends encoded entries to the live file in one `write(2)` per
//! chunk, keeps the index, rotates, and recovers a log left by a crash.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use crate::config::{LogConfig, Stream};
use crate::error::LogError;
use crate::files::rotate;
use crate::format::Format;
use crate::index::{index_path, load, read_index_file, trim_to_boundaries, IndexWriter, Record};
use crate::scan::{Item, Scanner};
use crate::time::TimeText;

/// The most bytes cut off as a torn last entry when a log is reopened.
const MAX_TORN: u64 = 1 << 20;
/// Write out early when a chunk grows past this.
const CHUNK_LIMIT: usize = 1 << 20;

pub(crate) struct Sink {
    fmt: Format,
    path: PathBuf,
    max_size: Option<u64>,
    max_file: u32,
    file: File,
    /// Bytes in the live file.
    len: u64,
    index: IndexWriter,
    /// Encoded entries not yet written.
    chunk: Vec<u8>,
    /// Index state before `chunk`, to roll back if writing it fails.
    mark: (u64, i64),
    times: TimeText,
}

/// Opens the live file for appending (O_APPEND), emptied when `truncate`.
fn open_live(path: &PathBuf, truncate: bool) -> Result<File, LogError> {
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)
        .map_err(LogError::io("open", path))?;
    if truncate {
        file.set_len(0).map_err(LogError::io("truncate", path))?;
    }
    Ok(file)
}

impl Sink {
    /// Opens the live file for appending. Recovery: the index is checked (rebuilt if it
    /// is missing or does not match), the entries after its last checkpoint are counted,
    /// and a torn last entry (a crash mid-write) is cut off so new entries start clean.
    pub(crate) fn open(fmt: Format, cfg: &LogConfig) -> Result<Sink, LogError> {
        let path = cfg.path.clone();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(LogError::io("create directory", dir))?;
        }
        let file = open_live(&path, false)?;
        let len = file.metadata().map_err(LogError::io("stat", &path))?.len();
        let mut records = load(&read_index_file(&path), &file, len, fmt);
        trim_to_boundaries(&mut records, fmt, &file, len);
        let start = records.last().copied().unwrap_or(Record::START);
        let mut index = IndexWriter::create(index_path(&path), &file, fmt, &records)?;

        let reader = file.try_clone().map_err(LogError::io("open", &path))?;
        let mut scan = Scanner::new(reader, path.clone(), fmt, start.offset);
        let mut good_end = start.offset;
        while let Some(item) = scan.next_unit()? {
            if let Item::Entry(off, bytes) = item {
                index.before_entry(off);
                index.after_entry(fmt.nanos(bytes));
                good_end = off + bytes.len() as u64;
            }
        }
        let mut end = len;
        if good_end < len && len - good_end <= MAX_TORN {
            tracing::warn!(path = %path.display(), bytes = len - good_end, "cutting off a torn log tail");
            file.set_len(good_end)
                .map_err(LogError::io("truncate", &path))?;
            end = good_end;
        } else if good_end < len {
            // Too much to be one torn entry: not ours to delete. Readers skip it; a
            // json-file line is ended so that new entries start on their own line.
            tracing::warn!(path = %path.display(), bytes = len - good_end, "log ends in unreadable bytes; appending after them");
            if fmt == Format::Json && scan.pending() > 0 {
                index.before_entry(scan.offset());
                index.after_entry(None);
                (&file)
                    .write_all(b"\n")
                    .map_err(LogError::io("write", &path))?;
                end += 1;
            }
        }
        index.flush()?;
        let mark = (index.count, index.max_time);
        Ok(Sink {
            fmt,
            path,
            max_size: cfg.max_size,
            max_file: cfg.max_file.max(1),
            file,
            len: end,
            index,
            chunk: Vec::new(),
            mark,
            times: TimeText::default(),
        })
    }

    /// Adds one entry to the chunk, rotating first if the live file is full (Docker's
    /// rule: rotate before a write when the file has reached max-size).
    pub(crate) fn append(
        &mut self,
        stream: Stream,
        content: &[u8],
        newline: bool,
        nanos: i64,
    ) -> Result<(), LogError> {
        if let Some(max) = self.max_size {
            if self.len + self.chunk.len() as u64 >= max {
                self.write_out()?;
                self.rotate()?;
            }
        }
        self.index.before_entry(self.len + self.chunk.len() as u64);
        self.fmt.encode(
            &mut self.chunk,
            stream,
            content,
            newline,
            nanos,
            &mut self.times,
        );
        self.index.after_entry(Some(nanos));
        if self.chunk.len() >= CHUNK_LIMIT {
            self.write_out()?;
        }
        Ok(())
    }

    /// Writes the chunk, then its index records.
    pub(crate) fn write_out(&mut self) -> Result<(), LogError> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.file.write_all(&self.chunk) {
            // Leave no torn entry behind and forget the chunk's index records.
            let _ = self.file.set_len(self.len);
            self.chunk.clear();
            self.index.discard_pending();
            (self.index.count, self.index.max_time) = self.mark;
            return Err(LogError::Io {
                op: "write",
                path: self.path.clone(),
                source: e,
            });
        }
        self.len += self.chunk.len() as u64;
        self.chunk.clear();
        self.mark = (self.index.count, self.index.max_time);
        self.index.flush()
    }

    fn rotate(&mut self) -> Result<(), LogError> {
        if self.max_file < 2 {
            // Docker truncates the only file. Index first: a crash in between leaves a
            // short index over a long file, which is merely slow.
            self.index = IndexWriter::create(
                index_path(&self.path),
                &self.file,
                self.fmt,
                &[Record::START],
            )?;
            self.file
                .set_len(0)
                .map_err(LogError::io("truncate", &self.path))?;
        } else {
            rotate(&self.path, self.max_file)?;
            self.file = open_live(&self.path, true)?;
            self.index = IndexWriter::create(
                index_path(&self.path),
                &self.file,
                self.fmt,
                &[Record::START],
            )?;
        }
        self.len = 0;
        self.mark = (0, i64::MIN);
        Ok(())
    }
}
