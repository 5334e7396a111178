//! Media types of manifests, indexes, configs and layers (OCI and Docker v2 schema 2).

use oci_spec::image::MediaType;

use crate::compression::Compression;

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST_V1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_MANIFEST_V1_SIGNED: &str =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_LAYER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";
pub const DOCKER_FOREIGN_LAYER: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const OCI_LAYER_NONDIST: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
pub const OCI_LAYER_NONDIST_GZIP: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
pub const OCI_LAYER_NONDIST_ZSTD: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";

/// What a top-level document (from a registry or a layout) is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocumentKind {
    /// An image manifest (Docker v2 schema 2 or OCI).
    Manifest,
    /// A multi-platform list (Docker manifest list or OCI index).
    Index,
    /// Docker schema 1: unsupported, refused with a clear error by callers.
    SchemaV1,
}

pub fn document_kind(media_type: &str) -> Option<DocumentKind> {
    match media_type {
        DOCKER_MANIFEST | OCI_MANIFEST => Some(DocumentKind::Manifest),
        DOCKER_MANIFEST_LIST | OCI_INDEX => Some(DocumentKind::Index),
        DOCKER_MANIFEST_V1 | DOCKER_MANIFEST_V1_SIGNED => Some(DocumentKind::SchemaV1),
        _ => None,
    }
}

/// Facts about a layer media type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerType {
    pub compression: Compression,
    /// Foreign (Docker) or non-distributable (OCI): not pushed to other registries.
    pub non_distributable: bool,
}

/// Classifies a layer media type; `None` when it is not a layer we can unpack.
pub fn layer_type(media_type: &str) -> Option<LayerType> {
    let (compression, non_distributable) = match media_type {
        OCI_LAYER | DOCKER_LAYER => (Compression::None, false),
        OCI_LAYER_GZIP | DOCKER_LAYER_GZIP => (Compression::Gzip, false),
        OCI_LAYER_ZSTD | DOCKER_LAYER_ZSTD => (Compression::Zstd, false),
        OCI_LAYER_NONDIST => (Compression::None, true),
        OCI_LAYER_NONDIST_GZIP | DOCKER_FOREIGN_LAYER => (Compression::Gzip, true),
        OCI_LAYER_NONDIST_ZSTD => (Compression::Zstd, true),
        _ => return None,
    };
    Some(LayerType {
        compression,
        non_distributable,
    })
}

/// The OCI layer media type for a compression.
pub fn oci_layer_media_type(c: Compression) -> &'static str {
    match c {
        Compression::None => OCI_LAYER,
        Compression::Gzip => OCI_LAYER_GZIP,
        Compression::Zstd => OCI_LAYER_ZSTD,
    }
}

/// The Docker v2 schema 2 layer media type for a compression.
pub fn docker_layer_media_type(c: Compression) -> &'static str {
    match c {
        Compression::None => DOCKER_LAYER,
        Compression::Gzip => DOCKER_LAYER_GZIP,
        Compression::Zstd => DOCKER_LAYER_ZSTD,
    }
}

/// oci-spec's [`MediaType`] for a media type string (unknown ones become `Other`).
pub fn to_oci(media_type: &str) -> MediaType {
    MediaType::from(media_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies() {
        assert_eq!(
            layer_type(DOCKER_LAYER_GZIP).unwrap().compression,
            Compression::Gzip
        );
        assert!(layer_type(DOCKER_FOREIGN_LAYER).unwrap().non_distributable);
        assert_eq!(
            layer_type(OCI_LAYER_ZSTD).unwrap().compression,
            Compression::Zstd
        );
        assert!(layer_type(OCI_CONFIG).is_none());
        assert_eq!(
            document_kind(DOCKER_MANIFEST_LIST),
            Some(DocumentKind::Index)
        );
        assert_eq!(
            document_kind(DOCKER_MANIFEST_V1_SIGNED),
            Some(DocumentKind::SchemaV1)
        );
        assert_eq!(to_oci(OCI_MANIFEST), MediaType::ImageManifest);
        assert_eq!(oci_layer_media_type(Compression::Gzip), OCI_LAYER_GZIP);
    }
}
