//! Forking with namespace flags.
//!
//! skiff does not re-exec itself to set up a container (runc's `runc init`): the runtime process
//! forks with `clone(2)` and the child sets the container up and `execve`s the user's program.
//! That saves an exec and a re-parse of the config on every start, but it requires the caller to
//! be single-threaded at fork time (the CLI is; the daemon forks through a single-threaded
//! helper), because the child allocates.

use nix::unistd::Pid;

use crate::error::{Result, RuntimeError};

/// Fork a child with the given `CLONE_*` flags (namespaces to create, `CLONE_PARENT`).
/// The child runs `f` and exits with the code it returns (1 if it panics); it never returns here.
pub fn clone_child(flags: libc::c_int, f: impl FnOnce() -> i32) -> Result<Pid> {
    let threads = thread_count();
    if threads > 1 {
        return Err(RuntimeError::Init(format!(
            "the runtime must fork from a single-threaded process, this one has {threads} threads"
        )));
    }
    // SAFETY: a raw clone without CLONE_VM and with a null stack behaves as fork(2): the child
    // gets a copy of the address space and continues on its copy of this stack. The caller is
    // single-threaded (documented contract of this module), so no lock is held by another
    // thread in the child's copy. The child never returns from this function: it calls _exit.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    match ret {
        -1 => Err(RuntimeError::sys(
            format!("clone with flags {:#x}", flags),
            std::io::Error::last_os_error(),
        )),
        0 => {
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(1);
            // SAFETY: _exit ends the child immediately without running the parent's atexit
            // handlers or flushing its copied stdio buffers, as a forked child must.
            unsafe { libc::_exit(code) }
        }
        pid => Ok(Pid::from_raw(pid as i32)),
    }
}

/// Threads of the calling process (from /proc/self/stat's num_threads field).
fn thread_count() -> usize {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 2..];
            rest.split(' ').nth(17)?.parse().ok()
        })
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_threads() {
        // Other tests run on threads of their own that come and go, so only a lower bound is
        // stable: this test's thread plus the one it spawns.
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || rx.recv().ok());
        assert!(super::thread_count() >= 2, "{}", super::thread_count());
        drop(tx);
        t.join().unwrap();
    }
}
