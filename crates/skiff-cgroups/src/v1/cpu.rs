//! v1 cpu and cpuacct controllers: shares, CFS quota/period/burst, idle,
//! realtime runtime/period; usage and throttling stats.

use std::path::Path;

use oci_spec::runtime::{LinuxCpu, LinuxResources};

use crate::error::{CgroupError, Result};
use crate::fs::{self, errno};
use crate::stats::CpuStats;

fn wanted(cpu: &LinuxCpu) -> bool {
    cpu.shares().is_some_and(|v| v != 0)
        || cpu.quota().is_some_and(|v| v != 0)
        || cpu.period().is_some_and(|v| v != 0)
        || cpu.burst().is_some()
        || cpu.idle().is_some()
        || cpu.realtime_runtime().is_some_and(|v| v != 0)
        || cpu.realtime_period().is_some_and(|v| v != 0)
}

pub(crate) fn set(dir: Option<&Path>, res: &LinuxResources) -> Result<()> {
    let Some(cpu) = res.cpu() else {
        return Ok(());
    };
    if !wanted(cpu) {
        return Ok(());
    }
    let Some(dir) = dir else {
        return Err(CgroupError::NotMounted {
            controller: "cpu",
            what: "cpu shares, quota or realtime limits",
        });
    };
    // realtime first: rt_runtime of the parent must allow ours
    if let Some(p) = cpu.realtime_period().filter(|&v| v != 0) {
        fs::write(dir, "cpu.rt_period_us", p)?;
    }
    if let Some(r) = cpu.realtime_runtime().filter(|&v| v != 0) {
        fs::write(dir, "cpu.rt_runtime_us", r)?;
    }
    if let Some(shares) = cpu.shares().filter(|&v| v != 0) {
        fs::write(dir, "cpu.shares", shares)?;
        // the kernel clamps silently: report it like runc does
        if let Some(got) = fs::read_u64_opt(dir, "cpu.shares")? {
            if got != shares {
                return Err(CgroupError::InvalidResource {
                    resource: "cpu.shares",
                    reason: format!("{shares} is out of range, the kernel set {got}"),
                });
            }
        }
    }
    set_quota_period(dir, cpu.quota(), cpu.period())?;
    if let Some(b) = cpu.burst() {
        fs::write(dir, "cpu.cfs_burst_us", b)?;
    }
    if let Some(i) = cpu.idle() {
        fs::write(dir, "cpu.idle", i)?;
    }
    Ok(())
}

/// runc's order: period first; if the kernel rejects it with EINVAL
/// (old quota / new period would exceed the parent's limit) and a quota is
/// being set too, write the quota and then the period again.
pub(crate) fn set_quota_period(dir: &Path, quota: Option<i64>, period: Option<u64>) -> Result<()> {
    let quota = quota.filter(|&v| v != 0);
    let period = period.filter(|&v| v != 0);
    let mut retry_period = None;
    if let Some(p) = period {
        if let Err(e) = fs::write(dir, "cpu.cfs_period_us", p) {
            if errno(&e) != Some(libc::EINVAL) || quota.is_none() {
                return Err(e);
            }
            retry_period = Some(p);
        }
    }
    if let Some(q) = quota {
        // any negative quota means "no limit"
        fs::write(dir, "cpu.cfs_quota_us", if q < 0 { -1 } else { q })?;
        if let Some(p) = retry_period {
            fs::write(dir, "cpu.cfs_period_us", p)?;
        }
    }
    Ok(())
}

