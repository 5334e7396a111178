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

/// A path inside a container, resolved: `path` goes through the descriptor of its parent
/// directory (`/proc/self/fd/N/<base>`), which stays valid while this lives.
pub struct Resolved {
    _dir: std::os::fd::OwnedFd,
    pub path: PathBuf,
    /// The name `docker cp` reports (the last component of what was asked for).
    pub name: String,
}

/// Resolves `path` inside the root `root` (a rootfs, or `/proc/<pid>/root` of a running
/// container so its bind mounts are seen): every component but the last in-root, the last
/// not followed (`docker cp` copies a symlink as a symlink).
pub fn resolve(root: &Path, path: &str, container: &str) -> Result<Resolved> {
    let bad = |m: String| ContainersError::Invalid(m);
    let not_found = || {
        ContainersError::NotFound(format!(
            "Could not find the file {path} in container {container}"
        ))
    };
    let clean = path.trim_end_matches('/');
    let (parent, base) = match clean.rsplit_once('/') {
        Some((p, b)) => (if p.is_empty() { "/" } else { p }, b),
        None => ("/", clean),
    };
    let rootf = std::fs::File::open(root)
        .map_err(|e| ContainersError::System(format!("open {}: {e}", root.display())))?;
    let fd = rustix::fs::openat2(
        rootf.as_fd(),
        parent,
        OFlags::PATH | OFlags::CLOEXEC | OFlags::DIRECTORY,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|e| match e {
        rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR => not_found(),
        other => bad(format!("resolve {path}: {other}")),
    })?;
    let dir = PathBuf::from(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&fd)
    ));
    let name = match base {
        "" => "/".to_string(),
        b => b.to_string(),
    };
    let path = if base.is_empty() || base == "." || base == ".." {
        dir
    } else {
        dir.join(base)
    };
    Ok(Resolved {
        _dir: fd,
        path,
        name,
    })
}

fn stat_of(r: &Resolved, asked: &str, container: &str) -> Result<PathStat> {
    let host = r.path.as_path();
    let m = std::fs::symlink_metadata(host).map_err(|_| {
        ContainersError::NotFound(format!(
            "Could not find the file {asked} in container {container}"
        ))
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
        name: r.name.clone(),
        size: m.len() as i64,
        mode,
        mtime,
        link_target: link,
    })
}

/// Binds a stopped container's volumes and binds onto its temporarily mounted rootfs, each
/// destination resolved inside the rootfs (`openat2(RESOLVE_IN_ROOT)`, then mounted on the
/// `/proc/self/fd` path of what was opened, so a symlink cannot send it elsewhere);
/// read-only ones stay read-only. A destination missing in the rootfs is skipped (the
/// runtime creates it at start). They go with the rootfs's lazy unmount.
fn bind_mount_points(rootfs: &Path, points: &[super::model::MountPoint]) -> Result<()> {
    use rustix::fs::{openat, openat2, Mode, OFlags, ResolveFlags, CWD};
    use rustix::mount::{mount_bind_recursive, mount_remount, MountFlags};
    let root = openat(
        CWD,
        rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| ContainersError::System(format!("open {}: {e}", rootfs.display())))?;
    for p in points {
        let rel = p.destination.trim_start_matches('/');
        let fd = match openat2(
            &root,
            rel,
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        ) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => continue,
            Err(e) => {
                return Err(ContainersError::System(format!(
                    "mount point {}: {e}",
                    p.destination
                )))
            }
        };
        let target = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
        mount_bind_recursive(p.source.as_str(), target.as_str()).map_err(|e| {
            ContainersError::System(format!("bind {} on {}: {e}", p.source, p.destination))
        })?;
        if !p.rw {
            // The new mount sits on the path now: reopen it to remount read-only.
            let fd = openat2(
                &root,
                rel,
                OFlags::PATH | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
            )
            .map_err(|e| ContainersError::System(format!("mount point {}: {e}", p.destination)))?;
            let target = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
            mount_remount(target.as_str(), MountFlags::BIND | MountFlags::RDONLY, "").map_err(
                |e| ContainersError::System(format!("read-only {}: {e}", p.destination)),
            )?;
        }
    }
    Ok(())
}

