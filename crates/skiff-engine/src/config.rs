//! The engine's configuration: `/etc/skiff/daemon.json`, with the keys Docker's daemon.json
//! has where they exist. Unknown keys are an error naming the key, as dockerd does.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Default location of the configuration file.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/skiff/daemon.json";
/// Default data root.
pub const DEFAULT_DATA_ROOT: &str = "/var/lib/skiff";

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct EngineConfig {
    #[serde(default = "default_root")]
    pub data_root: PathBuf,
    /// Mirrors of docker.io (`registry-mirrors`), tried in order.
    #[serde(default)]
    pub registry_mirrors: Vec<String>,
    /// Registries reached over plain HTTP / unverified TLS (`insecure-registries`).
    #[serde(default)]
    pub insecure_registries: Vec<String>,
    /// Parallel layer downloads per pull (`max-concurrent-downloads`, Docker's default 3).
    #[serde(default = "default_downloads")]
    pub max_concurrent_downloads: usize,
    /// Parallel layer uploads per push (`max-concurrent-uploads`, Docker's default 5).
    #[serde(default = "default_uploads")]
    pub max_concurrent_uploads: usize,
    /// Runtime state and monitor sockets (`exec-root`, default /run/skiff).
    #[serde(default = "default_exec_root")]
    pub exec_root: PathBuf,
    /// Default log driver of containers (`log-driver`: json-file, local, none).
    #[serde(default = "default_log_driver")]
    pub log_driver: String,
    /// Default log driver options (`log-opts`, e.g. max-size, max-file).
    #[serde(default)]
    pub log_opts: std::collections::BTreeMap<String, String>,
    /// Where networks' subnets come from (`default-address-pools`: `[{"base":
    /// "172.17.0.0/16","size":16}, ...]`); empty = Docker's defaults.
    #[serde(default)]
    pub default_address_pools: Vec<AddressPoolConfig>,
    /// `bridge`: `"none"` turns networking off (no default bridge, no firewall rules;
    /// containers get `none` by default), as dockerd's `--bridge=none`.
    #[serde(default)]
    pub bridge: String,
    /// `iptables`: false = skiff adds no firewall rules (no NAT, no published ports).
    #[serde(default = "yes")]
    pub iptables: bool,
    /// `bip`: the default bridge's address and prefix (`"10.55.0.1/24"`): the gateway and
    /// the subnet of the default `bridge` network. Empty: a subnet from the pools.
    #[serde(default)]
    pub bip: String,
    /// `mtu`: the default bridge network's MTU (the bridge and the containers' veths);
    /// 0 = 1500.
    #[serde(default)]
    pub mtu: u32,
}

/// `bip` decoded: the gateway (the bridge's address) and the subnet it is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bip {
    pub gateway: std::net::Ipv4Addr,
    pub prefix: u8,
}

impl Bip {
    /// Parses `A.B.C.D/N` (N from 1 to 30; the address must not be the subnet's network or
    /// broadcast address).
    pub fn parse(s: &str) -> Result<Bip, String> {
        let bad = |why: &str| format!("bip {s:?}: {why}");
        let (a, n) = s
            .split_once('/')
            .ok_or_else(|| bad("want an address with a prefix length, as 10.55.0.1/24"))?;
        let gateway: std::net::Ipv4Addr = a.parse().map_err(|_| bad("invalid IPv4 address"))?;
        let prefix: u8 = n
            .parse()
            .ok()
            .filter(|p| (1..=30).contains(p))
            .ok_or_else(|| bad("the prefix length must be a number from 1 to 30"))?;
        let host = u32::from(gateway) & (u32::MAX >> prefix);
        if host == 0 || host == u32::MAX >> prefix {
            return Err(bad(
                "the address is the subnet's network or broadcast address",
            ));
        }
        Ok(Bip { gateway, prefix })
    }

    /// The subnet, `A.B.C.0/N`.
    pub fn subnet(&self) -> String {
        let net = u32::from(self.gateway) & !(u32::MAX >> self.prefix);
        format!("{}/{}", std::net::Ipv4Addr::from(net), self.prefix)
    }
}

