//! COPY and ADD into a step's mounted rootfs.
//!
//! Sources come from the build context (its .dockerignore applied), a mounted stage or image
//! (`--from`), heredocs (`COPY <<EOF /x`) or, for ADD, URLs; skiff-build resolves them and
//! checksums them ([`skiff_build::context::resolve_copy`]). As in Docker: files keep their
//! permission bits (or get `--chmod`) and modification times, and are owned by root or by
//! `--chown` (names looked up in the image's /etc/passwd and /etc/group; a user alone
//! means the same number for the group); missing destination directories are created; ADD
//! of a local tar archive (plain, gzip or zstd) extracts it, with the archive's owners, instead
//! of copying it. Every write goes through paths resolved inside the rootfs ([`super::rootfs`]).

use std::io::Read;
use std::os::unix::fs::{lchown, PermissionsExt};
use std::path::{Path, PathBuf};

use skiff_build::context::{resolve_copy, CopyOptions, CopyPlan};
use skiff_build::ignore::walk::EntryKind;
use skiff_build::instructions::Copy;
use skiff_build::BuildContext;

use super::rootfs::{mkdir_all, resolve};
use super::{fetch, io_err, BuildError};

/// Where the sources are.
pub(crate) enum SourceRoot<'a> {
    Context(&'a BuildContext),
    /// A mounted stage or image (no .dockerignore).
    Dir(&'a Path),
}

enum Part {
    Files(CopyPlan),
    /// A local archive ADD extracts into the destination.
    Extract(PathBuf),
}

/// Sources resolved and checksummed, ready to apply.
pub(crate) struct Prepared {
    parts: Vec<Part>,
    /// Every part's checksum, combined.
    pub checksum: String,
    _tmp: Option<tempfile::TempDir>,
}

fn copy_err(instruction: &'static str) -> impl Fn(String) -> BuildError {
    move |message| BuildError::Copy {
        instruction,
        message,
    }
}

/// Resolves the sources of `c` (an expanded COPY/ADD; `add` for ADD).
pub(crate) fn prepare(
    c: &Copy,
    add: bool,
    src: SourceRoot<'_>,
    tmp_parent: &Path,
    b: &super::Builder,
) -> Result<Prepared, BuildError> {
    let instruction = if add { "ADD" } else { "COPY" };
    let cerr = copy_err(instruction);
    let opts = CopyOptions {
        chown: c.chown.as_deref(),
        exclude: &c.exclude,
        instruction,
    };
    let n_sources = c.sources.len() + c.inline.len();
    if n_sources > 1 && !c.dest.ends_with('/') {
        return Err(cerr(format!(
            "When using {instruction} with more than one source file, the destination must be a directory and end with a /"
        )));
    }
    let dest = if n_sources > 1 {
        c.dest.clone()
    } else {
        c.dest.trim_end_matches("/.").to_string()
    };
    let mut tmp = None;
    let mut scratch = || -> Result<PathBuf, BuildError> {
        if tmp.is_none() {
            std::fs::create_dir_all(tmp_parent).map_err(io_err("create", tmp_parent))?;
            tmp = Some(
                tempfile::Builder::new()
                    .prefix("skiff-build-src-")
                    .tempdir_in(tmp_parent)
                    .map_err(io_err("create scratch dir in", tmp_parent))?,
            );
        }
        Ok(tmp
            .as_ref()
            .map(|t| t.path().to_path_buf())
            .unwrap_or_default())
    };
    let mut parts = Vec::new();
    let (local, urls): (Vec<String>, Vec<String>) = c
        .sources
        .iter()
        .cloned()
        .partition(|s| !(add && fetch::is_url(s)));
    for url in &urls {
        let dir = scratch()?;
        let f = fetch::fetch(b, url, &dir)?;
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        parts.push(Part::Files(
            resolve_copy(&dir, None, &[name], &dest, &opts).map_err(|e| cerr(e.to_string()))?,
        ));
    }
    if !c.inline.is_empty() {
        let dir = scratch()?.join("inline");
        std::fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        let mut names = Vec::new();
        for s in &c.inline {
            let f = dir.join(s.name.replace('/', "_"));
            std::fs::write(&f, &s.data).map_err(io_err("write", &f))?;
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644))
                .map_err(io_err("chmod", &f))?;
            names.push(s.name.replace('/', "_"));
        }
        parts.push(Part::Files(
            resolve_copy(&dir, None, &names, &dest, &opts).map_err(|e| cerr(e.to_string()))?,
        ));
    }
    let resolve_in = |sources: &[String]| match &src {
        SourceRoot::Context(ctx) => ctx.resolve_copy(sources, &dest, &opts),
        SourceRoot::Dir(root) => resolve_copy(root, None, sources, &dest, &opts),
    };
    if add {
        for s in &local {
            let plan = resolve_in(std::slice::from_ref(s)).map_err(|e| cerr(e.to_string()))?;
            let single = plan.entries.len() == 1
                && plan.entries[0].kind == EntryKind::File
                && !s.contains(['*', '?', '[']);
            if single && is_archive(&plan.entries[0].src) {
                parts.push(Part::Extract(plan.entries[0].src.clone()));
                // The checksum covers the archive's bytes.
                parts.push(Part::Files(CopyPlan {
                    entries: Vec::new(),
                    ..plan
                }));
            } else {
                parts.push(Part::Files(plan));
            }
        }
    } else if !local.is_empty() {
        parts.push(Part::Files(
            resolve_in(&local).map_err(|e| cerr(e.to_string()))?,
        ));
    }
    let sums: Vec<&str> = parts
        .iter()
        .filter_map(|p| match p {
            Part::Files(plan) => Some(plan.checksum.as_str()),
            Part::Extract(_) => None,
        })
        .collect();
    let checksum = skiff_image::digest::sha256(sums.join(";").as_bytes()).to_string();
    Ok(Prepared {
        parts,
        checksum,
        _tmp: tmp,
    })
}

