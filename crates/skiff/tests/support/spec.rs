//! A typed editor over `config.json` as a `serde_json::Value`: start from
//! runc's default spec (`runc spec`, terminal false) and mutate it.

use std::path::Path;

use serde_json::{json, Map, Value};

/// An OCI runtime spec under edit.
#[derive(Clone, Debug)]
pub struct Spec(pub Value);

/// runc 1.1's `runc spec` output with `terminal: false`
/// (the same document scripts/make-busybox-bundle.sh writes).
pub fn runc_default() -> Value {
    json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "ambient": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "runc",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

/// The object at `path` (a list of keys), created as `{}` where missing.
fn obj<'a>(v: &'a mut Value, path: &[&str]) -> &'a mut Map<String, Value> {
    let mut cur = v;
    for k in path {
        let m = cur.as_object_mut().expect("spec: not an object");
        cur = m.entry(k.to_string()).or_insert_with(|| json!({}));
    }
    if !cur.is_object() {
        *cur = json!({});
    }
    cur.as_object_mut().unwrap()
}

/// The array at `path`, created as `[]` where missing.
fn arr<'a>(v: &'a mut Value, path: &[&str]) -> &'a mut Vec<Value> {
    let (last, parent) = path.split_last().expect("empty path");
    let m = obj(v, parent);
    let e = m.entry(last.to_string()).or_insert_with(|| json!([]));
    if !e.is_array() {
        *e = json!([]);
    }
    e.as_array_mut().unwrap()
}

fn strs(items: &[&str]) -> Value {
    Value::Array(items.iter().map(|s| json!(s)).collect())
}

impl Spec {
    pub fn default_runc() -> Spec {
        Spec(runc_default())
    }

