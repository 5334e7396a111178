//! Container endpoints: create, list, inspect, start/stop/restart/kill/pause, wait, attach,
//! logs, resize, top, stats, rename, remove, prune, exec.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{json, Value};
use skiff_engine::containers::exec::ExecConfig;
use skiff_engine::containers::model::{Config, HostConfig};
use skiff_engine::containers::views::ListOptions;
use skiff_engine::Containers;

use super::body::{self, Body, Resp};
use super::error::{ApiError, ApiResult};
use super::filters::Filters;
use super::hijack;
use super::route::{ContainerOp, ExecOp, Query};
use crate::state::Daemon;

fn json_err(what: &str, e: serde_json::Error) -> ApiError {
    ApiError::invalid(format!("invalid {what}: {e}"))
}

/// Splits a create body into Config, HostConfig and NetworkingConfig. Unknown keys in
/// Config and HostConfig are refused; NetworkingConfig is kept as sent (newer clients add
/// fields there).
pub fn parse_create(b: &[u8]) -> ApiResult<(Config, HostConfig, Option<Value>)> {
    if b.iter().all(|c| c.is_ascii_whitespace()) {
        return Err(ApiError::invalid(
            "config cannot be empty in order to create a container",
        ));
    }
    let mut v: Value = serde_json::from_slice(b).map_err(|e| json_err("JSON", e))?;
    strip_nulls(&mut v);
    let Value::Object(mut m) = v else {
        return Err(ApiError::invalid("invalid JSON: want an object"));
    };
    let host = match m.remove("HostConfig") {
        Some(Value::Null) | None => HostConfig::default(),
        Some(h) => serde_json::from_value(h).map_err(|e| json_err("HostConfig", e))?,
    };
    let net = m.remove("NetworkingConfig");
    let config: Config =
        serde_json::from_value(Value::Object(m)).map_err(|e| json_err("Config", e))?;
    Ok((config, host, net))
}

/// Go decodes `null` into a zero value; serde refuses it for plain fields. Object members
/// that are null are dropped (the field's default applies), recursively.
pub fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// A JSON body into `T`, with Go's null handling.
fn decode<T: serde::de::DeserializeOwned>(what: &str, b: &[u8]) -> ApiResult<T> {
    let mut v: Value = serde_json::from_slice(b).map_err(|e| json_err(what, e))?;
    strip_nulls(&mut v);
    serde_json::from_value(v).map_err(|e| json_err(what, e))
}

fn cs(d: &Daemon) -> &Arc<Containers> {
    &d.containers
}

fn query_i64(q: &Query, k: &str) -> ApiResult<Option<i64>> {
    match q.get(k).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| ApiError::invalid(format!("invalid value for {k}: {v:?}"))),
    }
}

/// `POST /containers/create`.
pub async fn create(d: &Daemon, q: Query, body: Bytes) -> ApiResult<Resp> {
    let (config, host, net) = parse_create(&body)?;
    let name = q.get("name").map(str::to_string);
    let images = d.images();
    let c = cs(d).clone();
    let endpoints = net.map(|n| n["EndpointsConfig"].clone());
    let (id, warnings) = tokio::task::spawn_blocking(move || {
        c.create_with_networks(&images, name.as_deref(), config, host, endpoints.as_ref())
    })
    .await
    .map_err(|e| ApiError::system(e.to_string()))??;
    Ok(body::json(
        StatusCode::CREATED,
        &json!({"Id": id, "Warnings": warnings}),
    ))
}

/// `GET /containers/json`.
pub async fn list(d: &Daemon, q: Query) -> ApiResult<Resp> {
    let filters = Filters::parse(q.get("filters"))?;
    let opts = ListOptions {
        all: q.bool("all"),
        limit: query_i64(&q, "limit")?
            .filter(|n| *n > 0)
            .map(|n| n as usize),
        size: q.bool("size"),
        filters: filters.0,
    };
    let c = cs(d).clone();
    let v = tokio::task::spawn_blocking(move || c.list(&opts))
        .await
        .map_err(|e| ApiError::system(e.to_string()))??;
    Ok(body::json(StatusCode::OK, &v))
}