/// `--chown` into numbers, looked up in the image at `root`.
pub(crate) fn owner(root: &Path, chown: Option<&str>) -> Result<(u32, u32), BuildError> {
    let Some(spec) = chown.filter(|s| !s.is_empty()) else {
        return Ok((0, 0));
    };
    let id = crate::containers::user::resolve(root, spec).map_err(|m| BuildError::Copy {
        instruction: "COPY",
        message: format!("--chown={spec}: {m}"),
    })?;
    if spec.contains(':') {
        Ok((id.uid, id.gid))
    } else {
        Ok((id.uid, id.uid))
    }
}

/// `--chmod` (octal).
pub(crate) fn chmod(c: &Copy) -> Result<Option<u32>, BuildError> {
    c.chmod
        .as_deref()
        .map(|m| {
            u32::from_str_radix(m, 8).map_err(|_| BuildError::Copy {
                instruction: "COPY",
                message: format!("invalid chmod parameter: {m}"),
            })
        })
        .transpose()
}

/// Copies `p` into `root` at `dest` (absolute in the image, trailing `/` kept).
pub(crate) fn apply(
    p: &Prepared,
    root: &Path,
    dest: &str,
    owner: (u32, u32),
    mode: Option<u32>,
) -> Result<(), BuildError> {
    for part in &p.parts {
        match part {
            Part::Extract(archive) => {
                let (dir, _) = mkdir_all(root, dest, owner).map_err(io_err("create", dest))?;
                extract(archive, &dir)?;
            }
            Part::Files(plan) => copy_plan(plan, root, dest, owner, mode)?,
        }
    }
    Ok(())
}

