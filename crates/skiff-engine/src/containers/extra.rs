//! `update` (resources and restart policy of a container, live), `changes` (`docker diff`)
//! and `export` (the merged filesystem as a tar).

use std::io::Write;
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::json;

use super::model::RestartPolicy;
use super::service::{Containers, ContainersError, Result};

/// The body of `POST /containers/{id}/update` (the `Resources` fields dockerd can change
/// live, and the restart policy).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields, default)]
pub struct UpdateConfig {
    pub cpu_shares: i64,
    pub memory: i64,
    pub memory_reservation: i64,
    pub memory_swap: i64,
    pub nano_cpus: i64,
    pub cpu_period: i64,
    pub cpu_quota: i64,
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
    pub pids_limit: Option<i64>,
    pub blkio_weight: u16,
    pub restart_policy: Option<RestartPolicy>,
    // Accepted as the docker CLI sends them, with no effect when zero/empty.
    pub cgroup_parent: String,
    pub blkio_weight_device: Option<serde_json::Value>,
    pub blkio_device_read_bps: Option<serde_json::Value>,
    pub blkio_device_write_bps: Option<serde_json::Value>,
    #[serde(rename = "BlkioDeviceReadIOps")]
    pub blkio_device_read_iops: Option<serde_json::Value>,
    #[serde(rename = "BlkioDeviceWriteIOps")]
    pub blkio_device_write_iops: Option<serde_json::Value>,
    pub cpu_realtime_period: i64,
    pub cpu_realtime_runtime: i64,
    pub devices: Option<serde_json::Value>,
    pub device_cgroup_rules: Option<serde_json::Value>,
    pub device_requests: Option<serde_json::Value>,
    #[serde(rename = "KernelMemoryTCP")]
    pub kernel_memory_tcp: i64,
    pub memory_swappiness: Option<i64>,
    pub oom_kill_disable: Option<bool>,
    pub ulimits: Option<serde_json::Value>,
    pub cpu_count: i64,
    pub cpu_percent: i64,
    #[serde(rename = "IOMaximumIOps")]
    pub io_maximum_iops: u64,
    #[serde(rename = "IOMaximumBandwidth")]
    pub io_maximum_bandwidth: u64,
}

/// The files skiff bind-mounts into every container (Docker keeps their mount points in an
/// init layer under the container's, so `diff` and `commit` never see them).
const MANAGED: &[&str] = &[
    "/etc/hosts",
    "/etc/hostname",
    "/etc/resolv.conf",
    super::oci::INIT_IN_CONTAINER,
];

/// The managed files' mount points present in a writable layer `upper` (empty regular
/// files: what a container wrote to those files went to its own copies, not there).
pub(crate) fn managed_stubs(upper: &std::path::Path) -> Vec<String> {
    MANAGED
        .iter()
        .filter(|p| {
            std::fs::symlink_metadata(upper.join(p.trim_start_matches('/')))
                .is_ok_and(|m| m.is_file() && m.len() == 0)
        })
        .map(|p| p.to_string())
        .collect()
}

impl Containers {
    /// `POST /containers/{id}/update`.
    pub fn update(&self, what: &str, u: UpdateConfig) -> Result<Vec<String>> {
        let e = self.get(what)?;
        let mut host = e.snapshot().host_config;
        if u.memory != 0 {
            host.memory = u.memory;
        }
        if u.memory_reservation != 0 {
            host.memory_reservation = u.memory_reservation;
        }
        if u.memory_swap != 0 {
            host.memory_swap = u.memory_swap;
        }
        if u.cpu_shares != 0 {
            host.cpu_shares = u.cpu_shares;
        }
        if u.nano_cpus != 0 {
            host.nano_cpus = u.nano_cpus;
        }
        if u.cpu_period != 0 {
            host.cpu_period = u.cpu_period;
        }
        if u.cpu_quota != 0 {
            host.cpu_quota = u.cpu_quota;
        }
        if !u.cpuset_cpus.is_empty() {
            host.cpuset_cpus = u.cpuset_cpus.clone();
        }
        if !u.cpuset_mems.is_empty() {
            host.cpuset_mems = u.cpuset_mems.clone();
        }
        if u.pids_limit.is_some() {
            host.pids_limit = u.pids_limit;
        }
        if u.blkio_weight != 0 {
            host.blkio_weight = u.blkio_weight;
        }
        if let Some(rp) = u.restart_policy.clone() {
            if host.auto_remove && !matches!(rp.name.as_str(), "" | "no") {
                return Err(ContainersError::Invalid(
                    "Restart policy cannot be updated because AutoRemove is enabled for the container".into(),
                ));
            }
            host.restart_policy = rp;
        }
        super::validate::host_config(&host)?;
        let c = e.snapshot();
        if c.state.running {
            let mut res = json!({});
            if u.memory != 0 {
                res["memory"]["limit"] = json!(host.memory);
                let swap = if host.memory_swap == 0 {
                    host.memory * 2
                } else {
                    host.memory_swap
                };
                res["memory"]["swap"] = json!(swap);
            }
            if u.memory_reservation != 0 {
                res["memory"]["reservation"] = json!(host.memory_reservation);
            }
            if u.cpu_shares != 0 {
                res["cpu"]["shares"] = json!(host.cpu_shares);
            }
            if u.nano_cpus != 0 {
                res["cpu"]["period"] = json!(100_000);
                res["cpu"]["quota"] = json!(host.nano_cpus / 10_000);
            }
            if u.cpu_quota != 0 {
                res["cpu"]["quota"] = json!(host.cpu_quota);
            }
            if u.cpu_period != 0 {
                res["cpu"]["period"] = json!(host.cpu_period);
            }
            if !u.cpuset_cpus.is_empty() {
                res["cpu"]["cpus"] = json!(host.cpuset_cpus);
            }
            if !u.cpuset_mems.is_empty() {
                res["cpu"]["mems"] = json!(host.cpuset_mems);
            }
            if let Some(p) = u.pids_limit {
                res["pids"]["limit"] = json!(if p <= 0 { -1 } else { p });
            }
            if u.blkio_weight != 0 {
                res["blockIO"]["weight"] = json!(host.blkio_weight);
            }
            let r: oci_spec::runtime::LinuxResources = serde_json::from_value(res)
                .map_err(|err| ContainersError::Invalid(format!("update: {err}")))?;
            self.runtime().update(&c.id, &r).map_err(|err| {
                ContainersError::System(format!("Cannot update container {}: {err}", c.id))
            })?;
        }
        e.save(|c| c.host_config = host)?;
        self.emit("update", &e.snapshot(), &[]);
        Ok(Vec::new())
    }

