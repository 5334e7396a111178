//! skiff's OCI runtime: an OCI bundle (config.json + rootfs) into a running, isolated
//! process, and the lifecycle operations of the OCI runtime spec around it.
//!
//! It is a library: the `skiff runtime` CLI (runc-compatible) and the engine call it directly,
//! so starting a container costs no exec of a separate runtime binary. It knows nothing of
//! images or HTTP. The process model is in [`init`] (container init) and [`exec`]; the
//! on-disk state in [`state`].

pub mod caps;
pub mod container;
pub mod error;
pub mod exec;
pub mod fork;
pub mod hooks;
pub mod init;
pub mod namespaces;
pub mod process;
pub mod rootfs;
pub mod spec;
pub mod state;
pub mod sync;
pub mod tty;
pub mod update;

pub use container::{wait_forwarding, CreateOptions, Runtime, StateView};
pub use error::{Result, RuntimeError};
pub use exec::ExecOptions;
pub use state::{ContainerState, Status};

/// Default state root of the runtime CLI (runc uses /run/runc).
pub const DEFAULT_ROOT: &str = "/run/skiff/runtime";
