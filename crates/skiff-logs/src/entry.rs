//! What a reader yields and what it is asked for.

use chrono::{DateTime, Utc};

use crate::config::Stream;

/// One log entry: a line, or a 16 KiB piece of a longer line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    /// The stream it came from.
    pub stream: Stream,
    /// When the container wrote it (when the bytes were read from its pipe).
    pub time: DateTime<Utc>,
    /// The bytes, including the trailing '\n' when the line had one.
    pub line: Vec<u8>,
    /// A piece of a longer line, or an unterminated tail flushed at exit (no '\n').
    pub partial: bool,
}

/// What `docker logs` asks for (`GET /containers/{id}/logs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadOptions {
    /// Include stdout entries.
    pub stdout: bool,
    /// Include stderr entries.
    pub stderr: bool,
    /// Skip entries older than this.
    pub since: Option<DateTime<Utc>>,
    /// End at the first entry newer than this (Docker stops there, even when following).
    pub until: Option<DateTime<Utc>>,
    /// Only the last N entries of the log (counted over both streams, as Docker does,
    /// before the stream and since filters); `None` = all.
    pub tail: Option<usize>,
    /// Keep waiting for new entries after the end (see [`crate::Stopper`]).
    pub follow: bool,
}

impl Default for ReadOptions {
    fn default() -> ReadOptions {
        ReadOptions {
            stdout: true,
            stderr: true,
            since: None,
            until: None,
            tail: None,
            follow: false,
        }
    }
}
