//! The store's self-check: run by [`Store::open`] and on demand (`skiff system check`).
//!
//! Under the store lock it repairs what a crash can leave — temp files, half-made or
//! half-removed snapshot directories, unrecorded snapshot directories, dangling or missing
//! `l/` links, idle ingests without metadata, a snapshot commit cut between its two record
//! writes — and reports what it cannot repair (records whose directory or blob is missing,
//! unreadable records). Unreadable records are moved to `meta/quarantine/`, never deleted;
//! image records are never removed.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::path::Path;

use sha2::{Digest as _, Sha256};

use crate::digest::Digest;
use crate::fsutil::{self, is_temp_name};
use crate::meta::{read_record, ImageRecord, Kind, MetaError, SnapshotKind, SnapshotRecord, Txn};
use crate::snapshot::{self, TRASH_PREFIX};
use crate::store::Store;

/// Errors that stop the check itself (not findings).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("check: {0}")]
    Meta(#[from] MetaError),
    #[error("check: {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Options of an on-demand check.
#[derive(Clone, Copy, Debug, Default)]
pub struct CheckOptions {
    /// Re-hash every blob; a blob whose content no longer matches its name is removed.
    pub verify_blobs: bool,
}

/// What a check found: `repaired` (done) and `problems` (for a human).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    pub repaired: Vec<String>,
    pub problems: Vec<String>,
}

impl CheckReport {
    /// No problems left (repairs are fine).
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in &self.repaired {
            writeln!(f, "repaired: {r}")?;
        }
        for p in &self.problems {
            writeln!(f, "problem: {p}")?;
        }
        if self.repaired.is_empty() && self.problems.is_empty() {
            writeln!(f, "store is clean")?;
        }
        Ok(())
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CheckError + '_ {
    move |source| CheckError::Io {
        path: path.to_owned(),
        source,
    }
}

