//! v1 blkio controller: weights (CFQ files, or BFQ's when CFQ's are absent),
//! per-device weights, throttling; io stats.

use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxResources, LinuxThrottleDevice};

use crate::error::{CgroupError, Result};
use crate::fs;
use crate::stats::{parse_blkio_v1, BlkioEntry, BlkioStats};

fn wanted(b: &LinuxBlockIo) -> bool {
    b.weight().is_some()
        || b.leaf_weight().is_some()
        || b.weight_device().as_ref().is_some_and(|v| !v.is_empty())
        || [
            b.throttle_read_bps_device(),
            b.throttle_write_bps_device(),
            b.throttle_read_iops_device(),
            b.throttle_write_iops_device(),
        ]
        .iter()
        .any(|v| v.as_ref().is_some_and(|v| !v.is_empty()))
}

/// "blkio.weight", or "blkio.bfq.weight" on kernels with BFQ only.
fn weight_file(dir: &Path, cfq: &'static str, bfq: &'static str) -> &'static str {
    if fs::exists(dir, cfq) || !fs::exists(dir, bfq) {
        cfq
    } else {
        bfq
    }
}

pub(crate) fn set(dir: Option<&Path>, res: &LinuxResources) -> Result<()> {
    let Some(b) = res.block_io() else {
        return Ok(());
    };
    if !wanted(b) {
        return Ok(());
    }
    let Some(dir) = dir else {
        return Err(CgroupError::NotMounted {
            controller: "blkio",
            what: "block io weights or throttling",
        });
    };
    // 0 means "not set" (dockerd sends it for every container), as runc treats it.
    if let Some(w) = b.weight().filter(|&w| w != 0) {
        fs::write(dir, weight_file(dir, "blkio.weight", "blkio.bfq.weight"), w)?;
    }
    if let Some(w) = b.leaf_weight().filter(|&w| w != 0) {
        fs::write(dir, "blkio.leaf_weight", w)?;
    }
    for wd in b.weight_device().iter().flatten() {
        if let Some(w) = wd.weight() {
            let file = weight_file(dir, "blkio.weight_device", "blkio.bfq.weight_device");
            fs::write(dir, file, format!("{}:{} {w}", wd.major(), wd.minor()))?;
        }
        if let Some(w) = wd.leaf_weight() {
            fs::write(
                dir,
                "blkio.leaf_weight_device",
                format!("{}:{} {w}", wd.major(), wd.minor()),
            )?;
        }
    }
    let throttles: [(&Option<Vec<LinuxThrottleDevice>>, &str); 4] = [
        (
            b.throttle_read_bps_device(),
            "blkio.throttle.read_bps_device",
        ),
        (
            b.throttle_write_bps_device(),
            "blkio.throttle.write_bps_device",
        ),
        (
            b.throttle_read_iops_device(),
            "blkio.throttle.read_iops_device",
        ),
        (
            b.throttle_write_iops_device(),
            "blkio.throttle.write_iops_device",
        ),
    ];
    for (list, file) in throttles {
        for t in list.iter().flatten() {
            fs::write(
                dir,
                file,
                format!("{}:{} {}", t.major(), t.minor(), t.rate()),
            )?;
        }
    }
    Ok(())
}

/// First non-empty of the CFQ, BFQ and throttle counters (as runc).
fn first_nonempty(dir: &Path, suffix: &str) -> Result<Vec<BlkioEntry>> {
    for prefix in ["blkio.", "blkio.bfq.", "blkio.throttle."] {
        if let Some(content) = fs::read_opt(dir, &format!("{prefix}{suffix}"))? {
            let entries = parse_blkio_v1(&content);
            if !entries.is_empty() {
                return Ok(entries);
            }
        }
    }
    Ok(Vec::new())
}

pub(crate) fn stats(dir: &Path, out: &mut BlkioStats) -> Result<()> {
    out.io_service_bytes = first_nonempty(dir, "io_service_bytes_recursive")?;
    out.io_serviced = first_nonempty(dir, "io_serviced_recursive")?;
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
    fn writes_weights_and_throttles_bfq_fallback() {
        let t = tempfile::tempdir().unwrap();
        for f in [
            "blkio.bfq.weight",
            "blkio.bfq.weight_device",
            "blkio.throttle.read_bps_device",
            "blkio.throttle.write_iops_device",
        ] {
            stdfs::write(t.path().join(f), "").unwrap();
        }
        let b = LinuxBlockIoBuilder::default()
            .weight(500u16)
            .weight_device(vec![LinuxWeightDeviceBuilder::default()
                .major(8)
                .minor(0)
                .weight(300u16)
                .build()
                .unwrap()])
            .throttle_read_bps_device(vec![LinuxThrottleDeviceBuilder::default()
                .major(8)
                .minor(0)
                .rate(1_048_576u64)
                .build()
                .unwrap()])
            .throttle_write_iops_device(vec![LinuxThrottleDeviceBuilder::default()
                .major(8)
                .minor(16)
                .rate(100u64)
                .build()
                .unwrap()])
            .build()
            .unwrap();
        let res = LinuxResourcesBuilder::default()
            .block_io(b)
            .build()
            .unwrap();
        set(Some(t.path()), &res).unwrap();
        let r = |f| fs::read(t.path(), f).unwrap();
        assert_eq!(r("blkio.bfq.weight"), "500");
        assert_eq!(r("blkio.bfq.weight_device"), "8:0 300");
        assert_eq!(r("blkio.throttle.read_bps_device"), "8:0 1048576");
        assert_eq!(r("blkio.throttle.write_iops_device"), "8:16 100");
    }

    #[test]
    fn stats_fall_back_to_throttle_counters() {
        let t = tempfile::tempdir().unwrap();
        stdfs::write(
            t.path().join("blkio.io_service_bytes_recursive"),
            "Total 0\n",
        )
        .unwrap();
        stdfs::write(
            t.path().join("blkio.throttle.io_service_bytes_recursive"),
            "8:0 Read 512\n8:0 Write 1024\nTotal 1536\n",
        )
        .unwrap();
        let mut s = BlkioStats::default();
        stats(t.path(), &mut s).unwrap();
        assert_eq!(s.io_service_bytes.len(), 2);
        assert_eq!(s.io_service_bytes[1].value, 1024);
        assert!(s.io_serviced.is_empty());
    }
}
