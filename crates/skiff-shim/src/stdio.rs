//! The stdio of a process the shim runs (the container's init or an exec): the shim's ends of
//! its pipes, or its pty master, with the bytes waiting to go to its stdin.
//!
//! The runtime forks the process from the shim, so a process without a terminal inherits the
//! shim's descriptors 0, 1 and 2: [`ChildStdio::install`] puts the process's ends there for the
//! duration of the runtime call and [`restore`] puts /dev/null back.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::sys;

/// Which output of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Src {
    Stdout,
    Stderr,
}

/// Result of one read of an output.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadResult {
    Data(usize),
    /// Nothing more will come (the descriptor is dropped).
    Eof,
    /// Nothing now.
    Again,
}

/// The shim's side of a process's stdio.
#[derive(Debug, Default)]
pub struct ProcIo {
    /// Output is a terminal (one stream, raw bytes).
    pub tty: bool,
    /// Stdout pipe's read end, or the pty master; None once at end-of-file.
    pub out: Option<OwnedFd>,
    /// Stderr pipe's read end; None with a tty or at end-of-file.
    pub err: Option<OwnedFd>,
    /// Stdin pipe's write end, or a duplicate of the pty master; None when closed.
    pub input: Option<OwnedFd>,
    /// The pty master, for window sizes.
    pub master: Option<OwnedFd>,
    pending: Vec<u8>,
    close_input: bool,
}

/// The process's ends of its pipes, installed on 0/1/2 while the runtime forks it.
#[derive(Debug, Default)]
pub struct ChildStdio {
    stdin: Option<OwnedFd>,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
}

impl ChildStdio {
    /// Make 0, 1 and 2 the process's ends (/dev/null where it has none).
    pub fn install(&self, null: &OwnedFd) -> io::Result<()> {
        fn or<'a>(f: &'a Option<OwnedFd>, null: &'a OwnedFd) -> BorrowedFd<'a> {
            f.as_ref().unwrap_or(null).as_fd()
        }
        sys::install_stdio(
            or(&self.stdin, null),
            or(&self.stdout, null),
            or(&self.stderr, null),
        )
    }
}

/// Put /dev/null back on 0, 1 and 2.
pub fn restore(null: &OwnedFd) {
    let _ = sys::install_stdio(null.as_fd(), null.as_fd(), null.as_fd());
}

impl ProcIo {
    /// Pipes for the requested streams (the others are /dev/null for the process).
    pub fn pipes(stdin: bool, stdout: bool, stderr: bool) -> io::Result<(ProcIo, ChildStdio)> {
        let mut io = ProcIo::default();
        let mut child = ChildStdio::default();
        if stdin {
            let (r, w) = sys::pipe()?;
            sys::set_nonblocking(&w)?;
            io.input = Some(w);
            child.stdin = Some(r);
        }
        if stdout {
            let (r, w) = sys::pipe()?;
            sys::set_nonblocking(&r)?;
            io.out = Some(r);
            child.stdout = Some(w);
        }
        if stderr {
            let (r, w) = sys::pipe()?;
            sys::set_nonblocking(&r)?;
            io.err = Some(r);
            child.stderr = Some(w);
        }
        Ok((io, child))
    }

    /// A terminal: output and (if `stdin`) input both go through the master.
    pub fn tty(master: OwnedFd, stdin: bool) -> io::Result<ProcIo> {
        sys::set_nonblocking(&master)?;
        Ok(ProcIo {
            tty: true,
            out: Some(sys::dup_cloexec(&master)?),
            input: if stdin {
                Some(sys::dup_cloexec(&master)?)
            } else {
                None
            },
            master: Some(master),
            ..ProcIo::default()
        })
    }

    fn slot(&mut self, src: Src) -> &mut Option<OwnedFd> {
        match src {
            Src::Stdout => &mut self.out,
            Src::Stderr => &mut self.err,
        }
    }

