//! The embedded DNS server: for each container on a user-defined network, a UDP socket and a
//! TCP listener on 127.0.0.11:53 inside the container's network namespace (made by a
//! short-lived thread that joined it, then driven by the daemon's tokio runtime). Container
//! names come from the [`DnsTable`]; everything else is forwarded to the container's
//! upstream resolvers from the daemon's own namespace (so the host's 127.0.0.53-style
//! resolvers work too).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio::time::timeout;

use super::codec::{self, Answer, Message};
use super::table::DnsTable;
use crate::netlink::{LinkChange, Netlink, NetlinkError};
use crate::netns::NetnsError;

/// The address containers' resolv.conf points at.
pub const DNS_ADDR: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);
/// TTL of the answers for containers (Docker's).
const TTL: u32 = 600;
const FORWARD_TIMEOUT: Duration = Duration::from_secs(3);
const TCP_IDLE: Duration = Duration::from_secs(10);

/// Attach failures, naming the container.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("dns for container {id}: {source}")]
    Netns {
        id: String,
        #[source]
        source: NetnsError,
    },
    #[error("dns for container {id}: bring up lo: {source}")]
    Loopback {
        id: String,
        #[source]
        source: NetlinkError,
    },
    #[error("dns for container {id}: bind {proto} {DNS_ADDR}:53: {source}")]
    Bind {
        id: String,
        proto: &'static str,
        #[source]
        source: std::io::Error,
    },
}

struct Attached {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Attached {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

#[derive(Clone)]
struct Ctx {
    container: Arc<str>,
    upstreams: Arc<[SocketAddr]>,
    table: Arc<RwLock<Arc<DnsTable>>>,
}

/// The server: one per daemon.
pub struct DnsServer {
    handle: Handle,
    table: Arc<RwLock<Arc<DnsTable>>>,
    attached: Mutex<HashMap<String, Attached>>,
}

impl DnsServer {
    /// A server whose tasks run on `handle`.
    pub fn new(handle: Handle) -> Self {
        DnsServer {
            handle,
            table: Arc::default(),
            attached: Mutex::default(),
        }
    }

    /// Replaces the names the server answers for.
    pub fn set_table(&self, table: DnsTable) {
        *self.table.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(table);
    }

    /// Starts answering inside `netns` for `container_id`, forwarding unknown names to
    /// `upstreams`. Attaching again replaces the previous sockets.
    pub fn attach(
        &self,
        container_id: &str,
        netns: &Path,
        upstreams: Vec<SocketAddr>,
    ) -> Result<(), DnsError> {
        self.detach(container_id);
        let id = container_id.to_string();
        let (udp, tcp) = crate::netns::run_in(netns, || -> Result<_, DnsError> {
            let mut nl = Netlink::open().map_err(|source| DnsError::Loopback {
                id: id.clone(),
                source,
            })?;
            if let Some(lo) = nl.link_index("lo").map_err(|source| DnsError::Loopback {
                id: id.clone(),
                source,
            })? {
                nl.set_link(
                    lo,
                    &LinkChange {
                        up: true,
                        ..Default::default()
                    },
                )
                .map_err(|source| DnsError::Loopback {
                    id: id.clone(),
                    source,
                })?;
            }
            let addr = SocketAddrV4::new(DNS_ADDR, 53);
            let bind = |proto, e| DnsError::Bind {
                id: id.clone(),
                proto,
                source: e,
            };
            let udp = std::net::UdpSocket::bind(addr).map_err(|e| bind("udp", e))?;
            let tcp = std::net::TcpListener::bind(addr).map_err(|e| bind("tcp", e))?;
            udp.set_nonblocking(true).map_err(|e| bind("udp", e))?;
            tcp.set_nonblocking(true).map_err(|e| bind("tcp", e))?;
            Ok((udp, tcp))
        })
        .map_err(|source| DnsError::Netns {
            id: id.clone(),
            source,
        })??;
        let _guard = self.handle.enter();
        let udp = UdpSocket::from_std(udp).map_err(|e| DnsError::Bind {
            id: id.clone(),
            proto: "udp",
            source: e,
        })?;
        let tcp = TcpListener::from_std(tcp).map_err(|e| DnsError::Bind {
            id: id.clone(),
            proto: "tcp",
            source: e,
        })?;
        let ctx = Ctx {
            container: Arc::from(container_id),
            upstreams: upstreams.into(),
            table: self.table.clone(),
        };
        let tasks = vec![
            self.handle.spawn(serve_udp(udp, ctx.clone())),
            self.handle.spawn(serve_tcp(tcp, ctx)),
        ];
        self.attached
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, Attached { tasks });
        Ok(())
    }

    /// Stops answering for `container_id` (its sockets close).
    pub fn detach(&self, container_id: &str) {
        self.attached
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(container_id);
    }

    /// The containers being served.
    pub fn attached(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .attached
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect();
        v.sort();
        v
    }
}

async fn serve_udp(sock: UdpSocket, ctx: Ctx) {
    let sock = Arc::new(sock);
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let q = buf[..n].to_vec();
        let (sock, ctx) = (sock.clone(), ctx.clone());
        tokio::spawn(async move {
            if let Some(r) = answer(&ctx, &q, false).await {
                let _ = sock.send_to(&r, peer).await;
            }
        });
    }
}

