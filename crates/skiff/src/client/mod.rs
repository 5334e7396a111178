//! A Docker Engine API client for the skiff CLI: HTTP/1.1 over the daemon's unix socket (or
//! TCP), API version prefix `/v1.44` (lowered to the daemon's when it is older, as docker
//! negotiates from `/_ping`), Docker's JSON errors turned into `Error response from daemon:
//! ...`, streamed bodies, and the connection hijack for attach/exec.
//!
//! Blocking on purpose: each call drives a current-thread tokio runtime, which keeps the
//! CLI's start-up to a few hundred microseconds and lets verbs stay plain sequential code.

pub mod autostart;
pub mod stdcopy;
pub mod transport;

use std::ffi::OsString;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::{Method, Request, Response};
use serde::de::DeserializeOwned;

pub use transport::{BodyReader, Endpoint, Hijacked};

/// The API version this client speaks (and the highest it asks for).
pub const API_VERSION: (u32, u32) = (1, 44);
/// Where `skiff daemon` listens by default.
pub const DEFAULT_HOST: &str = "unix:///run/skiff/skiff.sock";

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid host {host:?}: {why}")]
    BadHost { host: String, why: String },
    #[error("{}", connect_message(host, source))]
    Connect {
        host: String,
        #[source]
        source: std::io::Error,
    },
    /// The daemon answered with an error status; `message` is its `{"message": ...}`.
    #[error("Error response from daemon: {message}")]
    Daemon { status: u16, message: String },
    #[error("{what}: {source}")]
    Http {
        what: String,
        #[source]
        source: hyper::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: unexpected answer from the daemon: {source}")]
    Decode {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "{what}: the daemon did not switch protocols (status {status}); attach needs HTTP upgrade"
    )]
    NoUpgrade { what: String, status: u16 },
    #[error("start the skiff daemon: {0}")]
    Autostart(String),
}

fn connect_message(host: &str, e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        format!("permission denied while trying to connect to the skiff daemon socket at {host}")
    } else {
        format!("Cannot connect to the skiff daemon at {host}. Is the daemon running?")
    }
}

impl ClientError {
    /// The daemon said 404 (no such container, image, exec ...).
    pub fn is_not_found(&self) -> bool {
        matches!(self, ClientError::Daemon { status: 404, .. })
    }
    /// The daemon's own message, without docker's prefix.
    pub fn daemon_message(&self) -> Option<&str> {
        match self {
            ClientError::Daemon { message, .. } => Some(message),
            _ => None,
        }
    }
}

/// How to reach the daemon (the CLI's global `-H`, `SKIFF_HOST`, `--no-autostart`).
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// `None`: the default socket (and auto-start may apply).
    pub host: Option<String>,
    pub autostart: bool,
    /// Global flags passed on to an auto-started `skiff daemon` (`--data-root`, ...).
    pub daemon_args: Vec<OsString>,
}

/// A request body.
pub enum Body {
    Empty,
    Json(serde_json::Value),
    Tar(Vec<u8>),
}

/// A connected client (the daemon answered `/_ping`).
pub struct Client {
    rt: tokio::runtime::Runtime,
    ep: Endpoint,
    prefix: String,
    opts: ConnectOptions,
}

