//! Creating bridge networks: `POST /networks/create` validated the way Docker does it
//! (name, driver, driver options, subnet / gateway / ip-range), a subnet from the pools when
//! none is given, then the record and the bridge device.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use crate::cidr::Ipv4Cidr;
use crate::error::NetworkError;
use crate::ipam::{self, AddressSpace};
use crate::model::{random_id, BridgeRecord, Driver, IpamRecord, NetworkRecord};
use crate::netlink::check_ifname;
use crate::networks::{Net, Networks, State};

pub const OPT_BRIDGE_NAME: &str = "com.docker.network.bridge.name";
pub const OPT_MTU: &str = "com.docker.network.driver.mtu";
pub const OPT_ICC: &str = "com.docker.network.bridge.enable_icc";
pub const OPT_MASQUERADE: &str = "com.docker.network.bridge.enable_ip_masquerade";
pub const OPT_HOST_BINDING: &str = "com.docker.network.bridge.host_binding_ipv4";

/// `POST /networks/create`, decoded.
#[derive(Debug, Clone, Default)]
pub struct CreateNetwork {
    pub name: String,
    /// "" or "bridge".
    pub driver: String,
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub ip_range: Option<String>,
    pub internal: bool,
    pub attachable: bool,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
}

fn parse_bool(net: &str, key: &str, v: &str) -> Result<bool, NetworkError> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(NetworkError::Invalid {
            name: net.to_string(),
            what: format!("option {key}={v}: invalid boolean"),
        }),
    }
}

