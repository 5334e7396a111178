//! skiff's cgroup manager: our own writer of the v1 (incl. hybrid) and v2
//! control files, used by the OCI runtime (`skiff runtime ...`).
//!
//! # Paths
//! `cgroupsPath` from config.json is interpreted like runc's cgroupfs driver:
//! * absolute (`/skiff/abc`) → relative to each hierarchy's mount point
//!   (`/sys/fs/cgroup/memory/skiff/abc` on v1, `/sys/fs/cgroup/skiff/abc` on v2);
//! * relative (`skiff/abc`) → relative to the calling process's own cgroup
//!   for that hierarchy, read from /proc/self/cgroup (minus the mount's root
//!   as listed in /proc/self/mountinfo);
//! * absent → relative, with the container id as the path.
//!
//! `..` components are rejected. [`manager_with_roots`] takes explicit mount
//! roots (tests, unusual layouts) and treats relative paths as relative to
//! those roots. [`CgroupManager::paths`] gives controller → directory (v2:
//! `""` → directory), to be saved in the runtime's state and turned back into
//! a manager with [`from_paths`] by a later `kill`/`pause`/`update`/`delete`.
//!
//! # v1 → v2 conversions (as runc)
//! * cpu shares → cpu.weight: `1 + ((shares - 2) * 9999) / 262142`;
//! * cpu quota/period → cpu.max `"<quota|max> <period>"`;
//! * blkio weight (10..1000) → io.weight: `1 + ((weight - 10) * 9999) / 990`
//!   (or the raw weight to io.bfq.weight when BFQ is in use);
//! * memory: OCI `swap` is memory+swap. v1 writes memory.memsw.limit_in_bytes
//!   (skipped with a warning when swap accounting is off); v2 writes
//!   memory.swap.max = swap − limit (-1 → "max"; swap == limit → 0).
//!   memory = -1 without swap means both unlimited. reservation →
//!   memory.soft_limit_in_bytes / memory.low. Kernel memory is ignored;
//! * pids limit ≤ 0 → "max";
//! * `unified` entries are written verbatim on v2, and are an error on v1;
//! * devices: v1 devices.allow/deny; v2 a BPF_PROG_TYPE_CGROUP_DEVICE
//!   program (see [`v2`]) where the last matching rule wins for each access
//!   bit and unmatched accesses are allowed (the v1 kernel default).
//!
//! Values of 0 in OCI numeric fields mean "unset", as in runc.

pub mod error;
pub mod stats;
pub mod v1;
pub mod v2;

mod device_rules;
mod fs;
mod paths;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

pub use error::{CgroupError, Result};
pub use stats::Stats;

/// Where cgroup hierarchies are mounted on a normal host.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";
const CGROUP2_SUPER_MAGIC: u64 = 0x6367_7270;

/// The cgroup layout of the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CgroupVersion {
    /// v1, including hybrid hosts (v1 controllers + an empty cgroup2 mount).
    V1,
    /// Unified hierarchy at /sys/fs/cgroup.
    V2,
}

impl fmt::Display for CgroupVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CgroupVersion::V1 => "v1",
            CgroupVersion::V2 => "v2",
        })
    }
}

/// State of the freezer of a cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FreezerState {
    Thawed,
    Frozen,
    Freezing,
}

/// The host's cgroup version: statfs of /sys/fs/cgroup, cgroup2 magic → V2.
pub fn detect() -> CgroupVersion {
    detect_at(Path::new(CGROUP_ROOT))
}

/// Same as [`detect`] for another mount point.
pub fn detect_at(path: &Path) -> CgroupVersion {
    match rustix::fs::statfs(path) {
        #[allow(clippy::unnecessary_cast)]
        Ok(st) if st.f_type as u64 == CGROUP2_SUPER_MAGIC => CgroupVersion::V2,
        _ => CgroupVersion::V1,
    }
}

/// What the runtime knows about a container's cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupConfig {
    /// cgroupsPath from config.json (or the default, the container id).
    pub path: PathBuf,
    pub container_id: String,
}

impl CgroupConfig {
    /// [`manager`] for this config.
    pub fn manager(&self) -> Result<Box<dyn CgroupManager>> {
        manager(Some(&self.path), &self.container_id)
    }
}

/// Mount roots of the hierarchies, for [`manager_with_roots`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Roots {
    /// controller ("memory", "cpu", "name=systemd"...) → mount point.
    V1(HashMap<String, PathBuf>),
    /// The cgroup2 mount point.
    V2(PathBuf),
}

