//! The network controller: open on a state directory, create / list / inspect / remove /
//! prune networks. Endpoints (connect, disconnect, reconcile) are in [`crate::endpoint`].
//!
//! All methods are blocking (netlink, `nft`, fsync); the daemon calls them from
//! `spawn_blocking`. One mutex serializes changes, so the firewall table and the records
//! always describe the same state.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use crate::bridge;
use crate::cidr::Ipv4Cidr;
use crate::create::CreateNetwork;
use crate::error::NetworkError;
use crate::firewall::FirewallBackend;
use crate::inspect::{self, NetworkResource};
use crate::ipam::{self, AddressPool, AddressSpace};
use crate::model::{random_id, Driver, EndpointRecord, NetworkRecord};
use crate::netlink::Netlink;
use crate::nft::Firewall;
use crate::portalloc::PortSet;
use crate::store::Store;
use crate::sysctl;

/// The predefined default network's name.
pub const DEFAULT_NETWORK: &str = "bridge";

/// The default `bridge` network's settings (daemon.json `bridge`/`bip`/`mtu`/`icc` analogues).
#[derive(Debug, Clone)]
pub struct DefaultBridge {
    /// `skiff0`, so that a real dockerd's docker0 can coexist.
    pub name: String,
    /// `bip`'s network; `None`: the first free pool subnet (172.17.0.0/16 on most hosts).
    pub subnet: Option<Ipv4Cidr>,
    /// `bip`'s address (the bridge's, the containers' gateway); `None`: the subnet's first.
    pub gateway: Option<std::net::Ipv4Addr>,
    pub mtu: u32,
    pub icc: bool,
    pub masquerade: bool,
}

/// How to open the controller.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// Records (see [`crate::store`]); the daemon uses `<data-root>/network`.
    pub state_dir: PathBuf,
    /// Where per-container namespace files live; the daemon uses `<exec-root>/netns`.
    pub netns_dir: PathBuf,
    /// Where the prepared namespaces of the pool live (`<netns_dir>-pool` by default).
    pub pool_dir: PathBuf,
    /// How many prepared namespaces the pool keeps for the default bridge (0: no pool, the
    /// default; the daemon keeps 2). The pool starts with [`Networks::reconcile`].
    pub pool_size: usize,
    /// daemon.json `default-address-pools`.
    pub address_pools: Vec<AddressPool>,
    pub default_bridge: DefaultBridge,
    /// How NAT and published ports are programmed; `None`: not at all (publishing a port
    /// is then refused).
    pub firewall: Option<FirewallBackend>,
}

impl NetConfig {
    /// Docker's defaults with the given directories.
    pub fn new(state_dir: impl Into<PathBuf>, netns_dir: impl Into<PathBuf>) -> Self {
        let netns_dir: PathBuf = netns_dir.into();
        let mut pool_dir = netns_dir.clone().into_os_string();
        pool_dir.push("-pool");
        NetConfig {
            state_dir: state_dir.into(),
            netns_dir,
            pool_dir: pool_dir.into(),
            pool_size: 0,
            address_pools: ipam::default_pools(),
            default_bridge: DefaultBridge {
                name: "skiff0".to_string(),
                subnet: None,
                gateway: None,
                mtu: 1500,
                icc: true,
                masquerade: true,
            },
            firewall: FirewallBackend::detect(),
        }
    }
}

pub(crate) struct Net {
    pub rec: NetworkRecord,
    pub space: Option<AddressSpace>,
    /// container id → endpoint
    pub eps: BTreeMap<String, EndpointRecord>,
}

pub(crate) struct State {
    pub nets: BTreeMap<String, Net>,
    pub ports: PortSet,
    pub nl: Option<Netlink>,
    /// The last table loaded, to skip identical reloads.
    pub loaded_fw: Option<Firewall>,
}

impl State {
    /// The host namespace's netlink socket, opened on first use.
    pub fn nl(&mut self, net: &str) -> Result<&mut Netlink, NetworkError> {
        if self.nl.is_none() {
            self.nl = Some(Netlink::open().map_err(|source| NetworkError::Netlink {
                name: net.to_string(),
                source,
            })?);
        }
        Ok(self.nl.as_mut().expect("opened above"))
    }

