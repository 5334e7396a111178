//! Image endpoints that move tarballs, over the engine's save/load/import, plus prune and
//! search:
//!
//! - `GET /images/{name}/get`, `GET /images/get?names=…`: a `docker save` tarball. Names are
//!   resolved before the first byte, so a missing image is a plain 404.
//! - `POST /images/load?quiet=`: a docker-save or OCI tarball in the body. The engine
//!   validates the whole archive before storing anything, so the answer comes after the
//!   load: 400 for a bad tarball (nothing stored), else dockerd's
//!   `{"stream":"Loaded image: busybox:latest\n"}` lines.
//! - `POST /images/create?fromSrc=-|<loopback url>&repo=&tag=&changes=&message=&platform=`:
//!   import, answered `{"status":"sha256:…"}` as dockerd does.
//! - `POST /images/prune?filters=`: dangling / until / label / label!.
//!
//! Each emits Docker's image events (save, load, import, untag, delete, prune).

use std::collections::BTreeMap;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{json, Value};
use skiff_engine::images::{ImportRequest, Loaded, PruneCandidate};
use skiff_registry::Reference;

use super::body::{self, Aborted, Body, Resp};
use super::bridge::{body_reader, drain, BodyReader, ChannelWriter};
use super::error::{ApiError, ApiResult};
use super::filters::Filters;
use super::images::blocking;
use super::pull::JsonMessage;
use super::remote_src::fetch_loopback;
use super::route::Query;
use crate::state::Daemon;

fn emit(d: &Daemon, action: &str, id: &str, name: &str) {
    let mut attrs = BTreeMap::new();
    attrs.insert("name".to_string(), name.to_string());
    d.containers.events.emit("image", action, id, attrs);
}

/// `GET /images/{name}/get` (`name` given) and `GET /images/get?names=…`.
pub async fn save(d: &Daemon, name: Option<String>, q: Query) -> ApiResult<Resp> {
    let names = match name {
        Some(n) => vec![n],
        None => q
            .all("names")
            .into_iter()
            .filter(|n| !n.is_empty())
            .collect(),
    };
    if names.is_empty() {
        return Err(ApiError::invalid("at least one image name is required"));
    }
    let svc = d.images();
    // Resolve first: a missing name is an error status, not a truncated tarball.
    let (svc, ids) = {
        let names = names.clone();
        blocking(move || {
            let mut ids = Vec::new();
            for n in &names {
                ids.push(svc.resolve(n)?.id);
            }
            Ok((svc, ids))
        })
        .await?
    };
    let (mut w, mut rx) = ChannelWriter::new(4);
    tokio::task::spawn_blocking(move || {
        let res = svc
            .save(&names, &mut w)
            .map_err(ApiError::from)
            .and_then(|()| {
                use std::io::Write;
                w.flush()
                    .map_err(|e| ApiError::system(format!("save: {e}")))
            });
        if let Err(e) = res {
            w.fail(e);
        }
    });
    let first = match rx.recv().await {
        Some(Ok(b)) => b,
        Some(Err(e)) => return Err(e),
        None => return Err(ApiError::system("save ended without output")),
    };
    for id in &ids {
        emit(d, "save", id, id);
    }
    let (tx, resp_body) = Body::fallible(4);
    tokio::spawn(async move {
        if tx.send(Ok(first)).await.is_err() {
            return;
        }
        while let Some(m) = rx.recv().await {
            let m = m.map_err(|e| {
                // Once bytes are out, cutting the transfer is how HTTP/1 says "failed".
                tracing::error!(error = %e.message, "save failed mid-stream");
                Aborted(e.message)
            });
            let failed = m.is_err();
            if tx.send(m).await.is_err() {
                tracing::info!("client went away during save");
                return;
            }
            if failed {
                return;
            }
        }
    });
    let mut r = hyper::Response::new(resp_body);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/x-tar"),
    );
    Ok(r)
}

/// Docker's JSON message lines as one buffered body.
fn messages(lines: &[JsonMessage]) -> Resp {
    let mut out = Vec::new();
    for l in lines {
        out.extend_from_slice(&l.line());
    }
    let (tx, b) = Body::channel(1);
    let _ = tx.try_send(Bytes::from(out));
    body::json_stream(b)
}

/// `POST /images/load`.
pub async fn load(d: &Daemon, req: Request<Incoming>) -> ApiResult<Resp> {
    let (reader, pump) = body_reader(req.into_body());
    let svc = d.images();
    let res = blocking(move || {
        let loaded = svc.load(std::io::BufReader::new(reader))?;
        let mut out = Vec::new();
        for l in loaded {
            let id = match &l {
                Loaded::Name(n) => svc.resolve(n)?.id,
                Loaded::Id(id) => id.clone(),
            };
            out.push((l, id));
        }
        Ok(out)
    })
    .await;
    drain(pump).await;
    let loaded = res?;
    let mut lines = Vec::new();
    for (l, id) in loaded {
        emit(d, "load", &id, &id);
        let text = match l {
            Loaded::Name(n) => format!("Loaded image: {n}\n"),
            Loaded::Id(id) => format!("Loaded image ID: {id}\n"),
        };
        lines.push(JsonMessage::stream(text));
    }
    Ok(messages(&lines))
}

