//! Endpoints: a container's interface on a network. Connect, disconnect, the per-container
//! namespace files, the DNS table, and reconcile after a daemon crash.

use std::collections::{BTreeMap, HashSet};
use std::net::Ipv4Addr;
use std::path::PathBuf;

use crate::bridge::{self, Plumbing};
use crate::dns::{DnsEntry, DnsTable};
use crate::error::NetworkError;
use crate::model::{format_mac, mac_for, random_id, EndpointRecord, EndpointState};
use crate::netns;
use crate::networks::{Networks, State};
use crate::ports::{PortRequest, PublishedPort};

/// Prefix of the host ends of skiff's veth pairs (`skv` + 11 hex of the endpoint id);
/// reconcile deletes strays by it.
pub const VETH_PREFIX: &str = "skv";

/// `POST /networks/{id}/connect` and container start, decoded.
#[derive(Debug, Clone, Default)]
pub struct ConnectRequest {
    pub container_id: String,
    /// Without the leading '/'.
    pub container_name: String,
    /// Network-scoped aliases (user-defined networks only).
    pub aliases: Vec<String>,
    /// The container's network namespace file (see [`Networks::create_netns`]).
    pub netns: PathBuf,
    /// `--ip` (user-defined networks with a user-chosen subnet only).
    pub ipv4: Option<Ipv4Addr>,
    /// `--mac-address`; `None`: Docker's `02:42:` + the address.
    pub mac: Option<[u8; 6]>,
    /// Ports to publish through this endpoint (from `HostConfig.PortBindings`, see
    /// [`crate::ports::requests`]); ignored on internal networks.
    pub ports: Vec<PortRequest>,
}

/// What the engine records in `NetworkSettings.Networks[name]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointInfo {
    pub network_id: String,
    pub network_name: String,
    pub endpoint_id: String,
    pub container_id: String,
    pub ifname: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    /// `None` on internal networks (no route out).
    pub gateway: Option<Ipv4Addr>,
    pub mac: String,
    pub aliases: Vec<String>,
    pub ports: Vec<PublishedPort>,
}

fn info_of(st: &State, e: &EndpointRecord) -> EndpointInfo {
    let net = &st.nets[&e.network_id];
    let ipam = net.rec.ipam.as_ref();
    EndpointInfo {
        network_id: e.network_id.clone(),
        network_name: net.rec.name.clone(),
        endpoint_id: e.endpoint_id.clone(),
        container_id: e.container_id.clone(),
        ifname: e.ifname.clone(),
        ip: e.ip,
        prefix: ipam.map(|i| i.subnet.prefix()).unwrap_or(32),
        gateway: ipam.filter(|_| !net.rec.internal).map(|i| i.gateway),
        mac: e.mac.clone(),
        aliases: e.aliases.clone(),
        ports: e.ports.clone(),
    }
}

impl Networks {
    /// Creates the container's persistent network namespace `<netns_dir>/<container_id>`
    /// (idempotent); pass the path to the OCI spec's `linux.namespaces` network entry.
    pub fn create_netns(&self, container_id: &str) -> Result<PathBuf, NetworkError> {
        Ok(netns::create(&self.cfg.netns_dir, container_id)?)
    }

    /// [`Networks::create_netns`], taking a prepared namespace from the pool when the
    /// container's first network (`first_network`, by name or id) is the default bridge and
    /// the pool has one: eth0 is then already in it, and [`Networks::connect`] only finishes it.
    pub fn create_netns_for(
        &self,
        container_id: &str,
        first_network: &str,
    ) -> Result<PathBuf, NetworkError> {
        let path = self.netns_path(container_id);
        if !netns::is_netns_file(&path) {
            let bridge = {
                let st = self.lock();
                st.find(first_network)
                    .ok()
                    .map(|id| &st.nets[&id].rec)
                    .filter(|r| r.default_bridge)
                    .and_then(|r| r.bridge.as_ref().map(|b| (b.name.clone(), b.mtu)))
            };
            if let Some((bridge, mtu)) = bridge {
                if let Some(p) = self
                    .pool
                    .take(container_id, &self.cfg.netns_dir, &bridge, mtu)
                {
                    return Ok(p);
                }
            }
        }
        self.create_netns(container_id)
    }

