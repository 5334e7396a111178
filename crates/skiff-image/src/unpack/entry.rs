//! Creating one tar entry in its (already resolved) parent directory with `*at` calls. The last
//! component is never followed: existing paths are replaced (a directory over a directory is
//! merged), and nodes are created with `O_EXCL`/`mknodat`/`symlinkat`, which do not follow.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use rustix::fs::{
    self as rfs, AtFlags, Dev, FileType, Mode, OFlags, Timespec, Timestamps, XattrFlags,
};
use rustix::io::Errno;

use super::error::EntryError;

/// Metadata of an entry, from its header and PAX records.
pub(crate) struct Meta {
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) mtime: Timespec,
    pub(crate) xattrs: Vec<(String, Vec<u8>)>,
}

/// What applying the metadata did not manage but tolerated.
#[derive(Default)]
pub(crate) struct MetaOutcome {
    pub(crate) xattrs_skipped: u64,
}

pub(crate) fn times(t: Timespec) -> Timestamps {
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

/// Removes `name` unless it is a directory and `keep_dir` is set; returns whether a directory
/// was kept.
pub(crate) fn remove_existing(
    dir: &OwnedFd,
    name: &[u8],
    keep_dir: bool,
) -> Result<bool, EntryError> {
    let st = match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(false),
        Err(e) => return Err(EntryError::io("stat existing path")(e)),
    };
    if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
        if keep_dir {
            return Ok(true);
        }
        remove_all(dir, name).map_err(EntryError::io("remove existing directory"))?;
    } else {
        rfs::unlinkat(dir, name, AtFlags::empty())
            .map_err(EntryError::io("remove existing path"))?;
    }
    Ok(false)
}

/// `rm -rf` of `name` in `dir`, never following symlinks.
pub(crate) fn remove_all(dir: &OwnedFd, name: &[u8]) -> Result<(), Errno> {
    match rfs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) => return Ok(()),
        Err(Errno::ISDIR) | Err(Errno::PERM) => {}
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e),
    }
    let sub = rfs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    empty_dir(&sub, &|_| false)?;
    rfs::unlinkat(dir, name, AtFlags::REMOVEDIR)
}

/// Removes every child of `dir` (an open, readable directory) for which `keep` is false.
pub(crate) fn empty_dir(dir: &OwnedFd, keep: &dyn Fn(&[u8]) -> bool) -> Result<(), Errno> {
    let mut names = Vec::new();
    for ent in rfs::Dir::read_from(dir)? {
        let ent = ent?;
        let n = ent.file_name().to_bytes();
        if n != b"." && n != b".." && !keep(n) {
            names.push(n.to_vec());
        }
    }
    for n in names {
        remove_all(dir, &n)?;
    }
    Ok(())
}

/// Sets owner, mode and xattrs through an fd opened on the new file or directory.
fn set_meta_fd(
    fd: &OwnedFd,
    meta: &Meta,
    chown: bool,
    out: &mut MetaOutcome,
) -> Result<(), EntryError> {
    if chown {
        rfs::fchown(
            fd,
            Some(rfs::Uid::from_raw(meta.uid)),
            Some(rfs::Gid::from_raw(meta.gid)),
        )
        .map_err(EntryError::io("chown"))?;
    }
    // After chown, which clears setuid/setgid.
    rfs::fchmod(fd, Mode::from_raw_mode(meta.mode & 0o7777)).map_err(EntryError::io("chmod"))?;
    // After chown, which drops security.capability.
    for (k, v) in &meta.xattrs {
        match rfs::fsetxattr(fd, k.as_str(), v, XattrFlags::empty()) {
            Ok(()) => {}
            Err(Errno::NOTSUP) | Err(Errno::PERM) => out.xattrs_skipped += 1,
            Err(e) => return Err(EntryError::io("set xattr")(e)),
        }
    }
    Ok(())
}