    pub(crate) fn layer_dirs(&self, id: &str) -> Result<(Vec<PathBuf>, PathBuf)> {
        let mounts = self
            .store
            .snapshots()
            .mounts(id)
            .map_err(|e| ContainersError::System(format!("rootfs of {id}: {e}")))?;
        let m = mounts
            .first()
            .ok_or_else(|| ContainersError::System(format!("rootfs of {id}: no mounts")))?;
        let mut lowers = Vec::new();
        let mut upper = None;
        for o in &m.options {
            if let Some(l) = o.strip_prefix("lowerdir=") {
                lowers = l.split(':').map(PathBuf::from).collect();
            } else if let Some(u) = o.strip_prefix("upperdir=") {
                upper = Some(PathBuf::from(u));
            }
        }
        if m.typ == "bind" {
            // A single-directory snapshot (no parent): everything is the container's own.
            return Ok((Vec::new(), PathBuf::from(&m.source)));
        }
        let upper =
            upper.ok_or_else(|| ContainersError::System(format!("rootfs of {id}: no upperdir")))?;
        Ok((lowers, upper))
    }

    /// `GET /containers/{id}/changes`.
    pub fn changes(&self, what: &str) -> Result<serde_json::Value> {
        let e = self.get(what)?;
        let (lowers, upper) = self.layer_dirs(&e.id)?;
        let mut ch = skiff_image::diff::changes(&lowers, &upper)
            .map_err(|err| ContainersError::System(format!("changes of {}: {err}", e.id)))?;
        // The mount points of the files skiff manages (Docker keeps them in an init layer,
        // so they never show): drop them, and their directory if nothing else changed there.
        let stubs = managed_stubs(&upper);
        ch.retain(|c| !stubs.contains(&c.path));
        for dir in ["/etc", "/sbin"] {
            let prefix = format!("{dir}/");
            let only_stubs = !ch.iter().any(|c| c.path.starts_with(&prefix));
            let added_here = MANAGED.iter().any(|m| m.starts_with(&prefix));
            if only_stubs && added_here {
                ch.retain(|c| {
                    !(c.path == dir && c.kind == skiff_image::diff::ChangeKind::Modified)
                });
            }
        }
        Ok(json!(ch
            .iter()
            .map(|c| json!({"Path": c.path, "Kind": match c.kind {
                skiff_image::diff::ChangeKind::Modified => 0,
                skiff_image::diff::ChangeKind::Added => 1,
                skiff_image::diff::ChangeKind::Deleted => 2,
            }}))
            .collect::<Vec<_>>()))
    }

    /// `GET /containers/{id}/export`: the merged filesystem as an uncompressed tar, written
    /// to `out` (blocking; mounts the rootfs for the duration when the container is stopped).
    pub fn export(&self, what: &str, mut out: impl Write) -> Result<()> {
        let e = self.get(what)?;
        let rootfs = e.dir.join("rootfs");
        let mounted_here = if skiff_store::is_mounted(&rootfs) {
            false
        } else {
            let mounts = self
                .store
                .snapshots()
                .mounts(&e.id)
                .map_err(|err| ContainersError::System(format!("rootfs of {}: {err}", e.id)))?;
            skiff_store::mount_to(&mounts, &rootfs).map_err(|err| {
                ContainersError::System(format!("mount rootfs of {}: {err}", e.id))
            })?;
            true
        };
        // `out` is borrowed, not moved: the client sees the end of the stream only after the
        // rootfs is unmounted again (dropped last).
        let res = skiff_image::diff::write_layer_from_dir(
            &rootfs,
            &mut out,
            skiff_image::compression::Compression::None,
            &skiff_image::diff::WriteOptions::default(),
        );
        if mounted_here && !e.snapshot().state.running {
            let _ = skiff_store::unmount_lazy(&rootfs);
        }
        drop(out);
        res.map(drop)
            .map_err(|err| ContainersError::System(format!("export {}: {err}", e.id)))
    }
}
