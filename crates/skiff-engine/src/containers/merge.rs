//! The image's config merged into a container's at create, with moby's rules (`merge` in
//! daemon/commit.go): the user's values win; Env and Labels merge by key; the image's CMD is
//! taken only when no ENTRYPOINT and no CMD were given; `--entrypoint ""` clears the image's.

use oci_spec::image::Config as ImageConfig;

use super::model::{Config, HealthConfig};
use super::service::ContainersError;

fn key(e: &str) -> &str {
    e.split('=').next().unwrap_or(e)
}

/// Merges `img` into `c` in place.
pub fn image_config(c: &mut Config, img: Option<&ImageConfig>) {
    let Some(img) = img else {
        normalize_entrypoint(c);
        return;
    };
    if c.user.is_empty() {
        c.user = img.user().clone().unwrap_or_default();
    }
    let image_env = img.env().clone().unwrap_or_default();
    match &mut c.env {
        Some(env) if !env.is_empty() => {
            for ie in image_env {
                if !env.iter().any(|e| key(e) == key(&ie)) {
                    env.push(ie);
                }
            }
        }
        _ => c.env = Some(image_env),
    }
    let ep_given = c.entrypoint.as_ref().is_some_and(|e| !e.is_empty());
    if !ep_given {
        if c.cmd.as_ref().is_none_or(|x| x.is_empty()) {
            c.cmd = img.cmd().clone();
        }
        if c.entrypoint.is_none() {
            c.entrypoint = img.entrypoint().clone();
        }
    }
    normalize_entrypoint(c);
    if c.working_dir.is_empty() {
        c.working_dir = img.working_dir().clone().unwrap_or_default();
    }
    if let Some(ports) = img.exposed_ports() {
        let m = c.exposed_ports.get_or_insert_with(Default::default);
        for p in ports {
            let p = if p.contains('/') {
                p.clone()
            } else {
                format!("{p}/tcp")
            };
            m.entry(p).or_insert_with(|| serde_json::json!({}));
        }
    }
    if let Some(vols) = img.volumes() {
        let m = c.volumes.get_or_insert_with(Default::default);
        for v in vols {
            m.entry(v.clone()).or_insert_with(|| serde_json::json!({}));
        }
    }
    if let Some(labels) = img.labels() {
        let m = c.labels.get_or_insert_with(Default::default);
        for (k, v) in labels {
            m.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    if c.stop_signal.as_deref().unwrap_or("").is_empty() {
        c.stop_signal = img.stop_signal().clone().filter(|s| !s.is_empty());
    }
}

/// `Entrypoint: [""]` (the CLI's `--entrypoint ""`) means none.
fn normalize_entrypoint(c: &mut Config) {
    if c.entrypoint
        .as_ref()
        .is_some_and(|e| e.len() == 1 && e[0].is_empty())
    {
        c.entrypoint = None;
    }
}

/// Healthcheck: the container's fields override the image's, field by field.
pub fn healthcheck(c: Option<&HealthConfig>, img: Option<&HealthConfig>) -> Option<HealthConfig> {
    match (c, img) {
        (None, i) => i.cloned(),
        (Some(c), None) => Some(c.clone()),
        (Some(c), Some(i)) => Some(HealthConfig {
            test: c.test.clone().filter(|t| !t.is_empty()).or(i.test.clone()),
            interval: if c.interval == 0 {
                i.interval
            } else {
                c.interval
            },
            timeout: if c.timeout == 0 { i.timeout } else { c.timeout },
            retries: if c.retries == 0 { i.retries } else { c.retries },
            start_period: if c.start_period == 0 {
                i.start_period
            } else {
                c.start_period
            },
            start_interval: c.start_interval.or(i.start_interval),
        }),
    }
}

/// `Path` and `Args` of the container's process.
pub fn command(c: &Config) -> Result<(String, Vec<String>), ContainersError> {
    let words: Vec<String> = c
        .entrypoint
        .iter()
        .flatten()
        .chain(c.cmd.iter().flatten())
        .cloned()
        .collect();
    match words.split_first() {
        Some((p, rest)) => Ok((p.clone(), rest.to_vec())),
        None => Err(ContainersError::Invalid("no command specified".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(v: serde_json::Value) -> ImageConfig {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn cmd_and_entrypoint() {
        let i = img(
            serde_json::json!({"Entrypoint": ["/ep"], "Cmd": ["a"], "Env": ["PATH=/bin", "A=1"], "User": "nobody", "WorkingDir": "/w"}),
        );
        let mut c = Config::default();
        image_config(&mut c, Some(&i));
        assert_eq!(command(&c).unwrap(), ("/ep".into(), vec!["a".into()]));
        assert_eq!(c.user, "nobody");
        assert_eq!(c.working_dir, "/w");
        let mut c = Config {
            cmd: Some(vec!["x".into()]),
            env: Some(vec!["A=2".into()]),
            ..Default::default()
        };
        image_config(&mut c, Some(&i));
        assert_eq!(command(&c).unwrap(), ("/ep".into(), vec!["x".into()]));
        assert_eq!(c.env.unwrap(), ["A=2", "PATH=/bin"]);
        let mut c = Config {
            entrypoint: Some(vec![String::new()]),
            cmd: Some(vec!["ls".into()]),
            ..Default::default()
        };
        image_config(&mut c, Some(&i));
        assert_eq!(command(&c).unwrap(), ("ls".into(), vec![]));
        let mut c = Config {
            entrypoint: Some(vec!["sh".into()]),
            ..Default::default()
        };
        image_config(&mut c, Some(&i));
        assert_eq!(command(&c).unwrap(), ("sh".into(), vec![]));
        let mut c = Config {
            entrypoint: Some(vec![String::new()]),
            ..Default::default()
        };
        image_config(
            &mut c,
            Some(&img(serde_json::json!({"Entrypoint": ["/ep"]}))),
        );
        assert!(command(&c).is_err());
    }
}
