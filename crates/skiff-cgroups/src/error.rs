//! The one error type of this crate.

use std::io;
use std::path::PathBuf;

/// Render an io error the way our messages want it: lowercase, without the
/// "(os error N)" suffix ("invalid argument", "no such file or directory").
pub(crate) fn io_msg(err: &io::Error) -> String {
    let text = err.to_string();
    let text = match text.find(" (os error ") {
        Some(pos) => text[..pos].to_string(),
        None => text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

/// Everything that can go wrong while managing cgroups.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// Writing a value to a cgroup control file failed.
    #[error("write {value} to {}: {}", path.display(), io_msg(source))]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: io::Error,
    },
    /// Reading a cgroup control file (or /proc file) failed.
    #[error("read {}: {}", path.display(), io_msg(source))]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A control file held something we could not parse.
    #[error("parse {}: unexpected content {content:?}", path.display())]
    Parse { path: PathBuf, content: String },
    /// mkdir of a cgroup directory failed.
    #[error("create cgroup directory {}: {}", path.display(), io_msg(source))]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// rmdir of a cgroup directory failed.
    #[error("remove cgroup directory {}: {}", path.display(), io_msg(source))]
    Remove {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Opening a cgroup directory (for bpf attach) failed.
    #[error("open {}: {}", path.display(), io_msg(source))]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A resource needs a v1 controller that is not mounted on this host.
    #[error("cgroup controller {controller} is not mounted (needed for {what})")]
    NotMounted {
        controller: &'static str,
        what: &'static str,
    },
    /// No cgroup hierarchy was found at all.
    #[error("no cgroup hierarchy found in {}", path.display())]
    NoHierarchy { path: PathBuf },
    /// The cgroups path in config.json is unusable.
    #[error("invalid cgroups path {}: {reason}", path.display())]
    InvalidPath { path: PathBuf, reason: &'static str },
    /// A resource value is invalid or inconsistent (checked before any write).
    #[error("invalid {resource}: {reason}")]
    InvalidResource {
        resource: &'static str,
        reason: String,
    },
    /// A resource that this cgroup version cannot express.
    #[error("{feature} is not supported on cgroup {version}")]
    Unsupported {
        feature: &'static str,
        version: &'static str,
    },
    /// Freezing or thawing did not reach the wanted state in time.
    #[error("timed out waiting for cgroup {} to become {wanted}", path.display())]
    FreezeTimeout { path: PathBuf, wanted: &'static str },
    /// Sending a signal to a process of the cgroup failed.
    #[error("send signal {signal} to pid {pid}: {}", io_msg(source))]
    Signal {
        pid: i32,
        signal: i32,
        #[source]
        source: io::Error,
    },
    /// A bpf(2) operation failed (device filter on cgroup v2).
    #[error("bpf {op} on {}: {}{}", path.display(), io_msg(source), verifier_log(log))]
    Bpf {
        op: &'static str,
        path: PathBuf,
        log: String,
        #[source]
        source: io::Error,
    },
    /// The paths handed to `from_paths` do not describe a v1 or v2 cgroup.
    #[error("invalid saved cgroup paths: {reason}")]
    InvalidSavedPaths { reason: &'static str },
}

fn verifier_log(log: &str) -> String {
    if log.trim().is_empty() {
        String::new()
    } else {
        format!(" (verifier: {})", log.trim())
    }
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, CgroupError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_error_reads_well() {
        let err = CgroupError::Write {
            path: PathBuf::from("/sys/fs/cgroup/cpu/x/cpu.cfs_quota_us"),
            value: "100000".into(),
            source: io::Error::from_raw_os_error(libc::EINVAL),
        };
        assert_eq!(
            err.to_string(),
            "write 100000 to /sys/fs/cgroup/cpu/x/cpu.cfs_quota_us: invalid argument"
        );
    }
}
