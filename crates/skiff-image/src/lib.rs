//! skiff-image: the image pieces that need neither a content store nor a registry.
//!
//! - [`unpack`]: stream a layer tar (gzip, zstd or plain) into an overlayfs upper directory
//!   ([`unpack::apply_layer`]) or a plain rootfs ([`unpack::apply_layer_to_rootfs`]), computing
//!   the diffID on the way and refusing hostile layers without touching anything outside the target.
//! - [`diff`]: a directory (or an overlay upper) back into a reproducible layer tar, and the
//!   A/C/D change list of an overlay upper against its lowers.
//! - [`formats`]: chainIDs, media types, `docker save`/`docker load` tarballs and OCI image layouts.
//! - [`import`]: a rootfs tarball into a single-layer image (layer blob + minimal config).
//!
//! Everything here is synchronous and blocking; callers on an async runtime use `spawn_blocking`.

pub mod compression;
pub mod diff;
pub mod digest;
pub mod formats;
pub mod import;
pub mod unpack;

pub use compression::Compression;
pub use digest::Digest;
