//! One interface over the two on-disk entry formats (json-file lines, local frames).

use crate::config::{Driver, Stream};
use crate::entry::LogEntry;
use crate::time::{DayCache, TimeText};
use crate::{jsonfile, local};

/// The entry format of a log file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    Json,
    Local,
}

/// What starts a buffer of log bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unit {
    /// One entry of this many bytes (a json-file line may still fail to decode: it is then
    /// malformed, but it counts as an entry, like a line does for Docker's `tail`).
    Entry(usize),
    /// Bytes that are no entry (local framing after corruption): skip them.
    Skip(usize),
    /// The next entry is not all there yet.
    Incomplete,
}

/// A decoded entry, before it becomes a [`LogEntry`].
pub(crate) struct Decoded {
    pub(crate) stream: Stream,
    pub(crate) nanos: i64,
    pub(crate) line: Vec<u8>,
    pub(crate) partial: bool,
}

impl Decoded {
    pub(crate) fn into_entry(self, days: &mut DayCache) -> LogEntry {
        LogEntry {
            stream: self.stream,
            time: days.datetime(self.nanos),
            line: self.line,
            partial: self.partial,
        }
    }
}

impl Format {
    pub(crate) fn of(driver: Driver) -> Option<Format> {
        match driver {
            Driver::JsonFile => Some(Format::Json),
            Driver::Local => Some(Format::Local),
            Driver::None => None,
        }
    }

    /// The format's number in index headers.
    pub(crate) fn id(self) -> u8 {
        match self {
            Format::Json => 1,
            Format::Local => 2,
        }
    }

    /// Appends one entry: `content` then, when `newline`, a '\n' that ends the line.
    pub(crate) fn encode(
        self,
        out: &mut Vec<u8>,
        stream: Stream,
        content: &[u8],
        newline: bool,
        nanos: i64,
        times: &mut TimeText,
    ) {
        match self {
            Format::Json => jsonfile::encode(out, stream, content, newline, times.get(nanos)),
            Format::Local => local::encode(out, stream, content, newline, nanos),
        }
    }

    /// Classifies the start of `buf`.
    pub(crate) fn unit(self, buf: &[u8]) -> Unit {
        match self {
            Format::Json => match memchr::memchr(b'\n', buf) {
                Some(q) => Unit::Entry(q + 1),
                None => Unit::Incomplete,
            },
            Format::Local => match local::frame(buf) {
                local::Frame::Valid(n) => Unit::Entry(n),
                local::Frame::Invalid => Unit::Skip(1),
                local::Frame::Incomplete => Unit::Incomplete,
            },
        }
    }

    /// Decodes a unit classified as [`Unit::Entry`]; `None` when it is malformed.
    pub(crate) fn decode(self, unit: &[u8]) -> Option<Decoded> {
        match self {
            Format::Json => {
                let line = jsonfile::decode(unit.strip_suffix(b"\n").unwrap_or(unit))?;
                let partial = line.log.last() != Some(&b'\n');
                Some(Decoded {
                    stream: line.stream,
                    nanos: line.nanos,
                    line: line.log,
                    partial,
                })
            }
            Format::Local => {
                let (stream, nanos, payload, partial) = local::decode(unit);
                Some(Decoded {
                    stream,
                    nanos,
                    line: payload.to_vec(),
                    partial,
                })
            }
        }
    }

    /// The time of an entry unit, if it decodes (cheaper than [`Format::decode`] for local).
    pub(crate) fn nanos(self, unit: &[u8]) -> Option<i64> {
        match self {
            Format::Json => self.decode(unit).map(|d| d.nanos),
            Format::Local => Some(local::decode(unit).1),
        }
    }

    /// For incomplete bytes at the end of a file: the offset of a run of whole entries that
    /// reaches the end exactly, if any (local framing only; a json-file line cannot hide
    /// behind an unterminated one).
    pub(crate) fn resync(self, buf: &[u8]) -> Option<usize> {
        if self == Format::Json {
            return None;
        }
        let whole_run = |mut b: &[u8]| loop {
            match local::frame(b) {
                local::Frame::Valid(n) if n == b.len() => return true,
                local::Frame::Valid(n) => b = &b[n..],
                _ => return false,
            }
        };
        (1..buf.len()).find(|&p| whole_run(&buf[p..]))
    }

    /// Whether an entry plausibly starts right after `prev` (the byte before, if any) with
    /// `head` (the bytes from there): how an index record is checked before it is trusted.
    pub(crate) fn is_boundary(self, prev: Option<u8>, head: &[u8]) -> bool {
        match self {
            Format::Json => {
                prev.is_none_or(|b| b == b'\n') && head.first().is_none_or(|&b| b == b'{')
            }
            Format::Local => head.is_empty() || local::starts_at(head),
        }
    }
}
