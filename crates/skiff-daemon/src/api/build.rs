//! `POST /build` (the classic builder's API, as `DOCKER_BUILDKIT=0 docker build` and docker-py
//! use it) and `POST /build/prune`.
//!
//! The body is the context as a tar (plain or gzip), unpacked while it arrives into a scratch
//! directory under the data root; the answer is Docker's JSON message stream:
//! `{"stream":"Step 1/4 : FROM busybox\n"}` lines, `{"aux":{"ID":"sha256:…"}}` for the result,
//! and `{"errorDetail":{"message":…},"error":…}` when the build fails (a bad Dockerfile says
//! `Dockerfile:N: …`, a failing RUN `The command '…' returned a non-zero code: N`). Query
//! parameters are checked before anything streams (a bad one is a 400). A client that goes
//! away stops the build at its next step.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{json, Value};
use skiff_build::context::Limits;
use skiff_build::BuildContext;
use skiff_engine::build::{BuildNetwork, BuildOutput, BuildRequest, Builder};
use tokio::sync::mpsc;

use super::body::{self, Body, Resp};
use super::error::{ApiError, ApiResult};
use super::images::blocking;
use super::route::Query;
use crate::state::Daemon;

/// The build request of a query string.
pub fn parse_query(q: &Query) -> ApiResult<BuildRequest> {
    if q.get("remote").is_some_and(|r| !r.is_empty()) {
        return Err(ApiError::not_implemented(
            "remote build contexts (remote=) are not supported by skiff yet",
        ));
    }
    let json_map = |key: &str| -> ApiResult<BTreeMap<String, String>> {
        let Some(s) = q.get(key).filter(|s| !s.trim().is_empty()) else {
            return Ok(BTreeMap::new());
        };
        let v: BTreeMap<String, Option<String>> = serde_json::from_str(s)
            .map_err(|e| ApiError::invalid(format!("invalid {key} {s:?}: {e}")))?;
        // A null value: the client had no value for the name (Docker skips it too).
        Ok(v.into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect())
    };
    let network = BuildNetwork::parse(q.get("networkmode").unwrap_or(""))
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    Ok(BuildRequest {
        dockerfile: q.string("dockerfile"),
        tags: q
            .0
            .iter()
            .filter(|(k, v)| k == "t" && !v.is_empty())
            .map(|(_, v)| v.clone())
            .collect(),
        build_args: json_map("buildargs")?,
        target: q
            .get("target")
            .filter(|t| !t.is_empty())
            .map(str::to_string),
        no_cache: q.bool("nocache"),
        pull: q.bool("pull"),
        labels: json_map("labels")?,
        quiet: q.bool("q"),
        network,
    })
}

/// A blocking reader over the request body's chunks.
struct BodyReader {
    rx: mpsc::Receiver<Result<Bytes, String>>,
    cur: Bytes,
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur = self.cur.slice(n..);
        Ok(n)
    }
}

/// The build's output as JSON stream lines.
struct StreamOut {
    tx: mpsc::Sender<Bytes>,
    gone: AtomicBool,
}

fn line(v: &Value) -> Bytes {
    let mut b = serde_json::to_vec(v).unwrap_or_default();
    b.extend_from_slice(b"\r\n");
    Bytes::from(b)
}

impl StreamOut {
    fn send(&self, v: Value) {
        if self.tx.blocking_send(line(&v)).is_err() {
            self.gone.store(true, Ordering::Relaxed);
        }
    }
}

impl BuildOutput for StreamOut {
    fn stream(&self, text: &str) {
        self.send(json!({ "stream": text }));
    }
    fn cancelled(&self) -> bool {
        self.gone.load(Ordering::Relaxed)
    }
}

fn error_line(msg: &str) -> Value {
    json!({"errorDetail": {"message": msg}, "error": msg})
}

