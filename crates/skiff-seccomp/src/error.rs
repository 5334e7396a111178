//! The one error type of this crate.
//!
//! Messages are lowercase, name the syscall / architecture / value at fault, and do not
//! repeat the text of their `#[source]` (print the chain to see it).

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while converting, compiling, caching or installing a filter.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SeccompError {
    /// An action string that is not one of the OCI `SCMP_ACT_*` names.
    #[error("seccomp: unknown action {0}")]
    UnknownAction(String),

    /// An architecture string that is not one of the OCI `SCMP_ARCH_*` names.
    #[error("seccomp: unknown architecture {0}")]
    UnknownArch(String),

    /// An operator string that is not one of the OCI `SCMP_CMP_*` names.
    #[error("seccomp: syscall {syscall:?}: unknown operator {op}")]
    UnknownOperator { syscall: String, op: String },

    /// A filter flag string that is not one of the OCI `SECCOMP_FILTER_FLAG_*` names.
    #[error("seccomp: unknown filter flag {0}")]
    UnknownFlag(String),

    /// An argument index outside 0..=5.
    #[error("seccomp: syscall {syscall:?}: argument index {index} out of range 0-5")]
    ArgIndex { syscall: String, index: usize },

    /// An `errnoRet` that does not fit the 16 data bits of a seccomp return value.
    #[error("seccomp: {what}: errno/trace value {value} out of range 0-65535")]
    ReturnValue { what: String, value: u32 },

    /// `SCMP_ACT_NOTIFY` as default action (runc refuses it: `write` must stay usable).
    #[error("seccomp: SCMP_ACT_NOTIFY cannot be used as default action")]
    NotifyDefault,

    /// `SCMP_ACT_NOTIFY` on `write` (runc refuses it: the runtime writes the listener fd).
    #[error("seccomp: SCMP_ACT_NOTIFY cannot be used for the write syscall")]
    NotifyWrite,

    /// The kernel lacks a feature the profile needs.
    #[error("seccomp: kernel does not support {0}")]
    KernelUnsupported(&'static str),

    /// A libseccomp call failed while building the filter.
    #[error("seccomp: libseccomp {op}")]
    Libseccomp {
        op: &'static str,
        #[source]
        source: libseccomp::error::SeccompError,
    },

    /// libseccomp refused a rule.
    #[error("seccomp: syscall {syscall:?}: libseccomp refused rule")]
    Rule {
        syscall: String,
        #[source]
        source: libseccomp::error::SeccompError,
    },

    /// Reading the exported BPF back failed.
    #[error("seccomp: export bpf")]
    Export {
        #[source]
        source: io::Error,
    },

    /// The program (with the -ENOSYS stub) does not fit in one BPF filter or a jump is too long.
    #[error("seccomp: bpf program: {0}")]
    Program(&'static str),

    /// Serialized filter bytes are malformed.
    #[error("seccomp: invalid compiled filter: {0}")]
    InvalidFilter(&'static str),

    /// seccomp(2) / prctl(2) failed in the child.
    #[error("seccomp: install filter")]
    Install {
        #[source]
        source: io::Error,
    },

    /// SECCOMP_FILTER_FLAG_TSYNC could not synchronise this thread.
    #[error("seccomp: install filter: thread {tid} cannot be synchronised (TSYNC)")]
    Tsync { tid: i64 },

    /// The profile could not be serialized to compute its cache key.
    #[error("seccomp: serialize profile")]
    Serialize {
        #[source]
        source: serde_json::Error,
    },

    /// The on-disk cache could not be read or written.
    #[error("seccomp: filter cache {}", path.display())]
    Cache {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The Docker profile is not valid JSON of the expected shape.
    #[error("seccomp: parse docker profile")]
    DockerJson {
        #[source]
        source: serde_json::Error,
    },

    /// The Docker profile is well-formed JSON but inconsistent.
    #[error("seccomp: docker profile: {0}")]
    DockerProfile(String),

    /// A `minKernel` that is not `major.minor`.
    #[error("seccomp: docker profile: invalid minKernel {0:?}")]
    MinKernel(String),

    /// The running kernel version could not be determined.
    #[error("seccomp: read kernel version")]
    KernelVersion {
        #[source]
        source: io::Error,
    },
}

impl SeccompError {
    pub(crate) fn libseccomp(
        op: &'static str,
    ) -> impl FnOnce(libseccomp::error::SeccompError) -> Self {
        move |source| Self::Libseccomp { op, source }
    }
}
