//! The image service: images as Docker users know them, over the store.
//!
//! An image is a name (`docker.io/library/busybox:latest`, or `…@sha256:…` for a pull by
//! digest) pointing at a platform manifest in the content store. Its ID is its config's
//! digest, as Docker's. The manifest blob carries the GC edges to its config, its layers and
//! the snapshot of its top layer (labels `skiff.gc.ref.*`), so removing the last name of an
//! image lets GC reclaim exactly what no other image shares.

mod archive;
mod follow;
mod inspect;
mod new_image;
mod prune;
mod pull;
mod push;
mod query;

use std::path::Path;

use skiff_registry::{Registry, RegistryConfig};
use skiff_store::Store;

pub(crate) use archive::NewLayer;
pub use archive::{ImportRequest, Loaded};
pub use inspect::HistoryEntry;
pub(crate) use new_image::write_layer;
pub use new_image::EMPTY_LAYER_DIFF_ID;
pub use prune::{DiskUsage, PruneCandidate, PruneReport};
pub use pull::{LayerStatus, Progress, PullEvent, PullResult};
pub use push::{PushEvent, PushResult, LABEL_SOURCE_PREFIX};
pub(crate) use query::LABEL_LAYER_SIZE;
pub use query::{ImageSummary, LocalImage, RemoveOutcome};

/// Label on an image record: the digest of the index the manifest was selected from.
pub const LABEL_INDEX_DIGEST: &str = "skiff.image.index";
/// Label on an image record: the repository digest clients see (`RepoDigests`).
pub const LABEL_REPO_DIGEST: &str = "skiff.image.repo-digest";

/// Name prefix of the record that keeps an image without a name (`<none>:<none>`): followed
/// by the manifest digest. Not a valid reference, so no user name can collide with it.
pub const DANGLING_PREFIX: &str = "<none>@";

/// What can go wrong in an image operation; messages name the image.
#[derive(Debug, thiserror::Error)]
pub enum ImagesError {
    #[error("{0}")]
    Reference(Box<skiff_registry::ReferenceError>),
    #[error("{}{source}", if context.is_empty() { String::new() } else { format!("{context}: ") })]
    Registry {
        context: String,
        #[source]
        source: Box<skiff_registry::Error>,
    },
    #[error("{context}: {source}")]
    Store {
        context: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{context}: {source}")]
    Layer {
        context: String,
        #[source]
        source: Box<skiff_image::unpack::ApplyError>,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("No such image: {0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
}

impl ImagesError {
    pub(crate) fn store(
        context: impl Into<String>,
        e: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        ImagesError::Store {
            context: context.into(),
            source: Box::new(e),
        }
    }
    pub(crate) fn registry(context: impl Into<String>, e: skiff_registry::Error) -> Self {
        // The registry client's messages already name the reference ("pull busybox:latest: …").
        let mut context = context.into();
        if e.to_string().starts_with(&context) {
            context.clear();
        }
        ImagesError::Registry {
            context,
            source: Box::new(e),
        }
    }
}

impl From<skiff_registry::ReferenceError> for ImagesError {
    fn from(e: skiff_registry::ReferenceError) -> Self {
        ImagesError::Reference(Box::new(e))
    }
}

pub type Result<T, E = ImagesError> = std::result::Result<T, E>;

/// The image service of one data root.
#[derive(Clone)]
pub struct ImageService {
    pub store: Store,
    pub registry: Registry,
    pub max_concurrent_downloads: usize,
}

impl ImageService {
    /// Open the store under `data_root` (checking it) and build the registry client.
    pub fn open(
        data_root: &Path,
        registry: RegistryConfig,
        downloads: usize,
    ) -> Result<(ImageService, skiff_store::CheckReport)> {
        let (store, report) = Store::open(data_root)
            .map_err(|e| ImagesError::store(format!("open store {}", data_root.display()), e))?;
        let registry =
            Registry::new(registry).map_err(|e| ImagesError::registry("registry client", e))?;
        Ok((
            ImageService {
                store,
                registry,
                max_concurrent_downloads: downloads.max(1),
            },
            report,
        ))
    }
}

/// Digest conversions between the crates' digest types (all "sha256:<hex>").
pub(crate) fn to_store(d: &impl std::fmt::Display) -> Result<skiff_store::Digest> {
    d.to_string()
        .parse()
        .map_err(|e: skiff_store::DigestError| ImagesError::Invalid(format!("digest {d}: {e}")))
}

/// The OCI digest type shared by skiff-registry and skiff-image.
pub(crate) fn to_oci(d: &impl std::fmt::Display) -> Result<skiff_registry::Digest> {
    d.to_string()
        .parse()
        .map_err(|e| ImagesError::Invalid(format!("digest {d}: {e:?}")))
}

/// The 12-hex short form Docker shows.
pub fn short_id(d: &impl std::fmt::Display) -> String {
    let s = d.to_string();
    let hex = s.strip_prefix("sha256:").unwrap_or(&s);
    hex.chars().take(12).collect()
}
