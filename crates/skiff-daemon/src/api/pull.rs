//! `POST /images/create?fromImage=…&tag=…&platform=…`: a pull, answered as Docker's JSON
//! message stream (`{"status":"Pulling fs layer","progressDetail":{},"id":"…"}`, progress
//! bars, `Digest: …`, `Status: …`).
//!
//! Until the registry has answered with a manifest nothing is sent, so an unknown image or
//! refused credentials get a plain error status (404, 401, ...) as from dockerd; after that,
//! errors arrive in the stream as `{"errorDetail":{"message":…},"error":…}`. A client that
//! goes away cancels the pull (what it stored stays reusable; see the engine's pull).

use bytes::Bytes;
use serde::Serialize;
use skiff_engine::images::{LayerStatus, PullEvent, PullResult};
use skiff_engine::ImageService;
use skiff_registry::{Platform, Reference, Registry};
use tokio::sync::mpsc;

use super::auth::decode_header;
use super::body::{self, Body, Resp};
use super::error::{ApiError, ApiResult, ErrorKind};
use super::route::Query;
use crate::state::{registry_config, Daemon};

/// One line of Docker's JSON message stream.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JsonMessage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress_detail: Option<ProgressDetail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_detail: Option<ErrorDetail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Extra data after an operation (`{"Tag":…,"Digest":…,"Size":…}` after a push).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aux: Option<serde_json::Value>,
}

#[derive(Debug, Default, Serialize)]
pub struct ProgressDetail {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct ErrorDetail {
    pub message: String,
}

impl JsonMessage {
    pub fn status(s: impl Into<String>) -> Self {
        JsonMessage {
            status: Some(s.into()),
            ..Default::default()
        }
    }
    /// Output text (`{"stream":"Loaded image: busybox:latest\n"}`).
    pub fn stream(s: impl Into<String>) -> Self {
        JsonMessage {
            stream: Some(s.into()),
            ..Default::default()
        }
    }
    pub fn error(msg: impl Into<String>) -> Self {
        let m = msg.into();
        JsonMessage {
            error_detail: Some(ErrorDetail { message: m.clone() }),
            error: Some(m),
            ..Default::default()
        }
    }
    pub fn line(&self) -> Bytes {
        let mut v = serde_json::to_vec(self).unwrap_or_default();
        v.extend_from_slice(b"\r\n");
        Bytes::from(v)
    }
}

/// go-units' `HumanSize`: decimal units, 4 significant digits (`1.235MB`, `512B`).
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    let digits = if v < 1.0 {
        1
    } else {
        v.log10().floor() as i32 + 1
    };
    let decimals = (4 - digits).max(0) as usize;
    let mut s = format!("{v:.decimals$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{s}{}", UNITS[i])
}

/// Docker's progress text: `[=====>      ]  1.235MB/4.5MB`.
pub fn progress_bar(current: u64, total: u64) -> String {
    if total == 0 {
        return format!("{:>8}", human_size(current));
    }
    let pct = (((current as f64 / total as f64) * 100.0) as usize / 2).min(50);
    let bar = format!("[{}>{}] ", "=".repeat(pct), " ".repeat(50 - pct));
    let numbers = if current > total {
        format!("{:>8}", human_size(current))
    } else {
        format!("{:>8}/{}", human_size(current), human_size(total))
    };
    bar + &numbers
}

pub fn progress_msg(status: &str, id: String, current: u64, total: u64) -> JsonMessage {
    JsonMessage {
        status: Some(status.into()),
        progress_detail: Some(ProgressDetail {
            current: Some(current),
            total: Some(total),
        }),
        progress: Some(progress_bar(current, total)),
        id: Some(id),
        ..Default::default()
    }
}

pub fn plain(status: &str, id: String) -> JsonMessage {
    JsonMessage {
        status: Some(status.into()),
        progress_detail: Some(ProgressDetail::default()),
        id: Some(id),
        ..Default::default()
    }
}

