//! `docker cp`: `GET/HEAD/PUT /containers/{id}/archive`. Paths are resolved inside the
//! container's root with `openat2(RESOLVE_IN_ROOT)`, so symlinks in the container (absolute
//! or `..`) can never lead outside it; extraction goes through the layer unpacker, which
//! refuses entries escaping the target directory.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use serde::Serialize;

use super::service::{Containers, ContainersError, Result};

/// `X-Docker-Container-Path-Stat` (base64 of this JSON).
#[derive(Debug, Clone, Serialize)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    /// Go's `os.FileMode` bits.
    pub mode: u32,
    pub mtime: String,
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

/// The host path of `path` inside `rootfs`, every component but the last resolved in-root
/// (the last is not followed, as `docker cp` copies a symlink as a symlink).
pub fn resolve(rootfs: &Path, path: &str) -> Result<PathBuf> {
    let bad = |m: String| ContainersError::Invalid(m);
    let clean = path.trim_end_matches('/');
    let (parent, base) = match clean.rsplit_once('/') {
        Some((p, b)) => (if p.is_empty() { "/" } else { p }, b),
        None => ("/", clean),
    };
    let root = std::fs::File::open(rootfs)
        .map_err(|e| ContainersError::System(format!("open {}: {e}", rootfs.display())))?;
    let fd = rustix::fs::openat2(
        root.as_fd(),
        parent,
        OFlags::PATH | OFlags::CLOEXEC | OFlags::DIRECTORY,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|e| match e {
        rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR => {
            ContainersError::NotFound(format!("Could not find the file {path} in container"))
        }
        other => bad(format!("resolve {path}: {other}")),
    })?;
    let real = std::fs::read_link(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&fd)
    ))
    .map_err(|e| ContainersError::System(format!("resolve {path}: {e}")))?;
    if !real.starts_with(rootfs) {
        return Err(bad(format!("resolve {path}: outside the container")));
    }
    if base.is_empty() || base == "." || base == ".." {
        return Ok(real);
    }
    Ok(real.join(base))
}

fn stat_of(host: &Path, name: &str) -> Result<PathStat> {
    let m = std::fs::symlink_metadata(host).map_err(|_| {
        ContainersError::NotFound(format!("Could not find the file {name} in container"))
    })?;
    let mut mode = m.mode() & 0o777;
    let ft = m.file_type();
    if ft.is_dir() {
        mode |= 1 << 31;
    }
    if ft.is_symlink() {
        mode |= 1 << 27;
    }
    let link = if ft.is_symlink() {
        std::fs::read_link(host)
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    } else {
        String::new()
    };
    let mtime = chrono::DateTime::from_timestamp(m.mtime(), m.mtime_nsec() as u32)
        .map(|t| t.to_rfc3339())
        .unwrap_or_default();
    Ok(PathStat {
        name: host
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "/".into()),
        size: m.len() as i64,
        mode,
        mtime,
        link_target: link,
    })
}

/// A rootfs mounted for the duration of a copy (when the container is not running).
struct Mounted {
    rootfs: PathBuf,
    unmount: bool,
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if self.unmount {
            let _ = skiff_store::unmount(&self.rootfs);
        }
    }
}

impl Containers {
    fn mounted_rootfs(&self, what: &str) -> Result<Mounted> {
        let e = self.get(what)?;
        let rootfs = e.dir.join("rootfs");
        if skiff_store::is_mounted(&rootfs) {
            return Ok(Mounted {
                rootfs,
                unmount: false,
            });
        }
        let mounts = self
            .store
            .snapshots()
            .mounts(&e.id)
            .map_err(|err| ContainersError::System(format!("rootfs of {}: {err}", e.id)))?;
        skiff_store::mount_to(&mounts, &rootfs)
            .map_err(|err| ContainersError::System(format!("mount rootfs of {}: {err}", e.id)))?;
        Ok(Mounted {
            rootfs,
            unmount: !e.snapshot().state.running,
        })
    }

    /// `HEAD /containers/{id}/archive`.
    pub fn archive_stat(&self, what: &str, path: &str) -> Result<PathStat> {
        let m = self.mounted_rootfs(what)?;
        let host = resolve(&m.rootfs, path)?;
        stat_of(&host, path)
    }

    /// `GET /containers/{id}/archive`: the stat, and the tar written to `out`.
    pub fn archive_get(&self, what: &str, path: &str, out: impl Write) -> Result<PathStat> {
        let m = self.mounted_rootfs(what)?;
        let host = resolve(&m.rootfs, path)?;
        let st = stat_of(&host, path)?;
        let mut b = tar::Builder::new(out);
        b.follow_symlinks(false);
        let name = st.name.clone();
        let io = |e: std::io::Error| ContainersError::System(format!("archive {path}: {e}"));
        if std::fs::symlink_metadata(&host).map_err(io)?.is_dir() {
            b.append_dir_all(&name, &host).map_err(io)?;
        } else {
            b.append_path_with_name(&host, &name).map_err(io)?;
        }
        b.finish().map_err(io)?;
        Ok(st)
    }

    /// `PUT /containers/{id}/archive`: extracts the tar read from `input` into the directory
    /// `path` of the container.
    pub fn archive_put(&self, what: &str, path: &str, input: impl Read) -> Result<()> {
        let m = self.mounted_rootfs(what)?;
        let host = resolve(&m.rootfs, path)?;
        // The target itself may be a symlink to a directory inside the container.
        let host = if std::fs::symlink_metadata(&host).is_ok_and(|x| x.file_type().is_symlink()) {
            resolve(&m.rootfs, &format!("{}/.", path.trim_end_matches('/')))?
        } else {
            host
        };
        match std::fs::metadata(&host) {
            Ok(md) if md.is_dir() => {}
            Ok(_) => {
                return Err(ContainersError::Invalid(format!(
                    "extraction point is not a directory: {path}"
                )))
            }
            Err(_) => {
                return Err(ContainersError::NotFound(format!(
                    "Could not find the file {path} in container"
                )))
            }
        }
        skiff_image::unpack::apply_layer_to_rootfs(
            input,
            None,
            &host,
            &skiff_image::unpack::ApplyOptions::default(),
        )
        .map(drop)
        .map_err(|e| ContainersError::Invalid(format!("extract to {path}: {e}")))
    }
}
