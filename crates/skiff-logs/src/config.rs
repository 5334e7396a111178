//! Driver names, `--log-opt` parsing and the resolved [`LogConfig`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::LogError;

/// The container stream an entry came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// The container's standard output.
    Stdout,
    /// The container's standard error.
    Stderr,
}

impl Stream {
    /// Docker's name: "stdout" or "stderr".
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// A log driver, by Docker's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Driver {
    /// `json-file`: Docker's default, one JSON object per line.
    JsonFile,
    /// `local`: a compact binary framing (see the crate docs).
    Local,
    /// `none`: logs are discarded.
    None,
}

impl Driver {
    /// Docker's name of the driver.
    pub fn as_str(self) -> &'static str {
        match self {
            Driver::JsonFile => "json-file",
            Driver::Local => "local",
            Driver::None => "none",
        }
    }
}

impl FromStr for Driver {
    type Err = LogError;
    fn from_str(s: &str) -> Result<Driver, LogError> {
        match s {
            "json-file" => Ok(Driver::JsonFile),
            "local" => Ok(Driver::Local),
            "none" => Ok(Driver::None),
            other => Err(LogError::UnknownDriver(other.to_string())),
        }
    }
}

/// A resolved log configuration of one container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// The driver.
    pub driver: Driver,
    /// The live log file; rotated files are `<path>.1` … `<path>.(max_file-1)`.
    pub path: PathBuf,
    /// Rotate when the live file has reached this many bytes; `None` = never.
    pub max_size: Option<u64>,
    /// How many files to keep, the live one included (1 = truncate instead of rotating).
    pub max_file: u32,
    /// Docker's `compress` option: accepted and recorded, but rotated files are kept
    /// uncompressed (see the crate docs).
    pub compress: bool,
}

/// Docker's `local` driver defaults: 20 MiB per file, 5 files.
pub const LOCAL_DEFAULT_MAX_SIZE: u64 = 20 * 1024 * 1024;
/// Docker's `local` driver default file count.
pub const LOCAL_DEFAULT_MAX_FILE: u32 = 5;

/// Keys `json-file` accepts (Docker's list). `labels`, `labels-regex`, `env`, `env-regex`
/// and `tag` are accepted but no `attrs` are written (see the crate docs).
const JSON_FILE_OPTS: &[&str] = &[
    "max-file",
    "max-size",
    "compress",
    "labels",
    "labels-regex",
    "env",
    "env-regex",
    "tag",
];
/// Keys `local` accepts (Docker's list).
const LOCAL_OPTS: &[&str] = &["max-file", "max-size", "compress"];

