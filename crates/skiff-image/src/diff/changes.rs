//! The changes of an overlay upper directory against its lowers, as `docker diff` reports
//! them: A (added), C (changed: the path exists below), D (deleted: a whiteout, or a lower
//! entry hidden by an opaque directory). Paths are absolute (`/etc/passwd`), sorted.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::write::read_xattrs;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

impl ChangeKind {
    /// docker diff's letter.
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Added => 'A',
            ChangeKind::Modified => 'C',
            ChangeKind::Deleted => 'D',
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Change {
    pub path: String,
    pub kind: ChangeKind,
}

/// Changes in `upper` over `lowers` (topmost first). Lower directories are trusted snapshot
/// directories (paths are used as they are).
pub fn changes(lowers: &[PathBuf], upper: &Path) -> io::Result<Vec<Change>> {
    let mut out = BTreeSet::new();
    walk(lowers, upper, Path::new(""), &mut out)?;
    let mut v: Vec<Change> = out.into_iter().collect();
    v.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(v)
}

fn in_lowers(lowers: &[PathBuf], rel: &Path) -> bool {
    lowers
        .iter()
        .any(|l| fs::symlink_metadata(l.join(rel)).is_ok())
}

fn walk(
    lowers: &[PathBuf],
    upper: &Path,
    rel: &Path,
    out: &mut BTreeSet<Change>,
) -> io::Result<()> {
    let dir = upper.join(rel);
    let mut names: Vec<_> = fs::read_dir(&dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()?;
    names.sort();
    for name in names {
        let r = rel.join(&name);
        let p = upper.join(&r);
        let md = fs::symlink_metadata(&p)?;
        let shown = format!("/{}", r.display());
        if md.file_type().is_char_device() && md.rdev() == 0 {
            out.insert(Change {
                path: shown,
                kind: ChangeKind::Deleted,
            });
            continue;
        }
        let kind = if in_lowers(lowers, &r) {
            ChangeKind::Modified
        } else {
            ChangeKind::Added
        };
        out.insert(Change {
            path: shown.clone(),
            kind,
        });
        if md.is_dir() {
            let opaque = read_xattrs(&p)?
                .iter()
                .any(|(k, v)| k == "trusted.overlay.opaque" && v == b"y");
            if opaque {
                for l in lowers {
                    let Ok(rd) = fs::read_dir(l.join(&r)) else {
                        continue;
                    };
                    for e in rd {
                        let n = e?.file_name();
                        if fs::symlink_metadata(p.join(&n)).is_err() {
                            out.insert(Change {
                                path: format!("{shown}/{}", n.to_string_lossy()),
                                kind: ChangeKind::Deleted,
                            });
                        }
                    }
                }
            }
            walk(lowers, upper, &r, out)?;
        }
    }
    Ok(())
}
