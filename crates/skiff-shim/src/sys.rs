//! The few system calls the shim needs around descriptors, signals and memory.

use std::io::{self, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

/// Close every descriptor from 3 up: nothing of the daemon stays open in the shim.
pub fn close_inherited() -> io::Result<()> {
    // SAFETY: close_range takes integers only. Nothing in this process owns a descriptor above
    // 2 yet (it is the first thing main does), so no OwnedFd is invalidated.
    let r = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A close-on-exec duplicate, numbered 3 or above.
pub fn dup_cloexec(fd: impl AsFd) -> io::Result<OwnedFd> {
    Ok(rustix::io::fcntl_dupfd_cloexec(fd, 3)?)
}

/// `/dev/null`, read-write, close-on-exec.
pub fn open_null() -> io::Result<OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    Ok(rustix::fs::open(
        "/dev/null",
        OFlags::RDWR | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// A close-on-exec pipe: (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?)
}

pub fn set_nonblocking(fd: impl AsFd) -> io::Result<()> {
    Ok(rustix::io::ioctl_fionbio(fd, true)?)
}

/// Make descriptors 0, 1 and 2 copies of these (a forked container process inherits them).
pub fn install_stdio(stdin: BorrowedFd, stdout: BorrowedFd, stderr: BorrowedFd) -> io::Result<()> {
    rustix::stdio::dup2_stdin(stdin)?;
    rustix::stdio::dup2_stdout(stdout)?;
    rustix::stdio::dup2_stderr(stderr)?;
    Ok(())
}

/// Whether a descriptor is a regular file.
pub fn is_regular_file(fd: impl AsFd) -> bool {
    rustix::fs::fstat(fd)
        .map(|st| {
            rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::RegularFile
        })
        .unwrap_or(false)
}

/// The signals the shim takes through its signalfd: SIGCHLD to reap, and the ones that would
/// stop it (it is not the container: they are read and dropped; SIGPIPE is ignored by Rust's
/// start-up code, and the runtime restores it for the container). They are blocked rather than
/// ignored because an ignored disposition would survive into the container's execve, while the
/// runtime resets the signal mask of the processes it starts.
pub fn signal_fd() -> io::Result<SignalFd> {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGHUP,
        Signal::SIGINT,
        Signal::SIGTERM,
    ] {
        set.add(s);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
    Ok(SignalFd::with_flags(
        &set,
        SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC,
    )?)
}

/// Put every signal an ancestor may have ignored back to its default action (SIGPIPE stays
/// ignored, as Rust set it): dispositions survive fork and execve, so an ignored SIGTERM or
/// SIGINT inherited from whatever started the daemon would reach the container.
pub fn default_dispositions() {
    use nix::sys::signal::{signal, SigHandler};
    for s in Signal::iterator() {
        if matches!(s, Signal::SIGKILL | Signal::SIGSTOP | Signal::SIGPIPE) {
            continue;
        }
        // SAFETY: SIG_DFL installs no handler, so no code runs in signal context.
        let _ = unsafe { signal(s, SigHandler::SigDfl) };
    }
}

/// Read every queued signal; true if one was SIGCHLD.
pub fn drain_signals(fd: &SignalFd) -> bool {
    let mut child = false;
    while let Ok(Some(info)) = fd.read_signal() {
        child |= info.ssi_signo == libc::SIGCHLD as u32;
    }
    child
}

/// Receive the pty master a container process sends over the console socket.
pub fn recv_master(sock: &UnixStream) -> io::Result<OwnedFd> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut buf = [0u8; 256];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut got = None;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for fd in fds {
                // SAFETY: SCM_RIGHTS installed these descriptors in this process for us; each
                // is wrapped exactly once, so each is closed exactly once.
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                if got.is_none() {
                    got = Some(owned);
                }
            }
        }
    }
    got.ok_or_else(|| io::Error::other("no descriptor received on the console socket"))
}

/// Set a terminal's window size.
pub fn set_winsize(fd: impl AsFd, height: u16, width: u16) -> io::Result<()> {
    let ws = rustix::termios::Winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    Ok(rustix::termios::tcsetwinsize(fd, ws)?)
}

/// Give free heap pages back to the kernel.
pub fn trim_heap() {
    // SAFETY: malloc_trim only releases free memory of the allocator; no pointer is affected.
    unsafe { libc::malloc_trim(0) };
}

/// Release the pages of the main thread's stack below the current frame (the start-up path
/// goes deep through the runtime and serde; the event loop is shallow). They read back as
/// zeroes when touched again, which is all an unused stack page may be.
#[inline(never)]
pub fn trim_stack() {
    let marker = 0u8;
    let sp = std::hint::black_box(&marker) as *const u8 as usize;
    let Some((lo, hi)) = stack_range() else {
        return;
    };
    if !(lo..hi).contains(&sp) {
        // Not the main thread's stack (a test thread): leave it alone.
        return;
    }
    let page = 4096usize;
    // Keep 8 KiB below this frame: madvise's own frame is down there while it runs.
    let top = (sp.saturating_sub(8 * 1024)) & !(page - 1);
    if top <= lo {
        return;
    }
    // SAFETY: [lo, top) is the part of this thread's stack mapping more than 8 KiB below the
    // live stack pointer: no frame, red zone or signal frame (signals are read through a
    // signalfd, never delivered on this stack) is there. MADV_DONTNEED on private anonymous
    // memory only drops pages, which are zero-filled on the next touch.
    unsafe { libc::madvise(lo as *mut libc::c_void, top - lo, libc::MADV_DONTNEED) };
}

/// The `[stack]` mapping of this process, from /proc/self/maps.
fn stack_range() -> Option<(usize, usize)> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let line = maps.lines().find(|l| l.ends_with("[stack]"))?;
    let range = line.split(' ').next()?;
    let (a, b) = range.split_once('-')?;
    Some((
        usize::from_str_radix(a, 16).ok()?,
        usize::from_str_radix(b, 16).ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_is_found_and_trim_is_harmless() {
        // Test threads have their own stacks, so only the lookup is checked here; trimming
        // runs for real in the integration tests (the shim's main thread).
        let (lo, hi) = stack_range().unwrap();
        assert!(lo < hi);
    }

    #[test]
    fn pipes_and_dups() {
        let (r, w) = pipe().unwrap();
        let d = dup_cloexec(&w).unwrap();
        assert!(d.as_raw_fd() >= 3);
        set_nonblocking(&r).unwrap();
        rustix::io::write(&d, b"x").unwrap();
        let mut b = [0u8; 4];
        assert_eq!(rustix::io::read(&r, &mut b).unwrap(), 1);
        assert!(rustix::io::read(&r, &mut b).is_err());
        assert!(!is_regular_file(&r));
        let f = tempfile::tempfile().unwrap();
        assert!(is_regular_file(&f));
    }
}
