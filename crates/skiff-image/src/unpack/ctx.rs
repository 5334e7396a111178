//! Applying the entries of one layer, in tar order, with small regular files handed to the
//! writer threads of [`Pool`].
//!
//! What the result must be is what applying the entries one by one gives; the rules that
//! keep it so while writers run behind the unpacker (see `pool.rs` for why they exist):
//! - Directories (listed or implied) are made here, before any child is queued.
//! - Any entry whose key (resolved parent, name) has a queued job waits for the queue to
//!   drain first: the last entry for a path wins, a whiteout removes the file that was
//!   written, a directory replaces it.
//! - Before an entry replaces an existing directory (a file, link or whiteout over it) or a
//!   directory entry changes an existing one (mode, owner), the queue drains: jobs may be
//!   writing below it.
//! - A hard link waits for its target's job; a parent path whose prefix is a queued file
//!   waits too (the entry then fails, as it would have).
//! - Parents are resolved once per directory and cached by their cleaned path; anything
//!   that removes or replaces a path empties the cache (a cached resolution might have gone
//!   through it), and so does a change to an existing directory (its mode and group decide
//!   what a new file inherits).

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use rustix::fs::{self as rfs, AtFlags, FileType, Timespec};
use rustix::io::Errno;

use super::entry::{self, Creation, FilePlan, Meta, MetaOutcome};
use super::error::EntryError;
use super::header::{self, header_err};
use super::pool::{Job, Key, Pool, WriterFailed};
use super::root::{self, Root};
use super::whiteout::{self, Whiteout};
use super::{ApplyOptions, Mode};

/// Regular files up to this size go to the writers with their content in memory; bigger
/// ones are streamed here.
pub(crate) const POOL_FILE_MAX: u64 = 1 << 20;
/// The unpacker waits while this much content or this many jobs are queued.
const POOL_MAX_BYTES: usize = 8 << 20;
const POOL_MAX_JOBS: usize = 256;
/// Resolved parents kept (the cache is emptied when it grows past this).
const PARENT_CACHE_MAX: usize = 4096;

const ACL_DEFAULT_XATTR: &str = "system.posix_acl_default";

#[derive(Default)]
pub(crate) struct Counts {
    pub(crate) entries: u64,
    pub(crate) files: u64,
    pub(crate) file_bytes: u64,
    pub(crate) dirs: u64,
    pub(crate) symlinks: u64,
    pub(crate) hardlinks: u64,
    pub(crate) devices: u64,
    pub(crate) devices_skipped: u64,
    pub(crate) whiteouts: u64,
    pub(crate) opaque_dirs: u64,
    pub(crate) meta: MetaOutcome,
}

/// Why an entry failed: itself, or an earlier file a writer was writing.
pub(crate) enum Fail {
    Entry(EntryError),
    Writer(WriterFailed),
}

impl From<EntryError> for Fail {
    fn from(e: EntryError) -> Fail {
        Fail::Entry(e)
    }
}

impl From<WriterFailed> for Fail {
    fn from(e: WriterFailed) -> Fail {
        Fail::Writer(e)
    }
}

/// A resolved parent directory: an `O_PATH` fd and what new files in it inherit.
#[derive(Clone)]
struct Parent {
    fd: Arc<OwnedFd>,
    dev: u64,
    ino: u64,
    mode: u32,
    gid: u32,
}

impl Parent {
    fn key(&self, name: &[u8]) -> Key {
        (self.dev, self.ino, name.to_vec())
    }
}

