//! Leases: a pull (or build) takes a lease and adds what it writes to it, so GC keeps those
//! blobs and snapshots until an image references them and the lease is deleted (or expires).
//!
//! Lease records are written without fsync (temp + rename only): a process crash keeps them
//! (the page cache survives it) and only a power loss can lose one, when the processes that
//! held it are gone too; what it protected is then either named by a durable image record,
//! or garbage that GC may take. Saving the fsyncs matters: a pull or build updates its lease
//! once per blob and snapshot (two fsyncs each, ~3-10 ms apiece on a VM disk).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use crate::meta::{Kind, LeaseRecord, MetaError, Resource, Txn};
use crate::store::Store;

/// Errors of lease operations.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("lease {0:?}: not found")]
    NotFound(String),
    #[error("lease {0:?}: already exists")]
    AlreadyExists(String),
    #[error("lease {0:?}: invalid id")]
    BadId(String),
    #[error("lease {id:?}: {source}")]
    Meta {
        id: String,
        #[source]
        source: MetaError,
    },
}

fn me(id: &str) -> impl FnOnce(MetaError) -> LeaseError + '_ {
    move |source| LeaseError::Meta {
        id: id.to_owned(),
        source,
    }
}

fn check_id(id: &str) -> Result<(), LeaseError> {
    if id.is_empty() || id.len() > 200 || id.chars().any(|c| c.is_control()) {
        return Err(LeaseError::BadId(id.to_owned()));
    }
    Ok(())
}

/// Adds a resource to a lease while the metadata lock is held.
pub(crate) fn add_resource_locked(txn: &Txn<'_>, id: &str, r: Resource) -> Result<(), LeaseError> {
    let mut rec: LeaseRecord = txn
        .get(Kind::Leases, id)
        .map_err(me(id))?
        .ok_or_else(|| LeaseError::NotFound(id.to_owned()))?;
    if rec.resources.insert(r) {
        txn.put_opts(Kind::Leases, id, &rec, false)
            .map_err(me(id))?;
    }
    Ok(())
}

impl Store {
    /// Creates lease `id`, expiring at `expires` (`None`: until deleted).
    pub fn lease_create(
        &self,
        id: &str,
        expires: Option<DateTime<Utc>>,
        labels: BTreeMap<String, String>,
    ) -> Result<LeaseRecord, LeaseError> {
        check_id(id)?;
        let txn = self.meta().txn().map_err(me(id))?;
        if txn
            .get::<LeaseRecord>(Kind::Leases, id)
            .map_err(me(id))?
            .is_some()
        {
            return Err(LeaseError::AlreadyExists(id.to_owned()));
        }
        let rec = LeaseRecord {
            id: id.to_owned(),
            created: Utc::now(),
            expires,
            labels,
            resources: BTreeSet::new(),
        };
        txn.put_opts(Kind::Leases, id, &rec, false)
            .map_err(me(id))?;
        Ok(rec)
    }

    /// Adds a blob or snapshot to lease `id`.
    pub fn lease_add_resource(&self, id: &str, r: Resource) -> Result<(), LeaseError> {
        check_id(id)?;
        let txn = self.meta().txn().map_err(me(id))?;
        add_resource_locked(&txn, id, r)
    }

    /// Removes a resource from lease `id`.
    pub fn lease_remove_resource(&self, id: &str, r: &Resource) -> Result<(), LeaseError> {
        check_id(id)?;
        let txn = self.meta().txn().map_err(me(id))?;
        let mut rec: LeaseRecord = txn
            .get(Kind::Leases, id)
            .map_err(me(id))?
            .ok_or_else(|| LeaseError::NotFound(id.to_owned()))?;
        if rec.resources.remove(r) {
            txn.put_opts(Kind::Leases, id, &rec, false)
                .map_err(me(id))?;
        }
        Ok(())
    }

    /// Deletes lease `id` (what it protected goes at the next GC unless referenced).
    pub fn lease_delete(&self, id: &str) -> Result<(), LeaseError> {
        check_id(id)?;
        let txn = self.meta().txn().map_err(me(id))?;
        if !txn.delete_opts(Kind::Leases, id, false).map_err(me(id))? {
            return Err(LeaseError::NotFound(id.to_owned()));
        }
        Ok(())
    }

    /// Lease `id`, if present.
    pub fn lease_get(&self, id: &str) -> Result<Option<LeaseRecord>, LeaseError> {
        check_id(id)?;
        self.meta().get(Kind::Leases, id).map_err(me(id))
    }

    /// Every lease.
    pub fn lease_list(&self) -> Result<Vec<LeaseRecord>, LeaseError> {
        Ok(self
            .meta()
            .list::<LeaseRecord>(Kind::Leases)
            .map_err(me(""))?
            .into_iter()
            .map(|(_, r)| r)
            .collect())
    }
}
