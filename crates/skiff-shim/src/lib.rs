//! `skiff-shim`: the per-container monitor.
//!
//! The daemon (multi-threaded, so it cannot fork containers) starts one `skiff-shim` per
//! container. The shim creates and starts the container with the runtime library (the
//! container's init is the shim's child), owns its stdio or pty, writes its log, reaps it,
//! records its exit and serves attach/exec/resize/wait on a unix socket. It outlives a daemon
//! restart or crash. It is single-threaded (poll(2) + signalfd), gives its start-up memory
//! back (`malloc_trim`, the deep part of the stack released) and is linked `-no-pie` (see
//! build.rs): an idle shim holds about 190 KiB of private memory (release build).
//!
//! # Invocation
//! `skiff-shim <container-dir>`, with `<container-dir>/shim.json` holding a
//! [`proto::ShimConfig`]: `id`, `runtime_root`, `bundle`, `stdin`, `stdin_once`, `tty`,
//! `log: {driver, opts, path}`, `exit_file`, `socket`. The daemon spawns it with stdin
//! /dev/null, stdout a pipe and stderr a file (the shim's diagnostics) or /dev/null.
//! `process.terminal` in the bundle's config.json must equal `tty`.
//!
//! # Start-up
//! The shim closes every inherited descriptor above 2, calls setsid (if the daemon already
//! made it a process-group leader that fails with EPERM and the shim stays in its own group),
//! blocks SIGCHLD, SIGHUP, SIGINT and SIGTERM and reads them from a signalfd (SIGHUP/INT/TERM
//! are dropped: the shim is not the container; blocked rather than ignored, as an ignored
//! disposition would be inherited by the container through execve; SIGPIPE is ignored). It
//! removes a stale `exit_file`, binds `socket` (a stale one removed first; mode 0600), opens the
//! log, sets up stdio (pipes for stdout and stderr, and stdin if `stdin`; or a pty whose master
//! the runtime passes back over a socketpair), runs the container with
//! `Runtime::new(runtime_root).run_bundle(..)`, writes ONE line to its stdout, `{"pid":1234}`
//! (host pid of the init) or `{"error":"<message>"}`, and closes it (0, 1 and 2 are
//! /dev/null from then on). On error what it made (socket, runtime state, cgroup, process) is
//! gone and it exits 1 (2 for a usage error).
//!
//! # Control socket
//! One request per connection: the client sends one JSON line ([`proto::Request`]), the shim
//! answers one JSON line; a bad request gets `{"error":".."}` and the connection is closed.
//! * `{"op":"attach","stdin":b,"stdout":b,"stderr":b}` → `{"ok":true}`, then a byte stream.
//!   Shim → client: raw bytes with a tty, else frames `[stream (1 stdout, 2 stderr), 0, 0, 0,
//!   len u32 BE]` + payload ([`proto::frame_header`]). Client → shim: stdin bytes (dropped if
//!   the container's stdin is not open or `stdin` is false). When the client shuts down its
//!   write side (or goes away) and `stdin_once` is set, the container's stdin is closed after
//!   what was sent (with a tty nothing is closed: a pty has no end-of-file but the ^D the
//!   client sends itself). When the container exits, the remaining output is sent and the
//!   stream closed. Attaching after the exit gives `{"ok":true}` and an empty stream.
//! * `{"op":"resize","height":h,"width":w}` → `{"ok":true}` (error without a tty).
//! * `{"op":"wait"}` → the exit record (below), sent once the container has exited.
//! * `{"op":"exec","exec_id":"..","process":<OCI process>,"stdin":b,"stdout":b,"stderr":b}` →
//!   `{"pid":N}` or `{"error":".."}`, then that process's stdio streams as attach does
//!   (tty from `process.terminal`; streams not asked for are /dev/null for the process; its
//!   stdin closes when the client shuts down its write side). The stream closes once the
//!   process has exited and its output is drained (at most 2 s after its exit, should a
//!   background child keep the pipes open). Exec output is not logged.
//! * `{"op":"exec-wait","exec_id":".."}` → `{"exit_code":N}` once that exec has exited and
//!   its stream is done (the last 64 finished execs are remembered).
//! * `{"op":"exec-resize","exec_id":"..","height":h,"width":w}` → `{"ok":true}`.
//! * `{"op":"status"}` → `{"pid":N,"running":b}`.
//!
//! Container output is always read: into the log, and to attached clients. A client more than
//! 1 MiB behind pauses reading that output (as Docker's attach blocks); a client that goes away
//! is dropped.
//!
//! # Exit
//! When the init exits the shim drains its output (until end-of-file, at most 2 s), flushes
//! the log, reads whether the cgroup saw an OOM kill, releases the container in the runtime
//! (`Runtime::destroy`: cgroup, poststop hooks, state; before the record, so that a daemon
//! that sees the record may reuse the id at once), writes [`proto::ExitRecord`]
//! `{"exit_code":N,"signal":S|null,"oom_killed":b,"finished_at":"RFC 3339 nano"}`
//! (exit_code = 128 + signal when killed) to `exit_file` (temp + fsync + rename), answers the
//! waits, closes the attach streams once written (at most 5 s), removes the socket and exits
//! 0. The rootfs and the container directory are the daemon's. Every child (init, execs,
//! runtime helpers) is reaped.

mod conn;
pub mod error;
mod exec;
mod exit;
mod flow;
pub mod proto;
mod requests;
mod shim;
mod start;
mod stdio;
mod sys;

pub use error::{Result, ShimError};
pub use proto::ShimConfig;
pub use start::{main, read_config};
