//! The persisted records: one per network, one per endpoint (a container on a network).
//! Field names are the on-disk JSON; see [`crate::store`] for the layout and its version.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::cidr::Ipv4Cidr;
use crate::ports::PublishedPort;

/// Network drivers: `bridge` for real networks; `host` and `null` for the predefined
/// `host` and `none` entries, which have no state of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    Bridge,
    Host,
    Null,
}

impl Driver {
    pub fn as_str(&self) -> &'static str {
        match self {
            Driver::Bridge => "bridge",
            Driver::Host => "host",
            Driver::Null => "null",
        }
    }
}

/// Addressing of a bridge network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamRecord {
    pub subnet: Ipv4Cidr,
    pub gateway: Ipv4Addr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<Ipv4Cidr>,
    /// The user chose the subnet (`--subnet`): static `--ip` requests are allowed.
    pub user_subnet: bool,
}

/// The Linux bridge behind a bridge network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgeRecord {
    pub name: String,
    pub mtu: u32,
    pub icc: bool,
    pub masquerade: bool,
    /// Host address published ports bind to when a binding names none.
    pub host_binding_ipv4: Ipv4Addr,
    /// skiff created the device (and so deletes it with the network).
    pub created_device: bool,
}

/// One network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRecord {
    pub id: String,
    pub name: String,
    pub created: DateTime<Utc>,
    pub driver: Driver,
    pub internal: bool,
    pub attachable: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Driver options as the user gave them (Docker shows them back verbatim).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipam: Option<IpamRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<BridgeRecord>,
    /// The predefined `bridge` network (no embedded DNS, no aliases, no static IPs).
    #[serde(default)]
    pub default_bridge: bool,
}

impl NetworkRecord {
    /// A record with no addresses, bridge, labels or options (the predefined `host` and
    /// `none` networks are such records; others fill in the rest).
    pub fn bare(
        id: String,
        name: &str,
        driver: Driver,
        created: chrono::DateTime<chrono::Utc>,
    ) -> NetworkRecord {
        NetworkRecord {
            id,
            name: name.to_string(),
            created,
            driver,
            internal: false,
            attachable: false,
            labels: Default::default(),
            options: Default::default(),
            ipam: None,
            bridge: None,
            default_bridge: false,
        }
    }

    /// `bridge`, `host` and `none` cannot be removed.
    pub fn predefined(&self) -> bool {
        self.default_bridge || self.driver != Driver::Bridge
    }
}

/// Progress of an endpoint: `creating` while it is being plumbed (in memory only: records
/// are written once `ready`); a `creating` record on disk (older layouts, or a hand edit) is
/// a leftover that reconcile or a new connect tears down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EndpointState {
    Creating,
    Ready,
}

/// One container on one network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRecord {
    pub endpoint_id: String,
    pub network_id: String,
    pub container_id: String,
    pub container_name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub netns: PathBuf,
    /// The interface name inside the container (`eth0`, `eth1`, …).
    pub ifname: String,
    /// The host end of the veth pair (on the bridge).
    pub host_veth: String,
    pub ip: Ipv4Addr,
    pub mac: String,
    /// The address came from `--ip`.
    #[serde(default)]
    pub static_ip: bool,
    #[serde(default)]
    pub ports: Vec<PublishedPort>,
    pub state: EndpointState,
}

/// Docker's MAC for an address: `02:42:` followed by the four IPv4 bytes.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// Parses `aa:bb:cc:dd:ee:ff` (or with `-`); `None` for anything else, and for multicast
/// addresses (an interface cannot have one).
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6 {
        return None;
    }
    let mut mac = [0u8; 6];
    for (b, p) in mac.iter_mut().zip(&parts) {
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    (mac[0] & 1 == 0).then_some(mac)
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// 64 random hex digits (network and endpoint ids).
pub fn random_id() -> String {
    let mut b = [0u8; 32];
    let mut filled = 0;
    while filled < b.len() {
        match rustix::rand::getrandom(&mut b[filled..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => filled += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => {
                // No getrandom (very old kernels): time and address bits, still unique enough
                // for ids that are also checked against existing ones.
                let t = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0);
                for (i, x) in b.iter_mut().enumerate() {
                    *x = (t >> ((i % 16) * 8)) as u8 ^ (i as u8).wrapping_mul(151);
                }
                break;
            }
        }
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_and_ids() {
        assert_eq!(
            format_mac(&mac_for(Ipv4Addr::new(172, 17, 0, 2))),
            "02:42:ac:11:00:02"
        );
        let a = random_id();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, random_id());
        assert_eq!(
            parse_mac("02:42:AC:11:00:09"),
            Some([2, 0x42, 0xac, 0x11, 0, 9])
        );
        assert_eq!(
            parse_mac("92-d0-c6-0a-29-33"),
            Some([0x92, 0xd0, 0xc6, 0x0a, 0x29, 0x33])
        );
        for bad in [
            "",
            "02:42:ac:11:00",
            "02:42:ac:11:00:0g",
            "01:00:5e:00:00:01",
            "2:42:ac:11:0:9",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad}");
        }
    }
}
