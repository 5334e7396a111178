//! v2 cpuset controller: cpuset.cpus / cpuset.mems (an empty v2 cpuset
//! inherits its parent's effective set, so nothing to copy on create).

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::error::Result;
use crate::fs;

pub(crate) fn set(dir: &Path, res: &LinuxResources) -> Result<()> {
    let Some(cpu) = res.cpu() else {
        return Ok(());
    };
    if let Some(c) = cpu.cpus().as_deref().filter(|s| !s.is_empty()) {
        fs::write(dir, "cpuset.cpus", c)?;
    }
    if let Some(m) = cpu.mems().as_deref().filter(|s| !s.is_empty()) {
        fs::write(dir, "cpuset.mems", m)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxCpuBuilder, LinuxResourcesBuilder};

    #[test]
    fn writes() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("cpuset.cpus"), "").unwrap();
        std::fs::write(t.path().join("cpuset.mems"), "").unwrap();
        let cpu = LinuxCpuBuilder::default()
            .cpus("0-1")
            .mems("0")
            .build()
            .unwrap();
        set(
            t.path(),
            &LinuxResourcesBuilder::default().cpu(cpu).build().unwrap(),
        )
        .unwrap();
        assert_eq!(fs::read(t.path(), "cpuset.cpus").unwrap(), "0-1");
        assert_eq!(fs::read(t.path(), "cpuset.mems").unwrap(), "0");
    }
}