impl Client {
    pub fn connect(opts: &ConnectOptions) -> Result<Client, ClientError> {
        let ep = Endpoint::parse(opts.host.as_deref().unwrap_or(DEFAULT_HOST))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ClientError::Io {
                what: "create the client runtime".into(),
                source: e,
            })?;
        let mut c = Client {
            rt,
            ep,
            prefix: format!("/v{}.{}", API_VERSION.0, API_VERSION.1),
            opts: opts.clone(),
        };
        let version = match c.ping() {
            Ok(v) => v,
            Err(ClientError::Connect { .. }) if opts.host.is_none() && opts.autostart => {
                let Endpoint::Unix(sock) = &c.ep else {
                    unreachable!("the default host is a unix socket")
                };
                autostart::autostart_daemon(sock, &opts.daemon_args, || c.ping().is_ok())?;
                c.ping()?
            }
            Err(e) => return Err(e),
        };
        if let Some((maj, min)) = version {
            if (maj, min) < API_VERSION {
                c.prefix = format!("/v{maj}.{min}");
            }
        }
        Ok(c)
    }

    /// A second client to the same daemon (for a signal or resize thread).
    pub fn try_clone(&self) -> Result<Client, ClientError> {
        let mut c = Client::connect(&ConnectOptions {
            autostart: false,
            ..self.opts.clone()
        })?;
        c.prefix = self.prefix.clone();
        Ok(c)
    }

    /// `GET /_ping`: the daemon's API version when it tells (`Api-Version`).
    pub fn ping(&self) -> Result<Option<(u32, u32)>, ClientError> {
        let req = Request::get("/_ping")
            .header("Host", "skiff")
            .body(Full::new(Bytes::new()))
            .expect("static request");
        let resp = self.rt.block_on(transport::send(&self.ep, req))?;
        let v = resp
            .headers()
            .get("Api-Version")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once('.'))
            .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)));
        let (status, body) = self.collect(resp, "GET /_ping")?;
        if status >= 400 {
            return Err(daemon_error(status, &body));
        }
        Ok(v)
    }

    /// The API version in use, as `1.44`.
    pub fn api_version(&self) -> &str {
        &self.prefix[2..]
    }

    fn build(&self, method: Method, path: &str, body: Body, upgrade: bool) -> Request<Full<Bytes>> {
        let mut b = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.prefix))
            .header("Host", "skiff")
            .header(
                "User-Agent",
                concat!("skiff-cli/", env!("CARGO_PKG_VERSION")),
            );
        if upgrade {
            b = b.header("Connection", "Upgrade").header("Upgrade", "tcp");
        }
        let (ct, bytes) = match body {
            Body::Empty => (None, Bytes::new()),
            Body::Json(v) => (Some("application/json"), Bytes::from(v.to_string())),
            Body::Tar(t) => (Some("application/x-tar"), Bytes::from(t)),
        };
        if let Some(ct) = ct {
            b = b.header("Content-Type", ct);
        }
        b.body(Full::new(bytes))
            .unwrap_or_else(|e| panic!("request {path:?}: {e}"))
    }

    fn collect(&self, resp: Response<Incoming>, what: &str) -> Result<(u16, Bytes), ClientError> {
        let status = resp.status().as_u16();
        let body = self
            .rt
            .block_on(resp.into_body().collect())
            .map_err(|e| ClientError::Http {
                what: what.to_string(),
                source: e,
            })?
            .to_bytes();
        Ok((status, body))
    }

    /// Send; a status ≥ 400 becomes [`ClientError::Daemon`].
    pub fn call(
        &self,
        method: Method,
        path: &str,
        body: Body,
    ) -> Result<Response<Incoming>, ClientError> {
        let what = format!("{method} {path}");
        let req = self.build(method, path, body, false);
        let resp = self.rt.block_on(transport::send(&self.ep, req))?;
        if resp.status().as_u16() >= 400 {
            let (status, body) = self.collect(resp, &what)?;
            return Err(daemon_error(status, &body));
        }
        Ok(resp)
    }

    /// The whole body and the headers.
    pub fn bytes(
        &self,
        method: Method,
        path: &str,
        body: Body,
    ) -> Result<(HeaderMap, Bytes), ClientError> {
        let what = format!("{method} {path}");
        let resp = self.call(method, path, body)?;
        let headers = resp.headers().clone();
        Ok((headers, self.collect(resp, &what)?.1))
    }

    /// The body decoded as JSON (an empty body reads as `null`).
    pub fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Body,
    ) -> Result<T, ClientError> {
        let what = format!("{method} {path}");
        let (_, b) = self.bytes(method, path, body)?;
        let b: &[u8] = if b.iter().all(u8::is_ascii_whitespace) {
            b"null"
        } else {
            &b
        };
        serde_json::from_slice(b).map_err(|e| ClientError::Decode { what, source: e })
    }

    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.json(Method::GET, path, Body::Empty)
    }

    /// A request whose answer does not matter beyond success.
    pub fn post(&self, path: &str, body: Body) -> Result<(), ClientError> {
        self.bytes(Method::POST, path, body).map(|_| ())
    }

    /// The body as a blocking reader (logs, events, stats, export, archives).
    pub fn stream(
        &self,
        method: Method,
        path: &str,
        body: Body,
    ) -> Result<(HeaderMap, BodyReader<'_>), ClientError> {
        let resp = self.call(method, path, body)?;
        let headers = resp.headers().clone();
        Ok((headers, BodyReader::new(&self.rt, resp.into_body())))
    }

    /// POST with `Upgrade: tcp`; on `101` the raw socket is ours.
    pub fn hijack(&self, path: &str, body: Body) -> Result<Hijacked, ClientError> {
        let what = format!("POST {path}");
        let req = self.build(Method::POST, path, body, true);
        let resp = self.rt.block_on(transport::send(&self.ep, req))?;
        let status = resp.status().as_u16();
        if status >= 400 {
            let (status, body) = self.collect(resp, &what)?;
            return Err(daemon_error(status, &body));
        }
        if status != 101 {
            return Err(ClientError::NoUpgrade { what, status });
        }
        self.rt.block_on(transport::upgrade(resp, &what))
    }
}

