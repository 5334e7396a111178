//! `POST /images/{name}/push?tag=…`: a push, answered as Docker's JSON message stream,
//! mirroring [`super::pull`]:
//!
//! ```text
//! {"status":"The push refers to repository [127.0.0.1:5000/x]"}
//! {"status":"Preparing","progressDetail":{},"id":"3d2430f2c0d4"}
//! {"status":"Pushing","progressDetail":{"current":…,"total":…},"progress":"[==> ] …","id":…}
//! {"status":"Pushed","progressDetail":{},"id":"3d2430f2c0d4"}   (or Layer already exists,
//!                                                                  Mounted from <repo>)
//! {"status":"latest: digest: sha256:… size: 527"}
//! {"progressDetail":{},"aux":{"Tag":"latest","Digest":"sha256:…","Size":527}}
//! ```
//! Until the engine has found the image nothing is sent, so a missing image is a plain 404
//! as from dockerd; after that, errors arrive as `errorDetail`. An empty `tag` pushes every
//! tag of the repository (the API's rule, `docker push --all-tags`).

use serde_json::json;
use skiff_engine::images::{PushEvent, PushResult};
use skiff_registry::{Reference, Registry};
use tokio::sync::mpsc;

use super::auth::decode_header;
use super::body::{self, Body, Resp};
use super::error::{ApiError, ApiResult};
use super::pull::{plain, progress_msg, JsonMessage, ProgressDetail};
use super::route::Query;
use crate::state::{registry_config, Daemon};

/// A push event as Docker's messages (the final one is followed by the aux line).
pub fn messages(ev: PushEvent) -> Vec<JsonMessage> {
    match ev {
        PushEvent::Start { repository } => vec![JsonMessage::status(format!(
            "The push refers to repository [{repository}]"
        ))],
        PushEvent::Preparing { id } => vec![plain("Preparing", id)],
        PushEvent::Pushing { id, current, total } => {
            vec![progress_msg("Pushing", id, current, total)]
        }
        PushEvent::Pushed { id } => vec![plain("Pushed", id)],
        PushEvent::Mounted { id, from } => vec![plain(&format!("Mounted from {from}"), id)],
        PushEvent::AlreadyExists { id } => vec![plain("Layer already exists", id)],
        PushEvent::Done { tag, digest, size } => vec![
            JsonMessage::status(format!("{tag}: digest: {digest} size: {size}")),
            JsonMessage {
                progress_detail: Some(ProgressDetail::default()),
                aux: Some(json!({"Tag": tag, "Digest": digest, "Size": size})),
                ..Default::default()
            },
        ],
    }
}

/// What to push: `name:tag`, or with no tag every tag of the repository.
pub fn push_target(name: &str, tag: &str) -> ApiResult<(String, bool)> {
    let r = Reference::parse_normalized_named(name)?;
    if r.digest().is_some() {
        return Err(ApiError::invalid(format!(
            "cannot push a digest reference: {name}"
        )));
    }
    if !tag.is_empty() {
        return Ok((r.retag(tag)?.to_string(), false));
    }
    match r.tag() {
        Some(_) => Ok((r.to_string(), false)),
        None => Ok((r.name(), true)),
    }
}

enum Msg {
    Event(PushEvent),
    Done(Result<Vec<PushResult>, ApiError>),
}

