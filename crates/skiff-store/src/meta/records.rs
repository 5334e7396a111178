//! The record types kept in the metadata store (serialised as JSON, field names stable:
//! they are part of the on-disk layout, see [`crate::layout`]).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::digest::{Descriptor, Digest};

/// An image: a name pointing at a target blob (manifest or index).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    pub name: String,
    pub target: Descriptor,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// Labels of one blob (GC edges live here).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentRecord {
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// The state of a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotKind {
    /// Writable, mountable; becomes committed with `commit`.
    Active,
    /// Read-only mountable view of a committed parent.
    View,
    /// Immutable; a parent for others (an image layer, named by chainID).
    Committed,
}

/// One snapshot: its directory id under `overlay/` and its place in the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRecord {
    pub id: String,
    pub kind: SnapshotKind,
    #[serde(default)]
    pub parent: Option<String>,
    pub created: DateTime<Utc>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// Something a lease keeps alive.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "lowercase")]
pub enum Resource {
    Content(Digest),
    Snapshot(String),
}

/// A lease: protects its resources from GC until deleted or expired.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    pub id: String,
    pub created: DateTime<Utc>,
    #[serde(default)]
    pub expires: Option<DateTime<Utc>>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub resources: BTreeSet<Resource>,
}

impl LeaseRecord {
    /// True once `expires` has passed.
    pub fn expired(&self, now: DateTime<Utc>) -> bool {
        self.expires.is_some_and(|e| e <= now)
    }
}