    /// Looks a network up by exact id, exact name, then unique id prefix.
    pub fn find(&self, key: &str) -> Result<String, NetworkError> {
        if self.nets.contains_key(key) {
            return Ok(key.to_string());
        }
        if let Some(n) = self.nets.values().find(|n| n.rec.name == key) {
            return Ok(n.rec.id.clone());
        }
        let mut hits = self
            .nets
            .keys()
            .filter(|id| !key.is_empty() && id.starts_with(key));
        match (hits.next(), hits.next()) {
            (Some(id), None) => Ok(id.clone()),
            _ => Err(NetworkError::NotFound(key.to_string())),
        }
    }
}

/// The controller.
pub struct Networks {
    pub(crate) cfg: NetConfig,
    pub(crate) store: Store,
    pub(crate) state: Mutex<State>,
    pub(crate) pool: std::sync::Arc<crate::pool::Pool>,
}

impl Networks {
    /// Opens the store, adds the predefined `bridge`, `host` and `none` networks when absent,
    /// makes every bridge exist (after a reboot) and loads the firewall table.
    pub fn open(cfg: NetConfig) -> Result<Networks, NetworkError> {
        for p in &cfg.address_pools {
            p.validate().map_err(|source| NetworkError::Ipam {
                name: "default-address-pools".into(),
                source,
            })?;
        }
        let store = Store::open(&cfg.state_dir)?;
        let loaded = store.load()?;
        let mut nets = BTreeMap::new();
        for rec in loaded.networks {
            let space = match &rec.ipam {
                Some(i) => Some(AddressSpace::new(i.subnet, i.gateway, i.ip_range).map_err(
                    |source| NetworkError::Ipam {
                        name: rec.name.clone(),
                        source,
                    },
                )?),
                None => None,
            };
            nets.insert(
                rec.id.clone(),
                Net {
                    rec,
                    space,
                    eps: BTreeMap::new(),
                },
            );
        }
        let mut ports = PortSet::new();
        for ep in loaded.endpoints {
            let Some(net) = nets.get_mut(&ep.network_id) else {
                tracing::warn!(network = %ep.network_id, container = %ep.container_id, "endpoint of an unknown network dropped");
                let _ = store.remove_endpoint(&ep.network_id, &ep.container_id);
                continue;
            };
            if let Some(space) = net.space.as_mut() {
                if let Err(e) = space.claim(ep.ip) {
                    tracing::warn!(network = %net.rec.name, container = %ep.container_id, error = %e, "endpoint address not claimable");
                }
            }
            for p in &ep.ports {
                ports.insert(p);
            }
            net.eps.insert(ep.container_id.clone(), ep);
        }
        let pool = std::sync::Arc::new(crate::pool::Pool::new(cfg.pool_dir.clone(), cfg.pool_size));
        let nw = Networks {
            cfg,
            store,
            pool,
            state: Mutex::new(State {
                nets,
                ports,
                nl: None,
                loaded_fw: None,
            }),
        };
        {
            let mut st = nw.lock();
            nw.ensure_predefined(&mut st)?;
            let bridges: Vec<String> = st
                .nets
                .values()
                .filter(|n| n.rec.bridge.is_some())
                .map(|n| n.rec.id.clone())
                .collect();
            for id in bridges {
                nw.ensure_device(&mut st, &id)?;
            }
            nw.apply_firewall(&mut st)?;
        }
        Ok(nw)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn ensure_predefined(&self, st: &mut State) -> Result<(), NetworkError> {
        for (name, driver) in [("none", Driver::Null), ("host", Driver::Host)] {
            if !st.nets.values().any(|n| n.rec.name == name) {
                let rec = NetworkRecord::bare(random_id(), name, driver, chrono::Utc::now());
                self.store.save_network(&rec)?;
                st.nets.insert(
                    rec.id.clone(),
                    Net {
                        rec,
                        space: None,
                        eps: BTreeMap::new(),
                    },
                );
            }
        }
        let d = self.cfg.default_bridge.clone();
        // The default network made with other settings (daemon.json `bip`, `mtu` or
        // `bridge` changed): made again, unless containers are on it.
        let stale = st.nets.values().find(|n| n.rec.default_bridge).filter(|n| {
            let (Some(b), Some(i)) = (&n.rec.bridge, &n.rec.ipam) else {
                return false;
            };
            b.name != d.name
                || b.mtu != d.mtu
                || d.subnet.is_some_and(|s| s != i.subnet)
                || d.gateway.is_some_and(|g| g != i.gateway)
        });
        if let Some(n) = stale {
            let id = n.rec.id.clone();
            if n.eps.is_empty() {
                tracing::info!(
                    network = DEFAULT_NETWORK,
                    "default bridge settings changed: making it again"
                );
                self.drop_network(st, &id);
            } else {
                tracing::warn!(network = DEFAULT_NETWORK, "default bridge settings changed; they apply once no container is on it (kept as it is)");
            }
        }
        if !st.nets.values().any(|n| n.rec.name == DEFAULT_NETWORK) {
            let req = CreateNetwork {
                name: DEFAULT_NETWORK.to_string(),
                subnet: d.subnet.map(|s| s.to_string()),
                gateway: d.gateway.map(|g| g.to_string()),
                options: inspect::default_bridge_options(&d.name, d.mtu, d.icc, d.masquerade),
                ..Default::default()
            };
            self.create_locked(st, req, true)?;
        }
        Ok(())
    }

    /// Makes the network's bridge exist and be configured; forwarding on when needed.
    pub(crate) fn ensure_device(&self, st: &mut State, id: &str) -> Result<(), NetworkError> {
        let Some(net) = st.nets.get(id) else {
            return Ok(());
        };
        let (Some(b), Some(i)) = (net.rec.bridge.clone(), net.rec.ipam.clone()) else {
            return Ok(());
        };
        let (name, internal) = (net.rec.name.clone(), net.rec.internal);
        let created = bridge::ensure_bridge(st.nl(&name)?, &name, &b, &i)?;
        if !internal {
            sysctl::enable_ip_forward().map_err(|source| NetworkError::Sysctl {
                name: name.clone(),
                source,
            })?;
        }
        if created && !b.created_device {
            if let Some(net) = st.nets.get_mut(id) {
                if let Some(br) = net.rec.bridge.as_mut() {
                    br.created_device = true;
                }
                self.store.save_network(&net.rec)?;
            }
        }
        Ok(())
    }

    /// Deletes the device (if skiff made it) and the records of network `id`.
    pub(crate) fn drop_network(&self, st: &mut State, id: &str) {
        let Some(net) = st.nets.remove(id) else {
            return;
        };
        if let Some(b) = net.rec.bridge.as_ref().filter(|b| b.created_device) {
            if let Ok(nl) = st.nl(&net.rec.name) {
                if let Err(e) = nl.delete_link_by_name(&b.name) {
                    tracing::warn!(network = %net.rec.name, error = %e, "bridge not deleted");
                }
            }
        }
        if let Err(e) = self.store.remove_network(id) {
            tracing::warn!(network = %net.rec.name, error = %e, "network record not removed");
        }
    }

    /// All networks, as `GET /networks` shows them (`Containers` empty).
    pub fn list(&self) -> Vec<NetworkResource> {
        let st = self.lock();
        let mut v: Vec<NetworkResource> = st
            .nets
            .values()
            .map(|n| inspect::resource(&n.rec, []))
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// One network by id, name or unique id prefix, with its containers.
    pub fn inspect(&self, key: &str) -> Result<NetworkResource, NetworkError> {
        let st = self.lock();
        let id = st.find(key)?;
        let n = &st.nets[&id];
        Ok(inspect::resource(&n.rec, n.eps.values()))
    }

    /// Removes a network; refused for predefined ones and while containers are connected.
    pub fn remove(&self, key: &str) -> Result<(), NetworkError> {
        let mut st = self.lock();
        let id = st.find(key)?;
        let n = &st.nets[&id];
        if n.rec.predefined() {
            return Err(NetworkError::Predefined(n.rec.name.clone()));
        }
        if !n.eps.is_empty() {
            let containers = n
                .eps
                .values()
                .map(|e| e.container_name.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(NetworkError::ActiveEndpoints {
                name: n.rec.name.clone(),
                containers,
            });
        }
        let name = n.rec.name.clone();
        self.drop_network(&mut st, &id);
        self.apply_firewall(&mut st)?;
        tracing::info!(network = %name, id = %id, "network removed");
        Ok(())
    }

    /// Removes every user-defined network without endpoints for which `select` says yes
    /// (the API's `until`/`label` filters); returns the names removed.
    pub fn prune(
        &self,
        select: impl Fn(&NetworkResource) -> bool,
    ) -> Result<Vec<String>, NetworkError> {
        let mut st = self.lock();
        let victims: Vec<(String, String)> = st
            .nets
            .values()
            .filter(|n| {
                !n.rec.predefined() && n.eps.is_empty() && select(&inspect::resource(&n.rec, []))
            })
            .map(|n| (n.rec.id.clone(), n.rec.name.clone()))
            .collect();
        for (id, _) in &victims {
            self.drop_network(&mut st, id);
        }
        self.apply_firewall(&mut st)?;
        Ok(victims.into_iter().map(|(_, n)| n).collect())
    }
}
