//! `GET /events`: past events from `since`, then live ones until `until` (or forever), as
//! JSON lines; filters `type`, `container`, `event`, `image`, `label`.

use bytes::Bytes;
use skiff_engine::containers::events::Event;

use super::body::{self, Body, Resp};
use super::error::ApiResult;
use super::filters::Filters;
use super::logs::parse_time;
use super::route::Query;
use crate::state::Daemon;

fn matches(f: &Filters, e: &Event) -> bool {
    let any = |k: &str, pred: &dyn Fn(&str) -> bool| {
        let v = f.get(k);
        v.is_empty() || v.iter().any(|x| pred(x))
    };
    let name = e
        .actor
        .attributes
        .get("name")
        .map(String::as_str)
        .unwrap_or("");
    any("type", &|t| t == e.kind)
        && any("event", &|a| {
            a == e.action || e.action.starts_with(&format!("{a}:"))
        })
        && any("container", &|c| {
            e.kind == "container" && (e.actor.id.starts_with(c) || name == c)
        })
        && any("image", &|i| {
            e.actor.attributes.get("image").map(String::as_str) == Some(i)
                || (e.kind == "image" && e.actor.id == i)
        })
        && f.get("label").iter().all(|l| match l.split_once('=') {
            Some((k, v)) => e.actor.attributes.get(k).map(String::as_str) == Some(v),
            None => e.actor.attributes.contains_key(l),
        })
}

pub async fn events(d: &Daemon, q: Query) -> ApiResult<Resp> {
    let f = Filters::parse(q.get("filters"))?;
    f.validate(&[
        "type",
        "container",
        "event",
        "image",
        "label",
        "network",
        "volume",
        "daemon",
        "scope",
        "node",
        "plugin",
        "service",
        "secret",
        "config",
    ])?;
    let since = parse_time(q.get("since").unwrap_or(""))?;
    let until = parse_time(q.get("until").unwrap_or(""))?;
    let since_ns = since.map(|t| t.timestamp_nanos_opt().unwrap_or(0));
    let until_ns = until.map(|t| t.timestamp_nanos_opt().unwrap_or(i64::MAX));
    let (past, mut rx) = d.containers.events.subscribe(since_ns);
    let (tx, body) = Body::channel(64);
    tokio::spawn(async move {
        let send = |e: &Event| {
            let mut b = serde_json::to_vec(e).unwrap_or_default();
            b.push(b'\n');
            Bytes::from(b)
        };
        for e in past.iter().filter(|e| matches(&f, e)) {
            if until_ns.is_some_and(|u| e.time_nano > u) {
                return;
            }
            if tx.send(send(e)).await.is_err() {
                return;
            }
        }
        loop {
            let wait = async {
                match until_ns {
                    Some(u) => {
                        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
                        let left = (u - now).max(0) as u64;
                        tokio::time::timeout(std::time::Duration::from_nanos(left), rx.recv())
                            .await
                            .ok()
                    }
                    None => Some(rx.recv().await),
                }
            };
            let e = tokio::select! {
                r = wait => r,
                _ = tx.closed() => return,
            };
            match e {
                None => return,
                Some(Ok(e)) => {
                    if until_ns.is_some_and(|u| e.time_nano > u) {
                        return;
                    }
                    if matches(&f, &e) && tx.send(send(&e)).await.is_err() {
                        return;
                    }
                }
                Some(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => continue,
                Some(Err(_)) => return,
            }
        }
    });
    Ok(body::json_stream(body))
}
