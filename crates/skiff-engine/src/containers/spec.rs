//! Docker's defaults for a container, as an OCI runtime spec.
//!
//! What moby's `oci.DefaultSpec()` + `createSpec` produce for `docker run` with default
//! options: the 14 default capabilities, the default seccomp profile (compiled once per
//! capability set by the runtime's cache), Docker's mounts, masked and read-only paths, and
//! the image config merged with the run options (ENTRYPOINT/CMD rules, Env, WorkingDir, User).

use std::path::Path;

use oci_spec::image::Config as ImageConfig;
use serde_json::{json, Value};

/// Docker's default capability set.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

const MASKED: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

const READONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What `docker run` lets a user change that the spec needs.
#[derive(Debug, Clone, Default)]
pub struct SpecOptions {
    /// The whole command line, already merged (the engine's containers); when set, `cmd`
    /// and `entrypoint` are not looked at.
    pub args: Option<Vec<String>>,
    /// CMD override (the words after the image name).
    pub cmd: Vec<String>,
    /// `--entrypoint` ("" clears the image's).
    pub entrypoint: Option<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub tty: bool,
    pub hostname: String,
    /// The container's ID (names its cgroup).
    pub container_id: String,
    pub read_only: bool,
    pub privileged: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// `--security-opt seccomp=unconfined`.
    pub seccomp_unconfined: bool,
    pub no_new_privileges: bool,
    /// `--network none|host`: host shares the host's network namespace.
    pub host_network: bool,
    pub memory: Option<i64>,
    pub pids_limit: Option<i64>,
    pub cpu_shares: Option<u64>,
    pub cgroup_parent: String,
}

/// An error in the run options.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("no command specified")]
    NoCommand,
    #[error("{0}")]
    User(String),
    #[error("invalid capability {0:?}")]
    Capability(String),
    #[error("seccomp: {0}")]
    Seccomp(#[from] skiff_seccomp::SeccompError),
}

fn cap_name(c: &str) -> String {
    let up = c.to_ascii_uppercase();
    if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    }
}

/// The capability set after --cap-add / --cap-drop ("ALL" in either), as Docker computes it.
pub fn capabilities(opts: &SpecOptions) -> Result<Vec<String>, SpecError> {
    let all: Vec<String> = caps_all();
    if opts.privileged {
        return Ok(grantable(all));
    }
    let mut set: Vec<String> = DEFAULT_CAPS.iter().map(|s| s.to_string()).collect();
    let drops: Vec<String> = opts.cap_drop.iter().map(|c| cap_name(c)).collect();
    let adds: Vec<String> = opts.cap_add.iter().map(|c| cap_name(c)).collect();
    for c in drops.iter().chain(adds.iter()) {
        if c != "CAP_ALL" && !all.contains(c) {
            return Err(SpecError::Capability(c.clone()));
        }
    }
    if drops.iter().any(|c| c == "CAP_ALL") {
        set.clear();
    } else {
        set.retain(|c| !drops.contains(c));
    }
    if adds.iter().any(|c| c == "CAP_ALL") {
        return Ok(grantable(all));
    }
    for c in adds {
        if !set.contains(&c) {
            set.push(c);
        }
    }
    Ok(set)
}

/// `all` (the kernel's capabilities, in number order) less those missing from this
/// process's bounding set: a daemon run in a restricted environment cannot hand them out,
/// and asking for them would fail every privileged start (`capset: Operation not
/// permitted`), as it does for runc.
fn grantable(all: Vec<String>) -> Vec<String> {
    let bounding = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        });
    match bounding {
        Some(b) => all
            .into_iter()
            .enumerate()
            .filter(|(i, _)| *i < 64 && b & (1u64 << i) != 0)
            .map(|(_, c)| c)
            .collect(),
        None => all,
    }
}

/// Points a built spec's network namespace at `path` (a namespace file made and configured
/// before the process exists: a container's or a build step's networks).
pub fn join_netns(spec: &mut Value, path: &std::path::Path) {
    for ns in spec["linux"]["namespaces"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        if ns["type"] == "network" {
            ns["path"] = json!(path);
        }
    }
}