fn valid_name(name: &str) -> bool {
    let mut b = name.bytes();
    b.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

impl Networks {
    /// Creates a bridge network; returns its id.
    pub fn create(&self, req: CreateNetwork) -> Result<String, NetworkError> {
        let mut st = self.lock();
        let id = self.create_locked(&mut st, req, false)?;
        self.apply_firewall(&mut st)?;
        Ok(id)
    }

    pub(crate) fn create_locked(
        &self,
        st: &mut State,
        req: CreateNetwork,
        default_bridge: bool,
    ) -> Result<String, NetworkError> {
        let name = req.name.clone();
        if !valid_name(&name) {
            return Err(NetworkError::BadName(name));
        }
        if st.nets.values().any(|n| n.rec.name == name) {
            return Err(NetworkError::NameExists(name));
        }
        match req.driver.as_str() {
            "" | "bridge" => {}
            "host" | "null" => {
                return Err(NetworkError::NotSupported {
                    name,
                    what: format!("only one instance of \"{}\" network is allowed", req.driver),
                })
            }
            d => {
                return Err(NetworkError::NotSupported {
                    name,
                    what: format!("driver {d} not supported (only bridge)"),
                })
            }
        }
        let invalid = |what: String| NetworkError::Invalid {
            name: name.clone(),
            what,
        };
        let o = &req.options;
        let mut id = random_id();
        while st.nets.contains_key(&id) || st.nets.keys().any(|k| k.starts_with(&id[..12])) {
            id = random_id();
        }
        let bridge_name = match o.get(OPT_BRIDGE_NAME) {
            Some(b) => b.clone(),
            None => format!("br-{}", &id[..12]),
        };
        check_ifname(&bridge_name)
            .map_err(|e| invalid(format!("option {OPT_BRIDGE_NAME}: {e}")))?;
        if let Some(other) = st
            .nets
            .values()
            .find(|n| n.rec.bridge.as_ref().is_some_and(|b| b.name == bridge_name))
        {
            return Err(invalid(format!(
                "bridge {bridge_name} is already used by network {}",
                other.rec.name
            )));
        }
        let mtu = match o.get(OPT_MTU) {
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|m| (68..=65535).contains(m))
                .ok_or_else(|| {
                    invalid(format!(
                        "option {OPT_MTU}={v}: must be a number from 68 to 65535"
                    ))
                })?,
            None => 1500,
        };
        let icc = o
            .get(OPT_ICC)
            .map(|v| parse_bool(&name, OPT_ICC, v))
            .transpose()?
            .unwrap_or(true);
        let masquerade = o
            .get(OPT_MASQUERADE)
            .map(|v| parse_bool(&name, OPT_MASQUERADE, v))
            .transpose()?
            .unwrap_or(true);
        let host_binding_ipv4 = match o.get(OPT_HOST_BINDING) {
            Some(v) => v.parse::<Ipv4Addr>().map_err(|_| {
                invalid(format!(
                    "option {OPT_HOST_BINDING}={v}: invalid IPv4 address"
                ))
            })?,
            None => Ipv4Addr::UNSPECIFIED,
        };
        // Addressing.
        let existing: Vec<(Ipv4Cidr, String)> = st
            .nets
            .values()
            .filter_map(|n| n.rec.ipam.as_ref().map(|i| (i.subnet, n.rec.name.clone())))
            .collect();
        let (subnet, user_subnet) = match &req.subnet {
            Some(s) => {
                let subnet: Ipv4Cidr = s.parse().map_err(|e| invalid(format!("subnet {e}")))?;
                if let Some((o, oname)) = existing.iter().find(|(o, _)| o.overlaps(&subnet)) {
                    return Err(invalid(format!(
                        "subnet {subnet} overlaps with network {oname} ({o})"
                    )));
                }
                (subnet, true)
            }
            None => {
                if req.gateway.is_some() || req.ip_range.is_some() {
                    return Err(invalid("a gateway or ip range needs a subnet".to_string()));
                }
                let mut taken: Vec<Ipv4Cidr> = existing.iter().map(|(c, _)| *c).collect();
                let routes = st
                    .nl(&name)?
                    .routes()
                    .map_err(|source| NetworkError::Netlink {
                        name: name.clone(),
                        source,
                    })?;
                taken.extend(
                    routes
                        .iter()
                        .filter(|r| r.dst_len > 0)
                        .filter_map(|r| Ipv4Cidr::new(r.dst, r.dst_len)),
                );
                let subnet =
                    ipam::allocate_subnet(&self.cfg.address_pools, &taken).map_err(|source| {
                        NetworkError::Ipam {
                            name: name.clone(),
                            source,
                        }
                    })?;
                (subnet, false)
            }
        };
        let gateway = match &req.gateway {
            Some(g) => g
                .parse::<Ipv4Addr>()
                .map_err(|_| invalid(format!("gateway {g}: invalid IPv4 address")))?,
            None => AddressSpace::default_gateway(subnet),
        };
        let ip_range = match &req.ip_range {
            Some(r) => Some(
                r.parse::<Ipv4Cidr>()
                    .map_err(|e| invalid(format!("ip range {e}")))?,
            ),
            None => None,
        };
        let space =
            AddressSpace::new(subnet, gateway, ip_range).map_err(|source| NetworkError::Ipam {
                name: name.clone(),
                source,
            })?;
        let rec = NetworkRecord {
            id: id.clone(),
            name: name.clone(),
            created: chrono::Utc::now(),
            driver: Driver::Bridge,
            internal: req.internal,
            attachable: req.attachable,
            labels: req.labels,
            options: req.options,
            ipam: Some(IpamRecord {
                subnet,
                gateway,
                ip_range,
                user_subnet,
            }),
            bridge: Some(BridgeRecord {
                name: bridge_name,
                mtu,
                icc,
                masquerade,
                host_binding_ipv4,
                created_device: false,
            }),
            default_bridge,
        };
        // Record first: a crash before the device exists is repaired by the next open.
        self.store.save_network(&rec)?;
        st.nets.insert(
            id.clone(),
            Net {
                rec,
                space: Some(space),
                eps: BTreeMap::new(),
            },
        );
        if let Err(e) = self.ensure_device(st, &id) {
            self.drop_network(st, &id);
            return Err(e);
        }
        tracing::info!(network = %name, id = %id, %subnet, "network created");
        Ok(id)
    }
}
