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
    connect: Connector,
    after: Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>>,
) -> Resp {
    serve_with_prefix(on, tty, None, connect, after)
}

/// [`serve`], first sending `prefix` (already framed: attach's `logs=1` replay). A connector
/// that yields nothing then just ends the connection after the prefix.
pub fn serve_with_prefix(
    on: Option<OnUpgrade>,
    tty: bool,
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
            let mut client = TokioIo::new(up);
            if let Some(p) = prefix {
                let b = p.await;
                if client.write_all(&b).await.is_err() {
                    return;
                }
            }
            let Some((shim, ack)) = connect.await else {
                let _ = client.shutdown().await;
                return;
            };
            if let Some(a) = ack {
                let _ = a.send(());
            }
            pump(client, shim, after).await;
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

/// Copies client → monitor (then half-closes the monitor's side) and monitor → client (then
/// closes the client). Ends when the monitor's output ends.
async fn pump<C>(
    client: C,
    shim: UnixStream,
    after: Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>>,
) where
    C: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut cr, mut cw) = tokio::io::split(client);
    let (mut sr, mut sw) = shim.into_split();
    let input = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut cr, &mut sw).await;
        let _ = sw.shutdown().await;
    });
    let _ = tokio::io::copy(&mut sr, &mut cw).await;
    if let Some(a) = after {
        a.await;
    }
    let _ = cw.flush().await;
    let _ = cw.shutdown().await;
    input.abort();
}
