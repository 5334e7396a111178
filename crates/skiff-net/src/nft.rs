//! NAT, isolation and port publishing as one nftables table, `ip skiff`, regenerated whole from
//! the network state and loaded with a single `nft -f -` transaction (add table, delete it,
//! define it again: atomic, and idempotent whatever was there before). Layout:
//!
//! ```text
//! table ip skiff {
//!   chain prerouting  { type nat hook prerouting priority dstnat;  fib daddr type local jump published }
//!   chain output      { type nat hook output priority -100;      fib daddr type local jump published }
//!   chain published   { [ip daddr HOSTIP] tcp|udp dport HOSTPORT dnat to CIP:CPORT ... }
//!   chain postrouting { type nat hook postrouting priority srcnat;
//!                       ip saddr SUBNET oifname != BR masquerade          (non-internal, masquerade on)
//!                       ip saddr SUBNET oifname BR ct status dnat masquerade   (hairpin)
//!                       ip saddr 127.0.0.0/8 oifname BR masquerade }      (host → 127.0.0.1:port)
//!   chain forward     { type filter hook forward priority filter;
//!                       iifname BR oifname != BR drop; oifname BR iifname != BR drop  (internal)
//!                       iifname BR oifname { OTHER BRIDGES } drop                    (isolation)
//!                       iifname BR oifname BR drop }                                 (icc off) }
//! }
//! ```
//!
//! Published ports are matched in `output` too, so the host reaches them on 127.0.0.1 and its
//! own addresses without a userland proxy (Docker's `userland-proxy: false`); this needs
//! `route_localnet=1` on each bridge (see [`crate::sysctl`]). The filter chain accepts by
//! default: on a host whose other firewall drops forwarded traffic, that firewall wins.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use crate::cidr::Ipv4Cidr;
use crate::ports::Proto;

/// The table's name (family `ip`).
pub const TABLE: &str = "skiff";

/// Firewall failures.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("run nft: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("nft -f: {0}")]
    Failed(String),
}

/// One bridge network as the firewall sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FwNetwork {
    pub bridge: String,
    pub subnet: Ipv4Cidr,
    pub internal: bool,
    pub masquerade: bool,
    pub icc: bool,
}

/// One published port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FwPort {
    pub proto: Proto,
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
    pub container_ip: Ipv4Addr,
    pub container_port: u16,
}

/// Everything the table is generated from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Firewall {
    pub networks: Vec<FwNetwork>,
    pub ports: Vec<FwPort>,
}

fn quote(name: &str) -> String {
    // Interface names were checked by netlink::check_ifname: no quotes or whitespace.
    format!("\"{name}\"")
}

impl Firewall {
    /// The full `nft -f` script: create-if-missing, delete, then the table as it should be.
    pub fn script(&self) -> String {
        let mut s = format!("table ip {TABLE}\ndelete table ip {TABLE}\n");
        s.push_str(&self.table());
        s
    }

    /// The table definition alone.
    pub fn table(&self) -> String {
        let mut t = format!("table ip {TABLE} {{\n");
        t.push_str(
            "\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n",
        );
        t.push_str("\t\tfib daddr type local jump published\n\t}\n");
        t.push_str("\tchain output {\n\t\ttype nat hook output priority -100; policy accept;\n");
        t.push_str("\t\tfib daddr type local jump published\n\t}\n");
        t.push_str("\tchain published {\n");
        for p in &self.ports {
            t.push_str("\t\t");
            if !p.host_ip.is_unspecified() {
                let _ = write!(t, "ip daddr {} ", p.host_ip);
            }
            let _ = writeln!(
                t,
                "{} dport {} dnat to {}:{}",
                p.proto, p.host_port, p.container_ip, p.container_port
            );
        }
        t.push_str("\t}\n");
        t.push_str("\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n");
        for n in &self.networks {
            let br = quote(&n.bridge);
            if !n.internal && n.masquerade {
                let _ = writeln!(t, "\t\tip saddr {} oifname != {br} masquerade", n.subnet);
            }
            let _ = writeln!(
                t,
                "\t\tip saddr {} oifname {br} ct status dnat masquerade",
                n.subnet
            );
            let _ = writeln!(t, "\t\tip saddr 127.0.0.0/8 oifname {br} masquerade");
        }
        t.push_str("\t}\n");
        t.push_str(
            "\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n",
        );
        for n in &self.networks {
            let br = quote(&n.bridge);
            if n.internal {
                let _ = writeln!(t, "\t\tiifname {br} oifname != {br} drop");
                let _ = writeln!(t, "\t\toifname {br} iifname != {br} drop");
            }
            let others: Vec<String> = self
                .networks
                .iter()
                .filter(|o| o.bridge != n.bridge)
                .map(|o| quote(&o.bridge))
                .collect();
            if !others.is_empty() {
                let _ = writeln!(
                    t,
                    "\t\tiifname {br} oifname {{ {} }} drop",
                    others.join(", ")
                );
            }
            if !n.icc {
                let _ = writeln!(t, "\t\tiifname {br} oifname {br} drop");
            }
        }
        t.push_str("\t}\n}\n");
        t
    }

