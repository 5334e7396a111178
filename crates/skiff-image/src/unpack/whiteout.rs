//! Whiteouts: `.wh.<name>` deletes `<name>` from the layers below, `.wh..wh..opq` hides the
//! whole directory below. In overlay form they become a 0/0 character device and the
//! `trusted.overlay.opaque=y` xattr; applied to a plain rootfs they delete for real.

use std::os::fd::OwnedFd;

use rustix::fs::{self as rfs, FileType, Mode, OFlags, XattrFlags};

use super::entry;
use super::error::EntryError;

pub(crate) const PREFIX: &[u8] = b".wh.";
pub(crate) const OPAQUE: &[u8] = b".wh..wh..opq";
/// aufs' own metadata (`.wh..wh.plnk`, `.wh..wh.aufs`): skipped, as docker does.
const META_PREFIX: &[u8] = b".wh..wh.";

pub(crate) const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";

pub(crate) enum Whiteout<'a> {
    /// Delete this sibling.
    Remove(&'a [u8]),
    /// Hide everything below the parent directory.
    Opaque,
    /// aufs metadata: ignore.
    Meta,
}

/// Classifies a base name; `None` when it is no whiteout.
pub(crate) fn classify(name: &[u8]) -> Result<Option<Whiteout<'_>>, EntryError> {
    if name == OPAQUE {
        return Ok(Some(Whiteout::Opaque));
    }
    if name.starts_with(META_PREFIX) {
        return Ok(Some(Whiteout::Meta));
    }
    match name.strip_prefix(PREFIX) {
        None => Ok(None),
        Some(b"" | b"." | b"..") => Err(EntryError::PathEscapes),
        Some(target) => Ok(Some(Whiteout::Remove(target))),
    }
}

/// Overlay form of `.wh.<name>`: a 0/0 character device replacing whatever is there.
pub(crate) fn overlay_remove(dir: &OwnedFd, name: &[u8]) -> Result<(), EntryError> {
    entry::remove_existing(dir, name, false)?;
    rfs::mknodat(
        dir,
        name,
        FileType::CharacterDevice,
        Mode::empty(),
        rfs::makedev(0, 0),
    )
    .map_err(EntryError::io("create whiteout device"))
}

/// Overlay form of `.wh..wh..opq`: the opaque xattr on the directory `dir`.
pub(crate) fn overlay_opaque(dir: &OwnedFd) -> Result<(), EntryError> {
    let fd = open_rw_dir(dir)?;
    rfs::fsetxattr(&fd, OVERLAY_OPAQUE_XATTR, b"y", XattrFlags::empty())
        .map_err(EntryError::io("set trusted.overlay.opaque"))
}

/// Plain-rootfs form of `.wh.<name>`: delete it (absent is fine).
pub(crate) fn rootfs_remove(dir: &OwnedFd, name: &[u8]) -> Result<(), EntryError> {
    entry::remove_all(dir, name).map_err(EntryError::io("remove whited-out path"))
}

/// Plain-rootfs form of `.wh..wh..opq`: empty the directory except what this layer put there.
pub(crate) fn rootfs_opaque(dir: &OwnedFd, keep: &dyn Fn(&[u8]) -> bool) -> Result<(), EntryError> {
    let fd = open_rw_dir(dir)?;
    entry::empty_dir(&fd, keep).map_err(EntryError::io("empty opaque directory"))
}

fn open_rw_dir(dir: &OwnedFd) -> Result<OwnedFd, EntryError> {
    rfs::openat(
        dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(EntryError::io("open directory"))
}
