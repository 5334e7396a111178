//! Client configuration and Docker's transport rules: which registries may use plain HTTP
//! (`insecure-registries` entries as `host[:port]` or CIDR, plus loopback) and which mirrors
//! serve docker.io.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use crate::error::{Error, Result};

/// What the daemon's `daemon.json` (`registry-mirrors`, `insecure-registries`) and the
/// environment say about registries.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Mirrors of docker.io, tried in order before the upstream (pulls only).
    pub mirrors: Vec<Url>,
    /// Registries that may be reached over plain HTTP or with unverified TLS:
    /// `host`, `host:port` or a CIDR (`10.0.0.0/8`). Loopback is always included.
    pub insecure: Vec<String>,
    /// Path of docker's `config.json`; `None` means `$DOCKER_CONFIG/config.json` or
    /// `$HOME/.docker/config.json`.
    pub docker_config_path: Option<PathBuf>,
    pub user_agent: String,
    /// Override of the docker.io upstream endpoint (`https://registry-1.docker.io`), for
    /// air-gapped setups and tests.
    pub docker_hub_endpoint: Option<Url>,
    /// Attempts per blob download (the first included) before giving up.
    pub blob_retries: u32,
    /// First backoff between attempts; doubled each time.
    pub retry_backoff: Duration,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            mirrors: Vec::new(),
            insecure: Vec::new(),
            docker_config_path: None,
            user_agent: format!("skiff/{}", env!("CARGO_PKG_VERSION")),
            docker_hub_endpoint: None,
            blob_retries: 5,
            retry_backoff: Duration::from_millis(200),
        }
    }
}

impl RegistryConfig {
    /// Checks the entries once, so a typo in daemon.json is reported at start.
    pub fn validate(&self) -> Result<()> {
        for m in &self.mirrors {
            if !matches!(m.scheme(), "http" | "https") || m.host_str().is_none() {
                return Err(Error::Config(format!(
                    "invalid mirror {m}: want http(s)://host[:port]"
                )));
            }
        }
        for i in &self.insecure {
            InsecureEntry::parse(i)?;
        }
        Ok(())
    }

    /// The docker config file to read credentials from and to write logins to.
    pub fn docker_config_file(&self) -> Option<PathBuf> {
        if let Some(p) = &self.docker_config_path {
            return Some(p.clone());
        }
        if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
            return Some(PathBuf::from(dir).join("config.json"));
        }
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker").join("config.json"))
    }

    /// True when `host` (`host[:port]` as in a reference) may use plain HTTP: loopback, or
    /// matched by an `insecure` entry. `resolved` are addresses the host name resolved to, to
    /// match CIDR entries as docker does.
    pub fn is_insecure(&self, host: &str, resolved: &[IpAddr]) -> bool {
        let (name, _) = split_host_port(host);
        if is_loopback_name(name) || resolved.iter().any(IpAddr::is_loopback) {
            return true;
        }
        self.insecure.iter().any(|e| match InsecureEntry::parse(e) {
            Ok(InsecureEntry::Host(h)) => {
                h.eq_ignore_ascii_case(host) || h.eq_ignore_ascii_case(name)
            }
            Ok(InsecureEntry::Cidr(net, bits)) => {
                let bare = name.trim_start_matches('[').trim_end_matches(']');
                let literal = bare.parse::<IpAddr>().ok();
                literal
                    .iter()
                    .chain(resolved.iter())
                    .any(|ip| cidr_contains(net, bits, *ip))
            }
            Err(_) => false,
        })
    }

    /// True when some insecure entry is a CIDR, so host names need resolving to decide.
    pub fn has_cidr_entries(&self) -> bool {
        self.insecure
            .iter()
            .any(|e| matches!(InsecureEntry::parse(e), Ok(InsecureEntry::Cidr(..))))
    }
}

enum InsecureEntry<'a> {
    Host(&'a str),
    Cidr(IpAddr, u8),
}

impl<'a> InsecureEntry<'a> {
    fn parse(s: &'a str) -> Result<Self> {
        let s = s.trim();
        let s = s
            .strip_prefix("http://")
            .or_else(|| s.strip_prefix("https://"))
            .unwrap_or(s)
            .trim_end_matches('/');
        if let Some((ip, bits)) = s.split_once('/') {
            let bad = || Error::Config(format!("invalid insecure registry CIDR {s:?}"));
            let ip: IpAddr = ip.parse().map_err(|_| bad())?;
            let bits: u8 = bits.parse().map_err(|_| bad())?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            if bits > max {
                return Err(bad());
            }
            return Ok(InsecureEntry::Cidr(ip, bits));
        }
        if s.is_empty() {
            return Err(Error::Config("empty insecure registry entry".into()));
        }
        Ok(InsecureEntry::Host(s))
    }
}

fn cidr_contains(net: IpAddr, bits: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(bits))
            };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(bits))
            };
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

/// `localhost`, `127.x.y.z`, `::1` (bracketed or not).
pub(crate) fn is_loopback_name(name: &str) -> bool {
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Splits `host:port`, `[v6]:port`, `host` into the host part and the port.
pub(crate) fn split_host_port(s: &str) -> (&str, Option<&str>) {
    if s.starts_with('[') {
        if let Some(end) = s.find(']') {
            let port = s[end + 1..].strip_prefix(':');
            return (&s[..=end], port);
        }
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, Some(p)),
        _ => (s, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(insecure: &[&str]) -> RegistryConfig {
        RegistryConfig {
            insecure: insecure.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn loopback_is_insecure() {
        let c = cfg(&[]);
        for h in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.3.4.5",
            "[::1]:5000",
            "::1",
        ] {
            assert!(c.is_insecure(h, &[]), "{h}");
        }
        for h in ["docker.io", "10.0.0.1:5000", "example.com:5000"] {
            assert!(!c.is_insecure(h, &[]), "{h}");
        }
    }

    #[test]
    fn insecure_entries() {
        let c = cfg(&["myreg.local:5000", "other.io", "10.1.0.0/16", "fd00::/8"]);
        assert!(c.validate().is_ok());
        assert!(c.is_insecure("myreg.local:5000", &[]));
        assert!(!c.is_insecure("myreg.local:5001", &[]));
        assert!(c.is_insecure("other.io:443", &[]));
        assert!(c.is_insecure("10.1.2.3:5000", &[]));
        assert!(!c.is_insecure("10.2.2.3:5000", &[]));
        assert!(c.is_insecure("[fd00::1]:5000", &[]));
        assert!(c.is_insecure("fd00::1", &[]));
        assert!(!c.is_insecure("[fe80::1]:5000", &[]));
        assert!(c.is_insecure("name.internal", &["10.1.9.9".parse().unwrap()]));
        assert!(c.has_cidr_entries());
        assert!(cfg(&["10.0.0.0/33"]).validate().is_err());
        let bad = RegistryConfig {
            mirrors: vec![Url::parse("ftp://x").unwrap()],
            ..Default::default()
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn host_port_split() {
        assert_eq!(split_host_port("a:5000"), ("a", Some("5000")));
        assert_eq!(split_host_port("[::1]:5000"), ("[::1]", Some("5000")));
        assert_eq!(split_host_port("a"), ("a", None));
        assert_eq!(split_host_port("::1"), ("::1", None));
    }
}
