//! v2 memory controller: memory.max, memory.swap.max (converted from OCI's
//! memory+swap), memory.low; stats from memory.current/peak/stat/swap.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::error::{CgroupError, Result};
use crate::fs;
use crate::stats::{limit_opt, MemoryStats};

/// runc's ConvertMemorySwapToCgroupV2Value: OCI memory+swap → swap alone.
/// Inputs use runc's encoding (0 unset, -1 unlimited); so does the result.
pub fn swap_to_v2(swap: i64, memory: i64) -> Result<i64> {
    let invalid = |reason: String| CgroupError::InvalidResource {
        resource: "memory.swap",
        reason,
    };
    if memory == -1 && swap == 0 {
        return Ok(-1);
    }
    if swap == -1 || swap == 0 {
        return Ok(swap);
    }
    if memory == 0 || memory == -1 {
        return Err(invalid(format!(
            "cannot set a memory+swap limit ({swap}) without a memory limit"
        )));
    }
    if memory < 0 {
        return Err(invalid(format!("memory limit {memory} is negative")));
    }
    if swap < memory {
        return Err(invalid(format!(
            "memory+swap limit {swap} is lower than the memory limit {memory}"
        )));
    }
    Ok(swap - memory)
}

/// runc's numToStr: 0 → unset, -1 → "max".
fn num(v: i64) -> Option<String> {
    match v {
        0 => None,
        -1 => Some("max".to_string()),
        v => Some(v.to_string()),
    }
}

pub(crate) fn set(dir: &Path, res: &LinuxResources) -> Result<()> {
    let Some(mem) = res.memory() else {
        return Ok(());
    };
    let limit = mem.limit().unwrap_or(0);
    let swap_in = mem.swap().unwrap_or(0);
    let swap = swap_to_v2(swap_in, limit)?;
    let mut swap_str = num(swap);
    if swap_str.is_none() && swap == 0 && swap_in > 0 {
        // memory and memory+swap equal: no swap at all
        swap_str = Some("0".to_string());
    }
    if mem.check_before_update() == Some(true) && limit > 0 {
        let usage = fs::read_u64_opt(dir, "memory.current")?.unwrap_or(0);
        if usage > limit as u64 {
            return Err(CgroupError::InvalidResource {
                resource: "memory.limit",
                reason: format!("{limit} is below the current usage {usage}"),
            });
        }
    }
    if let Some(s) = swap_str {
        if fs::exists(dir, "memory.swap.max") {
            fs::write(dir, "memory.swap.max", s)?;
        } else if s != "0" && s != "max" {
            tracing::warn!(swap = %s, "swap limit ignored: memory.swap.max missing (no swap accounting on this host)");
        }
    }
    if let Some(l) = num(limit) {
        fs::write(dir, "memory.max", l)?;
    }
    if let Some(r) = mem.reservation().and_then(num) {
        fs::write(dir, "memory.low", r)?;
    }
    #[allow(deprecated)]
    if mem.kernel().is_some() || mem.kernel_tcp().is_some() {
        tracing::warn!("kernel memory limits do not exist on cgroup v2 and are ignored");
    }
    if mem.swappiness().is_some() {
        tracing::warn!("memory swappiness does not exist on cgroup v2 and is ignored");
    }
    if mem.disable_oom_killer() == Some(true) {
        tracing::warn!("disabling the OOM killer is not possible on cgroup v2; ignored");
    }
    Ok(())
}

pub(crate) fn stats(dir: &Path, out: &mut MemoryStats) -> Result<()> {
    out.usage = fs::read_u64_opt(dir, "memory.current")?.unwrap_or(0);
    out.max_usage = fs::read_u64_opt(dir, "memory.peak")?.unwrap_or(0);
    out.limit = fs::read_u64_opt(dir, "memory.max")?.and_then(limit_opt);
    if let Some(stat) = fs::read_opt(dir, "memory.stat")? {
        out.stat = fs::parse_flat_keyed(&stat).into_iter().collect();
    }
    out.cache = out.stat.get("file").copied().unwrap_or(0);
    out.rss = out.stat.get("anon").copied().unwrap_or(0);
    out.swap_usage = fs::read_u64_opt(dir, "memory.swap.current")?.unwrap_or(0);
    out.swap_limit = fs::read_u64_opt(dir, "memory.swap.max")?.and_then(limit_opt);
    if let Some(ev) = fs::read_opt(dir, "memory.events")? {
        out.failcnt = fs::parse_flat_keyed(&ev)
            .into_iter()
            .find(|(k, _)| k == "max")
            .map_or(0, |(_, v)| v);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxMemoryBuilder, LinuxResourcesBuilder};
    use std::fs as stdfs;

    #[test]
    fn swap_conversion_matches_runc() {
        assert_eq!(swap_to_v2(0, -1).unwrap(), -1);
        assert_eq!(swap_to_v2(-1, 100).unwrap(), -1);
        assert_eq!(swap_to_v2(0, 100).unwrap(), 0);
        assert_eq!(swap_to_v2(300, 100).unwrap(), 200);
        assert_eq!(swap_to_v2(100, 100).unwrap(), 0);
        assert_eq!(
            swap_to_v2(50, 100).unwrap_err().to_string(),
            "invalid memory.swap: memory+swap limit 50 is lower than the memory limit 100"
        );
        assert!(swap_to_v2(50, 0).is_err());
    }

    fn fake() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        for f in ["memory.max", "memory.swap.max", "memory.low"] {
            stdfs::write(t.path().join(f), "max\n").unwrap();
        }
        t
    }

    fn write(limit: i64, swap: Option<i64>) -> tempfile::TempDir {
        let t = fake();
        let mut b = LinuxMemoryBuilder::default()
            .limit(limit)
            .reservation(1024i64);
        if let Some(s) = swap {
            b = b.swap(s);
        }
        let res = LinuxResourcesBuilder::default()
            .memory(b.build().unwrap())
            .build()
            .unwrap();
        set(t.path(), &res).unwrap();
        t
    }

    #[test]
    fn writes_v2_files() {
        let t = write(64 << 20, Some(128 << 20));
        let r = |f| fs::read(t.path(), f).unwrap();
        assert_eq!(r("memory.max"), (64 << 20).to_string());
        assert_eq!(r("memory.swap.max"), (64 << 20).to_string());
        assert_eq!(r("memory.low"), "1024");
        // equal: swap disabled
        let t = write(100, Some(100));
        assert_eq!(fs::read(t.path(), "memory.swap.max").unwrap(), "0");
        // unlimited memory, no swap given: both max
        let t = write(-1, None);
        assert_eq!(fs::read(t.path(), "memory.max").unwrap(), "max");
        assert_eq!(fs::read(t.path(), "memory.swap.max").unwrap(), "max");
        // limit alone leaves swap untouched
        let t = write(100, None);
        assert_eq!(fs::read(t.path(), "memory.swap.max").unwrap(), "max");
    }

    #[test]
    fn v2_stats() {
        let t = fake();
        stdfs::write(t.path().join("memory.current"), "4096\n").unwrap();
        stdfs::write(t.path().join("memory.stat"), "anon 1000\nfile 2000\n").unwrap();
        stdfs::write(
            t.path().join("memory.events"),
            "low 0\nhigh 0\nmax 7\noom 1\n",
        )
        .unwrap();
        let mut s = MemoryStats::default();
        stats(t.path(), &mut s).unwrap();
        assert_eq!((s.usage, s.rss, s.cache, s.failcnt), (4096, 1000, 2000, 7));
        assert_eq!(s.limit, None);
    }
}