/// `POST /containers/prune`.
pub async fn prune(d: &Daemon, q: Query) -> ApiResult<Resp> {
    let filters = Filters::parse(q.get("filters"))?;
    filters.validate(&["label", "label!", "until"])?;
    let c = cs(d);
    let mut deleted = Vec::new();
    for e in c.all() {
        let rec = e.snapshot();
        if rec.state.running || rec.state.restarting {
            continue;
        }
        let labels = rec.config.labels.clone().unwrap_or_default();
        let has = |f: &String| match f.split_once('=') {
            Some((k, v)) => labels.get(k).map(String::as_str) == Some(v),
            None => labels.contains_key(f),
        };
        if !filters.get("label").iter().all(has) || filters.get("label!").iter().any(has) {
            continue;
        }
        if c.remove(&rec.id, false).await.is_ok() {
            deleted.push(rec.id);
        }
    }
    Ok(body::json(
        StatusCode::OK,
        &json!({"ContainersDeleted": if deleted.is_empty() { Value::Null } else { json!(deleted) }, "SpaceReclaimed": 0}),
    ))
}

/// `/containers/{id}/...`.
pub async fn handle(
    d: &Daemon,
    id: String,
    op: ContainerOp,
    q: Query,
    req: Request<Incoming>,
) -> ApiResult<Resp> {
    use ContainerOp as O;
    let c = cs(d).clone();
    let no_content = || Ok(body::status(StatusCode::NO_CONTENT));
    match op {
        O::Inspect => {
            let size = q.bool("size");
            let v = tokio::task::spawn_blocking(move || c.inspect(&id, size))
                .await
                .map_err(|e| ApiError::system(e.to_string()))??;
            Ok(body::json(StatusCode::OK, &v))
        }
        O::Start => {
            c.start(&id).await?;
            no_content()
        }
        O::Stop => {
            let t = query_i64(&q, "t")?;
            c.stop(&id, q.get("signal"), t).await?;
            no_content()
        }
        O::Restart => {
            let t = query_i64(&q, "t")?;
            c.restart(&id, q.get("signal"), t).await?;
            no_content()
        }
        O::Kill => {
            c.kill(&id, q.get("signal")).await?;
            no_content()
        }
        O::Pause | O::Unpause => {
            c.pause(&id, op == O::Pause).await?;
            no_content()
        }
        O::Rename => {
            let name = q.string("name");
            c.rename(&id, &name)?;
            no_content()
        }
        O::Remove => {
            if q.bool("link") {
                return Err(ApiError::invalid("links are not supported by skiff"));
            }
            c.remove_with_volumes(&id, q.bool("force"), q.bool("v"))
                .await?;
            no_content()
        }
        O::Wait => wait(&c, &id, &q),
        O::Resize => {
            let h = query_i64(&q, "h")?.unwrap_or(0);
            let w = query_i64(&q, "w")?.unwrap_or(0);
            c.resize(&id, h as u32, w as u32).await?;
            Ok(body::status(StatusCode::OK))
        }
        O::Attach => attach(&c, &id, &q, req),
        O::Logs => super::logs::logs(&c, &id, &q),
        O::Top => super::top::top(&c, &id, &q).await,
        O::Stats => super::top::stats(&c, &id, &q).await,
        O::ExecCreate => {
            let b = super::read_json_body(req).await?;
            let cfg: ExecConfig = decode("exec config", &b)?;
            let eid = c.exec_create(&id, cfg)?;
            Ok(body::json(StatusCode::CREATED, &json!({"Id": eid})))
        }
        O::Update => {
            let b = super::read_json_body(req).await?;
            let u: skiff_engine::containers::extra::UpdateConfig = decode("update config", &b)?;
            let w = tokio::task::spawn_blocking(move || c.update(&id, u))
                .await
                .map_err(|e| ApiError::system(e.to_string()))??;
            Ok(body::json(StatusCode::OK, &json!({"Warnings": w})))
        }
        O::Changes => {
            let v = tokio::task::spawn_blocking(move || c.changes(&id))
                .await
                .map_err(|e| ApiError::system(e.to_string()))??;
            Ok(body::json(StatusCode::OK, &v))
        }
        O::Export => {
            c.get(&id)?;
            let (tx, body) = Body::channel(8);
            tokio::task::spawn_blocking(move || {
                let w = ChannelWriter {
                    tx,
                    buf: Vec::new(),
                };
                if let Err(e) = c.export(&id, w) {
                    tracing::warn!(error = %e, "export failed");
                }
            });
            let mut r = body::json_stream(body);
            r.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("application/x-tar"),
            );
            Ok(r)
        }
        O::ArchiveHead | O::ArchiveGet => {
            let path = q
                .get("path")
                .filter(|p| !p.is_empty())
                .ok_or_else(|| ApiError::invalid("bad parameter: 'path' cannot be empty"))?;
            let path = path.to_string();
            if op == O::ArchiveHead {
                let st = tokio::task::spawn_blocking(move || c.archive_stat(&id, &path))
                    .await
                    .map_err(|e| ApiError::system(e.to_string()))??;
                let mut r = body::status(StatusCode::OK);
                path_stat_header(&mut r, &st);
                return Ok(r);
            }
            // Stat first (errors become a status), then stream the tar.
            let (c2, id2, p2) = (c.clone(), id.clone(), path.clone());
            let st = tokio::task::spawn_blocking(move || c2.archive_stat(&id2, &p2))
                .await
                .map_err(|e| ApiError::system(e.to_string()))??;
            let (tx, body) = Body::channel(8);
            tokio::task::spawn_blocking(move || {
                let w = ChannelWriter {
                    tx,
                    buf: Vec::new(),
                };
                if let Err(e) = c.archive_get(&id, &path, w) {
                    tracing::warn!(error = %e, "archive failed");
                }
            });
            let mut r = body::json_stream(body);
            r.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("application/x-tar"),
            );
            path_stat_header(&mut r, &st);
            Ok(r)
        }
        O::ArchivePut => {
            let path = q
                .get("path")
                .filter(|p| !p.is_empty())
                .ok_or_else(|| ApiError::invalid("bad parameter: 'path' cannot be empty"))?
                .to_string();
            c.get(&id)?;
            // The tar is streamed from the request body into the extractor.
            let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
            let job = tokio::task::spawn_blocking(move || {
                c.archive_put(
                    &id,
                    &path,
                    ChannelReader {
                        rx,
                        cur: Bytes::new(),
                    },
                )
            });
            let mut incoming = req.into_body();
            use http_body_util::BodyExt;
            while let Some(f) = incoming.frame().await {
                let f = f.map_err(|e| ApiError::invalid(format!("read request body: {e}")))?;
                if let Ok(data) = f.into_data() {
                    if tx.send(data).await.is_err() {
                        break;
                    }
                }
            }
            drop(tx);
            job.await.map_err(|e| ApiError::system(e.to_string()))??;
            Ok(body::status(StatusCode::OK))
        }
    }
}