    /// Read some output. A pty master reads EIO once no process holds the terminal: that is
    /// end-of-file too.
    pub fn read(&mut self, src: Src, buf: &mut [u8]) -> ReadResult {
        let slot = self.slot(src);
        let Some(fd) = slot.as_ref() else {
            return ReadResult::Eof;
        };
        loop {
            match rustix::io::read(fd, &mut *buf) {
                Ok(0) => break,
                Ok(n) => return ReadResult::Data(n),
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::AGAIN) => return ReadResult::Again,
                Err(_) => break,
            }
        }
        *slot = None;
        ReadResult::Eof
    }

    /// Bytes accepted for stdin but not written yet.
    pub fn input_backlog(&self) -> usize {
        self.pending.len()
    }

    /// Queue bytes for stdin and write what the pipe takes now.
    pub fn push_input(&mut self, data: &[u8]) {
        if self.input.is_some() && !self.close_input {
            self.pending.extend_from_slice(data);
            self.flush_input();
        }
    }

    /// Close stdin once what is queued has been written (end-of-file for the process).
    pub fn close_input_when_flushed(&mut self) {
        self.close_input = true;
        self.flush_input();
    }

    /// Whether stdin has bytes waiting for the pipe to take them.
    pub fn wants_input_write(&self) -> bool {
        self.input.is_some() && !self.pending.is_empty()
    }

    /// Write queued stdin bytes; a process that closed its stdin drops them.
    pub fn flush_input(&mut self) {
        let Some(fd) = self.input.as_ref() else {
            self.pending = Vec::new();
            return;
        };
        let mut done = 0;
        let mut broken = false;
        while done < self.pending.len() {
            match rustix::io::write(fd, &self.pending[done..]) {
                Ok(n) => done += n,
                Err(rustix::io::Errno::INTR) => {}
                Err(rustix::io::Errno::AGAIN) => break,
                Err(_) => {
                    broken = true;
                    break;
                }
            }
        }
        self.pending.drain(..done);
        if broken {
            self.pending = Vec::new();
            self.input = None;
        } else if self.pending.is_empty() {
            self.pending = Vec::new();
            if self.close_input {
                self.input = None;
            }
        }
    }

    /// Every output has reached end-of-file.
    pub fn output_done(&self) -> bool {
        self.out.is_none() && self.err.is_none()
    }

    /// Set the terminal's size.
    pub fn resize(&self, height: u16, width: u16) -> Result<(), String> {
        let master = self.master.as_ref().ok_or("the process has no terminal")?;
        sys::set_winsize(master, height, width).map_err(|e| format!("set terminal size: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipes_round_trip_and_eof() {
        let (mut io, child) = ProcIo::pipes(true, true, false).unwrap();
        assert!(io.err.is_none());
        io.push_input(b"abc");
        let mut buf = [0u8; 8];
        let n = rustix::io::read(child.stdin.as_ref().unwrap(), &mut buf).unwrap();
        assert_eq!(&buf[..n], b"abc");
        rustix::io::write(child.stdout.as_ref().unwrap(), b"out").unwrap();
        assert_eq!(io.read(Src::Stdout, &mut buf), ReadResult::Data(3));
        assert_eq!(io.read(Src::Stdout, &mut buf), ReadResult::Again);
        io.close_input_when_flushed();
        assert!(io.input.is_none());
        let ChildStdio { stdin, stdout, .. } = child;
        drop(stdout);
        assert_eq!(io.read(Src::Stdout, &mut buf), ReadResult::Eof);
        assert!(io.output_done());
        assert_eq!(
            rustix::io::read(stdin.as_ref().unwrap(), &mut buf).unwrap(),
            0
        );
    }

    #[test]
    fn writing_to_a_closed_stdin_drops_it() {
        let (mut io, child) = ProcIo::pipes(true, false, false).unwrap();
        drop(child);
        io.push_input(b"x");
        assert!(io.input.is_none());
        assert_eq!(io.input_backlog(), 0);
        assert!(io.resize(1, 1).is_err());
    }
}
