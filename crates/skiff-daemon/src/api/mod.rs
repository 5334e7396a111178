//! The Docker Engine API: route (method + path → [`route::Action`]) → service → HTTP.
//!
//! [`handle`] is the whole request path: it gives every request an id and a tracing span,
//! routes it, runs the handler with panics caught (a panic is a 500 for that request only),
//! turns errors into Docker's `{"message": …}` through [`error::ErrorKind::status`], and adds
//! the headers dockerd puts on every answer.

pub mod auth;
pub mod body;
pub mod bridge;
pub mod build;
pub mod commit;
pub mod containers;
pub mod error;
pub mod events;
pub mod filters;
pub mod hijack;
pub mod images;
pub mod images_io;
pub mod logs;
pub mod networks;
pub mod pull;
pub mod push;
pub mod remote_src;
pub mod route;
pub mod system;
pub mod top;
pub mod volumes;

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use futures_util::FutureExt;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, SERVER};
use hyper::{Request, StatusCode};
use tracing::Instrument;

use body::Resp;
use error::{ApiError, ApiResult};
use route::{Action, Routed};

use crate::state::Daemon;

/// Largest JSON request body read into memory.
const MAX_JSON_BODY: usize = 1 << 20;

/// What the server knows about the connection a request came on.
#[derive(Debug, Clone, Default)]
pub struct ConnInfo {
    pub conn_id: u64,
    /// Peer credentials on unix sockets (`SO_PEERCRED`).
    pub peer_uid: Option<u32>,
    pub peer_pid: Option<i32>,
}

static REQUEST_SEQ: AtomicU64 = AtomicU64::new(1);

/// A short id for one request, unique within the daemon's life.
fn request_id() -> String {
    format!("{:08x}", REQUEST_SEQ.fetch_add(1, Ordering::Relaxed))
}

/// Requests since the heap was last trimmed (see [`crate::trim_when_idle`]).
pub static SINCE_TRIM: AtomicU64 = AtomicU64::new(0);

/// The one request entry point.
pub async fn handle(d: &Daemon, conn: &ConnInfo, req: Request<Incoming>) -> Resp {
    SINCE_TRIM.fetch_add(1, Ordering::Relaxed);
    let rid = request_id();
    let span = tracing::info_span!(
        "request",
        id = %rid,
        conn = conn.conn_id,
        method = %req.method(),
        path = %req.uri().path(),
        peer_uid = conn.peer_uid,
        peer_pid = conn.peer_pid,
    );
    async move {
        let start = Instant::now();
        let mut resp = guarded(dispatch(d, req), &rid).await;
        common_headers(&mut resp);
        tracing::info!(
            status = resp.status().as_u16(),
            ms = start.elapsed().as_secs_f64() * 1000.0,
            "done"
        );
        resp
    }
    .instrument(span)
    .await
}

/// Runs a handler with panics caught: a panic is a 500 for this request only.
async fn guarded(fut: impl std::future::Future<Output = ApiResult<Resp>>, rid: &str) -> Resp {
    match AssertUnwindSafe(fut).catch_unwind().await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            if e.status().is_server_error() {
                tracing::error!(error = %e.message, "request failed");
            } else {
                tracing::debug!(error = %e.message, "request refused");
            }
            body::error(&e)
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            tracing::error!(panic = %what, "handler panicked");
            body::error(&ApiError::system(format!("internal error (request {rid})")))
        }
    }
}

/// Headers dockerd adds to every answer.
fn common_headers(r: &mut Resp) {
    let h = r.headers_mut();
    h.insert("Api-Version", HeaderValue::from_static(const_api_version()));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    if let Ok(v) = HeaderValue::from_str(&format!("skiff/{} (linux)", system::VERSION)) {
        h.insert(SERVER, v);
    }
}

const fn const_api_version() -> &'static str {
    // Kept in step with route::API_VERSION (checked in a test).
    "1.44"
}

pub(crate) async fn read_json_body(req: Request<Incoming>) -> ApiResult<bytes::Bytes> {
    let b = Limited::new(req.into_body(), MAX_JSON_BODY)
        .collect()
        .await
        .map_err(|e| ApiError::invalid(format!("read request body: {e}")))?;
    Ok(b.to_bytes())
}

