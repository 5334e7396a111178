//! Unpacking an uploaded build context (the body of `POST /build`) into a directory, safely.
//!
//! The stream may be a plain tar or gzip-compressed (detected from its first bytes; bzip2,
//! xz and zstd are recognised and refused with a clear error). Every entry is checked
//! before anything is written:
//! - names are relative and stay inside: an absolute name or a `..` component refuses the
//!   whole context (a leading `./` and repeated or trailing `/` are fine);
//! - nothing is ever written through a symlink: every parent of an entry must be a real
//!   directory inside the target, so a planted `a -> /etc` followed by `a/passwd` is refused;
//! - symlinks are created as they are (their targets are data: nothing here follows them);
//! - hard links must point at an earlier entry inside the context, reached without symlinks;
//! - devices, fifos and sockets are skipped; owners are not applied (COPY sets them);
//! - entry count and total size are bounded ([`Limits`]).
//!
//! Directory modes are applied last, so a read-only directory can still be filled.

use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
// `create_new` (O_EXCL) never opens through a symlink at the final component.
use std::path::{Path, PathBuf};

use super::ContextError;

/// Bounds on what an uploaded context may hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_entries: u64,
    pub max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entries: 10_000_000,
            max_bytes: 1 << 40,
        }
    }
}

/// What was unpacked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExtractStats {
    pub entries: u64,
    pub bytes: u64,
}

/// Detects the compression of `r` and returns a reader of the plain tar.
pub fn decompress<'a, R: Read + 'a>(r: R) -> Result<Box<dyn Read + 'a>, ContextError> {
    let mut r = BufReader::new(r);
    let head = r.fill_buf().map_err(ContextError::Read)?;
    let unsupported = |name: &'static str| Err(ContextError::UnsupportedCompression(name));
    if head.starts_with(&[0x1f, 0x8b]) {
        return Ok(Box::new(flate2::read::MultiGzDecoder::new(r)));
    }
    if head.starts_with(b"BZh") {
        return unsupported("bzip2");
    }
    if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        return unsupported("xz");
    }
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return unsupported("zstd");
    }
    Ok(Box::new(r))
}

/// The components of an entry name, or why it is refused.
fn clean_name(raw: &[u8]) -> Result<Vec<String>, &'static str> {
    let name = std::str::from_utf8(raw).map_err(|_| "name is not UTF-8")?;
    if name.starts_with('/') {
        return Err("absolute path");
    }
    let mut parts = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err("path escapes the context"),
            c => parts.push(c.to_string()),
        }
    }
    Ok(parts)
}

/// Makes sure every parent of `parts` under `dest` is a real directory (creating missing
/// ones), never a symlink. Returns the full path of the entry.
fn prepare_parents(dest: &Path, parts: &[String], name: &str) -> Result<PathBuf, ContextError> {
    let mut p = dest.to_path_buf();
    for c in &parts[..parts.len() - 1] {
        p.push(c);
        match fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => {}
            Ok(m) if m.file_type().is_symlink() => {
                return Err(hostile(name, "a parent directory is a symlink"));
            }
            Ok(_) => return Err(hostile(name, "a parent is not a directory")),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&p).map_err(|e| ContextError::Write(p.clone(), e))?;
            }
            Err(e) => return Err(ContextError::Write(p.clone(), e)),
        }
    }
    Ok(dest.join(parts.join("/")))
}

fn hostile(name: &str, why: &'static str) -> ContextError {
    ContextError::HostileEntry {
        name: name.to_string(),
        reason: why,
    }
}

/// Removes whatever is at `p` (not following symlinks), unless it is a directory and
/// `keep_dir`.
fn clear(p: &Path, keep_dir: bool) -> Result<(), ContextError> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() && keep_dir => Ok(()),
        Ok(m) if m.is_dir() => fs::remove_dir_all(p).map_err(|e| ContextError::Write(p.into(), e)),
        Ok(_) => fs::remove_file(p).map_err(|e| ContextError::Write(p.into(), e)),
        Err(_) => Ok(()),
    }
}