async fn serve_tcp(listener: TcpListener, ctx: Ctx) {
    loop {
        let Ok((mut conn, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let ctx = ctx.clone();
        tokio::spawn(async move {
            while let Ok(Ok(q)) = timeout(TCP_IDLE, read_framed(&mut conn)).await {
                let Some(r) = answer(&ctx, &q, true).await else {
                    break;
                };
                if write_framed(&mut conn, &r).await.is_err() {
                    break;
                }
            }
        });
    }
}

async fn read_framed(conn: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let len = conn.read_u16().await?;
    let mut b = vec![0u8; usize::from(len)];
    conn.read_exact(&mut b).await?;
    Ok(b)
}

async fn write_framed(conn: &mut TcpStream, msg: &[u8]) -> std::io::Result<()> {
    let len = u16::try_from(msg.len()).map_err(|_| std::io::ErrorKind::InvalidData)?;
    let mut out = Vec::with_capacity(msg.len() + 2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(msg);
    conn.write_all(&out).await
}

/// The reply to one query, `None` to stay silent (garbage, or a response sent to us).
async fn answer(ctx: &Ctx, raw: &[u8], tcp: bool) -> Option<Vec<u8>> {
    let q = match codec::parse(raw) {
        Ok(q) => q,
        Err(_) if raw.len() >= 12 && raw[2] & 0x80 == 0 => {
            let header = codec::Header {
                id: u16::from_be_bytes([raw[0], raw[1]]),
                flags: u16::from_be_bytes([raw[2], raw[3]]),
                ..Default::default()
            };
            let m = Message {
                header,
                questions: Vec::new(),
                answers: Vec::new(),
            };
            return Some(codec::response(&m, codec::RCODE_FORMERR, &[], 0));
        }
        Err(_) => return None,
    };
    if q.header.is_response() {
        return None;
    }
    if q.header.opcode() != 0 {
        return Some(codec::response(&q, codec::RCODE_NOTIMP, &[], 0));
    }
    if q.questions.len() != 1 {
        return Some(codec::response(&q, codec::RCODE_FORMERR, &[], 0));
    }
    if let Some(r) = local_answer(ctx, &q) {
        return Some(r);
    }
    Some(match forward(&ctx.upstreams, raw, q.header.id, tcp).await {
        Some(r) => r,
        None => codec::response(&q, codec::RCODE_SERVFAIL, &[], 0),
    })
}

fn local_answer(ctx: &Ctx, q: &Message) -> Option<Vec<u8>> {
    let question = &q.questions[0];
    if question.qclass != codec::CLASS_IN {
        return None;
    }
    let table = ctx.table.read().unwrap_or_else(|p| p.into_inner()).clone();
    match question.qtype {
        codec::TYPE_PTR => {
            let name = table.reverse(&ctx.container, &question.name)?;
            Some(codec::response(
                q,
                codec::RCODE_NOERROR,
                &[Answer::Ptr(name)],
                TTL,
            ))
        }
        codec::TYPE_A => {
            let ips = table.lookup(&ctx.container, &question.name);
            if ips.is_empty() {
                return None;
            }
            let answers: Vec<Answer> = ips.into_iter().map(Answer::A).collect();
            Some(codec::response(q, codec::RCODE_NOERROR, &answers, TTL))
        }
        // AAAA and the rest for a container name: no IPv6, an empty NOERROR answer.
        _ if table.knows(&ctx.container, &question.name) => {
            Some(codec::response(q, codec::RCODE_NOERROR, &[], TTL))
        }
        _ => None,
    }
}

/// Forwards to each upstream in turn; over TCP when the asker used TCP and the UDP answer
/// was truncated.
async fn forward(upstreams: &[SocketAddr], raw: &[u8], id: u16, tcp: bool) -> Option<Vec<u8>> {
    for up in upstreams {
        if let Some(r) = forward_udp(*up, raw, id).await {
            let truncated = codec::parse(&r).is_ok_and(|m| m.header.truncated());
            if truncated && tcp {
                if let Some(r) = forward_tcp(*up, raw).await {
                    return Some(r);
                }
            }
            return Some(r);
        }
    }
    None
}

async fn forward_udp(up: SocketAddr, raw: &[u8], id: u16) -> Option<Vec<u8>> {
    let local: SocketAddr = if up.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }
        .parse()
        .ok()?;
    let sock = UdpSocket::bind(local).await.ok()?;
    sock.connect(up).await.ok()?;
    sock.send(raw).await.ok()?;
    let mut buf = vec![0u8; 65535];
    timeout(FORWARD_TIMEOUT, async {
        loop {
            let n = sock.recv(&mut buf).await.ok()?;
            if n >= 12 && u16::from_be_bytes([buf[0], buf[1]]) == id {
                return Some(buf[..n].to_vec());
            }
        }
    })
    .await
    .ok()?
}

async fn forward_tcp(up: SocketAddr, raw: &[u8]) -> Option<Vec<u8>> {
    timeout(FORWARD_TIMEOUT, async {
        let mut c = TcpStream::connect(up).await.ok()?;
        write_framed(&mut c, raw).await.ok()?;
        read_framed(&mut c).await.ok()
    })
    .await
    .ok()?
}
