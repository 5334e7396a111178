//! The names the embedded DNS server answers for: per user-defined network, each container's
//! name, aliases and 12-hex short id. A container sees only the networks it is on.

use std::net::Ipv4Addr;

/// One container on one user-defined network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsEntry {
    pub container_id: String,
    pub network_id: String,
    pub network_name: String,
    /// Lowercase names: the container name, its aliases on this network, its short id.
    pub names: Vec<String>,
    pub ip: Ipv4Addr,
}

/// A snapshot of every entry; the daemon replaces it after each connect/disconnect.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsTable {
    pub entries: Vec<DnsEntry>,
}

impl DnsTable {
    fn asker_networks<'a>(&'a self, asker: &'a str) -> impl Iterator<Item = &'a DnsEntry> + 'a {
        self.entries.iter().filter(move |e| e.container_id == asker)
    }

    /// A records for `name` as seen by container `asker`: matches on the networks the asker
    /// is on; `NAME.NETWORK` restricts to one network. Empty when nothing matches.
    pub fn lookup(&self, asker: &str, name: &str) -> Vec<Ipv4Addr> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let mut out = Vec::new();
        for mine in self.asker_networks(asker) {
            for e in self
                .entries
                .iter()
                .filter(|e| e.network_id == mine.network_id)
            {
                let hit = e.names.contains(&name)
                    || name
                        .strip_suffix(&e.network_name.to_ascii_lowercase())
                        .and_then(|p| p.strip_suffix('.'))
                        .is_some_and(|p| e.names.iter().any(|n| n == p));
                if hit && !out.contains(&e.ip) {
                    out.push(e.ip);
                }
            }
        }
        out
    }

    /// Whether `name` is a container known to `asker` (for AAAA and other types: an empty
    /// NOERROR answer rather than a forward).
    pub fn knows(&self, asker: &str, name: &str) -> bool {
        !self.lookup(asker, name).is_empty()
    }

    /// The name for a reverse lookup (`2.0.18.172.in-addr.arpa`) of a container on one of the
    /// asker's networks: its container name.
    pub fn reverse(&self, asker: &str, ptr_name: &str) -> Option<String> {
        let rest = ptr_name
            .trim_end_matches('.')
            .to_ascii_lowercase()
            .strip_suffix(".in-addr.arpa")?
            .to_string();
        let mut parts: Vec<u8> = Vec::with_capacity(4);
        for p in rest.split('.') {
            parts.push(p.parse().ok()?);
        }
        if parts.len() != 4 {
            return None;
        }
        let ip = Ipv4Addr::new(parts[3], parts[2], parts[1], parts[0]);
        for mine in self.asker_networks(asker) {
            if let Some(e) = self
                .entries
                .iter()
                .find(|e| e.network_id == mine.network_id && e.ip == ip)
            {
                return e.names.first().cloned();
            }
        }
        None
    }

    /// Whether the container has any entry (is on a user-defined network).
    pub fn has_container(&self, id: &str) -> bool {
        self.entries.iter().any(|e| e.container_id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(c: &str, n: &str, names: &[&str], ip: [u8; 4]) -> DnsEntry {
        DnsEntry {
            container_id: c.into(),
            network_id: format!("id-{n}"),
            network_name: n.into(),
            names: names.iter().map(|s| s.to_string()).collect(),
            ip: ip.into(),
        }
    }

    #[test]
    fn scoped_lookup() {
        let t = DnsTable {
            entries: vec![
                e(
                    "a",
                    "front",
                    &["web", "www", "aaaaaaaaaaaa"],
                    [172, 18, 0, 2],
                ),
                e("b", "front", &["client"], [172, 18, 0, 3]),
                e("c", "back", &["db"], [172, 19, 0, 2]),
                e("a", "back", &["web"], [172, 19, 0, 3]),
            ],
        };
        assert_eq!(t.lookup("b", "WEB."), vec![Ipv4Addr::new(172, 18, 0, 2)]);
        assert_eq!(t.lookup("b", "www"), vec![Ipv4Addr::new(172, 18, 0, 2)]);
        assert_eq!(
            t.lookup("b", "aaaaaaaaaaaa"),
            vec![Ipv4Addr::new(172, 18, 0, 2)]
        );
        assert!(t.lookup("b", "db").is_empty(), "b is not on back");
        assert_eq!(t.lookup("a", "db"), vec![Ipv4Addr::new(172, 19, 0, 2)]);
        assert_eq!(
            t.lookup("c", "web.back"),
            vec![Ipv4Addr::new(172, 19, 0, 3)]
        );
        assert!(t.lookup("c", "web.front").is_empty());
        assert!(t.lookup("z", "web").is_empty());
        assert_eq!(
            t.reverse("b", "3.0.18.172.in-addr.arpa").as_deref(),
            Some("client")
        );
        assert_eq!(t.reverse("c", "3.0.18.172.in-addr.arpa"), None);
        assert_eq!(t.reverse("b", "x.in-addr.arpa"), None);
        assert!(t.has_container("a") && !t.has_container("z"));
    }
}
