//! Applying a layer tar to a directory, streaming: blob → decompress → sha256 (diffID) → tar
//! entries → `*at` syscalls. No temp copy of the layer is made.
//!
//! Two forms:
//! - [`apply_layer`]: into an overlayfs upper ("diff") directory; whiteouts become 0/0 char
//!   devices and opaque markers the `trusted.overlay.opaque=y` xattr (as containerd/Docker do).
//! - [`apply_layer_to_rootfs`]: into a plain directory holding the lower layers' content;
//!   whiteouts delete and opaque markers empty the directory.
//!
//! Hostile layers: each path is cleaned lexically (no absolute paths, no `..` above the
//! root), every parent is opened with openat2(RESOLVE_IN_ROOT), so symlinks are resolved as if
//! the target were `/` and cannot lead outside, and the last component is never followed.
//! Hard-link targets get the same treatment. `trusted.overlay.*` xattrs in the tar are dropped
//! (they would let a layer redirect overlayfs lookups). Byte/entry/path/xattr limits and a
//! decompression-ratio check are in [`Limits`].
//!
//! Speed: small regular files (up to 1 MiB) are written by a few writer threads
//! ([`ApplyOptions::writers`]) while the calling thread decompresses, hashes, parses and makes
//! directories; `ctx.rs` keeps the result identical to applying entries one by one. A new
//! file costs create, write, futimens and close: it is created with its permission bits, and
//! chown/chmod are called only where creation did not already give the owner and mode. No
//! fsync: the caller decides about durability.
//!
//! On error the target is left as it is, possibly half-written: the caller deletes it. Nothing
//! outside the target is ever created, changed or removed.

mod ctx;
mod entry;
mod error;
mod header;
mod limits;
mod pool;
mod root;
#[cfg(test)]
mod tests;
mod whiteout;

use std::cell::Cell;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;

pub use error::{ApplyError, EntryError, LimitExceeded};
pub use limits::Limits;

use crate::compression::{self, Compression};
use crate::digest::Digest;
use ctx::{Ctx, Fail};
use entry::Creation;
use limits::{CountingReader, LimitedHasher};
use root::Root;

/// Writer threads by default: enough to overlap the kernel's per-file work with the
/// decompression (4 and 8 measured alike on a 2-core VM).
pub const DEFAULT_WRITERS: usize = 4;

/// How to apply a layer.
#[derive(Clone, Debug)]
pub struct ApplyOptions {
    /// Names the layer in errors (e.g. its digest).
    pub layer: String,
    pub limits: Limits,
    /// Set numeric owners from the tar (needs CAP_CHOWN); off for rootless use.
    pub chown: bool,
    /// Overlay mode: the lower layers' directories, topmost first. Parents that the layer
    /// writes into without listing them copy their owner/mode/mtime from there.
    pub lower_dirs: Vec<PathBuf>,
    /// When set, the layer's diffID must be this (checked after the stream ends).
    pub expected_diff_id: Option<Digest>,
    /// Skip device nodes whose mknod fails with EPERM (rootless, user namespaces).
    pub skip_devices_on_eperm: bool,
    /// Threads that write small regular files while this one decompresses and parses the
    /// tar (creating a file costs the kernel far more than reading it from the stream);
    /// 0 writes everything on the calling thread.
    pub writers: usize,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            layer: "<layer>".into(),
            limits: Limits::default(),
            chown: true,
            lower_dirs: Vec::new(),
            expected_diff_id: None,
            skip_devices_on_eperm: false,
            writers: DEFAULT_WRITERS,
        }
    }
}

/// What applying a layer did.
#[derive(Clone, Debug)]
pub struct ApplyStats {
    /// sha256 of the uncompressed tar stream, to compare with the config's `rootfs.diff_ids`.
    pub diff_id: Digest,
    pub compression: Compression,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    pub entries: u64,
    pub files: u64,
    pub file_bytes: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub hardlinks: u64,
    pub devices: u64,
    pub devices_skipped: u64,
    pub whiteouts: u64,
    pub opaque_dirs: u64,
    pub xattrs_skipped: u64,
    /// Directories made without being listed (parents of entries), relative to the target,
    /// parents first; see [`inherit_lower_dirs`].
    pub implied_dirs: Vec<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Overlay,
    Rootfs,
}

