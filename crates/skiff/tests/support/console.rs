//! The test side of `--console-socket`: a unix listener that receives the
//! pty master the runtime sends with SCM_RIGHTS.

use std::fs::File;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::io::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// Receives one fd sent with SCM_RIGHTS on `stream`.
pub fn recv_fd(stream: &UnixStream) -> std::io::Result<OwnedFd> {
    let mut data = [0u8; 4096];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // Room for a handful of fds, 8-byte aligned as cmsghdr requires.
    let mut cbuf = [0u64; 32];
    // SAFETY: msghdr is plain old data; all-zero is a valid empty value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cbuf);
    // SAFETY: msg points at live buffers (iov, cbuf) of the stated sizes.
    let n = unsafe { libc::recvmsg(stream.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut fds: Vec<RawFd> = Vec::new();
    // SAFETY: CMSG_* walk the control buffer recvmsg just filled in; we only
    // read cmsgs whose length the kernel reported.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let payload = (*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                let p = libc::CMSG_DATA(c).cast::<RawFd>();
                for i in 0..payload / std::mem::size_of::<RawFd>() {
                    fds.push(std::ptr::read_unaligned(p.add(i)));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    let mut it = fds.into_iter();
    let first = it.next().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "no fd in SCM_RIGHTS message",
        )
    })?;
    for extra in it {
        // SAFETY: extra fds were just received and are owned by us.
        drop(unsafe { OwnedFd::from_raw_fd(extra) });
    }
    // SAFETY: `first` was just received via SCM_RIGHTS and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(first) })
}

/// Reads from the pty master until `needle` shows up, EOF/EIO, or timeout.
pub fn read_until(master: OwnedFd, needle: &str, timeout: Duration) -> String {
    let fd = master.as_raw_fd();
    // SAFETY: fd is a valid open fd owned by `master`.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
    let mut f = File::from(master);
    let deadline = Instant::now() + timeout;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while Instant::now() < deadline {
        match f.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if String::from_utf8_lossy(&buf).contains(needle) {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(_) => break, // EIO once the slave side is closed
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// Accepts one connection on `listener` within `timeout` and receives the
/// fd it sends; errors (instead of blocking forever) when none arrives.
pub fn accept_fd(
    listener: std::os::unix::net::UnixListener,
    timeout: Duration,
) -> std::io::Result<OwnedFd> {
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + timeout;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false)?;
                stream.set_read_timeout(Some(timeout))?;
                return recv_fd(&stream);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "no connection on the console socket",
                    ));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    }
}