/// Docker's `{"message": ...}` error body (or the raw text when it is not JSON).
fn daemon_error(status: u16, body: &[u8]) -> ClientError {
    #[derive(serde::Deserialize)]
    struct E {
        message: String,
    }
    let message = match serde_json::from_slice::<E>(body) {
        Ok(e) => e.message,
        Err(_) if body.iter().all(u8::is_ascii_whitespace) => hyper::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .map_or_else(|| format!("status {status}"), |r| format!("{status} {r}")),
        Err(_) => String::from_utf8_lossy(body).trim().to_string(),
    };
    ClientError::Daemon { status, message }
}

/// A query string built from pairs, percent-encoded.
#[derive(Default)]
pub struct Query(String);

impl Query {
    pub fn new() -> Self {
        Query(String::new())
    }
    pub fn add(mut self, k: &str, v: impl AsRef<str>) -> Self {
        self.0.push(if self.0.is_empty() { '?' } else { '&' });
        self.0.push_str(&encode(k));
        self.0.push('=');
        self.0.push_str(&encode(v.as_ref()));
        self
    }
    pub fn add_if(self, cond: bool, k: &str, v: impl AsRef<str>) -> Self {
        if cond {
            self.add(k, v)
        } else {
            self
        }
    }
    pub fn opt(self, k: &str, v: Option<impl AsRef<str>>) -> Self {
        match v {
            Some(v) => self.add(k, v),
            None => self,
        }
    }
    /// `path` with this query appended.
    pub fn to(&self, path: &str) -> String {
        format!("{path}{}", self.0)
    }
}

/// Percent-encoding of everything but RFC 3986's unreserved characters.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_errors_read_like_docker() {
        let e = daemon_error(404, br#"{"message":"No such container: x"}"#);
        assert!(e.is_not_found());
        assert_eq!(
            e.to_string(),
            "Error response from daemon: No such container: x"
        );
        let e = daemon_error(500, b"");
        assert_eq!(
            e.to_string(),
            "Error response from daemon: 500 Internal Server Error"
        );
        let e = daemon_error(400, b"plain text\n");
        assert_eq!(e.daemon_message(), Some("plain text"));
    }

    #[test]
    fn queries_are_encoded() {
        let q = Query::new()
            .add("filters", r#"{"a":{"b=c":true}}"#)
            .add_if(false, "x", "1")
            .opt("name", Some("a b"));
        assert_eq!(
            q.to("/containers/json"),
            "/containers/json?filters=%7B%22a%22%3A%7B%22b%3Dc%22%3Atrue%7D%7D&name=a%20b"
        );
    }
}
