//! The `config` object of a Docker/OCI image config JSON, as the builder reads and writes it.
//!
//! Field names and shapes are Docker's (`Cmd`, `Entrypoint`, `Env` as `KEY=value` strings,
//! `ExposedPorts` and `Volumes` as objects of empty objects, `Healthcheck` durations in
//! nanoseconds); absent fields stay absent when written back, `null` reads as absent, and any
//! field this type does not name (`Hostname`, `Image`, `StopTimeout`, ...) is kept as is.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

/// `{}`: the value type of `ExposedPorts` and `Volumes`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// Docker's `HealthConfig`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    /// `["NONE"]`, `["CMD", args...]` or `["CMD-SHELL", text]`.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub test: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub interval: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timeout: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_period: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_interval: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: i64,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

fn null_default<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The image's run configuration (`config` in the image JSON).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Empty>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args_escaped: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, Empty>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_build: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
    /// Every other field, kept untouched.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

impl ImageConfig {
    /// The ENV list as (key, value) pairs (a `KEY` without `=` has an empty value).
    pub fn env_pairs(&self) -> Vec<(String, String)> {
        self.env
            .iter()
            .flatten()
            .map(|e| match e.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (e.clone(), String::new()),
            })
            .collect()
    }

    /// Sets `key=value` in ENV, replacing an existing `key` in place (Docker keeps the order).
    pub fn set_env(&mut self, key: &str, value: &str) {
        let env = self.env.get_or_insert_with(Vec::new);
        let entry = format!("{key}={value}");
        match env.iter_mut().find(|e| e.split('=').next() == Some(key)) {
            Some(e) => *e = entry,
            None => env.push(entry),
        }
    }

    /// The value of `key` in ENV.
    pub fn env_value(&self, key: &str) -> Option<String> {
        self.env_pairs()
            .into_iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// The shell for shell-form commands: SHELL, or `/bin/sh -c`.
    pub fn shell_or_default(&self) -> Vec<String> {
        match &self.shell {
            Some(s) if !s.is_empty() => s.clone(),
            _ => vec!["/bin/sh".into(), "-c".into()],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_unknown_fields_and_shapes() {
        let json = r#"{"Hostname":"","Env":["PATH=/bin","A=1"],"Cmd":["sh"],"Image":"sha256:ab",
            "ExposedPorts":{"80/tcp":{}},"Volumes":null,"Labels":{"a":"b"},"ArgsEscaped":true,
            "Healthcheck":{"Test":["CMD","true"],"Interval":1000000000},"OnBuild":null}"#;
        let c: ImageConfig = serde_json::from_str(json).unwrap();
        assert_eq!(c.cmd.as_deref(), Some(&["sh".to_string()][..]));
        assert!(c.volumes.is_none() && c.on_build.is_none());
        assert_eq!(c.env_value("A").as_deref(), Some("1"));
        let back = serde_json::to_value(&c).unwrap();
        assert_eq!(back["Hostname"], "");
        assert_eq!(back["Image"], "sha256:ab");
        assert_eq!(back["ExposedPorts"], serde_json::json!({"80/tcp": {}}));
        assert_eq!(
            back["Healthcheck"],
            serde_json::json!({"Test": ["CMD", "true"], "Interval": 1_000_000_000})
        );
        assert!(back.get("Volumes").is_none());
    }

    #[test]
    fn env_replace_in_place() {
        let mut c = ImageConfig::default();
        c.set_env("A", "1");
        c.set_env("B", "2");
        c.set_env("A", "3");
        assert_eq!(c.env.as_deref().unwrap(), ["A=3", "B=2"]);
        assert_eq!(c.shell_or_default(), ["/bin/sh", "-c"]);
    }
}
