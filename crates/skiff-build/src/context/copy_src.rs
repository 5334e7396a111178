//! Resolving COPY/ADD sources to files, and their checksum (the cache key's file input).
//!
//! What matches Docker (BuildKit):
//! - Sources are relative to the root of the context (or of the `--from` stage): a leading
//!   `/` is the root, `..` cannot climb above it.
//! - Wildcards (`*`, `?`, `[...]`, Go `filepath.Match` per path component) are expanded in
//!   name order; a wildcard matching nothing is an error, as is a missing plain source.
//! - Symlinks in a source path are followed, within the root; symlinks met while copying a
//!   directory are copied as links.
//! - A directory source copies its contents, not itself. Several sources (or a wildcard
//!   matching several) need a destination ending in `/`.
//! - Files excluded by .dockerignore do not exist for COPY; `--exclude` patterns
//!   (patternmatcher syntax) drop paths relative to each source.
//!
//! The checksum is sha256 over every entry in order (destination-relative path, type,
//! permission bits, the `--chown` value when given, file content digest or symlink target).
//! Modification times are not part of it, as in BuildKit.

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::ContextError;
use crate::cache_key::hex;
use crate::ignore::walk::{reenters, EntryKind};
use crate::ignore::{go_clean, go_match, DockerIgnore};

/// Options of one COPY/ADD.
#[derive(Debug, Clone, Copy, Default)]
pub struct CopyOptions<'a> {
    /// `--chown` (part of the checksum: the same files with other owners are other layers).
    pub chown: Option<&'a str>,
    /// `--exclude` patterns.
    pub exclude: &'a [String],
    /// `"COPY"` or `"ADD"` for messages.
    pub instruction: &'static str,
}

/// One thing to copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyEntry {
    /// The file on the host.
    pub src: PathBuf,
    /// Where it goes, relative to the destination directory (`/`-separated).
    pub rel: String,
    pub kind: EntryKind,
    pub mode: u32,
    pub size: u64,
    /// Symlink target, as written.
    pub link_target: Option<String>,
}

/// The resolved sources of one COPY/ADD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyPlan {
    /// In copy order (parents before children).
    pub entries: Vec<CopyEntry>,
    /// The destination is certainly a directory (it ends in `/`, there are several sources,
    /// or a source is a directory). Otherwise a single file goes to the destination path
    /// itself, unless that path is an existing directory in the image.
    pub dest_is_dir: bool,
    /// `sha256:<hex>` over the entries (see the module docs).
    pub checksum: String,
}

impl CopyPlan {
    /// The absolute path in the image for `entry`, with `dest` already made absolute against
    /// WORKDIR, and `dest_exists_as_dir` telling whether `dest` is a directory in the image.
    pub fn target(&self, entry: &CopyEntry, dest: &str, dest_exists_as_dir: bool) -> String {
        if self.dest_is_dir || dest_exists_as_dir {
            format!("{}/{}", dest.trim_end_matches('/'), entry.rel)
        } else {
            dest.to_string()
        }
    }
}

fn has_wildcards(s: &str) -> bool {
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '*' | '?' | '[' => return true,
            _ => {}
        }
    }
    false
}

fn io_err(p: &Path) -> impl FnOnce(io::Error) -> ContextError + '_ {
    move |e| ContextError::Io(p.to_path_buf(), e)
}

/// Resolves `rel` inside `root`, following symlinks but never leaving `root` (absolute
/// targets and `..` are taken relative to it). `None` if something is missing.
pub(crate) fn resolve_in_root(root: &Path, rel: &str) -> Result<Option<PathBuf>, ContextError> {
    let mut todo: Vec<String> = rel.split('/').rev().map(str::to_string).collect();
    let mut cur: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(c) = todo.pop() {
        match c.as_str() {
            "" | "." => continue,
            ".." => {
                cur.pop();
                continue;
            }
            _ => {}
        }
        let p = root.join(cur.join("/")).join(&c);
        let meta = match fs::symlink_metadata(&p) {
            Ok(m) => m,
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    || e.kind() == io::ErrorKind::NotADirectory =>
            {
                return Ok(None)
            }
            Err(e) => return Err(ContextError::Io(p, e)),
        };
        if meta.file_type().is_symlink() {
            hops += 1;
            if hops > 40 {
                return Err(ContextError::SymlinkLoop(rel.to_string()));
            }
            let target = fs::read_link(&p).map_err(io_err(&p))?;
            let target = target.to_string_lossy();
            if target.starts_with('/') {
                cur.clear();
            }
            todo.extend(target.split('/').rev().map(str::to_string));
        } else {
            cur.push(c);
        }
    }
    Ok(Some(root.join(cur.join("/"))))
}

