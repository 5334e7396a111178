//! hugetlb controller, v1 and v2 flavours of the file names:
//! v1 hugetlb.<size>.limit_in_bytes / usage_in_bytes / max_usage_in_bytes /
//! failcnt; v2 hugetlb.<size>.max / current / events ("max N").

use std::collections::BTreeMap;
use std::fs as stdfs;
use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::error::{CgroupError, Result};
use crate::fs;
use crate::stats::HugetlbStats;

/// Which file names to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavour {
    V1,
    V2,
}

impl Flavour {
    fn limit_file(self, size: &str) -> String {
        match self {
            Flavour::V1 => format!("hugetlb.{size}.limit_in_bytes"),
            Flavour::V2 => format!("hugetlb.{size}.max"),
        }
    }
}

/// "2MB", "1GB", "64KB": digits then K/M/G then B.
fn valid_size(size: &str) -> bool {
    let Some(num) = size
        .strip_suffix("KB")
        .or_else(|| size.strip_suffix("MB"))
        .or_else(|| size.strip_suffix("GB"))
    else {
        return false;
    };
    !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit())
}

pub(crate) fn set(dir: Option<&Path>, res: &LinuxResources, flavour: Flavour) -> Result<()> {
    let Some(limits) = res.hugepage_limits().as_deref().filter(|l| !l.is_empty()) else {
        return Ok(());
    };
    let Some(dir) = dir else {
        return Err(CgroupError::NotMounted {
            controller: "hugetlb",
            what: "hugepage limits",
        });
    };
    for l in limits {
        let size = l.page_size();
        if !valid_size(size) {
            return Err(CgroupError::InvalidResource {
                resource: "hugepageLimits",
                reason: format!("page size {size:?} is not of the form <n>KB/MB/GB"),
            });
        }
        let file = flavour.limit_file(size);
        if !fs::exists(dir, &file) {
            return Err(CgroupError::InvalidResource {
                resource: "hugepageLimits",
                reason: format!("page size {size} is not supported by this host ({file} missing)"),
            });
        }
        let value = if l.limit() < 0 && flavour == Flavour::V2 {
            "max".to_string()
        } else {
            l.limit().to_string()
        };
        fs::write(dir, &file, value)?;
    }
    Ok(())
}

/// Page sizes present in a cgroup dir, from the names of its limit files.
fn sizes(dir: &Path, flavour: Flavour) -> Vec<String> {
    let suffix = match flavour {
        Flavour::V1 => ".limit_in_bytes",
        Flavour::V2 => ".max",
    };
    let Ok(entries) = stdfs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let size = name.strip_prefix("hugetlb.")?.strip_suffix(suffix)?;
            valid_size(size).then(|| size.to_string())
        })
        .collect();
    out.sort();
    out
}

pub(crate) fn stats(
    dir: &Path,
    flavour: Flavour,
    out: &mut BTreeMap<String, HugetlbStats>,
) -> Result<()> {
    for size in sizes(dir, flavour) {
        let mut s = HugetlbStats::default();
        match flavour {
            Flavour::V1 => {
                let f = |n: &str| format!("hugetlb.{size}.{n}");
                s.usage = fs::read_u64_opt(dir, &f("usage_in_bytes"))?.unwrap_or(0);
                s.max_usage = fs::read_u64_opt(dir, &f("max_usage_in_bytes"))?.unwrap_or(0);
                s.failcnt = fs::read_u64_opt(dir, &f("failcnt"))?.unwrap_or(0);
            }
            Flavour::V2 => {
                s.usage = fs::read_u64_opt(dir, &format!("hugetlb.{size}.current"))?.unwrap_or(0);
                if let Some(ev) = fs::read_opt(dir, &format!("hugetlb.{size}.events"))? {
                    s.failcnt = fs::parse_flat_keyed(&ev)
                        .into_iter()
                        .find(|(k, _)| k == "max")
                        .map_or(0, |(_, v)| v);
                }
            }
        }
        out.insert(size, s);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxHugepageLimitBuilder, LinuxResourcesBuilder};

    fn res(size: &str, limit: i64) -> LinuxResources {
        LinuxResourcesBuilder::default()
            .hugepage_limits(vec![LinuxHugepageLimitBuilder::default()
                .page_size(size)
                .limit(limit)
                .build()
                .unwrap()])
            .build()
            .unwrap()
    }

    #[test]
    fn v1_and_v2_files() {
        let t = tempfile::tempdir().unwrap();
        stdfs::write(t.path().join("hugetlb.2MB.limit_in_bytes"), "0").unwrap();
        stdfs::write(t.path().join("hugetlb.2MB.max"), "0").unwrap();
        set(Some(t.path()), &res("2MB", 4 << 20), Flavour::V1).unwrap();
        assert_eq!(
            fs::read(t.path(), "hugetlb.2MB.limit_in_bytes").unwrap(),
            "4194304"
        );
        set(Some(t.path()), &res("2MB", -1), Flavour::V2).unwrap();
        assert_eq!(fs::read(t.path(), "hugetlb.2MB.max").unwrap(), "max");
    }

    #[test]
    fn unknown_or_bad_size() {
        let t = tempfile::tempdir().unwrap();
        let err = set(Some(t.path()), &res("1GB", 1), Flavour::V1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid hugepageLimits: page size 1GB is not supported by this host (hugetlb.1GB.limit_in_bytes missing)"
        );
        let err = set(Some(t.path()), &res("2M", 1), Flavour::V1).unwrap_err();
        assert!(err.to_string().contains("not of the form"));
    }

    #[test]
    fn stats_by_size() {
        let t = tempfile::tempdir().unwrap();
        stdfs::write(t.path().join("hugetlb.2MB.max"), "max").unwrap();
        stdfs::write(t.path().join("hugetlb.2MB.current"), "2097152").unwrap();
        stdfs::write(t.path().join("hugetlb.2MB.events"), "max 4\n").unwrap();
        let mut out = BTreeMap::new();
        stats(t.path(), Flavour::V2, &mut out).unwrap();
        assert_eq!(out["2MB"].usage, 2097152);
        assert_eq!(out["2MB"].failcnt, 4);
    }
}
