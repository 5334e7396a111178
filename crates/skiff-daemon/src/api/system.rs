//! `/_ping`, `/version`, `/info`: Docker's shapes, with skiff's facts.

use hyper::header::{HeaderValue, CACHE_CONTROL, PRAGMA};
use hyper::StatusCode;
use serde_json::{json, Value};

use super::body::{self, Resp};
use super::error::ApiResult;
use super::route::{API_VERSION, MIN_API_VERSION};
use crate::state::Daemon;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The compiler that built skiff (the field Docker calls GoVersion).
pub const RUSTC_VERSION: &str = env!("SKIFF_RUSTC_VERSION");

/// The host's architecture in Go's (and so Docker's) naming.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    }
}

pub fn kernel_version() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn os_release_name() -> String {
    let s = std::fs::read_to_string("/etc/os-release")
        .or_else(|_| std::fs::read_to_string("/usr/lib/os-release"))
        .unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".into())
}

fn mem_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("MemTotal:")
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn cgroup_version() -> &'static str {
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "2"
    } else {
        "1"
    }
}

/// The file system under the data root, in Docker's words (`Backing Filesystem`).
fn backing_fs(root: &std::path::Path) -> &'static str {
    use nix::sys::statfs::{self, statfs};
    let Ok(st) = statfs(root) else {
        return "unknown";
    };
    match st.filesystem_type() {
        statfs::EXT4_SUPER_MAGIC => "extfs",
        statfs::XFS_SUPER_MAGIC => "xfs",
        statfs::BTRFS_SUPER_MAGIC => "btrfs",
        statfs::TMPFS_MAGIC => "tmpfs",
        statfs::OVERLAYFS_SUPER_MAGIC => "overlayfs",
        _ => "unknown",
    }
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn build_time() -> &'static str {
    option_env!("SKIFF_BUILD_TIME").unwrap_or("")
}