/// The import options from the query (`repo` may carry the tag, as the docker CLI sends).
fn import_request(q: &Query) -> ApiResult<ImportRequest> {
    let repo = q.string("repo");
    let tag = q.string("tag");
    let reference = if repo.is_empty() {
        if !tag.is_empty() {
            return Err(ApiError::invalid("import: a tag needs a repository (repo)"));
        }
        None
    } else {
        let r = Reference::parse_normalized_named(&repo)?;
        let r = if tag.is_empty() { r } else { r.retag(&tag)? };
        Some(r.to_string())
    };
    Ok(ImportRequest {
        reference,
        changes: q
            .all("changes")
            .into_iter()
            .filter(|c| !c.trim().is_empty())
            .collect(),
        message: q
            .get("message")
            .filter(|m| !m.is_empty())
            .map(str::to_string),
        platform: q
            .get("platform")
            .filter(|p| !p.is_empty())
            .map(str::to_string),
        source: q.string("fromSrc"),
    })
}

/// `POST /images/create?fromSrc=…`.
pub async fn import(d: &Daemon, q: Query, req: Request<Incoming>) -> ApiResult<Resp> {
    let src = q.string("fromSrc");
    let ireq = match import_request(&q) {
        Ok(r) => r,
        Err(e) => {
            if src == "-" {
                // Let the client finish sending, so it reads this answer.
                let (reader, pump) = body_reader(req.into_body());
                drop(reader);
                drain(pump).await;
            }
            return Err(e);
        }
    };
    let (reader, pump): (BodyReader, _) = if src == "-" {
        body_reader(req.into_body())
    } else {
        let remote = fetch_loopback(&src).await?;
        body_reader(remote)
    };
    let svc = d.images();
    let res = blocking(move || Ok(svc.import(std::io::BufReader::new(reader), &ireq)?)).await;
    drain(pump).await;
    let id = res?;
    emit(d, "import", &id, &id);
    Ok(messages(&[JsonMessage::status(id)]))
}

/// Go's `time.ParseDuration` for the units filters use (`10m`, `1h30m`, `1.5h`).
fn go_duration_secs(s: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter(|&i| i > 0)?;
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += n * mult;
        rest = &rest[unit_end..];
    }
    Some(total)
}

/// An `until` value (a Go duration before now, RFC 3339, or unix seconds) as unix seconds.
pub fn until_secs(v: &str, now: i64) -> ApiResult<i64> {
    if let Some(d) = go_duration_secs(v) {
        return Ok(now - d as i64);
    }
    match super::logs::parse_time(v) {
        Ok(Some(t)) => Ok(t.timestamp()),
        _ => Err(ApiError::invalid(format!(
            "invalid filter 'until={v}': not a duration, RFC 3339 time or unix timestamp"
        ))),
    }
}

fn labels_hit(want: &str, labels: &BTreeMap<String, String>) -> bool {
    match want.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(want),
    }
}

/// `POST /images/prune`.
pub async fn prune(d: &Daemon, q: Query) -> ApiResult<Resp> {
    let f = Filters::parse(q.get("filters"))?;
    f.validate(&["dangling", "until", "label", "label!"])?;
    let all = f.bool("dangling")? == Some(false);
    let now = chrono::Utc::now().timestamp();
    let until = match f.get("until") {
        [] => None,
        [one] => Some(until_secs(one, now)?),
        _ => return Err(ApiError::invalid("filters: more than one until filter")),
    };
    let svc = d.images();
    let cs = d.containers.clone();
    let report = blocking(move || {
        let keep = |c: &PruneCandidate| {
            until.is_none_or(|u| c.created < u)
                && f.get("label").iter().all(|l| labels_hit(l, c.labels))
                && !f.get("label!").iter().any(|l| labels_hit(l, c.labels))
        };
        Ok(svc.prune_matching(all, &|id| cs.image_in_use(id), &keep)?)
    })
    .await?;
    for id in &report.untagged_ids {
        emit(d, "untag", id, id);
    }
    for del in &report.deleted {
        emit(d, "delete", del, del);
    }
    let mut attrs = BTreeMap::new();
    attrs.insert("reclaimed".to_string(), report.space_reclaimed.to_string());
    d.containers.events.emit("image", "prune", "", attrs);
    let mut items: Vec<Value> = report
        .untagged
        .iter()
        .map(|u| json!({"Untagged": u}))
        .collect();
    items.extend(report.deleted.iter().map(|x| json!({"Deleted": x})));
    let deleted = if items.is_empty() {
        Value::Null
    } else {
        Value::Array(items)
    };
    Ok(body::json(
        StatusCode::OK,
        &json!({"ImagesDeleted": deleted, "SpaceReclaimed": report.space_reclaimed}),
    ))
}

/// `GET /images/search`: skiff does not search registries.
pub fn search() -> ApiResult<Resp> {
    Err(ApiError::not_implemented(
        "image search is not supported by skiff: registries offer no search API for it to use",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_go() {
        assert_eq!(go_duration_secs("24h"), Some(86400.0));
        assert_eq!(go_duration_secs("1h30m"), Some(5400.0));
        assert_eq!(go_duration_secs("10s"), Some(10.0));
        assert_eq!(go_duration_secs("1.5h"), Some(5400.0));
        assert_eq!(go_duration_secs("10"), None);
        assert_eq!(go_duration_secs("h"), None);
        assert_eq!(go_duration_secs(""), None);
        assert_eq!(go_duration_secs("5x"), None);
    }

    #[test]
    fn until_values() {
        assert_eq!(until_secs("1h", 10_000).unwrap(), 6400);
        assert_eq!(until_secs("1700000000", 0).unwrap(), 1_700_000_000);
        assert_eq!(
            until_secs("2024-01-02T03:04:05Z", 0).unwrap(),
            1_704_164_645
        );
        assert_eq!(until_secs("yesterday", 0).unwrap_err().status(), 400);
    }

    #[test]
    fn label_filters() {
        let l = BTreeMap::from([("a".to_string(), "1".to_string())]);
        assert!(labels_hit("a", &l) && labels_hit("a=1", &l));
        assert!(!labels_hit("a=2", &l) && !labels_hit("b", &l));
    }
}
