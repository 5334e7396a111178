//! skiff's local image store, in the manner of containerd: a content store of verified
//! blobs, an overlayfs snapshotter, per-object crash-safe metadata, leases and a
//! mark-and-sweep GC, all safe for concurrent threads and processes.
//!
//! The on-disk layout (version, paths) is documented in [`layout`].

pub mod check;
pub mod content;
pub mod digest;
pub mod fsutil;
pub mod gc;
pub mod image;
pub mod layout;
pub mod lease;
pub mod lock;
pub mod meta;
pub mod snapshot;
mod store;

pub use check::{CheckError, CheckOptions, CheckReport};
pub use content::{ContentError, ContentStore, IngestStatus, IngestWriter};
pub use digest::{Descriptor, Digest, DigestError};
pub use gc::{GcError, GcOptions, GcReport, LABEL_REF_CONTENT, LABEL_REF_SNAPSHOT};
pub use image::ImageError;
pub use layout::{LayoutError, LAYOUT_VERSION};
pub use lease::LeaseError;
pub use meta::{ImageRecord, LeaseRecord, Resource, SnapshotKind};
pub use snapshot::{
    is_mounted, mount_to, mount_to_with, unmount, unmount_lazy, LongOptions, MountError, MountSpec,
    SnapshotError, SnapshotInfo, Snapshotter, Usage,
};
pub use store::{Store, StoreError};
