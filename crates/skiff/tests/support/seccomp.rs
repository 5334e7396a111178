//! Converts Docker's seccomp profile format (archMap, includes/excludes by
//! arch, capability and kernel version) into the OCI `linux.seccomp` section
//! dockerd would hand to its runtime, following moby's
//! profiles/seccomp/seccomp_linux.go `setupSeccomp` for the host arch.

use serde_json::{json, Map, Value};

/// Docker's default profile as shipped in the shared spec directory.
pub const DOCKER_DEFAULT_PATH: &str = "/work/shared/spec/seccomp-default.json";

/// Go's GOARCH name of the host (what moby compares `arches` against).
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "arm" => "arm",
        "s390x" => "s390x",
        "powerpc64" => "ppc64le",
        "riscv64" => "riscv64",
        "loongarch64" => "loong64",
        other => panic!("unsupported arch {other}"),
    }
}

fn go_arch_to_seccomp(arch: &str) -> &'static str {
    match arch {
        "amd64" => "SCMP_ARCH_X86_64",
        "386" => "SCMP_ARCH_X86",
        "arm64" => "SCMP_ARCH_AARCH64",
        "arm" => "SCMP_ARCH_ARM",
        "s390x" => "SCMP_ARCH_S390X",
        "ppc64le" => "SCMP_ARCH_PPC64LE",
        "riscv64" => "SCMP_ARCH_RISCV64",
        "loong64" => "SCMP_ARCH_LOONGARCH64",
        other => panic!("unsupported arch {other}"),
    }
}

/// (major, minor) of the running kernel.
pub fn kernel_version() -> (u32, u32) {
    let rel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    parse_version(rel.trim())
}

fn parse_version(s: &str) -> (u32, u32) {
    let mut it = s
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

fn list(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Converts a Docker-format profile for a container whose bounding set is
/// `bounding`, on this host's arch and kernel.
pub fn docker_to_oci(profile: &Value, bounding: &[&str]) -> Value {
    let arch = go_arch();
    let kernel = kernel_version();
    let has_cap = |c: &str| bounding.contains(&c);
    let mut out = Map::new();
    out.insert("defaultAction".into(), profile["defaultAction"].clone());
    if let Some(e) = profile.get("defaultErrnoRet").filter(|v| !v.is_null()) {
        out.insert("defaultErrnoRet".into(), e.clone());
    }
    let mut archs: Vec<Value> = Vec::new();
    if let Some(map) = profile["archMap"].as_array() {
        let native = go_arch_to_seccomp(arch);
        for a in map {
            if a["architecture"] == native {
                archs.push(a["architecture"].clone());
                archs.extend(
                    a["subArchitectures"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default(),
                );
            }
        }
    } else if let Some(a) = profile["architectures"].as_array() {
        archs = a.clone();
    }
    out.insert("architectures".into(), Value::Array(archs));
    for k in ["listenerPath", "listenerMetadata", "flags"] {
        if let Some(v) = profile.get(k).filter(|v| !v.is_null()) {
            out.insert(k.into(), v.clone());
        }
    }
    let mut syscalls = Vec::new();
    for call in profile["syscalls"].as_array().cloned().unwrap_or_default() {
        let inc = &call["includes"];
        let exc = &call["excludes"];
        if list(&exc["arches"]).iter().any(|a| a == arch) {
            continue;
        }
        if list(&exc["caps"]).iter().any(|c| has_cap(c)) {
            continue;
        }
        if let Some(k) = exc["minKernel"].as_str() {
            if kernel >= parse_version(k) {
                continue;
            }
        }
        let inc_arches = list(&inc["arches"]);
        if !inc_arches.is_empty() && !inc_arches.iter().any(|a| a == arch) {
            continue;
        }
        if !list(&inc["caps"]).iter().all(|c| has_cap(c)) {
            continue;
        }
        if let Some(k) = inc["minKernel"].as_str() {
            if kernel < parse_version(k) {
                continue;
            }
        }
        let mut names = list(&call["names"]);
        if let Some(n) = call["name"].as_str() {
            names.push(n.to_string());
        }
        let mut s = json!({"names": names, "action": call["action"].clone()});
        if let Some(e) = call.get("errnoRet").filter(|v| !v.is_null()) {
            s["errnoRet"] = e.clone();
        }
        if let Some(args) = call["args"].as_array().filter(|a| !a.is_empty()) {
            let args: Vec<Value> = args
                .iter()
                .map(|a| {
                    json!({
                        "index": a["index"], "value": a["value"],
                        "valueTwo": a.get("valueTwo").cloned().unwrap_or(json!(0)),
                        "op": a["op"],
                    })
                })
                .collect();
            s["args"] = Value::Array(args);
        }
        syscalls.push(s);
    }
    out.insert("syscalls".into(), Value::Array(syscalls));
    Value::Object(out)
}

/// Docker's default profile converted for `bounding`.
pub fn docker_default(bounding: &[&str]) -> Value {
    let text = std::fs::read_to_string(DOCKER_DEFAULT_PATH)
        .unwrap_or_else(|e| panic!("read {DOCKER_DEFAULT_PATH}: {e}"));
    let v: Value = serde_json::from_str(&text).expect("docker seccomp profile is JSON");
    docker_to_oci(&v, bounding)
}