fn caps_all() -> Vec<String> {
    // The kernel's capabilities (0..=CAP_LAST_CAP), by name.
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40);
    const NAMES: [&str; 41] = [
        "CHOWN",
        "DAC_OVERRIDE",
        "DAC_READ_SEARCH",
        "FOWNER",
        "FSETID",
        "KILL",
        "SETGID",
        "SETUID",
        "SETPCAP",
        "LINUX_IMMUTABLE",
        "NET_BIND_SERVICE",
        "NET_BROADCAST",
        "NET_ADMIN",
        "NET_RAW",
        "IPC_LOCK",
        "IPC_OWNER",
        "SYS_MODULE",
        "SYS_RAWIO",
        "SYS_CHROOT",
        "SYS_PTRACE",
        "SYS_PACCT",
        "SYS_ADMIN",
        "SYS_BOOT",
        "SYS_NICE",
        "SYS_RESOURCE",
        "SYS_TIME",
        "SYS_TTY_CONFIG",
        "MKNOD",
        "LEASE",
        "AUDIT_WRITE",
        "AUDIT_CONTROL",
        "SETFCAP",
        "MAC_OVERRIDE",
        "MAC_ADMIN",
        "SYSLOG",
        "WAKE_ALARM",
        "BLOCK_SUSPEND",
        "AUDIT_READ",
        "PERFMON",
        "BPF",
        "CHECKPOINT_RESTORE",
    ];
    NAMES
        .iter()
        .take(last as usize + 1)
        .map(|n| format!("CAP_{n}"))
        .collect()
}

/// ENTRYPOINT/CMD rules: `--entrypoint` replaces the image's and drops its CMD; run-time
/// arguments replace CMD.
pub fn process_args(
    img: Option<&ImageConfig>,
    opts: &SpecOptions,
) -> Result<Vec<String>, SpecError> {
    if let Some(a) = &opts.args {
        if a.is_empty() {
            return Err(SpecError::NoCommand);
        }
        return Ok(a.clone());
    }
    let img_ep: Vec<String> = img.and_then(|c| c.entrypoint().clone()).unwrap_or_default();
    let img_cmd: Vec<String> = img.and_then(|c| c.cmd().clone()).unwrap_or_default();
    let (ep, cmd) = match &opts.entrypoint {
        Some(e) if e.is_empty() => (Vec::new(), opts.cmd.clone()),
        Some(e) => (vec![e.clone()], opts.cmd.clone()),
        None if !opts.cmd.is_empty() => (img_ep, opts.cmd.clone()),
        None => (img_ep, img_cmd),
    };
    let args: Vec<String> = ep.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(SpecError::NoCommand);
    }
    Ok(args)
}

/// Image env, then the run's (a run value replaces the image's for the same key); PATH
/// defaulted; HOSTNAME and TERM as Docker sets them.
pub fn environment(img: Option<&ImageConfig>, opts: &SpecOptions) -> Vec<String> {
    let mut env: Vec<String> = vec![format!("HOSTNAME={}", opts.hostname)];
    if opts.tty {
        env.push("TERM=xterm".into());
    }
    let mut merged: Vec<String> = img.and_then(|c| c.env().clone()).unwrap_or_default();
    for e in &opts.env {
        let key = e.split('=').next().unwrap_or("");
        merged.retain(|x| x.split('=').next() != Some(key));
        merged.push(e.clone());
    }
    if !merged.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.to_string());
    }
    env.extend(merged);
    env
}