    /// Unmounts and deletes the container's namespace file (idempotent).
    pub fn remove_netns(&self, container_id: &str) -> Result<(), NetworkError> {
        self.pool.unclaim(container_id);
        Ok(netns::remove(&self.cfg.netns_dir, container_id)?)
    }

    /// Stops the pool of prepared namespaces and removes its entries (daemon stop).
    pub fn shutdown_pool(&self) {
        self.pool.shutdown();
    }

    /// The namespace file path a container gets.
    pub fn netns_path(&self, container_id: &str) -> PathBuf {
        self.cfg.netns_dir.join(container_id)
    }

    /// Connects a container (its namespace must exist) to a bridge network.
    pub fn connect(
        &self,
        network: &str,
        req: &ConnectRequest,
    ) -> Result<EndpointInfo, NetworkError> {
        let mut st = self.lock();
        let id = st.find(network)?;
        let net = &st.nets[&id];
        let name = net.rec.name.clone();
        let (Some(b), Some(ipam)) = (net.rec.bridge.clone(), net.rec.ipam.clone()) else {
            return Err(NetworkError::NotSupported {
                name,
                what: "container cannot be connected to it: use it as the network mode".to_string(),
            });
        };
        let (internal, default_bridge) = (net.rec.internal, net.rec.default_bridge);
        match net.eps.get(&req.container_id).map(|e| e.state) {
            Some(EndpointState::Ready) => {
                return Err(NetworkError::AlreadyConnected {
                    network: name,
                    container: req.container_name.clone(),
                })
            }
            Some(EndpointState::Creating) => self.teardown(&mut st, &id, &req.container_id),
            None => {}
        }
        let invalid = |what: &str| NetworkError::Invalid {
            name: name.clone(),
            what: what.to_string(),
        };
        if default_bridge && !req.aliases.is_empty() {
            return Err(invalid(
                "network-scoped aliases are supported only for containers in user defined networks",
            ));
        }
        if req.ipv4.is_some() && !ipam.user_subnet {
            return Err(invalid("user specified IP address is supported only when connecting to networks with user configured subnets"));
        }
        let taken_if: HashSet<String> = st
            .nets
            .values()
            .filter_map(|n| n.eps.get(&req.container_id))
            .map(|e| e.ifname.clone())
            .collect();
        let ifname = (0..)
            .map(|i| format!("eth{i}"))
            .find(|n| !taken_if.contains(n))
            .expect("unbounded");
        // Addresses and ports: all or nothing.
        let net = st.nets.get_mut(&id).expect("found above");
        let space = net
            .space
            .as_mut()
            .expect("bridge networks have an address space");
        let ip = match req.ipv4 {
            Some(ip) => space.claim(ip).map(|()| ip),
            None => space.allocate(),
        }
        .map_err(|source| NetworkError::Ipam {
            name: name.clone(),
            source,
        })?;
        let wanted: Vec<PortRequest> = if internal {
            Vec::new()
        } else {
            req.ports
                .iter()
                .map(|r| PortRequest {
                    host_ip: if r.host_ip.is_unspecified() {
                        b.host_binding_ipv4
                    } else {
                        r.host_ip
                    },
                    ..*r
                })
                .collect()
        };
        if !wanted.is_empty() && self.cfg.firewall.is_none() {
            if let Some(s) = st.nets.get_mut(&id).and_then(|n| n.space.as_mut()) {
                s.release(ip);
            }
            return Err(NetworkError::NotSupported {
                name,
                what: "publishing ports needs nft or iptables, and neither was found".to_string(),
            });
        }
        let ports = match st.ports.allocate(&wanted) {
            Ok(p) => p,
            Err(source) => {
                if let Some(s) = st.nets.get_mut(&id).and_then(|n| n.space.as_mut()) {
                    s.release(ip);
                }
                return Err(NetworkError::Ports { name, source });
            }
        };
        // The container's first interface on the default bridge may come prepared from
        // the pool (see crate::pool): then only its MAC, address and route are left.
        let mut prepared = (ifname == "eth0")
            .then(|| self.pool.claim(&req.container_id, &b.name))
            .flatten()
            .filter(|p| p.mtu() == b.mtu);
        let endpoint_id = match &prepared {
            Some(p) => p.endpoint_id.clone(),
            None => random_id(),
        };
        let mac = match req.mac {
            Some(m) => m,
            None => mac_for(ip),
        };
        let mut rec = EndpointRecord {
            endpoint_id: endpoint_id.clone(),
            network_id: id.clone(),
            container_id: req.container_id.clone(),
            container_name: req.container_name.trim_start_matches('/').to_string(),
            aliases: req.aliases.clone(),
            netns: req.netns.clone(),
            ifname: ifname.clone(),
            host_veth: match &prepared {
                Some(p) => p.host_veth.clone(),
                None => format!("{VETH_PREFIX}{}", &endpoint_id[..11]),
            },
            ip,
            mac: format_mac(&mac),
            static_ip: req.ipv4.is_some(),
            ports,
            state: EndpointState::Creating,
        };
        let result = (|| -> Result<(), NetworkError> {
            // Only the finished endpoint is written (one fsync'd write on the start path); a
            // crash before that leaves at most an `skv…` veth that no record owns, which
            // reconcile deletes.
            if let Some(n) = st.nets.get_mut(&id) {
                n.eps.insert(rec.container_id.clone(), rec.clone());
            }
            let p = Plumbing {
                network: &name,
                bridge: &b.name,
                mtu: b.mtu,
                host_veth: &rec.host_veth,
                netns: &req.netns,
                ifname: &ifname,
                mac,
                ip,
                prefix: ipam.subnet.prefix(),
                gateway: (!internal).then_some(ipam.gateway),
            };
            match prepared.as_mut() {
                Some(pre) => pre.finish(mac, ip, p.prefix, p.gateway).map_err(|source| {
                    NetworkError::Netlink {
                        name: name.clone(),
                        source,
                    }
                })?,
                None => bridge::plumb(st.nl(&name)?, &p)?,
            }
            rec.state = EndpointState::Ready;
            self.store.save_endpoint(&rec)?;
            if let Some(n) = st.nets.get_mut(&id) {
                n.eps.insert(rec.container_id.clone(), rec.clone());
            }
            if !rec.ports.is_empty() {
                self.apply_firewall(&mut st)?;
            }
            Ok(())
        })();
        if let Err(e) = result {
            self.teardown(&mut st, &id, &req.container_id);
            // The slot may not have been recorded yet: release what was taken directly too.
            if let Some(s) = st.nets.get_mut(&id).and_then(|n| n.space.as_mut()) {
                s.release(ip);
            }
            for p in &rec.ports {
                st.ports.remove(p);
            }
            let _ = self.apply_firewall(&mut st);
            return Err(e);
        }
        tracing::info!(network = %name, container = %req.container_id, %ip, "endpoint connected");
        Ok(info_of(&st, &rec))
    }

