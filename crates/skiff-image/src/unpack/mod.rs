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
//! On error the target is left as it is, possibly half-written: the caller deletes it. Nothing
//! outside the target is ever created, changed or removed.

mod entry;
mod error;
mod limits;
mod root;
mod whiteout;

use std::cell::Cell;
use std::collections::HashSet;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use rustix::fs::{FileType, Timespec};

pub use error::{ApplyError, EntryError, LimitExceeded};
pub use limits::Limits;

use crate::compression::{self, Compression};
use crate::digest::Digest;
use entry::{Meta, MetaOutcome};
use limits::{CountingReader, LimitedHasher};
use root::Root;

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
}

#[derive(Clone, Copy, PartialEq, Eq)]
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

    let mut ctx = Ctx {
        root,
        mode,
        opts,
        stats: Counts::default(),
        dir_times: Vec::new(),
        unpacked: HashSet::new(),
        buf: vec![0u8; 256 * 1024],
        parent_cache: None,
    };
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
            let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
            ctx.entry(&mut e)
                .map_err(|kind| match (kind, violation.take()) {
                    (_, Some(limit)) => ApplyError::Limit {
                        layer: layer.clone(),
                        limit,
                    },
                    (kind, None) => ApplyError::Entry {
                        layer: layer.clone(),
                        entry: name,
                        kind,
                    },
                })?;
        }
    }
    // The diffID covers the whole stream, end-of-archive blocks and padding included.
    io::copy(&mut hashed, &mut io::sink()).map_err(stream_err)?;
    ctx.finish_dir_times()
        .map_err(|(entry, kind)| ApplyError::Entry {
            layer: layer.clone(),
            entry,
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
    })
}

#[derive(Default)]
struct Counts {
    entries: u64,
    files: u64,
    file_bytes: u64,
    dirs: u64,
    symlinks: u64,
    hardlinks: u64,
    devices: u64,
    devices_skipped: u64,
    whiteouts: u64,
    opaque_dirs: u64,
    meta: MetaOutcome,
}

struct Ctx<'a> {
    root: Root,
    mode: Mode,
    opts: &'a ApplyOptions,
    stats: Counts,
    /// Directories whose mtime is set once everything is written (their content changes it).
    dir_times: Vec<(Vec<u8>, Timespec)>,
    /// Rootfs mode: paths this layer wrote, and their parents (kept by opaque markers).
    unpacked: HashSet<Vec<u8>>,
    buf: Vec<u8>,
    /// The last regular file's parent (path, fd): consecutive files in one directory skip
    /// the openat2 walk. Dropped whenever an entry other than a regular file is handled.
    parent_cache: Option<(Vec<u8>, std::os::fd::OwnedFd)>,
}

