//! Symlink-race-free path handling inside a container's root filesystem.
//!
//! Every path from config.json (mount destinations, device paths, masked paths) is resolved
//! with `openat2(RESOLVE_IN_ROOT)` against an `O_PATH` descriptor of the rootfs: the kernel
//! resolves `..` and symlinks as if the rootfs were `/`, atomically, so a hostile image cannot
//! redirect a mount onto the host (CVE-2018-15664 / CVE-2021-30465 class). Mounts are then made
//! onto `/proc/self/fd/<n>` of the resolved descriptor, never onto a path string that could be
//! swapped between the check and the use.

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// An open root filesystem that paths are resolved in.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

/// The `/proc/self/fd/N` path naming an open descriptor, for mount(2) and friends.
pub fn fd_path(fd: &impl AsRawFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

fn io(e: Errno) -> std::io::Error {
    std::io::Error::from_raw_os_error(e.raw_os_error())
}

const RESOLVE: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

impl Root {
    pub fn open(path: &Path) -> std::io::Result<Root> {
        let fd = rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(io)?;
        Ok(Root {
            fd,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Open `p` (a path inside the container) with `flags`, resolved inside the root.
    pub fn open_in(&self, p: &Path, flags: OFlags) -> std::io::Result<OwnedFd> {
        let rel = relative(p);
        let rel: &Path = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            &rel
        };
        loop {
            match rustix::fs::openat2(
                self.fd.as_fd(),
                rel,
                flags | OFlags::CLOEXEC,
                Mode::empty(),
                RESOLVE,
            ) {
                Err(Errno::AGAIN) | Err(Errno::INTR) => continue,
                r => return r.map_err(io),
            }
        }
    }

    /// Open `p` as an `O_PATH` descriptor, resolved inside the root.
    pub fn open_path(&self, p: &Path) -> std::io::Result<OwnedFd> {
        self.open_in(p, OFlags::PATH)
    }

    /// Create directory `p` and its parents inside the root (like `mkdir -p`), and open it.
    /// A dangling symlink on the way is followed inside the root and its target created.
    pub fn mkdir_all(&self, p: &Path, mode: u32) -> std::io::Result<OwnedFd> {
        self.mkdir_all_depth(p, mode, 0)
    }

    fn mkdir_all_depth(&self, p: &Path, mode: u32, depth: u32) -> std::io::Result<OwnedFd> {
        if depth > 40 {
            return Err(std::io::Error::from_raw_os_error(libc::ELOOP));
        }
        let rel = relative(p);
        let mut cur = PathBuf::new();
        let mut fd = self.open_in(Path::new("."), OFlags::PATH | OFlags::DIRECTORY)?;
        for comp in rel.components() {
            let Component::Normal(name) = comp else {
                continue;
            };
            cur.push(name);
            fd = match self.open_in(&cur, OFlags::PATH | OFlags::DIRECTORY) {
                Ok(f) => f,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    match rustix::fs::mkdirat(&fd, name, Mode::from_raw_mode(mode)) {
                        Ok(()) => {}
                        Err(Errno::EXIST) => {
                            // A dangling symlink: create its target, resolved in the root.
                            if let Ok(target) = rustix::fs::readlinkat(&fd, name, Vec::new()) {
                                let target = PathBuf::from(
                                    <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(
                                        target.as_bytes(),
                                    ),
                                );
                                let full = if target.is_absolute() {
                                    target
                                } else {
                                    Path::new("/")
                                        .join(cur.parent().unwrap_or(Path::new("")))
                                        .join(target)
                                };
                                self.mkdir_all_depth(&full, mode, depth + 1)?;
                            }
                        }
                        Err(e) => return Err(io(e)),
                    }
                    self.open_in(&cur, OFlags::PATH | OFlags::DIRECTORY)?
                }
                Err(e) => return Err(e),
            };
        }
        Ok(fd)
    }

    /// Make sure a regular file (a bind-mount target for a file) exists at `p`, and open it.
    pub fn mkfile(&self, p: &Path) -> std::io::Result<OwnedFd> {
        match self.open_path(p) {
            Ok(fd) => return Ok(fd),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e),
        }
        let (parent, name) = split(p)?;
        let dir = self.mkdir_all(parent, 0o755)?;
        // The directory was resolved in the root; the name is one component, not followed if
        // it is a symlink (O_NOFOLLOW | O_EXCL).
        let dirfd = rustix::fs::openat(
            &dir,
            ".",
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(io)?;
        match rustix::fs::openat(
            &dirfd,
            name,
            OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        ) {
            Ok(_) | Err(Errno::EXIST) => {}
            Err(e) => return Err(io(e)),
        }
        self.open_path(p)
    }

    /// The parent directory of `p` (created if missing) and the last component.
    pub fn parent_of<'a>(&self, p: &'a Path) -> std::io::Result<(OwnedFd, &'a OsStr)> {
        let (parent, name) = split(p)?;
        let dir = self.mkdir_all(parent, 0o755)?;
        let dirfd = rustix::fs::openat(
            &dir,
            ".",
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(io)?;
        Ok((dirfd, name))
    }
}

fn split(p: &Path) -> std::io::Result<(&Path, &OsStr)> {
    match (p.parent(), p.file_name()) {
        (Some(parent), Some(name)) => Ok((parent, name)),
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} has no file name", p.display()),
        )),
    }
}

/// `p` without its leading `/`, with `.` components dropped (`..` is left to the kernel,
/// which keeps it inside the root).
pub fn relative(p: &Path) -> PathBuf {
    p.components()
        .filter(|c| {
            !matches!(
                c,
                Component::RootDir | Component::CurDir | Component::Prefix(_)
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_stay_inside_root() {
        let t = tempfile::tempdir().unwrap();
        let root_dir = t.path().join("root");
        std::fs::create_dir(&root_dir).unwrap();
        let outside = t.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        // A hostile absolute symlink and a `..` escape, both pointing at `outside`.
        symlink(&outside, root_dir.join("abs")).unwrap();
        symlink("../../outside", root_dir.join("rel")).unwrap();
        let root = Root::open(&root_dir).unwrap();
        root.mkdir_all(Path::new("/abs/x"), 0o755).unwrap();
        root.mkdir_all(Path::new("/rel/y"), 0o755).unwrap();
        root.mkfile(Path::new("/../../z")).unwrap();
        assert!(!outside.join("x").exists());
        assert!(!outside.join("y").exists());
        assert!(!t.path().join("z").exists());
        // The escapes land inside the root instead.
        assert!(root_dir
            .join(outside.strip_prefix("/").unwrap())
            .join("x")
            .is_dir());
        assert!(root_dir.join("z").is_file());
    }

    #[test]
    fn relative_paths() {
        assert_eq!(relative(Path::new("/a/./b/")), PathBuf::from("a/b"));
        assert_eq!(relative(Path::new("/")), PathBuf::new());
    }
}
