//! Processes started in the running container by `exec` requests: started with the runtime
//! library (the shim is single-threaded, so it may fork), reaped by the shim, their exit codes
//! kept for `exec-wait`.

use std::collections::VecDeque;
use std::os::unix::net::UnixStream;
use std::time::Instant;

use nix::unistd::Pid;
use skiff_runtime::{ExecOptions, Runtime};

use crate::error::{Result, ShimError};
use crate::proto::ShimConfig;
use crate::stdio::{self, ProcIo};
use crate::sys;

/// How many finished execs' exit codes are remembered (healthchecks exec forever).
const KEEP_FINISHED: usize = 64;

/// A live exec (or one whose output is still draining).
#[derive(Debug)]
pub struct Exec {
    pub id: String,
    pub pid: Pid,
    pub io: ProcIo,
    /// Exit code once reaped (128 + signal when killed).
    pub exit: Option<i32>,
    /// After the exit, output is drained until end-of-file or this instant (a background
    /// child of the exec may keep the pipes open forever).
    pub drain_until: Option<Instant>,
}

/// What stdio an exec gets.
#[derive(Debug, Clone, Copy)]
pub struct ExecStdio {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

/// Start `process` in the container. Without a terminal its stdio are pipes for the requested
/// streams (/dev/null for the others); with one, the pty the process makes in the container.
pub fn start(
    cfg: &ShimConfig,
    null: &std::os::fd::OwnedFd,
    id: String,
    process: oci_spec::runtime::Process,
    want: ExecStdio,
) -> Result<Exec> {
    let tty = process.terminal() == Some(true);
    let rt = Runtime::new(&cfg.runtime_root);
    let opts = ExecOptions {
        process,
        ..ExecOptions::default()
    };
    let (pid, io) = if tty {
        let (ours, theirs) = UnixStream::pair().map_err(ShimError::sys("socketpair"))?;
        let pid = rt.exec(&cfg.id, &opts, Some(theirs))?;
        // The process sent the master before it reported ready: it is queued already.
        let io = ours
            .set_nonblocking(true)
            .and_then(|()| sys::recv_master(&ours))
            .and_then(|m| ProcIo::tty(m, want.stdin))
            .map_err(|e| {
                kill_and_reap(pid);
                ShimError::Console(e)
            })?;
        (pid, io)
    } else {
        let (io, child) = ProcIo::pipes(want.stdin, want.stdout, want.stderr)
            .map_err(ShimError::sys("create exec pipes"))?;
        if let Err(e) = child.install(null) {
            stdio::restore(null);
            return Err(ShimError::Sys {
                op: "set up exec stdio",
                source: e,
            });
        }
        let r = rt.exec(&cfg.id, &opts, None);
        stdio::restore(null);
        drop(child);
        (r?, io)
    };
    Ok(Exec {
        id,
        pid,
        io,
        exit: None,
        drain_until: None,
    })
}

fn kill_and_reap(pid: Pid) {
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    let _ = nix::sys::wait::waitpid(pid, None);
}

/// Exit codes of finished execs, oldest dropped first.
#[derive(Debug, Default)]
pub struct Finished(VecDeque<(String, i32)>);

impl Finished {
    pub fn record(&mut self, id: String, code: i32) {
        self.0.retain(|(i, _)| *i != id);
        if self.0.len() >= KEEP_FINISHED {
            self.0.pop_front();
        }
        self.0.push_back((id, code));
    }

    pub fn get(&self, id: &str) -> Option<i32> {
        self.0.iter().find(|(i, _)| i == id).map(|(_, c)| *c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_is_bounded() {
        let mut f = Finished::default();
        for i in 0..100 {
            f.record(format!("e{i}"), i);
        }
        assert_eq!(f.get("e0"), None);
        assert_eq!(f.get("e99"), Some(99));
        assert_eq!(f.get("e36"), Some(36));
        f.record("e99".into(), 1);
        assert_eq!(f.get("e99"), Some(1));
    }
}