    /// Loads the table in the caller's network namespace.
    pub fn apply(&self) -> Result<(), NftError> {
        run_nft(&self.script(), false)
    }

    /// Checks the script without loading it (`nft -c`).
    pub fn check(&self) -> Result<(), NftError> {
        run_nft(&self.script(), true)
    }
}

/// Deletes the table if it exists.
pub fn remove_table() -> Result<(), NftError> {
    run_nft(
        &format!("table ip {TABLE}\ndelete table ip {TABLE}\n"),
        false,
    )
}

/// Whether the `nft` binary can be run.
pub fn available() -> bool {
    Command::new("nft")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn run_nft(script: &str, check_only: bool) -> Result<(), NftError> {
    let mut cmd = Command::new("nft");
    if check_only {
        cmd.arg("-c");
    }
    let mut child = cmd
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(NftError::Spawn)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(NftError::Spawn)?;
    }
    let out = child.wait_with_output().map_err(NftError::Spawn)?;
    if out.status.success() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        Err(NftError::Failed(
            err.trim().lines().take(6).collect::<Vec<_>>().join("; "),
        ))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> Firewall {
        Firewall {
            networks: vec![
                FwNetwork {
                    bridge: "skiff0".into(),
                    subnet: "172.17.0.0/16".parse().unwrap(),
                    internal: false,
                    masquerade: true,
                    icc: true,
                },
                FwNetwork {
                    bridge: "br-0123456789ab".into(),
                    subnet: "172.18.0.0/16".parse().unwrap(),
                    internal: true,
                    masquerade: true,
                    icc: false,
                },
            ],
            ports: vec![
                FwPort {
                    proto: Proto::Tcp,
                    host_ip: Ipv4Addr::UNSPECIFIED,
                    host_port: 8080,
                    container_ip: Ipv4Addr::new(172, 17, 0, 2),
                    container_port: 80,
                },
                FwPort {
                    proto: Proto::Udp,
                    host_ip: Ipv4Addr::LOCALHOST,
                    host_port: 5353,
                    container_ip: Ipv4Addr::new(172, 17, 0, 2),
                    container_port: 53,
                },
            ],
        }
    }

    #[test]
    fn ruleset_text() {
        let s = sample().script();
        assert!(s.starts_with("table ip skiff\ndelete table ip skiff\ntable ip skiff {\n"));
        for line in [
            "\t\ttcp dport 8080 dnat to 172.17.0.2:80\n",
            "\t\tip daddr 127.0.0.1 udp dport 5353 dnat to 172.17.0.2:53\n",
            "\t\tip saddr 172.17.0.0/16 oifname != \"skiff0\" masquerade\n",
            "\t\tip saddr 172.17.0.0/16 oifname \"skiff0\" ct status dnat masquerade\n",
            "\t\tip saddr 127.0.0.0/8 oifname \"skiff0\" masquerade\n",
            "\t\tiifname \"br-0123456789ab\" oifname != \"br-0123456789ab\" drop\n",
            "\t\tiifname \"skiff0\" oifname { \"br-0123456789ab\" } drop\n",
            "\t\tiifname \"br-0123456789ab\" oifname \"br-0123456789ab\" drop\n",
        ] {
            assert!(s.contains(line), "missing {line:?} in\n{s}");
        }
        // The internal network gets no masquerade out.
        assert!(!s.contains("ip saddr 172.18.0.0/16 oifname != "));
        assert_eq!(s.matches('{').count(), s.matches('}').count());
    }

    #[test]
    fn empty_ruleset() {
        let s = Firewall::default().table();
        assert!(s.contains("chain published {\n\t}\n"));
    }
}
