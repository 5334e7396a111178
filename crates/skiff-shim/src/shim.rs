//! The event loop: one thread, poll(2) over the signalfd, the control socket, the container's
//! and the execs' stdio, and the connections (the bytes themselves are moved in `flow`);
//! reaping, exec completion, and the container's end.

use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use rustix::event::{PollFd, PollFlags, Timespec};

use crate::conn::{Conn, Role};
use crate::exec::{Exec, Finished};
use crate::exit;
use crate::proto::{ExecExit, ExitRecord, ShimConfig};
use crate::stdio::{ProcIo, Src};
use crate::sys;

/// How long output is drained after a process exits when something else holds its pipes.
const DRAIN: Duration = Duration::from_secs(2);
/// How long the shim keeps serving after the exit record (remaining output, late clients).
const FINISH: Duration = Duration::from_secs(5);
/// Connections beyond this are closed on accept.
const MAX_CONNS: usize = 1024;

/// Whose stdio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    Init,
    Exec(usize),
}

#[derive(Debug, Clone, Copy)]
enum Token {
    Signal,
    Listener,
    Out(Owner, Src),
    In(Owner),
    Conn(usize),
}

/// How the container's init ended.
#[derive(Debug, Clone)]
pub(crate) struct Exited {
    pub code: i32,
    pub signal: Option<i32>,
    pub at: String,
}

/// The running shim.
pub struct Shim {
    pub(crate) cfg: ShimConfig,
    pub(crate) pid: i32,
    pub(crate) io: ProcIo,
    pub(crate) log: skiff_logs::Writer,
    pub(crate) listener: OwnedFd,
    pub(crate) sigfd: SignalFd,
    pub(crate) null: OwnedFd,
    pub(crate) diag: Option<File>,
    pub(crate) conns: Vec<Conn>,
    pub(crate) execs: Vec<Exec>,
    pub(crate) finished: Finished,
    pub(crate) exited: Option<Exited>,
    /// The container's process has been let run (always, without `start_on_request`).
    pub(crate) started: bool,
    pub(crate) drain_until: Option<Instant>,
    pub(crate) record: Option<ExitRecord>,
    pub(crate) finish_until: Option<Instant>,
    /// Something deep ran (an exec): give memory back after this iteration.
    pub(crate) heavy: bool,
    pub(crate) log_failed: bool,
}

impl Shim {
    /// Serve until the container has exited and its clients are done. Returns the exit code
    /// of the shim.
    pub fn run(mut self) -> i32 {
        let mut unlinked = false;
        loop {
            self.housekeeping();
            let late = self.finish_until.is_some_and(|t| Instant::now() >= t);
            if self.record.is_some() && (self.conns.is_empty() || late) {
                if late || unlinked {
                    break;
                }
                // No new client can find the socket now; serve those already queued on it.
                let _ = std::fs::remove_file(&self.cfg.socket);
                unlinked = true;
                self.accept();
                continue;
            }
            if let Err(e) = self.poll_once() {
                self.warn(&format!("poll: {e}"));
                std::thread::sleep(Duration::from_millis(10));
            }
            if std::mem::take(&mut self.heavy) {
                sys::trim_heap();
                sys::trim_stack();
            }
        }
        if !unlinked {
            let _ = std::fs::remove_file(&self.cfg.socket);
        }
        0
    }

    fn poll_once(&mut self) -> std::io::Result<()> {
        let mut tokens = vec![Token::Signal, Token::Listener];
        let mut fds = vec![
            PollFd::new(&self.sigfd, PollFlags::IN),
            PollFd::new(&self.listener, PollFlags::IN),
        ];
        let owners = std::iter::once((Owner::Init, &self.io)).chain(
            self.execs
                .iter()
                .enumerate()
                .map(|(i, e)| (Owner::Exec(i), &e.io)),
        );
        for (owner, io) in owners {
            if !self.output_blocked(owner) {
                for (src, fd) in [(Src::Stdout, &io.out), (Src::Stderr, &io.err)] {
                    if let Some(fd) = fd {
                        tokens.push(Token::Out(owner, src));
                        fds.push(PollFd::new(fd, PollFlags::IN));
                    }
                }
            }
            if let (true, Some(fd)) = (io.wants_input_write(), &io.input) {
                tokens.push(Token::In(owner));
                fds.push(PollFd::new(fd, PollFlags::OUT));
            }
        }
        for (i, c) in self.conns.iter().enumerate() {
            if c.dead {
                continue;
            }
            let mut ev = PollFlags::empty();
            if !c.read_eof && self.may_read(c) {
                ev |= PollFlags::IN;
            }
            if !c.out.is_empty() {
                ev |= PollFlags::OUT;
            }
            tokens.push(Token::Conn(i));
            fds.push(PollFd::new(&c.sock, ev));
        }
        let timeout = self.next_deadline().map(|t| {
            let d = t.saturating_duration_since(Instant::now());
            Timespec {
                tv_sec: d.as_secs() as _,
                tv_nsec: d.subsec_nanos() as _,
            }
        });
        match rustix::event::poll(&mut fds, timeout.as_ref()) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
        let ready: Vec<(Token, PollFlags)> = tokens
            .into_iter()
            .zip(fds.iter().map(PollFd::revents))
            .filter(|(_, r)| !r.is_empty())
            .collect();
        drop(fds);
        for (token, rev) in ready {
            match token {
                Token::Signal => {
                    if sys::drain_signals(&self.sigfd) {
                        self.reap();
                    }
                }
                Token::Listener => self.accept(),
                Token::Out(owner, src) => self.on_output(owner, src),
                Token::In(owner) => self.io_of(owner).flush_input(),
                Token::Conn(i) => self.on_conn(i, rev),
            }
        }
        Ok(())
    }

