//! Containers on networks (skiff-net): which networks a container asks for at create
//! (`NetworkMode` and `NetworkingConfig.EndpointsConfig`), bringing its namespace up before
//! its process exists (a netns file, one endpoint per network, published ports on the
//! first, resolv.conf and hosts to match, the embedded DNS server) and down after it exits,
//! `network connect/disconnect`, and reattaching after a daemon restart.
//!
//! Modes: `bridge` (also `default`/empty) and user-defined network names get a namespace
//! of their own from skiff-net; `none` a bare namespace (the runtime makes it); `host` the
//! host's; `container:<id>` joins a running container's namespace.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use skiff_net::{ConnectRequest, DnsServer, Networks};

use super::model::{Container, HostConfig, NetAttach};
use super::service::{Containers, ContainersError, Result};

/// The daemon's networking, handed to the container service when networking is on.
pub struct Net {
    pub networks: Arc<Networks>,
    pub dns: DnsServer,
    /// Containers whose networks are being taken down in the background.
    pub(crate) tearing: TearingDown,
}

impl Net {
    pub fn new(networks: Arc<Networks>, dns: DnsServer) -> Net {
        Net {
            networks,
            dns,
            tearing: TearingDown::default(),
        }
    }
}

/// Background teardowns in flight: a container's next start, and network removals, wait
/// for them (the veth deletion alone costs ~30 ms of kernel time, which an exiting
/// `run --rm` need not wait for).
#[derive(Default)]
pub(crate) struct TearingDown {
    ids: std::sync::Mutex<HashSet<String>>,
    done: std::sync::Condvar,
}

