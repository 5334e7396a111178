//! The controller's side of the firewall: which backend (nft, iptables when nft is missing),
//! the rules generated from the networks and endpoints, loaded when they changed; and
//! `uninstall`.

use crate::error::NetworkError;
use crate::iptables;
use crate::networks::{Networks, State};
use crate::nft::{self, Firewall, FwNetwork, FwPort, NftError};

/// How NAT and published ports are programmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirewallBackend {
    /// One `ip skiff` table through the `nft` binary (preferred).
    Nft,
    /// `SKIFF-*` chains through `iptables-restore` (hosts without `nft`).
    Iptables,
}

impl FirewallBackend {
    /// `nft` if it runs, else iptables if it runs, else `None` (no NAT, no published ports).
    pub fn detect() -> Option<FirewallBackend> {
        if nft::available() {
            Some(FirewallBackend::Nft)
        } else if iptables::available() {
            Some(FirewallBackend::Iptables)
        } else {
            tracing::warn!("neither nft nor iptables found: no NAT and no published ports");
            None
        }
    }

    /// Loads `fw` (replacing what skiff loaded before).
    pub fn apply(&self, fw: &Firewall) -> Result<(), NftError> {
        match self {
            FirewallBackend::Nft => fw.apply(),
            FirewallBackend::Iptables => fw.apply_iptables(),
        }
    }

    /// Removes everything skiff loaded.
    pub fn remove(&self) -> Result<(), NftError> {
        match self {
            FirewallBackend::Nft => nft::remove_table(),
            FirewallBackend::Iptables => iptables::remove_iptables(),
        }
    }
}

impl Networks {
    /// The firewall state for the current networks and endpoints.
    pub(crate) fn firewall_of(st: &State) -> Firewall {
        let mut fw = Firewall::default();
        for n in st.nets.values() {
            let (Some(b), Some(i)) = (&n.rec.bridge, &n.rec.ipam) else {
                continue;
            };
            fw.networks.push(FwNetwork {
                bridge: b.name.clone(),
                subnet: i.subnet,
                internal: n.rec.internal,
                masquerade: b.masquerade,
                icc: b.icc,
            });
            for e in n.eps.values() {
                fw.ports.extend(e.ports.iter().map(|p| FwPort {
                    proto: p.proto,
                    host_ip: p.host_ip,
                    host_port: p.host_port,
                    container_ip: e.ip,
                    container_port: p.container_port,
                }));
            }
        }
        fw
    }

    /// Loads the firewall table if it changed.
    pub(crate) fn apply_firewall(&self, st: &mut State) -> Result<(), NetworkError> {
        let Some(backend) = self.cfg.firewall else {
            return Ok(());
        };
        let fw = Self::firewall_of(st);
        if st.loaded_fw.as_ref() == Some(&fw) {
            return Ok(());
        }
        backend.apply(&fw)?;
        st.loaded_fw = Some(fw);
        Ok(())
    }

    /// Tears down everything skiff made in the host namespace: the endpoints' veths, the
    /// bridges it created and the firewall table. The records stay (the next open rebuilds
    /// the devices). For tests and `system reset`-style cleanups.
    pub fn uninstall(self) -> Result<(), NetworkError> {
        self.pool.shutdown();
        let mut st = self.lock();
        let ids: Vec<String> = st.nets.keys().cloned().collect();
        for id in ids {
            let net = &st.nets[&id];
            let veths: Vec<String> = net.eps.values().map(|e| e.host_veth.clone()).collect();
            let bridge = net.rec.bridge.clone().filter(|b| b.created_device);
            let name = net.rec.name.clone();
            let nl = st.nl(&name)?;
            for v in veths {
                let _ = nl.delete_link_by_name(&v);
            }
            if let Some(b) = bridge {
                nl.delete_link_by_name(&b.name)
                    .map_err(|source| NetworkError::Netlink { name, source })?;
            }
        }
        if let Some(backend) = self.cfg.firewall {
            backend.remove()?;
        }
        Ok(())
    }
}
