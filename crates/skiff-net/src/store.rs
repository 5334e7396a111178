//! The network store on disk. Layout version 1, under the state directory the caller gives
//! (the daemon uses `<data-root>/network`):
//!
//! ```text
//! version                          "1\n"; a newer version is refused, a missing one written
//! lock                             flock(LOCK_EX) held while a `Networks` is open
//! networks/<network-id>.json       NetworkRecord (crate::model)
//! endpoints/<network-id>/<container-id>.json   EndpointRecord
//! ```
//!
//! Every write is write-temp (`.tmp-<name>`) + rename, so a crash leaves the old or the new
//! file, never a torn one; network records are also fsynced (file and directory). Endpoint
//! records are not: they describe running containers only, which a power loss ends anyway,
//! and [`crate::Networks::reconcile`] drops those of containers that are gone — the fsyncs
//! (3–10 ms each on slow disks) would sit on every container start. IP address allocations are not
//! stored separately: they are the `ip` fields of the endpoint records, replayed into each
//! network's `AddressSpace` on open. Leftover temp files are deleted on load; an unreadable
//! record is renamed `<name>.corrupt` and reported, not silently dropped.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::model::{EndpointRecord, NetworkRecord};

/// The layout version this code reads and writes.
pub const LAYOUT_VERSION: u32 = 1;

/// Store failures, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("network state {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("network state {0}: in use by another process")]
    Locked(PathBuf),
    #[error("network state {path}: layout version {found} is newer than {LAYOUT_VERSION}")]
    TooNew { path: PathBuf, found: String },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What [`Store::load`] found.
#[derive(Debug, Default)]
pub struct Loaded {
    pub networks: Vec<NetworkRecord>,
    pub endpoints: Vec<EndpointRecord>,
    /// Records that could not be read, moved aside as `.corrupt`.
    pub corrupt: Vec<PathBuf>,
}

/// The open store.
pub struct Store {
    root: PathBuf,
    _lock: File,
}

impl Store {
    /// Opens (creating) the store at `root` and takes its lock.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        for d in [
            root.to_path_buf(),
            root.join("networks"),
            root.join("endpoints"),
        ] {
            fs::create_dir_all(&d).map_err(io_at(&d))?;
        }
        let lock_path = root.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_at(&lock_path))?;
        flock(&lock, FlockOperation::NonBlockingLockExclusive)
            .map_err(|_| StoreError::Locked(root.to_path_buf()))?;
        let vpath = root.join("version");
        match fs::read_to_string(&vpath) {
            Ok(v) => {
                let found = v.trim().to_string();
                if found.parse::<u32>().map_or(true, |n| n > LAYOUT_VERSION) {
                    return Err(StoreError::TooNew { path: vpath, found });
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                write_atomic(&vpath, format!("{LAYOUT_VERSION}\n").as_bytes())?;
            }
            Err(e) => return Err(io_at(&vpath)(e)),
        }
        Ok(Store {
            root: root.to_path_buf(),
            _lock: lock,
        })
    }

    fn network_path(&self, id: &str) -> PathBuf {
        self.root.join("networks").join(format!("{id}.json"))
    }

    fn endpoint_dir(&self, network_id: &str) -> PathBuf {
        self.root.join("endpoints").join(network_id)
    }

    /// Reads every record.
    pub fn load(&self) -> Result<Loaded, StoreError> {
        let mut out = Loaded::default();
        out.networks = read_dir_records(&self.root.join("networks"), &mut out.corrupt)?;
        let edir = self.root.join("endpoints");
        for e in fs::read_dir(&edir).map_err(io_at(&edir))? {
            let e = e.map_err(io_at(&edir))?;
            if e.path().is_dir() {
                let mut eps: Vec<EndpointRecord> = read_dir_records(&e.path(), &mut out.corrupt)?;
                out.endpoints.append(&mut eps);
            }
        }
        Ok(out)
    }

    pub fn save_network(&self, n: &NetworkRecord) -> Result<(), StoreError> {
        write_json(&self.network_path(&n.id), n)
    }

    /// Removes a network's record and its endpoint directory.
    pub fn remove_network(&self, id: &str) -> Result<(), StoreError> {
        let d = self.endpoint_dir(id);
        match fs::remove_dir_all(&d) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_at(&d)(e)),
            _ => {}
        }
        remove_file(&self.network_path(id))
    }

    pub fn save_endpoint(&self, e: &EndpointRecord) -> Result<(), StoreError> {
        let d = self.endpoint_dir(&e.network_id);
        fs::create_dir_all(&d).map_err(io_at(&d))?;
        write_json_opts(&d.join(format!("{}.json", e.container_id)), e, false)
    }

    pub fn remove_endpoint(&self, network_id: &str, container_id: &str) -> Result<(), StoreError> {
        remove_file(
            &self
                .endpoint_dir(network_id)
                .join(format!("{container_id}.json")),
        )
    }
}

