//! IPv4 prefixes (`172.18.0.0/16`): parsing, containment, overlap and enumeration.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a prefix string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("{0}: expected ADDRESS/PREFIX")]
    MissingPrefix(String),
    #[error("{0}: invalid address")]
    BadAddress(String),
    #[error("{0}: invalid prefix")]
    BadPrefix(String),
    #[error("{0}: host bits set, it should be {1}")]
    HostBits(String, Ipv4Cidr),
}

/// An IPv4 network: an address with the host bits cleared and a prefix length 0..=32.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Cidr {
    addr: u32,
    prefix: u8,
}

impl Ipv4Cidr {
    /// The network of `addr/prefix` (host bits cleared); `None` if `prefix > 32`.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Option<Self> {
        (prefix <= 32).then(|| Ipv4Cidr {
            addr: u32::from(addr) & mask(prefix),
            prefix,
        })
    }

    /// Parses `a.b.c.d/n` and accepts host bits, returning the address as written and its
    /// network (`172.18.0.5/16` → (172.18.0.5, 172.18.0.0/16)).
    pub fn parse_host(s: &str) -> Result<(Ipv4Addr, Ipv4Cidr), CidrError> {
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| CidrError::MissingPrefix(s.to_string()))?;
        let addr: Ipv4Addr = a
            .parse()
            .map_err(|_| CidrError::BadAddress(s.to_string()))?;
        let prefix: u8 = Some(p)
            .filter(|p| !p.is_empty() && p.len() <= 2 && p.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|p| p.parse().ok())
            .filter(|p| *p <= 32)
            .ok_or_else(|| CidrError::BadPrefix(s.to_string()))?;
        let net = Ipv4Cidr::new(addr, prefix).ok_or_else(|| CidrError::BadPrefix(s.to_string()))?;
        Ok((addr, net))
    }

    /// The first address (the network address).
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.addr)
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The last address (the broadcast address for prefixes below 31).
    pub fn last(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.addr | !mask(self.prefix))
    }

    /// Number of addresses in the prefix.
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }

    /// Whether `ip` is inside this prefix.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == self.addr
    }

    /// Whether `other` lies entirely inside this prefix.
    pub fn covers(&self, other: &Ipv4Cidr) -> bool {
        other.prefix >= self.prefix && self.contains(other.network())
    }

    /// Whether the two prefixes share any address.
    pub fn overlaps(&self, other: &Ipv4Cidr) -> bool {
        self.covers(other) || other.covers(self)
    }

    /// The address at offset `n` from the network address, if inside the prefix.
    pub fn nth(&self, n: u64) -> Option<Ipv4Addr> {
        (n < self.size()).then(|| Ipv4Addr::from(self.addr.wrapping_add(n as u32)))
    }

    /// Offset of `ip` from the network address, if inside.
    pub fn offset_of(&self, ip: Ipv4Addr) -> Option<u64> {
        self.contains(ip)
            .then(|| u64::from(u32::from(ip).wrapping_sub(self.addr)))
    }
}

/// The netmask of a prefix length (0..=32).
pub(crate) fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    }
}

impl FromStr for Ipv4Cidr {
    type Err = CidrError;

    /// Strict: host bits must be zero, as Docker requires of `--subnet`.
    fn from_str(s: &str) -> Result<Self, CidrError> {
        let (addr, net) = Ipv4Cidr::parse_host(s)?;
        if addr != net.network() {
            return Err(CidrError::HostBits(s.to_string(), net));
        }
        Ok(net)
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network(), self.prefix)
    }
}

impl fmt::Debug for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Ipv4Cidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ipv4Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display() {
        let c: Ipv4Cidr = "172.18.0.0/16".parse().unwrap();
        assert_eq!(c.to_string(), "172.18.0.0/16");
        assert_eq!(c.last(), Ipv4Addr::new(172, 18, 255, 255));
        assert_eq!(c.size(), 65536);
        assert_eq!(
            "10.0.0.0/33".parse::<Ipv4Cidr>().unwrap_err().to_string(),
            "10.0.0.0/33: invalid prefix"
        );
        assert_eq!(
            "10.0.0.1/8".parse::<Ipv4Cidr>().unwrap_err().to_string(),
            "10.0.0.1/8: host bits set, it should be 10.0.0.0/8"
        );
        assert!("10.0.0.0".parse::<Ipv4Cidr>().is_err());
        assert!("10.0.0.0/".parse::<Ipv4Cidr>().is_err());
        assert!("10.0.0.0/+8".parse::<Ipv4Cidr>().is_err());
        assert!("300.0.0.0/8".parse::<Ipv4Cidr>().is_err());
        let all: Ipv4Cidr = "0.0.0.0/0".parse().unwrap();
        assert_eq!(all.size(), 1 << 32);
        assert!(all.contains(Ipv4Addr::new(8, 8, 8, 8)));
    }

    #[test]
    fn overlap() {
        let a: Ipv4Cidr = "172.16.0.0/12".parse().unwrap();
        let b: Ipv4Cidr = "172.18.0.0/16".parse().unwrap();
        let c: Ipv4Cidr = "192.168.0.0/20".parse().unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a) && a.covers(&b) && !b.covers(&a));
        assert!(!a.overlaps(&c));
        assert_eq!(b.nth(2), Some(Ipv4Addr::new(172, 18, 0, 2)));
        assert_eq!(b.offset_of(Ipv4Addr::new(172, 18, 1, 0)), Some(256));
        assert_eq!(b.nth(65536), None);
    }
}
