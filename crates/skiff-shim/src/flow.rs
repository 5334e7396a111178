//! The bytes between processes and clients: container output to the log and to attached
//! clients (framed unless it is a terminal), exec output to its client, client input to the
//! container's or an exec's stdin. A client more than [`HIGH_WATER`] behind pauses the reading
//! of what feeds it (as Docker's attach does); a client that vanishes is dropped.

use std::time::SystemTime;

use rustix::event::PollFlags;

use crate::conn::{Conn, RequestRead, Role, HIGH_WATER};
use crate::proto::{MAX_REQUEST, STREAM_STDERR, STREAM_STDOUT};
use crate::shim::{Owner, Shim};
use crate::stdio::{ReadResult, Src};

impl Shim {
    /// Whether a connection's input may be read now (its stdin target is not backed up).
    pub(crate) fn may_read(&self, c: &Conn) -> bool {
        match &c.role {
            Role::Attach { stdin: true, .. } => self.io.input_backlog() < HIGH_WATER,
            Role::Exec {
                exec_id,
                stdin: true,
            } => self
                .execs
                .iter()
                .find(|e| e.id == *exec_id)
                .is_none_or(|e| e.io.input_backlog() < HIGH_WATER),
            Role::Done => false,
            _ => true,
        }
    }

    /// Whether a client that receives this output is too far behind.
    pub(crate) fn output_blocked(&self, owner: Owner) -> bool {
        self.conns
            .iter()
            .any(|c| c.out.len() > HIGH_WATER && !c.dead && self.receives(c, owner))
    }

    fn receives(&self, c: &Conn, owner: Owner) -> bool {
        match (&c.role, owner) {
            (Role::Attach { .. }, Owner::Init) => true,
            (Role::Exec { exec_id, .. }, Owner::Exec(i)) => self.execs[i].id == *exec_id,
            _ => false,
        }
    }

    pub(crate) fn on_output(&mut self, owner: Owner, src: Src) {
        let mut buf = [0u8; 16 * 1024];
        for _ in 0..8 {
            match self.io_of(owner).read(src, &mut buf) {
                ReadResult::Data(n) => self.deliver(owner, src, &buf[..n]),
                ReadResult::Eof | ReadResult::Again => return,
            }
            if self.output_blocked(owner) {
                return;
            }
        }
    }

    /// Container output goes to the log and to attached clients; an exec's to its client.
    fn deliver(&mut self, owner: Owner, src: Src, data: &[u8]) {
        let (tty, exec_id) = match owner {
            Owner::Init => {
                let stream = match src {
                    Src::Stdout => skiff_logs::Stream::Stdout,
                    Src::Stderr => skiff_logs::Stream::Stderr,
                };
                if let Err(e) = self.log.write(stream, data, SystemTime::now()) {
                    if !std::mem::replace(&mut self.log_failed, true) {
                        self.warn(&format!("write log: {e}"));
                    }
                }
                (self.io.tty, None)
            }
            Owner::Exec(i) => (self.execs[i].io.tty, Some(self.execs[i].id.as_str())),
        };
        let stream = match src {
            Src::Stdout => STREAM_STDOUT,
            Src::Stderr => STREAM_STDERR,
        };
        for c in self.conns.iter_mut().filter(|c| !c.dead) {
            let wanted = match (&c.role, exec_id) {
                (Role::Attach { stdout, stderr, .. }, None) => match src {
                    Src::Stdout => *stdout,
                    Src::Stderr => *stderr,
                },
                (Role::Exec { exec_id: e, .. }, Some(id)) => e == id,
                _ => false,
            };
            if wanted {
                if tty {
                    c.out.push(data);
                } else {
                    c.out.push_frame(stream, data);
                }
                c.flush();
            }
        }
    }

    pub(crate) fn on_conn(&mut self, i: usize, rev: PollFlags) {
        if rev.contains(PollFlags::OUT) {
            self.conns[i].flush();
        }
        if rev.intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR) && !self.conns[i].dead {
            if self.conns[i].role == Role::Request {
                self.read_request(i);
            } else {
                self.read_stream(i);
            }
        }
        if rev.intersects(PollFlags::HUP | PollFlags::ERR) {
            // The peer is gone both ways: nothing more can be delivered.
            self.conns[i].dead = true;
        }
    }

    fn read_request(&mut self, i: usize) {
        let mut buf = [0u8; 4096];
        match self.conns[i].read_request(&mut buf) {
            RequestRead::Pending => {}
            RequestRead::Gone => self.conns[i].dead = true,
            RequestRead::TooLong => {
                self.conns[i].fail(format!("request line longer than {} bytes", MAX_REQUEST))
            }
            RequestRead::Line(line, rest) => self.handle_request(i, &line, rest),
        }
    }

    /// Client bytes after the request: stdin for the container or the exec, else dropped.
    fn read_stream(&mut self, i: usize) {
        let mut buf = [0u8; 16 * 1024];
        for _ in 0..8 {
            match self.conns[i].recv(&mut buf) {
                Ok(Some(0)) => {
                    self.conns[i].read_eof = true;
                    self.release_stdin(i);
                    return;
                }
                Ok(Some(n)) => self.forward_stdin(i, &buf[..n]),
                Ok(None) => return,
                Err(_) => {
                    self.conns[i].dead = true;
                    self.release_stdin(i);
                    return;
                }
            }
        }
    }

    pub(crate) fn forward_stdin(&mut self, i: usize, data: &[u8]) {
        match &self.conns[i].role {
            Role::Attach { stdin: true, .. } => self.io.push_input(data),
            Role::Exec {
                exec_id,
                stdin: true,
            } => {
                if let Some(e) = self.execs.iter_mut().find(|e| e.id == *exec_id) {
                    e.io.push_input(data);
                }
            }
            _ => {}
        }
    }

    /// A client that fed stdin is done with it: an exec's stdin is closed; the container's
    /// is closed with `stdin_once`. Never for a terminal (dockerd's rule: a client that
    /// detaches or goes away leaves a tty session running).
    pub(crate) fn release_stdin(&mut self, i: usize) {
        match &mut self.conns[i].role {
            Role::Attach { stdin, .. } if *stdin => {
                *stdin = false;
                if self.cfg.stdin_once && !self.io.tty {
                    self.io.close_input_when_flushed();
                }
            }
            Role::Exec { exec_id, stdin } if *stdin => {
                *stdin = false;
                let id = exec_id.clone();
                if let Some(e) = self.execs.iter_mut().find(|e| e.id == id) {
                    if !e.io.tty {
                        e.io.close_input_when_flushed();
                    }
                }
            }
            _ => {}
        }
    }
}
