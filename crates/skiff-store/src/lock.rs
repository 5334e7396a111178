//! Advisory file locks (`flock(2)`) that serialise threads of one process and processes.
//!
//! Each acquisition opens the lock file anew, so two threads of one process get two open
//! file descriptions and exclude each other exactly as two processes do. The lock is released
//! when the guard (and with it the descriptor) is dropped, and by the kernel if the process dies.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};

/// Errors taking a lock.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("lock {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Shared (readers) or exclusive (writer) lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockMode {
    Shared,
    Exclusive,
}

/// A held `flock` on a file; released on drop.
#[derive(Debug)]
pub struct FileLock {
    file: File,
    path: PathBuf,
}

impl FileLock {
    /// Blocks until the lock is held.
    pub fn acquire(path: &Path, mode: LockMode) -> Result<Self, LockError> {
        Self::take(path, mode, true).map(|l| l.expect("blocking lock always returns a lock"))
    }

    /// Takes the lock if free; `Ok(None)` when another holder has it.
    pub fn try_acquire(path: &Path, mode: LockMode) -> Result<Option<Self>, LockError> {
        Self::take(path, mode, false)
    }

    fn take(path: &Path, mode: LockMode, block: bool) -> Result<Option<Self>, LockError> {
        let err = |source| LockError::Io {
            path: path.to_owned(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(err)?;
        let op = match (mode, block) {
            (LockMode::Shared, true) => FlockOperation::LockShared,
            (LockMode::Shared, false) => FlockOperation::NonBlockingLockShared,
            (LockMode::Exclusive, true) => FlockOperation::LockExclusive,
            (LockMode::Exclusive, false) => FlockOperation::NonBlockingLockExclusive,
        };
        loop {
            match flock(&file, op) {
                Ok(()) => {
                    return Ok(Some(Self {
                        file,
                        path: path.to_owned(),
                    }))
                }
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::WOULDBLOCK) if !block => return Ok(None),
                Err(e) => return Err(err(e.into())),
            }
        }
    }

    /// True while the locked file is still the one at `path` (it was not unlinked or
    /// replaced by the previous holder, as an ingest commit does with its directory).
    pub fn still_linked(&self) -> bool {
        match (self.file.metadata(), std::fs::metadata(&self.path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// True when someone holds a lock on `path` (probes with a non-blocking exclusive lock).
pub fn is_locked(path: &Path) -> bool {
    matches!(FileLock::try_acquire(path, LockMode::Exclusive), Ok(None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_excludes_threads_and_shared_shares() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lock");
        let a = FileLock::acquire(&p, LockMode::Exclusive).unwrap();
        assert!(FileLock::try_acquire(&p, LockMode::Exclusive)
            .unwrap()
            .is_none());
        assert!(FileLock::try_acquire(&p, LockMode::Shared)
            .unwrap()
            .is_none());
        let p2 = p.clone();
        let t = std::thread::spawn(move || {
            FileLock::acquire(&p2, LockMode::Exclusive).unwrap();
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!t.is_finished());
        drop(a);
        t.join().unwrap();
        let s1 = FileLock::acquire(&p, LockMode::Shared).unwrap();
        let _s2 = FileLock::try_acquire(&p, LockMode::Shared)
            .unwrap()
            .unwrap();
        assert!(is_locked(&p));
        assert!(s1.still_linked());
        std::fs::remove_file(&p).unwrap();
        assert!(!s1.still_linked());
    }
}
