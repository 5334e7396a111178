//! `/networks` endpoints over skiff-net: list (filters `driver`, `id`, `label`, `name`,
//! `scope`, `type`, `dangling`), inspect, create, remove, prune, connect, disconnect, in
//! Docker's JSON shapes. With networking off (`"bridge": "none"`) only the predefined
//! `none` and `host` networks exist.

use bytes::Bytes;
use hyper::StatusCode;
use serde_json::{json, Value};

use skiff_net::{CreateNetwork, NetworkError, NetworkResource};

use super::body::{self, Resp};
use super::error::{ApiError, ApiResult, ErrorKind};
use super::filters::Filters;
use super::route::Query;
use crate::state::Daemon;

fn api_err(e: NetworkError) -> ApiError {
    use skiff_net::ErrorKind as K;
    let kind = match e.kind() {
        K::NotFound => ErrorKind::NotFound,
        K::Conflict => ErrorKind::Conflict,
        K::InvalidArgument => ErrorKind::InvalidParameter,
        K::Forbidden => ErrorKind::Forbidden,
        _ => ErrorKind::System,
    };
    ApiError::new(kind, e.to_string())
}

fn networks(d: &Daemon) -> ApiResult<std::sync::Arc<skiff_net::Networks>> {
    d.containers
        .net()
        .map(|n| n.networks.clone())
        .ok_or_else(|| {
            ApiError::new(
                ErrorKind::NotFound,
                "networking is off in this daemon (daemon.json \"bridge\": \"none\")",
            )
        })
}

/// With networking off only `none` and `host` exist, as with `dockerd --bridge=none`; their
/// IDs are derived from the engine ID, so they stay the same across restarts.
fn offline(d: &Daemon) -> Vec<NetworkResource> {
    use sha2::{Digest as _, Sha256};
    use skiff_net::model::{Driver, NetworkRecord};
    [("host", Driver::Host), ("none", Driver::Null)]
        .into_iter()
        .map(|(name, driver)| {
            let h = Sha256::digest(format!("{}/predefined/{name}", d.engine_id).as_bytes());
            let id = h.iter().map(|x| format!("{x:02x}")).collect();
            let rec = NetworkRecord::bare(id, name, driver, d.started.into());
            skiff_net::inspect::resource(&rec, [])
        })
        .collect()
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, NetworkError> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::system(e.to_string()))?
        .map_err(api_err)
}

/// `Containers` of a network as Docker shows it: names from the container records.
fn view(d: &Daemon, r: &NetworkResource) -> Value {
    let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
    if let Some(m) = v["Containers"].as_object_mut() {
        for (id, ep) in m.iter_mut() {
            if let Ok(e) = d.containers.get(id) {
                ep["Name"] = json!(e.snapshot().short_name());
            }
        }
    }
    v
}

fn matches(r: &NetworkResource, f: &Filters) -> bool {
    let any = |k: &str, ok: &dyn Fn(&str) -> bool| {
        let v = f.get(k);
        v.is_empty() || v.iter().any(|x| ok(x))
    };
    let predefined = matches!(r.name.as_str(), "bridge" | "host" | "none");
    any("driver", &|x| x == r.driver)
        && any("id", &|x| r.id.starts_with(x))
        && any("name", &|x| r.name.contains(x))
        && any("scope", &|x| x == r.scope)
        && any("type", &|x| match x {
            "builtin" => predefined,
            "custom" => !predefined,
            _ => false,
        })
        && any("dangling", &|x| {
            let dangling = r.containers.is_empty() && !predefined;
            matches!(x, "true" | "1") == dangling
        })
        && f.labels_match("label", &r.labels)
}

/// `GET /networks`.
pub async fn list(d: &Daemon, q: Query) -> ApiResult<Resp> {
    let f = Filters::parse(q.get("filters"))?;
    f.validate(&["driver", "id", "label", "name", "scope", "type", "dangling"])?;
    let all = match d.containers.net() {
        Some(n) => n.networks.list(),
        None => offline(d),
    };
    let out: Vec<Value> = all
        .iter()
        .filter(|r| matches(r, &f))
        .map(|r| view(d, r))
        .collect();
    Ok(body::json(StatusCode::OK, &out))
}

/// `GET /networks/{id}`.
pub async fn inspect(d: &Daemon, id: String) -> ApiResult<Resp> {
    let Some(net) = d.containers.net() else {
        let r = offline(d)
            .into_iter()
            .find(|r| r.name == id || (!id.is_empty() && r.id.starts_with(&id)))
            .ok_or_else(|| ApiError::not_found(format!("network {id} not found")))?;
        return Ok(body::json(StatusCode::OK, &view(d, &r)));
    };
    let r = net.networks.inspect(&id).map_err(api_err)?;
    Ok(body::json(StatusCode::OK, &view(d, &r)))
}

