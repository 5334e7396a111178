//! Containers from images: Docker's defaults and merge rules into an OCI bundle, run on
//! skiff's runtime library (no runtime binary exec'd).
//!
//! - [`service::Containers`]: the daemon's container service (records in [`store`], the
//!   lifecycle in [`lifecycle`], exec in [`exec`]); each running container is owned by a
//!   small monitor process (`skiff-shim`), so containers outlive the daemon.
//! - [`run_foreground`]: the daemon-less `skiff run` (the CLI process is the monitor).

pub mod archive;
pub mod commit;
pub mod detach;
pub mod events;
pub mod exec;
pub mod extra;
mod files;
mod health;
pub mod lifecycle;
mod merge;
pub mod model;
mod mounts;
pub mod network;
pub mod oci;
mod run;
pub mod service;
pub mod shim;
pub mod spec;
pub mod store;
pub(crate) mod user;
mod validate;
pub mod views;

pub use commit::{CommitRequest, Committed};
pub use run::{run_foreground, RunError, RunOptions};
pub use service::{Containers, ContainersError, Defaults};

/// 64 random hex digits.
pub(crate) fn random_id() -> String {
    let mut b = [0u8; 32];
    fill_random(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A random u64.
pub(crate) fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    fill_random(&mut b);
    u64::from_le_bytes(b)
}

fn fill_random(b: &mut [u8]) {
    // SAFETY: getrandom writes at most b.len() bytes into b.
    let _ = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
}
