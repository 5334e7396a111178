//! skiff's services: the logic behind every command, independent of how it is reached (the
//! CLI in-process today, the daemon's Engine API later).
//!
//! - [`config`]: `/etc/skiff/daemon.json`, with Docker's keys.
//! - [`images`]: pull, list, tag, remove, inspect, history, prune over the store.

pub mod config;
pub mod images;

pub use config::EngineConfig;
pub use images::{ImageService, ImagesError};
