//! Errors of the shim. Start-up errors end up in the `{"error": ...}` line the daemon reads;
//! request errors in the `{"error": ...}` reply of that request.

use std::path::PathBuf;

/// What can go wrong in the shim.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("usage: skiff-shim <container-dir>")]
    Usage,
    #[error("read shim config {}: {source}", path.display())]
    ReadConfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("shim config {}: {source}", path.display())]
    ParseConfig {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("shim config: {0}")]
    Config(String),
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{op}: {source}")]
    Sys {
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("log driver: {0}")]
    Log(#[source] skiff_logs::LogError),
    #[error(transparent)]
    Runtime(#[from] skiff_runtime::RuntimeError),
    #[error("receive the pty master: {0}")]
    Console(#[source] std::io::Error),
}

impl ShimError {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> ShimError {
        let path = path.into();
        move |source| ShimError::Io { op, path, source }
    }

    pub(crate) fn sys(op: &'static str) -> impl FnOnce(std::io::Error) -> ShimError {
        move |source| ShimError::Sys { op, source }
    }
}

pub type Result<T, E = ShimError> = std::result::Result<T, E>;