/// Throttling from cpu.stat (cpu dir), usage from cpuacct (may be the same
/// dir when co-mounted).
pub(crate) fn stats(cpu: Option<&Path>, cpuacct: Option<&Path>, out: &mut CpuStats) -> Result<()> {
    if let Some(dir) = cpu {
        if let Some(stat) = fs::read_opt(dir, "cpu.stat")? {
            for (k, v) in fs::parse_flat_keyed(&stat) {
                match k.as_str() {
                    "nr_periods" => out.throttling.periods = v,
                    "nr_throttled" => out.throttling.throttled_periods = v,
                    "throttled_time" => out.throttling.throttled_time_ns = v,
                    _ => {}
                }
            }
        }
    }
    let Some(dir) = cpuacct else {
        return Ok(());
    };
    out.usage.total_ns = fs::read_u64_opt(dir, "cpuacct.usage")?.unwrap_or(0);
    if let Some(percpu) = fs::read_opt(dir, "cpuacct.usage_percpu")? {
        out.usage.per_cpu_ns = percpu
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
    }
    match (
        fs::read_u64_opt(dir, "cpuacct.usage_user")?,
        fs::read_u64_opt(dir, "cpuacct.usage_sys")?,
    ) {
        (Some(user), Some(sys)) => {
            out.usage.user_ns = user;
            out.usage.system_ns = sys;
        }
        _ => {
            // cpuacct.stat is in USER_HZ ticks
            if let Some(stat) = fs::read_opt(dir, "cpuacct.stat")? {
                let hz = rustix::param::clock_ticks_per_second().max(1);
                let ns_per_tick = 1_000_000_000 / hz;
                for (k, v) in fs::parse_flat_keyed(&stat) {
                    match k.as_str() {
                        "user" => out.usage.user_ns = v * ns_per_tick,
                        "system" => out.usage.system_ns = v * ns_per_tick,
                        _ => {}
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxCpuBuilder, LinuxResourcesBuilder};
    use std::fs as stdfs;

    fn fake() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        for f in [
            "cpu.shares",
            "cpu.cfs_quota_us",
            "cpu.cfs_period_us",
            "cpu.rt_period_us",
            "cpu.rt_runtime_us",
            "cpu.cfs_burst_us",
            "cpu.idle",
        ] {
            stdfs::write(t.path().join(f), "0\n").unwrap();
        }
        t
    }

    #[test]
    fn writes_all_cpu_files() {
        let t = fake();
        let cpu = LinuxCpuBuilder::default()
            .shares(512u64)
            .quota(50_000i64)
            .period(100_000u64)
            .realtime_period(1_000_000u64)
            .realtime_runtime(950_000i64)
            .idle(1i64)
            .build()
            .unwrap();
        let res = LinuxResourcesBuilder::default().cpu(cpu).build().unwrap();
        set(Some(t.path()), &res).unwrap();
        let r = |f| fs::read(t.path(), f).unwrap();
        assert_eq!(r("cpu.shares"), "512");
        assert_eq!(r("cpu.cfs_quota_us"), "50000");
        assert_eq!(r("cpu.cfs_period_us"), "100000");
        assert_eq!(r("cpu.rt_period_us"), "1000000");
        assert_eq!(r("cpu.rt_runtime_us"), "950000");
        assert_eq!(r("cpu.idle"), "1");
        assert_eq!(r("cpu.cfs_burst_us"), "0");
    }

    #[test]
    fn negative_quota_is_unlimited_and_zero_is_unset() {
        let t = fake();
        set_quota_period(t.path(), Some(-5), None).unwrap();
        assert_eq!(fs::read(t.path(), "cpu.cfs_quota_us").unwrap(), "-1");
        set_quota_period(t.path(), Some(0), Some(0)).unwrap();
        assert_eq!(fs::read(t.path(), "cpu.cfs_quota_us").unwrap(), "-1");
    }

    #[test]
    fn cpuacct_stats() {
        let t = tempfile::tempdir().unwrap();
        stdfs::write(t.path().join("cpuacct.usage"), "3000\n").unwrap();
        stdfs::write(t.path().join("cpuacct.usage_percpu"), "1000 2000 \n").unwrap();
        stdfs::write(t.path().join("cpuacct.usage_user"), "1200\n").unwrap();
        stdfs::write(t.path().join("cpuacct.usage_sys"), "1800\n").unwrap();
        stdfs::write(
            t.path().join("cpu.stat"),
            "nr_periods 10\nnr_throttled 3\nthrottled_time 777\n",
        )
        .unwrap();
        let mut s = CpuStats::default();
        stats(Some(t.path()), Some(t.path()), &mut s).unwrap();
        assert_eq!(s.usage.total_ns, 3000);
        assert_eq!(s.usage.per_cpu_ns, vec![1000, 2000]);
        assert_eq!((s.usage.user_ns, s.usage.system_ns), (1200, 1800));
        assert_eq!(s.throttling.throttled_periods, 3);
        assert_eq!(s.throttling.throttled_time_ns, 777);
    }
}
