//! skiff's networking layer: Docker's bridge network model on Linux.
//!
//! # Model
//!
//! - A **network** ([`Networks::create`]) is a Linux bridge (`br-<id12>`, or the
//!   `com.docker.network.bridge.name` option) holding the gateway address of a subnet. The
//!   predefined `bridge` network uses the bridge `skiff0` (not `docker0`, so a real dockerd can
//!   coexist); `host` and `none` exist as records only, as Docker lists them.
//! - A **container** gets a persistent network namespace file ([`Networks::create_netns`],
//!   like `ip netns add`) before its process exists; the engine passes its path to the OCI
//!   spec. Each [`Networks::connect`] adds an **endpoint**: a veth pair whose host end
//!   (`skv…`) is on the bridge and whose other end is `ethN` in the container, with Docker's
//!   MAC (`02:42:` + IPv4 bytes), the address, `lo` up and the default route via the gateway
//!   (first non-internal network only).
//! - **IPAM** ([`ipam`]): subnets come from daemon.json's `default-address-pools` avoiding
//!   existing networks and host routes; addresses are handed out serially, `.1` is the gateway.
//! - **NAT and published ports** ([`nft`]): one nftables table `ip skiff`, regenerated whole
//!   and loaded atomically on every change; kernel DNAT (no userland proxy) reached from
//!   outside, from the host (also on 127.0.0.1) and from containers (hairpin).
//! - **Embedded DNS** ([`dns::DnsServer`]): 127.0.0.11:53 inside each container on a
//!   user-defined network, answering container names, aliases and short ids of the networks
//!   the asker is on, forwarding the rest. [`resolv`] makes the matching resolv.conf.
//!
//! Everything acts on the network namespace of the calling thread ("the host"); work inside a
//! container's namespace happens on short-lived threads ([`netns::run_in`]), so the caller's
//! threads never change namespace. Tests run the whole stack inside a throwaway namespace.
//!
//! # On disk
//!
//! Under the state directory (the daemon: `<data-root>/network`), layout version 1, written
//! crash-safely (temp + fsync + rename), described in [`store`]:
//!
//! ```text
//! version   lock   networks/<network-id>.json   endpoints/<network-id>/<container-id>.json
//! ```
//!
//! Namespace files live in `NetConfig::netns_dir` (the daemon: `<exec-root>/netns/<container-id>`),
//! a shared bind mount of itself so that unmounts propagate.
//!
//! # nftables layout
//!
//! ```text
//! table ip skiff
//!   chain prerouting  (nat, dstnat)   fib daddr type local → jump published
//!   chain output      (nat, dstnat)   fib daddr type local → jump published
//!   chain published                   [ip daddr H] tcp|udp dport P → dnat to C:p
//!   chain postrouting (nat, srcnat)   masquerade: subnet leaving by another interface,
//!                                     hairpin (subnet → same bridge, ct status dnat),
//!                                     127.0.0.0/8 → bridge (needs route_localnet=1)
//!   chain forward     (filter)        internal networks cut off, bridges isolated from
//!                                     each other, icc=false drops bridge → same bridge
//! ```
//!
//! On hosts without the `nft` binary the same rules go into `SKIFF-*` iptables chains
//! ([`iptables`]); [`FirewallBackend::detect`] picks one.
//!
//! # Engine call order
//!
//! - Daemon start: [`Networks::open`] (makes `bridge`/`host`/`none`, the bridges, the table),
//!   [`Networks::reconcile`] with the ids of the containers still alive (it also removes
//!   stale pool entries and starts the pool), then
//!   [`DnsServer::new`] and [`DnsServer::set_table`]`(networks.dns_table())`.
//! - Container start (before the runtime creates the process): [`Networks::create_netns_for`]
//!   (a prepared namespace from the pool when the first network is the default bridge, see
//!   `pool.rs`),
//!   [`Networks::connect`] per network (published ports on the first one), write resolv.conf
//!   and hosts ([`resolv`]), [`DnsServer::attach`] when [`Networks::uses_embedded_dns`],
//!   `set_table`; put the netns path in the OCI spec.
//! - Container stop (after the process exited) and remove: [`DnsServer::detach`],
//!   [`Networks::disconnect_all_before_netns_removal`] (the veths go with the namespace),
//!   [`Networks::remove_netns`], `set_table` (all
//!   idempotent).
//! - Daemon stop: [`Networks::shutdown_pool`].
//! - `docker network connect/disconnect` on a running container: `connect`/`disconnect` with
//!   [`Networks::netns_path`], then `set_table`.

mod bridge;
pub mod cidr;
mod create;
pub mod dns;
pub mod endpoint;
pub mod error;
mod firewall;
pub mod inspect;
pub mod ipam;
pub mod iptables;
pub mod model;
pub mod netlink;
pub mod netns;
pub mod networks;
pub mod nft;
mod pool;
pub mod portalloc;
pub mod ports;
mod reconcile;
pub mod resolv;
pub mod store;
pub mod sysctl;

pub use cidr::Ipv4Cidr;
pub use create::{
    CreateNetwork, OPT_BRIDGE_NAME, OPT_HOST_BINDING, OPT_ICC, OPT_MASQUERADE, OPT_MTU,
};
pub use dns::{DnsServer, DnsTable};
pub use endpoint::{ConnectRequest, EndpointInfo};
pub use error::{ErrorKind, NetworkError};
pub use firewall::FirewallBackend;
pub use inspect::NetworkResource;
pub use ipam::AddressPool;
pub use networks::{DefaultBridge, NetConfig, Networks, DEFAULT_NETWORK};
pub use pool::POOL_VETH_PREFIX;
pub use ports::{PortBinding, PortMap, PortRequest, Proto, PublishedPort};
pub use reconcile::ReconcileReport;
