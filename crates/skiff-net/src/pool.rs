//! A small pool of prepared network namespaces for the default bridge network, so that a
//! container start on it does not pay for a namespace and a veth pair.
//!
//! # Why
//!
//! Making a namespace (`unshare(CLONE_NEWNET)` runs every per-namespace init of the kernel)
//! and a veth pair (two devices registered, one moved in, sysfs, uevents) are the bulk of
//! what the bridge adds to a start, and every one of those takes the kernel's rtnl lock,
//! which the destruction of the previous container's namespace may hold for a while. A
//! background thread does them ahead of time instead.
//!
//! # An entry
//!
//! A namespace file `<pool_dir>/<12 hex>` (a bind mount, as [`crate::netns::create`] makes
//! them; `pool_dir` is a shared mount like the netns directory) holding `lo` (up) and `eth0`
//! (down, the bridge's MTU, a placeholder MAC), the other end of which, `skp<11 hex>`, is up
//! on the bridge with hairpin mode on; plus an open netlink socket inside the namespace. The
//! hex digits are the entry's endpoint id, which the endpoint keeps.
//!
//! # Use
//!
//! [`Pool::take`] moves an entry to a container (the namespace is bind-mounted onto
//! `<netns_dir>/<container-id>`, the pool file removed) and keeps it as the container's
//! claim; the container's first [`crate::Networks::connect`] to the default bridge then
//! only sets eth0's MAC and brings it up, adds the address and the default route: three
//! requests in one `sendmsg` on the entry's socket. A claim not used is dropped with the
//! namespace ([`Pool::unclaim`]).
//!
//! # Not kept: destroying namespaces later
//!
//! Destroying a namespace with a veth pair holds rtnl in the kernel for RCU grace periods,
//! which a start right after a stop waits for. Keeping removed namespaces alive by a
//! descriptor and destroying them in batches was tried and measured with net-bench (40
//! bridge starts, 2 busy cores, kernel 6.18): with this pool the bridge's share of a start
//! had a median of 1.2–1.4 ms either way and a worse p90 with batching (the batch landed on
//! some start), so it was taken out again.
//!
//! # No leaks
//!
//! Entries exist only while the daemon runs: [`Pool::shutdown`] (daemon stop) removes them;
//! after a crash, [`crate::Networks::reconcile`] removes every file of `pool_dir` and every
//! `skp…` veth no endpoint owns before the pool starts again. A namespace's veth pair goes
//! with the namespace.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use rustix::mount::mount_bind;

use crate::error::NetworkError;
use crate::netlink::{self, LinkChange, Netlink, NetlinkError};
use crate::netns::{self, NetnsError};

/// Prefix of the host ends of pooled veth pairs (`skp` + 11 hex of the endpoint id).
pub const POOL_VETH_PREFIX: &str = "skp";

/// One prepared namespace.
pub(crate) struct Prepared {
    /// The pool file's name (12 hex of `endpoint_id`).
    name: String,
    pub endpoint_id: String,
    pub host_veth: String,
    bridge: String,
    mtu: u32,
    /// A socket inside the namespace.
    nl: Netlink,
    /// eth0's index inside.
    eth: u32,
}

/// What the pool prepares for: the default bridge's device and MTU.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    bridge: String,
    mtu: u32,
}

#[derive(Default)]
struct Inner {
    ready: Vec<Prepared>,
    /// container id → the entry it took.
    claimed: HashMap<String, Prepared>,
    target: Option<Target>,
    stop: bool,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Pool files of taken entries, unmounted by the refill thread: an unmount waits for
    /// an RCU grace period, which the start need not (the container's file holds the
    /// namespace).
    spent: Vec<PathBuf>,
}

/// The pool (see the module docs).
pub(crate) struct Pool {
    dir: PathBuf,
    size: usize,
    inner: Mutex<Inner>,
    cv: Condvar,
}

fn nl_err(e: NetlinkError) -> NetworkError {
    NetworkError::Netlink {
        name: "pool".to_string(),
        source: e,
    }
}