/// Operations on one container's cgroup(s).
pub trait CgroupManager: Send + Sync + fmt::Debug {
    /// V1 or V2.
    fn version(&self) -> CgroupVersion;
    /// mkdir -p the cgroup(s); v2: enable the available controllers in the
    /// parents' cgroup.subtree_control; v1: fill an empty cpuset from the parent.
    fn create(&self) -> Result<()>;
    /// Move `pid` into the cgroup(s) (cgroup.procs of every hierarchy).
    fn apply(&self, pid: i32) -> Result<()>;
    /// Move the calling, single-threaded process into the cgroup(s).
    ///
    /// On v1 this writes "0" to each hierarchy's `tasks`: the kernel then migrates only the
    /// current thread and skips the global `cgroup_threadgroup_rwsem` write lock, whose RCU
    /// grace period costs 8-12 ms per container start when a pid is written to
    /// `cgroup.procs` by another process. The caller must have no other threads.
    fn join_self(&self) -> Result<()> {
        self.apply(0)
    }
    /// Open, ahead of time, the files through which a process joins the cgroup(s) itself
    /// (v1: `tasks` of each hierarchy; v2: `cgroup.procs`), for a process that will no longer
    /// see the host's cgroup paths when it joins (one already in a container's mount
    /// namespace). Pass them to [`join_with`].
    fn join_files(&self) -> Result<Vec<JoinFile>> {
        let file = match self.version() {
            CgroupVersion::V1 => "tasks",
            CgroupVersion::V2 => "cgroup.procs",
        };
        let mut out = Vec::new();
        for dir in std::collections::BTreeSet::<PathBuf>::from_iter(self.paths().into_values()) {
            let path = dir.join(file);
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|source| CgroupError::Write {
                    path: path.clone(),
                    value: "0".into(),
                    source,
                })?;
            out.push(JoinFile { path, file: f });
        }
        Ok(out)
    }
    /// Write the resource limits (also used by `update`).
    fn set(&self, resources: &LinuxResources) -> Result<()>;
    /// Freeze all processes and wait until the kernel reports frozen.
    fn freeze(&self) -> Result<()>;
    /// Thaw and wait until thawed.
    fn thaw(&self) -> Result<()>;
    fn freezer_state(&self) -> Result<FreezerState>;
    /// All pids of the cgroup, child cgroups included.
    fn pids(&self) -> Result<Vec<i32>>;
    fn stats(&self) -> Result<Stats>;
    /// Send `signal` to every process (v2 cgroup.kill for SIGKILL when present;
    /// otherwise under the freezer when available).
    fn kill_all(&self, signal: i32) -> Result<()>;
    /// rmdir the cgroup dir(s) and child cgroups (EBUSY retried briefly, ENOENT
    /// fine); directories that existed before `create` are left alone.
    fn destroy(&self) -> Result<()>;
    /// controller → directory; v2: "" → directory.
    fn paths(&self) -> HashMap<String, PathBuf>;
}

/// An open `tasks` / `cgroup.procs` file of a cgroup, see [`CgroupManager::join_files`].
#[derive(Debug)]
pub struct JoinFile {
    pub path: PathBuf,
    pub file: std::fs::File,
}

/// Move the calling single-threaded process into the cgroups whose files are given.
pub fn join_with(files: &[JoinFile]) -> Result<()> {
    use std::io::Write;
    for jf in files {
        (&jf.file)
            .write_all(b"0")
            .map_err(|source| CgroupError::Write {
                path: jf.path.clone(),
                value: "0".into(),
                source,
            })?;
    }
    Ok(())
}

/// The manager for this host (see the crate docs for the path rules).
pub fn manager(cgroups_path: Option<&Path>, container_id: &str) -> Result<Box<dyn CgroupManager>> {
    if let Some(p) = cgroups_path {
        paths::validate(p)?;
    }
    let mountinfo = fs::read_path(Path::new("/proc/self/mountinfo"))?;
    let own = paths::parse_proc_cgroup(&fs::read_path(Path::new("/proc/self/cgroup"))?);
    match detect() {
        CgroupVersion::V2 => {
            let root = PathBuf::from(CGROUP_ROOT);
            let mount_root = paths::v2_mount(&mountinfo)
                .filter(|m| m.mount_point == root)
                .map_or_else(|| "/".to_string(), |m| m.root);
            let own = own.get("").map(String::as_str);
            let dir = paths::resolve(&root, &mount_root, own, cgroups_path, container_id);
            Ok(Box::new(v2::V2Manager::new(root, dir)))
        }
        CgroupVersion::V1 => {
            let mounts = paths::v1_mounts(&mountinfo);
            let mut dirs = BTreeMap::new();
            for ctrl in v1::CONTROLLERS {
                if let Some(m) = mounts.get(*ctrl) {
                    let own = own.get(*ctrl).map(String::as_str);
                    let dir =
                        paths::resolve(&m.mount_point, &m.root, own, cgroups_path, container_id);
                    dirs.insert(ctrl.to_string(), dir);
                }
            }
            if dirs.is_empty() {
                return Err(CgroupError::NoHierarchy {
                    path: PathBuf::from("/proc/self/mountinfo"),
                });
            }
            Ok(Box::new(v1::V1Manager::new(dirs)))
        }
    }
}

