//! The API's views of a container: inspect (`ContainerInspectResponse`) and the list's
//! `ContainerSummary`, with `docker ps` filters.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Value};

use super::lifecycle::status_words;
use super::model::{Container, Status};
use super::service::{Containers, ContainersError};

fn network_settings(c: &Container) -> Value {
    let mode = match c.host_config.network_mode.as_str() {
        "" | "default" if !c.networks.is_empty() => "bridge",
        "" | "default" => "none",
        m => m,
    };
    let endpoint = |a: Option<&super::model::NetAttach>, user_net: bool| {
        let d = super::model::NetAttach::default();
        let a = a.unwrap_or(&d);
        let mut dns = vec![c.short_name().to_string(), c.id[..12].to_string()];
        dns.extend(a.aliases.iter().cloned());
        json!({
            "IPAMConfig": a.ipv4.as_ref().map(|ip| json!({"IPv4Address": ip})),
            "Links": null,
            "Aliases": if a.aliases.is_empty() { Value::Null } else { json!(a.aliases) },
            "MacAddress": a.mac, "DriverOpts": null,
            "NetworkID": a.network_id, "EndpointID": a.endpoint_id, "Gateway": a.gateway,
            "IPAddress": a.ip, "IPPrefixLen": a.prefix, "IPv6Gateway": "",
            "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
            "DNSNames": if user_net && !a.ip.is_empty() { json!(dns) } else { Value::Null },
        })
    };
    let mut networks = serde_json::Map::new();
    if c.networks.is_empty() {
        networks.insert(mode.to_string(), endpoint(None, false));
    }
    let mut published = Vec::new();
    for (name, a) in &c.networks {
        networks.insert(name.clone(), endpoint(Some(a), name != "bridge"));
        published.extend(a.ports.iter().copied());
    }
    let running = c.state.running && !c.sandbox_key.is_empty();
    let ports = if running {
        let exposed: Vec<&str> = c
            .config
            .exposed_ports
            .iter()
            .flatten()
            .map(|(k, _)| k.as_str())
            .collect();
        json!(skiff_net::ports::settings_ports(exposed, &published))
    } else {
        json!({})
    };
    let b = c.networks.get("bridge").filter(|_| running);
    let d = super::model::NetAttach::default();
    let top = b.unwrap_or(&d);
    json!({
        "Bridge": "", "SandboxID": if running { json!(c.id) } else { json!("") },
        "HairpinMode": false, "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0, "Ports": ports, "SandboxKey": c.sandbox_key,
        "SecondaryIPAddresses": null, "SecondaryIPv6Addresses": null,
        "EndpointID": top.endpoint_id, "Gateway": top.gateway, "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0, "IPAddress": top.ip, "IPPrefixLen": top.prefix,
        "IPv6Gateway": "", "MacAddress": top.mac, "Networks": networks,
    })
}

/// The `Ports` of a container in the list API: every published port of its running
/// endpoints (`{IP, PrivatePort, PublicPort, Type}`), and exposed ones without a binding.
pub fn list_ports(c: &Container) -> Value {
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    if c.state.running {
        for a in c.networks.values() {
            for p in &a.ports {
                seen.insert(format!("{}/{}", p.container_port, p.proto));
                out.push(
                    json!({"IP": p.host_ip.to_string(), "PrivatePort": p.container_port,
                    "PublicPort": p.host_port, "Type": p.proto.to_string()}),
                );
            }
        }
    }
    for k in c.config.exposed_ports.iter().flatten().map(|(k, _)| k) {
        if !seen.contains(k) {
            let (port, proto) = k.split_once('/').unwrap_or((k, "tcp"));
            if let Ok(n) = port.parse::<u16>() {
                out.push(json!({"PrivatePort": n, "Type": proto}));
            }
        }
    }
    json!(out)
}

fn dir_size(p: &Path) -> u64 {
    let mut n = 0;
    let mut stack = vec![p.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            if let Ok(m) = e.metadata() {
                if m.is_dir() {
                    stack.push(e.path());
                } else {
                    n += m.len();
                }
            }
        }
    }
    n
}