impl Ctx<'_> {
    fn entry<R: Read>(&mut self, e: &mut tar::Entry<'_, R>) -> Result<(), EntryError> {
        let kind = e.header().entry_type();
        if matches!(kind, tar::EntryType::XGlobalHeader) {
            return Ok(());
        }
        let limits = &self.opts.limits;
        let size = e.size();
        if size > limits.max_total_bytes {
            return Err(EntryError::TooLarge {
                size,
                limit: limits.max_total_bytes,
            });
        }
        let raw_path = e.path_bytes().into_owned();
        if raw_path.len() > limits.max_path_len {
            return Err(EntryError::PathTooLong {
                len: raw_path.len(),
                limit: limits.max_path_len,
            });
        }
        let comps = root::clean(&raw_path)?;
        let Some((name, parent)) = comps.split_last() else {
            return Ok(()); // the root itself: its metadata belongs to the snapshot, not the layer
        };
        let (name, parent) = (*name, parent.to_vec());
        let full = root::join(&comps);

        // Whiteouts.
        if let Some(w) = whiteout::classify(name)? {
            self.parent_cache = None;
            let dir = self.root.parent(&parent)?;
            match (w, self.mode) {
                (whiteout::Whiteout::Meta, _) => return Ok(()),
                (whiteout::Whiteout::Remove(t), Mode::Overlay) => {
                    whiteout::overlay_remove(&dir, t)?
                }
                (whiteout::Whiteout::Remove(t), Mode::Rootfs) => whiteout::rootfs_remove(&dir, t)?,
                (whiteout::Whiteout::Opaque, Mode::Overlay) => {
                    self.stats.opaque_dirs += 1;
                    return whiteout::overlay_opaque(&dir);
                }
                (whiteout::Whiteout::Opaque, Mode::Rootfs) => {
                    self.stats.opaque_dirs += 1;
                    let prefix = root::join(&parent);
                    let unpacked = &self.unpacked;
                    let keep = |child: &[u8]| {
                        let mut p = prefix.clone();
                        if !p.is_empty() {
                            p.push(b'/');
                        }
                        p.extend_from_slice(child);
                        unpacked.contains(&p)
                    };
                    return whiteout::rootfs_opaque(&dir, &keep);
                }
            }
            self.stats.whiteouts += 1;
            return Ok(());
        }

        let meta = self.meta(e)?;
        let is_file = matches!(
            kind,
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse
        );
        let parent_path = root::join(&parent);
        let dir = match self.parent_cache.take() {
            Some((p, fd)) if is_file && p == parent_path => fd,
            _ => self.root.parent(&parent)?,
        };
        let chown = self.opts.chown;
        let out = &mut self.stats.meta;
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let n = entry::write_file(&dir, name, e, &meta, chown, &mut self.buf, out)?;
                self.stats.files += 1;
                self.stats.file_bytes += n;
                self.parent_cache = Some((parent_path, dir));
            }
            tar::EntryType::Directory => {
                entry::make_dir(&dir, name, &meta, chown, out)?;
                self.dir_times.push((full.clone(), meta.mtime));
                self.stats.dirs += 1;
            }
            tar::EntryType::Symlink => {
                let target = e
                    .link_name_bytes()
                    .ok_or(EntryError::MissingLinkTarget)?
                    .into_owned();
                if target.len() > limits.max_path_len || target.contains(&0) {
                    return Err(EntryError::PathTooLong {
                        len: target.len(),
                        limit: limits.max_path_len,
                    });
                }
                entry::make_symlink(&dir, name, &target, &meta, chown, out)?;
                self.stats.symlinks += 1;
            }
            tar::EntryType::Link => {
                let target = e
                    .link_name_bytes()
                    .ok_or(EntryError::MissingLinkTarget)?
                    .into_owned();
                let shown = || String::from_utf8_lossy(&target).into_owned();
                if target.len() > limits.max_path_len {
                    return Err(EntryError::PathTooLong {
                        len: target.len(),
                        limit: limits.max_path_len,
                    });
                }
                let tcomps = root::clean(&target).map_err(|_| EntryError::LinkEscapes(shown()))?;
                let Some((tname, tparent)) = tcomps.split_last() else {
                    return Err(EntryError::LinkEscapes(shown()));
                };
                let tdir = self.root.parent(tparent)?;
                entry::make_hardlink(&tdir, tname, &dir, name)?;
                self.stats.hardlinks += 1;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let ft = match kind {
                    tar::EntryType::Char => FileType::CharacterDevice,
                    tar::EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let h = e.header();
                let major = h
                    .device_major()
                    .map_err(header_err("devmajor"))?
                    .unwrap_or(0);
                let minor = h
                    .device_minor()
                    .map_err(header_err("devminor"))?
                    .unwrap_or(0);
                let dev = rustix::fs::makedev(major, minor);
                if entry::make_node(
                    &dir,
                    name,
                    ft,
                    dev,
                    &meta,
                    chown,
                    self.opts.skip_devices_on_eperm,
                    out,
                )? {
                    self.stats.devices += 1;
                } else {
                    self.stats.devices_skipped += 1;
                }
            }
            other => return Err(EntryError::Unsupported(other.as_byte())),
        }
        if self.mode == Mode::Rootfs {
            for i in 1..=comps.len() {
                self.unpacked.insert(root::join(&comps[..i]));
            }
        }
        Ok(())
    }

    /// Mode, owner, mtime and xattrs from the header and its PAX records.
    fn meta<R: Read>(&self, e: &mut tar::Entry<'_, R>) -> Result<Meta, EntryError> {
        let limits = &self.opts.limits;
        let h = e.header();
        let old = h.as_old();
        // Empty numeric fields read as 0, as Go's archive/tar (docker, containerd) reads them.
        let mode = lenient(h.mode().map(u64::from), &old.mode, "mode")? as u32;
        let mut uid = lenient(h.uid(), &old.uid, "uid")?;
        let mut gid = lenient(h.gid(), &old.gid, "gid")?;
        let mut mtime = Timespec {
            tv_sec: lenient(h.mtime(), &old.mtime, "mtime")? as i64,
            tv_nsec: 0,
        };
        let mut xattrs = Vec::new();
        if let Some(pax) = e.pax_extensions().map_err(header_err("pax"))? {
            for ext in pax {
                let ext = ext.map_err(header_err("pax"))?;
                let Ok(key) = ext.key() else { continue };
                let value = ext.value_bytes();
                let num = || {
                    std::str::from_utf8(value)
                        .ok()
                        .and_then(|s| s.parse::<u64>().ok())
                };
                match key {
                    "uid" => uid = num().unwrap_or(uid),
                    "gid" => gid = num().unwrap_or(gid),
                    "mtime" => {
                        if let Some(t) = std::str::from_utf8(value).ok().and_then(parse_pax_time) {
                            mtime = t;
                        }
                    }
                    _ => {
                        let Some(name) = key.strip_prefix("SCHILY.xattr.") else {
                            continue;
                        };
                        if name.starts_with("trusted.overlay.")
                            || name.is_empty()
                            || name.contains('\0')
                        {
                            continue; // never let a layer steer overlayfs
                        }
                        if value.len() > limits.max_xattr_size {
                            return Err(EntryError::XattrTooLarge {
                                name: name.into(),
                                size: value.len(),
                                limit: limits.max_xattr_size,
                            });
                        }
                        xattrs.push((name.to_owned(), value.to_vec()));
                        if xattrs.len() > limits.max_xattrs_per_entry {
                            return Err(EntryError::TooManyXattrs {
                                count: xattrs.len(),
                                limit: limits.max_xattrs_per_entry,
                            });
                        }
                    }
                }
            }
        }
        let id = |v: u64, field| {
            u32::try_from(v).map_err(|_| EntryError::Header {
                field,
                source: io::Error::other("id out of range"),
            })
        };
        Ok(Meta {
            mode,
            uid: id(uid, "uid")?,
            gid: id(gid, "gid")?,
            mtime,
            xattrs,
        })
    }

    fn finish_dir_times(&mut self) -> Result<(), (String, EntryError)> {
        for (path, t) in self.dir_times.drain(..).rev() {
            let shown = || String::from_utf8_lossy(&path).into_owned();
            let comps = root::clean(&path).map_err(|e| (shown(), e))?;
            let Some((name, parent)) = comps.split_last() else {
                continue;
            };
            let dir = match self.root.parent(parent) {
                Ok(d) => d,
                Err(EntryError::ParentNotDir { .. }) => continue, // replaced later in the layer
                Err(e) => return Err((shown(), e)),
            };
            entry::set_dir_time(&dir, name, t).map_err(|e| (shown(), e))?;
        }
        Ok(())
    }
}

fn lenient(v: io::Result<u64>, raw: &[u8], field: &'static str) -> Result<u64, EntryError> {
    match v {
        Ok(v) => Ok(v),
        Err(_) if raw.iter().all(|b| *b == 0 || *b == b' ') => Ok(0),
        Err(source) => Err(EntryError::Header { field, source }),
    }
}

fn header_err(field: &'static str) -> impl Fn(io::Error) -> EntryError {
    move |source| EntryError::Header { field, source }
}

/// PAX `mtime` is decimal seconds with an optional fraction.
fn parse_pax_time(s: &str) -> Option<Timespec> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let tv_sec: i64 = secs.parse().ok()?;
    let mut digits: String = frac.chars().take(9).collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    while digits.len() < 9 {
        digits.push('0');
    }
    let tv_nsec = if tv_sec < 0 { 0 } else { digits.parse().ok()? };
    Some(Timespec { tv_sec, tv_nsec })
}
