//! The writer side: the shim feeds container output in, entries go to the driver's files.

use std::time::SystemTime;

use crate::config::{LogConfig, Stream};
use crate::error::LogError;
use crate::format::Format;
use crate::sink::Sink;
use crate::splitter::LineBuf;
use crate::time::system_time_nanos;

/// Writes one container's log.
///
/// Not synchronised: the shim owns one `Writer` and feeds it from its I/O loop (or wraps it
/// in a mutex when stdout and stderr are read by different threads). Nothing is fsynced;
/// each [`Writer::write`] call costs one `write(2)` for all the lines it completes (plus one
/// for the index every 64 KiB of log). Dropping a writer flushes it.
pub struct Writer {
    sink: Option<Sink>,
    lines: [LineBuf; 2],
}

fn slot(stream: Stream) -> usize {
    match stream {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
    }
}

impl Writer {
    /// Opens (appends to) the configured log, recovering from a crash if needed (see the
    /// crate docs); the `none` driver gives a writer that discards.
    pub fn open(cfg: &LogConfig) -> Result<Writer, LogError> {
        let sink = match Format::of(cfg.driver) {
            Some(fmt) => Some(Sink::open(fmt, cfg)?),
            None => None,
        };
        Ok(Writer {
            sink,
            lines: Default::default(),
        })
    }

    /// Bytes as read from the container's pipe/pty, any chunking. Lines are split at '\n'
    /// per stream; a line of 16 KiB or more is written in 16 KiB pieces marked partial;
    /// an unterminated tail is buffered until more comes or [`Writer::flush`]. `time` is
    /// when the bytes were read.
    pub fn write(&mut self, stream: Stream, data: &[u8], time: SystemTime) -> Result<(), LogError> {
        let Some(sink) = self.sink.as_mut() else {
            return Ok(());
        };
        let nanos = system_time_nanos(time);
        let mut emit =
            |content: &[u8], newline: bool, t: i64| sink.append(stream, content, newline, t);
        self.lines[slot(stream)].push(data, nanos, &mut emit)?;
        sink.write_out()
    }

    /// Writes buffered unterminated lines as partial entries (at container exit).
    pub fn flush(&mut self) -> Result<(), LogError> {
        let Some(sink) = self.sink.as_mut() else {
            return Ok(());
        };
        for stream in [Stream::Stdout, Stream::Stderr] {
            let mut emit =
                |content: &[u8], newline: bool, t: i64| sink.append(stream, content, newline, t);
            self.lines[slot(stream)].flush(&mut emit)?;
        }
        sink.write_out()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            tracing::warn!(error = %e, "flushing the container log at close");
        }
    }
}