    fn next_deadline(&self) -> Option<Instant> {
        let mut all = vec![self.finish_until];
        if self.record.is_none() {
            all.push(self.drain_until);
        }
        all.extend(self.execs.iter().map(|e| e.drain_until));
        all.into_iter().flatten().min()
    }

    pub(crate) fn io_of(&mut self, owner: Owner) -> &mut ProcIo {
        match owner {
            Owner::Init => &mut self.io,
            Owner::Exec(i) => &mut self.execs[i].io,
        }
    }

    fn reap(&mut self) {
        loop {
            let ws = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(ws) => ws,
            };
            let Some((pid, code, signal)) = exit::decode(ws) else {
                continue;
            };
            let until = Some(Instant::now() + DRAIN);
            if pid == self.pid && self.exited.is_none() {
                self.exited = Some(Exited {
                    code,
                    signal,
                    at: exit::now_rfc3339(),
                });
                self.drain_until = until;
            } else if let Some(e) = self.execs.iter_mut().find(|e| e.pid.as_raw() == pid) {
                e.exit = Some(code);
                e.drain_until = until;
            }
        }
    }

    fn accept(&mut self) {
        loop {
            let flags = rustix::net::SocketFlags::NONBLOCK | rustix::net::SocketFlags::CLOEXEC;
            match rustix::net::accept_with(&self.listener, flags) {
                Ok(sock) if self.conns.len() < MAX_CONNS => self.conns.push(Conn::new(sock)),
                Ok(_) => {}
                Err(rustix::io::Errno::INTR | rustix::io::Errno::CONNABORTED) => {}
                Err(_) => return,
            }
        }
    }

    fn housekeeping(&mut self) {
        let now = Instant::now();
        let mut i = 0;
        while i < self.execs.len() {
            let e = &self.execs[i];
            let drained = e.io.output_done() || e.drain_until.is_some_and(|t| now >= t);
            match e.exit {
                Some(code) if drained => {
                    let e = self.execs.remove(i);
                    self.exec_done(e.id, code);
                }
                _ => i += 1,
            }
        }
        if self.record.is_none()
            && self.exited.is_some()
            && (self.io.output_done() || self.drain_until.is_some_and(|t| now >= t))
        {
            self.finalize();
        }
        let had = !self.conns.is_empty();
        for c in self.conns.iter_mut().filter(|c| c.closing) {
            c.flush();
        }
        let mut i = 0;
        while i < self.conns.len() {
            if self.conns[i].dead {
                self.release_stdin(i);
                self.conns.swap_remove(i);
            } else {
                i += 1;
            }
        }
        if had && self.conns.is_empty() {
            sys::trim_heap();
        }
    }

    fn exec_done(&mut self, id: String, code: i32) {
        for c in self.conns.iter_mut() {
            match &c.role {
                Role::Exec { exec_id, .. } if *exec_id == id => c.closing = true,
                Role::ExecWait(w) if *w == id => {
                    c.reply(&ExecExit { exit_code: code });
                    c.role = Role::Done;
                    c.closing = true;
                }
                _ => {}
            }
        }
        self.finished.record(id, code);
    }

    /// The init has exited and its output is drained: log flushed, runtime state released,
    /// exit record written, waits answered, attach streams closed.
    fn finalize(&mut self) {
        let Some(ex) = self.exited.clone() else {
            return;
        };
        if let Err(e) = self.log.flush() {
            self.warn(&format!("flush log: {e}"));
        }
        self.io = ProcIo::default();
        let (oom_killed, err) = exit::release(&self.cfg.runtime_root, &self.cfg.id);
        if let Some(e) = err {
            self.warn(&e);
        }
        let rec = ExitRecord {
            exit_code: ex.code,
            signal: ex.signal,
            oom_killed,
            finished_at: ex.at,
        };
        if let Err(e) = exit::write_record(&self.cfg.exit_file, &rec) {
            let msg = format!("write exit record {}: {e}", self.cfg.exit_file.display());
            self.warn(&msg);
        }
        for c in self.conns.iter_mut() {
            match c.role {
                Role::Wait => {
                    c.reply(&rec);
                    c.role = Role::Done;
                    c.closing = true;
                }
                Role::Attach { .. } => c.closing = true,
                _ => {}
            }
        }
        self.record = Some(rec);
        self.finish_until = Some(Instant::now() + FINISH);
        self.heavy = true;
    }

    /// A diagnostic line on the shim's stderr file (when the daemon gave it one).
    pub(crate) fn warn(&mut self, msg: &str) {
        if let Some(f) = self.diag.as_mut() {
            let _ = writeln!(f, "skiff-shim {}: {msg}", self.cfg.id);
        }
    }
}
