//! Connection hijacking for attach and exec start: the answer is `101 UPGRADED` (when the
//! client asked for `Upgrade: tcp`, as the docker CLI and docker-py do) and the connection
//! then carries raw bytes both ways; without an upgrade request, the output is streamed as
//! a plain 200 body (and stdin is not read), as dockerd does for such clients.
//!
//! The daemon is a pipe here: the monitor already frames output (Docker's 8-byte headers,
//! unless tty), so bytes are copied as they are. Client half-close → the monitor's stdin
//! half-close (so `StdinOnce` reaches the container as EOF); the monitor's end of output ends
//! the connection.

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION, CONTENT_TYPE, UPGRADE};
use hyper::upgrade::OnUpgrade;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UnixStream;

use super::body::{Body, Resp};

/// Whether the client asked to upgrade the connection.
pub fn wants_upgrade(req: &Request<Incoming>) -> bool {
    req.headers()
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("tcp"))
}

/// The media type of the stream.
pub fn stream_type(tty: bool) -> &'static str {
    if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    }
}

/// Something that gives the monitor stream once the hijack is done (for attaches before
/// start it waits for the start).
pub type Connector = std::pin::Pin<
    Box<
        dyn std::future::Future<
                Output = Option<(UnixStream, Option<tokio::sync::oneshot::Sender<()>>)>,
            > + Send,
    >,
>;

/// Takes the upgrade handle out of a request that asked for one (call before reading the
/// body).
pub fn take_upgrade(req: &mut Request<Incoming>) -> Option<OnUpgrade> {
    wants_upgrade(req).then(|| hyper::upgrade::on(req))
}

/// Answers with a hijack (or a streamed body when `on` is None) and pumps bytes between the
/// client and the stream `connect` yields. `after` runs when the output has ended, before the
/// client connection closes (exec: the exit code must be ready for the client's next call).
pub fn serve(
    on: Option<OnUpgrade>,
    tty: bool,
    detach: Option<Vec<u8>>,
    connect: Connector,
    after: Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>>,
) -> Resp {
    serve_with_prefix(on, tty, detach, None, connect, after)
}

/// [`serve`], first sending `prefix` (already framed: attach's `logs=1` replay). A connector
/// that yields nothing then just ends the connection after the prefix. With `detach` keys,
/// typing them ends the session (the container keeps running and its stdin stays open), as
/// dockerd does for attaches and execs with a terminal.
pub fn serve_with_prefix(
    on: Option<OnUpgrade>,
    tty: bool,
    detach: Option<Vec<u8>>,
    prefix: Option<std::pin::Pin<Box<dyn std::future::Future<Output = Vec<u8>> + Send>>>,
    connect: Connector,
    after: Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>>,
) -> Resp {
    if let Some(on) = on {
        tokio::spawn(async move {
            let up = match on.await {
                Ok(u) => u,
                Err(e) => {
                    tracing::debug!(error = %e, "hijack: upgrade failed");
                    return;
                }
            };
            let (mut client, early, fd) = unwrap_upgraded(up);
            let drained = async move {
                if let Some(fd) = fd {
                    wait_read_by_peer(fd).await;
                }
            };
            let (shim, ack) = if let Some(p) = prefix {
                let (b, ()) = tokio::join!(p, drained);
                if client.write_all(&b).await.is_err() {
                    return;
                }
                match connect.await {
                    Some(c) => c,
                    None => {
                        let _ = client.shutdown().await;
                        return;
                    }
                }
            } else {
                match tokio::join!(connect, drained).0 {
                    Some(c) => c,
                    None => {
                        let _ = client.shutdown().await;
                        return;
                    }
                }
            };
            if let Some(a) = ack {
                let _ = a.send(());
            }
            pump(client, early, shim, detach, after).await;
        });
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let h = r.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static(stream_type(tty)));
        h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(UPGRADE, HeaderValue::from_static("tcp"));
        return r;
    }
    let (tx, body) = Body::channel(16);
    tokio::spawn(async move {
        if let Some(p) = prefix {
            let b = p.await;
            if !b.is_empty() && tx.send(Bytes::from(b)).await.is_err() {
                return;
            }
        }
        let Some((mut shim, ack)) = connect.await else {
            return;
        };
        if let Some(a) = ack {
            let _ = a.send(());
        }
        let _ = shim.shutdown().await;
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match shim.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                        break;
                    }
                }
            }
        }
        if let Some(a) = after {
            a.await;
        }
    });
    let mut r = Response::new(body);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(stream_type(tty)));
    r
}

