//! The files of one log: `<path>` (live), `<path>.1` … `<path>.(max_file-1)` (rotated,
//! `.1` newest), each with its index `<file>.idx`, and the rotation that shifts them.

use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::LogError;
use crate::index::index_path;

/// The n-th file of a log: 0 is the live file, n > 0 the rotated `<path>.n`.
pub(crate) fn nth_path(base: &Path, n: u32) -> PathBuf {
    if n == 0 {
        return base.to_path_buf();
    }
    let mut s = base.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

fn remove_if_exists(path: &Path) -> Result<(), LogError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(LogError::Io {
            op: "remove",
            path: path.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}

fn rename_if_exists(from: &Path, to: &Path) -> Result<(), LogError> {
    match std::fs::rename(from, to) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(LogError::Io {
            op: "rename",
            path: from.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// Shifts `<path>` → `<path>.1` → … and drops `<path>.(max_file-1)`, as Docker does
/// (`max_file` ≥ 2). Each index moves with its file; an index is removed before its file
/// so a crash never leaves an index without its log behind a reused name.
pub(crate) fn rotate(base: &Path, max_file: u32) -> Result<(), LogError> {
    let oldest = nth_path(base, max_file - 1);
    remove_if_exists(&index_path(&oldest))?;
    remove_if_exists(&oldest)?;
    for n in (0..max_file - 1).rev() {
        let from = nth_path(base, n);
        let to = nth_path(base, n + 1);
        rename_if_exists(&from, &to)?;
        rename_if_exists(&index_path(&from), &index_path(&to))?;
    }
    Ok(())
}

/// An open file of a log, with its identity.
pub(crate) struct Opened {
    pub(crate) path: PathBuf,
    pub(crate) file: File,
    pub(crate) id: (u64, u64),
    pub(crate) len: u64,
}

/// Opens a log file for reading; `None` when it does not exist.
pub(crate) fn open_existing(path: &Path) -> Result<Option<Opened>, LogError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(LogError::Io {
                op: "open",
                path: path.to_path_buf(),
                source: e,
            })
        }
    };
    let meta = file.metadata().map_err(LogError::io("stat", path))?;
    Ok(Some(Opened {
        path: path.to_path_buf(),
        file,
        id: (meta.dev(), meta.ino()),
        len: meta.len(),
    }))
}

/// The (dev, inode) of a path, `None` when it does not exist.
pub(crate) fn file_id(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Opens every file of a log, oldest first. A rotation racing with this shows up as a
/// changed identity; the listing is then retried.
pub(crate) fn open_all(base: &Path) -> Result<Vec<Opened>, LogError> {
    let mut attempt = 0;
    loop {
        let mut files = Vec::new();
        let mut n = 1;
        while let Some(f) = open_existing(&nth_path(base, n))? {
            files.push(f);
            n += 1;
        }
        files.reverse();
        if let Some(f) = open_existing(base)? {
            files.push(f);
        }
        let stable = files.iter().all(|f| file_id(&f.path) == Some(f.id)) && {
            let mut ids: Vec<_> = files.iter().map(|f| f.id).collect();
            ids.sort_unstable();
            ids.windows(2).all(|w| w[0] != w[1])
        };
        attempt += 1;
        if stable || attempt >= 5 {
            return Ok(files);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_shifts_and_drops_the_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("c-json.log");
        for round in 0..4 {
            std::fs::write(&base, format!("gen{round}")).unwrap();
            std::fs::write(index_path(&base), format!("idx{round}")).unwrap();
            rotate(&base, 3).unwrap();
        }
        assert!(!base.exists());
        assert_eq!(std::fs::read_to_string(nth_path(&base, 1)).unwrap(), "gen3");
        assert_eq!(std::fs::read_to_string(nth_path(&base, 2)).unwrap(), "gen2");
        assert_eq!(
            std::fs::read_to_string(index_path(&nth_path(&base, 2))).unwrap(),
            "idx2"
        );
        assert!(!nth_path(&base, 3).exists());
        assert_eq!(nth_path(&base, 2).file_name().unwrap(), "c-json.log.2");
    }
}