/// Applies a layer into an overlayfs upper directory. `compression: None` detects it from the
/// magic bytes (gzip, zstd, else plain tar).
pub fn apply_layer<R: Read>(
    reader: R,
    compression: Option<Compression>,
    target: &Path,
    opts: &ApplyOptions,
) -> Result<ApplyStats, ApplyError> {
    apply(reader, compression, target, opts, Mode::Overlay)
}

/// Applies a layer onto a plain directory (no overlay): whiteouts delete, opaque markers
/// empty the directory of everything this layer did not write. `opts.lower_dirs` is unused.
pub fn apply_layer_to_rootfs<R: Read>(
    reader: R,
    compression: Option<Compression>,
    target: &Path,
    opts: &ApplyOptions,
) -> Result<ApplyStats, ApplyError> {
    apply(reader, compression, target, opts, Mode::Rootfs)
}

fn apply<R: Read>(
    reader: R,
    compression: Option<Compression>,
    target: &Path,
    opts: &ApplyOptions,
    mode: Mode,
) -> Result<ApplyStats, ApplyError> {
    let layer = &opts.layer;
    let lowers: &[PathBuf] = if mode == Mode::Overlay {
        &opts.lower_dirs
    } else {
        &[]
    };
    let root = Root::open(target, lowers).map_err(|(i, source)| match i {
        0 => ApplyError::Target {
            layer: layer.clone(),
            path: target.into(),
            source,
        },
        i => ApplyError::Lower {
            layer: layer.clone(),
            path: lowers[i - 1].clone(),
            source,
        },
    })?;
    let read_err = |source| ApplyError::Read {
        layer: layer.clone(),
        source,
    };

    let compressed = Rc::new(Cell::new(0u64));
    let counted = CountingReader {
        inner: reader,
        count: compressed.clone(),
    };
    let (detected, peeked) = compression::peek(counted).map_err(read_err)?;
    let comp = compression.unwrap_or(detected);
    let plain = compression::decompress(peeked, comp).map_err(read_err)?;
    let ratio_counter = (comp != Compression::None).then(|| compressed.clone());
    let mut hashed = LimitedHasher::new(plain, &opts.limits, ratio_counter);
    let violation = hashed.violation.clone();
    let stream_err = |source: io::Error| match violation.take() {
        Some(limit) => ApplyError::Limit {
            layer: layer.clone(),
            limit,
        },
        None => ApplyError::Read {
            layer: layer.clone(),
            source,
        },
    };

    let creation = creation(target, mode);
    let mut ctx = Ctx::new(root, mode, opts, creation);
    let shown = |p: &[u8]| String::from_utf8_lossy(p).into_owned();
    {
        let mut archive = tar::Archive::new(&mut hashed);
        for item in archive.entries().map_err(stream_err)? {
            let mut e = item.map_err(stream_err)?;
            ctx.stats.entries += 1;
            if ctx.stats.entries > opts.limits.max_entries {
                return Err(ApplyError::Limit {
                    layer: layer.clone(),
                    limit: LimitExceeded::Entries(opts.limits.max_entries),
                });
            }
            let res = ctx.entry(&mut e);
            res.map_err(|fail| match (fail, violation.take()) {
                (_, Some(limit)) => ApplyError::Limit {
                    layer: layer.clone(),
                    limit,
                },
                (Fail::Entry(kind), None) => ApplyError::Entry {
                    layer: layer.clone(),
                    entry: shown(&e.path_bytes()),
                    kind,
                },
                (Fail::Writer(w), None) => ApplyError::Entry {
                    layer: layer.clone(),
                    entry: shown(&w.entry),
                    kind: w.error,
                },
            })?;
        }
    }
    // The diffID covers the whole stream, end-of-archive blocks and padding included.
    io::copy(&mut hashed, &mut io::sink()).map_err(stream_err)?;
    let implied = ctx.finish().map_err(|(entry, kind)| ApplyError::Entry {
        layer: layer.clone(),
        entry: shown(&entry),
        kind,
    })?;
    let (diff_id, uncompressed_size) = hashed.finish();
    if let Some(expected) = &opts.expected_diff_id {
        if *expected != diff_id {
            return Err(ApplyError::DiffIdMismatch {
                layer: layer.clone(),
                expected: expected.clone(),
                actual: diff_id,
            });
        }
    }
    let c = ctx.stats;
    Ok(ApplyStats {
        diff_id,
        compression: comp,
        compressed_size: compressed.get(),
        uncompressed_size,
        entries: c.entries,
        files: c.files,
        file_bytes: c.file_bytes,
        dirs: c.dirs,
        symlinks: c.symlinks,
        hardlinks: c.hardlinks,
        devices: c.devices,
        devices_skipped: c.devices_skipped,
        whiteouts: c.whiteouts,
        opaque_dirs: c.opaque_dirs,
        xattrs_skipped: c.meta.xattrs_skipped,
        implied_dirs: implied.into_iter().map(path_from_bytes).collect(),
    })
}