/// The full config.json for a container whose rootfs is at `rootfs` (already mounted).
pub fn build(
    rootfs: &Path,
    img: Option<&ImageConfig>,
    opts: &SpecOptions,
    extra_mounts: Vec<Value>,
) -> Result<Value, SpecError> {
    let args = process_args(img, opts)?;
    let user_spec = opts
        .user
        .clone()
        .or_else(|| img.and_then(|c| c.user().clone()))
        .unwrap_or_default();
    let id = super::user::resolve(rootfs, &user_spec).map_err(SpecError::User)?;
    let mut env = environment(img, opts);
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", id.home));
    }
    let cwd = opts
        .workdir
        .clone()
        .filter(|w| !w.is_empty())
        .or_else(|| {
            img.and_then(|c| c.working_dir().clone())
                .filter(|w| !w.is_empty())
        })
        .unwrap_or_else(|| "/".into());
    let caps = capabilities(opts)?;
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
        json!({"type": "cgroup"}),
    ];
    if !opts.host_network {
        namespaces.push(json!({"type": "network"}));
    }
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro", "nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]}),
    ];
    mounts.extend(extra_mounts);
    let mut resources = json!({"devices": [{"allow": false, "access": "rwm"}]});
    if opts.privileged {
        resources = json!({"devices": [{"allow": true, "access": "rwm"}]});
    }
    if let Some(m) = opts.memory {
        resources["memory"] = json!({"limit": m});
    }
    if let Some(p) = opts.pids_limit {
        resources["pids"] = json!({"limit": p});
    }
    if let Some(s) = opts.cpu_shares {
        resources["cpu"] = json!({"shares": s});
    }
    let mut linux = json!({
        "resources": resources,
        "namespaces": namespaces,
        "cgroupsPath": format!("{}/{}", if opts.cgroup_parent.is_empty() { "/skiff" } else { opts.cgroup_parent.as_str() }, opts.container_id),
        "maskedPaths": if opts.privileged { json!([]) } else { json!(MASKED) },
        "readonlyPaths": if opts.privileged { json!([]) } else { json!(READONLY) },
    });
    if !opts.privileged && !opts.seccomp_unconfined {
        let profile = skiff_seccomp::docker_default_profile(&caps)?;
        linux["seccomp"] = serde_json::to_value(profile).expect("seccomp profile serializes");
    }
    Ok(json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": opts.tty,
            "user": {"uid": id.uid, "gid": id.gid, "additionalGids": id.additional_gids},
            "args": args,
            "env": env,
            "cwd": cwd,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": opts.no_new_privileges,
            "oomScoreAdj": 0,
        },
        "root": {"path": rootfs, "readonly": opts.read_only},
        "hostname": opts.hostname,
        "mounts": mounts,
        "linux": linux,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(ep: &[&str], cmd: &[&str]) -> ImageConfig {
        serde_json::from_value(json!({"Entrypoint": ep, "Cmd": cmd, "Env": ["PATH=/bin", "A=1"]}))
            .unwrap()
    }

    #[test]
    fn entrypoint_cmd_rules() {
        let c = img(&["/ep"], &["a", "b"]);
        let o = SpecOptions::default();
        assert_eq!(process_args(Some(&c), &o).unwrap(), ["/ep", "a", "b"]);
        let o = SpecOptions {
            cmd: vec!["x".into()],
            ..Default::default()
        };
        assert_eq!(process_args(Some(&c), &o).unwrap(), ["/ep", "x"]);
        let o = SpecOptions {
            entrypoint: Some("sh".into()),
            ..Default::default()
        };
        assert_eq!(process_args(Some(&c), &o).unwrap(), ["sh"]);
        let o = SpecOptions {
            entrypoint: Some(String::new()),
            cmd: vec!["ls".into()],
            ..Default::default()
        };
        assert_eq!(process_args(Some(&c), &o).unwrap(), ["ls"]);
        assert!(matches!(
            process_args(None, &SpecOptions::default()),
            Err(SpecError::NoCommand)
        ));
    }

    #[test]
    fn env_merge() {
        let c = img(&[], &["sh"]);
        let o = SpecOptions {
            env: vec!["A=2".into(), "B=3".into()],
            hostname: "h".into(),
            ..Default::default()
        };
        let e = environment(Some(&c), &o);
        assert_eq!(e, ["HOSTNAME=h", "PATH=/bin", "A=2", "B=3"]);
    }

    #[test]
    fn caps_add_drop() {
        let o = SpecOptions {
            cap_drop: vec!["chown".into()],
            cap_add: vec!["SYS_ADMIN".into()],
            ..Default::default()
        };
        let c = capabilities(&o).unwrap();
        assert!(!c.contains(&"CAP_CHOWN".to_string()));
        assert!(c.contains(&"CAP_SYS_ADMIN".to_string()));
        assert_eq!(capabilities(&SpecOptions::default()).unwrap().len(), 14);
        let o = SpecOptions {
            cap_drop: vec!["ALL".into()],
            cap_add: vec!["KILL".into()],
            ..Default::default()
        };
        assert_eq!(capabilities(&o).unwrap(), ["CAP_KILL"]);
        assert!(capabilities(&SpecOptions {
            cap_add: vec!["NOPE".into()],
            ..Default::default()
        })
        .is_err());
    }
}
