//! The directories of `RUN --mount=type=cache`: persistent across builds, never part of a
//! layer, counted in `system df` and removed by `builder prune`.
//!
//! Layout (version [`CACHE_MOUNTS_VERSION`]), under the data root:
//!
//! ```text
//! builder/cache-mounts/v1.lock        flock: shared while a RUN uses any cache mount,
//!                                     exclusive (non-blocking) while `builder prune` removes them
//! builder/cache-mounts/v1/<sha256(id)>/
//!     meta.json                       {"id": …, "created": RFC 3339} (written once, atomically)
//!     data/                           the cache (what `sharing=shared|locked` users mount)
//!     data.lock                       flock on `data`: shared users hold it shared, `locked`
//!                                     users exclusive (blocking), `private` users exclusive
//!                                     (non-blocking)
//!     private-<n>/, private-<n>.lock  more copies of the cache, made for a `private` user when
//!                                     `data` (and every earlier copy) is in use; kept for the
//!                                     next private user
//! ```
//!
//! The directory name is the hex sha256 of the mount's id (ids are free text: `/root/.cache`,
//! `go-build`). As in BuildKit: `mode`, `uid` and `gid` apply when the cache directory is
//! made (an existing cache keeps its owner and mode); the id alone names the cache (two
//! Dockerfiles using one id share it); the contents never reach a layer or a cache key.
//! A directory without `meta.json` is a creation that crashed midway, made whole by the next
//! user. `builder prune` skips everything while a RUN holds the top lock (caches in use stay).

use std::os::unix::fs::{lchown, DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use skiff_build::mounts::Sharing;
use skiff_store::lock::{FileLock, LockMode};

use super::cache::CacheRecord;
use super::{io_err, BuildError};

/// The on-disk version of the cache mount layout.
pub const CACHE_MOUNTS_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Meta {
    id: String,
    created: String,
}

/// The cache mount directories of one data root.
#[derive(Debug, Clone)]
pub struct CacheMounts {
    dir: PathBuf,
    top_lock: PathBuf,
}

/// A cache directory held for one RUN (its locks released on drop).
#[derive(Debug)]
pub(crate) struct HeldCache {
    /// The host directory to mount.
    pub path: PathBuf,
    _lock: FileLock,
    _top: FileLock,
}

fn lock_err(e: skiff_store::lock::LockError) -> BuildError {
    BuildError::Cache {
        path: PathBuf::new(),
        source: std::io::Error::other(e.to_string()),
    }
}

impl CacheMounts {
    pub fn new(data_root: &Path) -> CacheMounts {
        let base = data_root.join("builder").join("cache-mounts");
        CacheMounts {
            dir: base.join(format!("v{CACHE_MOUNTS_VERSION}")),
            top_lock: base.join(format!("v{CACHE_MOUNTS_VERSION}.lock")),
        }
    }

    fn id_dir(&self, id: &str) -> PathBuf {
        let d = skiff_image::digest::sha256(id.as_bytes()).to_string();
        self.dir.join(d.trim_start_matches("sha256:"))
    }

    /// The cache `id` for one RUN, as `sharing` says; made with `mode`/`uid`/`gid` if new,
    /// then filled with a copy of `seed` (a rootfs and a directory inside it, resolved in
    /// that root; the cache then takes that directory's owner and mode) if given.
    /// Blocks while a `locked` user holds it (or, for `locked`, while anyone does).
    pub(crate) fn hold(
        &self,
        id: &str,
        sharing: Sharing,
        mode: u32,
        owner: (u32, u32),
        seed: Option<(&Path, &str)>,
    ) -> Result<HeldCache, BuildError> {
        std::fs::create_dir_all(&self.dir).map_err(io_err("create", &self.dir))?;
        let top = FileLock::acquire(&self.top_lock, LockMode::Shared).map_err(lock_err)?;
        let dir = self.id_dir(id);
        std::fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        let meta = dir.join("meta.json");
        if !meta.exists() {
            let m = Meta {
                id: id.to_string(),
                created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            };
            let bytes = serde_json::to_vec(&m).unwrap_or_default();
            skiff_store::fsutil::atomic_write_opts(&meta, &bytes, false)
                .map_err(io_err("write", &meta))?;
        }
        let (path, lock) = match sharing {
            Sharing::Shared | Sharing::Locked => {
                let mode_l = if sharing == Sharing::Shared {
                    LockMode::Shared
                } else {
                    LockMode::Exclusive
                };
                let l = FileLock::acquire(&dir.join("data.lock"), mode_l).map_err(lock_err)?;
                (dir.join("data"), l)
            }
            Sharing::Private => {
                let mut n = 0usize;
                loop {
                    let (d, l) = if n == 0 {
                        (dir.join("data"), dir.join("data.lock"))
                    } else {
                        (
                            dir.join(format!("private-{n}")),
                            dir.join(format!("private-{n}.lock")),
                        )
                    };
                    if let Some(l) =
                        FileLock::try_acquire(&l, LockMode::Exclusive).map_err(lock_err)?
                    {
                        break (d, l);
                    }
                    n += 1;
                }
            }
        };
        if !path.is_dir() {
            // Made under a temporary name, so a crash never leaves a cache with the wrong
            // owner or mode.
            let tmp = dir.join(format!(".new-{}", &crate::containers::random_id()[..12]));
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&tmp)
                .map_err(io_err("create", &tmp))?;
            lchown(&tmp, Some(owner.0), Some(owner.1)).map_err(io_err("chown", &tmp))?;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode & 0o7777))
                .map_err(io_err("chmod", &tmp))?;
            if let Some((root, src)) = seed {
                if let Err(e) = crate::volumes::copyup::copy_up(root, src, &tmp) {
                    let _ = std::fs::remove_dir_all(&tmp);
                    return Err(io_err("seed cache mount from", &root.join(src))(e));
                }
            }
            std::fs::rename(&tmp, &path).map_err(io_err("rename", &tmp))?;
        }
        Ok(HeldCache {
            path,
            _lock: lock,
            _top: top,
        })
    }

    fn entries(&self) -> Vec<(PathBuf, Option<Meta>)> {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut v: Vec<(PathBuf, Option<Meta>)> = rd
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| {
                let meta = std::fs::read(e.path().join("meta.json"))
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok());
                (e.path(), meta)
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// One `system df` record per cache id (`exec.cachemount`), sized by what is on disk.
    pub fn usage(&self) -> Vec<CacheRecord> {
        self.entries()
            .into_iter()
            .map(|(p, m)| {
                let name = p
                    .file_name()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let in_use = skiff_store::lock::is_locked(&p.join("data.lock"));
                let m = m.unwrap_or(Meta {
                    id: String::new(),
                    created: String::new(),
                });
                CacheRecord {
                    id: name[..25.min(name.len())].to_string(),
                    description: format!("cached mount with id {:?}", m.id),
                    size: du_caches(&p),
                    created: m.created,
                    last_used: None,
                    kind: "exec.cachemount",
                    in_use,
                }
            })
            .collect()
    }

    /// Removes every cache mount, unless a RUN uses one now (then none: `Ok(None)`).
    /// Returns the removed ids (directory names) and the bytes freed.
    pub fn prune(&self) -> Result<Option<(Vec<String>, u64)>, BuildError> {
        if !self.dir.exists() {
            return Ok(Some((Vec::new(), 0)));
        }
        let Some(_top) =
            FileLock::try_acquire(&self.top_lock, LockMode::Exclusive).map_err(lock_err)?
        else {
            return Ok(None);
        };
        let mut ids = Vec::new();
        let mut freed = 0;
        for (p, _) in self.entries() {
            freed += du_caches(&p);
            std::fs::remove_dir_all(&p).map_err(io_err("remove", &p))?;
            ids.push(
                p.file_name()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            );
        }
        Ok(Some((ids, freed)))
    }
}