fn copy_plan(
    plan: &CopyPlan,
    root: &Path,
    dest: &str,
    owner: (u32, u32),
    mode: Option<u32>,
) -> Result<(), BuildError> {
    let exists_dir = resolve(root, dest, true)
        .map(|p| p.is_dir())
        .unwrap_or(false);
    let dest_dir = plan.dest_is_dir || exists_dir || dest.ends_with('/');
    if dest_dir {
        mkdir_all(root, dest, owner).map_err(io_err("create", dest))?;
    }
    let base = dest.trim_end_matches('/');
    for e in &plan.entries {
        let target = plan.target(e, if base.is_empty() { "/" } else { base }, dest_dir);
        let target = target.replace("//", "/");
        let (parent, name) = match target.rsplit_once('/') {
            Some((p, n)) => (if p.is_empty() { "/" } else { p }, n),
            None => ("/", target.as_str()),
        };
        let (pdir, _) = mkdir_all(root, parent, owner).map_err(io_err("create", parent))?;
        let host = pdir.join(name);
        let existing = std::fs::symlink_metadata(&host).ok();
        match e.kind {
            EntryKind::Dir => {
                if !existing.as_ref().is_some_and(|m| m.is_dir()) {
                    if existing.is_some() {
                        std::fs::remove_file(&host).map_err(io_err("replace", &host))?;
                    }
                    std::fs::create_dir(&host).map_err(io_err("create", &host))?;
                }
                set_mode(&host, mode.unwrap_or(e.mode))?;
            }
            EntryKind::File => {
                if let Some(m) = &existing {
                    if m.is_dir() {
                        return Err(BuildError::Copy {
                            instruction: "COPY",
                            message: format!("cannot replace directory {target} with a file"),
                        });
                    }
                    std::fs::remove_file(&host).map_err(io_err("replace", &host))?;
                }
                std::fs::copy(&e.src, &host).map_err(io_err("copy to", &host))?;
                set_mode(&host, mode.unwrap_or(e.mode))?;
                if let Ok(t) = std::fs::metadata(&e.src).and_then(|m| m.modified()) {
                    if let Ok(f) = std::fs::OpenOptions::new().write(true).open(&host) {
                        let _ = f.set_modified(t);
                    }
                }
            }
            EntryKind::Symlink => {
                if let Some(m) = &existing {
                    if m.is_dir() {
                        std::fs::remove_dir_all(&host).map_err(io_err("replace", &host))?;
                    } else {
                        std::fs::remove_file(&host).map_err(io_err("replace", &host))?;
                    }
                }
                let t = e.link_target.clone().unwrap_or_default();
                std::os::unix::fs::symlink(&t, &host).map_err(io_err("symlink", &host))?;
            }
        }
        lchown(&host, Some(owner.0), Some(owner.1)).map_err(io_err("chown", &host))?;
    }
    Ok(())
}

fn set_mode(p: &Path, mode: u32) -> Result<(), BuildError> {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode & 0o7777))
        .map_err(io_err("chmod", p))
}

/// Whether `p` is a tar archive, plain or compressed (what ADD extracts).
fn is_archive(p: &Path) -> bool {
    let Ok(f) = std::fs::File::open(p) else {
        return false;
    };
    let Ok((c, peeked)) = skiff_image::compression::peek(f) else {
        return false;
    };
    let Ok(mut r) = skiff_image::compression::decompress(peeked, c) else {
        return false;
    };
    let mut head = vec![0u8; 512];
    let mut got = 0;
    while got < head.len() {
        match r.read(&mut head[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    got == 512 && &head[257..262] == b"ustar"
}

fn extract(archive: &Path, dir: &Path) -> Result<(), BuildError> {
    let err = |m: String| BuildError::Copy {
        instruction: "ADD",
        message: format!("extract {}: {m}", archive.display()),
    };
    let f = std::fs::File::open(archive).map_err(io_err("open", archive))?;
    let (c, peeked) = skiff_image::compression::peek(f).map_err(|e| err(e.to_string()))?;
    let r = skiff_image::compression::decompress(peeked, c).map_err(|e| err(e.to_string()))?;
    let mut a = tar::Archive::new(r);
    a.set_preserve_permissions(true);
    a.set_preserve_ownerships(true);
    a.set_preserve_mtime(true);
    a.set_overwrite(true);
    a.unpack(dir).map_err(|e| err(e.to_string()))
}
