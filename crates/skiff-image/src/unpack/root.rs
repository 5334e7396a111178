//! Path handling inside the target: lexical cleaning of tar names and race-free resolution of
//! parent directories with openat2(RESOLVE_IN_ROOT), so no entry can reach outside the target
//! through `..`, absolute paths or symlinks (planted by this layer or present already).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{self as rfs, AtFlags, Mode, OFlags, ResolveFlags, Timespec, Timestamps};
use rustix::io::Errno;

use super::error::EntryError;

/// Cleans a tar path lexically: drops `.` and empty components, applies `..`; refuses
/// anything that climbs above the root, and NUL bytes. An absolute name is taken relative to
/// the root, as Docker and containerd do (umoci, for one, writes a "/" entry for the root):
/// it can never land outside the target. Returns the components; empty means the root itself.
pub(crate) fn clean(raw: &[u8]) -> Result<Vec<&[u8]>, EntryError> {
    if raw.contains(&0) {
        return Err(EntryError::NulInPath);
    }
    let mut out: Vec<&[u8]> = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                if out.pop().is_none() {
                    return Err(EntryError::PathEscapes);
                }
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

pub(crate) fn join(components: &[&[u8]]) -> Vec<u8> {
    components.join(&b'/')
}

fn resolve_flags() -> ResolveFlags {
    ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS
}

/// Opens a directory as an `O_PATH` fd for use as the dirfd of `*at` calls.
pub(crate) fn open_dir_in_root(root: BorrowedFd<'_>, path: &[u8]) -> Result<OwnedFd, Errno> {
    let path: &[u8] = if path.is_empty() { b"." } else { path };
    rfs::openat2(
        root,
        path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        resolve_flags(),
    )
}

/// The target directory, plus the lower layers' roots (overlay mode) whose directories lend
/// their metadata to parents that a layer writes into without listing them.
pub(crate) struct Root {
    pub(crate) fd: OwnedFd,
    lowers: Vec<OwnedFd>,
    /// Directories made by [`Root::parent`] (implied by entries below them), in order.
    created: std::cell::RefCell<Vec<Vec<u8>>>,
}

impl Root {
    pub(crate) fn open(
        target: &Path,
        lowers: &[std::path::PathBuf],
    ) -> Result<Root, (usize, std::io::Error)> {
        let open = |p: &Path| {
            rfs::open(
                p,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(std::io::Error::from)
        };
        let fd = open(target).map_err(|e| (0, e))?;
        let mut lower_fds = Vec::with_capacity(lowers.len());
        for (i, l) in lowers.iter().enumerate() {
            lower_fds.push(open(l).map_err(|e| (i + 1, e))?);
        }
        Ok(Root {
            fd,
            lowers: lower_fds,
            created: Default::default(),
        })
    }

    /// The parent directory of an entry, created (like `mkdir -p`) when missing. Every
    /// component is resolved inside the root; symlinks are followed as if the root were `/`,
    /// also dangling ones (their in-root target is created, as Docker's MkdirAll would).
    pub(crate) fn parent(&self, parent: &[&[u8]]) -> Result<OwnedFd, EntryError> {
        let joined = join(parent);
        match open_dir_in_root(self.fd.as_fd(), &joined) {
            Ok(fd) => Ok(fd),
            Err(Errno::NOENT) => {
                let owned: Vec<Vec<u8>> = parent.iter().map(|c| c.to_vec()).collect();
                self.create_parents(owned, 0)
            }
            Err(Errno::NOTDIR) | Err(Errno::LOOP) => Err(EntryError::ParentNotDir {
                parent: String::from_utf8_lossy(&joined).into(),
            }),
            Err(e) => Err(EntryError::io("open parent directory")(e)),
        }
    }

    fn create_parents(&self, parent: Vec<Vec<u8>>, depth: u32) -> Result<OwnedFd, EntryError> {
        let comps: Vec<&[u8]> = parent.iter().map(|c| c.as_slice()).collect();
        let mut cur =
            open_dir_in_root(self.fd.as_fd(), b"").map_err(EntryError::io("open root"))?;
        for i in 0..comps.len() {
            let prefix = join(&comps[..=i]);
            let not_dir = || EntryError::ParentNotDir {
                parent: String::from_utf8_lossy(&prefix).into(),
            };
            match open_dir_in_root(self.fd.as_fd(), &prefix) {
                Ok(fd) => {
                    cur = fd;
                    continue;
                }
                Err(Errno::NOENT) => {}
                Err(Errno::NOTDIR) | Err(Errno::LOOP) => return Err(not_dir()),
                Err(e) => return Err(EntryError::io("open parent directory")(e)),
            }
            let name = comps[i];
            match rfs::mkdirat(&cur, name, Mode::from_raw_mode(0o755)) {
                Ok(()) => {}
                Err(Errno::EXIST) => {
                    // Exists but did not resolve: a dangling symlink. Create its target
                    // (resolved inside the root), then continue below it.
                    let link = rfs::readlinkat(&cur, name, Vec::new()).map_err(|_| not_dir())?;
                    if depth >= 40 {
                        return Err(EntryError::Io {
                            op: "resolve parent",
                            source: Errno::LOOP.into(),
                        });
                    }
                    let link = link.as_bytes();
                    let mut target: Vec<Vec<u8>> = if link.first() == Some(&b'/') {
                        Vec::new()
                    } else {
                        parent[..i].to_vec()
                    };
                    for c in link.split(|b| *b == b'/') {
                        match c {
                            b"" | b"." => {}
                            b".." => {
                                target.pop(); // `..` at the root stays at the root
                            }
                            c => target.push(c.to_vec()),
                        }
                    }
                    target.extend(parent[i + 1..].iter().cloned());
                    return self.create_parents(target, depth + 1);
                }
                Err(e) => return Err(EntryError::io("create parent directory")(e)),
            }
            self.copy_lower_dir_info(&cur, name, &prefix, true)?;
            self.created.borrow_mut().push(prefix.clone());
            cur = rfs::openat2(
                &cur,
                name,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                Mode::empty(),
                ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
            )
            .map_err(EntryError::io("open created parent directory"))?;
        }
        Ok(cur)
    }

    /// The directories [`Root::parent`] made, in the order it made them.
    pub(crate) fn take_created(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.created.borrow_mut())
    }

    /// A parent created implicitly takes the owner, mode and (with `times`) mtime of the same
    /// directory in the topmost lower layer that has one (as containerd does); else it stays
    /// 0755 root.
    pub(crate) fn copy_lower_dir_info(
        &self,
        dir: &OwnedFd,
        name: &[u8],
        path: &[u8],
        times: bool,
    ) -> Result<(), EntryError> {
        for lower in &self.lowers {
            let parent_path = match path.iter().rposition(|b| *b == b'/') {
                Some(i) => &path[..i],
                None => b"".as_slice(),
            };
            let Ok(lp) = open_dir_in_root(lower.as_fd(), parent_path) else {
                continue;
            };
            let Ok(st) = rfs::statat(&lp, name, AtFlags::SYMLINK_NOFOLLOW) else {
                continue;
            };
            if rfs::FileType::from_raw_mode(st.st_mode) != rfs::FileType::Directory {
                break; // replaced by a non-directory: keep the defaults
            }
            rfs::chownat(
                dir,
                name,
                Some(rfs::Uid::from_raw(st.st_uid)),
                Some(rfs::Gid::from_raw(st.st_gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(EntryError::io("chown parent directory"))?;
            rfs::chmodat(
                dir,
                name,
                Mode::from_raw_mode(st.st_mode & 0o7777),
                AtFlags::empty(),
            )
            .map_err(EntryError::io("chmod parent directory"))?;
            if !times {
                break;
            }
            let t = Timespec {
                tv_sec: st.st_mtime,
                tv_nsec: st.st_mtime_nsec as _,
            };
            let ts = Timestamps {
                last_access: t,
                last_modification: t,
            };
            rfs::utimensat(dir, name, &ts, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(EntryError::io("set parent directory times"))?;
            break;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Result<String, ()> {
        clean(s.as_bytes())
            .map(|v| String::from_utf8(join(&v)).unwrap())
            .map_err(|_| ())
    }

    #[test]
    fn cleaning() {
        assert_eq!(c("./a/b/"), Ok("a/b".into()));
        assert_eq!(c("a/../b"), Ok("b".into()));
        assert_eq!(c("a//./c"), Ok("a/c".into()));
        assert_eq!(c("./"), Ok("".into()));
        assert_eq!(c("../etc/passwd"), Err(()));
        assert_eq!(c("a/../../etc"), Err(()));
        assert_eq!(c("/etc/passwd"), Ok("etc/passwd".into()));
        assert_eq!(c("/"), Ok("".into()));
        assert_eq!(c("/../x"), Err(()));
        assert_eq!(c("a\0b"), Err(()));
    }
}
