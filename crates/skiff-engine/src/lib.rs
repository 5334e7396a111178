//! skiff's services: the logic behind every command, independent of how it is reached (the
//! CLI in-process today, the daemon's Engine API later).
//!
//! - [`config`]: `/etc/skiff/daemon.json`, with Docker's keys.
//! - [`images`]: pull, list, tag, remove, inspect, history, prune over the store.
//! - [`build`]: the Dockerfile executor (skiff-build plans, run here), with its layer cache.
//! - [`containers`]: an image's config + run options into an OCI spec with Docker's defaults,
//!   and running it on skiff's runtime.

pub mod build;
pub mod config;
pub mod containers;
pub mod human;
pub mod images;
pub mod volumes;

pub use config::EngineConfig;
pub use containers::{Containers, ContainersError};
pub use images::{ImageService, ImagesError};
