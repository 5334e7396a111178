//! The rtnetlink operations bridge networking uses: links (bridge, veth, set/rename/move,
//! delete, lookup, dump), IPv4 addresses and routes.

use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;

use super::msg::{attr_string, attr_u32, Attrs, MsgBuilder};
use super::{BatchRequest, Netlink, NetlinkError, NLM_F_CREATE, NLM_F_EXCL};

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_SETLINK: u16 = 19;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;

const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_MASTER: u16 = 10;
const IFLA_PROTINFO: u16 = 12;
const IFLA_LINKINFO: u16 = 18;
const IFLA_BRPORT_MODE: u16 = 4;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_TABLE: u16 = 15;

const AF_INET: u8 = libc::AF_INET as u8;
const AF_BRIDGE: u8 = libc::AF_BRIDGE as u8;
const IFF_UP: u32 = libc::IFF_UP as u32;
const RT_TABLE_MAIN: u8 = 254;
const RT_TABLE_LOCAL: u32 = 255;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RTN_UNICAST: u8 = 1;

/// Size of `struct ifinfomsg`.
const IFINFO_LEN: usize = 16;
const IFADDR_LEN: usize = 8;
const RTMSG_LEN: usize = 12;

fn ifinfo(index: u32, flags: u32, change: u32) -> [u8; IFINFO_LEN] {
    let mut b = [0u8; IFINFO_LEN];
    b[4..8].copy_from_slice(&index.to_ne_bytes());
    b[8..12].copy_from_slice(&flags.to_ne_bytes());
    b[12..16].copy_from_slice(&change.to_ne_bytes());
    b
}

/// Checks an interface name as the kernel would (IFNAMSIZ 16 with the NUL).
pub fn check_ifname(name: &str) -> Result<(), NetlinkError> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b == 0);
    if ok {
        Ok(())
    } else {
        Err(NetlinkError::BadName(name.to_string()))
    }
}

/// One link of a dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    pub index: u32,
    pub name: String,
    pub master: Option<u32>,
    pub up: bool,
    /// `IFLA_INFO_KIND`: "bridge", "veth", … (`None` for physical devices and lo).
    pub kind: Option<String>,
}

/// One IPv4 route of a dump (destination prefix, table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub dst: Ipv4Addr,
    pub dst_len: u8,
    pub table: u32,
}

/// Changes applied to one link in a single RTM_NEWLINK (the kernel applies a move to
/// another namespace first, the name before the up flag).
#[derive(Debug, Default, Clone)]
pub struct LinkChange<'a> {
    pub name: Option<&'a str>,
    pub mac: Option<[u8; 6]>,
    pub mtu: Option<u32>,
    pub master: Option<u32>,
    pub up: bool,
}

impl Netlink {
    /// The index of link `name`, `None` if there is no such link.
    pub fn link_index(&mut self, name: &str) -> Result<Option<u32>, NetlinkError> {
        check_ifname(name)?;
        let mut m = MsgBuilder::new(RTM_GETLINK, &ifinfo(0, 0, 0));
        m.attr_str(IFLA_IFNAME, name);
        match self.get(m, &|| format!("look up link {name}")) {
            Ok((_, payload)) => Ok(payload
                .get(4..8)
                .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))),
            Err(e) if e.errno() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Link `name` with its kind, from a dump (`None` if absent).
    pub fn link(&mut self, name: &str) -> Result<Option<LinkInfo>, NetlinkError> {
        Ok(self.links()?.into_iter().find(|l| l.name == name))
    }

