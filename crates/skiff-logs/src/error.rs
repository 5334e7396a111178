//! Errors of the log drivers.

use std::path::PathBuf;

/// An error of a log driver, naming the file or option it concerns.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// `--log-driver` names a driver skiff does not have (Docker's message).
    #[error("logger: no log driver named '{0}' is registered")]
    UnknownDriver(String),
    /// A `--log-opt` key the driver does not know (Docker's message).
    #[error("unknown log opt '{key}' for {driver} log driver")]
    UnknownOpt {
        /// The option key.
        key: String,
        /// The driver's Docker name.
        driver: &'static str,
    },
    /// A `--log-opt` value that does not parse or is out of range.
    #[error("invalid log opt {key}={value:?}: {reason}")]
    InvalidOpt {
        /// The option key.
        key: String,
        /// The value given.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// Reading logs of a container whose driver keeps none (Docker's message).
    #[error("configured logging driver does not support reading")]
    ReadingUnsupported,
    /// An I/O error on a log or index file.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done ("open", "write", "rename", ...).
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl LogError {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> LogError {
        let path = path.into();
        move |source| LogError::Io { op, path, source }
    }
}
