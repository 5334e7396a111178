//! Volumes: named and anonymous data directories that outlive containers (Docker's `local`
//! driver).
//!
//! ## On disk (`<data-root>/volumes`, layout version 1)
//! ```text
//! volumes/version                 "1"
//! volumes/<name>/volume.json      {Name, Driver, Labels, Options, CreatedAt, Anonymous}
//! volumes/<name>/_data/           the data (the mount point containers bind)
//! ```
//! `volume.json` is written temp + fsync + rename before `_data` is used, so a crash leaves
//! either no volume or a whole one; a directory without a record (a create that crashed) is
//! removed on open. Names are Docker's `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, so a name can never
//! leave this directory.
//!
//! Volumes with `type`/`device`/`o` options (e.g. `type=tmpfs device=tmpfs o=size=64m`, or
//! `type=none o=bind device=/srv/x`) are mounted onto `_data` when the first container using
//! them starts and unmounted when the last one stops, as Docker's local driver does.
//!
//! Which containers use a volume is not stored here: the container service registers its
//! records' volume mount points ([`Volumes::add_user`]) on open and create.

pub(crate) mod copyup;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

pub use copyup::copy_up;

/// The layout version of `<data-root>/volumes`.
pub const LAYOUT_VERSION: u32 = 1;

/// The label Docker puts on anonymous volumes.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// Errors of the volume service.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("get {0}: no such volume")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("remove {name}: volume is in use - [{}]", users.join(", "))]
    InUse { name: String, users: Vec<String> },
    #[error("volume {name}: {what}: {source}")]
    Io {
        name: String,
        what: String,
        #[source]
        source: std::io::Error,
    },
}

type Result<T> = std::result::Result<T, VolumeError>;

/// One volume's record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Volume {
    pub name: String,
    pub driver: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    pub created_at: String,
    #[serde(default)]
    pub anonymous: bool,
}

#[derive(Default)]
struct State {
    vols: BTreeMap<String, Volume>,
    /// Containers whose records mount each volume.
    users: BTreeMap<String, BTreeSet<String>>,
    /// Running containers holding a device mount of an options volume.
    mounted: BTreeMap<String, BTreeSet<String>>,
}

/// The volume service.
pub struct Volumes {
    root: PathBuf,
    state: Mutex<State>,
}

/// Docker's volume name rule.
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

