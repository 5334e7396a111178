//! Whether a daemon on a unix socket is serving: it binds the socket before it opens its
//! store and networks (a connect waits in the backlog meanwhile), so readiness is a `_ping`
//! answered with 200, not an accepted connect. Shared by skiff-daemon's and skiff's test
//! harnesses (the latter includes this file by path).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

pub fn answers_ping(sock: &Path) -> bool {
    let Ok(mut s) = UnixStream::connect(sock) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(20)));
    let mut resp = Vec::new();
    s.write_all(b"GET /_ping HTTP/1.0\r\nHost: d\r\n\r\n")
        .is_ok()
        && s.read_to_end(&mut resp).is_ok()
        && String::from_utf8_lossy(&resp).split_whitespace().nth(1) == Some("200")
}
