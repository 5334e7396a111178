//! A container record (Config + HostConfig, image already merged in) as an OCI runtime spec:
//! Docker's defaults from [`super::spec::build`], then every HostConfig option applied.

use std::path::Path;

use serde_json::{json, Value};

use super::model::Container;
use super::service::ContainersError;
use super::spec::{self, SpecOptions};

/// Where `--init`'s binary is mounted in the container (Docker's path).
pub const INIT_IN_CONTAINER: &str = "/sbin/docker-init";

/// The host's init for `--init`: `$SKIFF_INIT`, else Docker's docker-init, else tini-static.
pub fn init_binary() -> Option<std::path::PathBuf> {
    if let Some(p) = std::env::var_os("SKIFF_INIT") {
        return Some(p.into());
    }
    [
        "/usr/libexec/docker/docker-init",
        "/usr/sbin/docker-init",
        "/usr/bin/docker-init",
        "/usr/bin/tini-static",
    ]
    .iter()
    .map(std::path::PathBuf::from)
    .find(|p| p.exists())
}

/// Docker's `--ulimit` names → OCI rlimit types.
pub fn rlimit_name(n: &str) -> Option<&'static str> {
    Some(match n {
        "core" => "RLIMIT_CORE",
        "cpu" => "RLIMIT_CPU",
        "data" => "RLIMIT_DATA",
        "fsize" => "RLIMIT_FSIZE",
        "locks" => "RLIMIT_LOCKS",
        "memlock" => "RLIMIT_MEMLOCK",
        "msgqueue" => "RLIMIT_MSGQUEUE",
        "nice" => "RLIMIT_NICE",
        "nofile" => "RLIMIT_NOFILE",
        "nproc" => "RLIMIT_NPROC",
        "rss" => "RLIMIT_RSS",
        "rtprio" => "RLIMIT_RTPRIO",
        "rttime" => "RLIMIT_RTTIME",
        "sigpending" => "RLIMIT_SIGPENDING",
        "stack" => "RLIMIT_STACK",
        "as" => "RLIMIT_AS",
        _ => return None,
    })
}

fn bad(m: String) -> ContainersError {
    ContainersError::Invalid(m)
}

/// Security options: (seccomp unconfined, custom profile JSON, no-new-privileges).
fn security(opts: &[String]) -> Result<(bool, Option<Value>, bool), ContainersError> {
    let (mut unconfined, mut profile, mut nnp) = (false, None, false);
    for o in opts {
        let (k, v) = o
            .split_once('=')
            .or_else(|| o.split_once(':'))
            .unwrap_or((o.as_str(), ""));
        match k {
            "seccomp" if v == "unconfined" => unconfined = true,
            "seccomp" => {
                let p: Value = serde_json::from_str(v)
                    .map_err(|e| bad(format!("decoding seccomp profile failed: {e}")))?;
                profile = Some(p);
            }
            "no-new-privileges" => nnp = v.is_empty() || v == "true",
            "apparmor" | "label" => {
                tracing::debug!(option = %o, "security option without an effect on this host")
            }
            _ => return Err(bad(format!("invalid --security-opt: {o:?}"))),
        }
    }
    Ok((unconfined, profile, nnp))
}

/// The config.json for `c` with its rootfs mounted at `rootfs` and its files in `dir`.
pub fn build(c: &Container, dir: &Path, rootfs: &Path) -> Result<Value, ContainersError> {
    let h = &c.host_config;
    let (unconfined, profile, nnp) = security(h.security_opt.as_deref().unwrap_or_default())?;
    let mut args: Vec<String> = std::iter::once(c.path.clone())
        .chain(c.args.iter().cloned())
        .collect();
    let init = h.init.unwrap_or(false);
    if init {
        args.splice(0..0, [INIT_IN_CONTAINER.to_string(), "--".to_string()]);
    }
    let opts = SpecOptions {
        args: Some(args),
        env: c.config.env.clone().unwrap_or_default(),
        workdir: Some(c.config.working_dir.clone()).filter(|w| !w.is_empty()),
        user: Some(c.config.user.clone()),
        tty: c.config.tty,
        hostname: c.config.hostname.clone(),
        container_id: c.id.clone(),
        read_only: h.readonly_rootfs,
        privileged: h.privileged,
        cap_add: h.cap_add.clone().unwrap_or_default(),
        cap_drop: h.cap_drop.clone().unwrap_or_default(),
        seccomp_unconfined: unconfined || profile.is_some(),
        no_new_privileges: nnp,
        host_network: h.network_mode == "host",
        memory: (h.memory > 0).then_some(h.memory),
        pids_limit: h.pids_limit.filter(|p| *p > 0),
        cpu_shares: (h.cpu_shares > 0).then_some(h.cpu_shares as u64),
        cgroup_parent: h.cgroup_parent.clone(),
        ..Default::default()
    };
    let bind = |name: &str, dest: &str| json!({"destination": dest, "type": "bind", "source": dir.join(name), "options": ["rbind", "rprivate"]});
    let mut extra = vec![
        bind("resolv.conf", "/etc/resolv.conf"),
        bind("hostname", "/etc/hostname"),
        bind("hosts", "/etc/hosts"),
    ];
    if init {
        let bin = init_binary().ok_or_else(|| {
            bad("--init: no init binary on this host (install tini, or set SKIFF_INIT)".into())
        })?;
        extra.push(json!({"destination": INIT_IN_CONTAINER, "type": "bind", "source": bin, "options": ["bind", "ro"]}));
    }
    extra.extend(super::mounts::oci_mounts(&c.mount_points, h)?);
    let mut s = spec::build(rootfs, None, &opts, extra).map_err(|e| match e {
        spec::SpecError::NoCommand => bad("no command specified".into()),
        other => bad(other.to_string()),
    })?;
    apply_host_config(c, &mut s, profile)?;
    if let Some(p) = super::mounts::root_propagation(&c.mount_points)? {
        s["linux"]["rootfsPropagation"] = json!(p);
    }
    Ok(s)
}