fn path_from_bytes(b: Vec<u8>) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(b))
}

/// Gives the directories a layer made without listing them ([`ApplyStats::implied_dirs`]) the
/// owner and mode of the same directory in the topmost of `opts.lower_dirs` that has one,
/// for a layer applied before its lower layers were known (with `lower_dirs` empty). What
/// [`apply_layer`] does as it goes, but their mtime stays (writing their content changed it
/// there too). Directories gone or replaced later in the layer are skipped.
pub fn inherit_lower_dirs(
    target: &Path,
    implied_dirs: &[PathBuf],
    opts: &ApplyOptions,
) -> Result<(), ApplyError> {
    use std::os::unix::ffi::OsStrExt;
    let layer = &opts.layer;
    if opts.lower_dirs.is_empty() {
        return Ok(());
    }
    let root = Root::open(target, &opts.lower_dirs).map_err(|(i, source)| match i {
        0 => ApplyError::Target {
            layer: layer.clone(),
            path: target.into(),
            source,
        },
        i => ApplyError::Lower {
            layer: layer.clone(),
            path: opts.lower_dirs[i - 1].clone(),
            source,
        },
    })?;
    for dir in implied_dirs {
        let path = dir.as_os_str().as_bytes();
        let fail = |kind| ApplyError::Entry {
            layer: layer.clone(),
            entry: dir.display().to_string(),
            kind,
        };
        let comps = root::clean(path).map_err(fail)?;
        let Some((name, parent)) = comps.split_last() else {
            continue;
        };
        let Ok(pfd) =
            root::open_dir_in_root(std::os::fd::AsFd::as_fd(&root.fd), &root::join(parent))
        else {
            continue; // gone
        };
        match rustix::fs::statat(&pfd, *name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st)
                if rustix::fs::FileType::from_raw_mode(st.st_mode)
                    == rustix::fs::FileType::Directory => {}
            _ => continue, // gone or replaced
        }
        root.copy_lower_dir_info(&pfd, name, &root::join(&comps), false)
            .map_err(fail)?;
    }
    Ok(())
}

/// What new files get without being asked (see [`entry::FilePlan`]). The umask counts only
/// in overlay mode and when the target has no default ACL: a plain rootfs may hold default
/// ACLs anywhere, so there every file is chmod'ed.
fn creation(target: &Path, mode: Mode) -> Creation {
    let umask = (mode == Mode::Overlay && !has_default_acl(target))
        .then(process_umask)
        .flatten();
    Creation {
        euid: rustix::process::geteuid().as_raw(),
        egid: rustix::process::getegid().as_raw(),
        umask,
    }
}

fn has_default_acl(dir: &Path) -> bool {
    match rustix::fs::getxattr(dir, "system.posix_acl_default", &mut [0u8; 0][..]) {
        Ok(_) => true,
        Err(rustix::io::Errno::NODATA) | Err(rustix::io::Errno::NOTSUP) => false,
        Err(_) => true, // unknown: assume it may
    }
}

/// The umask, read without changing it (umask(2) would race with other threads creating
/// files): the `Umask:` line of /proc/self/status. `None` when it cannot be read.
fn process_umask() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
    u32::from_str_radix(line.trim(), 8).ok()
}
