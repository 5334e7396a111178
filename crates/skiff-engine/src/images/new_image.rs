//! New images made on this host (a build's steps and result, a container's `commit`): a
//! directory written as a layer blob into the content store, and an image config plus its
//! layers stored and named.

use std::collections::BTreeMap;
use std::path::Path;

use skiff_image::diff::{write_layer_from_dir, WriteOptions};
use skiff_image::formats::media_types::oci_layer_media_type;
use skiff_image::Compression;
use skiff_registry::Reference;

use super::archive::NewLayer;
use super::{ImageService, ImagesError, Result};

/// The diffID of an empty layer (a tar of only its end-of-archive blocks): a commit that
/// changed nothing adds no layer, as dockerd's.
pub const EMPTY_LAYER_DIFF_ID: &str =
    "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";

/// A layer blob written by [`write_layer`].
pub(crate) struct WrittenLayer {
    pub layer: NewLayer,
    /// Bytes of the uncompressed tar.
    pub uncompressed_size: u64,
}

impl WrittenLayer {
    pub fn is_empty(&self) -> bool {
        self.layer.diff_id.to_string() == EMPTY_LAYER_DIFF_ID
    }
}

/// Writes the overlay upper directory `upper` as a gzip layer tar (whiteout devices and
/// opaque dirs in Docker's `.wh.` form; `exclude` paths left out) into the content store,
/// held by `lease`. `key` names the ingest (unique per writer).
pub(crate) fn write_layer(
    store: &skiff_store::Store,
    upper: &Path,
    exclude: Vec<String>,
    lease: &str,
    key: &str,
    ctx: &str,
) -> Result<WrittenLayer> {
    let content = store.content().with_lease(lease);
    let mut w = content
        .writer(key, None)
        .map_err(|e| ImagesError::store(ctx, e))?;
    if w.offset() != 0 {
        w.reset().map_err(|e| ImagesError::store(ctx, e))?;
    }
    let opts = WriteOptions {
        mtime: None,
        overlay_upper: true,
        exclude,
    };
    let d = match write_layer_from_dir(upper, &mut w, Compression::Gzip, &opts) {
        Ok(d) => d,
        Err(e) => {
            let _ = w.abort();
            return Err(ImagesError::store(ctx, e));
        }
    };
    let digest = w.commit().map_err(|e| ImagesError::store(ctx, e))?;
    Ok(WrittenLayer {
        layer: NewLayer {
            digest,
            media_type: oci_layer_media_type(Compression::Gzip).to_string(),
            size: d.size,
            diff_id: d.diff_id,
        },
        uncompressed_size: d.uncompressed_size,
    })
}

impl ImageService {
    /// Stores the image `config` (bytes as they will be hashed) on `layers` (blobs already in
    /// the content store) and names it with each of `names` (normalized references), or keeps
    /// it as dangling when there are none.
    pub(crate) fn store_new_image(
        &self,
        config: &[u8],
        layers: &[NewLayer],
        names: &[Reference],
        ctx: &str,
    ) -> Result<()> {
        let lease = format!("new-image-{}", &crate::containers::random_id()[..16]);
        let expires = chrono::Utc::now() + chrono::Duration::hours(1);
        self.store
            .lease_create(&lease, Some(expires), BTreeMap::new())
            .map_err(|e| ImagesError::store(ctx, e))?;
        let res = (|| {
            let desc = self.commit_image(config, layers, &lease, ctx)?;
            for r in names {
                self.name_image(&r.to_string(), desc.clone(), BTreeMap::new(), ctx)?;
            }
            if names.is_empty() {
                self.name_dangling(desc, ctx)?;
            }
            Ok(())
        })();
        let _ = self.store.lease_delete(&lease);
        res
    }
}