struct Ctx<'a> {
    root: &'a Path,
    ignore: Option<&'a DockerIgnore>,
    exclude: Option<DockerIgnore>,
}

impl Ctx<'_> {
    fn ignored(&self, root_rel: &str) -> bool {
        self.ignore.is_some_and(|i| i.matches(root_rel))
    }

    fn host_rel(&self, p: &Path) -> String {
        p.strip_prefix(self.root)
            .map(|r| r.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Adds `src` (already resolved) as `rel`; a directory's contents are added under `rel`.
    fn add(&self, src: &Path, rel: &str, out: &mut Vec<CopyEntry>) -> Result<(), ContextError> {
        let meta = fs::metadata(src).map_err(io_err(src))?;
        if meta.is_dir() {
            return self.add_dir(src, rel, "", out);
        }
        out.push(CopyEntry {
            src: src.to_path_buf(),
            rel: rel.to_string(),
            kind: EntryKind::File,
            mode: meta.permissions().mode() & 0o7777,
            size: meta.size(),
            link_target: None,
        });
        Ok(())
    }

    fn add_dir(
        &self,
        dir: &Path,
        rel: &str,
        under: &str,
        out: &mut Vec<CopyEntry>,
    ) -> Result<(), ContextError> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .map_err(io_err(dir))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(io_err(dir))?;
        names.sort_by_key(|e| e.file_name());
        for e in names {
            let Some(name) = e.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let path = e.path();
            let in_src = if under.is_empty() {
                name.clone()
            } else {
                format!("{under}/{name}")
            };
            let meta = fs::symlink_metadata(&path).map_err(io_err(&path))?;
            let root_rel = self.host_rel(&path);
            let dropped = self.ignored(&root_rel)
                || self.exclude.as_ref().is_some_and(|x| x.matches(&in_src));
            let dest_rel = if rel.is_empty() {
                in_src.clone()
            } else {
                format!("{rel}/{in_src}")
            };
            let mode = meta.permissions().mode() & 0o7777;
            if meta.is_dir() {
                let may_return = self.ignore.is_some_and(|i| reenters(i, &root_rel))
                    || self.exclude.as_ref().is_some_and(|x| reenters(x, &in_src));
                if dropped && !may_return {
                    continue;
                }
                if dropped {
                    // Exceptions may bring back something inside: look, without the dir itself.
                    let mut inner = Vec::new();
                    self.add_dir(&path, rel, &in_src, &mut inner)?;
                    out.extend(inner);
                    continue;
                }
                out.push(CopyEntry {
                    src: path.clone(),
                    rel: dest_rel,
                    kind: EntryKind::Dir,
                    mode,
                    size: 0,
                    link_target: None,
                });
                self.add_dir(&path, rel, &in_src, out)?;
            } else if dropped {
                continue;
            } else if meta.file_type().is_symlink() {
                let t = fs::read_link(&path).map_err(io_err(&path))?;
                out.push(CopyEntry {
                    src: path.clone(),
                    rel: dest_rel,
                    kind: EntryKind::Symlink,
                    mode,
                    size: 0,
                    link_target: Some(t.to_string_lossy().into_owned()),
                });
            } else if meta.is_file() {
                out.push(CopyEntry {
                    src: path.clone(),
                    rel: dest_rel,
                    kind: EntryKind::File,
                    mode,
                    size: meta.size(),
                    link_target: None,
                });
            }
        }
        Ok(())
    }

    /// Expands a wildcard source into `(resolved path, name)` pairs.
    fn expand(
        &self,
        pattern: &str,
        instruction: &'static str,
    ) -> Result<Vec<(PathBuf, String)>, ContextError> {
        let mut found: Vec<(PathBuf, String)> = vec![(self.root.to_path_buf(), String::new())];
        for comp in pattern.split('/').filter(|c| !c.is_empty()) {
            let mut next = Vec::new();
            for (dir, _) in &found {
                if !dir.is_dir() {
                    continue;
                }
                if !has_wildcards(comp) {
                    let rel = format!("{}/{comp}", self.host_rel(dir));
                    if let Some(p) = resolve_in_root(self.root, &rel)? {
                        next.push((p, comp.to_string()));
                    }
                    continue;
                }
                let mut names: Vec<String> = fs::read_dir(dir)
                    .map_err(io_err(dir))?
                    .filter_map(|e| e.ok()?.file_name().to_str().map(str::to_string))
                    .collect();
                names.sort();
                for n in names {
                    let m = go_match(comp, &n)
                        .map_err(|_| ContextError::BadPattern(pattern.to_string(), instruction))?;
                    if m {
                        let rel = format!("{}/{n}", self.host_rel(dir));
                        if let Some(p) = resolve_in_root(self.root, &rel)? {
                            next.push((p, n));
                        }
                    }
                }
            }
            found = next;
        }
        Ok(found
            .into_iter()
            .filter(|(p, _)| !self.ignored(&self.host_rel(p)))
            .collect())
    }
}