    /// Every link of the namespace.
    pub fn links(&mut self) -> Result<Vec<LinkInfo>, NetlinkError> {
        let m = MsgBuilder::new(RTM_GETLINK, &ifinfo(0, 0, 0));
        let mut out = Vec::new();
        self.dump(m, &|| "list links".to_string(), &mut |ty, p| {
            if ty != RTM_NEWLINK || p.len() < IFINFO_LEN {
                return Ok(());
            }
            let index = u32::from_ne_bytes([p[4], p[5], p[6], p[7]]);
            let flags = u32::from_ne_bytes([p[8], p[9], p[10], p[11]]);
            let name = Attrs::find(p, IFINFO_LEN, IFLA_IFNAME).map(attr_string);
            let master = Attrs::find(p, IFINFO_LEN, IFLA_MASTER).and_then(attr_u32);
            let kind = Attrs::find(p, IFINFO_LEN, IFLA_LINKINFO)
                .and_then(|li| Attrs::find(li, 0, IFLA_INFO_KIND))
                .map(attr_string);
            if let Some(name) = name {
                out.push(LinkInfo {
                    index,
                    name,
                    master,
                    up: flags & IFF_UP != 0,
                    kind,
                });
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Creates bridge `name` with `mtu` (down; bring it up with [`Netlink::set_link`]).
    pub fn create_bridge(&mut self, name: &str, mtu: u32) -> Result<(), NetlinkError> {
        check_ifname(name)?;
        let mut m = MsgBuilder::new(RTM_NEWLINK, &ifinfo(0, 0, 0));
        m.attr_str(IFLA_IFNAME, name).attr_u32(IFLA_MTU, mtu);
        m.begin_nest(IFLA_LINKINFO)
            .attr_str(IFLA_INFO_KIND, "bridge")
            .end_nest();
        self.request(m, NLM_F_CREATE | NLM_F_EXCL, &|| {
            format!("create bridge {name}")
        })
    }

    /// Creates the veth pair `name` <-> `peer`, both with `mtu`.
    pub fn create_veth(&mut self, name: &str, peer: &str, mtu: u32) -> Result<(), NetlinkError> {
        check_ifname(name)?;
        check_ifname(peer)?;
        let mut m = MsgBuilder::new(RTM_NEWLINK, &ifinfo(0, 0, 0));
        m.attr_str(IFLA_IFNAME, name).attr_u32(IFLA_MTU, mtu);
        m.begin_nest(IFLA_LINKINFO).attr_str(IFLA_INFO_KIND, "veth");
        m.begin_nest(IFLA_INFO_DATA).begin_nest(VETH_INFO_PEER);
        m.raw(&ifinfo(0, 0, 0))
            .attr_str(IFLA_IFNAME, peer)
            .attr_u32(IFLA_MTU, mtu);
        m.end_nest().end_nest().end_nest();
        self.request(m, NLM_F_CREATE | NLM_F_EXCL, &|| {
            format!("create veth pair {name} and {peer}")
        })
    }

    /// Creates the veth pair `name` <-> `peer` with the peer made directly inside the network
    /// namespace open at `peer_ns`, with MAC `peer_mac`. Cheaper than creating both here and
    /// moving one: a move to another namespace waits for an RCU grace period (~10-20 ms).
    ///
    /// The host end comes up already enslaved to `master`: one message instead of three.
    pub fn create_veth_into(
        &mut self,
        name: &str,
        master: u32,
        peer: &str,
        mtu: u32,
        peer_ns: &impl AsRawFd,
        peer_mac: [u8; 6],
    ) -> Result<(), NetlinkError> {
        check_ifname(name)?;
        check_ifname(peer)?;
        let mut m = MsgBuilder::new(RTM_NEWLINK, &ifinfo(0, IFF_UP, IFF_UP));
        m.attr_str(IFLA_IFNAME, name)
            .attr_u32(IFLA_MTU, mtu)
            .attr_u32(IFLA_MASTER, master);
        m.begin_nest(IFLA_LINKINFO).attr_str(IFLA_INFO_KIND, "veth");
        m.begin_nest(IFLA_INFO_DATA).begin_nest(VETH_INFO_PEER);
        // Not up yet: the kernel configures the peer before pairing it (ENOTCONN).
        m.raw(&ifinfo(0, 0, 0))
            .attr_str(IFLA_IFNAME, peer)
            .attr_u32(IFLA_MTU, mtu)
            .attr(IFLA_ADDRESS, &peer_mac)
            .attr_u32(IFLA_NET_NS_FD, peer_ns.as_raw_fd() as u32);
        m.end_nest().end_nest().end_nest();
        self.request(m, NLM_F_CREATE | NLM_F_EXCL, &|| {
            format!("create veth pair {name} and {peer} (in the container)")
        })
    }

    /// Applies `change` to link `index`.
    pub fn set_link(&mut self, index: u32, change: &LinkChange<'_>) -> Result<(), NetlinkError> {
        let r = set_link_req(index, change)?;
        self.request(r.msg, r.flags, &|| r.op.clone())
    }

    /// Sets hairpin mode on bridge port `index`, so a frame may leave by the port it came in
    /// on. Needed for hairpin NAT (a container reaching its own published port) when
    /// br_netfilter runs the nat hooks on bridged frames, as Docker does it.
    pub fn set_hairpin(&mut self, index: u32, on: bool) -> Result<(), NetlinkError> {
        let mut fixed = ifinfo(index, 0, 0);
        fixed[0] = AF_BRIDGE;
        let mut m = MsgBuilder::new(RTM_SETLINK, &fixed);
        m.begin_nest(IFLA_PROTINFO)
            .attr(IFLA_BRPORT_MODE, &[u8::from(on)])
            .end_nest();
        self.request(m, 0, &|| format!("set hairpin mode on bridge port {index}"))
    }

    /// Moves link `index` into the network namespace open at `netns`.
    pub fn move_to_netns(&mut self, index: u32, netns: &impl AsRawFd) -> Result<(), NetlinkError> {
        let mut m = MsgBuilder::new(RTM_NEWLINK, &ifinfo(index, 0, 0));
        m.attr_u32(IFLA_NET_NS_FD, netns.as_raw_fd() as u32);
        self.request(m, 0, &|| {
            format!("move link {index} to a network namespace")
        })
    }

    /// Deletes link `index` (a veth's peer goes with it).
    pub fn delete_link(&mut self, index: u32) -> Result<(), NetlinkError> {
        let m = MsgBuilder::new(RTM_DELLINK, &ifinfo(index, 0, 0));
        self.request(m, 0, &|| format!("delete link {index}"))
    }

    /// Deletes link `name` if it exists; returns whether it did.
    pub fn delete_link_by_name(&mut self, name: &str) -> Result<bool, NetlinkError> {
        match self.link_index(name)? {
            Some(i) => match self.delete_link(i) {
                Ok(()) => Ok(true),
                Err(e) if e.errno() == Some(libc::ENODEV) => Ok(false),
                Err(e) => Err(e).map_err(|e| rename_op(e, &format!("delete link {name}"))),
            },
            None => Ok(false),
        }
    }

    /// Adds `ip/prefix` to link `index`; an address already there is fine.
    pub fn add_address(
        &mut self,
        index: u32,
        ip: Ipv4Addr,
        prefix: u8,
    ) -> Result<(), NetlinkError> {
        let r = add_address_req(index, ip, prefix);
        match self.request(r.msg, r.flags, &|| r.op.clone()) {
            Err(e) if e.errno() == Some(libc::EEXIST) => Ok(()),
            r => r,
        }
    }

    /// Adds the default route via `gateway` out of link `index`. Returns false when a default
    /// route exists already (the first network connected keeps it, as in Docker).
    pub fn add_default_route(
        &mut self,
        index: u32,
        gateway: Ipv4Addr,
    ) -> Result<bool, NetlinkError> {
        let r = default_route_req(index, gateway);
        match self.request(r.msg, r.flags, &|| r.op.clone()) {
            Ok(()) => Ok(true),
            Err(e) if e.errno() == Some(libc::EEXIST) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The IPv4 routes of every table but `local`.
    pub fn routes(&mut self) -> Result<Vec<Route>, NetlinkError> {
        let mut fixed = [0u8; RTMSG_LEN];
        fixed[0] = AF_INET;
        let m = MsgBuilder::new(RTM_GETROUTE, &fixed);
        let mut out = Vec::new();
        self.dump(m, &|| "list routes".to_string(), &mut |ty, p| {
            if ty != RTM_NEWROUTE || p.len() < RTMSG_LEN || p[0] != AF_INET {
                return Ok(());
            }
            let table = Attrs::find(p, RTMSG_LEN, RTA_TABLE)
                .and_then(attr_u32)
                .unwrap_or(u32::from(p[4]));
            if table == RT_TABLE_LOCAL {
                return Ok(());
            }
            let dst = Attrs::find(p, RTMSG_LEN, RTA_DST)
                .and_then(|d| <[u8; 4]>::try_from(d).ok())
                .map(Ipv4Addr::from)
                .unwrap_or(Ipv4Addr::UNSPECIFIED);
            out.push(Route {
                dst,
                dst_len: p[1].min(32),
                table,
            });
            Ok(())
        })?;
        Ok(out)
    }
}

/// [`Netlink::set_link`] as a request for [`Netlink::request_batch`].
pub(crate) fn set_link_req(
    index: u32,
    change: &LinkChange<'_>,
) -> Result<BatchRequest, NetlinkError> {
    if let Some(n) = change.name {
        check_ifname(n)?;
    }
    let flags = if change.up { IFF_UP } else { 0 };
    let mut m = MsgBuilder::new(RTM_NEWLINK, &ifinfo(index, flags, flags));
    if let Some(n) = change.name {
        m.attr_str(IFLA_IFNAME, n);
    }
    if let Some(mac) = change.mac {
        m.attr(IFLA_ADDRESS, &mac);
    }
    if let Some(mtu) = change.mtu {
        m.attr_u32(IFLA_MTU, mtu);
    }
    if let Some(master) = change.master {
        m.attr_u32(IFLA_MASTER, master);
    }
    Ok(BatchRequest {
        msg: m,
        flags: 0,
        op: format!("configure link {index} ({change:?})"),
        ok: Vec::new(),
    })
}

/// Adding `ip/prefix` to link `index` as a request (EEXIST is fine).
pub(crate) fn add_address_req(index: u32, ip: Ipv4Addr, prefix: u8) -> BatchRequest {
    let mut fixed = [0u8; IFADDR_LEN];
    fixed[0] = AF_INET;
    fixed[1] = prefix;
    fixed[4..8].copy_from_slice(&index.to_ne_bytes());
    let mut m = MsgBuilder::new(RTM_NEWADDR, &fixed);
    m.attr(IFA_LOCAL, &ip.octets())
        .attr(IFA_ADDRESS, &ip.octets());
    if prefix < 31 {
        let bcast = u32::from(ip) | !crate::cidr::mask(prefix);
        m.attr(IFA_BROADCAST, &bcast.to_be_bytes());
    }
    BatchRequest {
        msg: m,
        flags: NLM_F_CREATE | NLM_F_EXCL,
        op: format!("add address {ip}/{prefix} to link {index}"),
        ok: vec![libc::EEXIST],
    }
}

/// The default route via `gateway` out of link `index` as a request (EEXIST: a default
/// route exists already, which the first network keeps; fine).
pub(crate) fn default_route_req(index: u32, gateway: Ipv4Addr) -> BatchRequest {
    let mut fixed = [0u8; RTMSG_LEN];
    fixed[0] = AF_INET;
    fixed[4] = RT_TABLE_MAIN;
    fixed[5] = RTPROT_BOOT;
    fixed[6] = RT_SCOPE_UNIVERSE;
    fixed[7] = RTN_UNICAST;
    let mut m = MsgBuilder::new(RTM_NEWROUTE, &fixed);
    m.attr(RTA_GATEWAY, &gateway.octets())
        .attr_u32(RTA_OIF, index);
    BatchRequest {
        msg: m,
        flags: NLM_F_CREATE | NLM_F_EXCL,
        op: format!("add default route via {gateway}"),
        ok: vec![libc::EEXIST],
    }
}

fn rename_op(e: NetlinkError, op: &str) -> NetlinkError {
    match e {
        NetlinkError::Op { source, .. } => NetlinkError::Op {
            op: op.to_string(),
            source,
        },
        e => e,
    }
}