/// `GET /containers/{id}/json`.
pub fn inspect(cs: &Containers, dir: &Path, c: &Container, execs: &[String], size: bool) -> Value {
    let snap = cs.store.snapshots().mounts(&c.id).ok();
    let graph = snap
        .as_ref()
        .and_then(|m| m.first())
        .map(|m| {
            let mut data = BTreeMap::new();
            for o in &m.options {
                if let Some((k, v)) = o.split_once('=') {
                    let key = match k {
                        "lowerdir" => "LowerDir",
                        "upperdir" => "UpperDir",
                        "workdir" => "WorkDir",
                        _ => continue,
                    };
                    data.insert(key.to_string(), v.to_string());
                }
            }
            data.insert(
                "MergedDir".to_string(),
                dir.join("rootfs").display().to_string(),
            );
            json!({"Name": "overlay2", "Data": data})
        })
        .unwrap_or_else(|| json!({"Name": "overlay2", "Data": null}));
    let mut v = json!({
        "Id": c.id,
        "Created": super::model::rfc3339_nano(c.created),
        "Path": c.path,
        "Args": c.args,
        "State": c.state,
        "Image": c.image,
        "ResolvConfPath": dir.join("resolv.conf"),
        "HostnamePath": dir.join("hostname"),
        "HostsPath": dir.join("hosts"),
        "LogPath": c.log_path,
        "Name": c.name,
        "RestartCount": c.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": if execs.is_empty() { Value::Null } else { json!(execs) },
        "HostConfig": c.host_config,
        "GraphDriver": graph,
        "Mounts": super::mounts::mount_points(&c.mount_points, &c.host_config),
        "Config": c.config,
        "NetworkSettings": network_settings(c),
    });
    if v["HostConfig"].get("Runtime").is_none() {
        v["HostConfig"]["Runtime"] = json!("runc");
    }
    if v["HostConfig"]["LogConfig"]["Type"] == "" {
        v["HostConfig"]["LogConfig"]["Type"] = json!(c.log_driver);
        v["HostConfig"]["LogConfig"]["Config"] = json!(c.log_opts);
    }
    if size {
        let upper = graph_upper(&v);
        v["SizeRw"] = json!(upper.map(|u| dir_size(Path::new(&u))).unwrap_or(0));
        v["SizeRootFs"] = v["SizeRw"].clone();
    }
    v
}

fn graph_upper(v: &Value) -> Option<String> {
    v["GraphDriver"]["Data"]["UpperDir"]
        .as_str()
        .map(str::to_string)
}

/// The `Command` column: path and args, as dockerd joins them.
fn command_line(c: &Container) -> String {
    let mut s = c.path.clone();
    for a in &c.args {
        s.push(' ');
        s.push_str(a);
    }
    s
}

/// One `ContainerSummary`.
pub fn summary(cs: &Containers, c: &Container, size: bool) -> Value {
    let mode = if c.host_config.network_mode.is_empty() {
        "default".to_string()
    } else {
        c.host_config.network_mode.clone()
    };
    let mut v = json!({
        "Id": c.id,
        "Names": [c.name],
        "Image": c.config.image,
        "ImageID": c.image,
        "Command": command_line(c),
        "Created": c.created.timestamp(),
        "Ports": list_ports(c),
        "Labels": c.config.labels.clone().unwrap_or_default(),
        "State": if c.state.restarting { "restarting" } else if c.state.paused { "paused" } else { c.state.status.as_str() },
        "Status": status_words(c),
        "HostConfig": {"NetworkMode": mode},
        "NetworkSettings": {"Networks": network_settings(c)["Networks"].clone()},
        "Mounts": super::mounts::mount_points(&c.mount_points, &c.host_config),
    });
    if size {
        let upper = cs
            .store
            .snapshots()
            .mounts(&c.id)
            .ok()
            .and_then(|m| m.first().cloned())
            .and_then(|m| {
                m.options
                    .iter()
                    .find_map(|o| o.strip_prefix("upperdir=").map(str::to_string))
            });
        let rw = upper.map(|u| dir_size(Path::new(&u))).unwrap_or(0);
        v["SizeRw"] = json!(rw);
        v["SizeRootFs"] = json!(rw);
    }
    v
}

