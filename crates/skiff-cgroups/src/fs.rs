//! Small helpers around cgroup control files: every read and write goes
//! through here so that errors always name the file and the value.

use std::fmt::Display;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use crate::error::{CgroupError, Result};

/// Write `value` to `dir/file` in a single write(2), as the kernel wants it.
/// The file must exist (a missing file means a missing controller: we never
/// create control files).
pub(crate) fn write(dir: &Path, file: &str, value: impl Display) -> Result<()> {
    let path = dir.join(file);
    let value = value.to_string();
    tracing::debug!(path = %path.display(), value = %value, "cgroup write");
    let res = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .and_then(|mut f| f.write_all(value.as_bytes()));
    res.map_err(|source| CgroupError::Write {
        path,
        value,
        source,
    })
}

/// The errno of a failed [`write`], so callers can retry on EINVAL/EBUSY
/// (write-ordering cases).
pub(crate) fn errno(err: &CgroupError) -> Option<i32> {
    match err {
        CgroupError::Write { source, .. } => source.raw_os_error(),
        _ => None,
    }
}

/// Read `dir/file` as a string, trailing whitespace trimmed.
pub(crate) fn read(dir: &Path, file: &str) -> Result<String> {
    read_path(&dir.join(file))
}

pub(crate) fn read_path(path: &Path) -> Result<String> {
    fs::read_to_string(path)
        .map(|s| s.trim_end().to_string())
        .map_err(|source| CgroupError::Read {
            path: path.to_path_buf(),
            source,
        })
}

/// Read a file if it exists; `Ok(None)` when it does not.
pub(crate) fn read_opt(dir: &Path, file: &str) -> Result<Option<String>> {
    let path = dir.join(file);
    match fs::read_to_string(&path) {
        Ok(s) => Ok(Some(s.trim_end().to_string())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::Read { path, source }),
    }
}

/// Parse a single number; "max" (v2) yields `u64::MAX`.
pub(crate) fn parse_u64(path: &Path, content: &str) -> Result<u64> {
    let s = content.trim();
    if s == "max" {
        return Ok(u64::MAX);
    }
    s.parse::<u64>().map_err(|_| CgroupError::Parse {
        path: path.to_path_buf(),
        content: s.to_string(),
    })
}

/// Read a single-number file; `Ok(None)` when absent.
pub(crate) fn read_u64_opt(dir: &Path, file: &str) -> Result<Option<u64>> {
    match read_opt(dir, file)? {
        Some(s) => parse_u64(&dir.join(file), &s).map(Some),
        None => Ok(None),
    }
}

pub(crate) fn exists(dir: &Path, file: &str) -> bool {
    dir.join(file).exists()
}

/// `mkdir -p`; returns the directories that did not exist before (outermost
/// first), so that destroy removes only what we made.
pub(crate) fn mkdir_p(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(d) = cur {
        if d.is_dir() {
            break;
        }
        missing.push(d.to_path_buf());
        cur = d.parent();
    }
    missing.reverse();
    for d in &missing {
        match fs::create_dir(d) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(CgroupError::Create {
                    path: d.clone(),
                    source,
                })
            }
        }
    }
    Ok(missing)
}

