//! The Linux bridge of a bridge network and the veth pairs of its endpoints, in the caller's
//! network namespace (the host side) and the container's.

use std::fs::File;
use std::net::Ipv4Addr;
use std::path::Path;

use crate::error::NetworkError;
use crate::model::{BridgeRecord, IpamRecord};
use crate::netlink::{LinkChange, Netlink, NetlinkError};
use crate::sysctl;

fn nl_err(name: &str) -> impl FnOnce(NetlinkError) -> NetworkError + '_ {
    move |source| NetworkError::Netlink {
        name: name.to_string(),
        source,
    }
}

/// Makes the bridge exist, hold the gateway address and be up; returns whether it had to be
/// created. A device of that name that is not a bridge is refused, never reconfigured.
pub(crate) fn ensure_bridge(
    nl: &mut Netlink,
    net: &str,
    b: &BridgeRecord,
    ipam: &IpamRecord,
) -> Result<bool, NetworkError> {
    let existing = nl.link(&b.name).map_err(nl_err(net))?;
    let created = match existing {
        Some(l) if l.kind.as_deref() == Some("bridge") => false,
        Some(l) => {
            return Err(NetworkError::Invalid {
                name: net.to_string(),
                what: format!(
                    "device {} exists and is not a bridge ({})",
                    b.name,
                    l.kind.as_deref().unwrap_or("physical")
                ),
            })
        }
        None => {
            nl.create_bridge(&b.name, b.mtu).map_err(nl_err(net))?;
            true
        }
    };
    let r = configure_bridge(nl, net, b, ipam);
    if r.is_err() && created {
        let _ = nl.delete_link_by_name(&b.name);
    }
    r.map(|()| created)
}

fn configure_bridge(
    nl: &mut Netlink,
    net: &str,
    b: &BridgeRecord,
    ipam: &IpamRecord,
) -> Result<(), NetworkError> {
    let index = nl
        .link_index(&b.name)
        .map_err(nl_err(net))?
        .ok_or_else(|| NetworkError::Invalid {
            name: net.to_string(),
            what: format!("bridge {} vanished while being set up", b.name),
        })?;
    nl.add_address(index, ipam.gateway, ipam.subnet.prefix())
        .map_err(nl_err(net))?;
    nl.set_link(
        index,
        &LinkChange {
            up: true,
            ..Default::default()
        },
    )
    .map_err(nl_err(net))?;
    sysctl::enable_route_localnet(&b.name).map_err(|source| NetworkError::Sysctl {
        name: net.to_string(),
        source,
    })
}

/// What the container side of an endpoint gets.
pub(crate) struct Plumbing<'a> {
    pub network: &'a str,
    pub bridge: &'a str,
    pub mtu: u32,
    pub host_veth: &'a str,
    pub netns: &'a Path,
    pub ifname: &'a str,
    pub mac: [u8; 6],
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Option<Ipv4Addr>,
}

/// Creates the veth pair with the container end (`ifname`, MAC) made directly in the
/// container's namespace, puts the host end on the bridge (hairpin on), then inside: `lo` up,
/// the address, and (if `gateway`) the default route unless one exists already.
pub(crate) fn plumb(host: &mut Netlink, p: &Plumbing<'_>) -> Result<(), NetworkError> {
    let net = p.network;
    let bridge = host
        .link_index(p.bridge)
        .map_err(nl_err(net))?
        .ok_or_else(|| NetworkError::Invalid {
            name: net.to_string(),
            what: format!("bridge {} does not exist", p.bridge),
        })?;
    // A stale pair of the same name (a crashed earlier attempt) is replaced.
    host.delete_link_by_name(p.host_veth).map_err(nl_err(net))?;
    let ns = File::open(p.netns).map_err(|source| {
        NetworkError::Netns(crate::netns::NetnsError::Io {
            path: p.netns.to_path_buf(),
            what: "open",
            source,
        })
    })?;
    // The container end is born in the container's namespace with its final name and MAC.
    host.create_veth_into(p.host_veth, bridge, p.ifname, p.mtu, &ns, p.mac)
        .map_err(nl_err(net))?;
    let missing = |what: &str| NetworkError::Invalid {
        name: net.to_string(),
        what: format!("{what} vanished while being set up"),
    };
    let hidx = host
        .link_index(p.host_veth)
        .map_err(nl_err(net))?
        .ok_or_else(|| missing(p.host_veth))?;
    host.set_hairpin(hidx, true).map_err(nl_err(net))?;
    let mut c = Netlink::open_in(p.netns).map_err(nl_err(net))?;
    if let Some(lo) = c.link_index("lo").map_err(nl_err(net))? {
        c.set_link(
            lo,
            &LinkChange {
                up: true,
                ..Default::default()
            },
        )
        .map_err(nl_err(net))?;
    }
    let idx = c
        .link_index(p.ifname)
        .map_err(nl_err(net))?
        .ok_or_else(|| missing(p.ifname))?;
    c.set_link(
        idx,
        &LinkChange {
            up: true,
            ..Default::default()
        },
    )
    .map_err(nl_err(net))?;
    c.add_address(idx, p.ip, p.prefix).map_err(nl_err(net))?;
    if let Some(gw) = p.gateway {
        c.add_default_route(idx, gw).map_err(nl_err(net))?;
    }
    Ok(())
}