/// `POST /images/{name}/push`.
pub async fn push(
    d: &Daemon,
    name: String,
    q: Query,
    auth_header: Option<String>,
) -> ApiResult<Resp> {
    let (target, all_tags) = push_target(&name, &q.string("tag"))?;
    let mut svc = d.images();
    if let Some(creds) = auth_header
        .as_deref()
        .map(decode_header)
        .transpose()?
        .flatten()
    {
        let r = Reference::parse_normalized_named(&target)?;
        let rc = registry_config(&d.config()).map_err(|e| ApiError::system(e.to_string()))?;
        let reg = Registry::new(rc).map_err(|e| ApiError::system(e.to_string()))?;
        reg.set_credentials(r.domain(), Some(creds));
        svc.registry = reg;
    }
    tracing::info!(image = %target, all_tags, "push");
    let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
    let ev_tx = tx.clone();
    let task = tokio::spawn(async move {
        let progress = move |ev: PushEvent| {
            let _ = ev_tx.send(Msg::Event(ev));
        };
        svc.push(&target, all_tags, &progress).await
    });
    let watcher = tokio::spawn(async move {
        let res = match task.await {
            Ok(r) => r.map_err(ApiError::from),
            Err(e) if e.is_cancelled() => Err(ApiError::system("push cancelled")),
            Err(e) => {
                tracing::error!(error = %e, "push task panicked");
                Err(ApiError::system("internal error during push"))
            }
        };
        let _ = tx.send(Msg::Done(res));
    });
    let abort = watcher.abort_handle();

    // Nothing is sent until the engine has found the image.
    let first = match rx.recv().await {
        Some(Msg::Done(Err(e))) => return Err(e),
        Some(m) => m,
        None => return Err(ApiError::system("push ended without a result")),
    };
    let (out, resp_body) = Body::channel(64);
    let containers = d.containers.clone();
    tokio::spawn(async move {
        let mut pending = Some(first);
        loop {
            let m = match pending.take() {
                Some(m) => m,
                None => match rx.recv().await {
                    Some(m) => m,
                    None => break,
                },
            };
            let (lines, last) = match m {
                Msg::Event(ev) => (messages(ev), false),
                Msg::Done(Ok(results)) => {
                    for r in results {
                        if let Ok(p) = Reference::parse(&r.reference) {
                            let mut attrs = std::collections::BTreeMap::new();
                            attrs.insert("name".to_string(), p.familiar_name());
                            containers
                                .events
                                .emit("image", "push", &p.familiar(), attrs);
                        }
                    }
                    (Vec::new(), true)
                }
                Msg::Done(Err(e)) => {
                    tracing::warn!(error = %e.message, "push failed");
                    (vec![JsonMessage::error(e.message)], true)
                }
            };
            for l in lines {
                if out.send(l.line()).await.is_err() {
                    tracing::info!("client went away: cancelling the push");
                    abort.abort();
                    return;
                }
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

    fn text(ms: Vec<JsonMessage>) -> String {
        ms.iter()
            .map(|m| String::from_utf8(m.line().to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn docker_shapes() {
        assert_eq!(
            text(messages(PushEvent::Start {
                repository: "127.0.0.1:5000/x".into()
            })),
            "{\"status\":\"The push refers to repository [127.0.0.1:5000/x]\"}\r\n"
        );
        assert_eq!(
            text(messages(PushEvent::Mounted {
                id: "abc".into(),
                from: "a/b".into()
            })),
            "{\"status\":\"Mounted from a/b\",\"progressDetail\":{},\"id\":\"abc\"}\r\n"
        );
        let done = text(messages(PushEvent::Done {
            tag: "v1".into(),
            digest: "sha256:00".into(),
            size: 527,
        }));
        assert_eq!(
            done,
            "{\"status\":\"v1: digest: sha256:00 size: 527\"}\r\n{\"progressDetail\":{},\"aux\":{\"Digest\":\"sha256:00\",\"Size\":527,\"Tag\":\"v1\"}}\r\n"
        );
    }

    #[test]
    fn targets() {
        assert_eq!(
            push_target("127.0.0.1:5000/x", "latest").unwrap(),
            ("127.0.0.1:5000/x:latest".to_string(), false)
        );
        assert_eq!(
            push_target("127.0.0.1:5000/x", "").unwrap(),
            ("127.0.0.1:5000/x".to_string(), true)
        );
        assert_eq!(
            push_target("127.0.0.1:5000/x:v2", "").unwrap(),
            ("127.0.0.1:5000/x:v2".to_string(), false)
        );
        assert_eq!(push_target("Bad//x", "").unwrap_err().status(), 400);
    }
}
