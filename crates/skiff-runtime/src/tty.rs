//! Terminals: a pty made inside the container, its master handed to whoever listens on the
//! `--console-socket` (SCM_RIGHTS), its slave made the process's controlling terminal.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use rustix::fs::{Mode, OFlags};

use crate::error::{Result, RuntimeError};

fn io(e: rustix::io::Errno) -> std::io::Error {
    std::io::Error::from_raw_os_error(e.raw_os_error())
}

/// Open a new pty in the container's devpts (call after the rootfs is entered). Returns the
/// master and the slave's path.
pub fn open_pty() -> Result<(OwnedFd, String)> {
    let master = rustix::pty::openpt(
        rustix::pty::OpenptFlags::RDWR
            | rustix::pty::OpenptFlags::NOCTTY
            | rustix::pty::OpenptFlags::CLOEXEC,
    )
    .map_err(|e| RuntimeError::sys("open /dev/ptmx", io(e)))?;
    rustix::pty::grantpt(&master).map_err(|e| RuntimeError::sys("grantpt", io(e)))?;
    rustix::pty::unlockpt(&master).map_err(|e| RuntimeError::sys("unlockpt", io(e)))?;
    let name = rustix::pty::ptsname(&master, Vec::new())
        .map_err(|e| RuntimeError::sys("ptsname", io(e)))?;
    Ok((master, name.to_string_lossy().into_owned()))
}

/// Send the master over the console socket, as runc does (the payload is the pty's name).
pub fn send_master(sock: &UnixStream, master: &OwnedFd, name: &str) -> Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let fds = [master.as_raw_fd()];
    let iov = [std::io::IoSlice::new(name.as_bytes())];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| {
        RuntimeError::sys(
            "send pty master over the console socket",
            crate::error::errno(e),
        )
    })?;
    Ok(())
}

/// Make the slave the session's controlling terminal and the process's stdio.
pub fn attach_slave(slave_path: &str) -> Result<()> {
    let slave = rustix::fs::open(slave_path, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| RuntimeError::io("open", slave_path, io(e)))?;
    rustix::process::setsid().map_err(|e| RuntimeError::sys("setsid", io(e)))?;
    rustix::process::ioctl_tiocsctty(&slave)
        .map_err(|e| RuntimeError::sys("set controlling terminal", io(e)))?;
    for target in 0..3 {
        // SAFETY: dup2 onto 0, 1, 2 replaces the standard descriptors; the slave stays open.
        let r = unsafe { libc::dup2(slave.as_raw_fd(), target) };
        if r < 0 {
            return Err(RuntimeError::sys(
                "dup2 pty onto stdio",
                std::io::Error::last_os_error(),
            ));
        }
    }
    Ok(())
}

/// Set the window size of a terminal.
pub fn set_size(fd: &impl std::os::fd::AsFd, rows: u16, cols: u16) -> Result<()> {
    let ws = rustix::termios::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    rustix::termios::tcsetwinsize(fd, ws).map_err(|e| RuntimeError::sys("set terminal size", io(e)))
}