/// One `default-address-pools` entry.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AddressPoolConfig {
    pub base: String,
    pub size: u8,
}

fn yes() -> bool {
    true
}

fn default_exec_root() -> PathBuf {
    PathBuf::from("/run/skiff")
}
fn default_log_driver() -> String {
    "json-file".into()
}

fn default_root() -> PathBuf {
    PathBuf::from(DEFAULT_DATA_ROOT)
}
fn default_downloads() -> usize {
    3
}
fn default_uploads() -> usize {
    5
}

impl Default for EngineConfig {
    fn default() -> Self {
        serde_json::from_str("{}").expect("empty config is valid")
    }
}

/// A configuration that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {what}", path.display())]
    Invalid { path: PathBuf, what: String },
    #[error("{}: {source}", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

impl EngineConfig {
    /// Read the file; a missing file is the default configuration.
    pub fn load(path: &Path) -> Result<EngineConfig, ConfigError> {
        match std::fs::read(path) {
            Ok(b) => Self::parse(path, &b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(EngineConfig::default()),
            Err(source) => Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    pub fn parse(path: &Path, bytes: &[u8]) -> Result<EngineConfig, ConfigError> {
        let c: EngineConfig =
            serde_json::from_slice(bytes).map_err(|source| ConfigError::Parse {
                path: path.to_path_buf(),
                source,
            })?;
        let invalid = |what: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            what,
        };
        if !c.bip.is_empty() {
            Bip::parse(&c.bip).map_err(invalid)?;
        }
        if c.mtu != 0 && !(68..=65535).contains(&c.mtu) {
            return Err(invalid(format!("mtu {}: must be from 68 to 65535", c.mtu)));
        }
        Ok(c)
    }

    /// `bip`, decoded (checked by [`EngineConfig::parse`]).
    pub fn bip(&self) -> Option<Bip> {
        Bip::parse(&self.bip).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_keys_and_unknown_key() {
        let c = EngineConfig::parse(
            Path::new("daemon.json"),
            br#"{"data-root": "/x", "registry-mirrors": ["http://127.0.0.1:5001"], "insecure-registries": ["10.0.0.0/8"]}"#,
        )
        .unwrap();
        assert_eq!(c.data_root, PathBuf::from("/x"));
        assert_eq!(c.registry_mirrors.len(), 1);
        assert_eq!(c.max_concurrent_downloads, 3);
        let e =
            EngineConfig::parse(Path::new("daemon.json"), br#"{"data-rot": "/x"}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `data-rot`"), "{e}");
        let e = EngineConfig::parse(Path::new("daemon.json"), b"{").unwrap_err();
        assert!(e.to_string().starts_with("daemon.json:"), "{e}");
    }

    #[test]
    fn bip_and_mtu() {
        let p = Path::new("daemon.json");
        let c = EngineConfig::parse(p, br#"{"bip": "10.55.0.1/24", "mtu": 1400}"#).unwrap();
        let b = c.bip().unwrap();
        assert_eq!(b.gateway, std::net::Ipv4Addr::new(10, 55, 0, 1));
        assert_eq!(b.subnet(), "10.55.0.0/24");
        assert_eq!(c.mtu, 1400);
        assert_eq!(EngineConfig::default().bip(), None);
        assert_eq!(EngineConfig::default().mtu, 0);
        for (bad, want) in [
            (
                r#"{"bip": "10.55.0.1"}"#,
                "bip \"10.55.0.1\": want an address with a prefix",
            ),
            (r#"{"bip": "10.55.0.300/24"}"#, "invalid IPv4 address"),
            (
                r#"{"bip": "10.55.0.1/31"}"#,
                "prefix length must be a number from 1 to 30",
            ),
            (r#"{"bip": "10.55.0.0/24"}"#, "network or broadcast"),
            (r#"{"bip": "10.55.0.255/24"}"#, "network or broadcast"),
            (r#"{"mtu": 40}"#, "mtu 40: must be from 68 to 65535"),
            (r#"{"mtu": -1}"#, "invalid value"),
        ] {
            let e = EngineConfig::parse(p, bad.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with("daemon.json: ") && e.contains(want),
                "{bad}: {e}"
            );
        }
    }
}
