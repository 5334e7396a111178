//! pids controller (same files on v1 and v2): pids.max and pids.current.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::error::{CgroupError, Result};
use crate::fs;
use crate::stats::{limit_opt, PidsStats};

/// OCI pids.limit → pids.max value: ≤ 0 means "max" (no limit).
pub(crate) fn max_value(limit: i64) -> String {
    if limit > 0 {
        limit.to_string()
    } else {
        "max".to_string()
    }
}

pub(crate) fn set(dir: Option<&Path>, res: &LinuxResources) -> Result<()> {
    let Some(pids) = res.pids() else {
        return Ok(());
    };
    let Some(dir) = dir else {
        return Err(CgroupError::NotMounted {
            controller: "pids",
            what: "pids.limit",
        });
    };
    fs::write(dir, "pids.max", max_value(pids.limit()))
}

pub(crate) fn stats(dir: &Path, out: &mut PidsStats) -> Result<()> {
    out.current = fs::read_u64_opt(dir, "pids.current")?.unwrap_or(0);
    out.limit = fs::read_u64_opt(dir, "pids.max")?.and_then(limit_opt);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxPidsBuilder, LinuxResourcesBuilder};
    use std::fs as stdfs;

    #[test]
    fn limit_values() {
        assert_eq!(max_value(100), "100");
        assert_eq!(max_value(0), "max");
        assert_eq!(max_value(-1), "max");
    }

    #[test]
    fn writes_and_reads() {
        let t = tempfile::tempdir().unwrap();
        stdfs::write(t.path().join("pids.max"), "max\n").unwrap();
        stdfs::write(t.path().join("pids.current"), "3\n").unwrap();
        let res = LinuxResourcesBuilder::default()
            .pids(LinuxPidsBuilder::default().limit(42).build().unwrap())
            .build()
            .unwrap();
        set(Some(t.path()), &res).unwrap();
        let mut s = PidsStats::default();
        stats(t.path(), &mut s).unwrap();
        assert_eq!(
            s,
            PidsStats {
                current: 3,
                limit: Some(42)
            }
        );
        let err = set(None, &res).unwrap_err();
        assert!(err.to_string().contains("pids is not mounted"));
    }
}