fn apply_host_config(
    c: &Container,
    s: &mut Value,
    profile: Option<Value>,
) -> Result<(), ContainersError> {
    let h = &c.host_config;
    let linux = &mut s["linux"];
    if let Some(p) = profile {
        linux["seccomp"] = p;
    }
    let r = &mut linux["resources"];
    if h.memory_reservation > 0 {
        r["memory"]["reservation"] = json!(h.memory_reservation);
    }
    if h.memory > 0 {
        // Docker: swap defaults to twice the memory; -1 is unlimited.
        let swap = match h.memory_swap {
            0 => h.memory * 2,
            v => v,
        };
        r["memory"]["swap"] = json!(swap);
    }
    if let Some(sw) = h.memory_swappiness.filter(|s| *s >= 0) {
        r["memory"]["swappiness"] = json!(sw);
    }
    if h.oom_kill_disable == Some(true) {
        r["memory"]["disableOOMKiller"] = json!(true);
    }
    if h.nano_cpus > 0 {
        r["cpu"]["period"] = json!(100_000);
        r["cpu"]["quota"] = json!(h.nano_cpus / 10_000);
    }
    if h.cpu_period > 0 {
        r["cpu"]["period"] = json!(h.cpu_period);
    }
    if h.cpu_quota > 0 {
        r["cpu"]["quota"] = json!(h.cpu_quota);
    }
    if !h.cpuset_cpus.is_empty() {
        r["cpu"]["cpus"] = json!(h.cpuset_cpus);
    }
    if !h.cpuset_mems.is_empty() {
        r["cpu"]["mems"] = json!(h.cpuset_mems);
    }
    if h.blkio_weight > 0 {
        r["blockIO"]["weight"] = json!(h.blkio_weight);
    }
    if let Some(sys) = &h.sysctls {
        linux["sysctl"] = json!(sys);
    }
    if let Some(m) = &h.masked_paths {
        linux["maskedPaths"] = json!(m);
    }
    if let Some(m) = &h.readonly_paths {
        linux["readonlyPaths"] = json!(m);
    }
    if let Some(ns) = linux["namespaces"].as_array_mut() {
        let host = |mode: &str| mode == "host";
        ns.retain(|n| match n["type"].as_str() {
            Some("pid") => !host(&h.pid_mode),
            Some("ipc") => !host(&h.ipc_mode),
            Some("uts") => !host(&h.uts_mode),
            Some("cgroup") => h.cgroupns_mode != "host",
            _ => true,
        });
    }
    let p = &mut s["process"];
    p["oomScoreAdj"] = json!(h.oom_score_adj);
    if let Some([height, width]) = h
        .console_size
        .filter(|s| c.config.tty && s[0] > 0 && s[1] > 0)
    {
        p["consoleSize"] = json!({"height": height, "width": width});
    }
    let mut rl = Vec::new();
    for u in h.ulimits.iter().flatten() {
        let t =
            rlimit_name(&u.name).ok_or_else(|| bad(format!("invalid ulimit type: {}", u.name)))?;
        rl.push(json!({"type": t, "soft": u.soft as u64, "hard": u.hard as u64}));
    }
    if !rl.is_empty() {
        p["rlimits"] = json!(rl);
    }
    if let Some(groups) = &h.group_add {
        let mut gids: Vec<Value> = p["user"]["additionalGids"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for g in groups {
            let gid = g.parse::<u32>().map_err(|_| {
                bad(format!(
                    "--group-add {g:?}: only numeric group IDs are supported"
                ))
            })?;
            gids.push(json!(gid));
        }
        p["user"]["additionalGids"] = json!(gids);
    }
    if let Some(mounts) = s["mounts"].as_array_mut() {
        for m in mounts.iter_mut() {
            if m["destination"] == "/dev/shm" && h.shm_size > 0 {
                m["options"] = json!([
                    "nosuid",
                    "noexec",
                    "nodev",
                    "mode=1777",
                    format!("size={}", h.shm_size)
                ]);
            }
            if h.privileged && m["destination"] == "/sys" {
                m["options"] = json!(["nosuid", "noexec", "nodev", "rw"]);
            }
        }
    }
    Ok(())
}