impl LogConfig {
    /// From Docker's `--log-driver` / `--log-opt`: `max-size` ("10m", "1k", "1.5g", "100":
    /// Docker's `units.FromHumanSize`, decimal multiples), `max-file`, `compress`.
    /// An unknown key is an error naming it; the `none` driver ignores options, as Docker does.
    pub fn from_opts(
        driver: &str,
        opts: &BTreeMap<String, String>,
        path: PathBuf,
    ) -> Result<LogConfig, LogError> {
        let driver: Driver = driver.parse()?;
        let (known, mut max_size, mut max_file, mut compress) = match driver {
            Driver::JsonFile => (JSON_FILE_OPTS, None, 1, false),
            Driver::Local => (
                LOCAL_OPTS,
                Some(LOCAL_DEFAULT_MAX_SIZE),
                LOCAL_DEFAULT_MAX_FILE,
                true,
            ),
            Driver::None => {
                return Ok(LogConfig {
                    driver,
                    path,
                    max_size: None,
                    max_file: 1,
                    compress: false,
                })
            }
        };
        if let Some(key) = opts.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(LogError::UnknownOpt {
                key: key.clone(),
                driver: driver.as_str(),
            });
        }
        let invalid = |key: &str, value: &str, reason: &str| LogError::InvalidOpt {
            key: key.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        };
        if let Some(v) = opts.get("max-size") {
            let size = parse_human_size(v).ok_or_else(|| invalid("max-size", v, "invalid size"))?;
            if size == 0 {
                return Err(invalid("max-size", v, "max-size must be a positive number"));
            }
            max_size = Some(size);
        }
        if let Some(v) = opts.get("max-file") {
            let n: i64 = v
                .trim()
                .parse()
                .map_err(|_| invalid("max-file", v, "not an integer"))?;
            if n < 1 {
                return Err(invalid("max-file", v, "max-file cannot be less than 1"));
            }
            max_file = u32::try_from(n).map_err(|_| invalid("max-file", v, "too large"))?;
        }
        if let Some(v) = opts.get("compress") {
            compress = parse_go_bool(v).ok_or_else(|| invalid("compress", v, "not a boolean"))?;
            if compress && driver == Driver::JsonFile && (max_file < 2 || max_size.is_none()) {
                return Err(invalid(
                    "compress",
                    v,
                    "compress cannot be true when max-file is less than 2 or max-size is not set",
                ));
            }
        }
        Ok(LogConfig {
            driver,
            path,
            max_size,
            max_file,
            compress,
        })
    }
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// docker/go-units `FromHumanSize`: a decimal number, an optional space, then an optional
/// suffix `b`, or `k|m|g|t|p` optionally followed by `b` or `ib`, any case; multiples of 1000.
pub(crate) fn parse_human_size(s: &str) -> Option<u64> {
    let sep = s.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ')?;
    let (num, sfx) = if s.as_bytes()[sep] == b' ' {
        (&s[..sep], &s[sep + 1..])
    } else {
        (&s[..=sep], &s[sep + 1..])
    };
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let size: f64 = num.parse().ok()?;
    let sfx = sfx.to_ascii_lowercase();
    let mul: f64 = match sfx.as_bytes() {
        [] | [b'b'] => 1.0,
        [m, rest @ ..] => {
            let mul = match m {
                b'k' => 1e3,
                b'm' => 1e6,
                b'g' => 1e9,
                b't' => 1e12,
                b'p' => 1e15,
                _ => return None,
            };
            match rest {
                [] | [b'b'] | [b'i', b'b'] => mul,
                _ => return None,
            }
        }
    };
    let bytes = size * mul;
    (bytes.is_finite() && bytes < u64::MAX as f64).then_some(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn sizes_parse_like_go_units() {
        assert_eq!(parse_human_size("10m"), Some(10_000_000));
        assert_eq!(parse_human_size("1k"), Some(1000));
        assert_eq!(parse_human_size("1g"), Some(1_000_000_000));
        assert_eq!(parse_human_size("1.5KB"), Some(1500));
        assert_eq!(parse_human_size("2 MiB"), Some(2_000_000));
        assert_eq!(parse_human_size("123"), Some(123));
        assert_eq!(parse_human_size("7b"), Some(7));
        assert_eq!(parse_human_size("10x"), None);
        assert_eq!(parse_human_size("m"), None);
        assert_eq!(parse_human_size("-1"), None);
        assert_eq!(parse_human_size("1kbb"), None);
    }

    #[test]
    fn drivers_by_docker_name() {
        assert_eq!("json-file".parse::<Driver>().unwrap(), Driver::JsonFile);
        assert_eq!("local".parse::<Driver>().unwrap(), Driver::Local);
        assert_eq!("none".parse::<Driver>().unwrap(), Driver::None);
        let err = "syslog".parse::<Driver>().unwrap_err().to_string();
        assert!(err.contains("'syslog'"), "{err}");
    }

    #[test]
    fn json_file_opts() {
        let c = LogConfig::from_opts(
            "json-file",
            &opts(&[("max-size", "10m"), ("max-file", "3"), ("tag", "x")]),
            "/l".into(),
        )
        .unwrap();
        assert_eq!(c.max_size, Some(10_000_000));
        assert_eq!(c.max_file, 3);
        assert!(!c.compress);
        let c = LogConfig::from_opts("json-file", &opts(&[]), "/l".into()).unwrap();
        assert_eq!((c.max_size, c.max_file), (None, 1));
        let err = LogConfig::from_opts("json-file", &opts(&[("max-bogus", "1")]), "/l".into())
            .unwrap_err()
            .to_string();
        assert!(err.contains("'max-bogus'"), "{err}");
        assert!(
            LogConfig::from_opts("json-file", &opts(&[("max-file", "0")]), "/l".into()).is_err()
        );
        assert!(
            LogConfig::from_opts("json-file", &opts(&[("max-size", "0")]), "/l".into()).is_err()
        );
        assert!(
            LogConfig::from_opts("json-file", &opts(&[("compress", "true")]), "/l".into()).is_err()
        );
    }

    #[test]
    fn local_defaults_and_opts() {
        let c = LogConfig::from_opts("local", &opts(&[]), "/l".into()).unwrap();
        assert_eq!(c.max_size, Some(20 * 1024 * 1024));
        assert_eq!(c.max_file, 5);
        let err = LogConfig::from_opts("local", &opts(&[("tag", "x")]), "/l".into())
            .unwrap_err()
            .to_string();
        assert!(err.contains("'tag'"), "{err}");
        let c = LogConfig::from_opts("none", &opts(&[("anything", "1")]), "/l".into()).unwrap();
        assert_eq!(c.driver, Driver::None);
    }
}
