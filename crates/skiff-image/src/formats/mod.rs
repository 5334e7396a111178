//! Image formats: chainIDs, media types, OCI image layouts and `docker save` tarballs.

pub mod chain_id;
pub mod docker_archive;
mod docker_save;
pub mod media_types;
pub mod oci_layout;

pub use chain_id::{chain_id, chain_ids};

pub use docker_archive::{
    load_docker_archive, load_docker_archive_dir, save_docker_archive, ArchiveError, LoadedImage,
    LoadedLayer, SaveFormat, SaveImage, SaveLayer,
};
pub use oci_layout::{LayoutError, OciLayout, OciLayoutWriter};