    /// Removes the endpoint's veth, records and published ports (no firewall reload).
    pub(crate) fn teardown(&self, st: &mut State, network_id: &str, container_id: &str) {
        self.teardown_opts(st, network_id, container_id, true)
    }

    /// [`Networks::teardown`]; without `delete_veth` the veth pair is left to the kernel,
    /// which deletes it with the container's namespace (the caller removes that next): an
    /// explicit deletion waits ~30 ms in the kernel while holding the networks' lock, which
    /// would stall every other container's start behind a stop.
    pub(crate) fn teardown_opts(
        &self,
        st: &mut State,
        network_id: &str,
        container_id: &str,
        delete_veth: bool,
    ) {
        let Some(rec) = st
            .nets
            .get_mut(network_id)
            .and_then(|n| n.eps.remove(container_id))
        else {
            return;
        };
        if let Some(s) = st.nets.get_mut(network_id).and_then(|n| n.space.as_mut()) {
            s.release(rec.ip);
        }
        for p in &rec.ports {
            st.ports.remove(p);
        }
        if !delete_veth {
            tracing::debug!(veth = %rec.host_veth, "veth left to the namespace's destruction");
        } else if let Ok(nl) = st.nl(network_id) {
            if let Err(e) = nl.delete_link_by_name(&rec.host_veth) {
                tracing::warn!(veth = %rec.host_veth, error = %e, "veth not deleted");
            }
        }
        if let Err(e) = self.store.remove_endpoint(network_id, container_id) {
            tracing::warn!(container = %container_id, error = %e, "endpoint record not removed");
        }
    }

