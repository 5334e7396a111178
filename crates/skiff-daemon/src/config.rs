//! The daemon's configuration: `daemon.json` (Docker's keys) merged with the command line.
//!
//! The engine's keys (`data-root`, `registry-mirrors`, ...) belong to
//! [`skiff_engine::EngineConfig`]; the daemon's own keys (`hosts`, `log-level`, `debug`,
//! `group`) are taken out of the object first and the rest goes to the engine's parser, so an
//! unknown key is still an error naming it. As in dockerd, a directive given both as a flag
//! and in the file is an error.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use skiff_engine::config::ConfigError as EngineConfigError;
use skiff_engine::EngineConfig;

/// The default socket.
pub const DEFAULT_HOST: &str = "unix:///run/skiff/skiff.sock";
/// Group given access to the default socket when it exists.
pub const DEFAULT_GROUP: &str = "skiff";

/// How the daemon is started (`skiff daemon` flags).
#[derive(Debug, Clone, Default)]
pub struct DaemonOptions {
    /// daemon.json; `None` is `/etc/skiff/daemon.json` (missing file = defaults).
    pub config_file: Option<PathBuf>,
    /// `-H`: `unix:///path` or `tcp://127.0.0.1:PORT`. Empty: daemon.json `hosts`, else
    /// [`DEFAULT_HOST`].
    pub hosts: Vec<String>,
    /// `--data-root`.
    pub data_root: Option<PathBuf>,
    /// `--exec-root`: runtime state and monitor sockets.
    pub exec_root: Option<PathBuf>,
    /// `-D` / `--debug`.
    pub debug: bool,
    /// `--log-level` (`debug`, `info`, `warn`, `error`, `fatal`).
    pub log_level: Option<String>,
    /// `-G` / `--group`: owner group of unix sockets.
    pub group: Option<String>,
    /// `--log-format json` for JSON lines instead of text.
    pub log_json: bool,
}

/// Everything the daemon runs with.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    pub engine: EngineConfig,
    pub hosts: Vec<String>,
    pub debug: bool,
    pub log_level: String,
    /// Group for the sockets; `None` = [`DEFAULT_GROUP`] when that group exists.
    pub group: Option<String>,
    /// Where the configuration came from (for reloads).
    pub config_file: PathBuf,
    pub log_json: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {detail}", path.display())]
    Invalid { path: PathBuf, detail: String },
    #[error(transparent)]
    Engine(#[from] EngineConfigError),
    #[error("unable to configure the Docker daemon with file {}: the following directives are specified both as a flag and in the configuration file: {}", path.display(), keys.join(", "))]
    Conflict { path: PathBuf, keys: Vec<String> },
    #[error("invalid log level {0:?}: want debug, info, warn, error or fatal")]
    LogLevel(String),
}

/// The daemon's own keys out of daemon.json.
#[derive(Debug, Default)]
struct FileKeys {
    hosts: Option<Vec<String>>,
    debug: Option<bool>,
    log_level: Option<String>,
    group: Option<String>,
}

fn take_keys(path: &Path, obj: &mut Map<String, Value>) -> Result<FileKeys, ConfigError> {
    let bad = |detail: String| ConfigError::Invalid {
        path: path.to_path_buf(),
        detail,
    };
    let mut k = FileKeys::default();
    if let Some(v) = obj.remove("hosts") {
        k.hosts =
            Some(serde_json::from_value(v).map_err(|e| bad(format!("hosts: want strings: {e}")))?);
    }
    if let Some(v) = obj.remove("debug") {
        k.debug = Some(
            v.as_bool()
                .ok_or_else(|| bad("debug: want a boolean".into()))?,
        );
    }
    if let Some(v) = obj.remove("log-level") {
        k.log_level = Some(
            v.as_str()
                .ok_or_else(|| bad("log-level: want a string".into()))?
                .to_string(),
        );
    }
    if let Some(v) = obj.remove("group") {
        k.group = Some(
            v.as_str()
                .ok_or_else(|| bad("group: want a string".into()))?
                .to_string(),
        );
    }
    Ok(k)
}

/// `debug` → `debug`; Docker's levels onto tracing's.
pub fn normalize_level(level: &str) -> Result<String, ConfigError> {
    match level.to_ascii_lowercase().as_str() {
        "trace" => Ok("trace".into()),
        "debug" => Ok("debug".into()),
        "info" | "" => Ok("info".into()),
        "warn" | "warning" => Ok("warn".into()),
        "error" | "fatal" | "panic" => Ok("error".into()),
        _ => Err(ConfigError::LogLevel(level.to_string())),
    }
}

impl DaemonConfig {
    /// Reads the file named by the options (a missing file is the defaults) and merges flags.
    pub fn load(opts: &DaemonOptions) -> Result<DaemonConfig, ConfigError> {
        let path = opts
            .config_file
            .clone()
            .unwrap_or_else(|| PathBuf::from(skiff_engine::config::DEFAULT_CONFIG_PATH));
        let bytes = match std::fs::read(&path) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && opts.config_file.is_none() => {
                None
            }
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        Self::from_parts(opts, &path, bytes.as_deref())
    }

