//! `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf` of a container, kept in its
//! directory and bind-mounted in, as Docker manages them: `--add-host` entries appended to
//! hosts, `--dns`/`--dns-search`/`--dns-option` replacing the host's resolv.conf values, and
//! loopback nameservers of the host dropped (they cannot be reached from the container).

use std::path::Path;

use std::collections::BTreeMap;

use super::model::{Container, NetAttach};

/// Writes the three files for `c` into `dir` (before the networks are up: resolv.conf from
/// the host's, hosts without addresses).
pub fn write_network_files(dir: &Path, c: &Container) -> std::io::Result<()> {
    let hostname = &c.config.hostname;
    std::fs::write(dir.join("hostname"), format!("{hostname}\n"))?;
    write_hosts(dir, c, &BTreeMap::new())?;
    std::fs::write(dir.join("resolv.conf"), resolv_conf(c))
}

/// `/etc/hosts`: the standard lines, `--add-host` entries, then the container's own
/// addresses on its networks (or 127.0.1.1 when it has none), as Docker writes it.
pub fn write_hosts(
    dir: &Path,
    c: &Container,
    nets: &BTreeMap<String, NetAttach>,
) -> std::io::Result<()> {
    let host = &c.host_config;
    let hostname = &c.config.hostname;
    let mut hosts = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for e in host.extra_hosts.iter().flatten() {
        // "name:ip" (the CLI's form) or "name=ip".
        if let Some((name, ip)) = e.split_once('=').or_else(|| e.split_once(':')) {
            let ip = if ip == "host-gateway" {
                "127.0.0.1"
            } else {
                ip
            };
            hosts.push_str(&format!("{ip}\t{name}\n"));
        }
    }
    let ips: Vec<std::net::Ipv4Addr> = nets.values().filter_map(|a| a.ip.parse().ok()).collect();
    if !ips.is_empty() {
        hosts.push_str(&skiff_net::resolv::hosts_entries(
            &ips,
            hostname,
            &c.config.domainname,
            &[],
        ));
    } else if host.network_mode != "host" {
        let fqdn = if c.config.domainname.is_empty() {
            hostname.clone()
        } else {
            format!("{hostname}.{} {hostname}", c.config.domainname)
        };
        hosts.push_str(&format!("127.0.1.1\t{fqdn}\n"));
    }
    std::fs::write(dir.join("hosts"), hosts)
}

fn resolv_conf(c: &Container) -> String {
    let h = &c.host_config;
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let mut ns: Vec<String> = Vec::new();
    let mut search: Vec<String> = Vec::new();
    let mut options: Vec<String> = Vec::new();
    let mut other = String::new();
    for l in host.lines() {
        let mut w = l.split_whitespace();
        match w.next() {
            Some("nameserver") => {
                if let Some(a) = w.next() {
                    if !(a.starts_with("127.") || a == "::1") || h.network_mode == "host" {
                        ns.push(a.to_string());
                    }
                }
            }
            Some("search") | Some("domain") => search = w.map(str::to_string).collect(),
            Some("options") => options = w.map(str::to_string).collect(),
            Some(x) if !x.starts_with('#') => {
                other.push_str(l);
                other.push('\n');
            }
            _ => {}
        }
    }
    if let Some(d) = h.dns.as_ref().filter(|d| !d.is_empty()) {
        ns = d.clone();
    }
    if let Some(s) = h.dns_search.as_ref().filter(|d| !d.is_empty()) {
        search = s.iter().filter(|x| x.as_str() != ".").cloned().collect();
    }
    if let Some(o) = h.dns_options.as_ref().filter(|d| !d.is_empty()) {
        options = o.clone();
    }
    let mut out = String::new();
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    for n in &ns {
        out.push_str(&format!("nameserver {n}\n"));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out.push_str(&other);
    out
}
