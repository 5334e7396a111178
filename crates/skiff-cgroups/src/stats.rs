//! Resource usage of a cgroup, the same shape on v1 and v2 (serialisable for
//! `skiff runtime events --stats` and the Docker stats API).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Everything `CgroupManager::stats` reports. Fields a host cannot provide
/// stay at their default (0 / empty / None).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub cpu: CpuStats,
    pub memory: MemoryStats,
    pub pids: PidsStats,
    pub blkio: BlkioStats,
    /// Page size ("2MB", "1GB") → usage.
    pub hugetlb: BTreeMap<String, HugetlbStats>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuStats {
    pub usage: CpuUsage,
    pub throttling: ThrottlingData,
}

/// CPU time in nanoseconds.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuUsage {
    pub total_ns: u64,
    pub user_ns: u64,
    pub system_ns: u64,
    /// Per-CPU total (v1 cpuacct.usage_percpu only; empty on v2).
    pub per_cpu_ns: Vec<u64>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThrottlingData {
    pub periods: u64,
    pub throttled_periods: u64,
    pub throttled_time_ns: u64,
}

/// Memory figures in bytes.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryStats {
    pub usage: u64,
    /// Peak usage (v1 memory.max_usage_in_bytes, v2 memory.peak when present).
    pub max_usage: u64,
    /// None = unlimited.
    pub limit: Option<u64>,
    /// Page cache (v1 "cache", v2 "file").
    pub cache: u64,
    /// Anonymous memory (v1 "rss", v2 "anon").
    pub rss: u64,
    /// Swap in use (v1: memsw usage − usage; v2: memory.swap.current).
    pub swap_usage: u64,
    /// v1: memory+swap limit; v2: swap-only limit; None = unlimited/unknown.
    pub swap_limit: Option<u64>,
    pub failcnt: u64,
    /// The raw memory.stat map.
    pub stat: BTreeMap<String, u64>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PidsStats {
    pub current: u64,
    /// None = "max".
    pub limit: Option<u64>,
}

/// One device counter: "8:0 Read 4096".
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlkioEntry {
    pub major: u64,
    pub minor: u64,
    /// "Read", "Write", "Sync", "Async", "Discard", "Total" (v1) or
    /// "Read", "Write", "Discard" (v2).
    pub op: String,
    pub value: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlkioStats {
    pub io_service_bytes: Vec<BlkioEntry>,
    pub io_serviced: Vec<BlkioEntry>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HugetlbStats {
    pub usage: u64,
    pub max_usage: u64,
    pub failcnt: u64,
}

/// Values at or above this are v1's "unlimited" (PAGE_COUNTER_MAX in bytes).
const V1_UNLIMITED: u64 = 0x7FFF_FFFF_FFFF_F000;

/// Map a raw limit to Option: u64::MAX ("max") and v1's huge value → None.
pub(crate) fn limit_opt(v: u64) -> Option<u64> {
    if v >= V1_UNLIMITED {
        None
    } else {
        Some(v)
    }
}

/// Parse v1 blkio files ("8:0 Read 4096" lines; "Total N" summary skipped).
pub(crate) fn parse_blkio_v1(content: &str) -> Vec<BlkioEntry> {
    content
        .lines()
        .filter_map(|line| {
            let mut it = line.split_whitespace();
            let dev = it.next()?;
            let op = it.next()?;
            let value = it.next()?.parse().ok()?;
            let (major, minor) = dev.split_once(':')?;
            Some(BlkioEntry {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                op: op.to_string(),
                value,
            })
        })
        .collect()
}

/// Parse v2 io.stat ("8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=5 dios=6").
pub(crate) fn parse_io_stat(content: &str) -> BlkioStats {
    let mut out = BlkioStats::default();
    for line in content.lines() {
        let mut it = line.split_whitespace();
        let Some((major, minor)) = it.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse::<u64>(), minor.parse::<u64>()) else {
            continue;
        };
        for kv in it {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = v.parse::<u64>() else {
                continue;
            };
            let (list, op) = match k {
                "rbytes" => (&mut out.io_service_bytes, "Read"),
                "wbytes" => (&mut out.io_service_bytes, "Write"),
                "dbytes" => (&mut out.io_service_bytes, "Discard"),
                "rios" => (&mut out.io_serviced, "Read"),
                "wios" => (&mut out.io_serviced, "Write"),
                "dios" => (&mut out.io_serviced, "Discard"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.to_string(),
                value,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blkio_v1_lines() {
        let e = parse_blkio_v1("8:0 Read 4096\n8:0 Write 10\nTotal 4106\n");
        assert_eq!(e.len(), 2);
        assert_eq!(
            e[0],
            BlkioEntry {
                major: 8,
                minor: 0,
                op: "Read".into(),
                value: 4096
            }
        );
    }

    #[test]
    fn io_stat_v2() {
        let s = parse_io_stat("259:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n");
        assert_eq!(s.io_service_bytes.len(), 3);
        assert_eq!(s.io_service_bytes[1].op, "Write");
        assert_eq!(s.io_service_bytes[1].value, 200);
        assert_eq!(s.io_serviced[0].major, 259);
        assert_eq!(s.io_serviced[0].value, 1);
    }

    #[test]
    fn unlimited_maps_to_none() {
        assert_eq!(limit_opt(9223372036854771712), None);
        assert_eq!(limit_opt(u64::MAX), None);
        assert_eq!(limit_opt(64 << 20), Some(64 << 20));
    }
}
