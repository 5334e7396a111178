//! v1 memory controller: limits (with runc's memory/memsw write ordering),
//! reservation, swappiness, OOM killer, and stats.

use std::path::Path;

use oci_spec::runtime::{LinuxMemory, LinuxResources};

use crate::error::{CgroupError, Result};
use crate::fs::{self, errno};
use crate::stats::{limit_opt, MemoryStats};

const LIMIT: &str = "memory.limit_in_bytes";
const MEMSW: &str = "memory.memsw.limit_in_bytes";

fn wanted(mem: &LinuxMemory) -> bool {
    mem.limit().is_some()
        || mem.swap().is_some()
        || mem.reservation().is_some()
        || mem.swappiness().is_some()
        || mem.disable_oom_killer() == Some(true)
        || mem.kernel_tcp().is_some()
}

/// Validate the memory section, before anything is written.
pub(crate) fn validate(mem: &LinuxMemory) -> Result<()> {
    if let Some(s) = mem.swappiness() {
        if s > 100 {
            return Err(CgroupError::InvalidResource {
                resource: "memory.swappiness",
                reason: format!("{s} is out of range 0-100"),
            });
        }
    }
    if let (Some(l), Some(s)) = (mem.limit(), mem.swap()) {
        if l > 0 && s > 0 && s < l {
            return Err(CgroupError::InvalidResource {
                resource: "memory.swap",
                reason: format!("memory+swap limit {s} is lower than the memory limit {l}"),
            });
        }
    }
    Ok(())
}

pub(crate) fn set(dir: Option<&Path>, res: &LinuxResources) -> Result<()> {
    let Some(mem) = res.memory() else {
        return Ok(());
    };
    if !wanted(mem) {
        return Ok(());
    }
    let Some(dir) = dir else {
        return Err(CgroupError::NotMounted {
            controller: "memory",
            what: "memory limits",
        });
    };
    validate(mem)?;
    #[allow(deprecated)]
    if mem.kernel().is_some() {
        tracing::warn!("kernel memory limit is deprecated and ignored");
    }
    // 0 means "unset", as in runc.
    let limit = mem.limit().filter(|&v| v != 0);
    let swap = mem.swap().filter(|&v| v != 0);
    if let (Some(l), true) = (limit, mem.check_before_update() == Some(true)) {
        if l > 0 {
            let usage = fs::read_u64_opt(dir, "memory.usage_in_bytes")?.unwrap_or(0);
            if usage > l as u64 {
                return Err(CgroupError::InvalidResource {
                    resource: "memory.limit",
                    reason: format!("{l} is below the current usage {usage}"),
                });
            }
        }
    }
    set_memory_and_swap(dir, limit, swap)?;
    if let Some(r) = mem.reservation().filter(|&v| v != 0) {
        fs::write(dir, "memory.soft_limit_in_bytes", r)?;
    }
    if let Some(t) = mem.kernel_tcp().filter(|&v| v != 0) {
        if fs::exists(dir, "memory.kmem.tcp.limit_in_bytes") {
            fs::write(dir, "memory.kmem.tcp.limit_in_bytes", t)?;
        } else {
            tracing::warn!(
                "kernel tcp memory limit ignored: memory.kmem.tcp.limit_in_bytes missing"
            );
        }
    }
    if mem.disable_oom_killer() == Some(true) {
        fs::write(dir, "memory.oom_control", 1)?;
    }
    if let Some(s) = mem.swappiness() {
        fs::write(dir, "memory.swappiness", s)?;
    }
    Ok(())
}