/// `docker ps` filters and options.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub all: bool,
    pub limit: Option<usize>,
    pub size: bool,
    pub filters: BTreeMap<String, Vec<String>>,
}

fn label_match(c: &Container, f: &str) -> bool {
    let labels = c.config.labels.clone().unwrap_or_default();
    match f.split_once('=') {
        Some((k, v)) => labels.get(k).map(String::as_str) == Some(v),
        None => labels.contains_key(f),
    }
}

impl Containers {
    /// `GET /containers/json`, newest first.
    pub fn list(&self, opts: &ListOptions) -> Result<Vec<Value>, ContainersError> {
        const KNOWN: &[&str] = &[
            "id", "name", "label", "status", "exited", "before", "since", "ancestor", "health",
            "volume", "network", "is-task", "publish", "expose",
        ];
        for k in opts.filters.keys() {
            if !KNOWN.contains(&k.as_str()) {
                return Err(ContainersError::Invalid(format!("invalid filter '{k}'")));
            }
        }
        for s in opts.filters.get("status").into_iter().flatten() {
            if !matches!(
                s.as_str(),
                "created" | "restarting" | "running" | "removing" | "paused" | "exited" | "dead"
            ) {
                return Err(ContainersError::Invalid(format!(
                    "invalid filter 'status={s}'"
                )));
            }
        }
        let mut all: Vec<Container> = self.all().iter().map(|e| e.snapshot()).collect();
        all.sort_by(|a, b| b.created.cmp(&a.created).then(b.id.cmp(&a.id)));
        let created_of = |what: &str| -> Result<chrono::DateTime<chrono::Utc>, ContainersError> {
            Ok(self.get(what)?.snapshot().created)
        };
        let before = match opts.filters.get("before").and_then(|v| v.first()) {
            Some(b) => Some(created_of(b)?),
            None => None,
        };
        let since = match opts.filters.get("since").and_then(|v| v.first()) {
            Some(s) => Some(created_of(s)?),
            None => None,
        };
        let f = |k: &str| opts.filters.get(k).filter(|v| !v.is_empty());
        let any =
            |k: &str, pred: &dyn Fn(&str) -> bool| f(k).is_none_or(|vs| vs.iter().any(|v| pred(v)));
        let mut out = Vec::new();
        let filtered_status = f("status").is_some() || f("exited").is_some();
        for c in &all {
            let state = if c.state.restarting {
                "restarting"
            } else if c.state.paused {
                "paused"
            } else {
                c.state.status.as_str()
            };
            if !opts.all && !filtered_status && !c.state.running && !c.state.restarting {
                continue;
            }
            if !any("id", &|v| c.id.starts_with(v))
                || !any("name", &|v| {
                    c.short_name().contains(v.trim_start_matches('/'))
                })
                || !any("status", &|v| v == state)
                || !any("exited", &|v| {
                    c.state.status == Status::Exited
                        && v.parse::<i64>().ok() == Some(c.state.exit_code)
                })
                || !f("label").is_none_or(|vs| vs.iter().all(|v| label_match(c, v)))
                || !any("ancestor", &|v| {
                    c.config.image == v
                        || c.image == v
                        || c.image.trim_start_matches("sha256:").starts_with(v)
                })
                || !any("health", &|v| {
                    let h = c
                        .state
                        .health
                        .as_ref()
                        .map(|h| h.status.as_str())
                        .unwrap_or("none");
                    h == v
                })
            {
                continue;
            }
            if before.is_some_and(|b| c.created >= b) || since.is_some_and(|s| c.created <= s) {
                continue;
            }
            out.push(summary(self, c, opts.size));
        }
        if let Some(n) = opts.limit.filter(|n| *n > 0) {
            out.truncate(n);
        }
        Ok(out)
    }
}