/// Like [`manager`] over explicit mount roots; relative paths (and the
/// default, the container id) are relative to the roots.
pub fn manager_with_roots(
    roots: &Roots,
    cgroups_path: Option<&Path>,
    container_id: &str,
) -> Result<Box<dyn CgroupManager>> {
    if let Some(p) = cgroups_path {
        paths::validate(p)?;
    }
    match roots {
        Roots::V2(root) => {
            let dir = paths::resolve(root, "/", None, cgroups_path, container_id);
            Ok(Box::new(v2::V2Manager::new(root.clone(), dir)))
        }
        Roots::V1(map) => {
            if map.is_empty() {
                return Err(CgroupError::InvalidSavedPaths {
                    reason: "no v1 mount roots given",
                });
            }
            let dirs = map
                .iter()
                .map(|(c, root)| {
                    let dir = paths::resolve(root, "/", None, cgroups_path, container_id);
                    (c.clone(), dir)
                })
                .collect();
            Ok(Box::new(v1::V1Manager::new(dirs)))
        }
    }
}

/// Re-open a manager from [`CgroupManager::paths`] saved by an earlier process.
pub fn from_paths(saved: HashMap<String, PathBuf>) -> Result<Box<dyn CgroupManager>> {
    if saved.is_empty() {
        return Err(CgroupError::InvalidSavedPaths { reason: "no paths" });
    }
    if let Some(dir) = saved.get("") {
        if saved.len() != 1 {
            return Err(CgroupError::InvalidSavedPaths {
                reason: "a v2 path (key \"\") mixed with v1 controllers",
            });
        }
        if !dir.is_absolute() {
            return Err(CgroupError::InvalidSavedPaths {
                reason: "paths must be absolute",
            });
        }
        let root = v2::find_root(dir);
        return Ok(Box::new(v2::V2Manager::new(root, dir.clone())));
    }
    if saved.values().any(|p| !p.is_absolute()) {
        return Err(CgroupError::InvalidSavedPaths {
            reason: "paths must be absolute",
        });
    }
    Ok(Box::new(v1::V1Manager::new(saved.into_iter().collect())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_v1_resolution_and_from_paths_roundtrip() {
        let roots = Roots::V1(HashMap::from([
            ("memory".to_string(), PathBuf::from("/r/memory")),
            ("cpu".to_string(), PathBuf::from("/r/cpu,cpuacct")),
        ]));
        let m = manager_with_roots(&roots, Some(Path::new("/skiff/c1")), "c1").unwrap();
        let p = m.paths();
        assert_eq!(p["memory"], PathBuf::from("/r/memory/skiff/c1"));
        assert_eq!(p["cpu"], PathBuf::from("/r/cpu,cpuacct/skiff/c1"));
        let again = from_paths(p.clone()).unwrap();
        assert_eq!(again.paths(), p);
        assert_eq!(again.version(), CgroupVersion::V1);
        let d = manager_with_roots(&roots, None, "abc").unwrap();
        assert_eq!(d.paths()["memory"], PathBuf::from("/r/memory/abc"));
    }

    #[test]
    fn roots_v2_and_from_paths_errors() {
        let m = manager_with_roots(&Roots::V2("/r".into()), Some(Path::new("a/b")), "x").unwrap();
        assert_eq!(m.paths()[""], PathBuf::from("/r/a/b"));
        assert_eq!(m.version(), CgroupVersion::V2);
        let mixed = HashMap::from([
            (String::new(), PathBuf::from("/a")),
            ("memory".to_string(), PathBuf::from("/b")),
        ]);
        assert_eq!(
            from_paths(mixed).unwrap_err().to_string(),
            "invalid saved cgroup paths: a v2 path (key \"\") mixed with v1 controllers"
        );
        assert!(from_paths(HashMap::new()).is_err());
        assert!(
            manager_with_roots(&Roots::V2("/r".into()), Some(Path::new("/../x")), "x").is_err()
        );
    }

    #[test]
    fn detect_matches_mount_type() {
        // on any host: a tmpfs or cgroup2 at /sys/fs/cgroup; never panics
        let v = detect();
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let v2 = mounts.lines().any(|l| {
            l.split(' ').nth(1) == Some(CGROUP_ROOT) && l.split(' ').nth(2) == Some("cgroup2")
        });
        assert_eq!(v == CgroupVersion::V2, v2);
    }
}
