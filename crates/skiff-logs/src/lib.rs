//! Container log drivers: `json-file` (Docker's format) with a seek index, `local`, `none`.
//!
//! The per-container shim writes through a [`Writer`]; the daemon reads through a
//! [`Reader`] (tail, since/until, follow across rotation, ended by a [`Stopper`]).
//!
//! # On-disk layout (version 1)
//!
//! For a log at `<path>` (Docker's json-file: `containers/<id>/<id>-json.log`):
//! - `<path>` is the live file, `<path>.1` … `<path>.(max-file − 1)` the rotated ones, `.1`
//!   newest, exactly as Docker names them. With `max-size`, the live file is rotated before
//!   a write once it has reached `max-size`; the oldest beyond `max-file` is removed. With
//!   `max-file` 1 the live file is truncated instead (Docker does the same).
//! - Each log file has a sidecar index `<file>.idx` (see [`index`] for the format:
//!   checkpoints of offset, entry count and max time every 64 KiB), which moves with its
//!   file on rotation. It is an accelerator only: if missing, stale or torn, readers scan
//!   instead, and the writer rebuilds it on open.
//! - json-file entries: Docker's exact lines (see [`jsonfile`]);
//!   `{"log":"hello\n","stream":"stdout","time":"2026-11-28T17:55:06.123456789Z"}`.
//!   A partial entry's `"log"` has no trailing `\n`.
//! - local entries: skiff's own binary framing v1 (see [`local`]): little-endian
//!   length-prefixed and length-suffixed frames with stream, partial flag, time in
//!   nanoseconds and the bytes. Defaults as Docker's local driver: max-size 20 MiB,
//!   max-file 5. Docker's own protobuf `local` files are not readable.
//!
//! # Crash behaviour
//!
//! Nothing is fsynced (as Docker). On open the writer checks the index against the log
//! (rebuilding it if needed), counts the entries after its last good checkpoint and cuts
//! off a torn last entry (at most 1 MiB; more than that is left in place and skipped by
//! readers). A reader skips malformed entries and corrupt bytes, counted in
//! [`Reader::skipped`]; local frames resynchronise after corruption.
//!
//! # Following
//!
//! A follower polls every 20 ms at the end of the log (no inotify: it works the same on
//! every filesystem, and a poll is one `read` and one `stat`). It follows renames by inode,
//! so it reads every entry through any number of rotations, unless a file is rotated out
//! of existence (max-file) before the follower gets to it, or (max-file 1) the file is
//! truncated between two polls: those entries are lost to that follower, as with Docker.
//! See [`Stopper`] for how the daemon ends a follow.
//!
//! # Not implemented
//!
//! - `compress`: accepted (and true by default for `local`, as in Docker) but rotated files
//!   are kept uncompressed, so the index stays usable on every file.
//! - json-file `labels`, `labels-regex`, `env`, `env-regex`, `tag`: accepted; no `attrs`
//!   are written.
//! - Reading Docker's own `local` (protobuf) files.

mod config;
mod entry;
mod error;
mod files;
mod format;
pub mod index;
pub mod jsonfile;
pub mod local;
mod position;
mod reader;
mod scan;
mod sink;
mod splitter;
mod stopper;
mod time;
mod writer;

pub use config::{Driver, LogConfig, Stream, LOCAL_DEFAULT_MAX_FILE, LOCAL_DEFAULT_MAX_SIZE};
pub use entry::{LogEntry, ReadOptions};
pub use error::LogError;
pub use reader::Reader;
pub use splitter::MAX_PIECE;
pub use stopper::Stopper;
pub use time::{format_rfc3339_nano, format_rfc3339_nano_fixed};
pub use writer::Writer;
