//! The reader side: `docker logs`, with tail, since/until and follow.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;

use crate::config::{LogConfig, Stream};
use crate::entry::{LogEntry, ReadOptions};
use crate::error::LogError;
use crate::files::{file_id, open_all, open_existing, Opened};
use crate::format::{Decoded, Format};
use crate::position::{since_start, tail_start};
use crate::scan::{Item, Scanner};
use crate::stopper::Stopper;
use crate::time::{datetime_nanos, DayCache};

/// How often a follower at the end of the log looks for new entries and rotation.
const POLL: Duration = Duration::from_millis(20);

/// Reads a container's log: an iterator of entries, oldest first, across rotated files.
///
/// Without `follow` it ends at the end of the log (an entry still being written is left
/// out). With `follow` it then blocks, polling every 20 ms, for entries appended later,
/// through any number of rotations, until [`Stopper::stop`], [`Stopper::finish`] or
/// `until` ends it; run it on a blocking thread. Malformed entries (e.g. a line torn by a
/// crash) are skipped with a warning and counted in [`Reader::skipped`]. An `Err` item is
/// an I/O error; the iteration ends after it.
pub struct Reader {
    fmt: Format,
    base: PathBuf,
    stdout: bool,
    stderr: bool,
    since: Option<i64>,
    until: Option<i64>,
    follow: bool,
    stop: Stopper,
    /// Files still to read, with the offset to start at.
    queue: VecDeque<(Opened, u64)>,
    cur: Option<Current>,
    done: bool,
    skipped: u64,
    days: DayCache,
}

struct Current {
    scan: Scanner,
    id: (u64, u64),
}

impl Current {
    fn new(f: Opened, offset: u64, fmt: Format) -> Current {
        Current {
            scan: Scanner::new(f.file, f.path, fmt, offset),
            id: f.id,
        }
    }
}

enum Step {
    Entry(Option<Decoded>, u64),
    Skip,
    End,
    Err(LogError),
}

impl Reader {
    /// Opens the log for reading. The `none` driver keeps no log: Docker's error.
    pub fn open(cfg: &LogConfig, opts: ReadOptions) -> Result<Reader, LogError> {
        let fmt = Format::of(cfg.driver).ok_or(LogError::ReadingUnsupported)?;
        let files = open_all(&cfg.path)?;
        let mut starts: Vec<Option<u64>> = vec![Some(0); files.len()];
        if let (Some(n), false) = (opts.tail, files.is_empty()) {
            let (first, offset) = tail_start(fmt, &files, n as u64)?;
            for s in &mut starts[..first] {
                *s = None;
            }
            starts[first] = Some(offset);
        }
        let since = opts.since.as_ref().map(datetime_nanos);
        if let Some(since) = since {
            for (f, s) in files.iter().zip(starts.iter_mut()) {
                if let Some(s) = s {
                    *s = (*s).max(since_start(fmt, f, since));
                }
            }
        }
        let queue = files
            .into_iter()
            .zip(starts)
            .filter_map(|(f, s)| s.map(|s| (f, s)))
            .collect();
        Ok(Reader {
            fmt,
            base: cfg.path.clone(),
            stdout: opts.stdout,
            stderr: opts.stderr,
            since,
            until: opts.until.as_ref().map(datetime_nanos),
            follow: opts.follow,
            stop: Stopper::default(),
            queue,
            cur: None,
            done: false,
            skipped: 0,
            days: DayCache::default(),
        })
    }

    /// A handle to end or wake this reader from another thread.
    pub fn stopper(&self) -> Stopper {
        self.stop.clone()
    }

