//! Image records: a name → a target descriptor. The store does not interpret names or
//! manifests; the images layer above decides both.

use std::collections::BTreeMap;

use chrono::Utc;

use crate::digest::Descriptor;
use crate::meta::{ImageRecord, Kind, MetaError};
use crate::store::Store;

/// Errors of image record operations.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("image {0:?}: invalid name")]
    BadName(String),
    #[error("image {0:?}: not found")]
    NotFound(String),
    #[error("image {name:?}: {source}")]
    Meta {
        name: String,
        #[source]
        source: MetaError,
    },
}

fn check_name(name: &str) -> Result<(), ImageError> {
    if name.is_empty() || name.len() > 255 || name.chars().any(|c| c.is_control()) {
        return Err(ImageError::BadName(name.to_owned()));
    }
    Ok(())
}

impl Store {
    /// Creates or updates the image `name` to point at `target` (keeps `created`).
    pub fn image_put(
        &self,
        name: &str,
        target: Descriptor,
        labels: BTreeMap<String, String>,
    ) -> Result<ImageRecord, ImageError> {
        check_name(name)?;
        let me = |source| ImageError::Meta {
            name: name.to_owned(),
            source,
        };
        let txn = self.meta().txn().map_err(me)?;
        let now = Utc::now();
        let created = txn
            .get::<ImageRecord>(Kind::Images, name)
            .map_err(me)?
            .map_or(now, |r| r.created);
        let rec = ImageRecord {
            name: name.to_owned(),
            target,
            created,
            updated: now,
            labels,
        };
        txn.put(Kind::Images, name, &rec).map_err(me)?;
        Ok(rec)
    }

    /// The image `name`, if present.
    pub fn image_get(&self, name: &str) -> Result<Option<ImageRecord>, ImageError> {
        check_name(name)?;
        self.meta()
            .get(Kind::Images, name)
            .map_err(|source| ImageError::Meta {
                name: name.to_owned(),
                source,
            })
    }

    /// Every image, sorted by name.
    pub fn image_list(&self) -> Result<Vec<ImageRecord>, ImageError> {
        Ok(self
            .meta()
            .list::<ImageRecord>(Kind::Images)
            .map_err(|source| ImageError::Meta {
                name: String::new(),
                source,
            })?
            .into_iter()
            .map(|(_, r)| r)
            .collect())
    }

    /// Deletes the image record `name` (its content goes at the next GC).
    pub fn image_delete(&self, name: &str) -> Result<(), ImageError> {
        check_name(name)?;
        let me = |source| ImageError::Meta {
            name: name.to_owned(),
            source,
        };
        let txn = self.meta().txn().map_err(me)?;
        if !txn.delete(Kind::Images, name).map_err(me)? {
            return Err(ImageError::NotFound(name.to_owned()));
        }
        Ok(())
    }
}
