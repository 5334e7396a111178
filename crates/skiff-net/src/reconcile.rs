//! Reconcile after a daemon crash or a reboot: endpoints of containers that no longer exist
//! (and half-made ones) are torn down, skiff veths nobody owns and namespace files of dead
//! containers removed, missing bridges re-created and the firewall reloaded.

use std::collections::HashSet;
use std::path::Path;

use crate::endpoint::VETH_PREFIX;
use crate::error::NetworkError;
use crate::model::EndpointState;
use crate::netns;
use crate::networks::Networks;
use crate::pool::POOL_VETH_PREFIX;

/// What [`Networks::reconcile`] cleaned up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    pub endpoints_removed: Vec<String>,
    pub veths_deleted: Vec<String>,
    pub netns_removed: Vec<String>,
}

impl Networks {
    /// After a daemon restart: removes endpoints of containers not in `live` (and half-made
    /// ones), skiff veths no endpoint owns, namespace files of dead containers; re-creates
    /// missing bridges and reloads the firewall.
    pub fn reconcile(&self, live: &HashSet<String>) -> Result<ReconcileReport, NetworkError> {
        let mut st = self.lock();
        let mut report = ReconcileReport::default();
        let dead: Vec<(String, String)> = st
            .nets
            .iter()
            .flat_map(|(nid, n)| {
                n.eps
                    .values()
                    .filter(|e| {
                        e.state == EndpointState::Creating || !live.contains(&e.container_id)
                    })
                    .map(move |e| (nid.clone(), e.container_id.clone()))
            })
            .collect();
        for (nid, cid) in dead {
            self.teardown(&mut st, &nid, &cid);
            report.endpoints_removed.push(cid);
        }
        let bridges: Vec<String> = st
            .nets
            .values()
            .filter(|n| n.rec.bridge.is_some())
            .map(|n| n.rec.id.clone())
            .collect();
        for id in bridges {
            self.ensure_device(&mut st, &id)?;
        }
        // Pool entries of an earlier daemon: their namespaces (and veth pairs) go.
        report.netns_removed.extend(self.pool.remove_stale()?);
        let mut owned: HashSet<String> = st
            .nets
            .values()
            .flat_map(|n| n.eps.values().map(|e| e.host_veth.clone()))
            .collect();
        owned.extend(self.pool.veths());
        let nl = st.nl("reconcile")?;
        let links = nl.links().map_err(|source| NetworkError::Netlink {
            name: "reconcile".into(),
            source,
        })?;
        for l in links {
            let ours = (l.name.starts_with(VETH_PREFIX) || l.name.starts_with(POOL_VETH_PREFIX))
                && l.kind.as_deref() == Some("veth");
            if ours && !owned.contains(&l.name) && nl.delete_link_by_name(&l.name).unwrap_or(false)
            {
                report.veths_deleted.push(l.name);
            }
        }
        let in_use: HashSet<&Path> = st
            .nets
            .values()
            .flat_map(|n| n.eps.values().map(|e| e.netns.as_path()))
            .collect();
        for name in netns::list(&self.cfg.netns_dir)? {
            let path = self.cfg.netns_dir.join(&name);
            if !live.contains(&name) && !in_use.contains(path.as_path()) {
                netns::remove_path(&path)?;
                report.netns_removed.push(name);
            }
        }
        st.loaded_fw = None;
        self.apply_firewall(&mut st)?;
        let default = st
            .nets
            .values()
            .find(|n| n.rec.default_bridge)
            .and_then(|n| n.rec.bridge.as_ref().map(|b| (b.name.clone(), b.mtu)));
        drop(st);
        if let Some((bridge, mtu)) = default {
            self.pool.start(&bridge, mtu);
        }
        Ok(report)
    }
}
