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

/// What [`remove_existing`] found at the name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Existing {
    /// Nothing was there.
    None,
    /// A directory, kept (`keep_dir`).
    KeptDir,
    /// Something was there and is gone.
    Removed,
}

/// Removes `name` unless it is a directory and `keep_dir` is set.
pub(crate) fn remove_existing(
    dir: &OwnedFd,
    name: &[u8],
    keep_dir: bool,
) -> Result<Existing, EntryError> {
    let st = match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(Existing::None),
        Err(e) => return Err(EntryError::io("stat existing path")(e)),
    };
    if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
        if keep_dir {
            return Ok(Existing::KeptDir);
        }
        remove_all(dir, name).map_err(EntryError::io("remove existing directory"))?;
    } else {
        rfs::unlinkat(dir, name, AtFlags::empty())
            .map_err(EntryError::io("remove existing path"))?;
    }
    Ok(Existing::Removed)
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
    set_xattrs_fd(fd, meta, out)
}

/// The entry's xattrs, after chown (which drops security.capability).
fn set_xattrs_fd(fd: &OwnedFd, meta: &Meta, out: &mut MetaOutcome) -> Result<(), EntryError> {
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

/// How a regular file gets its metadata with the fewest calls: created with its permission
/// bits (the umask, known, may strip some), then chown/chmod only where creation did not
/// already give the right result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FilePlan {
    /// Mode for `openat(O_CREAT)`.
    pub(crate) create_mode: u32,
    /// Owner to set, when it differs from what the new file gets anyway.
    pub(crate) chown: Option<(u32, u32)>,
    /// Mode to set (after chown, which clears setuid/setgid), when creation does not give it.
    pub(crate) chmod: Option<u32>,
}

/// What a new file in a directory gets without asking: the process's (fs)uid, and its gid
/// or, below a setgid directory, the directory's gid; permission bits masked by the umask
/// (when no default ACL is in play, which the caller checks).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Creation {
    pub(crate) euid: u32,
    pub(crate) egid: u32,
    /// `None` when the umask is unknown or a default ACL may apply: always chmod.
    pub(crate) umask: Option<u32>,
}

impl FilePlan {
    /// The plan for a file with `meta` in a directory of `dir_mode`/`dir_gid`.
    pub(crate) fn new(
        meta: &Meta,
        chown: bool,
        creation: &Creation,
        dir_mode: u32,
        dir_gid: u32,
    ) -> FilePlan {
        let want = meta.mode & 0o7777;
        let create_mode = meta.mode & 0o777;
        let gid = if dir_mode & 0o2000 != 0 {
            dir_gid
        } else {
            creation.egid
        };
        let chown =
            (chown && (meta.uid, meta.gid) != (creation.euid, gid)).then_some((meta.uid, meta.gid));
        let created = creation.umask.map(|u| create_mode & !u);
        // chown clears setuid/setgid, so special bits are always set after it.
        let chmod = (created != Some(want)).then_some(want);
        FilePlan {
            create_mode,
            chown,
            chmod,
        }
    }
}

/// Owner, mode, xattrs and times of a new regular file, through its fd, per `plan`.
fn finish_file(
    fd: &OwnedFd,
    meta: &Meta,
    plan: &FilePlan,
    out: &mut MetaOutcome,
) -> Result<(), EntryError> {
    if let Some((uid, gid)) = plan.chown {
        rfs::fchown(
            fd,
            Some(rfs::Uid::from_raw(uid)),
            Some(rfs::Gid::from_raw(gid)),
        )
        .map_err(EntryError::io("chown"))?;
    }
    if let Some(mode) = plan.chmod {
        rfs::fchmod(fd, Mode::from_raw_mode(mode)).map_err(EntryError::io("chmod"))?;
    }
    set_xattrs_fd(fd, meta, out)?;
    rfs::futimens(fd, &times(meta.mtime)).map_err(EntryError::io("set times"))
}

/// Creates `name` (no follow, exclusive); a regular file or other non-directory there is
/// replaced. With `only_unlink`, a directory there is an error rather than removed (writer
/// threads must never remove directories: other writers may be filling them).
fn create_exclusive(
    dir: &OwnedFd,
    name: &[u8],
    mode: u32,
    only_unlink: bool,
) -> Result<OwnedFd, EntryError> {
    let create = || {
        rfs::openat(
            dir,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
        )
    };
    // Create first; only on EEXIST remove what is there and retry (saves a stat per file).
    match create() {
        Err(Errno::EXIST) => {
            if only_unlink {
                rfs::unlinkat(dir, name, AtFlags::empty())
                    .map_err(EntryError::io("remove existing path"))?;
            } else {
                remove_existing(dir, name, false)?;
            }
            create()
        }
        r => r,
    }
    .map_err(EntryError::io("create file"))
}

/// A regular file whose content is in memory (a writer thread's job).
pub(crate) fn create_file(
    dir: &OwnedFd,
    name: &[u8],
    data: &[u8],
    meta: &Meta,
    plan: &FilePlan,
    out: &mut MetaOutcome,
) -> Result<(), EntryError> {
    let fd = create_exclusive(dir, name, plan.create_mode, true)?;
    if !data.is_empty() {
        let mut file = std::fs::File::from(fd);
        file.write_all(data)
            .map_err(EntryError::std_io("write file"))?;
        let fd = OwnedFd::from(file);
        return finish_file(&fd, meta, plan, out);
    }
    finish_file(&fd, meta, plan, out)
}

/// A regular file streamed from the tar entry.
pub(crate) fn write_file(
    dir: &OwnedFd,
    name: &[u8],
    data: &mut dyn Read,
    meta: &Meta,
    plan: &FilePlan,
    buf: &mut [u8],
    out: &mut MetaOutcome,
) -> Result<u64, EntryError> {
    let fd = create_exclusive(dir, name, plan.create_mode, false)?;
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
    finish_file(&fd, meta, plan, out)?;
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
    if remove_existing(dir, name, true)? != Existing::KeptDir {
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