/// `GET|HEAD /_ping`.
pub fn ping(head: bool) -> Resp {
    let mut r = if head {
        body::status(StatusCode::OK)
    } else {
        body::text(StatusCode::OK, "OK")
    };
    let h = r.headers_mut();
    h.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert("Builder-Version", HeaderValue::from_static("1"));
    if head {
        h.insert(
            hyper::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
    }
    r
}

/// `GET /version`.
pub fn version() -> Value {
    let kernel = kernel_version();
    let details = json!({
        "ApiVersion": API_VERSION.to_string(),
        "Arch": go_arch(),
        "BuildTime": build_time(),
        "Experimental": "false",
        "GitCommit": option_env!("SKIFF_GIT_COMMIT").unwrap_or(""),
        "GoVersion": RUSTC_VERSION,
        "KernelVersion": kernel,
        "MinAPIVersion": MIN_API_VERSION.to_string(),
        "Os": "linux",
    });
    json!({
        "Platform": {"Name": format!("skiff {VERSION}")},
        "Components": [{"Name": "Engine", "Version": VERSION, "Details": details}],
        "Version": VERSION,
        "ApiVersion": API_VERSION.to_string(),
        "MinAPIVersion": MIN_API_VERSION.to_string(),
        "GitCommit": option_env!("SKIFF_GIT_COMMIT").unwrap_or(""),
        "GoVersion": RUSTC_VERSION,
        "Os": "linux",
        "Arch": go_arch(),
        "KernelVersion": kernel,
        "BuildTime": build_time(),
    })
}

/// `GET /info`.
pub async fn info(d: &Daemon) -> ApiResult<Value> {
    let cfg = d.config();
    let svc = d.images();
    let images = tokio::task::spawn_blocking(move || {
        svc.list().map(|rows| {
            let mut ids: Vec<String> = rows.into_iter().map(|r| r.id).collect();
            ids.sort();
            ids.dedup();
            ids.len()
        })
    })
    .await
    .map_err(|e| super::error::ApiError::system(format!("count images: {e}")))??;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let mut index_configs = serde_json::Map::new();
    index_configs.insert(
        "docker.io".into(),
        json!({"Name": "docker.io", "Mirrors": cfg.engine.registry_mirrors, "Secure": true, "Official": true}),
    );
    let (cidrs, hosts): (Vec<&String>, Vec<&String>) = cfg
        .engine
        .insecure_registries
        .iter()
        .partition(|s| s.contains('/'));
    for h in hosts {
        index_configs.insert(
            h.clone(),
            json!({"Name": h, "Mirrors": [], "Secure": false, "Official": false}),
        );
    }
    let mut insecure_cidrs = vec!["::1/128".to_string(), "127.0.0.0/8".to_string()];
    insecure_cidrs.extend(cidrs.into_iter().cloned());
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let (mut total, mut running, mut paused) = (0, 0, 0);
    for e in d.containers.all() {
        let c = e.snapshot();
        total += 1;
        if c.state.paused {
            paused += 1;
        } else if c.state.running {
            running += 1;
        }
    }
    Ok(json!({
        "ID": d.engine_id,
        "Containers": total,
        "ContainersRunning": running,
        "ContainersPaused": paused,
        "ContainersStopped": total - running - paused,
        "Images": images,
        "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", backing_fs(&cfg.engine.data_root)], ["Supports d_type", "true"], ["Using metacopy", "false"], ["Native Overlay Diff", "true"], ["userxattr", "false"]],
        "Plugins": {
            "Volume": ["local"],
            "Network": ["bridge", "host", "none"],
            "Authorization": null,
            "Log": ["json-file", "local", "none"],
        },
        "MemoryLimit": true,
        "SwapLimit": true,
        "KernelMemoryTCP": false,
        "CpuCfsPeriod": true,
        "CpuCfsQuota": true,
        "CPUShares": true,
        "CPUSet": true,
        "PidsLimit": true,
        "IPv4Forwarding": true,
        "BridgeNfIptables": false,
        "BridgeNfIp6tables": false,
        "Debug": cfg.debug,
        "NFd": count_dir("/proc/self/fd"),
        "OomKillDisable": cgroup_version() == "1",
        "NGoroutines": count_dir("/proc/self/task"),
        "SystemTime": now,
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": cgroup_version(),
        "NEventsListener": 0,
        "KernelVersion": kernel_version(),
        "OperatingSystem": os_release_name(),
        "OSVersion": "",
        "OSType": "linux",
        "Architecture": std::env::consts::ARCH,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {
            "AllowNondistributableArtifactsCIDRs": [],
            "AllowNondistributableArtifactsHostnames": [],
            "InsecureRegistryCIDRs": insecure_cidrs,
            "IndexConfigs": index_configs,
            "Mirrors": cfg.engine.registry_mirrors,
        },
        "NCPU": ncpu,
        "MemTotal": mem_total(),
        "GenericResources": null,
        "DockerRootDir": cfg.engine.data_root,
        "HttpProxy": std::env::var("HTTP_PROXY").unwrap_or_default(),
        "HttpsProxy": std::env::var("HTTPS_PROXY").unwrap_or_default(),
        "NoProxy": std::env::var("NO_PROXY").unwrap_or_default(),
        "Name": hostname(),
        "Labels": [],
        "ExperimentalBuild": false,
        "ServerVersion": VERSION,
        "Runtimes": {"skiff": {"path": "skiff-runtime"}},
        "DefaultRuntime": "skiff",
        "Swarm": {
            "NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
            "ControlAvailable": false, "Error": "", "RemoteManagers": null,
        },
        "LiveRestoreEnabled": true,
        "Isolation": "",
        "InitBinary": "",
        "ContainerdCommit": {"ID": ""},
        "RuncCommit": {"ID": ""},
        "InitCommit": {"ID": ""},
        "SecurityOptions": ["name=seccomp,profile=builtin"],
        "CDISpecDirs": [],
        "Warnings": null,
    }))
}

fn count_dir(p: &str) -> usize {
    std::fs::read_dir(p).map(|d| d.count()).unwrap_or(0)
}
