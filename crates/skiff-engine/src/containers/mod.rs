//! Containers from images: Docker's defaults and merge rules into an OCI bundle, run on
//! skiff's runtime library (no runtime binary exec'd).
//!
//! Until the daemon exists, `run` is foreground and the container is removed when it exits.

mod run;
pub mod spec;
mod user;

pub use run::{run_foreground, RunError, RunOptions};
