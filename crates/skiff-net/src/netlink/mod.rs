//! A small synchronous rtnetlink client: just the link, address and route messages that
//! bridge networking needs (see [`ops`]).
//!
//! Why not rtnetlink 0.24 + netlink-packet-route 0.34: they are async (netlink-proto on
//! tokio) while every call here happens on a blocking path, often on a short-lived thread
//! that has `setns`ed into a container's namespace; a netlink socket is bound to the
//! namespace of the thread that created it, which is all the namespace handling a plain
//! synchronous socket needs. The messages used are a dozen fixed layouts; written by hand
//! they cost ~400 lines, no unsafe (rustix's netlink sockets) and keep the daemon's binary
//! and idle memory small. Replies are parsed with bounds checks throughout.

pub(crate) mod msg;
pub mod ops;

use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::net::{
    bind, netlink, recv, send, socket_with, AddressFamily, RecvFlags, SendFlags, SocketFlags,
    SocketType,
};

use msg::MsgBuilder;
pub use ops::{check_ifname, LinkChange, LinkInfo, Route};

/// Netlink failures, naming the operation ("create bridge skiff0: File exists").
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("netlink socket: {0}")]
    Socket(#[source] io::Error),
    #[error("{op}: {source}")]
    Op {
        op: String,
        #[source]
        source: io::Error,
    },
    #[error("{op}: malformed netlink reply")]
    Malformed { op: String },
    #[error("interface name {0:?}: must be 1 to 15 bytes, no '/', ':' or whitespace")]
    BadName(String),
    #[error("{0}")]
    Netns(#[from] crate::netns::NetnsError),
}

impl NetlinkError {
    /// The errno of a failed operation, if it is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetlinkError::Op { source, .. } | NetlinkError::Socket(source) => source.raw_os_error(),
            _ => None,
        }
    }
}

// Message types and flags (linux/netlink.h, linux/rtnetlink.h).
pub(crate) const NLMSG_ERROR: u16 = 2;
pub(crate) const NLMSG_DONE: u16 = 3;
pub(crate) const NLM_F_REQUEST: u16 = 0x1;
pub(crate) const NLM_F_MULTI: u16 = 0x2;
pub(crate) const NLM_F_ACK: u16 = 0x4;
pub(crate) const NLM_F_DUMP: u16 = 0x300;
pub(crate) const NLM_F_EXCL: u16 = 0x200;
pub(crate) const NLM_F_CREATE: u16 = 0x400;

/// One request of [`Netlink::request_batch`].
pub struct BatchRequest {
    pub(crate) msg: MsgBuilder,
    pub(crate) flags: u16,
    /// What it does, for the error ("add address …").
    pub(crate) op: String,
    /// Errnos that count as success (EEXIST for an address already there).
    pub(crate) ok: Vec<i32>,
}

/// Called with each reply message's type and payload.
pub(crate) type EachMsg<'a> = dyn FnMut(u16, &[u8]) -> Result<(), NetlinkError> + 'a;

/// A NETLINK_ROUTE socket in the network namespace it was opened in.
pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