    /// Malformed entries and corrupt byte runs skipped so far.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    fn skip(&mut self, what: &str, offset: u64) {
        if self.skipped == 0 {
            let path = self
                .cur
                .as_ref()
                .map(|c| c.scan.path().display().to_string());
            tracing::warn!(path, offset, "skipping {what} in container log");
        }
        self.skipped += 1;
    }

    fn step(&mut self) -> Step {
        let fmt = self.fmt;
        let Some(cur) = self.cur.as_mut() else {
            return Step::End;
        };
        match cur.scan.next_unit() {
            Ok(Some(Item::Entry(off, bytes))) => Step::Entry(fmt.decode(bytes), off),
            Ok(Some(Item::Skip)) => Step::Skip,
            Ok(None) => Step::End,
            Err(e) => Step::Err(e),
        }
    }

    /// Leaves the current file; its incomplete last bytes, if any, were torn.
    fn leave_current(&mut self) {
        if let Some(cur) = self.cur.take() {
            if cur.scan.pending() > 0 {
                let off = cur.scan.offset();
                self.cur = Some(cur);
                self.skip("a torn entry", off);
                self.cur = None;
            }
        }
    }

    /// At the end of the live file while following: has the file appeared, been rotated
    /// or truncated? True when there is something new to read.
    fn follow_step(&mut self) -> Result<bool, LogError> {
        let now = file_id(&self.base);
        let Some(cur) = self.cur.as_mut() else {
            return Ok(match open_existing(&self.base)? {
                Some(f) => {
                    self.cur = Some(Current::new(f, 0, self.fmt));
                    true
                }
                None => false,
            });
        };
        match now {
            None => Ok(false),
            Some(id) if id == cur.id => {
                let len = cur
                    .scan
                    .file()
                    .metadata()
                    .map_err(LogError::io("stat", cur.scan.path()))?
                    .len();
                if len < cur.scan.read_offset() {
                    // Truncated in place (max-file 1): start over.
                    cur.scan.reset(0);
                    return Ok(true);
                }
                Ok(false)
            }
            Some(_) => {
                // Rotated: drain what the writer added before the rename, then go on with
                // the files that came after ours.
                if cur.scan.refill()? > 0 {
                    return Ok(true);
                }
                let ours = cur.id;
                let mut files = open_all(&self.base)?;
                let after = match files.iter().position(|f| f.id == ours) {
                    Some(i) => files.split_off(i + 1),
                    None => files.pop().into_iter().collect(),
                };
                self.leave_current();
                self.queue.extend(after.into_iter().map(|f| (f, 0)));
                Ok(true)
            }
        }
    }

    fn wanted(&self, stream: Stream) -> bool {
        match stream {
            Stream::Stdout => self.stdout,
            Stream::Stderr => self.stderr,
        }
    }
}

impl Iterator for Reader {
    type Item = Result<LogEntry, LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        // The stopper's state is read once the log seems to be at its end, and the end is
        // then checked once more, so an entry written before finish() is never missed.
        let mut armed: Option<(bool, u64)> = None;
        while !self.done {
            if self.stop.is_stopped() {
                break;
            }
            match self.step() {
                Step::Entry(Some(d), _) => {
                    if self.since.is_some_and(|s| d.nanos < s) {
                        continue;
                    }
                    if self.until.is_some_and(|u| d.nanos > u) {
                        break;
                    }
                    if self.wanted(d.stream) {
                        return Some(Ok(d.into_entry(&mut self.days)));
                    }
                    continue;
                }
                Step::Entry(None, off) => {
                    self.skip("a malformed entry", off);
                    continue;
                }
                Step::Skip => {
                    if let Some(off) = self.cur.as_ref().map(|c| c.scan.offset()) {
                        self.skip("corrupt bytes", off);
                    }
                    continue;
                }
                Step::Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
                Step::End => {}
            }
            let Some((finishing, generation)) = armed else {
                armed = Some(self.stop.snapshot());
                continue;
            };
            armed = None;
            if let Some((f, offset)) = self.queue.pop_front() {
                self.leave_current();
                self.cur = Some(Current::new(f, offset, self.fmt));
                continue;
            }
            if !self.follow {
                break;
            }
            match self.follow_step() {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
            if finishing
                || self
                    .until
                    .is_some_and(|u| Utc::now().timestamp_nanos_opt().is_some_and(|n| n > u))
            {
                break;
            }
            self.stop.wait(generation, POLL);
        }
        self.done = true;
        None
    }
}