/// A pull event as Docker's message.
pub fn message(ev: PullEvent, repo_path: &str) -> JsonMessage {
    match ev {
        PullEvent::Start { tag, .. } => JsonMessage {
            status: Some(format!("Pulling from {repo_path}")),
            id: Some(tag),
            ..Default::default()
        },
        PullEvent::Layer { id, status } => match status {
            LayerStatus::Waiting => plain("Pulling fs layer", id),
            LayerStatus::AlreadyExists => plain("Already exists", id),
            LayerStatus::Downloading { current, total } => {
                progress_msg("Downloading", id, current, total)
            }
            LayerStatus::DownloadComplete => plain("Download complete", id),
            LayerStatus::Extracting { current, total } => {
                progress_msg("Extracting", id, current, total)
            }
            LayerStatus::PullComplete => plain("Pull complete", id),
        },
        PullEvent::Done { digest, .. } => JsonMessage::status(format!("Digest: {digest}")),
    }
}

enum Msg {
    Event(PullEvent),
    Done(Result<PullResult, ApiError>),
}

/// The reference to pull from `fromImage` and `tag` (a tag or a digest).
pub fn pull_reference(from: &str, tag: &str) -> ApiResult<Reference> {
    if from.is_empty() {
        return Err(ApiError::invalid("fromImage or fromSrc is required"));
    }
    let r = Reference::parse(from)?;
    if tag.is_empty() {
        return Ok(r);
    }
    if tag.contains(':') {
        let d: skiff_registry::Digest = tag
            .parse()
            .map_err(|e| ApiError::invalid(format!("invalid digest {tag:?}: {e}")))?;
        return Ok(r.with_digest(d));
    }
    Ok(r.retag(tag)?)
}

/// Refused credentials on a pull are dockerd's "pull access denied" (404): a 401 would make
/// the docker CLI prompt for a login in the middle of `pull`.
fn denied(e: ApiError, name: &str) -> ApiError {
    match e.kind {
        ErrorKind::Unauthorized | ErrorKind::Forbidden => ApiError::not_found(format!(
            "pull access denied for {name}, repository does not exist or may require 'docker login': {}",
            e.message
        )),
        _ => e,
    }
}

