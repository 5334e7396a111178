//! Listing a context directory through its .dockerignore, and sending it as a tar (what
//! `docker build DIR` does on the client side).
//!
//! As Docker's `archive.TarWithOptions`: entries are visited in name order; an excluded
//! file is left out; an excluded directory is not entered unless some exception pattern
//! starts with its path (then only what the exceptions bring back is sent). Symlinks are
//! listed as links, never followed; sockets and devices are left out.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use super::DockerIgnore;

/// The kind of a context entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
}

/// One file, directory or symlink of the context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextEntry {
    /// Relative to the context root, `/`-separated, no leading `./`.
    pub path: String,
    pub kind: EntryKind,
    /// Permission bits (with setuid/setgid/sticky).
    pub mode: u32,
    pub size: u64,
    /// Where a symlink points, as written.
    pub link_target: Option<String>,
}

/// Lists `root` as Docker would send it, excluding what `ignore` excludes.
pub fn walk(root: &Path, ignore: &DockerIgnore) -> io::Result<Vec<ContextEntry>> {
    let mut out = Vec::new();
    walk_dir(root, "", ignore, &mut out)?;
    Ok(out)
}

fn walk_dir(
    root: &Path,
    rel: &str,
    ignore: &DockerIgnore,
    out: &mut Vec<ContextEntry>,
) -> io::Result<()> {
    let dir = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    let mut names: Vec<_> = fs::read_dir(&dir)?.collect::<Result<Vec<_>, _>>()?;
    names.sort_by_key(|e| e.file_name());
    for entry in names {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue; // not representable in a Dockerfile path; Docker's tar keeps it, COPY cannot name it
        };
        let path = if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}/{name}")
        };
        let meta = fs::symlink_metadata(root.join(&path))?;
        let ft = meta.file_type();
        if ignore.matches(&path) {
            if !ft.is_dir() || !reenters(ignore, &path) {
                continue;
            }
            walk_dir(root, &path, ignore, out)?;
            continue;
        }
        let mode = meta.permissions().mode() & 0o7777;
        if ft.is_dir() {
            out.push(ContextEntry {
                path: path.clone(),
                kind: EntryKind::Dir,
                mode,
                size: 0,
                link_target: None,
            });
            walk_dir(root, &path, ignore, out)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(root.join(&path))?;
            out.push(ContextEntry {
                path,
                kind: EntryKind::Symlink,
                mode,
                size: 0,
                link_target: Some(target.to_string_lossy().into_owned()),
            });
        } else if ft.is_file() {
            out.push(ContextEntry {
                path,
                kind: EntryKind::File,
                mode,
                size: meta.size(),
                link_target: None,
            });
        } else if ft.is_fifo() || ft.is_socket() || ft.is_block_device() || ft.is_char_device() {
            continue;
        }
    }
    Ok(())
}

/// Whether an exception pattern may bring back something under the excluded `dir`.
pub(crate) fn reenters(ignore: &DockerIgnore, dir: &str) -> bool {
    if !ignore.has_exclusions() {
        return false;
    }
    let dir_slash = format!("{dir}/");
    ignore
        .patterns()
        .iter()
        .any(|p| p.exclusion && format!("{}/", p.cleaned).starts_with(&dir_slash))
}

/// Writes the context at `root` (filtered by `ignore`) as a tar stream: owners 0:0,
/// modes and modification times kept, symlinks as links.
pub fn write_context_tar<W: Write>(root: &Path, ignore: &DockerIgnore, w: W) -> io::Result<W> {
    let mut b = tar::Builder::new(w);
    b.follow_symlinks(false);
    for e in walk(root, ignore)? {
        let full = root.join(&e.path);
        let meta = fs::symlink_metadata(&full)?;
        let mut h = tar::Header::new_gnu();
        h.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mode(e.mode);
        match e.kind {
            EntryKind::Dir => {
                h.set_size(0);
                b.append_data(&mut h, format!("{}/", e.path), io::empty())?;
            }
            EntryKind::Symlink => {
                h.set_size(0);
                let target = e.link_target.clone().unwrap_or_default();
                b.append_link(&mut h, &e.path, target)?;
            }
            EntryKind::File => {
                let f = fs::File::open(&full)?;
                b.append_data(&mut h, &e.path, f)?;
            }
        }
    }
    b.into_inner()
}