/// Unpacks the tar stream `r` (plain or gzip) into the existing directory `dest`.
pub fn extract_context<R: Read>(
    r: R,
    dest: &Path,
    limits: Limits,
) -> Result<ExtractStats, ContextError> {
    let mut archive = tar::Archive::new(decompress(r)?);
    let mut stats = ExtractStats::default();
    let mut dirs: Vec<(PathBuf, u32)> = Vec::new();
    for entry in archive.entries().map_err(ContextError::Read)? {
        let mut entry = entry.map_err(ContextError::Read)?;
        stats.entries += 1;
        if stats.entries > limits.max_entries {
            return Err(ContextError::TooLarge("too many entries"));
        }
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        let parts = clean_name(&raw).map_err(|why| hostile(&name, why))?;
        let header = entry.header();
        let kind = header.entry_type();
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        if parts.is_empty() {
            continue; // the context root itself
        }
        let path = prepare_parents(dest, &parts, &name)?;
        let werr = |e| ContextError::Write(path.clone(), e);
        use tar::EntryType as T;
        match kind {
            T::Directory => {
                clear(&path, true)?;
                if !path.is_dir() {
                    fs::create_dir(&path).map_err(werr)?;
                }
                dirs.push((path.clone(), mode));
            }
            T::Regular | T::Continuous | T::GNUSparse => {
                let size = entry.size();
                stats.bytes = stats.bytes.saturating_add(size);
                if stats.bytes > limits.max_bytes {
                    return Err(ContextError::TooLarge("too many bytes"));
                }
                clear(&path, false)?;
                let mut f = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(werr)?;
                io::copy(&mut (&mut entry).take(size), &mut f).map_err(werr)?;
                fs::set_permissions(&path, fs::Permissions::from_mode(mode)).map_err(werr)?;
            }
            T::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| hostile(&name, "symlink without a target"))?;
                let target = String::from_utf8_lossy(&target).into_owned();
                clear(&path, false)?;
                std::os::unix::fs::symlink(&target, &path).map_err(werr)?;
            }
            T::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| hostile(&name, "hard link without a target"))?;
                let tparts = clean_name(&target).map_err(|why| hostile(&name, why))?;
                if tparts.is_empty() {
                    return Err(hostile(&name, "hard link to the context root"));
                }
                let tpath = prepare_parents_existing(dest, &tparts, &name)?;
                let meta = fs::symlink_metadata(&tpath)
                    .map_err(|_| hostile(&name, "hard link to a missing entry"))?;
                if meta.is_dir() {
                    return Err(hostile(&name, "hard link to a directory"));
                }
                clear(&path, false)?;
                fs::hard_link(&tpath, &path).map_err(werr)?;
            }
            _ => continue, // devices, fifos, pax/GNU metadata handled by the tar reader
        }
    }
    // Deepest first, so a parent's mode does not stop a child's chmod.
    dirs.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
    for (p, mode) in dirs {
        fs::set_permissions(&p, fs::Permissions::from_mode(mode))
            .map_err(|e| ContextError::Write(p.clone(), e))?;
    }
    Ok(stats)
}

/// Like [`prepare_parents`] but creates nothing: every parent must already be a real directory.
fn prepare_parents_existing(
    dest: &Path,
    parts: &[String],
    name: &str,
) -> Result<PathBuf, ContextError> {
    let mut p = dest.to_path_buf();
    for c in &parts[..parts.len() - 1] {
        p.push(c);
        match fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => {}
            Ok(m) if m.file_type().is_symlink() => {
                return Err(hostile(name, "a hard link target goes through a symlink"))
            }
            _ => return Err(hostile(name, "hard link to a missing entry")),
        }
    }
    Ok(dest.join(parts.join("/")))
}
