//! Garbage collection: mark and sweep from the metadata, as containerd.
//!
//! Roots: every image's target, every unexpired lease's resources, every active snapshot and
//! view. Edges: blob labels `skiff.gc.ref.content.<anything>` = `<digest>` and
//! `skiff.gc.ref.snapshot[.<anything>]` = `<snapshot key>` (on blobs and on snapshots), and
//! snapshot parents. Unmarked blobs and committed snapshots are swept, expired leases deleted,
//! idle ingests older than [`GcOptions::ingest_max_age`] removed, and crash debris repaired by
//! the check. Everything runs under the store lock, so no mutation interleaves.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::{Duration, SystemTime};

use chrono::Utc;

use crate::check::{CheckError, CheckOptions, CheckReport};
use crate::content::{self, ContentError};
use crate::digest::Digest;
use crate::meta::{
    ContentRecord, ImageRecord, Kind, LeaseRecord, MetaError, Resource, SnapshotKind,
    SnapshotRecord,
};
use crate::snapshot::{self, SnapshotError};
use crate::store::Store;

/// Label prefix of a content → content edge.
pub const LABEL_REF_CONTENT: &str = "skiff.gc.ref.content";
/// Label prefix of a content → snapshot edge.
pub const LABEL_REF_SNAPSHOT: &str = "skiff.gc.ref.snapshot";

/// Errors of a GC run.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error("gc: {0}")]
    Meta(#[from] MetaError),
    #[error("gc: {0}")]
    Content(#[from] ContentError),
    #[error("gc: {0}")]
    Snapshot(#[from] SnapshotError),
    #[error("gc: {0}")]
    Check(#[from] CheckError),
}

/// GC options.
#[derive(Clone, Copy, Debug)]
pub struct GcOptions {
    /// Idle ingests not written for this long are removed.
    pub ingest_max_age: Duration,
}

impl Default for GcOptions {
    fn default() -> Self {
        Self {
            ingest_max_age: Duration::from_secs(24 * 3600),
        }
    }
}

/// What a GC run removed.
#[derive(Clone, Debug, Default)]
pub struct GcReport {
    pub blobs_removed: Vec<Digest>,
    pub snapshots_removed: Vec<String>,
    pub ingests_removed: Vec<String>,
    pub leases_expired: Vec<String>,
    pub bytes_freed: u64,
    /// Repairs of crash debris done on the way.
    pub check: CheckReport,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Node {
    Content(Digest),
    Snapshot(String),
}

fn edges(labels: &BTreeMap<String, String>, out: &mut Vec<Node>) {
    for (k, v) in labels {
        if k.starts_with(LABEL_REF_CONTENT) {
            if let Ok(d) = v.parse() {
                out.push(Node::Content(d));
            }
        } else if k.starts_with(LABEL_REF_SNAPSHOT) {
            out.push(Node::Snapshot(v.clone()));
        }
    }
}

impl Store {
    /// Runs a full mark-and-sweep collection.
    pub fn gc(&self, opts: &GcOptions) -> Result<GcReport, GcError> {
        let txn = self.meta().txn()?;
        let mut report = GcReport::default();
        self.check_locked(&txn, CheckOptions::default(), &mut report.check)?;
        let now = Utc::now();

        let mut work: Vec<Node> = Vec::new();
        for (id, lease) in txn.list::<LeaseRecord>(Kind::Leases)? {
            if lease.expired(now) {
                txn.delete_opts(Kind::Leases, &id, false)?;
                report.leases_expired.push(id);
                continue;
            }
            for r in lease.resources {
                work.push(match r {
                    Resource::Content(d) => Node::Content(d),
                    Resource::Snapshot(s) => Node::Snapshot(s),
                });
            }
        }
        for (_, img) in txn.list::<ImageRecord>(Kind::Images)? {
            work.push(Node::Content(img.target.digest));
        }
        let snaps: BTreeMap<String, SnapshotRecord> =
            txn.list(Kind::Snapshots)?.into_iter().collect();
        for (k, s) in &snaps {
            if s.kind != SnapshotKind::Committed {
                work.push(Node::Snapshot(k.clone()));
            }
        }

        // Mark.
        let mut marked: HashSet<Node> = HashSet::new();
        while let Some(n) = work.pop() {
            if !marked.insert(n.clone()) {
                continue;
            }
            match &n {
                Node::Content(d) => {
                    if let Some(rec) = txn.get::<ContentRecord>(Kind::Content, d.hex())? {
                        edges(&rec.labels, &mut work);
                    }
                }
                Node::Snapshot(k) => {
                    if let Some(s) = snaps.get(k) {
                        if let Some(p) = &s.parent {
                            work.push(Node::Snapshot(p.clone()));
                        }
                        edges(&s.labels, &mut work);
                    }
                }
            }
        }

        // Sweep snapshots, children before parents (an unmarked snapshot's children are
        // unmarked too, since marking follows parents).
        let mut doomed: BTreeSet<String> = snaps
            .keys()
            .filter(|k| !marked.contains(&Node::Snapshot((*k).clone())))
            .cloned()
            .collect();
        while !doomed.is_empty() {
            let leaves: Vec<String> = doomed
                .iter()
                .filter(|k| {
                    !doomed
                        .iter()
                        .any(|c| snaps[c].parent.as_deref() == Some(k.as_str()))
                })
                .cloned()
                .collect();
            if leaves.is_empty() {
                break; // a parent cycle cannot be made through the API; leave it to a human
            }
            for k in leaves {
                let usage = self.snapshots().usage(&k).unwrap_or_default();
                snapshot::remove_locked(&self.inner, &txn, &k, true)?;
                report.bytes_freed += usage.size;
                doomed.remove(&k);
                report.snapshots_removed.push(k);
            }
        }

        // Sweep blobs, then label records of blobs that no longer exist.
        let cs = self.content();
        for d in cs.list()? {
            if !marked.contains(&Node::Content(d.clone())) {
                let size = cs.info(&d)?.unwrap_or(0);
                if content::delete_locked(&self.inner, &txn, &d)? {
                    report.bytes_freed += size;
                    report.blobs_removed.push(d);
                }
            }
        }
        for hex in self.meta().keys(Kind::Content)? {
            if !self.layout().blobs().join(&hex).exists() {
                txn.delete(Kind::Content, &hex)?;
            }
        }

        // Stale ingests.
        let cutoff = SystemTime::now()
            .checked_sub(opts.ingest_max_age)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        for ing in content::ingest_list(self.layout())? {
            let stale = ing.updated.is_none_or(|t| t <= cutoff);
            if !ing.busy && stale {
                let dir = self
                    .layout()
                    .ingest()
                    .join(crate::fsutil::encode_name(&ing.key));
                if content::ingest_remove_dir_if_idle(&dir) {
                    report.bytes_freed += ing.offset;
                    report.ingests_removed.push(ing.key);
                }
            }
        }
        Ok(report)
    }
}