fn wait(c: &Arc<Containers>, id: &str, q: &Query) -> ApiResult<Resp> {
    let fut = c.waiter(id, q.get("condition").unwrap_or(""))?;
    let (tx, body) = Body::channel(1);
    tokio::spawn(async move {
        let (code, err) = fut.await;
        let mut v = json!({"StatusCode": code});
        if let Some(e) = err {
            v["Error"] = json!({"Message": e});
        }
        let mut b = serde_json::to_vec(&v).unwrap_or_default();
        b.push(b'\n');
        let _ = tx.send(Bytes::from(b)).await;
    });
    Ok(body::json_stream(body))
}

fn attach(c: &Arc<Containers>, id: &str, q: &Query, req: Request<Incoming>) -> ApiResult<Resp> {
    let e = c.get(id)?;
    let rec = e.snapshot();
    let stdin = q.bool("stdin") && rec.config.open_stdin;
    let (stdout, stderr) = (q.bool("stdout"), q.bool("stderr"));
    let request = json!({"op": "attach", "stdin": stdin, "stdout": stdout, "stderr": stderr});
    let detach = detach_keys(q.get("detachKeys"), stdin && rec.config.tty)?;
    let sock = c.socket(&rec.id);
    let connect: hijack::Connector = if rec.state.running {
        Box::pin(async move {
            skiff_engine::containers::shim::request(&sock, &request)
                .await
                .ok()
                .map(|(_, s)| (s, None))
        })
    } else {
        // Before start: the start connects us before the process runs.
        let (tx, rx) = tokio::sync::oneshot::channel();
        e.pending_attach
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(tx);
        Box::pin(async move {
            let p = rx.await.ok()?;
            let s = skiff_engine::containers::shim::request(&p.socket, &request)
                .await
                .ok()
                .map(|(_, s)| s);
            match s {
                Some(s) => Some((s, Some(p.attached))),
                None => {
                    let _ = p.attached.send(());
                    None
                }
            }
        })
    };
    c.emit_attach(&rec);
    let mut req = req;
    let on = hijack::take_upgrade(&mut req);
    // `logs=1`: what the container wrote so far comes first; `stream=0`: only that.
    let prefix = q.bool("logs").then(|| {
        let (c, id) = (c.clone(), rec.id.clone());
        let opts = skiff_logs::ReadOptions {
            stdout,
            stderr,
            ..Default::default()
        };
        let tty = rec.config.tty;
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let mut out = Vec::new();
                if let Ok((reader, _, _)) = c.logs(&id, opts) {
                    for e in reader.flatten() {
                        if !tty {
                            out.extend_from_slice(&super::logs::frame(e.stream, e.line.len()));
                        }
                        out.extend_from_slice(&e.line);
                    }
                }
                out
            })
            .await
            .unwrap_or_default()
        }) as std::pin::Pin<Box<dyn std::future::Future<Output = Vec<u8>> + Send>>
    });
    let connect: hijack::Connector = if q.get("stream").is_some() && !q.bool("stream") {
        Box::pin(async { None })
    } else {
        connect
    };
    Ok(hijack::serve_with_prefix(
        on,
        rec.config.tty,
        detach,
        prefix,
        connect,
        None,
    ))
}

