//! One control-socket connection: the request line it sends, the role it takes after the
//! reply (an attach or exec stream, a pending wait), and the bytes queued for it.
//!
//! Sockets are non-blocking; a client that goes away (EPIPE, ECONNRESET, hang-up) is dropped
//! without affecting anything else.

use std::io;
use std::os::fd::OwnedFd;

use serde::Serialize;

use crate::proto::{self, ErrorReply, MAX_REQUEST};

/// Past this many queued bytes the shim stops reading what feeds a connection (backpressure).
pub const HIGH_WATER: usize = 1024 * 1024;

/// Bytes waiting to be written to a socket.
#[derive(Debug, Default)]
pub struct OutQueue {
    buf: Vec<u8>,
    pos: usize,
}

impl OutQueue {
    pub fn len(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// A multiplexed frame (header + payload).
    pub fn push_frame(&mut self, stream: u8, data: &[u8]) {
        for chunk in data.chunks(u32::MAX as usize) {
            self.buf
                .extend_from_slice(&proto::frame_header(stream, chunk.len() as u32));
            self.buf.extend_from_slice(chunk);
        }
    }

    /// Write what the socket takes now; an error means the peer is gone.
    pub fn flush(&mut self, fd: &OwnedFd) -> io::Result<()> {
        while self.pos < self.buf.len() {
            match rustix::net::send(fd, &self.buf[self.pos..], rustix::net::SendFlags::NOSIGNAL) {
                Ok(n) => self.pos += n,
                Err(rustix::io::Errno::INTR) => {}
                Err(rustix::io::Errno::AGAIN) => break,
                Err(e) => return Err(e.into()),
            }
        }
        if self.pos == self.buf.len() {
            // Idle connections hold no buffer.
            self.buf = Vec::new();
            self.pos = 0;
        } else if self.pos > 64 * 1024 && self.pos * 2 > self.buf.len() {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        Ok(())
    }
}

/// What a connection is, once its request has been read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Reading the request line.
    Request,
    /// Streaming the container's stdio.
    Attach {
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
    /// Waiting for the container to exit.
    Wait,
    /// Streaming an exec's stdio (output is whatever the exec was started with).
    Exec { exec_id: String, stdin: bool },
    /// Waiting for an exec to exit.
    ExecWait(String),
    /// Replied; closed once the reply is written.
    Done,
}

/// Outcome of reading the request line.
#[derive(Debug, PartialEq, Eq)]
pub enum RequestRead {
    /// Not complete yet.
    Pending,
    /// The line (without its newline) and the bytes that followed it.
    Line(Vec<u8>, Vec<u8>),
    /// The peer is gone before sending anything useful.
    Gone,
    /// Longer than [`MAX_REQUEST`].
    TooLong,
}

/// A control connection.
#[derive(Debug)]
pub struct Conn {
    pub sock: OwnedFd,
    pub role: Role,
    pub out: OutQueue,
    /// The peer shut down its write side.
    pub read_eof: bool,
    /// Close as soon as the queue is written.
    pub closing: bool,
    /// Drop at the end of this loop iteration.
    pub dead: bool,
    req: Vec<u8>,
}

impl Conn {
    pub fn new(sock: OwnedFd) -> Conn {
        Conn {
            sock,
            role: Role::Request,
            out: OutQueue::default(),
            read_eof: false,
            closing: false,
            dead: false,
            req: Vec::new(),
        }
    }

    /// Read towards the request line. A peer that shuts its write side right after a request
    /// without a newline is still served.
    pub fn read_request(&mut self, buf: &mut [u8]) -> RequestRead {
        loop {
            match self.recv(buf) {
                Ok(Some(0)) => {
                    self.read_eof = true;
                    if self.req.iter().all(u8::is_ascii_whitespace) {
                        return RequestRead::Gone;
                    }
                    return RequestRead::Line(std::mem::take(&mut self.req), Vec::new());
                }
                Ok(Some(n)) => {
                    let start = self.req.len();
                    self.req.extend_from_slice(&buf[..n]);
                    if let Some(i) = self.req[start..].iter().position(|&b| b == b'\n') {
                        let mut line = std::mem::take(&mut self.req);
                        let rest = line.split_off(start + i + 1);
                        line.pop();
                        return RequestRead::Line(line, rest);
                    }
                    if self.req.len() > MAX_REQUEST {
                        return RequestRead::TooLong;
                    }
                }
                Ok(None) => return RequestRead::Pending,
                Err(_) => return RequestRead::Gone,
            }
        }
    }

    /// One read: Some(0) at end-of-file, None when nothing is there now.
    pub fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        loop {
            match rustix::io::read(&self.sock, &mut *buf) {
                Ok(n) => return Ok(Some(n)),
                Err(rustix::io::Errno::INTR) => {}
                Err(rustix::io::Errno::AGAIN) => return Ok(None),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Queue one reply line.
    pub fn reply<T: Serialize>(&mut self, v: &T) {
        let mut line = serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec());
        line.push(b'\n');
        self.out.push(&line);
    }

    /// Reply an error and close.
    pub fn fail(&mut self, error: impl Into<String>) {
        self.reply(&ErrorReply {
            error: error.into(),
        });
        self.role = Role::Done;
        self.closing = true;
    }

    /// Write what is queued; drop the connection on error or once a closing one is done.
    pub fn flush(&mut self) {
        if self.dead {
            return;
        }
        if self.out.flush(&self.sock).is_err() {
            self.dead = true;
        } else if self.closing && self.out.is_empty() {
            let _ = rustix::net::shutdown(&self.sock, rustix::net::Shutdown::Both);
            self.dead = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    fn pair() -> (Conn, UnixStream) {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        (Conn::new(OwnedFd::from(a)), b)
    }

    #[test]
    fn request_line_and_rest() {
        let (mut c, mut peer) = pair();
        let mut buf = [0u8; 16];
        assert_eq!(c.read_request(&mut buf), RequestRead::Pending);
        peer.write_all(b"{\"op\":\"attach\"").unwrap();
        assert_eq!(c.read_request(&mut buf), RequestRead::Pending);
        peer.write_all(b"}\nhello").unwrap();
        assert_eq!(
            c.read_request(&mut buf),
            RequestRead::Line(b"{\"op\":\"attach\"}".to_vec(), b"hello".to_vec())
        );
    }

    #[test]
    fn request_without_newline_then_eof() {
        let (mut c, mut peer) = pair();
        peer.write_all(b"{\"op\":\"wait\"}").unwrap();
        peer.shutdown(std::net::Shutdown::Write).unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(
            c.read_request(&mut buf),
            RequestRead::Line(b"{\"op\":\"wait\"}".to_vec(), vec![])
        );
        assert!(c.read_eof);
        let (mut c, peer) = pair();
        drop(peer);
        assert_eq!(c.read_request(&mut buf), RequestRead::Gone);
    }

    #[test]
    fn too_long() {
        let (mut c, mut peer) = pair();
        let chunk = vec![b'x'; 64 * 1024];
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = RequestRead::Pending;
        let t = std::thread::spawn(move || {
            for _ in 0..20 {
                if peer.write_all(&chunk).is_err() {
                    break;
                }
            }
        });
        for _ in 0..10_000 {
            got = c.read_request(&mut buf);
            if got != RequestRead::Pending {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(got, RequestRead::TooLong);
        drop(c);
        t.join().unwrap();
    }

    #[test]
    fn frames_and_reply_then_close() {
        let (mut c, mut peer) = pair();
        c.out.push_frame(proto::STREAM_STDERR, b"ab");
        c.fail("bad");
        c.flush();
        assert!(c.dead);
        let mut got = Vec::new();
        peer.read_to_end(&mut got).unwrap();
        assert_eq!(&got[..10], &[2, 0, 0, 0, 0, 0, 0, 2, b'a', b'b']);
        assert_eq!(&got[10..], b"{\"error\":\"bad\"}\n");
    }

    #[test]
    fn vanished_peer_is_dead() {
        let (mut c, peer) = pair();
        drop(peer);
        c.out.push(b"x");
        c.flush();
        assert!(c.dead);
    }
}
