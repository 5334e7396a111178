//! IP address management, Docker's "default" IPAM driver in miniature.
//!
//! - [`AddressPool`]: daemon.json's `default-address-pools` entries (`{"base":"172.17.0.0/16",
//!   "size":16}`); [`default_pools`] are Docker's defaults.
//! - [`allocate_subnet`]: the first subnet of the pools that overlaps neither an existing
//!   network nor a route of the host.
//! - [`AddressSpace`]: the addresses of one network: gateway, optional `--ip-range` for dynamic
//!   allocation, static `--ip` requests, release. It holds no state of its own on disk: the
//!   network store rebuilds it from the endpoint records on open (see [`crate::store`]).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::cidr::Ipv4Cidr;

/// IPAM failures; messages name the network's subnet or the address concerned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpamError {
    #[error("address pool {base} size {size}: size must be between {} and 32", base.prefix())]
    BadPoolSize { base: Ipv4Cidr, size: u8 },
    #[error("all predefined address pools have been fully subnetted")]
    PoolsExhausted,
    #[error("subnet {subnet}: no available addresses")]
    Exhausted { subnet: Ipv4Cidr },
    #[error("address {ip} is not in subnet {subnet}")]
    OutOfSubnet { ip: Ipv4Addr, subnet: Ipv4Cidr },
    #[error("address {ip} in subnet {subnet} is reserved (network, broadcast or gateway address)")]
    Reserved { ip: Ipv4Addr, subnet: Ipv4Cidr },
    #[error("address {ip} is already in use")]
    InUse { ip: Ipv4Addr },
    #[error("ip range {range} is not inside subnet {subnet}")]
    RangeOutside { range: Ipv4Cidr, subnet: Ipv4Cidr },
    #[error("subnet {subnet}: too small for a gateway and an endpoint")]
    TooSmall { subnet: Ipv4Cidr },
}

/// One entry of daemon.json's `default-address-pools`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressPool {
    pub base: Ipv4Cidr,
    pub size: u8,
}

impl AddressPool {
    /// Checks `base.prefix() <= size <= 32`.
    pub fn validate(&self) -> Result<(), IpamError> {
        if self.size < self.base.prefix() || self.size > 32 {
            return Err(IpamError::BadPoolSize {
                base: self.base,
                size: self.size,
            });
        }
        Ok(())
    }
}

/// Docker's default pools: 172.17.0.0/16 … 172.31.0.0/16 (one /16 each), then
/// 192.168.0.0/16 split into /20s. The default bridge takes the first free one.
pub fn default_pools() -> Vec<AddressPool> {
    let mut v: Vec<AddressPool> = (17..=31)
        .map(|b| AddressPool {
            base: Ipv4Cidr::new(Ipv4Addr::new(172, b, 0, 0), 16).expect("valid prefix"),
            size: 16,
        })
        .collect();
    v.push(AddressPool {
        base: Ipv4Cidr::new(Ipv4Addr::new(192, 168, 0, 0), 16).expect("valid prefix"),
        size: 20,
    });
    v
}

/// The first `size`-long subnet of `pools`, in order, that overlaps nothing in `taken`
/// (existing networks' subnets and the host's routes, the default route excluded by the
/// caller). Skips past a taken block in one step, so huge pools stay cheap.
pub fn allocate_subnet(pools: &[AddressPool], taken: &[Ipv4Cidr]) -> Result<Ipv4Cidr, IpamError> {
    for pool in pools {
        pool.validate()?;
        let step = 1u64 << (32 - u32::from(pool.size));
        let start = u64::from(u32::from(pool.base.network()));
        let end = start + pool.base.size();
        let mut at = start;
        while at < end {
            let cand = Ipv4Cidr::new(Ipv4Addr::from(at as u32), pool.size).expect("size <= 32");
            match taken
                .iter()
                .filter(|t| t.overlaps(&cand))
                .map(|t| u64::from(u32::from(t.last())) + 1)
                .max()
            {
                None => return Ok(cand),
                Some(past) => {
                    // Next candidate boundary at or after the end of the overlapping block.
                    let next = past.max(at + step);
                    at = next.div_ceil(step) * step;
                }
            }
        }
    }
    Err(IpamError::PoolsExhausted)
}

/// The addresses of one network.
#[derive(Debug, Clone)]
pub struct AddressSpace {
    subnet: Ipv4Cidr,
    gateway: Ipv4Addr,
    range: Ipv4Cidr,
    used: BTreeSet<u32>,
    /// Next offset in `range` to try, so that a released address is not handed out again
    /// at once (Docker allocates serially too).
    cursor: u64,
}

impl AddressSpace {
    /// Checks the gateway and range against the subnet; the gateway is reserved.
    pub fn new(
        subnet: Ipv4Cidr,
        gateway: Ipv4Addr,
        range: Option<Ipv4Cidr>,
    ) -> Result<Self, IpamError> {
        if subnet.prefix() > 30 {
            return Err(IpamError::TooSmall { subnet });
        }
        let range = range.unwrap_or(subnet);
        if !subnet.covers(&range) {
            return Err(IpamError::RangeOutside { range, subnet });
        }
        let s = AddressSpace {
            subnet,
            gateway,
            range,
            used: BTreeSet::new(),
            cursor: 0,
        };
        s.check_assignable(gateway)?;
        Ok(s)
    }

    /// The conventional gateway of a subnet: its first host address (`.1`).
    pub fn default_gateway(subnet: Ipv4Cidr) -> Ipv4Addr {
        subnet.nth(1).unwrap_or(subnet.network())
    }

    pub fn subnet(&self) -> Ipv4Cidr {
        self.subnet
    }

    pub fn gateway(&self) -> Ipv4Addr {
        self.gateway
    }