/// Remove a cgroup directory and its child cgroups (deepest first).
/// ENOENT is success; EBUSY is retried a few times with a growing delay
/// (the kernel keeps a cgroup busy briefly after its last task exits).
pub(crate) fn remove_cgroup(dir: &Path) -> Result<()> {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_cgroup(&entry.path())?;
            }
        }
    }
    let mut delay = Duration::from_millis(10);
    for attempt in 0..6 {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < 5 => {
                thread::sleep(delay);
                delay *= 2;
            }
            Err(source) => {
                return Err(CgroupError::Remove {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
    Ok(())
}

/// Pids listed in `dir/cgroup.procs`, and in every child cgroup when
/// `recursive`.
pub(crate) fn procs(dir: &Path, recursive: bool) -> Result<Vec<i32>> {
    let mut out = Vec::new();
    collect_procs(dir, recursive, &mut out)?;
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

fn collect_procs(dir: &Path, recursive: bool, out: &mut Vec<i32>) -> Result<()> {
    let path = dir.join("cgroup.procs");
    let content = read_path(&path)?;
    for line in content.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let pid = line.parse::<i32>().map_err(|_| CgroupError::Parse {
            path: path.clone(),
            content: line.to_string(),
        })?;
        out.push(pid);
    }
    if recursive {
        let entries = fs::read_dir(dir).map_err(|source| CgroupError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        for entry in entries.flatten() {
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                match collect_procs(&entry.path(), true, out) {
                    Ok(()) => {}
                    // a child cgroup removed while we walk is fine
                    Err(CgroupError::Read { source, .. })
                        if source.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(())
}

/// kill(2) every pid; ESRCH (already gone) is not an error.
pub(crate) fn signal_pids(pids: &[i32], signal: i32) -> Result<()> {
    for &pid in pids {
        if pid <= 0 {
            continue;
        }
        // SAFETY: kill(2) takes plain integers and touches no memory of ours.
        let rc = unsafe { libc::kill(pid, signal) };
        if rc != 0 {
            let source = io::Error::last_os_error();
            if source.raw_os_error() != Some(libc::ESRCH) {
                return Err(CgroupError::Signal {
                    pid,
                    signal,
                    source,
                });
            }
        }
    }
    Ok(())
}

/// Parse a flat keyed file ("key value" per line), e.g. memory.stat, cpu.stat.
pub(crate) fn parse_flat_keyed(content: &str) -> Vec<(String, u64)> {
    content
        .lines()
        .filter_map(|line| {
            let mut it = line.split_whitespace();
            let key = it.next()?;
            let val = it.next()?.parse::<u64>().ok()?;
            Some((key.to_string(), val))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_requires_existing_file_and_names_it() {
        let tmp = tempfile::tempdir().unwrap();
        let err = write(tmp.path(), "pids.max", 10).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("write 10 to "), "{msg}");
        assert!(
            msg.ends_with("pids.max: no such file or directory"),
            "{msg}"
        );
        assert_eq!(errno(&err), Some(libc::ENOENT));
    }

    #[test]
    fn write_truncates_and_read_trims() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("f"), "123456789\n").unwrap();
        write(tmp.path(), "f", "max").unwrap();
        assert_eq!(read(tmp.path(), "f").unwrap(), "max");
        assert_eq!(read_u64_opt(tmp.path(), "f").unwrap(), Some(u64::MAX));
        assert_eq!(read_u64_opt(tmp.path(), "nope").unwrap(), None);
    }

    #[test]
    fn mkdir_p_reports_created_dirs_and_remove_is_recursive() {
        let tmp = tempfile::tempdir().unwrap();
        let leaf = tmp.path().join("a/b/c");
        let made = mkdir_p(&leaf).unwrap();
        assert_eq!(
            made,
            vec![
                tmp.path().join("a"),
                tmp.path().join("a/b"),
                tmp.path().join("a/b/c")
            ]
        );
        assert!(mkdir_p(&leaf).unwrap().is_empty());
        fs::create_dir(leaf.join("child")).unwrap();
        remove_cgroup(&leaf).unwrap();
        assert!(!leaf.exists());
        remove_cgroup(&leaf).unwrap(); // ENOENT is fine
    }

    #[test]
    fn procs_recursive() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("cgroup.procs"), "5\n3\n").unwrap();
        fs::create_dir(tmp.path().join("sub")).unwrap();
        fs::write(tmp.path().join("sub/cgroup.procs"), "9\n").unwrap();
        assert_eq!(procs(tmp.path(), false).unwrap(), vec![3, 5]);
        assert_eq!(procs(tmp.path(), true).unwrap(), vec![3, 5, 9]);
        fs::write(tmp.path().join("cgroup.procs"), "x\n").unwrap();
        assert!(procs(tmp.path(), false)
            .unwrap_err()
            .to_string()
            .contains("unexpected content \"x\""));
    }
}
