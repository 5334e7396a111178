//! Loading a [`CompiledFilter`] into the kernel, and probing which seccomp(2) flags the kernel
//! accepts.
//!
//! [`CompiledFilter::install`] runs in a forked child of a multi-threaded parent right before
//! execve: it performs only raw syscalls on memory the filter already owns — no allocation,
//! no locks, no libseccomp.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::OnceLock;

use crate::filter::{
    CompiledFilter, FLAG_LOG, FLAG_NEW_LISTENER, FLAG_SPEC_ALLOW, FLAG_TSYNC, FLAG_TSYNC_ESRCH,
    FLAG_WAIT_KILLABLE_RECV,
};
use crate::SeccompError;

const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
const SECCOMP_MODE_FILTER: libc::c_ulong = 2;

impl CompiledFilter {
    /// Install on the calling thread with `seccomp(SECCOMP_SET_MODE_FILTER, flags, &prog)`, or
    /// `prctl(PR_SET_SECCOMP)` when there are no flags.
    ///
    /// The caller must already have set `no_new_privs` (see [`set_no_new_privs`]) or hold
    /// `CAP_SYS_ADMIN`, else the kernel answers `EACCES`. Async-signal-safe: does not allocate,
    /// so it may run between fork and execve. Returns the notify listener fd when the filter
    /// uses `SCMP_ACT_NOTIFY`.
    pub fn install(&self) -> Result<Option<OwnedFd>, SeccompError> {
        let prog = libc::sock_fprog {
            // Bounded by MAX_INSNS (4096) in compile() and from_bytes().
            len: self.insns.len() as libc::c_ushort,
            filter: self.insns.as_ptr().cast_mut(),
        };
        if self.flags == 0 {
            // SAFETY: `prog` points to `self.insns`, which outlives the call; the kernel copies
            // the program and does not keep the pointer.
            let r = unsafe {
                libc::prctl(
                    libc::PR_SET_SECCOMP,
                    SECCOMP_MODE_FILTER,
                    &prog as *const libc::sock_fprog,
                    0 as libc::c_ulong,
                    0 as libc::c_ulong,
                )
            };
            if r != 0 {
                return Err(SeccompError::Install {
                    source: io::Error::last_os_error(),
                });
            }
            return Ok(None);
        }
        // SAFETY: as above; seccomp(2) takes (operation, flags, pointer to sock_fprog).
        let r = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                SECCOMP_SET_MODE_FILTER,
                libc::c_ulong::from(self.flags),
                &prog as *const libc::sock_fprog,
            )
        };
        if r < 0 {
            return Err(SeccompError::Install {
                source: io::Error::last_os_error(),
            });
        }
        if self.flags & FLAG_NEW_LISTENER != 0 {
            // Only reachable with a valid fd: the kernel returned a new listener fd.
            let fd = r as libc::c_int;
            // SAFETY: with NEW_LISTENER a non-negative result is a fresh fd that nobody else owns.
            return Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }));
        }
        if r > 0 {
            // With TSYNC (and without TSYNC_ESRCH) a positive result is the tid that failed.
            return Err(SeccompError::Tsync { tid: r });
        }
        Ok(None)
    }
}

/// `prctl(PR_SET_NO_NEW_PRIVS, 1)`: needed before [`CompiledFilter::install`] without
/// `CAP_SYS_ADMIN`. Async-signal-safe.
pub fn set_no_new_privs() -> Result<(), SeccompError> {
    // SAFETY: PR_SET_NO_NEW_PRIVS takes integer arguments only.
    let r = unsafe {
        libc::prctl(
            libc::PR_SET_NO_NEW_PRIVS,
            1 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if r != 0 {
        return Err(SeccompError::Install {
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// Whether the kernel accepts `flags` for SECCOMP_SET_MODE_FILTER, probed as libseccomp does:
/// with a NULL program the kernel checks the flags first (EINVAL) and then faults copying the
/// program (EFAULT), so nothing is installed.
fn kernel_accepts(flags: u32) -> bool {
    // SAFETY: a NULL program pointer is never dereferenced in user space; the kernel's
    // copy_from_user fails with EFAULT and no filter is attached.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            libc::c_ulong::from(flags),
            std::ptr::null::<libc::sock_fprog>(),
        )
    };
    r < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EFAULT)
}

/// The `SECCOMP_FILTER_FLAG_*` bits this kernel accepts, probed once per process.
pub fn supported_flags() -> u32 {
    static SUPPORTED: OnceLock<u32> = OnceLock::new();
    *SUPPORTED.get_or_init(|| {
        let mut mask = 0;
        for flag in [
            FLAG_TSYNC,
            FLAG_LOG,
            FLAG_SPEC_ALLOW,
            FLAG_NEW_LISTENER,
            FLAG_TSYNC | FLAG_NEW_LISTENER | FLAG_TSYNC_ESRCH,
            FLAG_NEW_LISTENER | FLAG_WAIT_KILLABLE_RECV,
        ] {
            if kernel_accepts(flag) {
                mask |= flag;
            }
        }
        mask
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_kernel_supports_modern_flags() {
        // The machine runs 6.18: every flag exists there (5.19+ has all of them).
        let m = supported_flags();
        for f in [
            FLAG_TSYNC,
            FLAG_LOG,
            FLAG_SPEC_ALLOW,
            FLAG_NEW_LISTENER,
            FLAG_TSYNC_ESRCH,
            FLAG_WAIT_KILLABLE_RECV,
        ] {
            assert_ne!(m & f, 0, "flag {f:#x} not detected in {m:#x}");
        }
        assert!(!kernel_accepts(1 << 20), "bogus flag accepted");
    }
}
