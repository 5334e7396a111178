//! cgroup v2 manager: one directory in the unified hierarchy, like runc's
//! libcontainer/cgroups/fs2 driver. Device rules become a BPF program
//! attached to the directory (see `devices`).

pub(crate) mod bpf;
pub(crate) mod cpu;
pub(crate) mod cpuset;
pub(crate) mod devices;
pub(crate) mod freezer;
pub(crate) mod io;
pub(crate) mod memory;
pub(crate) mod unified;

pub use cpu::{cpu_max, shares_to_weight};
pub use io::blkio_weight_to_io_weight;
pub use memory::swap_to_v2;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use oci_spec::runtime::LinuxResources;

use crate::error::Result;
use crate::stats::Stats;
use crate::v1::{hugetlb, pids};
use crate::{fs, CgroupManager, CgroupVersion, FreezerState};

/// The highest ancestor of `dir` (or `dir` itself) that still has a
/// cgroup.controllers file: the cgroup2 mount point.
pub fn find_root(dir: &Path) -> PathBuf {
    let mut root = dir.to_path_buf();
    let mut cur = dir.parent();
    while let Some(p) = cur {
        if fs::exists(p, "cgroup.controllers") {
            root = p.to_path_buf();
            cur = p.parent();
        } else {
            break;
        }
    }
    root
}

/// Manager of a container's cgroup on a v2 host.
#[derive(Debug)]
pub struct V2Manager {
    root: PathBuf,
    dir: PathBuf,
    /// The directory existed before `create`: `destroy` leaves it.
    preexisting: Mutex<bool>,
}

impl V2Manager {
    /// `root` is the cgroup2 mount point, `dir` the container's cgroup under it.
    pub fn new(root: PathBuf, dir: PathBuf) -> Self {
        V2Manager {
            root,
            dir,
            preexisting: Mutex::new(false),
        }
    }

    /// The container's cgroup directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Enable every controller listed in `dir/cgroup.controllers` for its
/// children. All at once first; on failure one by one, warning about those
/// the kernel refuses (e.g. EBUSY: processes in a non-root cgroup).
fn enable_controllers(dir: &Path) -> Result<()> {
    let Some(avail) = fs::read_opt(dir, "cgroup.controllers")? else {
        return Ok(());
    };
    let enabled = fs::read_opt(dir, "cgroup.subtree_control")?.unwrap_or_default();
    let enabled: Vec<&str> = enabled.split_whitespace().collect();
    let missing: Vec<&str> = avail
        .split_whitespace()
        .filter(|c| !enabled.contains(c))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let all = missing
        .iter()
        .map(|c| format!("+{c}"))
        .collect::<Vec<_>>()
        .join(" ");
    if fs::write(dir, "cgroup.subtree_control", &all).is_ok() {
        return Ok(());
    }
    for c in missing {
        if let Err(e) = fs::write(dir, "cgroup.subtree_control", format!("+{c}")) {
            tracing::warn!(error = %e, "cannot enable cgroup controller {c}");
        }
    }
    Ok(())
}

impl CgroupManager for V2Manager {
    fn version(&self) -> CgroupVersion {
        CgroupVersion::V2
    }

    fn create(&self) -> Result<()> {
        let existed = self.dir.is_dir();
        let rel = self.dir.strip_prefix(&self.root).unwrap_or(Path::new(""));
        let mut cur = self.root.clone();
        for comp in rel.components() {
            enable_controllers(&cur)?;
            cur.push(comp);
            fs::mkdir_p(&cur)?;
        }
        if existed {
            if let Ok(mut pre) = self.preexisting.lock() {
                *pre = true;
            }
        }
        Ok(())
    }

    fn apply(&self, pid: i32) -> Result<()> {
        fs::write(&self.dir, "cgroup.procs", pid)
    }