impl Netlink {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open() -> Result<Self, NetlinkError> {
        let fd = socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            SocketFlags::CLOEXEC,
            None, // NETLINK_ROUTE is protocol 0
        )
        .map_err(|e| NetlinkError::Socket(e.into()))?;
        bind(&fd, &netlink::SocketAddrNetlink::new(0, 0))
            .map_err(|e| NetlinkError::Socket(e.into()))?;
        Ok(Netlink {
            fd,
            seq: 1,
            buf: vec![0; 64 * 1024],
        })
    }

    /// Opens a socket inside the network namespace `netns` (a `/proc/PID/ns/net` path or a
    /// bind-mounted netns file), from a short-lived thread: the caller's namespace is untouched.
    pub fn open_in(netns: &Path) -> Result<Self, NetlinkError> {
        crate::netns::run_in(netns, Netlink::open)?
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn send_msg(
        &mut self,
        mut m: MsgBuilder,
        flags: u16,
        op: &dyn Fn() -> String,
    ) -> Result<u32, NetlinkError> {
        let seq = self.next_seq();
        let bytes = m.finish(flags | NLM_F_REQUEST, seq);
        let n = send(&self.fd, bytes, SendFlags::empty()).map_err(|e| NetlinkError::Op {
            op: op(),
            source: e.into(),
        })?;
        if n != bytes.len() {
            return Err(NetlinkError::Malformed { op: op() });
        }
        Ok(seq)
    }

    /// Sends a request and waits for its acknowledgement.
    pub fn request(
        &mut self,
        m: MsgBuilder,
        flags: u16,
        op: &dyn Fn() -> String,
    ) -> Result<(), NetlinkError> {
        let seq = self.send_msg(m, flags | NLM_F_ACK, op)?;
        self.receive(seq, op, &mut |_, _| Ok(())).map(|_| ())
    }

    /// Sends several requests in one `sendmsg` (one datagram, each with its own ack) and
    /// waits for every acknowledgement: one system call and one wake-up instead of one per
    /// request. The kernel runs them in order; a failure does not stop the ones after it.
    /// Returns the first failure (errnos in the request's `ok` list count as success).
    pub fn request_batch(&mut self, reqs: Vec<BatchRequest>) -> Result<(), NetlinkError> {
        let mut bytes = Vec::new();
        let mut pending = Vec::with_capacity(reqs.len());
        for mut r in reqs {
            let seq = self.next_seq();
            bytes.extend_from_slice(r.msg.finish(r.flags | NLM_F_REQUEST | NLM_F_ACK, seq));
            bytes.resize((bytes.len() + 3) & !3, 0);
            pending.push((seq, r.op, r.ok, None::<NetlinkError>, false));
        }
        let op0 = pending.first().map(|p| p.1.clone()).unwrap_or_default();
        let n = send(&self.fd, &bytes, SendFlags::empty()).map_err(|e| NetlinkError::Op {
            op: op0.clone(),
            source: e.into(),
        })?;
        if n != bytes.len() {
            return Err(NetlinkError::Malformed { op: op0 });
        }
        while pending.iter().any(|p| !p.4) {
            let (_, n) = recv(&self.fd, &mut self.buf[..], RecvFlags::empty()).map_err(|e| {
                NetlinkError::Op {
                    op: op0.clone(),
                    source: e.into(),
                }
            })?;
            if n > self.buf.len() {
                return Err(NetlinkError::Malformed { op: op0 });
            }
            for (hdr, payload) in msg::messages(&self.buf[..n])
                .map_err(|_| NetlinkError::Malformed { op: op0.clone() })?
            {
                let Some(p) = pending.iter_mut().find(|p| p.0 == hdr.seq) else {
                    continue;
                };
                if hdr.ty != NLMSG_ERROR {
                    continue;
                }
                let code = payload
                    .get(..4)
                    .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                    .ok_or_else(|| NetlinkError::Malformed { op: p.1.clone() })?;
                if code != 0 && !p.2.contains(&-code) {
                    p.3 = Some(NetlinkError::Op {
                        op: p.1.clone(),
                        source: io::Error::from_raw_os_error(-code),
                    });
                }
                p.4 = true;
            }
        }
        match pending.into_iter().find_map(|p| p.3) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Sends a request whose answer is one message (a GET by name), returned with its type.
    pub fn get(
        &mut self,
        m: MsgBuilder,
        op: &dyn Fn() -> String,
    ) -> Result<(u16, Vec<u8>), NetlinkError> {
        let seq = self.send_msg(m, 0, op)?;
        let mut out = None;
        self.receive(seq, op, &mut |ty, payload| {
            out.get_or_insert_with(|| (ty, payload.to_vec()));
            Ok(())
        })?;
        out.ok_or_else(|| NetlinkError::Malformed { op: op() })
    }

    /// Sends a dump request; `each` sees every message payload until NLMSG_DONE.
    pub fn dump(
        &mut self,
        m: MsgBuilder,
        op: &dyn Fn() -> String,
        each: &mut EachMsg<'_>,
    ) -> Result<(), NetlinkError> {
        let seq = self.send_msg(m, NLM_F_DUMP, op)?;
        self.receive(seq, op, each)
    }

    /// Reads replies for `seq` until an ack/error, NLMSG_DONE, or a single non-multipart reply.
    fn receive(
        &mut self,
        seq: u32,
        op: &dyn Fn() -> String,
        each: &mut EachMsg<'_>,
    ) -> Result<(), NetlinkError> {
        loop {
            let (_, n) = recv(&self.fd, &mut self.buf[..], RecvFlags::empty()).map_err(|e| {
                NetlinkError::Op {
                    op: op(),
                    source: e.into(),
                }
            })?;
            if n > self.buf.len() {
                return Err(NetlinkError::Malformed { op: op() });
            }
            let mut done = false;
            for (hdr, payload) in
                msg::messages(&self.buf[..n]).map_err(|_| NetlinkError::Malformed { op: op() })?
            {
                if hdr.seq != seq {
                    continue; // a stale reply to an earlier, abandoned request
                }
                match hdr.ty {
                    NLMSG_ERROR => {
                        let code = payload
                            .get(..4)
                            .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                            .ok_or_else(|| NetlinkError::Malformed { op: op() })?;
                        if code != 0 {
                            return Err(NetlinkError::Op {
                                op: op(),
                                source: io::Error::from_raw_os_error(-code),
                            });
                        }
                        done = true;
                    }
                    NLMSG_DONE => done = true,
                    ty => {
                        each(ty, payload)?;
                        if hdr.flags & NLM_F_MULTI == 0 {
                            done = true;
                        }
                    }
                }
            }
            if done {
                return Ok(());
            }
        }
    }
}
