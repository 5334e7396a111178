//! HTTP/1.1 to the daemon over a unix socket (or TCP): one connection per request, hyper's
//! client connection driven on the caller's tokio runtime. Also the connection hijack used by
//! attach and exec (`Connection: Upgrade`, `Upgrade: tcp`, `101` then a raw byte stream).

use std::path::PathBuf;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use super::ClientError;

/// Where the daemon listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    Tcp(String),
}

impl Endpoint {
    /// `unix:///path`, `tcp://host:port` (a bare `/path` is taken as a unix socket).
    pub fn parse(host: &str) -> Result<Endpoint, ClientError> {
        let bad = |why: &str| ClientError::BadHost {
            host: host.to_string(),
            why: why.to_string(),
        };
        if let Some(p) = host.strip_prefix("unix://") {
            if p.is_empty() {
                return Err(bad("no socket path"));
            }
            return Ok(Endpoint::Unix(PathBuf::from(p)));
        }
        if let Some(a) = host.strip_prefix("tcp://") {
            let a = a.trim_end_matches('/');
            if a.is_empty() {
                return Err(bad("no address"));
            }
            let a = if a
                .rsplit_once(':')
                .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            {
                a.to_string()
            } else {
                format!("{a}:2375")
            };
            return Ok(Endpoint::Tcp(a));
        }
        if host.starts_with('/') {
            return Ok(Endpoint::Unix(PathBuf::from(host)));
        }
        Err(bad("only unix:// and tcp:// hosts are supported"))
    }

    /// As given on the command line (for messages).
    pub fn display(&self) -> String {
        match self {
            Endpoint::Unix(p) => format!("unix://{}", p.display()),
            Endpoint::Tcp(a) => format!("tcp://{a}"),
        }
    }
}

/// A hijacked connection: the raw socket (blocking) and bytes already read past the headers.
pub struct Hijacked {
    pub stream: RawStream,
    pub buffered: Bytes,
}

/// The socket under a hijacked connection, back in blocking mode.
pub enum RawStream {
    Unix(std::os::unix::net::UnixStream),
    Tcp(std::net::TcpStream),
}

impl RawStream {
    pub fn try_clone(&self) -> std::io::Result<RawStream> {
        Ok(match self {
            RawStream::Unix(s) => RawStream::Unix(s.try_clone()?),
            RawStream::Tcp(s) => RawStream::Tcp(s.try_clone()?),
        })
    }
    /// Half-close: the daemon sees end of input (the container's stdin closes).
    pub fn close_write(&self) -> std::io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
    /// Shuts down one or both directions.
    pub fn shutdown(&self, how: std::net::Shutdown) -> std::io::Result<()> {
        match self {
            RawStream::Unix(s) => s.shutdown(how),
            RawStream::Tcp(s) => s.shutdown(how),
        }
    }
}

impl std::io::Read for RawStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            RawStream::Unix(s) => s.read(buf),
            RawStream::Tcp(s) => s.read(buf),
        }
    }
}

impl std::io::Write for RawStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            RawStream::Unix(s) => s.write(buf),
            RawStream::Tcp(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn connect_err(ep: &Endpoint, e: std::io::Error) -> ClientError {
    ClientError::Connect {
        host: ep.display(),
        source: e,
    }
}

/// Send one request on a new connection; the connection task is spawned on the current
/// runtime (with upgrades, so a `101` hands the socket to [`upgrade`]).
pub async fn send(
    ep: &Endpoint,
    req: Request<Full<Bytes>>,
) -> Result<Response<Incoming>, ClientError> {
    match ep {
        Endpoint::Unix(p) => {
            let s = tokio::net::UnixStream::connect(p)
                .await
                .map_err(|e| connect_err(ep, e))?;
            over(TokioIo::new(s), req).await
        }
        Endpoint::Tcp(a) => {
            let s = tokio::net::TcpStream::connect(a.as_str())
                .await
                .map_err(|e| connect_err(ep, e))?;
            let _ = s.set_nodelay(true);
            over(TokioIo::new(s), req).await
        }
    }
}

async fn over<T>(io: T, req: Request<Full<Bytes>>) -> Result<Response<Incoming>, ClientError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let what = format!("{} {}", req.method(), req.uri());
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| ClientError::Http {
            what: what.clone(),
            source: e,
        })?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    sender
        .send_request(req)
        .await
        .map_err(|e| ClientError::Http { what, source: e })
}

/// Take over the socket of a `101 Switching Protocols` response.
pub async fn upgrade(resp: Response<Incoming>, what: &str) -> Result<Hijacked, ClientError> {
    let up = hyper::upgrade::on(resp)
        .await
        .map_err(|e| ClientError::Http {
            what: what.to_string(),
            source: e,
        })?;
    let io_err = |e: std::io::Error| ClientError::Io {
        what: format!("{what}: take over the hijacked connection"),
        source: e,
    };
    let up = match up.downcast::<TokioIo<tokio::net::UnixStream>>() {
        Ok(parts) => {
            let s = parts.io.into_inner().into_std().map_err(io_err)?;
            s.set_nonblocking(false).map_err(io_err)?;
            return Ok(Hijacked {
                stream: RawStream::Unix(s),
                buffered: parts.read_buf,
            });
        }
        Err(up) => up,
    };
    match up.downcast::<TokioIo<tokio::net::TcpStream>>() {
        Ok(parts) => {
            let s = parts.io.into_inner().into_std().map_err(io_err)?;
            s.set_nonblocking(false).map_err(io_err)?;
            Ok(Hijacked {
                stream: RawStream::Tcp(s),
                buffered: parts.read_buf,
            })
        }
        Err(_) => Err(io_err(std::io::Error::other("unexpected connection type"))),
    }
}

/// A response body read as a blocking `std::io::Read`, driven on the client's runtime.
pub struct BodyReader<'a> {
    rt: &'a tokio::runtime::Runtime,
    body: Incoming,
    buf: Bytes,
    done: bool,
}

impl<'a> BodyReader<'a> {
    pub fn new(rt: &'a tokio::runtime::Runtime, body: Incoming) -> Self {
        BodyReader {
            rt,
            body,
            buf: Bytes::new(),
            done: false,
        }
    }
}

impl std::io::Read for BodyReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.buf.is_empty() && !self.done {
            match self.rt.block_on(self.body.frame()) {
                None => self.done = true,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
                Some(Ok(f)) => {
                    if let Ok(data) = f.into_data() {
                        self.buf = data;
                    }
                }
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        let _ = self.buf.split_to(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_parse_like_docker() {
        assert_eq!(
            Endpoint::parse("unix:///run/skiff/skiff.sock").unwrap(),
            Endpoint::Unix("/run/skiff/skiff.sock".into())
        );
        assert_eq!(
            Endpoint::parse("tcp://127.0.0.1:2376").unwrap(),
            Endpoint::Tcp("127.0.0.1:2376".into())
        );
        assert_eq!(
            Endpoint::parse("tcp://localhost").unwrap(),
            Endpoint::Tcp("localhost:2375".into())
        );
        let e = Endpoint::parse("ssh://me@host").unwrap_err().to_string();
        assert!(e.contains("ssh://me@host"), "{e}");
        assert!(Endpoint::parse("unix://").is_err());
    }
}