/// Bytes used by the caches of one id (`data/` and `private-<n>/`).
fn du_caches(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| du(&e.path()))
                .sum()
        })
        .unwrap_or(0)
}

/// Bytes used under `p` (files' apparent sizes; links not followed).
fn du(p: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![p.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(_) => total += e.metadata().map(|m| m.len()).unwrap_or(0),
                Err(_) => {}
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn sharing_modes_and_prune() {
        let t = tempfile::tempdir().unwrap();
        let c = CacheMounts::new(t.path());
        let a = c
            .hold("/root/.cache", Sharing::Shared, 0o750, (0, 0), None)
            .unwrap();
        let m = std::fs::metadata(&a.path).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o750);
        std::fs::write(a.path.join("f"), "12345").unwrap();
        // Shared: the same directory for a second user at the same time.
        let b = c
            .hold("/root/.cache", Sharing::Shared, 0o755, (0, 0), None)
            .unwrap();
        assert_eq!(a.path, b.path);
        // Private: a copy of its own while the data is in use; the data itself when free.
        let p = c
            .hold("/root/.cache", Sharing::Private, 0o755, (0, 0), None)
            .unwrap();
        assert_ne!(p.path, a.path);
        assert!(!p.path.join("f").exists());
        drop((a, b, p));
        let p = c
            .hold("/root/.cache", Sharing::Private, 0o755, (0, 0), None)
            .unwrap();
        assert!(p.path.join("f").exists());
        // Locked waits for the holder.
        let (tx, rx) = std::sync::mpsc::channel();
        let c2 = c.clone();
        let th = std::thread::spawn(move || {
            let h = c2
                .hold("/root/.cache", Sharing::Locked, 0o755, (0, 0), None)
                .unwrap();
            tx.send(()).unwrap();
            drop(h);
        });
        assert!(rx
            .recv_timeout(std::time::Duration::from_millis(200))
            .is_err());
        // In use: df says so, prune leaves everything.
        let u = c.usage();
        assert_eq!(u.len(), 1);
        assert!(u[0].in_use && u[0].size == 5, "{u:?}");
        assert!(u[0].description.contains("/root/.cache"));
        assert!(c.prune().unwrap().is_none());
        drop(p);
        rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
        th.join().unwrap();
        let (ids, freed) = c.prune().unwrap().unwrap();
        assert_eq!((ids.len(), freed), (1, 5));
        assert!(c.usage().is_empty());
    }
}