async fn dispatch(d: &Daemon, req: Request<Incoming>) -> ApiResult<Resp> {
    let Routed { version, action } =
        route::route(req.method(), req.uri().path(), req.uri().query())?;
    tracing::debug!(?action, api = %version, "routed");
    match action {
        Action::Ping { head } => Ok(system::ping(head)),
        Action::Version => Ok(body::json(StatusCode::OK, &system::version())),
        Action::Info => Ok(body::json(StatusCode::OK, &system::info(d).await?)),
        Action::Auth => {
            let b = read_json_body(req).await?;
            auth::auth(d, &b).await
        }
        Action::ImageList(q) => images::list(d, version, q).await,
        Action::ImageCreate(q) if q.get("fromSrc").is_some_and(|s| !s.is_empty()) => {
            images_io::import(d, q, req).await
        }
        Action::ImageCreate(q) => {
            let auth = req
                .headers()
                .get("X-Registry-Auth")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            pull::create(d, q, auth).await
        }
        Action::ImageRemove { name, query } => images::remove(d, name, query).await,
        Action::ImageTag { name, query } => images::tag(d, name, query).await,
        Action::ImageInspect { name } => images::inspect(d, name).await,
        Action::ImageHistory { name } => images::history(d, name).await,
        Action::ImagePush { name, query } => {
            let auth = req
                .headers()
                .get("X-Registry-Auth")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            push::push(d, name, query, auth).await
        }
        Action::ImageSave { name, query } => images_io::save(d, name, query).await,
        Action::ImageLoad(_) => images_io::load(d, req).await,
        Action::ImagePrune(q) => images_io::prune(d, q).await,
        Action::ImageSearch => images_io::search(),
        Action::ContainerList(q) => containers::list(d, q).await,
        Action::ContainerCreate(q) => {
            let b = read_json_body(req).await?;
            containers::create(d, q, b).await
        }
        Action::ContainerPrune(q) => containers::prune(d, q).await,
        Action::Commit(q) => {
            let b = read_json_body(req).await?;
            commit::commit(d, q, b).await
        }
        Action::Container { id, op, query } => containers::handle(d, id, op, query, req).await,
        Action::Exec { id, op, query } => containers::exec(d, id, op, query, req).await,
        Action::Events(q) => events::events(d, q).await,
        Action::SystemDf => images::system_df(d).await,
        Action::NetworkList(q) => networks::list(d, q).await,
        Action::NetworkCreate => {
            let b = read_json_body(req).await?;
            networks::create(d, b).await
        }
        Action::NetworkPrune(q) => networks::prune(d, q).await,
        Action::NetworkInspect { id } => networks::inspect(d, id).await,
        Action::NetworkRemove { id } => networks::remove(d, id).await,
        Action::NetworkConnect { id, disconnect } => {
            let b = read_json_body(req).await?;
            networks::connect(d, id, b, disconnect).await
        }
        Action::VolumeList(q) => volumes::list(d, q).await,
        Action::VolumeCreate => {
            let b = read_json_body(req).await?;
            volumes::create(d, b).await
        }
        Action::VolumePrune(q) => volumes::prune(d, q).await,
        Action::VolumeInspect { name } => volumes::inspect(d, name).await,
        Action::VolumeRemove { name, query } => volumes::remove(d, name, query).await,
        Action::Build(q) => build::build(d, q, req).await,
        Action::BuildPrune(_) => build::prune(d).await,
    }
}

#[cfg(test)]
mod tests {
    use super::route::API_VERSION;
    use super::*;

    #[test]
    fn header_version_matches_route_version() {
        assert_eq!(const_api_version(), API_VERSION.to_string());
    }

    #[tokio::test]
    async fn panics_become_500() {
        let boom = async {
            if REQUEST_SEQ.load(Ordering::Relaxed) > 0 {
                panic!("boom");
            }
            Ok(body::status(StatusCode::OK))
        };
        let r = guarded(boom, "r1").await;
        assert_eq!(r.status(), 500);
        let r = guarded(async { Err(ApiError::not_found("No such image: x")) }, "r2").await;
        assert_eq!(r.status(), 404);
        let r = guarded(async { Ok(body::status(StatusCode::CREATED)) }, "r3").await;
        assert_eq!(r.status(), 201);
    }
}