    fn check_assignable(&self, ip: Ipv4Addr) -> Result<(), IpamError> {
        let subnet = self.subnet;
        if !subnet.contains(ip) {
            return Err(IpamError::OutOfSubnet { ip, subnet });
        }
        if ip == subnet.network() || ip == subnet.last() {
            return Err(IpamError::Reserved { ip, subnet });
        }
        Ok(())
    }

    /// Marks `ip` used (a static `--ip`, or an address found in a record on open).
    pub fn claim(&mut self, ip: Ipv4Addr) -> Result<(), IpamError> {
        self.check_assignable(ip)?;
        if ip == self.gateway {
            return Err(IpamError::Reserved {
                ip,
                subnet: self.subnet,
            });
        }
        if !self.used.insert(u32::from(ip)) {
            return Err(IpamError::InUse { ip });
        }
        Ok(())
    }

    /// The next free address of the range after the last one handed out, wrapping around.
    pub fn allocate(&mut self) -> Result<Ipv4Addr, IpamError> {
        let n = self.range.size();
        for i in 0..n {
            let off = (self.cursor + i) % n;
            let Some(ip) = self.range.nth(off) else {
                continue;
            };
            if ip == self.gateway
                || ip == self.subnet.network()
                || ip == self.subnet.last()
                || self.used.contains(&u32::from(ip))
            {
                continue;
            }
            self.used.insert(u32::from(ip));
            self.cursor = (off + 1) % n;
            return Ok(ip);
        }
        Err(IpamError::Exhausted {
            subnet: self.subnet,
        })
    }

    /// Frees `ip`; freeing an unknown address is a no-op.
    pub fn release(&mut self, ip: Ipv4Addr) {
        self.used.remove(&u32::from(ip));
    }

    /// Number of addresses in use (the gateway not counted).
    pub fn in_use(&self) -> usize {
        self.used.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Ipv4Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn defaults_and_allocation_order() {
        let pools = default_pools();
        assert_eq!(pools.len(), 16);
        assert_eq!(allocate_subnet(&pools, &[]).unwrap(), c("172.17.0.0/16"));
        let taken = [c("172.17.0.0/16"), c("172.18.5.0/24")];
        assert_eq!(allocate_subnet(&pools, &taken).unwrap(), c("172.19.0.0/16"));
        // A host route covering all of 172.16/12 pushes allocation into 192.168/16 by /20.
        let taken = [c("172.16.0.0/12"), c("192.168.0.0/24")];
        assert_eq!(
            allocate_subnet(&pools, &taken).unwrap(),
            c("192.168.16.0/20")
        );
        let taken = [c("0.0.0.0/1"), c("128.0.0.0/1")];
        assert_eq!(
            allocate_subnet(&pools, &taken).unwrap_err(),
            IpamError::PoolsExhausted
        );
    }

    #[test]
    fn huge_pool_skips_quickly() {
        let pools = [AddressPool {
            base: c("10.0.0.0/8"),
            size: 30,
        }];
        let taken = [c("10.0.0.0/9"), c("10.128.0.0/30")];
        assert_eq!(allocate_subnet(&pools, &taken).unwrap(), c("10.128.0.4/30"));
        let bad = [AddressPool {
            base: c("10.0.0.0/16"),
            size: 8,
        }];
        assert_eq!(
            allocate_subnet(&bad, &[]).unwrap_err().to_string(),
            "address pool 10.0.0.0/16 size 8: size must be between 16 and 32"
        );
    }

    #[test]
    fn addresses() {
        let net = c("172.20.0.0/29");
        let gw = AddressSpace::default_gateway(net);
        assert_eq!(gw, Ipv4Addr::new(172, 20, 0, 1));
        let mut s = AddressSpace::new(net, gw, None).unwrap();
        let got: Vec<_> = (0..5).map(|_| s.allocate().unwrap()).collect();
        assert_eq!(got[0], Ipv4Addr::new(172, 20, 0, 2));
        assert_eq!(got[4], Ipv4Addr::new(172, 20, 0, 6));
        assert!(matches!(s.allocate(), Err(IpamError::Exhausted { .. })));
        s.release(got[1]);
        assert_eq!(s.allocate().unwrap(), got[1]);
        assert_eq!(s.claim(got[0]), Err(IpamError::InUse { ip: got[0] }));
        assert!(matches!(s.claim(gw), Err(IpamError::Reserved { .. })));
        assert!(matches!(
            s.claim(Ipv4Addr::new(172, 20, 0, 7)),
            Err(IpamError::Reserved { .. })
        ));
        assert!(matches!(
            s.claim(Ipv4Addr::new(10, 0, 0, 1)),
            Err(IpamError::OutOfSubnet { .. })
        ));
    }

    #[test]
    fn serial_and_range() {
        let net = c("10.1.0.0/24");
        let mut s =
            AddressSpace::new(net, Ipv4Addr::new(10, 1, 0, 1), Some(c("10.1.0.128/25"))).unwrap();
        let a = s.allocate().unwrap();
        assert_eq!(a, Ipv4Addr::new(10, 1, 0, 128));
        s.release(a);
        assert_eq!(s.allocate().unwrap(), Ipv4Addr::new(10, 1, 0, 129));
        s.claim(Ipv4Addr::new(10, 1, 0, 5)).unwrap();
        assert!(
            AddressSpace::new(net, Ipv4Addr::new(10, 1, 0, 1), Some(c("10.2.0.0/25"))).is_err()
        );
        assert!(AddressSpace::new(net, Ipv4Addr::new(10, 1, 1, 1), None).is_err());
        assert!(AddressSpace::new(c("10.1.0.0/31"), Ipv4Addr::new(10, 1, 0, 1), None).is_err());
    }
}
