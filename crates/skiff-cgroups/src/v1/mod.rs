//! cgroup v1 (and hybrid) manager: one directory per mounted controller,
//! like runc's libcontainer/cgroups/fs driver.

pub(crate) mod blkio;
pub(crate) mod cpu;
pub(crate) mod cpuset;
pub(crate) mod devices;
pub(crate) mod freezer;
pub(crate) mod hugetlb;
pub(crate) mod memory;
pub(crate) mod net;
pub(crate) mod pids;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use oci_spec::runtime::LinuxResources;

use crate::error::{CgroupError, Result};
use crate::stats::Stats;
use crate::{fs, CgroupManager, CgroupVersion, FreezerState};

/// The v1 hierarchies we join, in runc's order. Named hierarchies are keyed
/// "name=<name>"; only "name=systemd" is joined (as runc does).
pub const CONTROLLERS: &[&str] = &[
    "cpuset",
    "devices",
    "memory",
    "cpu",
    "cpuacct",
    "pids",
    "blkio",
    "hugetlb",
    "net_cls",
    "net_prio",
    "perf_event",
    "freezer",
    "rdma",
    "misc",
    "name=systemd",
];

/// Manager of a container's cgroups on a v1 (or hybrid) host.
#[derive(Debug)]
pub struct V1Manager {
    /// controller → directory (co-mounted controllers share one).
    paths: BTreeMap<String, PathBuf>,
    /// Directories that existed before `create`: `destroy` leaves them.
    preexisting: Mutex<BTreeSet<PathBuf>>,
}

impl V1Manager {
    /// A manager over explicit controller → directory paths.
    pub fn new(paths: BTreeMap<String, PathBuf>) -> Self {
        V1Manager {
            paths,
            preexisting: Mutex::new(BTreeSet::new()),
        }
    }

    fn path(&self, controller: &str) -> Option<&Path> {
        self.paths.get(controller).map(PathBuf::as_path)
    }

    /// Each distinct directory once.
    fn dirs(&self) -> BTreeSet<&Path> {
        self.paths.values().map(PathBuf::as_path).collect()
    }

    fn freezer(&self, what: &'static str) -> Result<&Path> {
        self.path("freezer").ok_or(CgroupError::NotMounted {
            controller: "freezer",
            what,
        })
    }
}

impl CgroupManager for V1Manager {
    fn version(&self) -> CgroupVersion {
        CgroupVersion::V1
    }

    fn create(&self) -> Result<()> {
        for dir in self.dirs() {
            if fs::mkdir_p(dir)?.is_empty() {
                if let Ok(mut pre) = self.preexisting.lock() {
                    pre.insert(dir.to_path_buf());
                }
            }
        }
        if let Some(dir) = self.path("cpuset") {
            cpuset::ensure_inherited(dir)?;
        }
        Ok(())
    }

    fn apply(&self, pid: i32) -> Result<()> {
        for dir in self.dirs() {
            fs::write(dir, "cgroup.procs", pid)?;
        }
        Ok(())
    }

    fn join_self(&self) -> Result<()> {
        for dir in self.dirs() {
            fs::write(dir, "tasks", 0)?;
        }
        Ok(())
    }

    fn set(&self, res: &LinuxResources) -> Result<()> {
        if res.unified().as_ref().is_some_and(|u| !u.is_empty()) {
            return Err(CgroupError::Unsupported {
                feature: "unified resources",
                version: "v1",
            });
        }
        if let Some(mem) = res.memory() {
            memory::validate(mem)?;
        }
        if res.rdma().as_ref().is_some_and(|r| !r.is_empty()) {
            tracing::warn!("rdma limits are not supported yet and ignored");
        }
        cpuset::set(self.path("cpuset"), res)?;
        devices::set(self.path("devices"), res)?;
        memory::set(self.path("memory"), res)?;
        cpu::set(self.path("cpu"), res)?;
        pids::set(self.path("pids"), res)?;
        blkio::set(self.path("blkio"), res)?;
        hugetlb::set(self.path("hugetlb"), res, hugetlb::Flavour::V1)?;
        net::set(self.path("net_cls"), self.path("net_prio"), res)?;
        Ok(())
    }

    fn freeze(&self) -> Result<()> {
        freezer::freeze(self.freezer("pause")?)
    }

    fn thaw(&self) -> Result<()> {
        freezer::thaw(self.freezer("resume")?)
    }

    fn freezer_state(&self) -> Result<FreezerState> {
        match self.path("freezer") {
            Some(dir) => freezer::state(dir),
            None => Ok(FreezerState::Thawed),
        }
    }