fn entries(dir: &Path) -> Result<Vec<(String, std::path::PathBuf)>, CheckError> {
    let mut out = Vec::new();
    match fs::read_dir(dir) {
        Ok(rd) => {
            for e in rd {
                let e = e.map_err(io_err(dir))?;
                out.push((e.file_name().to_string_lossy().into_owned(), e.path()));
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(dir)(e)),
    }
    out.sort();
    Ok(out)
}

impl Store {
    /// Checks and repairs the store (without re-hashing blobs).
    pub fn check(&self) -> Result<CheckReport, CheckError> {
        self.check_with(CheckOptions::default())
    }

    /// Checks and repairs the store with options.
    pub fn check_with(&self, opts: CheckOptions) -> Result<CheckReport, CheckError> {
        let txn = self.meta().txn()?;
        let mut r = CheckReport::default();
        self.check_locked(&txn, opts, &mut r)?;
        Ok(r)
    }

    pub(crate) fn check_locked(
        &self,
        txn: &Txn<'_>,
        opts: CheckOptions,
        r: &mut CheckReport,
    ) -> Result<(), CheckError> {
        let layout = self.layout().clone();
        // 1. Temp files left by atomic writes (all are made under this lock).
        let mut dirs = vec![
            layout.root.clone(),
            layout.blobs(),
            layout.links(),
            layout.meta(),
        ];
        dirs.extend(Kind::ALL.iter().map(|k| self.meta().kind_dir(*k)));
        for d in &dirs {
            for (name, p) in entries(d)? {
                if is_temp_name(&name) && p.is_file() {
                    fs::remove_file(&p).map_err(io_err(&p))?;
                    r.repaired
                        .push(format!("removed temp file {}", p.display()));
                }
            }
        }
        // 2. Unreadable records go to quarantine.
        for k in Kind::ALL {
            for (name, p) in entries(&self.meta().kind_dir(k))? {
                if !name.ends_with(".json") || is_temp_name(&name) {
                    continue;
                }
                if let Err(e) = read_record::<serde_json::Value>(&p).and_then(|_| match k {
                    Kind::Images => read_record::<ImageRecord>(&p).map(drop),
                    Kind::Snapshots => read_record::<SnapshotRecord>(&p).map(drop),
                    Kind::Leases => read_record::<crate::meta::LeaseRecord>(&p).map(drop),
                    Kind::Content => read_record::<crate::meta::ContentRecord>(&p).map(drop),
                }) {
                    let q = layout.quarantine().join(format!("{}-{name}", k.dir_name()));
                    fs::rename(&p, &q).map_err(io_err(&p))?;
                    r.problems.push(format!("{e}; moved to {}", q.display()));
                }
            }
        }
        // 3. Blobs.
        for (name, p) in entries(&layout.blobs())? {
            let Ok(d) = Digest::from_hex(&name) else {
                if !is_temp_name(&name) {
                    r.problems
                        .push(format!("unexpected file in blob store: {}", p.display()));
                }
                continue;
            };
            if opts.verify_blobs && hash_file(&p).map_err(io_err(&p))? != d {
                crate::content::delete_locked(&self.inner, txn, &d).map_err(|e| {
                    CheckError::Io {
                        path: p.clone(),
                        source: io::Error::other(e.to_string()),
                    }
                })?;
                r.repaired.push(format!(
                    "removed corrupt blob {d} (content does not match its digest)"
                ));
            }
        }
        for img in txn
            .list::<ImageRecord>(Kind::Images)?
            .into_iter()
            .map(|(_, i)| i)
        {
            if !layout.blobs().join(img.target.digest.hex()).exists() {
                r.problems.push(format!(
                    "image {:?}: target {} is missing",
                    img.name, img.target.digest
                ));
            }
        }
        // 4. Ingests without metadata (crashed before their first write) when idle.
        for (name, p) in entries(&layout.ingest())? {
            if !p.join("meta.json").exists() && crate::content::ingest_remove_dir_if_idle(&p) {
                r.repaired.push(format!("removed half-made ingest {name}"));
            }
        }
        self.check_snapshots(txn, r)
    }

    fn check_snapshots(&self, txn: &Txn<'_>, r: &mut CheckReport) -> Result<(), CheckError> {
        let layout = self.layout().clone();
        let mut recs: BTreeMap<String, SnapshotRecord> =
            txn.list(Kind::Snapshots)?.into_iter().collect();
        // A commit cut between "write committed record" and "delete active record".
        let mut by_id: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, rec) in &recs {
            by_id.entry(rec.id.clone()).or_default().push(k.clone());
        }
        for keys in by_id.values().filter(|v| v.len() > 1) {
            let committed = keys
                .iter()
                .filter(|k| recs[*k].kind == SnapshotKind::Committed)
                .count();
            if committed == 1 {
                for k in keys
                    .iter()
                    .filter(|k| recs[*k].kind == SnapshotKind::Active)
                {
                    txn.delete(Kind::Snapshots, k)?;
                    r.repaired
                        .push(format!("snapshot {k:?}: finished interrupted commit"));
                }
            } else {
                r.problems
                    .push(format!("snapshots {keys:?} share one directory"));
            }
        }
        recs.retain(|k, _| txn.meta().record_path(Kind::Snapshots, k).exists());
        let ids: HashSet<&str> = recs.values().map(|r| r.id.as_str()).collect();
        for (name, p) in entries(&layout.overlay())? {
            if name == "l" {
                continue;
            }
            let debris = is_temp_name(&name) || name.starts_with(TRASH_PREFIX);
            if debris || !ids.contains(name.as_str()) {
                if !debris {
                    snapshot::remove_dir(&self.inner, &name, true)
                        .map_err(|(p, e)| io_err(&p)(e))?;
                } else {
                    fsutil::remove_dir_all_quiet(&p).map_err(io_err(&p))?;
                }
                r.repaired.push(format!(
                    "removed unrecorded snapshot directory {}",
                    p.display()
                ));
            }
        }
        for (k, rec) in &recs {
            let dir = self.overlay_dir(&rec.id);
            if !dir.is_dir() {
                r.problems.push(format!(
                    "snapshot {k:?}: directory {} is missing",
                    dir.display()
                ));
                continue;
            }
            if let Some(p) = &rec.parent {
                if !recs.contains_key(p) {
                    r.problems
                        .push(format!("snapshot {k:?}: parent {p:?} is missing"));
                }
            }
            if let Ok(link) = fs::read_to_string(dir.join("link")) {
                let l = layout.links().join(link.trim());
                if fs::symlink_metadata(&l).is_err() {
                    std::os::unix::fs::symlink(format!("../{}/diff", rec.id), &l)
                        .map_err(io_err(&l))?;
                    r.repaired
                        .push(format!("snapshot {k:?}: restored link {}", l.display()));
                }
            } else {
                r.problems.push(format!(
                    "snapshot {k:?}: {} has no link file",
                    dir.display()
                ));
            }
        }
        for (_, p) in entries(&layout.links())? {
            if fs::symlink_metadata(&p).is_ok() && fs::metadata(&p).is_err() {
                fs::remove_file(&p).map_err(io_err(&p))?;
                r.repaired
                    .push(format!("removed dangling link {}", p.display()));
            }
        }
        Ok(())
    }
}

fn hash_file(p: &Path) -> io::Result<Digest> {
    let mut f = fs::File::open(p)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(Digest::from_sha256(h.finalize().as_slice()));
        }
        h.update(&buf[..n]);
    }
}
