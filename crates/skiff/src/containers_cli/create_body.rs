//! `create`/`run` flags → the body of `POST /containers/create` (Config + HostConfig +
//! NetworkingConfig), as the docker CLI builds it.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::flags::ContainerFlags;
use super::parse;

/// How the container's streams will be used (run attaches, create and `run -d` do not).
#[derive(Debug, Clone, Copy)]
pub struct Attach {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

/// The create request body. `Err` is a message naming the bad flag value.
pub fn build(
    f: &ContainerFlags,
    image: &str,
    command: &[String],
    attach: Attach,
) -> Result<Value, String> {
    let mut env = Vec::new();
    for path in &f.env_file {
        env.extend(parse::env_file(path)?);
    }
    for e in &f.env {
        env.extend(parse::env_var(e)?);
    }
    let mut exposed = Map::new();
    let mut bindings: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for p in &f.publish {
        for (port, ip, host) in parse::port_spec(p)? {
            exposed.insert(port.clone(), json!({}));
            bindings
                .entry(port)
                .or_default()
                .push(json!({"HostIp": ip, "HostPort": host}));
        }
    }
    for e in &f.expose {
        for (port, _, _) in parse::port_spec(e)? {
            exposed.insert(port, json!({}));
        }
    }
    let mut binds = Vec::new();
    let mut volumes = Map::new();
    for v in &f.volume {
        match parse::volume_spec(v)? {
            parse::VolumeSpec::Bind(b) => binds.push(b),
            parse::VolumeSpec::Anonymous(d) => {
                volumes.insert(d, json!({}));
            }
        }
    }
    let entrypoint = f.entrypoint.as_ref().map(|e| {
        if e.is_empty() {
            json!([""])
        } else {
            json!([e])
        }
    });
    let mut config = json!({
        "Hostname": f.hostname.clone().unwrap_or_default(),
        "Domainname": f.domainname.clone().unwrap_or_default(),
        "User": f.user.clone().unwrap_or_default(),
        "AttachStdin": attach.stdin,
        "AttachStdout": attach.stdout,
        "AttachStderr": attach.stderr,
        "Tty": f.tty,
        "OpenStdin": f.interactive,
        "StdinOnce": f.interactive && attach.stdin,
        "Env": env,
        "Cmd": if command.is_empty() { Value::Null } else { json!(command) },
        "Image": image,
        "WorkingDir": f.workdir.clone().unwrap_or_default(),
        "Entrypoint": entrypoint,
        "Labels": parse::key_values("--label", &f.label)?,
    });
    let c = config.as_object_mut().expect("object");
    if !exposed.is_empty() {
        c.insert("ExposedPorts".into(), Value::Object(exposed));
    }
    if !volumes.is_empty() {
        c.insert("Volumes".into(), Value::Object(volumes));
    }
    if let Some(s) = &f.stop_signal {
        c.insert("StopSignal".into(), json!(s));
    }
    if let Some(t) = &f.stop_timeout {
        let t: i64 = t.parse().map_err(|_| {
            format!("invalid argument {t:?} for \"--stop-timeout\" flag: not an integer")
        })?;
        c.insert("StopTimeout".into(), json!(t));
    }
    if let Some(h) = healthcheck(f)? {
        c.insert("Healthcheck".into(), h);
    }
    let host = host_config(f, binds, bindings)?;
    c.insert("HostConfig".into(), host);
    let mut eps = Map::new();
    if !f.network_alias.is_empty() || f.ip.is_some() || f.mac_address.is_some() {
        let net = f.network.clone().unwrap_or_else(|| "default".into());
        if matches!(net.as_str(), "default" | "bridge") && !f.network_alias.is_empty() {
            return Err(
                "network-scoped aliases are only supported for user-defined networks".into(),
            );
        }
        let mut ep = json!({"Aliases": f.network_alias});
        if let Some(ip) = &f.ip {
            ep["IPAMConfig"] = json!({"IPv4Address": ip});
        }
        // As the docker CLI does for API v1.44: on the endpoint, not Config.MacAddress.
        if let Some(mac) = &f.mac_address {
            ep["MacAddress"] = json!(mac);
        }
        eps.insert(net, ep);
    }
    c.insert("NetworkingConfig".into(), json!({"EndpointsConfig": eps}));
    Ok(config)
}

/// `--mount type=bind|volume|tmpfs,source=…,target=…,readonly,…` as the API's `Mount`.
fn mount_spec(spec: &str) -> Result<Value, String> {
    let mut m = json!({"Type": "volume"});
    let mut bind = Map::new();
    let mut vol = Map::new();
    let mut tmpfs = Map::new();
    for field in spec.split(',').filter(|s| !s.is_empty()) {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim(), v.trim()),
            None => (field.trim(), ""),
        };
        let truthy = |v: &str| v.is_empty() || matches!(v, "1" | "true" | "True");
        match k {
            "type" => m["Type"] = json!(v),
            "source" | "src" => m["Source"] = json!(v),
            "target" | "destination" | "dst" => m["Target"] = json!(v),
            "readonly" | "ro" => m["ReadOnly"] = json!(truthy(v)),
            "bind-propagation" => {
                bind.insert("Propagation".into(), json!(v));
            }
            "volume-nocopy" => {
                vol.insert("NoCopy".into(), json!(truthy(v)));
            }
            "volume-label" => {
                let (lk, lv) = v.split_once('=').unwrap_or((v, ""));
                vol.entry("Labels")
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
                    .map(|o| o.insert(lk.into(), json!(lv)));
            }
            "volume-opt" => {
                let (ok, ov) = v.split_once('=').unwrap_or((v, ""));
                vol.entry("DriverConfig")
                    .or_insert_with(|| json!({"Name": "local", "Options": {}}))["Options"]
                    .as_object_mut()
                    .map(|o| o.insert(ok.into(), json!(ov)));
            }
            "tmpfs-size" => {
                let n = parse::ram_in_bytes(v)
                    .map_err(|_| format!("invalid value for tmpfs-size: {v:?}"))?;
                tmpfs.insert("SizeBytes".into(), json!(n));
            }
            "tmpfs-mode" => {
                let n = u32::from_str_radix(v, 8)
                    .map_err(|_| format!("invalid value for tmpfs-mode: {v:?}"))?;
                tmpfs.insert("Mode".into(), json!(n));
            }
            "consistency" => {}
            other => return Err(format!("invalid field '{other}' must be a key=value pair")),
        }
    }
    if m.get("Target").is_none() {
        return Err("invalid argument for --mount: target is required".into());
    }
    if !bind.is_empty() {
        m["BindOptions"] = Value::Object(bind);
    }
    if !vol.is_empty() {
        m["VolumeOptions"] = Value::Object(vol);
    }
    if !tmpfs.is_empty() {
        m["TmpfsOptions"] = Value::Object(tmpfs);
    }
    Ok(m)
}

