//! Persistent network namespaces, as `ip netns add` makes them: a new namespace bind-mounted
//! onto `<dir>/<name>` so it lives without a process, and [`run_in`] to do work inside one
//! from a short-lived thread (the calling thread never changes namespace).
//!
//! `<dir>` itself is made a shared bind mount of itself (as iproute2 does with /run/netns),
//! so that unmounting a namespace file also unmounts the copies that mount namespaces created
//! later (containers) got of it, and the namespace is freed when its last process exits.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rustix::mount::{mount_bind, mount_change, unmount, MountPropagationFlags, UnmountFlags};
use rustix::thread::{move_into_link_name_space, unshare_unsafe, LinkNameSpaceType, UnshareFlags};

/// Namespace file failures, naming the path.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("network namespace name {0:?}: must be a plain file name")]
    BadName(String),
    #[error("network namespace {path}: {what}: {source}")]
    Io {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("network namespace {0}: the helper thread panicked")]
    Thread(PathBuf),
}

fn io_err<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(io::Error) -> NetnsError + 'a {
    move |source| NetnsError::Io {
        path: path.to_path_buf(),
        what,
        source,
    }
}

fn rx<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(rustix::io::Errno) -> NetnsError + 'a {
    move |e| io_err(path, what)(e.into())
}

/// `statfs` magic of nsfs, the filesystem of namespace files.
const NSFS_MAGIC: i64 = 0x6e73_6673;

/// Whether `path` is a namespace file (an nsfs bind mount or a /proc/PID/ns link).
pub fn is_netns_file(path: &Path) -> bool {
    // f_type's integer type varies by architecture.
    #[allow(clippy::useless_conversion)]
    rustix::fs::statfs(path).is_ok_and(|s| i64::from(s.f_type) == NSFS_MAGIC)
}

/// Runs `f` on a new thread that has joined the network namespace `netns` and returns its
/// result. Sockets `f` creates stay in that namespace after the thread ends.
pub fn run_in<T: Send>(netns: &Path, f: impl FnOnce() -> T + Send) -> Result<T, NetnsError> {
    let file = File::open(netns).map_err(io_err(netns, "open"))?;
    std::thread::scope(|s| {
        s.spawn(|| -> Result<T, NetnsError> {
            move_into_link_name_space(file.as_fd(), Some(LinkNameSpaceType::Network))
                .map_err(rx(netns, "setns"))?;
            Ok(f())
        })
        .join()
        .map_err(|_| NetnsError::Thread(netns.to_path_buf()))?
    })
}

/// [`run_in`] with the namespace open already.
pub fn run_in_fd<T: Send>(ns: &File, f: impl FnOnce() -> T + Send) -> Result<T, NetnsError> {
    std::thread::scope(|s| {
        s.spawn(|| -> Result<T, NetnsError> {
            move_into_link_name_space(ns.as_fd(), Some(LinkNameSpaceType::Network))
                .map_err(rx(Path::new("(open namespace)"), "setns"))?;
            Ok(f())
        })
        .join()
        .map_err(|_| NetnsError::Thread(PathBuf::from("(open namespace)")))?
    })
}

fn check_name(name: &str) -> Result<(), NetnsError> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(NetnsError::BadName(name.to_string()));
    }
    Ok(())
}

/// Makes `dir` a shared mount point (bind-mounting it onto itself first if it is not one).
fn ensure_shared(dir: &Path) -> Result<(), NetnsError> {
    let flags = MountPropagationFlags::SHARED | MountPropagationFlags::REC;
    match mount_change(dir, flags) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::INVAL) => {
            mount_bind(dir, dir).map_err(rx(dir, "bind-mount onto itself"))?;
            mount_change(dir, flags).map_err(rx(dir, "make shared"))
        }
        Err(e) => Err(rx(dir, "make shared")(e)),
    }
}

/// Creates the namespace `<dir>/<name>` and returns its path; an existing one is kept
/// (idempotent), a stale empty file from a crash is reused.
pub fn create(dir: &Path, name: &str) -> Result<PathBuf, NetnsError> {
    check_name(name)?;
    let path = dir.join(name);
    if is_netns_file(&path) {
        return Ok(path);
    }
    prepare_file(dir, name)?;
    let target = path.clone();
    let r = std::thread::scope(|s| {
        s.spawn(move || -> Result<(), NetnsError> {
            // SAFETY: only CLONE_NEWNET is unshared, and only on this short-lived thread; the
            // file descriptor table stays shared, so no thread can observe a foreign fd table.
            unsafe { unshare_unsafe(UnshareFlags::NEWNET) }.map_err(rx(&target, "unshare"))?;
            mount_bind("/proc/thread-self/ns/net", &target).map_err(rx(&target, "bind-mount"))
        })
        .join()
        .map_err(|_| NetnsError::Thread(path.clone()))?
    });
    if let Err(e) = r {
        let _ = fs::remove_file(&path);
        return Err(e);
    }
    Ok(path)
}

/// Makes `dir` (a shared mount) and the empty file `<dir>/<name>` a namespace gets
/// bind-mounted onto; returns its path.
pub fn prepare_file(dir: &Path, name: &str) -> Result<PathBuf, NetnsError> {
    check_name(name)?;
    let path = dir.join(name);
    fs::create_dir_all(dir).map_err(io_err(dir, "create directory"))?;
    ensure_shared(dir)?;
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o444)
        .open(&path)
    {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_err(&path, "create file")(e)),
    }
    Ok(path)
}

/// Unmounts and removes `<dir>/<name>`; a missing one is fine. The namespace itself lives on
/// while a process (a still running container) is in it.
pub fn remove(dir: &Path, name: &str) -> Result<(), NetnsError> {
    check_name(name)?;
    remove_path(&dir.join(name))
}

/// [`remove`] by path.
pub fn remove_path(path: &Path) -> Result<(), NetnsError> {
    loop {
        match unmount(path, UnmountFlags::DETACH) {
            Ok(()) => continue, // stacked mounts from a crash-and-retry: unmount them all
            Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => break,
            Err(e) => return Err(rx(path, "unmount")(e)),
        }
    }
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(path, "remove")(e)),
        _ => Ok(()),
    }
}

/// The names in `dir` (namespace files and stale leftovers alike).
pub fn list(dir: &Path) -> Result<Vec<String>, NetnsError> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(dir, "list")(e)),
    };
    let mut out: Vec<String> = rd
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    out.sort();
    Ok(out)
}

/// Unmounts the shared self-bind-mount of `dir` made by [`create`] (tests and uninstall;
/// the daemon leaves it in place).
pub fn release_dir(dir: &Path) -> Result<(), NetnsError> {
    match unmount(dir, UnmountFlags::DETACH) {
        Ok(()) | Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(rx(dir, "unmount")(e)),
    }
}
