//! v2 io controller: io.weight (converted from blkio weight) or
//! io.bfq.weight, per-device weights, io.max throttling; stats from io.stat.

use std::path::Path;

use oci_spec::runtime::{LinuxResources, LinuxThrottleDevice};

use crate::error::{CgroupError, Result};
use crate::fs;
use crate::stats::{parse_io_stat, BlkioStats};

/// runc's ConvertBlkIOToIOWeightValue: [10, 1000] → [1, 10000]; 0 → unset.
pub fn blkio_weight_to_io_weight(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    1 + (u64::from(weight).saturating_sub(10) * 9999) / 990
}

fn check_weight(w: u16) -> Result<()> {
    if (10..=1000).contains(&w) {
        Ok(())
    } else {
        Err(CgroupError::InvalidResource {
            resource: "blockIO.weight",
            reason: format!("{w} is out of range 10-1000"),
        })
    }
}

pub(crate) fn set(dir: &Path, res: &LinuxResources) -> Result<()> {
    let Some(b) = res.block_io() else {
        return Ok(());
    };
    let bfq = fs::exists(dir, "io.bfq.weight");
    if let Some(w) = b.weight().filter(|&w| w != 0) {
        check_weight(w)?;
        if bfq {
            fs::write(dir, "io.bfq.weight", w)?;
        } else {
            fs::write(dir, "io.weight", blkio_weight_to_io_weight(w))?;
        }
    }
    for wd in b.weight_device().iter().flatten() {
        let Some(w) = wd.weight().filter(|&w| w != 0) else {
            continue;
        };
        check_weight(w)?;
        let (file, value) = if bfq {
            ("io.bfq.weight", u64::from(w))
        } else {
            ("io.weight", blkio_weight_to_io_weight(w))
        };
        fs::write(dir, file, format!("{}:{} {value}", wd.major(), wd.minor()))?;
    }
    if b.leaf_weight().is_some() {
        tracing::warn!("blkio leaf weight does not exist on cgroup v2 and is ignored");
    }
    let throttles: [(&Option<Vec<LinuxThrottleDevice>>, &str); 4] = [
        (b.throttle_read_bps_device(), "rbps"),
        (b.throttle_write_bps_device(), "wbps"),
        (b.throttle_read_iops_device(), "riops"),
        (b.throttle_write_iops_device(), "wiops"),
    ];
    for (list, key) in throttles {
        for t in list.iter().flatten() {
            fs::write(dir, "io.max", io_max_line(t, key))?;
        }
    }
    Ok(())
}

/// "8:0 rbps=1048576"; a rate of 0 removes the limit ("max").
pub(crate) fn io_max_line(t: &LinuxThrottleDevice, key: &str) -> String {
    let rate = if t.rate() == 0 {
        "max".to_string()
    } else {
        t.rate().to_string()
    };
    format!("{}:{} {key}={rate}", t.major(), t.minor())
}

pub(crate) fn stats(dir: &Path, out: &mut BlkioStats) -> Result<()> {
    if let Some(content) = fs::read_opt(dir, "io.stat")? {
        *out = parse_io_stat(&content);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{
        LinuxBlockIoBuilder, LinuxResourcesBuilder, LinuxThrottleDeviceBuilder,
        LinuxWeightDeviceBuilder,
    };
    use std::fs as stdfs;

    #[test]
    fn weight_conversion() {
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(500), 4950);
        assert_eq!(blkio_weight_to_io_weight(1000), 10000);
    }

    #[test]
    fn writes_io_files() {
        let t = tempfile::tempdir().unwrap();
        stdfs::write(t.path().join("io.weight"), "").unwrap();
        stdfs::write(t.path().join("io.max"), "").unwrap();
        let b = LinuxBlockIoBuilder::default()
            .weight(1000u16)
            .throttle_write_bps_device(vec![LinuxThrottleDeviceBuilder::default()
                .major(8)
                .minor(0)
                .rate(4096u64)
                .build()
                .unwrap()])
            .build()
            .unwrap();
        set(
            t.path(),
            &LinuxResourcesBuilder::default()
                .block_io(b)
                .build()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(fs::read(t.path(), "io.weight").unwrap(), "10000");
        assert_eq!(fs::read(t.path(), "io.max").unwrap(), "8:0 wbps=4096");
        let wd = LinuxBlockIoBuilder::default()
            .weight_device(vec![LinuxWeightDeviceBuilder::default()
                .major(8)
                .minor(16)
                .weight(10u16)
                .build()
                .unwrap()])
            .build()
            .unwrap();
        set(
            t.path(),
            &LinuxResourcesBuilder::default()
                .block_io(wd)
                .build()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(fs::read(t.path(), "io.weight").unwrap(), "8:16 1");
        let bad = LinuxBlockIoBuilder::default().weight(5u16).build().unwrap();
        let err = set(
            t.path(),
            &LinuxResourcesBuilder::default()
                .block_io(bad)
                .build()
                .unwrap(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid blockIO.weight: 5 is out of range 10-1000"
        );
    }
}