/// Write memory.limit_in_bytes and memory.memsw.limit_in_bytes in an order
/// the kernel accepts (limit ≤ memsw must hold after every write): like
/// runc, swap first when raising (new swap above the current limit, or
/// unlimited), limit first otherwise; on EINVAL/EBUSY of the first write,
/// the other order is tried.
pub(crate) fn set_memory_and_swap(dir: &Path, limit: Option<i64>, swap: Option<i64>) -> Result<()> {
    let mut swap = swap;
    if limit == Some(-1) && swap.is_none() {
        // "memory unlimited" implies "memory+swap unlimited"
        swap = Some(-1);
    }
    if let Some(s) = swap {
        if !fs::exists(dir, MEMSW) {
            if s != -1 && Some(s) != limit {
                tracing::warn!(
                    swap = s,
                    "memory+swap limit ignored: {MEMSW} missing (no swap accounting on this host)"
                );
            }
            swap = None;
        }
    }
    match (limit, swap) {
        (Some(l), Some(s)) => {
            let current = fs::read_u64_opt(dir, LIMIT)?.unwrap_or(u64::MAX);
            if swap_first(current, s) {
                write_pair(dir, (MEMSW, s), (LIMIT, l))
            } else {
                write_pair(dir, (LIMIT, l), (MEMSW, s))
            }
        }
        (Some(l), None) => fs::write(dir, LIMIT, l),
        (None, Some(s)) => fs::write(dir, MEMSW, s),
        (None, None) => Ok(()),
    }
}

/// runc's rule: memsw goes first when it is unlimited or above the limit
/// currently in force (so that the new limit ≤ memsw holds afterwards).
pub(crate) fn swap_first(current_limit: u64, swap: i64) -> bool {
    swap == -1 || i128::from(current_limit) < i128::from(swap)
}

fn write_pair(dir: &Path, first: (&str, i64), second: (&str, i64)) -> Result<()> {
    match fs::write(dir, first.0, first.1) {
        Ok(()) => fs::write(dir, second.0, second.1),
        Err(e) if matches!(errno(&e), Some(libc::EINVAL) | Some(libc::EBUSY)) => {
            tracing::debug!(error = %e, "retrying memory limits in the other order");
            fs::write(dir, second.0, second.1)?;
            fs::write(dir, first.0, first.1)
        }
        Err(e) => Err(e),
    }
}