/// Resolves COPY/ADD `sources` (expanded) in `root` for destination `dest`. `ignore` is the
/// context's .dockerignore (`None` for `--from` stages).
pub fn resolve_copy(
    root: &Path,
    ignore: Option<&DockerIgnore>,
    sources: &[String],
    dest: &str,
    opts: &CopyOptions<'_>,
) -> Result<CopyPlan, ContextError> {
    let exclude = if opts.exclude.is_empty() {
        None
    } else {
        Some(DockerIgnore::new(opts.exclude)?)
    };
    let ctx = Ctx {
        root,
        ignore,
        exclude,
    };
    let mut tops: Vec<(PathBuf, String)> = Vec::new();
    for src in sources {
        let rel = go_clean(&format!("/{src}"));
        let rel = rel.trim_start_matches('/');
        if has_wildcards(rel) {
            let found = ctx.expand(rel, opts.instruction)?;
            if found.is_empty() {
                return Err(ContextError::NoSources);
            }
            tops.extend(found);
        } else {
            let p =
                resolve_in_root(root, rel)?.ok_or_else(|| ContextError::NotFound(src.clone()))?;
            let root_rel = ctx.host_rel(&p);
            let comes_back = p.is_dir() && ignore.is_some_and(|i| reenters(i, &root_rel));
            if !rel.is_empty() && ctx.ignored(&root_rel) && !comes_back {
                return Err(ContextError::NotFound(src.clone()));
            }
            let name = rel.rsplit('/').next().unwrap_or("").to_string();
            tops.push((p, name));
        }
    }
    let any_dir = tops.iter().any(|(p, _)| p.is_dir());
    let dest_is_dir = dest.ends_with('/') || tops.len() > 1 || any_dir;
    if tops.len() > 1 && !dest.ends_with('/') {
        return Err(ContextError::DestNotDir(opts.instruction));
    }
    let mut entries = Vec::new();
    for (p, name) in &tops {
        if p.is_dir() {
            ctx.add(p, "", &mut entries)?;
        } else {
            ctx.add(p, name, &mut entries)?;
        }
    }
    let checksum = checksum(&entries, opts.chown)?;
    Ok(CopyPlan {
        entries,
        dest_is_dir,
        checksum,
    })
}

fn file_digest(p: &Path) -> Result<String, ContextError> {
    use std::io::Read;
    let mut f = fs::File::open(p).map_err(io_err(p))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf).map_err(io_err(p))?;
        if n == 0 {
            return Ok(hex(&h.finalize()));
        }
        h.update(&buf[..n]);
    }
}

fn checksum(entries: &[CopyEntry], chown: Option<&str>) -> Result<String, ContextError> {
    let mut h = Sha256::new();
    let mut field = |b: &[u8]| {
        h.update((b.len() as u64).to_be_bytes());
        h.update(b);
    };
    field(b"skiff-copy-v1");
    field(chown.unwrap_or("").as_bytes());
    for e in entries {
        field(e.rel.as_bytes());
        let (kind, data) = match e.kind {
            EntryKind::Dir => ("d", String::new()),
            EntryKind::Symlink => ("l", e.link_target.clone().unwrap_or_default()),
            EntryKind::File => ("f", file_digest(&e.src)?),
        };
        field(kind.as_bytes());
        field(format!("{:o}", e.mode).as_bytes());
        field(data.as_bytes());
    }
    Ok(format!("sha256:{}", hex(&h.finalize())))
}
