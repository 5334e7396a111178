//! Paths inside a mounted image rootfs, resolved as the container would see them: symlinks
//! are followed but never leave the root (an absolute target or `..` is taken from the
//! image's `/`), so a hostile image cannot make COPY or WORKDIR write on the host. Nothing
//! else touches the rootfs while a step writes it, so resolving first and writing after is
//! race-free here.

use std::io;
use std::os::unix::fs::{lchown, DirBuilderExt};
use std::path::{Path, PathBuf};

const MAX_HOPS: usize = 40;

/// The host path of `path` (absolute in the image) under `root`, symlinks resolved within
/// `root`; the last component is not followed unless `follow_last`. Missing components are
/// kept as they are.
pub(crate) fn resolve(root: &Path, path: &str, follow_last: bool) -> io::Result<PathBuf> {
    Ok(root.join(resolve_rel(root, path, follow_last)?.join("/")))
}

fn resolve_rel(root: &Path, path: &str, follow_last: bool) -> io::Result<Vec<String>> {
    let mut todo: Vec<String> = path.split('/').rev().map(str::to_string).collect();
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
        let last = todo.iter().all(|t| t.is_empty() || t == ".");
        let p = root.join(cur.join("/")).join(&c);
        let meta = match std::fs::symlink_metadata(&p) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                cur.push(c);
                continue;
            }
            Err(e) => return Err(e),
        };
        if meta.file_type().is_symlink() && (!last || follow_last) {
            hops += 1;
            if hops > MAX_HOPS {
                return Err(io::Error::from_raw_os_error(libc::ELOOP));
            }
            let target = std::fs::read_link(&p)?;
            let t = target.to_string_lossy().into_owned();
            if t.starts_with('/') {
                cur.clear();
            }
            todo.extend(t.split('/').rev().map(str::to_string));
            continue;
        }
        cur.push(c);
    }
    Ok(cur)
}

/// What making mount points costs a step's overlay upper dir, and taking it back after the
/// step: the runtime creates a missing mount target (and its missing parents) as a "stub",
/// and the overlay copies every existing ancestor up into the upper dir to hold it. After
/// the step, [`Stubs::remove`] removes the stubs still empty and the copied-up ancestors
/// still empty, not opaque and with their mode and owner unchanged, so the layer keeps only
/// what the command itself did.
#[derive(Debug, Default)]
pub(crate) struct Stubs {
    /// Created paths, relative to the root.
    created: Vec<String>,
    /// Existing ancestors (relative) with their mode and owner before the step.
    ancestors: Vec<(String, u32, u32, u32)>,
}

impl Stubs {
    /// Notes the mount point `path` (absolute in the image; symlinks resolved within `root`).
    pub fn add(&mut self, root: &Path, path: &str) -> io::Result<()> {
        use std::os::unix::fs::MetadataExt;
        let rel = resolve_rel(root, path, true)?;
        let mut p = root.to_path_buf();
        let mut missing = false;
        let mut ancestors = Vec::new();
        for (i, c) in rel.iter().enumerate() {
            p.push(c);
            let here = rel[..=i].join("/");
            if !missing {
                match std::fs::symlink_metadata(&p) {
                    Ok(m) => {
                        ancestors.push((here.clone(), m.mode(), m.uid(), m.gid()));
                        continue;
                    }
                    Err(_) => missing = true,
                }
            }
            self.created.push(here);
        }
        if missing {
            self.ancestors.extend(ancestors);
        }
        Ok(())
    }

    /// Takes the stubs and copied-up ancestors out of `upper` (see the type's docs).
    pub fn remove(&self, upper: &Path) {
        use std::os::unix::fs::MetadataExt;
        let depth = |p: &str| std::cmp::Reverse(p.matches('/').count());
        let mut created: Vec<&String> = self.created.iter().collect();
        created.sort_by_key(|p| (depth(p), *p));
        created.dedup();
        for rel in created {
            let p = upper.join(rel);
            match std::fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => {
                    let _ = std::fs::remove_dir(&p);
                }
                Ok(m) if m.is_file() && m.len() == 0 => {
                    let _ = std::fs::remove_file(&p);
                }
                _ => {}
            }
        }
        let mut ancestors: Vec<&(String, u32, u32, u32)> = self.ancestors.iter().collect();
        ancestors.sort_by_key(|a| (depth(&a.0), &a.0));
        ancestors.dedup();
        for (rel, mode, uid, gid) in ancestors {
            let p = upper.join(rel);
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            let same = m.is_dir() && (m.mode(), m.uid(), m.gid()) == (*mode, *uid, *gid);
            if same && !opaque(&p) {
                // Fails (and keeps it) when the step wrote anything into it.
                let _ = std::fs::remove_dir(&p);
            }
        }
    }
}