/// The detach sequence of a session with a terminal and stdin (dockerd watches only those):
/// the client's keys, else Docker's default ctrl-p,ctrl-q.
fn detach_keys(keys: Option<&str>, applies: bool) -> ApiResult<Option<Vec<u8>>> {
    use skiff_engine::containers::detach;
    let keys = match keys.filter(|k| !k.is_empty()) {
        Some(k) => detach::parse_keys(k).map_err(|_| {
            ApiError::new(
                super::error::ErrorKind::InvalidParameter,
                format!("Invalid detach keys ({k}) provided"),
            )
        })?,
        None => detach::DEFAULT_KEYS.to_vec(),
    };
    Ok(applies.then_some(keys))
}

/// `/exec/{id}/...`.
pub async fn exec(
    d: &Daemon,
    id: String,
    op: ExecOp,
    q: Query,
    req: Request<Incoming>,
) -> ApiResult<Resp> {
    let c = cs(d).clone();
    match op {
        ExecOp::Inspect => Ok(body::json(StatusCode::OK, &c.exec_inspect(&id)?)),
        ExecOp::Resize => {
            let h = query_i64(&q, "h")?.unwrap_or(0);
            let w = query_i64(&q, "w")?.unwrap_or(0);
            c.exec_resize(&id, h as u32, w as u32).await?;
            Ok(body::status(StatusCode::OK))
        }
        ExecOp::Start => {
            let mut req = req;
            let on = hijack::take_upgrade(&mut req);
            let b = super::read_json_body(req).await?;
            #[derive(serde::Deserialize, Default)]
            #[serde(rename_all = "PascalCase", default)]
            struct StartBody {
                detach: bool,
                tty: Option<bool>,
                #[allow(dead_code)]
                console_size: Option<[u32; 2]>,
            }
            let sb: StartBody = if b.iter().all(|c| c.is_ascii_whitespace()) {
                StartBody::default()
            } else {
                serde_json::from_slice(&b).map_err(|e| json_err("exec start config", e))?
            };
            let info = c.exec_inspect(&id)?;
            if info["Running"] == json!(true) || !info["ExitCode"].is_null() {
                return Err(ApiError::new(
                    super::error::ErrorKind::Conflict,
                    format!("Error: Exec command {id} has already run"),
                ));
            }
            let cid = info["ContainerID"].as_str().unwrap_or_default().to_string();
            let ct = c.get(&cid)?.snapshot();
            if !ct.state.running || ct.state.paused {
                return Err(ApiError::new(
                    super::error::ErrorKind::Conflict,
                    format!("Container {cid} is not running"),
                ));
            }
            let tty = sb.tty.unwrap_or(false) || info["ProcessConfig"]["tty"] == json!(true);
            if sb.detach {
                drop(c.exec_start(&id, Some(tty)).await?);
                return Ok(body::status(StatusCode::OK));
            }
            // As dockerd: the 101 answer first, then the process starts (clients that read
            // the answer through a buffer lose bytes that arrive with it); a process that
            // cannot start is reported in the stream, its exit code (126/127) in inspect.
            let (c1, id1) = (c.clone(), id.clone());
            let connect: hijack::Connector = Box::pin(async move {
                match c1.exec_start(&id1, Some(tty)).await {
                    Ok(s) => Some((s, None)),
                    Err(err) => {
                        let (ours, theirs) = tokio::net::UnixStream::pair().ok()?;
                        let text = format!("OCI runtime exec failed: {err}: unknown\r\n");
                        let mut b = Vec::new();
                        if !tty {
                            b.extend_from_slice(&super::logs::frame(
                                skiff_logs::Stream::Stdout,
                                text.len(),
                            ));
                        }
                        b.extend_from_slice(text.as_bytes());
                        tokio::spawn(async move {
                            use tokio::io::AsyncWriteExt;
                            let mut ours = ours;
                            let _ = ours.write_all(&b).await;
                            let _ = ours.shutdown().await;
                        });
                        Some((theirs, None))
                    }
                }
            });
            let c2 = c.clone();
            let id2 = id.clone();
            let after: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> =
                Box::pin(async move {
                    let _ = c2.exec_exit_code(&id2).await;
                });
            let detach = detach_keys(info["DetachKeys"].as_str(), tty)?;
            Ok(hijack::serve(on, tty, detach, connect, Some(after)))
        }
    }
}