/// A rootfs mounted for the duration of a copy (when the container is not running).
struct Mounted {
    rootfs: PathBuf,
    unmount: bool,
    /// Where paths are resolved: the running container's own root (with its mounts), else
    /// the rootfs.
    root: PathBuf,
    name: String,
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if self.unmount {
            let _ = skiff_store::unmount_lazy(&self.rootfs);
        }
    }
}

impl Containers {
    fn mounted_rootfs(&self, what: &str) -> Result<Mounted> {
        let e = self.get(what)?;
        let c = e.snapshot();
        let name = c.short_name().to_string();
        let rootfs = e.dir.join("rootfs");
        if c.state.running && c.state.pid > 0 {
            let root = PathBuf::from(format!("/proc/{}/root", c.state.pid));
            if root.exists() {
                return Ok(Mounted {
                    rootfs,
                    unmount: false,
                    root,
                    name,
                });
            }
        }
        if skiff_store::is_mounted(&rootfs) {
            return Ok(Mounted {
                root: rootfs.clone(),
                rootfs,
                unmount: false,
                name,
            });
        }
        let mounts = self
            .store
            .snapshots()
            .mounts(&e.id)
            .map_err(|err| ContainersError::System(format!("rootfs of {}: {err}", e.id)))?;
        skiff_store::mount_to(&mounts, &rootfs)
            .map_err(|err| ContainersError::System(format!("mount rootfs of {}: {err}", e.id)))?;
        // As Docker: the container's volumes and binds are part of what `cp` sees.
        if let Err(err) = bind_mount_points(&rootfs, &c.mount_points) {
            let _ = skiff_store::unmount_lazy(&rootfs);
            return Err(err);
        }
        Ok(Mounted {
            root: rootfs.clone(),
            rootfs,
            unmount: !e.snapshot().state.running,
            name,
        })
    }

    /// `HEAD /containers/{id}/archive`.
    pub fn archive_stat(&self, what: &str, path: &str) -> Result<PathStat> {
        let m = self.mounted_rootfs(what)?;
        let r = resolve(&m.root, path, &m.name)?;
        stat_of(&r, path, &m.name)
    }

    /// `GET /containers/{id}/archive`: the stat, and the tar written to `out`.
    pub fn archive_get(&self, what: &str, path: &str, out: impl Write) -> Result<PathStat> {
        let m = self.mounted_rootfs(what)?;
        let r = resolve(&m.root, path, &m.name)?;
        let st = stat_of(&r, path, &m.name)?;
        let host = r.path.clone();
        let mut b = tar::Builder::new(out);
        b.follow_symlinks(false);
        let name = st.name.clone();
        let io = |e: std::io::Error| ContainersError::System(format!("archive {path}: {e}"));
        if std::fs::symlink_metadata(&host).map_err(io)?.is_dir() {
            b.append_dir_all(&name, &host).map_err(io)?;
        } else {
            b.append_path_with_name(&host, &name).map_err(io)?;
        }
        let out = b.into_inner().map_err(io)?;
        // The client sees the end of the stream only after a temporary mount is gone.
        drop(m);
        drop(out);
        Ok(st)
    }

    /// `PUT /containers/{id}/archive`: extracts the tar read from `input` into the directory
    /// `path` of the container.
    pub fn archive_put(&self, what: &str, path: &str, input: impl Read) -> Result<()> {
        let m = self.mounted_rootfs(what)?;
        let r = resolve(&m.root, path, &m.name)?;
        // The target itself may be a symlink to a directory inside the container.
        let r = if std::fs::symlink_metadata(&r.path).is_ok_and(|x| x.file_type().is_symlink()) {
            resolve(
                &m.root,
                &format!("{}/.", path.trim_end_matches('/')),
                &m.name,
            )?
        } else {
            r
        };
        let host = r.path.clone();
        match std::fs::metadata(&host) {
            Ok(md) if md.is_dir() => {}
            Ok(_) => {
                return Err(ContainersError::Invalid(format!(
                    "extraction point is not a directory: {path}"
                )))
            }
            Err(_) => {
                return Err(ContainersError::NotFound(format!(
                    "Could not find the file {path} in container {}",
                    m.name
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