/// Sets owner, mode (unless a symlink) and xattrs of `name` in `dir` without following it.
fn set_meta_at(
    dir: &OwnedFd,
    name: &[u8],
    meta: &Meta,
    is_symlink: bool,
    chown: bool,
    out: &mut MetaOutcome,
) -> Result<(), EntryError> {
    if chown {
        rfs::chownat(
            dir,
            name,
            Some(rfs::Uid::from_raw(meta.uid)),
            Some(rfs::Gid::from_raw(meta.gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(EntryError::io("chown"))?;
    }
    if !is_symlink {
        // `name` is the node just made by mknodat in this directory: not a symlink.
        rfs::chmodat(
            dir,
            name,
            Mode::from_raw_mode(meta.mode & 0o7777),
            AtFlags::empty(),
        )
        .map_err(EntryError::io("chmod"))?;
    }
    if !meta.xattrs.is_empty() {
        // The parent is reached through our own fd's magic link; `l*` does not follow `name`.
        let mut path = format!("/proc/self/fd/{}/", dir.as_fd().as_raw_fd()).into_bytes();
        path.extend_from_slice(name);
        for (k, v) in &meta.xattrs {
            match rfs::lsetxattr(path.as_slice(), k.as_str(), v, XattrFlags::empty()) {
                Ok(()) => {}
                Err(Errno::NOTSUP) | Err(Errno::PERM) => out.xattrs_skipped += 1,
                Err(e) => return Err(EntryError::io("set xattr")(e)),
            }
        }
    }
    rfs::utimensat(dir, name, &times(meta.mtime), AtFlags::SYMLINK_NOFOLLOW)
        .map_err(EntryError::io("set times"))?;
    Ok(())
}

/// A regular file with the entry's content.
pub(crate) fn write_file(
    dir: &OwnedFd,
    name: &[u8],
    data: &mut dyn Read,
    meta: &Meta,
    chown: bool,
    buf: &mut [u8],
    out: &mut MetaOutcome,
) -> Result<u64, EntryError> {
    let create = || {
        rfs::openat(
            dir,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
    };
    // Create first; only on EEXIST remove what is there and retry (saves a stat per file).
    let fd = match create() {
        Err(Errno::EXIST) => {
            remove_existing(dir, name, false)?;
            create()
        }
        r => r,
    }
    .map_err(EntryError::io("create file"))?;
    let mut file = std::fs::File::from(fd);
    let mut written = 0u64;
    loop {
        let n = match data.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(EntryError::Io {
                    op: "read file data",
                    source: e,
                })
            }
        };
        file.write_all(&buf[..n])
            .map_err(EntryError::std_io("write file"))?;
        written += n as u64;
    }
    let fd = OwnedFd::from(file);
    set_meta_fd(&fd, meta, chown, out)?;
    rfs::futimens(&fd, &times(meta.mtime)).map_err(EntryError::io("set times"))?;
    Ok(written)
}

/// A directory (merged into an existing one); its mtime is set by the caller at the end.
pub(crate) fn make_dir(
    dir: &OwnedFd,
    name: &[u8],
    meta: &Meta,
    chown: bool,
    out: &mut MetaOutcome,
) -> Result<(), EntryError> {
    if !remove_existing(dir, name, true)? {
        rfs::mkdirat(dir, name, Mode::from_raw_mode(0o700))
            .map_err(EntryError::io("create directory"))?;
    }
    let fd = rfs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(EntryError::io("open directory"))?;
    set_meta_fd(&fd, meta, chown, out)
}

pub(crate) fn make_symlink(
    dir: &OwnedFd,
    name: &[u8],
    target: &[u8],
    meta: &Meta,
    chown: bool,
    out: &mut MetaOutcome,
) -> Result<(), EntryError> {
    remove_existing(dir, name, false)?;
    rfs::symlinkat(target, dir, name).map_err(EntryError::io("create symlink"))?;
    set_meta_at(dir, name, meta, true, chown, out)
}

/// A hard link to `target_name` in `target_dir` (resolved inside the root by the caller).
/// linkat without AT_SYMLINK_FOLLOW links a symlink itself, never what it points to.
pub(crate) fn make_hardlink(
    target_dir: &OwnedFd,
    target_name: &[u8],
    dir: &OwnedFd,
    name: &[u8],
) -> Result<(), EntryError> {
    // Linking a path to itself is a no-op (some tools emit it).
    if let (Ok(a), Ok(b)) = (
        rfs::statat(target_dir, target_name, AtFlags::SYMLINK_NOFOLLOW),
        rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW),
    ) {
        if a.st_dev == b.st_dev && a.st_ino == b.st_ino {
            return Ok(());
        }
    }
    remove_existing(dir, name, false)?;
    rfs::linkat(target_dir, target_name, dir, name, AtFlags::empty())
        .map_err(EntryError::io("create hard link"))
}

/// A character/block device or a fifo. Returns false when skipped (EPERM and `skip_eperm`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn make_node(
    dir: &OwnedFd,
    name: &[u8],
    kind: FileType,
    dev: Dev,
    meta: &Meta,
    chown: bool,
    skip_eperm: bool,
    out: &mut MetaOutcome,
) -> Result<bool, EntryError> {
    remove_existing(dir, name, false)?;
    match rfs::mknodat(dir, name, kind, Mode::from_raw_mode(0o600), dev) {
        Ok(()) => {}
        Err(Errno::PERM) if skip_eperm => return Ok(false),
        Err(e) => return Err(EntryError::io("mknod")(e)),
    }
    set_meta_at(dir, name, meta, false, chown, out)?;
    Ok(true)
}

/// The mtime of a directory, set after all of its content.
pub(crate) fn set_dir_time(dir: &OwnedFd, name: &[u8], t: Timespec) -> Result<(), EntryError> {
    match rfs::utimensat(dir, name, &times(t), AtFlags::SYMLINK_NOFOLLOW) {
        Ok(()) | Err(Errno::NOENT) => Ok(()), // removed by a later whiteout
        Err(e) => Err(EntryError::io("set directory times")(e)),
    }
}
