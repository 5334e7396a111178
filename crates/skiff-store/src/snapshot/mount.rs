//! Mount descriptions and the helpers that perform them (tests, CLI, daemon rootfs).
//!
//! Overlay options longer than the one page `mount(2)` accepts (a deep chain under a long
//! data root) are handled without shortening the description: first with the new mount API,
//! one `lowerdir+` per layer (Linux 6.8+); else, as Docker and containerd do, by rewriting the
//! paths relative to their common directory and mounting from a forked child that `chdir`s
//! there (the parent's working directory, shared by its threads, is never touched).

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::CWD;
use rustix::mount::{
    fsconfig_create, fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen, mount_bind,
    mount_bind_recursive, mount_remount, move_mount, FsMountFlags, FsOpenFlags, MountAttrFlags,
    MountFlags, MoveMountFlags, UnmountFlags,
};
use serde::{Deserialize, Serialize};

/// One mount to perform, as containerd's `mount.Mount`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    /// `bind` or `overlay`.
    pub typ: String,
    pub source: String,
    /// Sub-path under the target ("" for the target itself).
    pub target_hint: String,
    pub options: Vec<String>,
}

/// Errors mounting or unmounting.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("mount {typ} on {target}: {source}")]
    Mount {
        typ: String,
        target: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("unmount {target}: {source}")]
    Unmount {
        target: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("mount {typ} on {target}: unsupported mount type")]
    Unsupported { typ: String, target: PathBuf },
}

/// How overlay options longer than a page are mounted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LongOptions {
    /// `mount(2)` when the options fit, else the new API, else the chdir child.
    Auto,
    /// Always the new mount API (`fsopen` + `lowerdir+`).
    NewApi,
    /// Always relative paths from a child that `chdir`s to their common directory.
    Chdir,
}

/// Mounts `mounts` on `target` (in order); on error, unmounts what it mounted.
pub fn mount_to(mounts: &[MountSpec], target: &Path) -> Result<(), MountError> {
    mount_to_with(mounts, target, LongOptions::Auto)
}

/// [`mount_to`] with an explicit strategy for long overlay options.
pub fn mount_to_with(
    mounts: &[MountSpec],
    target: &Path,
    long: LongOptions,
) -> Result<(), MountError> {
    let mut done: Vec<PathBuf> = Vec::new();
    for m in mounts {
        let t = if m.target_hint.is_empty() {
            target.to_owned()
        } else {
            target.join(m.target_hint.trim_start_matches('/'))
        };
        let err = |source| MountError::Mount {
            typ: m.typ.clone(),
            target: t.clone(),
            source,
        };
        let res = match m.typ.as_str() {
            "bind" | "rbind" => mount_bind_spec(m, &t).map_err(err),
            "overlay" => mount_overlay(m, &t, long).map_err(err),
            _ => Err(MountError::Unsupported {
                typ: m.typ.clone(),
                target: t.clone(),
            }),
        };
        if let Err(e) = res {
            for d in done.iter().rev() {
                let _ = unmount(d);
            }
            return Err(e);
        }
        done.push(t);
    }
    Ok(())
}

/// Unmounts `target` (lazily if it is busy).
pub fn unmount(target: &Path) -> Result<(), MountError> {
    let err = |e: rustix::io::Errno| MountError::Unmount {
        target: target.to_owned(),
        source: e.into(),
    };
    match rustix::mount::unmount(target, UnmountFlags::empty()) {
        Err(rustix::io::Errno::BUSY) => {
            rustix::mount::unmount(target, UnmountFlags::DETACH).map_err(err)
        }
        r => r.map_err(err),
    }
}

fn mount_bind_spec(m: &MountSpec, target: &Path) -> io::Result<()> {
    let has = |o: &str| m.options.iter().any(|x| x == o);
    if m.typ == "rbind" || has("rbind") {
        mount_bind_recursive(m.source.as_str(), target)?;
    } else {
        mount_bind(m.source.as_str(), target)?;
    }
    if has("ro") {
        if let Err(e) = mount_remount(target, MountFlags::BIND | MountFlags::RDONLY, "") {
            let _ = rustix::mount::unmount(target, UnmountFlags::DETACH);
            return Err(e.into());
        }
    }
    Ok(())
}

fn split_options(m: &MountSpec) -> (bool, Vec<String>) {
    let ro = m.options.iter().any(|o| o == "ro");
    let data = m
        .options
        .iter()
        .filter(|o| *o != "ro" && *o != "rw")
        .cloned()
        .collect();
    (ro, data)
}

fn mount_overlay(m: &MountSpec, target: &Path, long: LongOptions) -> io::Result<()> {
    let (ro, data) = split_options(m);
    let joined = data.join(",");
    let flags = if ro {
        MountFlags::RDONLY
    } else {
        MountFlags::empty()
    };
    match long {
        LongOptions::Auto if joined.len() < rustix::param::page_size() => {
            let c =
                CString::new(joined).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
            Ok(rustix::mount::mount(
                m.source.as_str(),
                target,
                "overlay",
                flags,
                Some(c.as_c_str()),
            )?)
        }
        LongOptions::Auto => match mount_new_api(m, &data, ro, target) {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::debug!(error = %e, "overlay with lowerdir+ failed; mounting from a chdir child");
                mount_chdir(m, &data, flags, target)
            }
        },
        LongOptions::NewApi => mount_new_api(m, &data, ro, target),
        LongOptions::Chdir => mount_chdir(m, &data, flags, target),
    }
}