fn remove_file(p: &Path) -> Result<(), StoreError> {
    match fs::remove_file(p) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_at(p)(e)),
        _ => Ok(()),
    }
}

fn read_dir_records<T: DeserializeOwned>(
    dir: &Path,
    corrupt: &mut Vec<PathBuf>,
) -> Result<Vec<T>, StoreError> {
    let mut out = Vec::new();
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(io_at(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    paths.sort();
    for p in paths {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with(".tmp-") {
            let _ = fs::remove_file(&p);
            continue;
        }
        if !name.ends_with(".json") {
            continue;
        }
        let bytes = fs::read(&p).map_err(io_at(&p))?;
        match serde_json::from_slice(&bytes) {
            Ok(r) => out.push(r),
            Err(e) => {
                tracing::warn!(path = %p.display(), error = %e, "unreadable network record moved aside");
                let aside = p.with_extension("json.corrupt");
                fs::rename(&p, &aside).map_err(io_at(&p))?;
                corrupt.push(aside);
            }
        }
    }
    Ok(out)
}

fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<(), StoreError> {
    write_json_opts(path, v, true)
}

fn write_json_opts<T: Serialize>(path: &Path, v: &T, durable: bool) -> Result<(), StoreError> {
    let mut bytes = serde_json::to_vec_pretty(v).map_err(|e| io_at(path)(io::Error::other(e)))?;
    bytes.push(b'\n');
    write_atomic_opts(path, &bytes, durable)
}

/// write-temp + fsync + rename + fsync(dir).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    write_atomic_opts(path, bytes, true)
}

/// write-temp + rename, with the fsyncs when `durable`.
fn write_atomic_opts(path: &Path, bytes: &[u8], durable: bool) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".tmp-{name}"));
    let mut f = File::create(&tmp).map_err(io_at(&tmp))?;
    f.write_all(bytes).map_err(io_at(&tmp))?;
    if durable {
        f.sync_all().map_err(io_at(&tmp))?;
    }
    drop(f);
    fs::rename(&tmp, path).map_err(io_at(path))?;
    if !durable {
        return Ok(());
    }
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_at(dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Driver, EndpointState};

    fn net(id: &str) -> NetworkRecord {
        NetworkRecord::bare(
            id.into(),
            &format!("n-{id}"),
            Driver::Bridge,
            chrono::Utc::now(),
        )
    }

    #[test]
    fn roundtrip_lock_and_corruption() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        assert!(matches!(Store::open(d.path()), Err(StoreError::Locked(_))));
        s.save_network(&net("a")).unwrap();
        s.save_network(&net("b")).unwrap();
        let ep = EndpointRecord {
            endpoint_id: "e".into(),
            network_id: "a".into(),
            container_id: "c1".into(),
            container_name: "web".into(),
            aliases: vec![],
            netns: "/x".into(),
            ifname: "eth0".into(),
            host_veth: "skv0".into(),
            ip: "172.18.0.2".parse().unwrap(),
            mac: "02:42:ac:12:00:02".into(),
            static_ip: false,
            ports: vec![],
            state: EndpointState::Ready,
        };
        s.save_endpoint(&ep).unwrap();
        fs::write(d.path().join("networks/.tmp-x.json"), b"{").unwrap();
        fs::write(d.path().join("networks/bad.json"), b"{not json").unwrap();
        let l = s.load().unwrap();
        assert_eq!(l.networks.len(), 2);
        assert_eq!(l.endpoints, vec![ep]);
        assert_eq!(l.corrupt.len(), 1);
        assert!(!d.path().join("networks/.tmp-x.json").exists());
        s.remove_network("a").unwrap();
        let l = s.load().unwrap();
        assert_eq!(l.networks.len(), 1);
        assert!(l.endpoints.is_empty());
        drop(s);
        fs::write(d.path().join("version"), "2\n").unwrap();
        assert!(matches!(
            Store::open(d.path()),
            Err(StoreError::TooNew { .. })
        ));
    }
}
