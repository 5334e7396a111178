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
        serde_json::from_slice(bytes).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source,
        })
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
}