/// The hijacked connection's IO.
trait ClientIo: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> ClientIo for T {}

/// The upgraded connection as its raw stream when it is a unix socket (with the bytes hyper
/// had already read past the request, and the socket's fd for [`wait_read_by_peer`]),
/// otherwise as hyper's `Upgraded`.
fn unwrap_upgraded(
    up: hyper::upgrade::Upgraded,
) -> (Box<dyn ClientIo>, Bytes, Option<std::os::fd::RawFd>) {
    use std::os::fd::AsRawFd;
    match up.downcast::<TokioIo<UnixStream>>() {
        Ok(parts) => {
            let io = parts.io.into_inner();
            let fd = io.as_raw_fd();
            (Box::new(io), parts.read_buf, Some(fd))
        }
        Err(up) => (Box::new(TokioIo::new(up)), Bytes::new(), None),
    }
}

/// Waits (at most a second) until the peer has read everything sent so far on a unix
/// socket, i.e. the `101` answer's headers. Clients such as docker-py read the headers
/// through a buffered reader and then read the raw socket beneath it: output that arrived
/// together with the headers would sit in that buffer and be lost. For AF_UNIX, `SIOCOUTQ`
/// (= `TIOCOUTQ`) counts the bytes sent and not yet consumed by the receiver.
async fn wait_read_by_peer(fd: std::os::fd::RawFd) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        let mut queued: libc::c_int = 0;
        // SAFETY: `fd` is the connection's socket, owned by the stream that the caller keeps
        // alive across this call; SIOCOUTQ writes one c_int through the valid pointer.
        let r = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut queued) };
        if r != 0 || queued <= 0 || tokio::time::Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_micros(500)).await;
    }
}

/// Copies client → monitor (then half-closes the monitor's side) and monitor → client (then
/// closes the client). Ends when the monitor's output ends.
async fn pump(
    client: Box<dyn ClientIo>,
    early: Bytes,
    shim: UnixStream,
    detach: Option<Vec<u8>>,
    after: Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>>,
) {
    use skiff_engine::containers::detach::{EscapeProxy, Filtered};
    let (mut cr, mut cw) = tokio::io::split(client);
    let (mut sr, mut sw) = shim.into_split();
    let (detached_tx, detached_rx) = tokio::sync::oneshot::channel::<()>();
    let input = tokio::spawn(async move {
        if !early.is_empty() && sw.write_all(&early).await.is_err() {
            return;
        }
        let Some(keys) = detach else {
            let _ = tokio::io::copy(&mut cr, &mut sw).await;
            let _ = sw.shutdown().await;
            return;
        };
        let mut proxy = EscapeProxy::new(keys);
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            match proxy.filter(&buf[..n]) {
                Filtered::Forward(b) => {
                    if !b.is_empty() && sw.write_all(&b).await.is_err() {
                        return;
                    }
                }
                Filtered::Detach => {
                    tracing::debug!("hijack: detach keys read; detaching");
                    let _ = detached_tx.send(());
                    // The monitor's stdin stays open (the container goes on) until the
                    // output side aborts this task.
                    return std::future::pending::<()>().await;
                }
            }
        }
        let _ = sw.shutdown().await;
    });
    // Only a sent value means detach: the input side ending (sender dropped) must not
    // cut the output short.
    let detach_signal = async {
        if detached_rx.await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let detached = tokio::select! {
        _ = tokio::io::copy(&mut sr, &mut cw) => false,
        () = detach_signal => true,
    };
    if detached {
        let _ = cw.shutdown().await;
        input.abort();
        return;
    }
    if let Some(a) = after {
        a.await;
    }
    let _ = cw.flush().await;
    let _ = cw.shutdown().await;
    input.abort();
}