impl TearingDown {
    fn begin(&self, id: &str) {
        self.ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_string());
    }

    fn end(&self, id: &str) {
        self.ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        self.done.notify_all();
    }

    /// Waits (at most 30 s) until `id` (or, with None, every container) is torn down.
    fn wait(&self, id: Option<&str>) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut ids = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let busy = match id {
                Some(i) => ids.contains(i),
                None => !ids.is_empty(),
            };
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if !busy || left.is_zero() {
                return;
            }
            ids = self
                .done
                .wait_timeout(ids, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

/// The effective network mode (`default` and empty are `bridge`, or `none` with
/// networking off).
pub fn mode(h: &HostConfig, net_on: bool) -> &str {
    match h.network_mode.as_str() {
        "" | "default" if net_on => "bridge",
        "" | "default" => "none",
        m => m,
    }
}

/// Whether a mode names networks (gets a namespace from skiff-net).
pub fn on_networks(mode: &str) -> bool {
    !matches!(mode, "none" | "host") && !mode.starts_with("container:")
}

pub(crate) fn net_err(e: skiff_net::NetworkError) -> ContainersError {
    use skiff_net::ErrorKind as K;
    match e.kind() {
        K::NotFound => ContainersError::NotFound(e.to_string()),
        K::Conflict => ContainersError::Conflict(e.to_string()),
        K::InvalidArgument | K::Forbidden => ContainersError::Invalid(e.to_string()),
        _ => ContainersError::System(e.to_string()),
    }
}

/// One `EndpointsConfig` entry: aliases, `IPAMConfig.IPv4Address` and `MacAddress`.
pub fn attach_of(v: &Value) -> NetAttach {
    NetAttach {
        mac_address: v["MacAddress"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        aliases: v["Aliases"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        ipv4: v["IPAMConfig"]["IPv4Address"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        ..Default::default()
    }
}

impl Containers {
    /// Turns networking on (the daemon, once, at start).
    pub fn set_net(&self, net: Net) {
        let _ = self.net.set(net);
    }

    /// The daemon's networking, when on.
    pub fn net(&self) -> Option<&Net> {
        self.net.get()
    }

    /// The networks a new container asks for, checked to exist (by name or id; recorded by
    /// name).
    /// `mac` is the deprecated `Config.MacAddress`: the mode network's endpoint gets it
    /// unless its own `MacAddress` is set (as API v1.44 migrates it).
    pub(crate) fn requested_networks(
        &self,
        h: &HostConfig,
        endpoints: Option<&Value>,
        mac: Option<&str>,
    ) -> Result<BTreeMap<String, NetAttach>> {
        let mac = mac.filter(|m| !m.is_empty());
        if let Some(m) = mac {
            check_mac(m)?;
        }
        let mode = mode(h, self.net().is_some()).to_string();
        let mut out = BTreeMap::new();
        if let Some(other) = mode.strip_prefix("container:") {
            self.get(other)?;
            return Ok(out);
        }
        if !on_networks(&mode) {
            if mac.is_some() {
                return Err(ContainersError::Invalid(format!(
                    "conflicting options: mac-address and the network mode {mode}"
                )));
            }
            return Ok(out);
        }
        let Some(net) = self.net() else {
            return Err(ContainersError::Invalid(format!(
                "network {mode} not found: networking is off in this daemon (\"bridge\": \"none\")"
            )));
        };
        let eps = endpoints.and_then(Value::as_object);
        // The docker CLI keys the mode's endpoint by the mode as given ("default" when
        // no --network).
        let mut wanted: Vec<(String, NetAttach)> = vec![(
            mode.clone(),
            eps.and_then(|m| {
                let by_default = matches!(h.network_mode.as_str(), "" | "default");
                m.get(&mode)
                    .or_else(|| by_default.then(|| m.get("default")).flatten())
            })
            .map(attach_of)
            .unwrap_or_default(),
        )];
        for (k, v) in eps.into_iter().flatten() {
            if k != &mode && k != "default" {
                wanted.push((k.clone(), attach_of(v)));
            }
        }
        if let (Some(m), Some(first)) = (mac, wanted.first_mut()) {
            if first.1.mac_address.is_none() {
                first.1.mac_address = Some(m.to_string());
            }
        }
        for (name, att) in wanted {
            if let Some(m) = &att.mac_address {
                check_mac(m)?;
            }
            let res = net.networks.inspect(&name).map_err(net_err)?;
            if res.name == "host" || res.name == "none" {
                return Err(ContainersError::Invalid(format!(
                    "container cannot be connected to host and none networks with others: {name}"
                )));
            }
            out.insert(res.name, att);
        }
        Ok(out)
    }

    /// Brings a container's networks up before its process exists: returns the namespace
    /// path for the spec and the endpoints to record. Writes resolv.conf and hosts.
    pub(crate) fn net_up(
        &self,
        dir: &Path,
        c: &Container,
    ) -> Result<(Option<PathBuf>, BTreeMap<String, NetAttach>)> {
        let h = &c.host_config;
        let mode = mode(h, self.net().is_some()).to_string();
        if let Some(other) = mode.strip_prefix("container:") {
            let o = self.get(other)?.snapshot();
            if !o.state.running {
                return Err(ContainersError::Conflict(format!(
                    "cannot join network of a non running container: {}",
                    o.id
                )));
            }
            return Ok((
                Some(PathBuf::from(format!("/proc/{}/ns/net", o.state.pid))),
                BTreeMap::new(),
            ));
        }
        let (Some(net), false) = (self.net(), c.networks.is_empty()) else {
            return Ok((None, BTreeMap::new()));
        };
        // A teardown of the previous run may still be going (same namespace file).
        let t0 = std::time::Instant::now();
        net.tearing.wait(Some(&c.id));
        let waited_ms = t0.elapsed().as_secs_f64() * 1e3;
        let nw = &net.networks;
        // The mode's network first: a prepared namespace from the pool when it is the
        // default bridge.
        let path = nw.create_netns_for(&c.id, &mode).map_err(net_err)?;
        let netns_ms = t0.elapsed().as_secs_f64() * 1e3;
        let res = (|| {
            let mut map = skiff_net::PortMap::new();
            for (k, v) in h.port_bindings.iter().flatten() {
                map.insert(
                    k.clone(),
                    v.iter()
                        .flatten()
                        .map(|b| skiff_net::PortBinding {
                            host_ip: b.host_ip.clone(),
                            host_port: b.host_port.clone(),
                        })
                        .collect(),
                );
            }
            if h.publish_all_ports {
                let exposed: Vec<&str> = c
                    .config
                    .exposed_ports
                    .iter()
                    .flatten()
                    .map(|(k, _)| k.as_str())
                    .collect();
                skiff_net::ports::publish_all(exposed, &mut map);
            }
            let ports = skiff_net::ports::requests(&map)
                .map_err(|e| ContainersError::Invalid(e.to_string()))?;
            // The mode's network first: it gets the published ports and the default route.
            let mut order: Vec<&String> = c.networks.keys().collect();
            order.sort_by_key(|n| **n != mode);
            let mut got = BTreeMap::new();
            for (i, name) in order.into_iter().enumerate() {
                let att = &c.networks[name];
                let ipv4 = match &att.ipv4 {
                    Some(s) => Some(s.parse().map_err(|_| {
                        ContainersError::Invalid(format!("invalid IPv4 address: {s}"))
                    })?),
                    None => None,
                };
                let mac = att.mac_address.as_deref().map(check_mac).transpose()?;
                let info = nw
                    .connect(
                        name,
                        &ConnectRequest {
                            container_id: c.id.clone(),
                            container_name: c.short_name().to_string(),
                            aliases: att.aliases.clone(),
                            netns: path.clone(),
                            ipv4,
                            mac,
                            ports: if i == 0 { ports.clone() } else { Vec::new() },
                        },
                    )
                    .map_err(net_err)?;
                got.insert(name.clone(), attach_from(att, &info));
            }
            let connected_ms = t0.elapsed().as_secs_f64() * 1e3;
            self.write_net_files(dir, c, &got)?;
            self.dns_attach(c, &path);
            tracing::debug!(
                container = %c.id,
                waited_ms,
                netns_ms,
                connected_ms,
                done_ms = t0.elapsed().as_secs_f64() * 1e3,
                "networks up: timings"
            );
            Ok(got)
        })();
        match res {
            Ok(got) => Ok((Some(path), got)),
            Err(e) => {
                self.net_down(&c.id);
                Err(e)
            }
        }
    }

    fn write_net_files(
        &self,
        dir: &Path,
        c: &Container,
        got: &BTreeMap<String, NetAttach>,
    ) -> Result<()> {
        let Some(net) = self.net() else { return Ok(()) };
        let h = &c.host_config;
        let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let empty = Vec::new();
        let rc = skiff_net::resolv::container_resolv_conf(
            &host,
            net.networks.uses_embedded_dns(&c.id),
            &skiff_net::resolv::DnsSettings {
                dns: h.dns.as_ref().unwrap_or(&empty),
                search: h.dns_search.as_ref().unwrap_or(&empty),
                options: h.dns_options.as_ref().unwrap_or(&empty),
            },
        );
        std::fs::write(dir.join("resolv.conf"), rc).map_err(super::service::sys(dir.display()))?;
        super::files::write_hosts(dir, c, got).map_err(super::service::sys(dir.display()))
    }

    fn dns_attach(&self, c: &Container, path: &Path) {
        let Some(net) = self.net() else { return };
        if net.networks.uses_embedded_dns(&c.id) {
            let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
            let ups = skiff_net::resolv::upstreams(
                &host,
                c.host_config.dns.as_deref().unwrap_or_default(),
            );
            if let Err(e) = net.dns.attach(&c.id, path, ups) {
                tracing::warn!(container = %c.id, error = %e, "embedded DNS: attach failed");
            }
        }
        net.dns.set_table(net.networks.dns_table());
    }

    /// [`Containers::net_down`] in the background; the container's next start and network
    /// removals wait for it ([`Containers::wait_net_teardowns`]).
    pub(crate) fn net_down_later(self: &Arc<Self>, id: &str) {
        let Some(net) = self.net() else { return };
        net.tearing.begin(id);
        let (this, id) = (self.clone(), id.to_string());
        tokio::task::spawn_blocking(move || {
            this.net_down(&id);
            if let Some(net) = this.net() {
                net.tearing.end(&id);
            }
        });
    }

    /// Daemon stop: the pool of prepared namespaces goes (running containers keep theirs).
    pub fn net_shutdown(&self) {
        if let Some(net) = self.net() {
            net.networks.shutdown_pool();
        }
    }

    /// Waits for the background network teardowns in flight (before removing a network:
    /// a just-removed container's endpoint must be gone first).
    pub fn wait_net_teardowns(&self) {
        if let Some(net) = self.net() {
            net.tearing.wait(None);
        }
    }

    /// Takes a container's networks down (after its process is gone). Idempotent.
    pub(crate) fn net_down(&self, id: &str) {
        let Some(net) = self.net() else { return };
        net.dns.detach(id);
        if let Err(e) = net.networks.disconnect_all_before_netns_removal(id) {
            tracing::warn!(container = %id, error = %e, "network disconnect failed");
        }
        if let Err(e) = net.networks.remove_netns(id) {
            tracing::warn!(container = %id, error = %e, "remove network namespace failed");
        }
        net.dns.set_table(net.networks.dns_table());
    }

    /// After a daemon restart: drop endpoints of containers that are gone, and serve DNS
    /// again to the running ones.
    pub fn net_reconcile(&self) {
        let Some(net) = self.net() else { return };
        let live: HashSet<String> = self
            .all()
            .into_iter()
            .map(|e| e.snapshot())
            .filter(|c| c.state.running)
            .map(|c| c.id)
            .collect();
        match net.networks.reconcile(&live) {
            Ok(r) => tracing::info!(report = ?r, "networks reconciled"),
            Err(e) => tracing::error!(error = %e, "network reconcile failed"),
        }
        for e in self.all() {
            let c = e.snapshot();
            if c.state.running && !c.sandbox_key.is_empty() {
                self.dns_attach(&c, Path::new(&c.sandbox_key));
            }
        }
        net.dns.set_table(net.networks.dns_table());
    }

    /// `POST /networks/{id}/connect`: a running container joins now, a stopped one at its
    /// next start.
    pub async fn network_connect(
        self: &Arc<Self>,
        network: &str,
        what: &str,
        endpoint: Option<&Value>,
    ) -> Result<()> {
        let Some(net) = self.net() else {
            return Err(ContainersError::Invalid(
                "networking is off in this daemon".into(),
            ));
        };
        let e = self.get(what)?;
        let _op = e.op.lock().await;
        let c = e.snapshot();
        let mode = mode(&c.host_config, true).to_string();
        if !on_networks(&mode) {
            return Err(ContainersError::Invalid(format!(
                "container sharing network namespace with another container or host cannot be connected to any other network ({mode})"
            )));
        }
        let res = net.networks.inspect(network).map_err(net_err)?;
        if c.networks.contains_key(&res.name) {
            return Err(ContainersError::Conflict(format!(
                "endpoint with name {} already exists in network {}",
                c.short_name(),
                res.name
            )));
        }
        let att = endpoint.map(attach_of).unwrap_or_default();
        let mut rec = att.clone();
        if c.state.running && !c.sandbox_key.is_empty() {
            let nw = net.networks.clone();
            let req = ConnectRequest {
                container_id: c.id.clone(),
                container_name: c.short_name().to_string(),
                aliases: att.aliases.clone(),
                netns: PathBuf::from(&c.sandbox_key),
                ipv4: att.ipv4.as_deref().and_then(|s| s.parse().ok()),
                mac: att.mac_address.as_deref().map(check_mac).transpose()?,
                ports: Vec::new(),
            };
            let name = res.name.clone();
            let info = tokio::task::spawn_blocking(move || nw.connect(&name, &req))
                .await
                .map_err(|j| ContainersError::System(j.to_string()))?
                .map_err(net_err)?;
            rec = attach_from(&att, &info);
            let mut all = c.networks.clone();
            all.insert(res.name.clone(), rec.clone());
            let _ = self.write_net_files(&e.dir, &c, &all);
            self.dns_attach(&c, Path::new(&c.sandbox_key));
        }
        e.save(|c| {
            c.networks.insert(res.name.clone(), rec.clone());
        })?;
        self.events.emit(
            "network",
            "connect",
            &res.id,
            [
                ("container".to_string(), c.id.clone()),
                ("name".to_string(), res.name.clone()),
                ("type".to_string(), "bridge".to_string()),
            ]
            .into(),
        );
        Ok(())
    }

    /// `POST /networks/{id}/disconnect`.
    pub async fn network_disconnect(self: &Arc<Self>, network: &str, what: &str) -> Result<()> {
        let Some(net) = self.net() else {
            return Err(ContainersError::Invalid(
                "networking is off in this daemon".into(),
            ));
        };
        let e = self.get(what)?;
        let _op = e.op.lock().await;
        let c = e.snapshot();
        let res = net.networks.inspect(network).map_err(net_err)?;
        if !c.networks.contains_key(&res.name) {
            return Err(ContainersError::NotFound(format!(
                "container {} is not connected to network {}",
                c.id, res.name
            )));
        }
        if c.state.running {
            let nw = net.networks.clone();
            let (name, id) = (res.name.clone(), c.id.clone());
            tokio::task::spawn_blocking(move || nw.disconnect(&name, &id))
                .await
                .map_err(|j| ContainersError::System(j.to_string()))?
                .map_err(net_err)?;
            net.dns.set_table(net.networks.dns_table());
        }
        e.save(|c| {
            c.networks.remove(&res.name);
        })?;
        self.events.emit(
            "network",
            "disconnect",
            &res.id,
            [
                ("container".to_string(), c.id.clone()),
                ("name".to_string(), res.name.clone()),
                ("type".to_string(), "bridge".to_string()),
            ]
            .into(),
        );
        Ok(())
    }
}

/// A MAC address as `--mac-address` takes it (`aa:bb:cc:dd:ee:ff`, unicast).
fn check_mac(s: &str) -> Result<[u8; 6]> {
    skiff_net::model::parse_mac(s)
        .ok_or_else(|| ContainersError::Invalid(format!("invalid MAC address: {s}")))
}

fn attach_from(asked: &NetAttach, info: &skiff_net::EndpointInfo) -> NetAttach {
    NetAttach {
        mac_address: asked.mac_address.clone(),
        aliases: asked.aliases.clone(),
        ipv4: asked.ipv4.clone(),
        network_id: info.network_id.clone(),
        endpoint_id: info.endpoint_id.clone(),
        ip: info.ip.to_string(),
        prefix: info.prefix,
        gateway: info.gateway.map(|g| g.to_string()).unwrap_or_default(),
        mac: info.mac.clone(),
        ports: info.ports.clone(),
    }
}

/// Clears what a run got (stopped containers keep their networks, not their addresses).
pub(crate) fn clear_run(c: &mut Container) {
    c.sandbox_key.clear();
    for a in c.networks.values_mut() {
        *a = NetAttach {
            mac_address: a.mac_address.clone(),
            aliases: a.aliases.clone(),
            ipv4: a.ipv4.clone(),
            network_id: a.network_id.clone(),
            ..Default::default()
        };
    }
}
