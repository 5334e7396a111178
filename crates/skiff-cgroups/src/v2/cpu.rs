//! v2 cpu controller: cpu.weight (from shares), cpu.max, cpu.max.burst,
//! cpu.idle; stats from cpu.stat.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::error::{CgroupError, Result};
use crate::fs;
use crate::stats::CpuStats;

/// runc's ConvertCPUSharesToCgroupV2Value: [2, 262144] → [1, 10000]; 0 → unset.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.saturating_sub(2) * 9999) / 262142
}

/// cpu.max content: "<quota|max> [period]"; None when neither is set.
pub fn cpu_max(quota: Option<i64>, period: Option<u64>) -> Option<String> {
    let quota = quota.unwrap_or(0);
    let period = period.unwrap_or(0);
    if quota == 0 && period == 0 {
        return None;
    }
    let mut s = if quota > 0 {
        quota.to_string()
    } else {
        "max".to_string()
    };
    if period != 0 {
        s.push(' ');
        s.push_str(&period.to_string());
    }
    Some(s)
}

pub(crate) fn set(dir: &Path, res: &LinuxResources) -> Result<()> {
    let Some(cpu) = res.cpu() else {
        return Ok(());
    };
    if cpu.realtime_runtime().is_some_and(|v| v != 0)
        || cpu.realtime_period().is_some_and(|v| v != 0)
    {
        return Err(CgroupError::Unsupported {
            feature: "realtime cpu scheduling (realtimeRuntime/realtimePeriod)",
            version: "v2",
        });
    }
    if let Some(shares) = cpu.shares().filter(|&s| s != 0) {
        fs::write(dir, "cpu.weight", shares_to_weight(shares))?;
    }
    if let Some(max) = cpu_max(cpu.quota(), cpu.period()) {
        fs::write(dir, "cpu.max", max)?;
    }
    if let Some(b) = cpu.burst() {
        fs::write(dir, "cpu.max.burst", b)?;
    }
    if let Some(i) = cpu.idle() {
        fs::write(dir, "cpu.idle", i)?;
    }
    Ok(())
}

pub(crate) fn stats(dir: &Path, out: &mut CpuStats) -> Result<()> {
    let Some(stat) = fs::read_opt(dir, "cpu.stat")? else {
        return Ok(());
    };
    for (k, v) in fs::parse_flat_keyed(&stat) {
        match k.as_str() {
            "usage_usec" => out.usage.total_ns = v * 1000,
            "user_usec" => out.usage.user_ns = v * 1000,
            "system_usec" => out.usage.system_ns = v * 1000,
            "nr_periods" => out.throttling.periods = v,
            "nr_throttled" => out.throttling.throttled_periods = v,
            "throttled_usec" => out.throttling.throttled_time_ns = v * 1000,
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxCpuBuilder, LinuxResourcesBuilder};
    use std::fs as stdfs;

    #[test]
    fn conversions() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262144), 10000);
        assert_eq!(cpu_max(Some(50000), Some(100000)).unwrap(), "50000 100000");
        assert_eq!(cpu_max(Some(-1), None).unwrap(), "max");
        assert_eq!(cpu_max(None, Some(20000)).unwrap(), "max 20000");
        assert_eq!(cpu_max(Some(0), Some(0)), None);
    }

    #[test]
    fn writes_and_rejects_realtime() {
        let t = tempfile::tempdir().unwrap();
        for f in ["cpu.weight", "cpu.max", "cpu.max.burst"] {
            stdfs::write(t.path().join(f), "").unwrap();
        }
        let cpu = LinuxCpuBuilder::default()
            .shares(1024u64)
            .quota(20000i64)
            .period(100000u64)
            .burst(1000u64)
            .build()
            .unwrap();
        set(
            t.path(),
            &LinuxResourcesBuilder::default().cpu(cpu).build().unwrap(),
        )
        .unwrap();
        assert_eq!(fs::read(t.path(), "cpu.weight").unwrap(), "39");
        assert_eq!(fs::read(t.path(), "cpu.max").unwrap(), "20000 100000");
        assert_eq!(fs::read(t.path(), "cpu.max.burst").unwrap(), "1000");
        let rt = LinuxCpuBuilder::default()
            .realtime_runtime(1000i64)
            .build()
            .unwrap();
        let err = set(
            t.path(),
            &LinuxResourcesBuilder::default().cpu(rt).build().unwrap(),
        )
        .unwrap_err();
        assert!(err.to_string().ends_with("is not supported on cgroup v2"));
    }

    #[test]
    fn stat_in_ns() {
        let t = tempfile::tempdir().unwrap();
        stdfs::write(
            t.path().join("cpu.stat"),
            "usage_usec 10\nuser_usec 6\nsystem_usec 4\nnr_periods 2\nnr_throttled 1\nthrottled_usec 5\n",
        )
        .unwrap();
        let mut s = CpuStats::default();
        stats(t.path(), &mut s).unwrap();
        assert_eq!(
            (s.usage.total_ns, s.usage.user_ns, s.usage.system_ns),
            (10000, 6000, 4000)
        );
        assert_eq!(s.throttling.throttled_time_ns, 5000);
    }
}
