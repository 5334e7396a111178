//! v1 cpuset controller. A fresh v1 cpuset cgroup has empty cpuset.cpus and
//! cpuset.mems, and attaching a task to it fails with ENOSPC: on create we
//! copy both from the nearest parent that has them, as runc does.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::error::{CgroupError, Result};
use crate::fs;

const FILES: [&str; 2] = ["cpuset.cpus", "cpuset.mems"];

/// Fill empty cpuset.cpus / cpuset.mems of `dir` (and of its parents, top
/// down) from the parent. Stops at the hierarchy's mount point (whose parent
/// has no cpuset files).
pub(crate) fn ensure_inherited(dir: &Path) -> Result<()> {
    if !fs::exists(dir, FILES[0]) {
        return Ok(());
    }
    let Some(parent) = dir.parent().filter(|p| fs::exists(p, FILES[0])) else {
        return Ok(());
    };
    ensure_inherited(parent)?;
    for file in FILES {
        if fs::read(dir, file)?.trim().is_empty() {
            let value = fs::read(parent, file)?;
            fs::write(dir, file, value.trim())?;
        }
    }
    Ok(())
}

pub(crate) fn set(dir: Option<&Path>, res: &LinuxResources) -> Result<()> {
    let Some(cpu) = res.cpu() else {
        return Ok(());
    };
    let cpus = cpu.cpus().as_deref().filter(|s| !s.is_empty());
    let mems = cpu.mems().as_deref().filter(|s| !s.is_empty());
    if cpus.is_none() && mems.is_none() {
        return Ok(());
    }
    let Some(dir) = dir else {
        return Err(CgroupError::NotMounted {
            controller: "cpuset",
            what: "cpus or mems",
        });
    };
    if let Some(c) = cpus {
        fs::write(dir, "cpuset.cpus", c)?;
    }
    if let Some(m) = mems {
        fs::write(dir, "cpuset.mems", m)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxCpuBuilder, LinuxResourcesBuilder};
    use std::fs as stdfs;

    #[test]
    fn inherits_from_parents_top_down() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("cpuset");
        let leaf = root.join("a/b");
        stdfs::create_dir_all(&leaf).unwrap();
        stdfs::write(root.join("cpuset.cpus"), "0-1\n").unwrap();
        stdfs::write(root.join("cpuset.mems"), "0\n").unwrap();
        for d in [root.join("a"), leaf.clone()] {
            stdfs::write(d.join("cpuset.cpus"), "\n").unwrap();
            stdfs::write(d.join("cpuset.mems"), "\n").unwrap();
        }
        ensure_inherited(&leaf).unwrap();
        assert_eq!(fs::read(&root.join("a"), "cpuset.cpus").unwrap(), "0-1");
        assert_eq!(fs::read(&leaf, "cpuset.cpus").unwrap(), "0-1");
        assert_eq!(fs::read(&leaf, "cpuset.mems").unwrap(), "0");
    }

    #[test]
    fn writes_cpus_and_mems() {
        let t = tempfile::tempdir().unwrap();
        stdfs::write(t.path().join("cpuset.cpus"), "0-1").unwrap();
        stdfs::write(t.path().join("cpuset.mems"), "0").unwrap();
        let cpu = LinuxCpuBuilder::default().cpus("1").build().unwrap();
        let res = LinuxResourcesBuilder::default().cpu(cpu).build().unwrap();
        set(Some(t.path()), &res).unwrap();
        assert_eq!(fs::read(t.path(), "cpuset.cpus").unwrap(), "1");
        assert_eq!(fs::read(t.path(), "cpuset.mems").unwrap(), "0");
    }
}
