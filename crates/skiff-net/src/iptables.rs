//! The iptables fallback for hosts without the `nft` binary: the same rules as the nftables
//! table (see [`crate::nft`]) in skiff's own chains, loaded with `iptables-restore --noflush`
//! (each declared chain is flushed and refilled in one commit per table), plus one jump from
//! each built-in chain, added once.
//!
//! ```text
//! nat:    PREROUTING  → SKIFF-PREROUTING  (addrtype LOCAL → SKIFF-PUBLISHED)
//!         OUTPUT      → SKIFF-OUTPUT      (addrtype LOCAL → SKIFF-PUBLISHED)
//!         POSTROUTING → SKIFF-POSTROUTING (masquerade, hairpin, 127.0.0.0/8 → bridge)
//! filter: FORWARD     → SKIFF-FORWARD     (internal, isolation, icc)
//! ```

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Command, Stdio};

use crate::nft::{Firewall, NftError};

const JUMPS: [(&str, &str, &str); 4] = [
    ("nat", "PREROUTING", "SKIFF-PREROUTING"),
    ("nat", "OUTPUT", "SKIFF-OUTPUT"),
    ("nat", "POSTROUTING", "SKIFF-POSTROUTING"),
    ("filter", "FORWARD", "SKIFF-FORWARD"),
];

impl Firewall {
    /// The `iptables-restore --noflush` input.
    pub fn iptables_rules(&self) -> String {
        let mut s = String::from("*nat\n");
        for c in [
            "SKIFF-PREROUTING",
            "SKIFF-OUTPUT",
            "SKIFF-PUBLISHED",
            "SKIFF-POSTROUTING",
        ] {
            let _ = writeln!(s, ":{c} - [0:0]");
        }
        s.push_str("-A SKIFF-PREROUTING -m addrtype --dst-type LOCAL -j SKIFF-PUBLISHED\n");
        s.push_str("-A SKIFF-OUTPUT -m addrtype --dst-type LOCAL -j SKIFF-PUBLISHED\n");
        for p in &self.ports {
            s.push_str("-A SKIFF-PUBLISHED");
            if !p.host_ip.is_unspecified() {
                let _ = write!(s, " -d {}/32", p.host_ip);
            }
            let _ = writeln!(
                s,
                " -p {0} -m {0} --dport {1} -j DNAT --to-destination {2}:{3}",
                p.proto, p.host_port, p.container_ip, p.container_port
            );
        }
        for n in &self.networks {
            let (sub, br) = (n.subnet, &n.bridge);
            if !n.internal && n.masquerade {
                let _ = writeln!(s, "-A SKIFF-POSTROUTING -s {sub} ! -o {br} -j MASQUERADE");
            }
            let _ = writeln!(
                s,
                "-A SKIFF-POSTROUTING -s {sub} -o {br} -m conntrack --ctstate DNAT -j MASQUERADE"
            );
            let _ = writeln!(
                s,
                "-A SKIFF-POSTROUTING -s 127.0.0.0/8 -o {br} -j MASQUERADE"
            );
        }
        s.push_str("COMMIT\n*filter\n:SKIFF-FORWARD - [0:0]\n");
        for n in &self.networks {
            let br = &n.bridge;
            if n.internal {
                let _ = writeln!(s, "-A SKIFF-FORWARD -i {br} ! -o {br} -j DROP");
                let _ = writeln!(s, "-A SKIFF-FORWARD -o {br} ! -i {br} -j DROP");
            }
            for o in self.networks.iter().filter(|o| o.bridge != n.bridge) {
                let _ = writeln!(s, "-A SKIFF-FORWARD -i {br} -o {} -j DROP", o.bridge);
            }
            if !n.icc {
                let _ = writeln!(s, "-A SKIFF-FORWARD -i {br} -o {br} -j DROP");
            }
        }
        s.push_str("COMMIT\n");
        s
    }

    /// Loads the chains and makes sure the built-in chains jump to them.
    pub fn apply_iptables(&self) -> Result<(), NftError> {
        restore(&self.iptables_rules())?;
        for (table, chain, ours) in JUMPS {
            let present = iptables(&["-t", table, "-C", chain, "-j", ours]).is_ok_and(|ok| ok);
            if !present && !iptables(&["-t", table, "-I", chain, "1", "-j", ours])? {
                return Err(NftError::Failed(format!(
                    "iptables: cannot add a jump from {table} {chain} to {ours}"
                )));
            }
        }
        Ok(())
    }
}

/// Removes the jumps and skiff's chains (missing ones are fine).
pub fn remove_iptables() -> Result<(), NftError> {
    for (table, chain, ours) in JUMPS {
        while iptables(&["-t", table, "-D", chain, "-j", ours])? {}
    }
    for (table, chain) in [
        ("nat", "SKIFF-PREROUTING"),
        ("nat", "SKIFF-OUTPUT"),
        ("nat", "SKIFF-PUBLISHED"),
        ("nat", "SKIFF-POSTROUTING"),
        ("filter", "SKIFF-FORWARD"),
    ] {
        iptables(&["-t", table, "-F", chain])?;
        iptables(&["-t", table, "-X", chain])?;
    }
    Ok(())
}

/// Whether `iptables-restore` can be run.
pub fn available() -> bool {
    Command::new("iptables-restore")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `iptables ARGS` (waiting for the xtables lock); Ok(false) when it exits non-zero.
fn iptables(args: &[&str]) -> Result<bool, NftError> {
    Command::new("iptables")
        .arg("-w")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .map_err(NftError::Spawn)
}

fn restore(rules: &str) -> Result<(), NftError> {
    let mut child = Command::new("iptables-restore")
        .args(["-w", "--noflush"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(NftError::Spawn)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(rules.as_bytes()).map_err(NftError::Spawn)?;
    }
    let out = child.wait_with_output().map_err(NftError::Spawn)?;
    if out.status.success() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        Err(NftError::Failed(format!(
            "iptables-restore: {}",
            err.trim().lines().take(4).collect::<Vec<_>>().join("; ")
        )))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rules_text() {
        let s = crate::nft::tests::sample().iptables_rules();
        for line in [
            ":SKIFF-PUBLISHED - [0:0]\n",
            "-A SKIFF-PUBLISHED -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80\n",
            "-A SKIFF-PUBLISHED -d 127.0.0.1/32 -p udp -m udp --dport 5353 -j DNAT --to-destination 172.17.0.2:53\n",
            "-A SKIFF-POSTROUTING -s 172.17.0.0/16 ! -o skiff0 -j MASQUERADE\n",
            "-A SKIFF-POSTROUTING -s 172.17.0.0/16 -o skiff0 -m conntrack --ctstate DNAT -j MASQUERADE\n",
            "-A SKIFF-FORWARD -i br-0123456789ab ! -o br-0123456789ab -j DROP\n",
            "-A SKIFF-FORWARD -i skiff0 -o br-0123456789ab -j DROP\n",
        ] {
            assert!(s.contains(line), "missing {line:?} in\n{s}");
        }
        assert_eq!(s.matches("COMMIT\n").count(), 2);
    }
}