    fn pids(&self) -> Result<Vec<i32>> {
        let dir = ["pids", "freezer", "devices", "memory", "cpu"]
            .iter()
            .find_map(|c| self.path(c))
            .or_else(|| self.paths.values().next().map(PathBuf::as_path));
        match dir {
            Some(dir) => fs::procs(dir, true),
            None => Ok(Vec::new()),
        }
    }

    fn stats(&self) -> Result<Stats> {
        let mut s = Stats::default();
        cpu::stats(self.path("cpu"), self.path("cpuacct"), &mut s.cpu)?;
        if let Some(dir) = self.path("memory") {
            memory::stats(dir, &mut s.memory)?;
        }
        if let Some(dir) = self.path("pids") {
            pids::stats(dir, &mut s.pids)?;
        }
        if let Some(dir) = self.path("blkio") {
            blkio::stats(dir, &mut s.blkio)?;
        }
        if let Some(dir) = self.path("hugetlb") {
            hugetlb::stats(dir, hugetlb::Flavour::V1, &mut s.hugetlb)?;
        }
        Ok(s)
    }

    fn kill_all(&self, signal: i32) -> Result<()> {
        // freeze so nothing forks between listing and signalling
        let frozen = self.path("freezer").is_some() && self.freeze().is_ok();
        let res = self.pids().and_then(|p| fs::signal_pids(&p, signal));
        if frozen {
            self.thaw()?;
        }
        res
    }

    fn destroy(&self) -> Result<()> {
        let pre = self
            .preexisting
            .lock()
            .map(|p| p.clone())
            .unwrap_or_default();
        let mut first_err = None;
        for dir in self.dirs() {
            if pre.contains(dir) {
                continue;
            }
            if let Err(e) = fs::remove_cgroup(dir) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn paths(&self) -> HashMap<String, PathBuf> {
        self.paths
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResourcesBuilder};
    use std::collections::HashMap as Map;
    use std::fs as stdfs;

    /// A fake v1 layout: memory, pids and cpu,cpuacct co-mounted.
    fn layout() -> (tempfile::TempDir, V1Manager) {
        let t = tempfile::tempdir().unwrap();
        let mut paths = BTreeMap::new();
        for (ctrl, mount) in [
            ("memory", "memory"),
            ("pids", "pids"),
            ("cpu", "cpu,cpuacct"),
            ("cpuacct", "cpu,cpuacct"),
        ] {
            paths.insert(ctrl.to_string(), t.path().join(mount).join("skiff/c1"));
        }
        (t, V1Manager::new(paths))
    }

    #[test]
    fn create_set_destroy_on_fake_tree() {
        let (t, m) = layout();
        m.create().unwrap();
        let mem = t.path().join("memory/skiff/c1");
        assert!(mem.is_dir() && t.path().join("cpu,cpuacct/skiff/c1").is_dir());
        stdfs::write(mem.join("memory.limit_in_bytes"), "0").unwrap();
        stdfs::write(t.path().join("pids/skiff/c1/pids.max"), "max").unwrap();
        let res = LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(1 << 20)
                    .build()
                    .unwrap(),
            )
            .pids(LinuxPidsBuilder::default().limit(5).build().unwrap())
            .build()
            .unwrap();
        m.set(&res).unwrap();
        assert_eq!(fs::read(&mem, "memory.limit_in_bytes").unwrap(), "1048576");
        assert_eq!(m.paths().len(), 4);
        // unified on v1 is refused before any write
        let uni = LinuxResourcesBuilder::default()
            .unified(Map::from([("memory.high".to_string(), "1".to_string())]))
            .build()
            .unwrap();
        assert_eq!(
            m.set(&uni).unwrap_err().to_string(),
            "unified resources is not supported on cgroup v1"
        );
        // freezer not mounted here
        assert_eq!(
            m.freeze().unwrap_err().to_string(),
            "cgroup controller freezer is not mounted (needed for pause)"
        );
        for f in [
            "memory/skiff/c1/memory.limit_in_bytes",
            "pids/skiff/c1/pids.max",
        ] {
            stdfs::remove_file(t.path().join(f)).unwrap();
        }
        m.destroy().unwrap();
        assert!(!mem.exists());
        assert!(t.path().join("memory/skiff").exists(), "parents are left");
    }

    #[test]
    fn destroy_leaves_preexisting_dirs() {
        let (t, m) = layout();
        stdfs::create_dir_all(t.path().join("memory/skiff/c1")).unwrap();
        m.create().unwrap();
        m.destroy().unwrap();
        assert!(t.path().join("memory/skiff/c1").exists());
        assert!(!t.path().join("pids/skiff/c1").exists());
    }
}