/// How long a stats stream waits between samples.
pub const STATS_INTERVAL: Duration = Duration::from_secs(1);

/// A blocking writer feeding a streamed body in 64 KiB chunks.
pub struct ChannelWriter {
    pub tx: tokio::sync::mpsc::Sender<Bytes>,
    pub buf: Vec<u8>,
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= 64 * 1024 {
            self.flush()?;
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let b = Bytes::from(std::mem::take(&mut self.buf));
        self.tx
            .blocking_send(b)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl Drop for ChannelWriter {
    fn drop(&mut self) {
        let _ = std::io::Write::flush(self);
    }
}

fn path_stat_header(r: &mut Resp, st: &skiff_engine::containers::archive::PathStat) {
    use base64::Engine as _;
    let j = serde_json::to_vec(st).unwrap_or_default();
    let b = base64::engine::general_purpose::STANDARD.encode(j);
    if let Ok(v) = hyper::header::HeaderValue::from_str(&b) {
        r.headers_mut().insert("X-Docker-Container-Path-Stat", v);
    }
}

/// A blocking reader over body chunks sent from the async side.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<Bytes>,
    cur: Bytes,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.cur = b,
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.cur.len());
        out[..n].copy_from_slice(&self.cur[..n]);
        self.cur = self.cur.slice(n..);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the docker CLI 28.2 sends for
    /// `docker run -d --name x -e A=1 -p 8080:80 -v /tmp:/data --memory 64m --restart on-failure:3 --init busybox sleep 1`
    /// (captured from the real CLI). Newer clients add fields to NetworkingConfig.
    const DOCKER_28_CREATE: &str = include_str!("testdata/docker-28-create.json");

    #[test]
    fn docker_cli_create_body_parses() {
        let (c, h, net) = parse_create(DOCKER_28_CREATE.as_bytes()).unwrap();
        assert_eq!(c.image, "busybox");
        assert_eq!(
            c.cmd.as_deref(),
            Some(&["sleep".to_string(), "1".to_string()][..])
        );
        assert_eq!(h.memory, 64 << 20);
        assert_eq!(h.restart_policy.name, "on-failure");
        assert_eq!(h.restart_policy.maximum_retry_count, 3);
        assert_eq!(h.init, Some(true));
        assert_eq!(h.binds.as_deref(), Some(&["/tmp:/data".to_string()][..]));
        assert!(net.is_some());
    }

    #[test]
    fn unknown_and_malformed_fields_are_refused_with_their_name() {
        let e = parse_create(br#"{"Image":"x","Cmd":"notalist"}"#).unwrap_err();
        assert_eq!(e.status(), 400);
        let e = parse_create(br#"{"Image":"x","Foo":1}"#).unwrap_err();
        assert!(e.message.contains("Foo"), "{}", e.message);
        let e = parse_create(br#"{"Image":"x","HostConfig":{"Privilegd":true}}"#).unwrap_err();
        assert!(e.message.contains("Privilegd"), "{}", e.message);
        assert_eq!(parse_create(b"").unwrap_err().status(), 400);
        assert_eq!(parse_create(b"[1]").unwrap_err().status(), 400);
        assert_eq!(parse_create(b"{\"Image\":").unwrap_err().status(), 400);
    }
}
