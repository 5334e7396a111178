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
    fn destinations() {
        assert_eq!(absolute_dest("/app", "."), "/app/");
        assert_eq!(absolute_dest("/app", "x/"), "/app/x/");
        assert_eq!(absolute_dest("", "x"), "/x");
        assert_eq!(absolute_dest("/w", "/abs/../y"), "/y");
    }
}