/// `POST /images/create?fromImage=…` (a `fromSrc` import goes to [`super::images_io`]).
pub async fn create(d: &Daemon, q: Query, auth_header: Option<String>) -> ApiResult<Resp> {
    let r = pull_reference(&q.string("fromImage"), &q.string("tag"))?;
    let platform = match q.get("platform").filter(|p| !p.is_empty()) {
        Some(p) => p
            .parse::<Platform>()
            .map_err(|e| ApiError::invalid(e.to_string()))?,
        None => Platform::host(),
    };
    let mut svc: ImageService = d.images();
    if let Some(creds) = auth_header
        .as_deref()
        .map(decode_header)
        .transpose()?
        .flatten()
    {
        // A client's credentials apply to its own pull only: a private registry client.
        let rc = registry_config(&d.config()).map_err(|e| ApiError::system(e.to_string()))?;
        let reg = Registry::new(rc).map_err(|e| ApiError::system(e.to_string()))?;
        reg.set_credentials(r.domain(), Some(creds));
        svc.registry = reg;
    }
    let name = r.to_string();
    let familiar = r.familiar();
    let repo_path = r.repository().to_string();
    tracing::info!(image = %name, platform = %platform, "pull");

    let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
    let ev_tx = tx.clone();
    let task = tokio::spawn(async move {
        let progress = move |ev: PullEvent| {
            let _ = ev_tx.send(Msg::Event(ev));
        };
        svc.pull(&name, &platform, &progress).await
    });
    let denied_name = r.familiar_name();
    let watcher = tokio::spawn(async move {
        let res = match task.await {
            Ok(r) => r.map_err(|e| denied(ApiError::from(e), &denied_name)),
            Err(e) if e.is_cancelled() => Err(ApiError::system("pull cancelled")),
            Err(e) => {
                tracing::error!(error = %e, "pull task panicked");
                Err(ApiError::system("internal error during pull"))
            }
        };
        let _ = tx.send(Msg::Done(res));
    });
    let abort = watcher.abort_handle();

    // Hold the stream back until the registry has answered.
    let mut held = Vec::new();
    loop {
        match rx.recv().await {
            Some(Msg::Event(ev @ PullEvent::Start { .. })) => held.push(Msg::Event(ev)),
            Some(Msg::Done(Err(e))) => return Err(e),
            Some(m) => {
                held.push(m);
                break;
            }
            None => return Err(ApiError::system("pull ended without a result")),
        }
    }

    let (out, resp_body) = Body::channel(64);
    let containers = d.containers.clone();
    let pulled = (r.familiar(), r.familiar_name());
    tokio::spawn(async move {
        let mut pending = held.into_iter();
        loop {
            let m = match pending.next() {
                Some(m) => m,
                None => match rx.recv().await {
                    Some(m) => m,
                    None => break,
                },
            };
            let (line, last) = match m {
                Msg::Event(ev) => (message(ev, &repo_path).line(), false),
                Msg::Done(Ok(res)) => {
                    // dockerd's pull event: the reference as ID, its repository as name.
                    let attrs =
                        std::collections::BTreeMap::from([("name".to_string(), pulled.1.clone())]);
                    containers.events.emit("image", "pull", &pulled.0, attrs);
                    let s = if res.fresh {
                        format!("Status: Downloaded newer image for {familiar}")
                    } else {
                        format!("Status: Image is up to date for {familiar}")
                    };
                    (JsonMessage::status(s).line(), true)
                }
                Msg::Done(Err(e)) => {
                    tracing::warn!(error = %e.message, "pull failed");
                    (JsonMessage::error(e.message).line(), true)
                }
            };
            if out.send(line).await.is_err() {
                tracing::info!("client went away: cancelling the pull");
                abort.abort();
                break;
            }
            if last {
                break;
            }
        }
    });
    Ok(body::json_stream(resp_body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_go_units() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(1000), "1kB");
        assert_eq!(human_size(12_345), "12.35kB");
        assert_eq!(human_size(1_234_567), "1.235MB");
        assert_eq!(human_size(2_200_000), "2.2MB");
    }

    #[test]
    fn messages() {
        let m = message(
            PullEvent::Layer {
                id: "abc".into(),
                status: LayerStatus::Downloading {
                    current: 50,
                    total: 100,
                },
            },
            "library/busybox",
        );
        let v: serde_json::Value = serde_json::from_slice(&m.line()).unwrap();
        assert_eq!(v["status"], "Downloading");
        assert_eq!(v["progressDetail"]["current"], 50);
        assert_eq!(v["progressDetail"]["total"], 100);
        assert_eq!(v["id"], "abc");
        let bar = v["progress"].as_str().unwrap();
        assert!(bar.starts_with(&format!("[{}>", "=".repeat(25))), "{bar}");
        assert!(bar.ends_with("    50B/100B"), "{bar}");
        let s = String::from_utf8(
            message(
                PullEvent::Start {
                    repository: "busybox".into(),
                    tag: "latest".into(),
                },
                "library/busybox",
            )
            .line()
            .to_vec(),
        )
        .unwrap();
        assert_eq!(
            s,
            "{\"status\":\"Pulling from library/busybox\",\"id\":\"latest\"}\r\n"
        );
        let e = String::from_utf8(JsonMessage::error("boom").line().to_vec()).unwrap();
        assert_eq!(
            e,
            "{\"errorDetail\":{\"message\":\"boom\"},\"error\":\"boom\"}\r\n"
        );
        let w = String::from_utf8(plain("Pulling fs layer", "x".into()).line().to_vec()).unwrap();
        assert_eq!(
            w,
            "{\"status\":\"Pulling fs layer\",\"progressDetail\":{},\"id\":\"x\"}\r\n"
        );
    }

    #[test]
    fn references() {
        assert_eq!(
            pull_reference("busybox", "latest").unwrap().to_string(),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            pull_reference("127.0.0.1:5000/a/b", "v1")
                .unwrap()
                .to_string(),
            "127.0.0.1:5000/a/b:v1"
        );
        let d = format!("sha256:{}", "a".repeat(64));
        assert!(pull_reference("busybox", &d)
            .unwrap()
            .to_string()
            .ends_with(&format!("@{d}")));
        assert_eq!(pull_reference("", "x").unwrap_err().status(), 400);
        assert_eq!(pull_reference("Bad//Name", "").unwrap_err().status(), 400);
    }
}