pub(crate) struct Ctx<'a> {
    root: Root,
    mode: Mode,
    opts: &'a ApplyOptions,
    pub(crate) stats: Counts,
    /// Directories whose mtime is set once everything is written (their content changes it).
    dir_times: Vec<(Vec<u8>, Timespec)>,
    /// Rootfs mode: paths this layer wrote, and their parents (kept by opaque markers).
    unpacked: HashSet<Vec<u8>>,
    buf: Vec<u8>,
    parents: HashMap<Vec<u8>, Parent>,
    pool: Option<Pool>,
    creation: Creation,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(root: Root, mode: Mode, opts: &'a ApplyOptions, creation: Creation) -> Self {
        let pool = (opts.writers > 0).then(|| {
            let pool = Pool::new(opts.writers, POOL_MAX_BYTES, POOL_MAX_JOBS);
            #[cfg(test)]
            let pool = pool.with_first_job_delay(super::tests::FIRST_JOB_DELAY.get());
            pool
        });
        Ctx {
            root,
            mode,
            opts,
            stats: Counts::default(),
            dir_times: Vec::new(),
            unpacked: HashSet::new(),
            buf: vec![0u8; 256 * 1024],
            parents: HashMap::new(),
            pool,
            creation,
        }
    }

    pub(crate) fn entry<R: Read>(&mut self, e: &mut tar::Entry<'_, R>) -> Result<(), Fail> {
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
            }
            .into());
        }
        let raw_path = e.path_bytes().into_owned();
        if raw_path.len() > limits.max_path_len {
            return Err(EntryError::PathTooLong {
                len: raw_path.len(),
                limit: limits.max_path_len,
            }
            .into());
        }
        let comps = root::clean(&raw_path)?;
        let Some((name, parent)) = comps.split_last() else {
            return Ok(()); // the root itself: its metadata belongs to the snapshot, not the layer
        };
        let name = *name;

        if let Some(w) = whiteout::classify(name)? {
            return self.whiteout(w, parent);
        }

        let meta = header::meta(e, limits)?;
        let dir = self.parent(parent)?;
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let existing = self.before_replace(&dir, name, true)?;
                let replaces_file = existing == Some(FileType::RegularFile);
                if existing.is_some() && !replaces_file {
                    self.parents.clear();
                }
                let plan = self.plan(&meta, &dir);
                let pooled = self.pool.is_some()
                    && size <= POOL_FILE_MAX
                    && kind != tar::EntryType::GNUSparse
                    && (existing.is_none() || replaces_file);
                if pooled {
                    // Exactly `size` bytes (no sparse map here): no probe read for EOF.
                    let mut data = vec![0u8; size as usize];
                    e.read_exact(&mut data)
                        .map_err(EntryError::std_io("read file data"))?;
                    self.stats.files += 1;
                    self.stats.file_bytes += data.len() as u64;
                    let job = Job {
                        key: dir.key(name),
                        dir: dir.fd.clone(),
                        data,
                        meta,
                        plan,
                        path: root::join(&comps),
                        entry: raw_path.clone(),
                    };
                    self.pool.as_mut().expect("pooled").submit(job)?;
                } else {
                    let out = &mut self.stats.meta;
                    let n = entry::write_file(&dir.fd, name, e, &meta, &plan, &mut self.buf, out)?;
                    self.stats.files += 1;
                    self.stats.file_bytes += n;
                }
            }
            tar::EntryType::Directory => {
                let existing = self.before_replace(&dir, name, false)?;
                if existing == Some(FileType::Directory) {
                    // Its mode may change under queued files (rootless: to read-only).
                    self.flush()?;
                }
                if existing.is_some() {
                    self.parents.clear();
                }
                if meta.xattrs.iter().any(|(k, _)| k == ACL_DEFAULT_XATTR) {
                    // New files below take their mode from the ACL, not the umask.
                    self.creation.umask = None;
                }
                let full = root::join(&comps);
                entry::make_dir(&dir.fd, name, &meta, self.opts.chown, &mut self.stats.meta)?;
                self.dir_times.push((full, meta.mtime));
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
                    }
                    .into());
                }
                self.replace(&dir, name)?;
                let out = &mut self.stats.meta;
                entry::make_symlink(&dir.fd, name, &target, &meta, self.opts.chown, out)?;
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
                    }
                    .into());
                }
                let tcomps = root::clean(&target).map_err(|_| EntryError::LinkEscapes(shown()))?;
                let Some((tname, tparent)) = tcomps.split_last() else {
                    return Err(EntryError::LinkEscapes(shown()).into());
                };
                let tdir = self.parent(tparent)?;
                if self.is_pending(&tdir, tname) {
                    self.flush()?; // the target must be written in full first
                }
                self.replace(&dir, name)?;
                entry::make_hardlink(&tdir.fd, tname, &dir.fd, name)?;
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
                let dev = rfs::makedev(major, minor);
                self.replace(&dir, name)?;
                if entry::make_node(
                    &dir.fd,
                    name,
                    ft,
                    dev,
                    &meta,
                    self.opts.chown,
                    self.opts.skip_devices_on_eperm,
                    &mut self.stats.meta,
                )? {
                    self.stats.devices += 1;
                } else {
                    self.stats.devices_skipped += 1;
                }
            }
            other => return Err(EntryError::Unsupported(other.as_byte()).into()),
        }
        if self.mode == Mode::Rootfs {
            for i in 1..=comps.len() {
                self.unpacked.insert(root::join(&comps[..i]));
            }
        }
        Ok(())
    }

    fn whiteout(&mut self, w: Whiteout<'_>, parent: &[&[u8]]) -> Result<(), Fail> {
        let dir = self.parent(parent)?;
        match (w, self.mode) {
            (Whiteout::Meta, _) => return Ok(()),
            (Whiteout::Remove(t), mode) => {
                self.replace(&dir, t)?;
                match mode {
                    Mode::Overlay => whiteout::overlay_remove(&dir.fd, t)?,
                    Mode::Rootfs => whiteout::rootfs_remove(&dir.fd, t)?,
                }
                self.stats.whiteouts += 1;
            }
            (Whiteout::Opaque, Mode::Overlay) => {
                // Only an xattr on the directory: queued files in it are this layer's, kept.
                self.stats.opaque_dirs += 1;
                whiteout::overlay_opaque(&dir.fd)?;
            }
            (Whiteout::Opaque, Mode::Rootfs) => {
                self.stats.opaque_dirs += 1;
                self.flush()?;
                self.parents.clear();
                let prefix = root::join(parent);
                let unpacked = &self.unpacked;
                let keep = |child: &[u8]| {
                    let mut p = prefix.clone();
                    if !p.is_empty() {
                        p.push(b'/');
                    }
                    p.extend_from_slice(child);
                    unpacked.contains(&p)
                };
                whiteout::rootfs_opaque(&dir.fd, &keep)?;
            }
        }
        Ok(())
    }

    /// Before something other than a pooled file replaces `name`: the queue is drained where
    /// needed and the parent cache emptied if something is there.
    fn replace(&mut self, dir: &Parent, name: &[u8]) -> Result<(), Fail> {
        if self.before_replace(dir, name, true)?.is_some() {
            self.parents.clear();
        }
        Ok(())
    }

    /// What is at `name` now, once no queued job targets it; drains the queue first when that
    /// is a directory that will be removed (`removes_dirs`), as jobs may be writing below it.
    fn before_replace(
        &mut self,
        dir: &Parent,
        name: &[u8],
        removes_dirs: bool,
    ) -> Result<Option<FileType>, Fail> {
        if self.is_pending(dir, name) {
            self.flush()?;
        }
        let existing = match rfs::statat(&*dir.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Some(FileType::from_raw_mode(st.st_mode)),
            Err(Errno::NOENT) => None,
            Err(e) => return Err(EntryError::io("stat existing path")(e).into()),
        };
        if removes_dirs && existing == Some(FileType::Directory) {
            self.flush()?;
        }
        Ok(existing)
    }

    fn is_pending(&self, dir: &Parent, name: &[u8]) -> bool {
        self.pool
            .as_ref()
            .is_some_and(|p| p.is_pending(&dir.key(name)))
    }

    /// Waits for every queued file.
    pub(crate) fn flush(&mut self) -> Result<(), WriterFailed> {
        match &mut self.pool {
            Some(p) => p.flush(),
            None => Ok(()),
        }
    }

    /// The parent directory of an entry (made when missing), from the cache when it can be.
    fn parent(&mut self, comps: &[&[u8]]) -> Result<Parent, Fail> {
        let path = root::join(comps);
        if let Some(p) = self.parents.get(&path) {
            return Ok(p.clone());
        }
        // A queued file on the way would be made a directory here, or fail to be one: what
        // happens must not depend on whether its writer came first.
        if let Some(pool) = &mut self.pool {
            if pool.has_pending_prefix(comps) {
                pool.flush()?;
            }
        }
        let fd = self.root.parent(comps)?;
        let st = rfs::fstat(&fd).map_err(EntryError::io("stat parent directory"))?;
        let p = Parent {
            fd: Arc::new(fd),
            dev: st.st_dev,
            ino: st.st_ino,
            mode: st.st_mode,
            gid: st.st_gid,
        };
        if self.parents.len() >= PARENT_CACHE_MAX {
            self.parents.clear();
        }
        self.parents.insert(path, p.clone());
        Ok(p)
    }

    fn plan(&self, meta: &Meta, dir: &Parent) -> FilePlan {
        FilePlan::new(meta, self.opts.chown, &self.creation, dir.mode, dir.gid)
    }

    /// Once every entry is in: the queue drained, then directory mtimes. Returns the
    /// directories made without being listed (see [`super::ApplyStats::implied_dirs`]).
    pub(crate) fn finish(&mut self) -> Result<Vec<Vec<u8>>, (Vec<u8>, EntryError)> {
        self.flush().map_err(|w| (w.entry, w.error))?;
        if let Some(p) = &self.pool {
            self.stats.meta.xattrs_skipped += p.xattrs_skipped();
        }
        self.pool = None; // joins the writers
        let listed: HashSet<&[u8]> = self.dir_times.iter().map(|(p, _)| p.as_slice()).collect();
        let mut implied = self.root.take_created();
        implied.retain(|p| !listed.contains(p.as_slice()));
        drop(listed);
        for (path, t) in self.dir_times.drain(..).rev() {
            let comps = root::clean(&path).map_err(|e| (path.clone(), e))?;
            let Some((name, parent)) = comps.split_last() else {
                continue;
            };
            let dir = match self.root.parent(parent) {
                Ok(d) => d,
                Err(EntryError::ParentNotDir { .. }) => continue, // replaced later in the layer
                Err(e) => return Err((path.clone(), e)),
            };
            entry::set_dir_time(&dir, name, t).map_err(|e| (path.clone(), e))?;
        }
        Ok(implied)
    }
}