    pub fn write(&self, path: &Path) {
        std::fs::write(path, serde_json::to_vec_pretty(&self.0).unwrap())
            .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// Sets any JSON pointer-like path (list of keys) to a value.
    pub fn set(&mut self, path: &[&str], value: Value) -> &mut Self {
        let (last, parent) = path.split_last().expect("empty path");
        obj(&mut self.0, parent).insert(last.to_string(), value);
        self
    }

    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.set(&["process", "args"], strs(args))
    }
    pub fn env(&mut self, kv: &str) -> &mut Self {
        arr(&mut self.0, &["process", "env"]).push(json!(kv));
        self
    }
    pub fn cwd(&mut self, cwd: &str) -> &mut Self {
        self.set(&["process", "cwd"], json!(cwd))
    }
    pub fn terminal(&mut self, on: bool) -> &mut Self {
        self.set(&["process", "terminal"], json!(on))
    }
    pub fn hostname(&mut self, h: &str) -> &mut Self {
        self.set(&["hostname"], json!(h))
    }
    pub fn domainname(&mut self, d: &str) -> &mut Self {
        self.set(&["domainname"], json!(d))
    }
    pub fn user(&mut self, uid: u32, gid: u32, additional: &[u32]) -> &mut Self {
        let u = obj(&mut self.0, &["process", "user"]);
        u.insert("uid".into(), json!(uid));
        u.insert("gid".into(), json!(gid));
        u.insert("additionalGids".into(), json!(additional));
        self
    }
    pub fn umask(&mut self, mask: u32) -> &mut Self {
        self.set(&["process", "user", "umask"], json!(mask))
    }
    pub fn root_path(&mut self, p: &str, readonly: bool) -> &mut Self {
        self.set(&["root"], json!({"path": p, "readonly": readonly}))
    }
    pub fn readonly_root(&mut self, ro: bool) -> &mut Self {
        self.set(&["root", "readonly"], json!(ro))
    }
    /// Sets all five capability sets to `caps`.
    pub fn caps_all(&mut self, caps: &[&str]) -> &mut Self {
        let c = obj(&mut self.0, &["process", "capabilities"]);
        for set in [
            "bounding",
            "effective",
            "permitted",
            "inheritable",
            "ambient",
        ] {
            c.insert(set.into(), strs(caps));
        }
        self
    }
    pub fn caps_set(&mut self, set: &str, caps: &[&str]) -> &mut Self {
        self.set(&["process", "capabilities", set], strs(caps))
    }
    pub fn no_new_privileges(&mut self, on: bool) -> &mut Self {
        self.set(&["process", "noNewPrivileges"], json!(on))
    }
    /// Replaces (or adds) the rlimit of `kind` (e.g. "RLIMIT_NOFILE").
    pub fn rlimit(&mut self, kind: &str, soft: u64, hard: u64) -> &mut Self {
        let a = arr(&mut self.0, &["process", "rlimits"]);
        a.retain(|r| r["type"] != kind);
        a.push(json!({"type": kind, "soft": soft, "hard": hard}));
        self
    }
    pub fn oom_score_adj(&mut self, adj: i32) -> &mut Self {
        self.set(&["process", "oomScoreAdj"], json!(adj))
    }
    pub fn sysctl(&mut self, key: &str, val: &str) -> &mut Self {
        obj(&mut self.0, &["linux", "sysctl"]).insert(key.into(), json!(val));
        self
    }
    /// Adds namespace `kind` (replacing one of the same kind), joined at
    /// `path` when given.
    pub fn namespace(&mut self, kind: &str, path: Option<&str>) -> &mut Self {
        let a = arr(&mut self.0, &["linux", "namespaces"]);
        a.retain(|n| n["type"] != kind);
        let mut n = json!({"type": kind});
        if let Some(p) = path {
            n["path"] = json!(p);
        }
        a.push(n);
        self
    }
    pub fn remove_namespace(&mut self, kind: &str) -> &mut Self {
        arr(&mut self.0, &["linux", "namespaces"]).retain(|n| n["type"] != kind);
        self
    }
    pub fn uid_mapping(&mut self, container: u32, host: u32, size: u32) -> &mut Self {
        arr(&mut self.0, &["linux", "uidMappings"])
            .push(json!({"containerID": container, "hostID": host, "size": size}));
        self
    }
    pub fn gid_mapping(&mut self, container: u32, host: u32, size: u32) -> &mut Self {
        arr(&mut self.0, &["linux", "gidMappings"])
            .push(json!({"containerID": container, "hostID": host, "size": size}));
        self
    }
    pub fn time_offset(&mut self, clock: &str, secs: i64) -> &mut Self {
        obj(&mut self.0, &["linux", "timeOffsets"])
            .insert(clock.into(), json!({"secs": secs, "nanosecs": 0}));
        self
    }
    pub fn add_mount(&mut self, dest: &str, kind: &str, source: &str, opts: &[&str]) -> &mut Self {
        arr(&mut self.0, &["mounts"]).push(json!({
            "destination": dest, "type": kind, "source": source, "options": strs(opts)
        }));
        self
    }
    pub fn remove_mount(&mut self, dest: &str) -> &mut Self {
        arr(&mut self.0, &["mounts"]).retain(|m| m["destination"] != dest);
        self
    }
    pub fn masked_path(&mut self, p: &str) -> &mut Self {
        arr(&mut self.0, &["linux", "maskedPaths"]).push(json!(p));
        self
    }
    pub fn readonly_path(&mut self, p: &str) -> &mut Self {
        arr(&mut self.0, &["linux", "readonlyPaths"]).push(json!(p));
        self
    }
    pub fn cgroups_path(&mut self, p: &str) -> &mut Self {
        self.set(&["linux", "cgroupsPath"], json!(p))
    }
    /// Sets `linux.resources.<key>` (e.g. "memory", "pids", "cpu").
    pub fn resource(&mut self, key: &str, v: Value) -> &mut Self {
        obj(&mut self.0, &["linux", "resources"]).insert(key.into(), v);
        self
    }
    /// Adds a device node (`linux.devices`) and allows it in the device cgroup.
    pub fn device(
        &mut self,
        path: &str,
        kind: &str,
        major: i64,
        minor: i64,
        mode: u32,
    ) -> &mut Self {
        arr(&mut self.0, &["linux", "devices"]).push(json!({
            "path": path, "type": kind, "major": major, "minor": minor,
            "fileMode": mode, "uid": 0, "gid": 0
        }));
        arr(&mut self.0, &["linux", "resources", "devices"]).push(json!({
            "allow": true, "type": kind, "major": major, "minor": minor, "access": "rwm"
        }));
        self
    }
    pub fn seccomp(&mut self, profile: Value) -> &mut Self {
        self.set(&["linux", "seccomp"], profile)
    }
    /// Appends a hook to `hooks.<stage>`.
    pub fn hook(&mut self, stage: &str, path: &str, args: &[&str]) -> &mut Self {
        arr(&mut self.0, &["hooks", stage]).push(json!({"path": path, "args": strs(args)}));
        self
    }
}