fn mount_new_api(m: &MountSpec, data: &[String], ro: bool, target: &Path) -> io::Result<()> {
    let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
    fsconfig_set_string(&fs, "source", m.source.as_str())?;
    for opt in data {
        match opt.split_once('=') {
            Some(("lowerdir", v)) => {
                for l in v.split(':') {
                    fsconfig_set_string(&fs, "lowerdir+", l)?;
                }
            }
            Some((k, v)) => fsconfig_set_string(&fs, k, v)?,
            None => fsconfig_set_flag(&fs, opt.as_str())?,
        }
    }
    fsconfig_create(&fs)?;
    let attrs = if ro {
        MountAttrFlags::MOUNT_ATTR_RDONLY
    } else {
        MountAttrFlags::empty()
    };
    let mnt = fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, attrs)?;
    move_mount(
        &mnt,
        "",
        CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )?;
    Ok(())
}

/// The deepest directory containing every path (component-wise).
fn common_dir<'a>(paths: impl Iterator<Item = &'a str>) -> Option<PathBuf> {
    let mut common: Option<Vec<Component<'a>>> = None;
    for p in paths {
        // Each path names a directory entry inside the common dir, so compare parents.
        let comps: Vec<Component<'a>> = Path::new(p).parent()?.components().collect();
        common = Some(match common {
            None => comps,
            Some(c) => c
                .iter()
                .zip(comps.iter())
                .take_while(|(a, b)| a == b)
                .map(|(a, _)| *a)
                .collect(),
        });
    }
    common.map(|c| c.iter().collect())
}

fn mount_chdir(m: &MountSpec, data: &[String], flags: MountFlags, target: &Path) -> io::Result<()> {
    let path_keys = ["lowerdir", "upperdir", "workdir"];
    let mut paths = Vec::new();
    for opt in data {
        if let Some((k, v)) = opt.split_once('=') {
            if path_keys.contains(&k) {
                paths.extend(v.split(':'));
            }
        }
    }
    let dir = common_dir(paths.iter().copied())
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    let rel: Vec<String> = data
        .iter()
        .map(|opt| match opt.split_once('=') {
            Some((k, v)) if path_keys.contains(&k) => {
                let parts: Vec<String> = v
                    .split(':')
                    .map(|p| {
                        Path::new(p)
                            .strip_prefix(&dir)
                            .map_or(p.to_owned(), |r| r.display().to_string())
                    })
                    .collect();
                format!("{k}={}", parts.join(":"))
            }
            _ => opt.clone(),
        })
        .collect();
    let target_abs = std::path::absolute(target)?;
    let c = |b: &[u8]| CString::new(b).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput));
    let (c_dir, c_src, c_target, c_fs, c_data) = (
        c(dir.as_os_str().as_bytes())?,
        c(m.source.as_bytes())?,
        c(target_abs.as_os_str().as_bytes())?,
        c(b"overlay")?,
        c(rel.join(",").as_bytes())?,
    );
    let bits = flags.bits() as libc::c_ulong;
    // SAFETY: fork has no memory-safety preconditions; the child below only calls the
    // async-signal-safe chdir, mount and _exit on data prepared before the fork.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: in the forked child; every pointer is a valid NUL-terminated C string owned by
        // the (copied) parent frame, and _exit never returns.
        unsafe {
            if libc::chdir(c_dir.as_ptr()) != 0 {
                libc::_exit(*libc::__errno_location());
            }
            if libc::mount(
                c_src.as_ptr(),
                c_target.as_ptr(),
                c_fs.as_ptr(),
                bits,
                c_data.as_ptr().cast(),
            ) != 0
            {
                libc::_exit(*libc::__errno_location());
            }
            libc::_exit(0);
        }
    }
    let mut status = 0;
    loop {
        // SAFETY: pid is our child; status is a valid out pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        Ok(())
    } else if libc::WIFEXITED(status) {
        Err(io::Error::from_raw_os_error(libc::WEXITSTATUS(status)))
    } else {
        Err(io::Error::other(format!(
            "mount child died with status {status}"
        )))
    }
}

/// Detaches whatever is mounted on `target` (`MNT_DETACH`), without the synchronous flush a
/// plain unmount of an overlay does (which syncs the whole upper filesystem: tens of ms on a
/// busy disk). For containers' rootfs, which nothing else uses once the container is gone.
pub fn unmount_lazy(target: &Path) -> Result<(), MountError> {
    rustix::mount::unmount(target, UnmountFlags::DETACH).map_err(|e| MountError::Unmount {
        target: target.to_owned(),
        source: e.into(),
    })
}

/// Whether something is mounted on `target` (its device differs from its parent's).
pub fn is_mounted(target: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(t), Some(Ok(p))) = (
        std::fs::metadata(target),
        target.parent().map(std::fs::metadata),
    ) else {
        return false;
    };
    t.dev() != p.dev()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_dir_of_overlay_paths() {
        let d = common_dir(
            [
                "/r/overlay/l/AAA",
                "/r/overlay/l/BBB",
                "/r/overlay/x/diff",
                "/r/overlay/x/work",
            ]
            .into_iter(),
        );
        assert_eq!(d.unwrap(), PathBuf::from("/r/overlay"));
        let d = common_dir(["/r/overlay/l/AAA"].into_iter());
        assert_eq!(d.unwrap(), PathBuf::from("/r/overlay/l"));
    }
}
