//! skiff's registry client (OCI distribution v2): the "registry" layer.
//!
//! It knows nothing of the local store: it yields manifests (raw bytes, media type, digest)
//! and blob byte streams, and accepts blobs and manifests to push. Written on reqwest/rustls
//! rather than oci-client so that we control range-resume, on-the-fly digest checks, mirror
//! fallback, cross-repository mounts, chunked uploads and auth challenges.
//!
//! ```no_run
//! # async fn f() -> Result<(), skiff_registry::Error> {
//! use skiff_registry::{Platform, Reference, Registry, RegistryConfig};
//! let reg = Registry::new(RegistryConfig::default())?;
//! let r = Reference::parse("busybox")?;
//! let m = reg.resolve_manifest(&r, &Platform::host()).await?;
//! for layer in m.image.layers() {
//!     let _stream = reg.fetch_blob_verified(&r, layer.digest()).await?;
//! }
//! # Ok(()) }
//! ```

mod auth;
mod blob;
mod client;
mod config;
mod credentials;
mod error;
mod manifest;
mod push;
pub mod reference;
mod tags;

pub use auth::Credentials;
pub use blob::{sha256_digest, BlobStream, VerifiedStream, Verifier};
pub use client::Registry;
pub use config::RegistryConfig;
pub use credentials::{config_key, normalize_registry, DOCKER_HUB_CONFIG_KEY};
pub use error::{Error, ErrorKind, Result};
pub use manifest::{
    select_platform, FetchedManifest, ManifestKind, Platform, ResolvedManifest,
    DOCKER_MANIFEST_LIST, DOCKER_MANIFEST_V1, DOCKER_MANIFEST_V1_SIGNED, DOCKER_MANIFEST_V2,
    MAX_MANIFEST_SIZE, OCI_INDEX, OCI_MANIFEST,
};
pub use oci_spec::image::Digest;
pub use push::BlobPush;
pub use reference::{Reference, ReferenceError};
