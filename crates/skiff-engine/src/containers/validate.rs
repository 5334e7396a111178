//! Checks of a `HostConfig` at create, with dockerd's messages.

use super::model::HostConfig;
use super::service::ContainersError;

fn bad(m: impl Into<String>) -> ContainersError {
    ContainersError::Invalid(m.into())
}

/// Refuses what dockerd refuses at create (and what skiff cannot do).
pub fn host_config(h: &HostConfig) -> Result<(), ContainersError> {
    let rp = &h.restart_policy;
    match rp.name.as_str() {
        "" | "no" | "always" | "unless-stopped" => {
            if rp.maximum_retry_count != 0 {
                return Err(bad(
                    "invalid restart policy: maximum retry count can only be used with 'on-failure'",
                ));
            }
        }
        "on-failure" => {
            if rp.maximum_retry_count < 0 {
                return Err(bad(
                    "invalid restart policy: maximum retry count cannot be negative",
                ));
            }
        }
        other => {
            return Err(bad(format!(
                "invalid restart policy: unknown policy '{other}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
            )))
        }
    }
    if h.auto_remove && !matches!(rp.name.as_str(), "" | "no") {
        return Err(bad(
            "can't create 'AutoRemove' container with restart policy",
        ));
    }
    if h.memory != 0 && h.memory < 6 * 1024 * 1024 {
        return Err(bad("Minimum memory limit allowed is 6MB"));
    }
    if h.memory < 0 || h.memory_reservation < 0 || h.shm_size < 0 {
        return Err(bad("memory values cannot be negative"));
    }
    if h.memory_swap > 0 && h.memory > 0 && h.memory_swap < h.memory {
        return Err(bad(
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ));
    }
    if h.memory_reservation > 0 && h.memory > 0 && h.memory < h.memory_reservation {
        return Err(bad(
            "Minimum memory limit can not be less than memory reservation limit, see usage",
        ));
    }
    if h.nano_cpus != 0 && (h.cpu_quota != 0 || h.cpu_period != 0) {
        return Err(bad(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set",
        ));
    }
    if h.nano_cpus < 0 {
        return Err(bad(
            "range of CPUs is from 0.01 to the number of CPUs available",
        ));
    }
    if h.cpu_period != 0 && !(1000..=1_000_000).contains(&h.cpu_period) {
        return Err(bad(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        ));
    }
    if h.cpu_quota != 0 && h.cpu_quota < 1000 {
        return Err(bad("CPU cfs quota can not be less than 1ms (i.e. 1000)"));
    }
    if h.oom_score_adj < -1000 || h.oom_score_adj > 1000 {
        return Err(bad(format!(
            "Invalid value {}, range for oom score adj is [-1000, 1000]",
            h.oom_score_adj
        )));
    }
    if let Some(s) = h.memory_swappiness {
        if s != -1 && !(0..=100).contains(&s) {
            return Err(bad(format!(
                "Invalid value: {s}, valid memory swappiness range is 0-100"
            )));
        }
    }
    match h.log_config.kind.as_str() {
        "" | "json-file" | "local" | "none" => {}
        other => {
            return Err(bad(format!(
                "failed to create container: logger: no log driver named '{other}' is registered"
            )))
        }
    }
    if h.network_mode.starts_with("container:") && h.network_mode.len() == "container:".len() {
        return Err(bad("invalid network mode: container: needs a container"));
    }
    for (what, mode) in [
        ("ipc", &h.ipc_mode),
        ("pid", &h.pid_mode),
        ("uts", &h.uts_mode),
    ] {
        if !matches!(mode.as_str(), "" | "host" | "private" | "shareable") {
            return Err(bad(format!("invalid {what} mode: {mode}")));
        }
    }
    for b in h.binds.iter().flatten() {
        super::mounts::parse_bind(b)?;
    }
    for (k, _) in h.sysctls.iter().flatten() {
        if k.is_empty() || k.contains('/') || k.contains("..") {
            return Err(bad(format!("invalid sysctl {k:?}")));
        }
        if k.starts_with("net.") && h.network_mode == "host" {
            return Err(bad(format!(
                "sysctl '{k}' not allowed in host network namespace"
            )));
        }
        let ipc = k.starts_with("fs.mqueue.")
            || (k.starts_with("kernel.")
                && (k.contains(".msg") || k.contains(".sem") || k.contains(".shm")));
        if ipc && h.ipc_mode == "host" {
            return Err(bad(format!(
                "sysctl '{k}' not allowed with host IPC namespace"
            )));
        }
    }
    for u in h.ulimits.iter().flatten() {
        if super::oci::rlimit_name(&u.name).is_none() {
            return Err(bad(format!("invalid ulimit type: {}", u.name)));
        }
        if u.soft > u.hard && u.hard >= 0 {
            return Err(bad(format!(
                "ulimit soft limit must be less than or equal to hard limit: {} > {}",
                u.soft, u.hard
            )));
        }
    }
    Ok(())
}