    /// Disconnects a container from a network.
    pub fn disconnect(&self, network: &str, container_id: &str) -> Result<(), NetworkError> {
        let mut st = self.lock();
        let id = st.find(network)?;
        if !st.nets[&id].eps.contains_key(container_id) {
            return Err(NetworkError::NotConnected {
                network: st.nets[&id].rec.name.clone(),
                container: container_id.to_string(),
            });
        }
        self.teardown(&mut st, &id, container_id);
        self.apply_firewall(&mut st)
    }

    /// Disconnects a container from every network (container stop/remove; idempotent),
    /// deleting its veths.
    pub fn disconnect_all(&self, container_id: &str) -> Result<(), NetworkError> {
        self.disconnect_all_opts(container_id, true)
    }

    /// [`Networks::disconnect_all`] for a container whose namespace is removed next
    /// ([`Networks::remove_netns`]): its veths go with the namespace, in the kernel's time,
    /// not under the networks' lock.
    pub fn disconnect_all_before_netns_removal(
        &self,
        container_id: &str,
    ) -> Result<(), NetworkError> {
        self.disconnect_all_opts(container_id, false)
    }

    fn disconnect_all_opts(
        &self,
        container_id: &str,
        delete_veth: bool,
    ) -> Result<(), NetworkError> {
        let mut st = self.lock();
        let ids: Vec<String> = st
            .nets
            .iter()
            .filter(|(_, n)| n.eps.contains_key(container_id))
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            self.teardown_opts(&mut st, &id, container_id, delete_veth);
        }
        self.apply_firewall(&mut st)
    }

    /// The container's endpoints, in interface order.
    pub fn endpoints(&self, container_id: &str) -> Vec<EndpointInfo> {
        let st = self.lock();
        let mut v: Vec<EndpointInfo> = st
            .nets
            .values()
            .filter_map(|n| n.eps.get(container_id))
            .map(|e| info_of(&st, e))
            .collect();
        v.sort_by_key(|e| {
            e.ifname
                .trim_start_matches("eth")
                .parse::<u32>()
                .unwrap_or(u32::MAX)
        });
        v
    }

    /// Whether the container is on a user-defined network (it then uses the embedded DNS).
    pub fn uses_embedded_dns(&self, container_id: &str) -> bool {
        let st = self.lock();
        st.nets
            .values()
            .any(|n| !n.rec.default_bridge && n.eps.contains_key(container_id))
    }

    /// Names for the embedded DNS server: ready endpoints of user-defined networks.
    pub fn dns_table(&self) -> DnsTable {
        let st = self.lock();
        let mut entries = Vec::new();
        for n in st
            .nets
            .values()
            .filter(|n| !n.rec.default_bridge && n.rec.bridge.is_some())
        {
            for e in n.eps.values().filter(|e| e.state == EndpointState::Ready) {
                let mut names = vec![e.container_name.to_ascii_lowercase()];
                names.extend(e.aliases.iter().map(|a| a.to_ascii_lowercase()));
                names.push(
                    e.container_id
                        .chars()
                        .take(12)
                        .collect::<String>()
                        .to_ascii_lowercase(),
                );
                names.retain(|n| !n.is_empty());
                entries.push(DnsEntry {
                    container_id: e.container_id.clone(),
                    network_id: n.rec.id.clone(),
                    network_name: n.rec.name.clone(),
                    names,
                    ip: e.ip,
                });
            }
        }
        DnsTable { entries }
    }

    /// Every endpoint, per container id (for the engine's views).
    pub fn all_endpoints(&self) -> BTreeMap<String, Vec<EndpointInfo>> {
        let st = self.lock();
        let mut out: BTreeMap<String, Vec<EndpointInfo>> = BTreeMap::new();
        for n in st.nets.values() {
            for e in n.eps.values() {
                out.entry(e.container_id.clone())
                    .or_default()
                    .push(info_of(&st, e));
            }
        }
        out
    }
}