impl Pool {
    pub fn new(dir: PathBuf, size: usize) -> Pool {
        Pool {
            dir,
            size,
            inner: Mutex::new(Inner::default()),
            cv: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Removes every pool file left by an earlier daemon (their namespaces, and the veth
    /// pairs in them, go with them); returns their names.
    pub fn remove_stale(&self) -> Result<Vec<String>, NetnsError> {
        let names = netns::list(&self.dir)?;
        let live: Vec<String> = self.lock().ready.iter().map(|p| p.name.clone()).collect();
        let mut out = Vec::new();
        for n in names.into_iter().filter(|n| !live.contains(n)) {
            netns::remove_path(&self.dir.join(&n))?;
            out.push(n);
        }
        Ok(out)
    }

    /// The host ends of the entries that exist (ready or claimed).
    pub fn veths(&self) -> Vec<String> {
        let st = self.lock();
        st.ready
            .iter()
            .chain(st.claimed.values())
            .map(|p| p.host_veth.clone())
            .collect()
    }

    /// Starts (or retargets) the refill thread for bridge `bridge` with `mtu`. Entries made
    /// for another bridge or MTU are dropped.
    pub fn start(self: &Arc<Self>, bridge: &str, mtu: u32) {
        if self.size == 0 {
            return;
        }
        let mut st = self.lock();
        let t = Target {
            bridge: bridge.to_string(),
            mtu,
        };
        if st.target.as_ref() != Some(&t) {
            let old: Vec<Prepared> = st.ready.drain(..).collect();
            old.into_iter().for_each(|p| self.discard(p));
            st.target = Some(t);
        }
        st.stop = false;
        if st.thread.is_none() {
            let me = self.clone();
            match std::thread::Builder::new()
                .name("netns-pool".into())
                .spawn(move || me.refill())
            {
                Ok(h) => st.thread = Some(h),
                Err(e) => tracing::warn!(error = %e, "network namespace pool not started"),
            }
        }
        self.cv.notify_all();
    }

    /// Stops the refill thread and removes every ready entry (daemon stop). Claimed
    /// entries belong to containers now.
    pub fn shutdown(&self) {
        let h = {
            let mut st = self.lock();
            st.stop = true;
            self.cv.notify_all();
            st.thread.take()
        };
        if let Some(h) = h {
            let _ = h.join();
        }
        let (ready, spent) = {
            let mut st = self.lock();
            (
                st.ready.drain(..).collect::<Vec<Prepared>>(),
                std::mem::take(&mut st.spent),
            )
        };
        ready.into_iter().for_each(|p| self.discard(p));
        unmount_spent(spent);
    }

    /// Hands a ready entry for `bridge`/`mtu` to `container_id`: its namespace appears at
    /// `<netns_dir>/<container_id>` (returned). `None` when the pool is empty or off.
    pub fn take(
        &self,
        container_id: &str,
        netns_dir: &Path,
        bridge: &str,
        mtu: u32,
    ) -> Option<PathBuf> {
        let p = {
            let mut st = self.lock();
            let i = st
                .ready
                .iter()
                .position(|p| p.bridge == bridge && p.mtu == mtu)?;
            let p = st.ready.swap_remove(i);
            self.cv.notify_all();
            p
        };
        let from = self.dir.join(&p.name);
        match move_netns(&from, netns_dir, container_id) {
            Ok(path) => {
                let mut st = self.lock();
                st.claimed.insert(container_id.to_string(), p);
                st.spent.push(from);
                self.cv.notify_all();
                Some(path)
            }
            Err(e) => {
                tracing::warn!(error = %e, "pooled network namespace not usable; making one");
                self.discard(p);
                None
            }
        }
    }

    /// The entry `container_id` took, if it is for `bridge` (its first connect).
    pub fn claim(&self, container_id: &str, bridge: &str) -> Option<Prepared> {
        let mut st = self.lock();
        if st
            .claimed
            .get(container_id)
            .is_some_and(|p| p.bridge == bridge)
        {
            return st.claimed.remove(container_id);
        }
        None
    }

    /// Forgets what `container_id` took and did not use (its namespace is being removed).
    pub fn unclaim(&self, container_id: &str) {
        let p = self.lock().claimed.remove(container_id);
        drop(p);
    }

    fn discard(&self, p: Prepared) {
        if let Err(e) = netns::remove_path(&self.dir.join(&p.name)) {
            tracing::warn!(error = %e, "pooled network namespace not removed");
        }
    }

    fn refill(self: Arc<Self>) {
        let mut host: Option<Netlink> = None;
        loop {
            let target = {
                let mut st = self.lock();
                loop {
                    if st.stop {
                        return;
                    }
                    if !st.spent.is_empty() {
                        let spent = std::mem::take(&mut st.spent);
                        drop(st);
                        unmount_spent(spent);
                        st = self.lock();
                        continue;
                    }
                    match &st.target {
                        Some(t) if st.ready.len() < self.size => break t.clone(),
                        _ => {
                            st = self.cv.wait(st).unwrap_or_else(|p| p.into_inner());
                        }
                    }
                }
            };
            let made = (|| {
                if host.is_none() {
                    host = Some(Netlink::open().map_err(nl_err)?);
                }
                let nl = host.as_mut().expect("opened above");
                prepare(&self.dir, nl, &target)
            })();
            match made {
                Ok(p) => {
                    let mut st = self.lock();
                    if st.stop || st.target.as_ref() != Some(&target) {
                        drop(st);
                        self.discard(p);
                    } else {
                        st.ready.push(p);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "network namespace pool: preparing an entry failed");
                    host = None;
                    let st = self.lock();
                    let _ = self.cv.wait_timeout(st, Duration::from_secs(2));
                }
            }
        }
    }
}

/// Makes one entry (see the module docs); on failure nothing is left.
fn prepare(dir: &Path, host: &mut Netlink, t: &Target) -> Result<Prepared, NetworkError> {
    let endpoint_id = crate::model::random_id();
    let name = endpoint_id[..12].to_string();
    let host_veth = format!("{POOL_VETH_PREFIX}{}", &endpoint_id[..11]);
    let path = netns::create(dir, &name)?;
    let r = (|| {
        let ns = File::open(&path).map_err(|source| {
            NetworkError::Netns(NetnsError::Io {
                path: path.clone(),
                what: "open",
                source,
            })
        })?;
        let bridge =
            host.link_index(&t.bridge)
                .map_err(nl_err)?
                .ok_or_else(|| NetworkError::Invalid {
                    name: "pool".into(),
                    what: format!("bridge {} does not exist", t.bridge),
                })?;
        // A placeholder MAC (locally administered, from the id): set for real at use.
        let b = endpoint_id.as_bytes();
        let hex = |i: usize| {
            u8::from_str_radix(std::str::from_utf8(&b[i..i + 2]).unwrap_or("00"), 16).unwrap_or(0)
        };
        let mac = [0x02, 0x42, hex(12), hex(14), hex(16), hex(18)];
        host.create_veth_into(&host_veth, bridge, "eth0", t.mtu, &ns, mac)
            .map_err(nl_err)?;
        let hidx = host
            .link_index(&host_veth)
            .map_err(nl_err)?
            .ok_or_else(|| NetworkError::Invalid {
                name: "pool".into(),
                what: format!("{host_veth} vanished while being set up"),
            })?;
        host.set_hairpin(hidx, true).map_err(nl_err)?;
        let mut nl = Netlink::open_in(&path).map_err(nl_err)?;
        if let Some(lo) = nl.link_index("lo").map_err(nl_err)? {
            nl.set_link(
                lo,
                &LinkChange {
                    up: true,
                    ..Default::default()
                },
            )
            .map_err(nl_err)?;
        }
        let eth = nl
            .link_index("eth0")
            .map_err(nl_err)?
            .ok_or_else(|| NetworkError::Invalid {
                name: "pool".into(),
                what: "eth0 vanished while being set up".into(),
            })?;
        Ok(Prepared {
            name: name.clone(),
            endpoint_id: endpoint_id.clone(),
            host_veth: host_veth.clone(),
            bridge: t.bridge.clone(),
            mtu: t.mtu,
            nl,
            eth,
        })
    })();
    if r.is_err() {
        let _ = host.delete_link_by_name(&host_veth);
        let _ = netns::remove_path(&path);
    }
    r
}

/// Bind-mounts the namespace at `from` onto `<dir>/<name>` (`from` stays: see `spent`).
fn move_netns(from: &Path, dir: &Path, name: &str) -> Result<PathBuf, NetnsError> {
    let to = netns::prepare_file(dir, name)?;
    if let Err(e) = mount_bind(from, &to) {
        let _ = std::fs::remove_file(&to);
        return Err(NetnsError::Io {
            path: to,
            what: "bind-mount",
            source: e.into(),
        });
    }
    Ok(to)
}

fn unmount_spent(spent: Vec<PathBuf>) {
    for p in spent {
        if let Err(e) = netns::remove_path(&p) {
            tracing::warn!(error = %e, "taken pool file not removed");
        }
    }
}

impl Prepared {
    pub fn mtu(&self) -> u32 {
        self.mtu
    }

    /// Finishes the container's end: MAC and up, the address, the default route (when
    /// `gateway`), in one `sendmsg`.
    pub fn finish(
        &mut self,
        mac: [u8; 6],
        ip: std::net::Ipv4Addr,
        prefix: u8,
        gateway: Option<std::net::Ipv4Addr>,
    ) -> Result<(), NetlinkError> {
        let mut reqs = vec![
            netlink::ops::set_link_req(
                self.eth,
                &LinkChange {
                    mac: Some(mac),
                    up: true,
                    ..Default::default()
                },
            )?,
            netlink::ops::add_address_req(self.eth, ip, prefix),
        ];
        if let Some(gw) = gateway {
            reqs.push(netlink::ops::default_route_req(self.eth, gw));
        }
        self.nl.request_batch(reqs)
    }
}
