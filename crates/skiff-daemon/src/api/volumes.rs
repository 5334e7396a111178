//! `/volumes` endpoints: create, list (filters `dangling`, `driver`, `label`, `name`),
//! inspect, remove (`force`), prune (`label`, `label!`, `all`: without `all` only
//! anonymous volumes go, as API ≥ 1.42), in Docker's JSON shapes.

use std::collections::BTreeMap;

use bytes::Bytes;
use hyper::StatusCode;
use serde_json::{json, Value};

use skiff_engine::volumes::{Volume, VolumeError};

use super::body::{self, Resp};
use super::error::{ApiError, ApiResult, ErrorKind};
use super::filters::{path_match, Filters};
use super::route::Query;
use crate::state::Daemon;

fn api_err(e: VolumeError) -> ApiError {
    let kind = match &e {
        VolumeError::NotFound(_) => ErrorKind::NotFound,
        VolumeError::InUse { .. } => ErrorKind::Conflict,
        VolumeError::Invalid(_) => ErrorKind::InvalidParameter,
        VolumeError::Io { .. } => ErrorKind::System,
    };
    ApiError::new(kind, e.to_string())
}

/// Docker's `Volume` object.
fn view(d: &Daemon, v: &Volume, usage: bool) -> Value {
    let vols = &d.containers.volumes;
    let mut out = json!({
        "CreatedAt": v.created_at,
        "Driver": v.driver,
        "Labels": v.labels,
        "Mountpoint": vols.mountpoint(&v.name),
        "Name": v.name,
        "Options": if v.options.is_empty() { Value::Null } else { json!(v.options) },
        "Scope": "local",
    });
    if usage {
        out["UsageData"] = json!({
            "Size": vols.size(&v.name),
            "RefCount": vols.users(&v.name).len(),
        });
    }
    out
}

/// `POST /volumes/create`.
pub async fn create(d: &Daemon, b: Bytes) -> ApiResult<Resp> {
    #[derive(serde::Deserialize, Default)]
    #[serde(rename_all = "PascalCase", default, deny_unknown_fields)]
    struct Body {
        name: String,
        driver: String,
        driver_opts: Option<BTreeMap<String, String>>,
        labels: Option<BTreeMap<String, String>>,
        #[allow(dead_code)]
        cluster_volume_spec: Option<Value>,
    }
    let req: Body = if b.iter().all(u8::is_ascii_whitespace) {
        Body::default()
    } else {
        serde_json::from_slice(&b)
            .map_err(|e| ApiError::invalid(format!("invalid JSON for volume create: {e}")))?
    };
    let vols = d.containers.volumes.clone();
    let v = tokio::task::spawn_blocking(move || {
        vols.create(
            Some(req.name.as_str()).filter(|n| !n.is_empty()),
            &req.driver,
            req.driver_opts.unwrap_or_default(),
            req.labels.unwrap_or_default(),
        )
    })
    .await
    .map_err(|e| ApiError::system(e.to_string()))?
    .map_err(api_err)?;
    d.containers.events.emit(
        "volume",
        "create",
        &v.name,
        [("driver".to_string(), v.driver.clone())].into(),
    );
    Ok(body::json(StatusCode::CREATED, &view(d, &v, false)))
}

fn matches(d: &Daemon, f: &Filters, v: &Volume) -> ApiResult<bool> {
    if let Some(dangling) = f.bool("dangling")? {
        if d.containers.volumes.users(&v.name).is_empty() != dangling {
            return Ok(false);
        }
    }
    if !f.get("driver").is_empty() && !f.get("driver").contains(&v.driver) {
        return Ok(false);
    }
    if !f.get("name").is_empty()
        && !f
            .get("name")
            .iter()
            .any(|n| v.name.contains(n.as_str()) || path_match(n, &v.name))
    {
        return Ok(false);
    }
    if !f.labels_match("label", &v.labels) {
        return Ok(false);
    }
    if f.get("label!")
        .iter()
        .any(|want| match want.split_once('=') {
            Some((k, val)) => v.labels.get(k).is_some_and(|x| x == val),
            None => v.labels.contains_key(want.as_str()),
        })
    {
        return Ok(false);
    }
    Ok(true)
}

/// `GET /volumes`.
pub async fn list(d: &Daemon, q: Query) -> ApiResult<Resp> {
    let f = Filters::parse(q.get("filters"))?;
    f.validate(&["dangling", "driver", "label", "label!", "name"])?;
    let mut out = Vec::new();
    for v in d.containers.volumes.list() {
        if matches(d, &f, &v)? {
            out.push(view(d, &v, false));
        }
    }
    Ok(body::json(
        StatusCode::OK,
        &json!({"Volumes": out, "Warnings": Value::Null}),
    ))
}

/// `GET /volumes/{name}`.
pub async fn inspect(d: &Daemon, name: String) -> ApiResult<Resp> {
    let v = d.containers.volumes.get(&name).map_err(api_err)?;
    Ok(body::json(StatusCode::OK, &view(d, &v, false)))
}

/// `DELETE /volumes/{name}`.
pub async fn remove(d: &Daemon, name: String, q: Query) -> ApiResult<Resp> {
    let vols = d.containers.volumes.clone();
    let force = q.bool("force");
    let n = name.clone();
    tokio::task::spawn_blocking(move || vols.remove(&n, force))
        .await
        .map_err(|e| ApiError::system(e.to_string()))?
        .map_err(api_err)?;
    d.containers
        .events
        .emit("volume", "destroy", &name, Default::default());
    Ok(body::status(StatusCode::NO_CONTENT))
}

/// `POST /volumes/prune`.
pub async fn prune(d: &Daemon, q: Query) -> ApiResult<Resp> {
    let f = Filters::parse(q.get("filters"))?;
    f.validate(&["label", "label!", "all"])?;
    let all = f.bool("all")?.unwrap_or(false);
    let vols = d.containers.volumes.clone();
    let mut deleted = Vec::new();
    let mut reclaimed = 0u64;
    for v in vols.list() {
        if !vols.users(&v.name).is_empty() || !(all || v.anonymous) {
            continue;
        }
        let lf = Filters(
            f.0.iter()
                .filter(|(k, _)| k.starts_with("label"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        );
        if !matches(d, &lf, &v)? {
            continue;
        }
        let size = vols.size(&v.name);
        let (vs, n) = (vols.clone(), v.name.clone());
        let res = tokio::task::spawn_blocking(move || vs.remove(&n, false))
            .await
            .map_err(|e| ApiError::system(e.to_string()))?;
        if res.is_ok() {
            reclaimed += size;
            d.containers
                .events
                .emit("volume", "destroy", &v.name, Default::default());
            deleted.push(v.name);
        }
    }
    d.containers.events.emit(
        "volume",
        "prune",
        "",
        [("reclaimed".to_string(), reclaimed.to_string())].into(),
    );
    Ok(body::json(
        StatusCode::OK,
        &json!({"VolumesDeleted": if deleted.is_empty() { Value::Null } else { json!(deleted) }, "SpaceReclaimed": reclaimed}),
    ))
}

/// The volumes part of `GET /system/df`.
pub fn df(d: &Daemon) -> Vec<Value> {
    d.containers
        .volumes
        .list()
        .iter()
        .map(|v| view(d, v, true))
        .collect()
}