    /// The configuration from daemon.json bytes (`None`: no file) and the flags.
    pub fn from_parts(
        opts: &DaemonOptions,
        path: &Path,
        bytes: Option<&[u8]>,
    ) -> Result<DaemonConfig, ConfigError> {
        let (keys, mut engine) = match bytes {
            None => (FileKeys::default(), EngineConfig::default()),
            Some(b) => {
                let v: Value = serde_json::from_slice(b).map_err(|e| ConfigError::Invalid {
                    path: path.to_path_buf(),
                    detail: e.to_string(),
                })?;
                let Value::Object(mut obj) = v else {
                    return Err(ConfigError::Invalid {
                        path: path.to_path_buf(),
                        detail: "want a JSON object".into(),
                    });
                };
                let keys = take_keys(path, &mut obj)?;
                let rest = serde_json::to_vec(&Value::Object(obj)).unwrap_or_default();
                (keys, EngineConfig::parse(path, &rest)?)
            }
        };
        let mut conflicts = Vec::new();
        if !opts.hosts.is_empty() && keys.hosts.is_some() {
            conflicts.push("hosts".to_string());
        }
        if opts.data_root.is_some() && bytes.is_some_and(|b| has_key(b, "data-root")) {
            conflicts.push("data-root".to_string());
        }
        if opts.exec_root.is_some() && bytes.is_some_and(|b| has_key(b, "exec-root")) {
            conflicts.push("exec-root".to_string());
        }
        if opts.log_level.is_some() && keys.log_level.is_some() {
            conflicts.push("log-level".to_string());
        }
        if opts.group.is_some() && keys.group.is_some() {
            conflicts.push("group".to_string());
        }
        if !conflicts.is_empty() {
            return Err(ConfigError::Conflict {
                path: path.to_path_buf(),
                keys: conflicts,
            });
        }
        if let Some(r) = &opts.data_root {
            engine.data_root = r.clone();
        }
        if let Some(r) = &opts.exec_root {
            engine.exec_root = r.clone();
        }
        let hosts = if !opts.hosts.is_empty() {
            opts.hosts.clone()
        } else {
            keys.hosts
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| vec![DEFAULT_HOST.to_string()])
        };
        let debug = opts.debug || keys.debug.unwrap_or(false);
        let level = opts
            .log_level
            .clone()
            .or(keys.log_level)
            .unwrap_or_else(|| if debug { "debug" } else { "info" }.to_string());
        Ok(DaemonConfig {
            engine,
            hosts,
            debug,
            log_level: normalize_level(&level)?,
            group: opts.group.clone().or(keys.group),
            config_file: path.to_path_buf(),
            log_json: opts.log_json,
        })
    }
}

fn has_key(bytes: &[u8], key: &str) -> bool {
    serde_json::from_slice::<Map<String, Value>>(bytes).is_ok_and(|m| m.contains_key(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(opts: &DaemonOptions, json: &str) -> Result<DaemonConfig, ConfigError> {
        DaemonConfig::from_parts(opts, Path::new("daemon.json"), Some(json.as_bytes()))
    }

    #[test]
    fn daemon_and_engine_keys() {
        let c = parse(
            &DaemonOptions::default(),
            r#"{"hosts": ["unix:///tmp/x.sock"], "debug": true, "group": "wheel",
                "data-root": "/d", "insecure-registries": ["127.0.0.1:5000"]}"#,
        )
        .unwrap();
        assert_eq!(c.hosts, vec!["unix:///tmp/x.sock"]);
        assert!(c.debug);
        assert_eq!(c.log_level, "debug");
        assert_eq!(c.group.as_deref(), Some("wheel"));
        assert_eq!(c.engine.data_root, PathBuf::from("/d"));
        assert_eq!(c.engine.insecure_registries, vec!["127.0.0.1:5000"]);
    }

    #[test]
    fn defaults_and_flags() {
        let c = DaemonConfig::from_parts(&DaemonOptions::default(), Path::new("x"), None).unwrap();
        assert_eq!(c.hosts, vec![DEFAULT_HOST]);
        assert_eq!(c.log_level, "info");
        let opts = DaemonOptions {
            hosts: vec!["tcp://127.0.0.1:2375".into()],
            log_level: Some("warning".into()),
            ..Default::default()
        };
        let c = parse(&opts, "{}").unwrap();
        assert_eq!(c.hosts, vec!["tcp://127.0.0.1:2375"]);
        assert_eq!(c.log_level, "warn");
    }

    #[test]
    fn unknown_key_and_conflicts_are_errors() {
        let e = parse(&DaemonOptions::default(), r#"{"log-levle": "debug"}"#).unwrap_err();
        assert!(e.to_string().contains("log-levle"), "{e}");
        let opts = DaemonOptions {
            hosts: vec!["unix:///a".into()],
            ..Default::default()
        };
        let e = parse(&opts, r#"{"hosts": ["unix:///b"]}"#).unwrap_err();
        assert!(e.to_string().contains("both as a flag"), "{e}");
        let e = parse(&DaemonOptions::default(), r#"{"log-level": "loud"}"#).unwrap_err();
        assert!(e.to_string().contains("loud"), "{e}");
        let e = parse(&DaemonOptions::default(), r#"{"debug": "yes"}"#).unwrap_err();
        assert!(e.to_string().contains("debug"), "{e}");
    }
}