/// Whether an upper directory is opaque (hides the lower one: the step replaced it).
fn opaque(p: &Path) -> bool {
    ["trusted.overlay.opaque", "user.overlay.opaque"]
        .iter()
        .any(|name| rustix::fs::lgetxattr(p, *name, &mut [0u8; 4][..]).is_ok())
}

/// Creates `path` (absolute in the image) and missing parents under `root`, owned by
/// `owner`, mode 0755. Returns the host path and whether anything was created.
pub(crate) fn mkdir_all(root: &Path, path: &str, owner: (u32, u32)) -> io::Result<(PathBuf, bool)> {
    let rel = resolve_rel(root, path, true)?;
    let mut p = root.to_path_buf();
    let mut created = false;
    for c in &rel {
        p.push(c);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(io::Error::from_raw_os_error(libc::ENOTDIR)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::fs::DirBuilder::new().mode(0o755).create(&p)?;
                lchown(&p, Some(owner.0), Some(owner.1))?;
                created = true;
            }
            Err(e) => return Err(e),
        }
    }
    Ok((p, created))
}

/// `/`-joined absolute form of `dest` against the working directory, keeping a trailing `/`
/// (which says "a directory"): Docker's rule for COPY/ADD destinations.
pub(crate) fn absolute_dest(workdir: &str, dest: &str) -> String {
    let dir_like = dest.ends_with('/') || dest == "." || dest.ends_with("/.");
    let joined = if dest.starts_with('/') {
        dest.to_string()
    } else {
        format!("{}/{dest}", if workdir.is_empty() { "/" } else { workdir })
    };
    let mut clean = skiff_build::apply::clean_path(&joined);
    if dir_like && !clean.ends_with('/') {
        clean.push('/');
    }
    clean
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_stay_inside() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::create_dir_all(r.join("usr/lib")).unwrap();
        std::os::unix::fs::symlink("/usr/lib", r.join("lib")).unwrap();
        std::os::unix::fs::symlink("../../../../etc", r.join("usr/up")).unwrap();
        std::os::unix::fs::symlink("loop", r.join("loop")).unwrap();
        assert_eq!(resolve(r, "/lib/x", true).unwrap(), r.join("usr/lib/x"));
        assert_eq!(resolve(r, "/lib", false).unwrap(), r.join("lib"));
        assert_eq!(
            resolve(r, "/usr/up/passwd", true).unwrap(),
            r.join("etc/passwd")
        );
        assert!(resolve(r, "/loop/a", true).is_err());
        let (p, created) = mkdir_all(r, "/lib/new/deep", (0, 0)).unwrap();
        assert!(created && p == r.join("usr/lib/new/deep") && p.is_dir());
        assert!(!mkdir_all(r, "/usr/lib", (0, 0)).unwrap().1);
    }

    #[test]
    fn stubs_and_copied_up_ancestors_go() {
        let t = tempfile::tempdir().unwrap();
        let (root, upper) = (t.path().join("root"), t.path().join("upper"));
        std::fs::create_dir_all(root.join("usr/lib")).unwrap();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::os::unix::fs::symlink("/usr/lib", root.join("lib")).unwrap();
        let mut s = Stubs::default();
        s.add(&root, "/lib/new/a").unwrap();
        s.add(&root, "/etc/hosts").unwrap();
        s.add(&root, "/usr").unwrap();
        assert_eq!(s.created, ["usr/lib/new", "usr/lib/new/a", "etc/hosts"]);
        assert_eq!(s.ancestors.len(), 3, "{s:?}");
        // As the overlay leaves them: stubs, copied-up parents; one parent also written.
        std::fs::create_dir_all(upper.join("usr/lib/new/a")).unwrap();
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::write(upper.join("etc/hosts"), "").unwrap();
        std::fs::write(upper.join("usr/kept"), "x").unwrap();
        s.remove(&upper);
        assert!(!upper.join("etc").exists());
        assert!(!upper.join("usr/lib").exists());
        assert!(upper.join("usr/kept").exists());
    }

    #[test]
    fn destinations() {
        assert_eq!(absolute_dest("/app", "."), "/app/");
        assert_eq!(absolute_dest("/app", "x/"), "/app/x/");
        assert_eq!(absolute_dest("", "x"), "/x");
        assert_eq!(absolute_dest("/w", "/abs/../y"), "/y");
    }
}
