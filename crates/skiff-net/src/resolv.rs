//! The resolver files the engine writes for a container: `/etc/resolv.conf` as Docker makes
//! it, the upstream resolvers the embedded DNS server forwards to, and the `/etc/hosts` lines
//! for the container's own addresses.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::dns::DNS_ADDR;

/// The parts of a resolv.conf.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvConf {
    pub nameservers: Vec<String>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

impl ResolvConf {
    /// Parses resolv.conf text (unknown lines ignored; the last search/domain line wins).
    pub fn parse(text: &str) -> Self {
        let mut r = ResolvConf::default();
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or("");
            let mut w = line.split_whitespace();
            match w.next() {
                Some("nameserver") => r.nameservers.extend(w.next().map(str::to_string)),
                Some("search") | Some("domain") => r.search = w.map(str::to_string).collect(),
                Some("options") => r.options.extend(w.map(str::to_string)),
                _ => {}
            }
        }
        r
    }

    /// Renders it back as text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for n in &self.nameservers {
            out.push_str(&format!("nameserver {n}\n"));
        }
        if !self.search.is_empty() {
            out.push_str(&format!("search {}\n", self.search.join(" ")));
        }
        if !self.options.is_empty() {
            out.push_str(&format!("options {}\n", self.options.join(" ")));
        }
        out
    }
}

fn is_loopback(ns: &str) -> bool {
    ns.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The user's DNS settings for one container (`--dns`, `--dns-search`, `--dns-option`).
#[derive(Debug, Clone, Default)]
pub struct DnsSettings<'a> {
    pub dns: &'a [String],
    pub search: &'a [String],
    pub options: &'a [String],
}

/// The container's resolv.conf. With the embedded server (a user-defined network) it names
/// only 127.0.0.11 plus `options ndots:0`, as Docker does; otherwise the host's (or the
/// user's) nameservers without loopback ones, falling back to Google's public resolvers as
/// text only when none is left.
pub fn container_resolv_conf(host: &str, embedded_dns: bool, user: &DnsSettings<'_>) -> String {
    let h = ResolvConf::parse(host);
    let mut r = ResolvConf {
        nameservers: if user.dns.is_empty() {
            h.nameservers
        } else {
            user.dns.to_vec()
        },
        search: if user.search.is_empty() {
            h.search
        } else {
            user.search
                .iter()
                .filter(|s| s.as_str() != ".")
                .cloned()
                .collect()
        },
        options: if user.options.is_empty() {
            h.options
        } else {
            user.options.to_vec()
        },
    };
    if embedded_dns {
        r.nameservers = vec![DNS_ADDR.to_string()];
        r.options.retain(|o| !o.starts_with("ndots:"));
        r.options.insert(0, "ndots:0".to_string());
    } else {
        r.nameservers.retain(|n| !is_loopback(n));
        if r.nameservers.is_empty() {
            r.nameservers = vec!["8.8.8.8".to_string(), "8.8.4.4".to_string()];
        }
    }
    r.render()
}

/// The resolvers the embedded server forwards a container's queries to: `--dns` when given,
/// else the host's, loopback ones included (forwarding happens in the daemon's namespace).
pub fn upstreams(host: &str, user_dns: &[String]) -> Vec<SocketAddr> {
    let list = if user_dns.is_empty() {
        ResolvConf::parse(host).nameservers
    } else {
        user_dns.to_vec()
    };
    list.iter()
        .filter_map(|n| n.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// `/etc/hosts` lines for the container's own addresses: `IP\tHOSTNAME[.DOMAIN] HOSTNAME`
/// (and its aliases) for each address, as Docker appends them.
pub fn hosts_entries(
    ips: &[Ipv4Addr],
    hostname: &str,
    domainname: &str,
    aliases: &[String],
) -> String {
    let mut names = Vec::new();
    if !domainname.is_empty() {
        names.push(format!("{hostname}.{domainname}"));
    }
    names.push(hostname.to_string());
    for a in aliases {
        if !names.contains(a) {
            names.push(a.clone());
        }
    }
    let joined = names.join(" ");
    ips.iter().map(|ip| format!("{ip}\t{joined}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "# comment\nnameserver 127.0.0.53\nnameserver 10.0.0.2 # lan\nsearch corp.example\noptions edns0 ndots:2\n";

    #[test]
    fn user_network_uses_embedded_server() {
        let s = container_resolv_conf(HOST, true, &DnsSettings::default());
        assert_eq!(
            s,
            "nameserver 127.0.0.11\nsearch corp.example\noptions ndots:0 edns0\n"
        );
        let ups = upstreams(HOST, &[]);
        assert_eq!(
            ups,
            vec![
                "127.0.0.53:53".parse().unwrap(),
                "10.0.0.2:53".parse().unwrap()
            ]
        );
        let ups = upstreams(HOST, &["1.1.1.1".to_string(), "bogus".to_string()]);
        assert_eq!(ups, vec!["1.1.1.1:53".parse().unwrap()]);
    }

    #[test]
    fn default_bridge_copies_host_without_loopback() {
        let s = container_resolv_conf(HOST, false, &DnsSettings::default());
        assert_eq!(
            s,
            "nameserver 10.0.0.2\nsearch corp.example\noptions edns0 ndots:2\n"
        );
        let s = container_resolv_conf(
            "nameserver 127.0.0.53\nnameserver ::1\n",
            false,
            &DnsSettings::default(),
        );
        assert_eq!(s, "nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
        let dns = ["9.9.9.9".to_string()];
        let search = [".".to_string()];
        let s = container_resolv_conf(
            HOST,
            false,
            &DnsSettings {
                dns: &dns,
                search: &search,
                options: &[],
            },
        );
        assert_eq!(s, "nameserver 9.9.9.9\noptions edns0 ndots:2\n");
    }

    #[test]
    fn hosts() {
        let ips = [Ipv4Addr::new(172, 18, 0, 2)];
        assert_eq!(
            hosts_entries(&ips, "abc123", "", &[]),
            "172.18.0.2\tabc123\n"
        );
        assert_eq!(
            hosts_entries(&ips, "web", "example.com", &["w".into(), "web".into()]),
            "172.18.0.2\tweb.example.com web w\n"
        );
    }
}