/// `POST /build`.
pub async fn build(d: &Daemon, q: Query, req: Request<Incoming>) -> ApiResult<Resp> {
    let breq = parse_query(&q)?;
    let cfg = d.config();
    let builder = Builder::new(d.images(), cfg.engine.exec_root.join("build-runtime"))
        .with_containers(d.containers.clone());
    let tmp = cfg.engine.data_root.join("tmp");
    let (btx, brx) = mpsc::channel::<Result<Bytes, String>>(16);
    let mut incoming = req.into_body();
    tokio::spawn(async move {
        while let Some(frame) = incoming.frame().await {
            let msg = match frame {
                Ok(f) => match f.into_data() {
                    Ok(b) => Ok(b),
                    Err(_) => continue,
                },
                Err(e) => Err(format!("read build context: {e}")),
            };
            let stop = msg.is_err();
            if btx.send(msg).await.is_err() || stop {
                break;
            }
        }
    });
    let (tx, rx) = Body::channel(64);
    tracing::info!(tags = ?breq.tags, dockerfile = %breq.dockerfile, "build");
    tokio::task::spawn_blocking(move || {
        let out = StreamOut {
            tx,
            gone: AtomicBool::new(false),
        };
        let _ = std::fs::create_dir_all(&tmp);
        let dockerfile = if breq.dockerfile.is_empty() {
            "Dockerfile".to_string()
        } else {
            breq.dockerfile.clone()
        };
        let reader = BodyReader {
            rx: brx,
            cur: Bytes::new(),
        };
        let res = BuildContext::from_tar(reader, &dockerfile, &tmp, Limits::default())
            .map_err(skiff_engine::build::BuildError::from)
            .and_then(|ctx| builder.build(&ctx, &breq, &out));
        match res {
            Ok(r) => {
                out.send(json!({"aux": {"ID": r.id}}));
                if breq.quiet {
                    out.send(json!({"stream": format!("{}\n", r.id)}));
                }
            }
            Err(e) => {
                tracing::info!(error = %e, "build failed");
                out.send(error_line(&e.to_string()));
            }
        }
    });
    Ok(body::json_stream(rx))
}

/// `POST /build/prune`.
pub async fn prune(d: &Daemon) -> ApiResult<Resp> {
    let cache = skiff_engine::build::BuildCache::new(d.images().store.clone());
    let r = blocking(move || cache.prune().map_err(|e| ApiError::system(e.to_string()))).await?;
    Ok(body::json(
        StatusCode::OK,
        &json!({"CachesDeleted": r.deleted, "SpaceReclaimed": r.space_reclaimed}),
    ))
}

/// The `BuildCache` records of `system df`.
pub fn df_records(d: &Daemon) -> Vec<Value> {
    let cache = skiff_engine::build::BuildCache::new(d.images().store.clone());
    cache
        .usage()
        .into_iter()
        .map(|r| {
            json!({
                "ID": r.id, "Parent": "", "Parents": [], "Type": r.kind,
                "Description": r.description, "InUse": r.in_use, "Shared": false,
                "Size": r.size, "CreatedAt": r.created, "LastUsedAt": r.last_used,
                "UsageCount": 0,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query() {
        let q = Query::parse(Some(
            "t=a&t=b:1&dockerfile=sub%2FDf&buildargs=%7B%22A%22%3A%221%22%2C%22B%22%3Anull%7D&nocache=1&q=1&networkmode=host&labels=%7B%22l%22%3A%22v%22%7D",
        ));
        let r = parse_query(&q).unwrap();
        assert_eq!(r.tags, ["a", "b:1"]);
        assert_eq!(r.dockerfile, "sub/Df");
        assert_eq!(r.build_args.len(), 1);
        assert!(r.no_cache && r.quiet && !r.pull);
        assert_eq!(r.network, BuildNetwork::Host);
        assert_eq!(r.labels["l"], "v");
        assert!(parse_query(&Query::parse(Some("buildargs=nope"))).is_err());
        assert!(parse_query(&Query::parse(Some("networkmode=container:x"))).is_err());
        let r = parse_query(&Query::parse(Some("networkmode=bridge"))).unwrap();
        assert_eq!(r.network, BuildNetwork::Named("bridge".into()));
    }
}
