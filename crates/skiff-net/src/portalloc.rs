//! Host port allocation for published ports. Ports are published by kernel DNAT, so nothing
//! listens on them: a port is free when no other published port holds it (tracked here) and a
//! socket can bind it now (the bind test catches host services). Port 0 takes a port the
//! kernel picks from its ephemeral range, Docker's range too.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};

use crate::ports::{PortRequest, Proto, PublishedPort};

/// Why a host port could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortAllocError {
    #[error("bind for {ip}:{port}/{proto} failed: port is already allocated")]
    Allocated {
        ip: Ipv4Addr,
        port: u16,
        proto: Proto,
    },
    #[error("bind for {ip}:{port}/{proto} failed: {reason}")]
    InUse {
        ip: Ipv4Addr,
        port: u16,
        proto: Proto,
        reason: String,
    },
    #[error("no free host port in {ip}:{from}-{to}/{proto}")]
    RangeFull {
        ip: Ipv4Addr,
        from: u16,
        to: u16,
        proto: Proto,
    },
    #[error("no free ephemeral host port for {ip}/{proto}")]
    NoEphemeral { ip: Ipv4Addr, proto: Proto },
}

/// Published ports in use, across every endpoint.
#[derive(Debug, Default, Clone)]
pub struct PortSet {
    used: BTreeSet<(Proto, u16, Ipv4Addr)>,
}

impl PortSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `ip:port` conflicts with a published port (0.0.0.0 conflicts with every address).
    pub fn conflicts(&self, proto: Proto, ip: Ipv4Addr, port: u16) -> bool {
        self.used
            .range((proto, port, Ipv4Addr::UNSPECIFIED)..=(proto, port, Ipv4Addr::BROADCAST))
            .any(|(_, _, u)| ip.is_unspecified() || u.is_unspecified() || *u == ip)
    }

    pub fn insert(&mut self, p: &PublishedPort) {
        self.used.insert((p.proto, p.host_port, p.host_ip));
    }

    pub fn remove(&mut self, p: &PublishedPort) {
        self.used.remove(&(p.proto, p.host_port, p.host_ip));
    }

    /// Allocates every request, all or nothing; on success the ports are in the set.
    pub fn allocate(&mut self, reqs: &[PortRequest]) -> Result<Vec<PublishedPort>, PortAllocError> {
        let mut done: Vec<PublishedPort> = Vec::with_capacity(reqs.len());
        for r in reqs {
            match self.allocate_one(r) {
                Ok(p) => {
                    self.insert(&p);
                    done.push(p);
                }
                Err(e) => {
                    for p in &done {
                        self.remove(p);
                    }
                    return Err(e);
                }
            }
        }
        Ok(done)
    }

    fn allocate_one(&self, r: &PortRequest) -> Result<PublishedPort, PortAllocError> {
        let publish = |host_port| PublishedPort {
            proto: r.proto,
            container_port: r.container_port,
            host_ip: r.host_ip,
            host_port,
        };
        match r.host_ports {
            Some((a, b)) if a == b && a != 0 => {
                if self.conflicts(r.proto, r.host_ip, a) {
                    return Err(PortAllocError::Allocated {
                        ip: r.host_ip,
                        port: a,
                        proto: r.proto,
                    });
                }
                bind_test(r.proto, r.host_ip, a).map_err(|e| PortAllocError::InUse {
                    ip: r.host_ip,
                    port: a,
                    proto: r.proto,
                    reason: e.to_string(),
                })?;
                Ok(publish(a))
            }
            Some((a, b)) => (a.max(1)..=b)
                .find(|p| {
                    !self.conflicts(r.proto, r.host_ip, *p)
                        && bind_test(r.proto, r.host_ip, *p).is_ok()
                })
                .map(publish)
                .ok_or(PortAllocError::RangeFull {
                    ip: r.host_ip,
                    from: a,
                    to: b,
                    proto: r.proto,
                }),
            None => (0..64)
                .filter_map(|_| bind_test(r.proto, r.host_ip, 0).ok())
                .find(|p| !self.conflicts(r.proto, r.host_ip, *p))
                .map(publish)
                .ok_or(PortAllocError::NoEphemeral {
                    ip: r.host_ip,
                    proto: r.proto,
                }),
        }
    }
}

/// Binds (and drops) a socket on `ip:port` in the caller's namespace; returns the port bound.
pub fn bind_test(proto: Proto, ip: Ipv4Addr, port: u16) -> std::io::Result<u16> {
    let addr = SocketAddrV4::new(ip, port);
    match proto {
        Proto::Tcp => TcpListener::bind(addr)?.local_addr().map(|a| a.port()),
        Proto::Udp => UdpSocket::bind(addr)?.local_addr().map(|a| a.port()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(ip: Ipv4Addr, ports: Option<(u16, u16)>) -> PortRequest {
        PortRequest {
            proto: Proto::Tcp,
            container_port: 80,
            host_ip: ip,
            host_ports: ports,
        }
    }

    #[test]
    fn conflicts_and_ranges() {
        let lo = Ipv4Addr::LOCALHOST;
        let mut set = PortSet::new();
        // A port a host service listens on is refused.
        let l = TcpListener::bind((lo, 0)).unwrap();
        let busy = l.local_addr().unwrap().port();
        let e = set.allocate(&[req(lo, Some((busy, busy)))]).unwrap_err();
        assert!(matches!(e, PortAllocError::InUse { .. }), "{e}");
        // An ephemeral port, then the same one again is "already allocated".
        let got = set.allocate(&[req(lo, None)]).unwrap();
        let p = got[0].host_port;
        assert_ne!(p, 0);
        let e = set
            .allocate(&[req(Ipv4Addr::UNSPECIFIED, Some((p, p)))])
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("bind for 0.0.0.0:{p}/tcp failed: port is already allocated")
        );
        // UDP is a separate space.
        let mut u = req(lo, Some((p, p)));
        u.proto = Proto::Udp;
        assert!(set.allocate(&[u]).is_ok());
        // A range skips what is taken; all-or-nothing on failure.
        let r = set
            .allocate(&[req(lo, Some((p, p.saturating_add(3))))])
            .unwrap();
        assert_ne!(r[0].host_port, p);
        let before = set.used.len();
        assert!(set
            .allocate(&[req(lo, None), req(lo, Some((busy, busy)))])
            .is_err());
        assert_eq!(set.used.len(), before);
        set.remove(&got[0]);
        assert!(!set.conflicts(Proto::Tcp, lo, p));
        drop(l);
    }
}