pub(crate) fn stats(dir: &Path, out: &mut MemoryStats) -> Result<()> {
    out.usage = fs::read_u64_opt(dir, "memory.usage_in_bytes")?.unwrap_or(0);
    out.max_usage = fs::read_u64_opt(dir, "memory.max_usage_in_bytes")?.unwrap_or(0);
    out.limit = fs::read_u64_opt(dir, LIMIT)?.and_then(limit_opt);
    out.failcnt = fs::read_u64_opt(dir, "memory.failcnt")?.unwrap_or(0);
    if let Some(stat) = fs::read_opt(dir, "memory.stat")? {
        out.stat = fs::parse_flat_keyed(&stat).into_iter().collect();
    }
    out.cache = out.stat.get("cache").copied().unwrap_or(0);
    out.rss = out.stat.get("rss").copied().unwrap_or(0);
    if let Some(memsw) = fs::read_u64_opt(dir, "memory.memsw.usage_in_bytes")? {
        out.swap_usage = memsw.saturating_sub(out.usage);
        out.swap_limit = fs::read_u64_opt(dir, MEMSW)?.and_then(limit_opt);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxMemoryBuilder, LinuxResourcesBuilder};
    use std::fs as stdfs;

    fn fake(with_memsw: bool) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        for f in [
            LIMIT,
            "memory.soft_limit_in_bytes",
            "memory.swappiness",
            "memory.oom_control",
        ] {
            stdfs::write(t.path().join(f), "9223372036854771712\n").unwrap();
        }
        if with_memsw {
            stdfs::write(t.path().join(MEMSW), "9223372036854771712\n").unwrap();
        }
        t
    }

    fn res(mem: LinuxMemory) -> LinuxResources {
        LinuxResourcesBuilder::default()
            .memory(mem)
            .build()
            .unwrap()
    }

    #[test]
    fn writes_limit_swap_reservation_swappiness_oom() {
        let t = fake(true);
        let mem = LinuxMemoryBuilder::default()
            .limit(64 << 20)
            .swap(128 << 20)
            .reservation(32 << 20)
            .swappiness(10u64)
            .disable_oom_killer(true)
            .build()
            .unwrap();
        set(Some(t.path()), &res(mem)).unwrap();
        let r = |f| fs::read(t.path(), f).unwrap();
        assert_eq!(r(LIMIT), (64 << 20).to_string());
        assert_eq!(r(MEMSW), (128 << 20).to_string());
        assert_eq!(r("memory.soft_limit_in_bytes"), (32 << 20).to_string());
        assert_eq!(r("memory.swappiness"), "10");
        assert_eq!(r("memory.oom_control"), "1");
    }

    #[test]
    fn unlimited_memory_implies_unlimited_swap() {
        let t = fake(true);
        set_memory_and_swap(t.path(), Some(-1), None).unwrap();
        assert_eq!(fs::read(t.path(), LIMIT).unwrap(), "-1");
        assert_eq!(fs::read(t.path(), MEMSW).unwrap(), "-1");
    }

    #[test]
    fn write_order_follows_runc() {
        // raising: 64M → limit 256M swap 512M: memsw first
        assert!(swap_first(64 << 20, 512 << 20));
        // lowering: 256M → limit 32M swap 48M: limit first
        assert!(!swap_first(256 << 20, 48 << 20));
        // unlimited swap always first
        assert!(swap_first(0, -1));
        // from unlimited (v1's huge value): limit first
        assert!(!swap_first(9223372036854771712, 1 << 30));
    }

    #[test]
    fn missing_memsw_is_skipped() {
        let t = fake(false);
        set_memory_and_swap(t.path(), Some(100), Some(200)).unwrap();
        assert_eq!(fs::read(t.path(), LIMIT).unwrap(), "100");
        assert!(!t.path().join(MEMSW).exists());
    }

    #[test]
    fn swappiness_out_of_range_is_rejected_before_writing() {
        let t = fake(true);
        let mem = LinuxMemoryBuilder::default()
            .limit(100)
            .swappiness(101u64)
            .build()
            .unwrap();
        let err = set(Some(t.path()), &res(mem)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid memory.swappiness: 101 is out of range 0-100"
        );
        assert_eq!(fs::read(t.path(), LIMIT).unwrap(), "9223372036854771712");
    }

    #[test]
    fn swap_below_limit_is_rejected() {
        let t = fake(true);
        let mem = LinuxMemoryBuilder::default()
            .limit(200)
            .swap(100)
            .build()
            .unwrap();
        assert_eq!(
            set(Some(t.path()), &res(mem)).unwrap_err().to_string(),
            "invalid memory.swap: memory+swap limit 100 is lower than the memory limit 200"
        );
    }

    #[test]
    fn not_mounted_is_an_error_only_when_needed() {
        let mem = LinuxMemoryBuilder::default().limit(1).build().unwrap();
        let err = set(None, &res(mem)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cgroup controller memory is not mounted (needed for memory limits)"
        );
        set(None, &res(LinuxMemory::default())).unwrap();
    }

    #[test]
    fn stats_from_files() {
        let t = fake(true);
        stdfs::write(t.path().join("memory.usage_in_bytes"), "1000\n").unwrap();
        stdfs::write(t.path().join("memory.memsw.usage_in_bytes"), "1500\n").unwrap();
        stdfs::write(t.path().join("memory.stat"), "cache 10\nrss 20\nfoo 3\n").unwrap();
        stdfs::write(t.path().join(LIMIT), "4096\n").unwrap();
        let mut s = MemoryStats::default();
        stats(t.path(), &mut s).unwrap();
        assert_eq!(s.usage, 1000);
        assert_eq!(s.swap_usage, 500);
        assert_eq!(s.limit, Some(4096));
        assert_eq!(s.swap_limit, None);
        assert_eq!((s.cache, s.rss), (10, 20));
        assert_eq!(s.stat["foo"], 3);
    }
}
