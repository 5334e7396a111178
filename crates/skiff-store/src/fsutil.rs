//! Crash-safe file primitives: write-temp + fsync + rename + fsync-dir.
//!
//! Temporary files are named `.tmp-<pid>-<n>-<name>` in the destination directory, so a
//! crash leaves at most such a file behind, never a torn destination; [`is_temp_name`] lets
//! the checker find and remove them.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Prefix of every temporary name this crate creates.
pub const TMP_PREFIX: &str = ".tmp-";

/// True for names made by [`temp_name`].
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with(TMP_PREFIX)
}

/// A fresh temporary name unique within this host for `name`.
pub fn temp_name(name: &str) -> String {
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{TMP_PREFIX}{}-{n}-{name}", std::process::id())
}

/// fsyncs a directory so renames and unlinks in it are durable.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Flushes the whole filesystem holding `path` (`syncfs(2)`): one cache flush for many files
/// written without fsync (a build's layers), instead of one fsync each.
pub fn syncfs(path: &Path) -> io::Result<()> {
    let f = File::open(path)?;
    rustix::fs::syncfs(&f).map_err(io::Error::from)
}

/// Atomically replaces `path` with `data`: the file is either the old or the new content.
pub fn atomic_write(path: &Path, data: &[u8]) -> io::Result<()> {
    atomic_write_opts(path, data, true)
}

/// [`atomic_write`], durable (fsync of the file and its directory) or not: without, a
/// process crash still leaves the old or the new content (the page cache survives it), but a
/// power loss may lose the write.
pub fn atomic_write_opts(path: &Path, data: &[u8], durable: bool) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(temp_name(name));
    let res = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(data)?;
        if durable {
            f.sync_all()?;
        }
        fs::rename(&tmp, path)?;
        if durable {
            fsync_dir(dir)?;
        }
        Ok(())
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

/// Removes a file (durably or not); a missing file is not an error. Returns whether it
/// existed.
pub fn remove_file_opts(path: &Path, durable: bool) -> io::Result<bool> {
    if durable {
        return remove_file_durable(path);
    }
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Removes a file, durably; a missing file is not an error. Returns whether it existed.
pub fn remove_file_durable(path: &Path) -> io::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => {
            if let Some(dir) = path.parent() {
                fsync_dir(dir)?;
            }
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Removes a directory tree; missing is fine.
pub fn remove_dir_all_quiet(path: &Path) -> io::Result<()> {
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Random lowercase hex string of `2 * bytes` characters.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    fill_random(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Random string of `len` characters from `A-Z0-9` (Docker's overlay2 link names).
pub fn random_link_name(len: usize) -> String {
    const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut buf = vec![0u8; len];
    fill_random(&mut buf);
    buf.iter()
        .map(|b| ALPHA[(*b as usize) % ALPHA.len()] as char)
        .collect()
}

fn fill_random(buf: &mut [u8]) {
    let mut done = 0;
    while done < buf.len() {
        match rustix::rand::getrandom(&mut buf[done..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => done += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => panic!("getrandom failed: {e}"),
        }
    }
}

/// Encodes an arbitrary key as a file name: `[A-Za-z0-9._-]` kept, everything else `%XX`.
/// A leading `.` is escaped too, so no encoded name is hidden or a temp name.
pub fn encode_name(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for (i, b) in key.bytes().enumerate() {
        let keep = b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (b == b'.' && i > 0);
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Inverse of [`encode_name`]; `None` for names it cannot have produced.
pub fn decode_name(name: &str) -> Option<String> {
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = name.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_roundtrip() {
        for k in [
            "docker.io/library/busybox:latest",
            "extract-sha256:ab",
            ".hidden",
            "a%b",
            "é",
        ] {
            let e = encode_name(k);
            assert!(!e.contains('/') && !e.starts_with('.'), "{e}");
            assert_eq!(decode_name(&e).as_deref(), Some(k));
        }
    }

    #[test]
    fn atomic_write_replaces() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f.json");
        atomic_write(&p, b"one").unwrap();
        atomic_write(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