/// `POST /networks/create`.
pub async fn create(d: &Daemon, b: Bytes) -> ApiResult<Resp> {
    let v: Value = serde_json::from_slice(&b)
        .map_err(|e| ApiError::invalid(format!("invalid JSON for network create: {e}")))?;
    let Some(name) = v["Name"].as_str().filter(|n| !n.is_empty()) else {
        return Err(ApiError::invalid("network name is required (Name)"));
    };
    if v["EnableIPv6"].as_bool() == Some(true) {
        return Err(ApiError::invalid(format!(
            "network {name}: IPv6 is not supported by skiff"
        )));
    }
    let str_map = |k: &str| -> std::collections::BTreeMap<String, String> {
        v[k].as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
            .collect()
    };
    let cfg = v["IPAM"]["Config"]
        .as_array()
        .and_then(|a| a.first())
        .cloned()
        .unwrap_or(Value::Null);
    let s = |k: &str| {
        cfg[k]
            .as_str()
            .filter(|x| !x.is_empty())
            .map(str::to_string)
    };
    let req = CreateNetwork {
        name: name.to_string(),
        driver: v["Driver"].as_str().unwrap_or_default().to_string(),
        subnet: s("Subnet"),
        gateway: s("Gateway"),
        ip_range: s("IPRange"),
        internal: v["Internal"].as_bool().unwrap_or(false),
        attachable: v["Attachable"].as_bool().unwrap_or(false),
        labels: str_map("Labels"),
        options: str_map("Options"),
    };
    let nw = networks(d)?;
    let id = blocking(move || nw.create(req)).await?;
    d.containers.events.emit(
        "network",
        "create",
        &id,
        [
            ("name".to_string(), name.to_string()),
            ("type".to_string(), "bridge".to_string()),
        ]
        .into(),
    );
    Ok(body::json(
        StatusCode::CREATED,
        &json!({"Id": id, "Warning": ""}),
    ))
}

/// `DELETE /networks/{id}`.
pub async fn remove(d: &Daemon, id: String) -> ApiResult<Resp> {
    let nw = networks(d)?;
    let r = nw.inspect(&id).map_err(api_err)?;
    let key = r.id.clone();
    let cs = d.containers.clone();
    blocking(move || {
        // Endpoints of containers just removed are still being taken down.
        cs.wait_net_teardowns();
        nw.remove(&key)
    })
    .await?;
    d.containers.events.emit(
        "network",
        "destroy",
        &r.id,
        [
            ("name".to_string(), r.name.clone()),
            ("type".to_string(), "bridge".to_string()),
        ]
        .into(),
    );
    Ok(body::status(StatusCode::NO_CONTENT))
}

/// `POST /networks/prune` (filters `label`, `label!`, `until`).
pub async fn prune(d: &Daemon, q: Query) -> ApiResult<Resp> {
    let f = Filters::parse(q.get("filters"))?;
    f.validate(&["label", "label!", "until"])?;
    let nw = networks(d)?;
    let cs = d.containers.clone();
    let removed = blocking(move || {
        cs.wait_net_teardowns();
        nw.prune(|r| {
            f.labels_match("label", &r.labels)
                && !f
                    .get("label!")
                    .iter()
                    .any(|want| match want.split_once('=') {
                        Some((k, v)) => r.labels.get(k).is_some_and(|x| x == v),
                        None => r.labels.contains_key(want.as_str()),
                    })
        })
    })
    .await?;
    Ok(body::json(
        StatusCode::OK,
        &json!({"NetworksDeleted": if removed.is_empty() { Value::Null } else { json!(removed) }}),
    ))
}

/// `POST /networks/{id}/connect` and `/disconnect`.
pub async fn connect(d: &Daemon, id: String, b: Bytes, disconnect: bool) -> ApiResult<Resp> {
    let v: Value =
        serde_json::from_slice(&b).map_err(|e| ApiError::invalid(format!("invalid JSON: {e}")))?;
    let Some(container) = v["Container"].as_str().filter(|c| !c.is_empty()) else {
        return Err(ApiError::invalid("no container given (Container)"));
    };
    let c = d.containers.clone();
    if disconnect {
        c.network_disconnect(&id, container).await?;
    } else {
        let ep = v.get("EndpointConfig").filter(|e| !e.is_null());
        c.network_connect(&id, container, ep).await?;
    }
    Ok(body::status(StatusCode::OK))
}