impl Volumes {
    /// Opens (creating) `<data-root>/volumes`.
    pub fn open(root: &Path) -> Result<Volumes> {
        let io = |what: &str| {
            let what = what.to_string();
            move |source| VolumeError::Io {
                name: String::new(),
                what,
                source,
            }
        };
        std::fs::create_dir_all(root).map_err(io("create volumes dir"))?;
        let vfile = root.join("version");
        match std::fs::read_to_string(&vfile) {
            Ok(v) if v.trim() == LAYOUT_VERSION.to_string() => {}
            Ok(v) => {
                return Err(VolumeError::Invalid(format!(
                    "{}: layout version {:?}, this skiff knows {LAYOUT_VERSION}",
                    vfile.display(),
                    v.trim()
                )))
            }
            Err(_) => {
                skiff_store::fsutil::atomic_write(&vfile, LAYOUT_VERSION.to_string().as_bytes())
                    .map_err(io("write version"))?
            }
        }
        let mut st = State::default();
        for de in std::fs::read_dir(root).map_err(io("read volumes dir"))? {
            let Ok(de) = de else { continue };
            let Some(name) = de.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if !de.path().is_dir() || !valid_name(&name) {
                continue;
            }
            match std::fs::read(de.path().join("volume.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<Volume>(&b).ok())
            {
                Some(v) if v.name == name => {
                    st.vols.insert(name, v);
                }
                _ => {
                    tracing::warn!(volume = %name, "volume without a readable record: removed");
                    let _ = skiff_store::unmount_lazy(&de.path().join("_data"));
                    let _ = std::fs::remove_dir_all(de.path());
                }
            }
        }
        Ok(Volumes {
            root: root.to_path_buf(),
            state: Mutex::new(st),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where a volume's data is.
    pub fn mountpoint(&self, name: &str) -> PathBuf {
        self.root.join(name).join("_data")
    }

    /// Creates a volume (a random 64-hex name when `name` is None: anonymous). An existing
    /// name is returned as it is (Docker's idempotent create) unless its driver differs.
    pub fn create(
        &self,
        name: Option<&str>,
        driver: &str,
        options: BTreeMap<String, String>,
        mut labels: BTreeMap<String, String>,
    ) -> Result<Volume> {
        let driver = if driver.is_empty() { "local" } else { driver };
        if driver != "local" {
            return Err(VolumeError::Invalid(format!(
                "error looking up volume plugin {driver}: plugin \"{driver}\" not found"
            )));
        }
        for k in options.keys() {
            if !matches!(k.as_str(), "type" | "device" | "o" | "size") {
                return Err(VolumeError::Invalid(format!("invalid option key: {k:?}")));
            }
        }
        let anonymous = name.is_none();
        let name = match name {
            Some(n) if !valid_name(n) => {
                return Err(VolumeError::Invalid(format!(
                    "create {n}: \"{n}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
                )))
            }
            Some(n) => n.to_string(),
            None => crate::containers::service::new_id(),
        };
        if anonymous {
            labels.insert(ANONYMOUS_LABEL.into(), String::new());
        }
        let mut st = self.lock();
        if let Some(v) = st.vols.get(&name) {
            return Ok(v.clone());
        }
        let v = Volume {
            name: name.clone(),
            driver: driver.into(),
            labels,
            options,
            created_at: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
            anonymous,
        };
        let dir = self.root.join(&name);
        let io = |what: &'static str| {
            let name = name.clone();
            move |source| VolumeError::Io {
                name,
                what: what.into(),
                source,
            }
        };
        std::fs::create_dir_all(dir.join("_data")).map_err(io("create"))?;
        let body = serde_json::to_vec_pretty(&v).expect("volume serializes");
        skiff_store::fsutil::atomic_write(&dir.join("volume.json"), &body)
            .map_err(io("write record"))?;
        st.vols.insert(name, v.clone());
        Ok(v)
    }

    /// One volume.
    pub fn get(&self, name: &str) -> Result<Volume> {
        self.lock()
            .vols
            .get(name)
            .cloned()
            .ok_or_else(|| VolumeError::NotFound(name.into()))
    }

    /// Every volume.
    pub fn list(&self) -> Vec<Volume> {
        self.lock().vols.values().cloned().collect()
    }

    /// The containers whose records use `name`.
    pub fn users(&self, name: &str) -> Vec<String> {
        self.lock()
            .users
            .get(name)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Records that container `id` uses volume `name`.
    pub fn add_user(&self, name: &str, id: &str) {
        self.lock()
            .users
            .entry(name.into())
            .or_default()
            .insert(id.into());
    }

    /// Forgets container `id`'s use of volume `name`.
    pub fn remove_user(&self, name: &str, id: &str) {
        let mut st = self.lock();
        if let Some(s) = st.users.get_mut(name) {
            s.remove(id);
            if s.is_empty() {
                st.users.remove(name);
            }
        }
    }

    /// Removes a volume: refused while a container uses it (even with `force`, as Docker).
    /// `force` makes a missing volume not an error.
    pub fn remove(&self, name: &str, force: bool) -> Result<()> {
        let mut st = self.lock();
        if !st.vols.contains_key(name) {
            return if force {
                Ok(())
            } else {
                Err(VolumeError::NotFound(name.into()))
            };
        }
        if let Some(u) = st.users.get(name).filter(|u| !u.is_empty()) {
            return Err(VolumeError::InUse {
                name: name.into(),
                users: u.iter().cloned().collect(),
            });
        }
        let dir = self.root.join(name);
        let _ = skiff_store::unmount(&dir.join("_data"));
        // The record goes first: a crash midway leaves a directory without one, removed
        // on the next open.
        std::fs::remove_file(dir.join("volume.json")).map_err(|source| VolumeError::Io {
            name: name.into(),
            what: "remove record".into(),
            source,
        })?;
        st.vols.remove(name);
        st.mounted.remove(name);
        drop(st);
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }

    /// The size of a volume's data in bytes (for df and prune), following no symlinks.
    pub fn size(&self, name: &str) -> u64 {
        fn walk(p: &Path) -> u64 {
            let Ok(rd) = std::fs::read_dir(p) else {
                return 0;
            };
            rd.flatten()
                .map(|de| match de.metadata() {
                    Ok(m) if m.is_dir() => walk(&de.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        }
        walk(&self.mountpoint(name))
    }

    /// Before a container starts: mounts an options volume's device onto `_data` (the first
    /// user mounts it). Plain volumes need nothing.
    pub fn mount_for(&self, name: &str, container: &str) -> Result<()> {
        let mut st = self.lock();
        let v = st
            .vols
            .get(name)
            .cloned()
            .ok_or_else(|| VolumeError::NotFound(name.into()))?;
        let Some(kind) = v.options.get("type").filter(|t| !t.is_empty()) else {
            return Ok(());
        };
        let holders = st.mounted.entry(name.into()).or_default();
        if holders.is_empty() {
            let device = v.options.get("device").cloned().unwrap_or_default();
            let o = v.options.get("o").cloned().unwrap_or_default();
            mount_device(kind, &device, &o, &self.mountpoint(name)).map_err(|source| {
                VolumeError::Io {
                    name: name.into(),
                    what: format!("mount {kind} {device} ({o})"),
                    source,
                }
            })?;
        }
        holders.insert(container.into());
        Ok(())
    }

    /// After a container stopped: the last user unmounts an options volume.
    pub fn unmount_for(&self, name: &str, container: &str) {
        let mut st = self.lock();
        if let Some(h) = st.mounted.get_mut(name) {
            if h.remove(container) && h.is_empty() {
                st.mounted.remove(name);
                let _ = skiff_store::unmount(&self.mountpoint(name));
            }
        }
    }
}

/// mount(2) for the local driver's `type`/`device`/`o`: `o=bind` (or `type=none`) binds
/// `device`; other types mount `device` with `o` as data (`addr=` etc. are the caller's).
fn mount_device(kind: &str, device: &str, o: &str, target: &Path) -> std::io::Result<()> {
    use rustix::mount::{mount, mount_bind_recursive, MountFlags};
    let opts: Vec<&str> = o.split(',').filter(|s| !s.is_empty()).collect();
    if kind == "none" || opts.contains(&"bind") || opts.contains(&"rbind") {
        if !device.starts_with('/') {
            return Err(std::io::Error::other(format!(
                "bind device {device:?} must be an absolute path"
            )));
        }
        return mount_bind_recursive(device, target).map_err(Into::into);
    }
    let mut flags = MountFlags::empty();
    let mut data = Vec::new();
    for op in opts {
        match op {
            "ro" => flags |= MountFlags::RDONLY,
            "nosuid" => flags |= MountFlags::NOSUID,
            "nodev" => flags |= MountFlags::NODEV,
            "noexec" => flags |= MountFlags::NOEXEC,
            other => data.push(other),
        }
    }
    let device = if device.is_empty() { kind } else { device };
    let data = std::ffi::CString::new(data.join(","))
        .map_err(|_| std::io::Error::other("mount options contain a NUL byte"))?;
    mount(device, target, kind, flags, Some(data.as_c_str())).map_err(Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["ab", "a1", "my-vol_1.x", "0a"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "a", "-a", ".a", "a/b", "..", "a b", "../x", "a:b"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn create_list_remove_reopen() {
        let t = tempfile::tempdir().unwrap();
        let v = Volumes::open(t.path()).unwrap();
        let a = v
            .create(Some("data"), "", BTreeMap::new(), BTreeMap::new())
            .unwrap();
        assert_eq!(a.driver, "local");
        assert!(v.mountpoint("data").is_dir());
        // Idempotent.
        assert_eq!(
            v.create(Some("data"), "local", BTreeMap::new(), BTreeMap::new())
                .unwrap(),
            a
        );
        let anon = v
            .create(None, "", BTreeMap::new(), BTreeMap::new())
            .unwrap();
        assert_eq!(anon.name.len(), 64);
        assert!(anon.labels.contains_key(ANONYMOUS_LABEL));
        assert!(v
            .create(Some("../x"), "", BTreeMap::new(), BTreeMap::new())
            .is_err());
        assert!(v
            .create(Some("x1"), "nfs", BTreeMap::new(), BTreeMap::new())
            .is_err());
        v.add_user("data", "c1");
        let e = v.remove("data", true).unwrap_err().to_string();
        assert_eq!(e, "remove data: volume is in use - [c1]");
        v.remove_user("data", "c1");
        std::fs::write(v.mountpoint("data").join("f"), b"x").unwrap();
        drop(v);
        // A crashed create: a directory without a record goes on open.
        std::fs::create_dir_all(t.path().join("half/_data")).unwrap();
        let v = Volumes::open(t.path()).unwrap();
        assert_eq!(v.list().len(), 2);
        assert!(!t.path().join("half").exists());
        assert_eq!(v.size("data"), 1);
        v.remove("data", false).unwrap();
        assert!(matches!(
            v.remove("data", false),
            Err(VolumeError::NotFound(_))
        ));
        v.remove("data", true).unwrap();
        assert!(!t.path().join("data").exists());
    }
}
