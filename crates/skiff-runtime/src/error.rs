//! Errors of the runtime. Messages are lowercase, specific and name what was wrong
//! (the container id, the file, the path, the syscall).

use std::path::PathBuf;

/// Everything that can go wrong while creating or managing a container.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("container id {0:?} is invalid: ids are 1-1024 characters of [A-Za-z0-9_+.-] and do not start with '.'")]
    InvalidId(String),
    #[error("container {0} already exists")]
    Exists(String),
    #[error("container {0} does not exist")]
    NotFound(String),
    #[error("container {id} is {status}: {op} needs it {needed}")]
    BadState {
        id: String,
        status: String,
        op: &'static str,
        needed: &'static str,
    },
    #[error("read {}: {source}", path.display())]
    ReadConfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: invalid JSON: {source}", path.display())]
    ParseConfig {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{}: {msg}", path.display())]
    InvalidConfig { path: PathBuf, msg: String },
    #[error("rootfs {} does not exist or is not a directory", .0.display())]
    MissingRootfs(PathBuf),
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{op}: {source}")]
    Sys {
        op: String,
        #[source]
        source: std::io::Error,
    },
    #[error("state of container {id} in {}: {msg}", path.display())]
    CorruptState {
        id: String,
        path: PathBuf,
        msg: String,
    },
    #[error("cgroup: {0}")]
    Cgroup(#[from] skiff_cgroups::CgroupError),
    #[error(transparent)]
    Seccomp(#[from] skiff_seccomp::SeccompError),
    #[error("container init: {0}")]
    Init(String),
    #[error("{kind} hook {path}: {msg}")]
    Hook {
        kind: &'static str,
        path: String,
        msg: String,
    },
    #[error("{0}")]
    Usage(String),
}

impl RuntimeError {
    /// An I/O error on a path.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RuntimeError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// A failed system call, described by what was attempted.
    pub fn sys(op: impl Into<String>, source: impl Into<std::io::Error>) -> Self {
        RuntimeError::Sys {
            op: op.into(),
            source: source.into(),
        }
    }
}

/// Convert a nix errno into an io::Error.
pub(crate) fn errno(e: nix::errno::Errno) -> std::io::Error {
    std::io::Error::from_raw_os_error(e as i32)
}

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;