fn healthcheck(f: &ContainerFlags) -> Result<Option<Value>, String> {
    let tuned = f.health_interval.is_some()
        || f.health_timeout.is_some()
        || f.health_start_period.is_some()
        || f.health_retries.is_some();
    if f.no_healthcheck {
        if f.health_cmd.is_some() || tuned {
            return Err("--no-healthcheck conflicts with --health-* options".into());
        }
        return Ok(Some(json!({"Test": ["NONE"]})));
    }
    if f.health_cmd.is_none() && !tuned {
        return Ok(None);
    }
    let dur = |flag: &str, v: &Option<String>| -> Result<i64, String> {
        match v {
            None => Ok(0),
            Some(s) => {
                let ns = parse::go_duration(s)
                    .map_err(|e| format!("invalid argument {s:?} for \"{flag}\" flag: {e}"))?;
                if ns < 0 {
                    return Err(format!("{flag} cannot be negative"));
                }
                Ok(ns)
            }
        }
    };
    let retries = match &f.health_retries {
        None => 0,
        Some(r) => r
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| format!("invalid argument {r:?} for \"--health-retries\" flag"))?,
    };
    let test = f
        .health_cmd
        .as_ref()
        .map_or(Value::Null, |c| json!(["CMD-SHELL", c]));
    Ok(Some(json!({
        "Test": test,
        "Interval": dur("--health-interval", &f.health_interval)?,
        "Timeout": dur("--health-timeout", &f.health_timeout)?,
        "StartPeriod": dur("--health-start-period", &f.health_start_period)?,
        "Retries": retries,
    })))
}