    fn set(&self, res: &LinuxResources) -> Result<()> {
        if res.network().is_some() {
            tracing::warn!("network classID/priorities do not exist on cgroup v2 and are ignored");
        }
        if res.rdma().as_ref().is_some_and(|r| !r.is_empty()) {
            tracing::warn!("rdma limits are not supported yet and ignored");
        }
        cpuset::set(&self.dir, res)?;
        cpu::set(&self.dir, res)?;
        memory::set(&self.dir, res)?;
        pids::set(Some(&self.dir), res)?;
        io::set(&self.dir, res)?;
        hugetlb::set(Some(&self.dir), res, hugetlb::Flavour::V2)?;
        devices::set(&self.dir, res)?;
        unified::set(&self.dir, res)?;
        Ok(())
    }

    fn freeze(&self) -> Result<()> {
        freezer::freeze(&self.dir)
    }

    fn thaw(&self) -> Result<()> {
        freezer::thaw(&self.dir)
    }

    fn freezer_state(&self) -> Result<FreezerState> {
        freezer::state(&self.dir)
    }

    fn pids(&self) -> Result<Vec<i32>> {
        fs::procs(&self.dir, true)
    }

    fn stats(&self) -> Result<Stats> {
        let mut s = Stats::default();
        cpu::stats(&self.dir, &mut s.cpu)?;
        memory::stats(&self.dir, &mut s.memory)?;
        if fs::exists(&self.dir, "pids.current") {
            pids::stats(&self.dir, &mut s.pids)?;
        }
        io::stats(&self.dir, &mut s.blkio)?;
        hugetlb::stats(&self.dir, hugetlb::Flavour::V2, &mut s.hugetlb)?;
        Ok(s)
    }

    fn kill_all(&self, signal: i32) -> Result<()> {
        if signal == libc::SIGKILL && fs::exists(&self.dir, "cgroup.kill") {
            return fs::write(&self.dir, "cgroup.kill", 1);
        }
        let frozen = fs::exists(&self.dir, "cgroup.freeze") && self.freeze().is_ok();
        let res = self.pids().and_then(|p| fs::signal_pids(&p, signal));
        if frozen {
            self.thaw()?;
        }
        res
    }

    fn destroy(&self) -> Result<()> {
        if self.preexisting.lock().map(|p| *p).unwrap_or(false) {
            return Ok(());
        }
        fs::remove_cgroup(&self.dir)
    }

    fn paths(&self) -> HashMap<String, PathBuf> {
        HashMap::from([(String::new(), self.dir.clone())])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxPidsBuilder, LinuxResourcesBuilder};
    use std::fs as stdfs;

    #[test]
    fn create_enables_controllers_down_the_tree() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().to_path_buf();
        stdfs::write(root.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        stdfs::write(root.join("cgroup.subtree_control"), "cpu\n").unwrap();
        // pre-create the middle level with its files, as the kernel would
        stdfs::create_dir(root.join("skiff")).unwrap();
        stdfs::write(root.join("skiff/cgroup.controllers"), "cpu memory pids\n").unwrap();
        stdfs::write(root.join("skiff/cgroup.subtree_control"), "").unwrap();
        let m = V2Manager::new(root.clone(), root.join("skiff/c1"));
        m.create().unwrap();
        assert!(root.join("skiff/c1").is_dir());
        assert_eq!(
            fs::read(&root, "cgroup.subtree_control").unwrap(),
            "+memory +pids"
        );
        assert_eq!(
            fs::read(&root.join("skiff"), "cgroup.subtree_control").unwrap(),
            "+cpu +memory +pids"
        );
        assert_eq!(find_root(&root.join("skiff/c1")), root);
        stdfs::write(root.join("skiff/c1/pids.max"), "max").unwrap();
        let res = LinuxResourcesBuilder::default()
            .pids(LinuxPidsBuilder::default().limit(7).build().unwrap())
            .build()
            .unwrap();
        m.set(&res).unwrap();
        assert_eq!(fs::read(&root.join("skiff/c1"), "pids.max").unwrap(), "7");
        stdfs::remove_file(root.join("skiff/c1/pids.max")).unwrap(); // fake file
        m.destroy().unwrap();
        assert!(!root.join("skiff/c1").exists());
        assert!(root.join("skiff").exists());
    }
}
