//! The channel between the runtime and the processes it forks (init, intermediate, exec).
//!
//! A `SOCK_SEQPACKET` socketpair: each message is one JSON-encoded [`Msg`] in one packet, so
//! message boundaries are kept and a dead peer reads as end-of-file. The socket also carries
//! file descriptors (the pty master) with `SCM_RIGHTS` where needed.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use serde::{Deserialize, Serialize};

use crate::error::{errno, Result, RuntimeError};

/// A message between the runtime (parent) and a child it forked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Msg {
    /// parent → child: cgroup, id maps, rlimits are in place; go on.
    Go,
    /// parent → init: as `Go`, with the init's pid as the runtime sees it (for hook states).
    GoInit(i32),
    /// child → parent: mounts are done, run prestart/createRuntime hooks now.
    RunHooks,
    /// parent → child: hooks ran.
    HooksDone,
    /// child → parent: everything is set up; waiting for start.
    Ready,
    /// parent → child (run, exec): exec the process now.
    Start,
    /// child → parent: the seccomp notify listener (the descriptor rides along), for the agent
    /// at the profile's listenerPath.
    SeccompFd,
    /// intermediate → parent: the pid of the process it forked.
    Pid(i32),
    /// child → parent: setup failed.
    Error(String),
}

/// One end of the channel.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

impl Channel {
    /// A connected pair (parent end, child end). Both are close-on-exec.
    pub fn pair() -> Result<(Channel, Channel)> {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| RuntimeError::sys("socketpair", errno(e)))?;
        Ok((Channel { fd: a }, Channel { fd: b }))
    }

    pub fn from_fd(fd: OwnedFd) -> Self {
        Channel { fd }
    }

    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn send(&self, msg: &Msg) -> Result<()> {
        self.send_with_fd(msg, None)
    }

    /// Send a message, optionally with a file descriptor attached.
    pub fn send_with_fd(&self, msg: &Msg, fd: Option<RawFd>) -> Result<()> {
        let data = serde_json::to_vec(msg).expect("messages always serialize");
        let iov = [IoSlice::new(&data)];
        let fds;
        let cmsgs: Vec<ControlMessage> = match fd {
            Some(f) => {
                fds = [f];
                vec![ControlMessage::ScmRights(&fds)]
            }
            None => vec![],
        };
        sendmsg::<()>(
            self.fd.as_raw_fd(),
            &iov,
            &cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map_err(|e| RuntimeError::sys("send to container process", errno(e)))?;
        Ok(())
    }

    /// Receive one message; `None` when the peer is gone.
    pub fn recv(&self) -> Result<Option<Msg>> {
        Ok(self.recv_with_fd()?.map(|(m, _)| m))
    }

    /// Receive one message and the file descriptor attached to it, if any.
    pub fn recv_with_fd(&self) -> Result<Option<(Msg, Option<OwnedFd>)>> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut cmsg = nix::cmsg_space!([RawFd; 1]);
        let (n, fd) = loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            match recvmsg::<()>(
                self.fd.as_fd().as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(r) => {
                    let mut fd = None;
                    for c in r
                        .cmsgs()
                        .map_err(|e| RuntimeError::sys("recvmsg", errno(e)))?
                    {
                        if let ControlMessageOwned::ScmRights(fds) = c {
                            for f in fds {
                                // SAFETY: the kernel just installed this descriptor in our
                                // table for us (SCM_RIGHTS); nothing else owns it.
                                let owned =
                                    unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(f) };
                                fd.get_or_insert(owned);
                            }
                        }
                    }
                    break (r.bytes, fd);
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(nix::errno::Errno::ECONNRESET) => return Ok(None),
                Err(e) => {
                    return Err(RuntimeError::sys(
                        "receive from container process",
                        errno(e),
                    ))
                }
            }
        };
        if n == 0 {
            return Ok(None);
        }
        let msg = serde_json::from_slice(&buf[..n])
            .map_err(|e| RuntimeError::Init(format!("bad message from container process: {e}")))?;
        Ok(Some((msg, fd)))
    }

    /// Receive and require a specific message; errors reported by the child are returned.
    pub fn expect(&self, want: &Msg, what: &str) -> Result<()> {
        match self.recv()? {
            Some(m) if &m == want => Ok(()),
            Some(Msg::Error(e)) => Err(RuntimeError::Init(e)),
            Some(other) => Err(RuntimeError::Init(format!(
                "{what}: unexpected message {other:?}"
            ))),
            None => Err(RuntimeError::Init(format!(
                "{what}: the container process exited before it was set up"
            ))),
        }
    }
}

impl AsFd for Channel {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