fn host_config(
    f: &ContainerFlags,
    binds: Vec<String>,
    bindings: BTreeMap<String, Vec<Value>>,
) -> Result<Value, String> {
    let mut h = Map::new();
    let mut set = |k: &str, v: Value| {
        h.insert(k.to_string(), v);
    };
    set("Binds", json!(binds));
    set(
        "NetworkMode",
        json!(f.network.as_deref().unwrap_or("default")),
    );
    set("PortBindings", json!(bindings));
    set("PublishAllPorts", json!(f.publish_all));
    set("VolumesFrom", json!(f.volumes_from));
    let mounts = f
        .mount
        .iter()
        .map(|m| mount_spec(m))
        .collect::<Result<Vec<_>, _>>()?;
    if !mounts.is_empty() {
        set("Mounts", json!(mounts));
    }
    let (name, count) = parse::restart_policy(f.restart.as_deref().unwrap_or("no"))?;
    if f.rm && name != "no" {
        return Err("conflicting options: cannot specify both --restart and --rm".into());
    }
    set(
        "RestartPolicy",
        json!({"Name": name, "MaximumRetryCount": count}),
    );
    set("AutoRemove", json!(f.rm));
    set("CapAdd", json!(f.cap_add));
    set("CapDrop", json!(f.cap_drop));
    set("Dns", json!(f.dns));
    set("DnsOptions", json!(f.dns_option));
    set("DnsSearch", json!(f.dns_search));
    set("ExtraHosts", json!(extra_hosts(&f.add_host)?));
    set("Privileged", json!(f.privileged));
    set("ReadonlyRootfs", json!(f.read_only));
    set("SecurityOpt", json!(security_opts(&f.security_opt)?));
    if f.init {
        set("Init", json!(true));
    }
    if let Some(o) = &f.oom_score_adj {
        let n: i64 = o
            .parse()
            .ok()
            .filter(|n: &i64| (-1000..=1000).contains(n))
            .ok_or_else(|| {
                format!("invalid value for --oom-score-adj: {o:?}: must be between -1000 and 1000")
            })?;
        set("OomScoreAdj", json!(n));
    }
    if !f.sysctl.is_empty() {
        set("Sysctls", json!(parse::key_values("--sysctl", &f.sysctl)?));
    }
    let mut tmpfs = Map::new();
    for t in &f.tmpfs {
        let (path, opts) = t.split_once(':').unwrap_or((t.as_str(), ""));
        if !path.starts_with('/') {
            return Err(format!("invalid tmpfs {t:?}: the path must be absolute"));
        }
        tmpfs.insert(path.to_string(), json!(opts));
    }
    if !tmpfs.is_empty() {
        set("Tmpfs", Value::Object(tmpfs));
    }
    set(
        "LogConfig",
        json!({"Type": f.log_driver.clone().unwrap_or_default(),
               "Config": parse::key_values("--log-opt", &f.log_opt)?}),
    );
    if let Some(r) = &f.runtime {
        set("Runtime", json!(r));
    }
    for (k, v) in resources(f)? {
        set(&k, v);
    }
    Ok(Value::Object(h))
}

/// Resource fields shared with `update` (HostConfig.Resources, flattened as Docker sends them).
pub fn resources(f: &ContainerFlags) -> Result<Map<String, Value>, String> {
    let mut r = Map::new();
    if let Some(m) = &f.memory {
        r.insert("Memory".into(), json!(parse::memory("-m, --memory", m)?));
    }
    if let Some(m) = &f.memory_swap {
        r.insert(
            "MemorySwap".into(),
            json!(parse::memory("--memory-swap", m)?),
        );
    }
    if let Some(m) = &f.memory_reservation {
        r.insert(
            "MemoryReservation".into(),
            json!(parse::memory("--memory-reservation", m)?),
        );
    }
    if let Some(c) = &f.cpus {
        let n: f64 = c.parse().ok().filter(|n: &f64| *n >= 0.0).ok_or_else(|| {
            format!("invalid argument {c:?} for \"--cpus\" flag: failed to parse {c} as a rational number")
        })?;
        r.insert("NanoCpus".into(), json!((n * 1e9).round() as i64));
    }
    if let Some(s) = &f.cpu_shares {
        let n: i64 = s.parse().map_err(|_| {
            format!("invalid argument {s:?} for \"-c, --cpu-shares\" flag: not an integer")
        })?;
        r.insert("CpuShares".into(), json!(n));
    }
    if let Some(s) = &f.cpuset_cpus {
        r.insert("CpusetCpus".into(), json!(s));
    }
    if let Some(s) = &f.cpuset_mems {
        r.insert("CpusetMems".into(), json!(s));
    }
    if let Some(p) = &f.pids_limit {
        let n: i64 = p.parse().map_err(|_| {
            format!("invalid argument {p:?} for \"--pids-limit\" flag: not an integer")
        })?;
        r.insert("PidsLimit".into(), json!(n));
    }
    if !f.ulimit.is_empty() {
        let mut v = Vec::new();
        for u in &f.ulimit {
            let (name, soft, hard) = parse::ulimit(u)?;
            v.push(json!({"Name": name, "Soft": soft, "Hard": hard}));
        }
        r.insert("Ulimits".into(), json!(v));
    }
    Ok(r)
}

/// `--add-host host:ip` (or `host=ip`), checked.
fn extra_hosts(items: &[String]) -> Result<Vec<String>, String> {
    items
        .iter()
        .map(|h| {
            let (name, ip) = h
                .split_once('=')
                .or_else(|| h.split_once(':'))
                .ok_or_else(|| format!("bad format for add-host: {h:?}"))?;
            let ip = ip.trim_start_matches('[').trim_end_matches(']');
            if name.is_empty() || (ip != "host-gateway" && ip.parse::<std::net::IpAddr>().is_err())
            {
                return Err(format!("invalid IP address in add-host: {ip:?}"));
            }
            Ok(format!("{name}:{ip}"))
        })
        .collect()
}

/// `--security-opt`: `seccomp=FILE` is sent as the profile's contents, as docker does.
fn security_opts(items: &[String]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for o in items {
        let (k, v) = o.split_once(['=', ':']).unwrap_or((o.as_str(), ""));
        if k == "seccomp" && v != "unconfined" && !v.is_empty() {
            let profile = std::fs::read_to_string(v)
                .map_err(|e| format!("opening seccomp profile ({v}) failed: {e}"))?;
            let compact: Value = serde_json::from_str(&profile)
                .map_err(|e| format!("seccomp profile ({v}): invalid JSON: {e}"))?;
            out.push(format!("seccomp={compact}"));
        } else {
            out.push(o.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ATTACHED: Attach = Attach {
        stdin: true,
        stdout: true,
        stderr: true,
    };

    #[test]
    fn builds_docker_shaped_body() {
        let f = ContainerFlags {
            interactive: true,
            tty: true,
            env: vec!["A=1".into()],
            memory: Some("64m".into()),
            cpus: Some("1.5".into()),
            publish: vec!["127.0.0.1:8080:80".into()],
            volume: vec!["/h:/c:ro".into(), "/anon".into()],
            restart: Some("on-failure:2".into()),
            entrypoint: Some(String::new()),
            network: Some("none".into()),
            health_cmd: Some("true".into()),
            health_interval: Some("5s".into()),
            ulimit: vec!["nofile=10:20".into()],
            ..Default::default()
        };
        let b = build(&f, "busybox", &["sh".into()], ATTACHED).unwrap();
        assert_eq!(b["Image"], "busybox");
        assert_eq!(b["Cmd"], json!(["sh"]));
        assert_eq!(b["Entrypoint"], json!([""]));
        assert_eq!(b["StdinOnce"], true);
        assert_eq!(b["Env"], json!(["A=1"]));
        assert_eq!(b["ExposedPorts"], json!({"80/tcp": {}}));
        assert_eq!(b["Volumes"], json!({"/anon": {}}));
        assert_eq!(b["Healthcheck"]["Interval"], 5_000_000_000i64);
        let h = &b["HostConfig"];
        assert_eq!(h["Memory"], 64 << 20);
        assert_eq!(h["NanoCpus"], 1_500_000_000i64);
        assert_eq!(h["Binds"], json!(["/h:/c:ro"]));
        assert_eq!(h["NetworkMode"], "none");
        assert_eq!(
            h["PortBindings"]["80/tcp"],
            json!([{"HostIp": "127.0.0.1", "HostPort": "8080"}])
        );
        assert_eq!(h["RestartPolicy"]["MaximumRetryCount"], 2);
        assert_eq!(h["Ulimits"][0]["Hard"], 20);
    }

    #[test]
    fn bad_values_name_the_flag() {
        let f = ContainerFlags {
            memory: Some("lots".into()),
            ..Default::default()
        };
        let e = build(&f, "i", &[], ATTACHED).unwrap_err();
        assert!(e.contains("--memory") && e.contains("lots"), "{e}");
        let f = ContainerFlags {
            rm: true,
            restart: Some("always".into()),
            ..Default::default()
        };
        assert!(build(&f, "i", &[], ATTACHED).unwrap_err().contains("--rm"));
        let f = ContainerFlags {
            add_host: vec!["db:not-an-ip".into()],
            ..Default::default()
        };
        assert!(build(&f, "i", &[], ATTACHED).is_err());
    }
}
