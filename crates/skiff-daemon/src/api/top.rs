//! `GET /containers/{id}/top` (the host's `ps`, filtered to the container's pids, as dockerd
//! does) and `GET /containers/{id}/stats` (cgroup figures in Docker's `ContainerStatsResponse`
//! shape; one sample with `stream=false`, else one per second).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::StatusCode;
use serde_json::{json, Value};
use skiff_engine::Containers;

use super::body::{self, Body, Resp};
use super::error::{ApiError, ApiResult};
use super::route::Query;

pub async fn top(c: &Arc<Containers>, id: &str, q: &Query) -> ApiResult<Resp> {
    let pids = c.pids(id)?;
    let args = q
        .get("ps_args")
        .filter(|a| !a.is_empty())
        .unwrap_or("-ef")
        .to_string();
    // ps is exec'd with these as its argv (no shell).
    let out = tokio::process::Command::new("ps")
        .args(args.split_whitespace())
        .output()
        .await
        .map_err(|e| ApiError::system(format!("error running ps: {e}")))?;
    if !out.status.success() {
        return Err(ApiError::system(format!(
            "ps: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let titles: Vec<&str> = header.split_whitespace().collect();
    let pid_col = titles
        .iter()
        .position(|t| *t == "PID")
        .ok_or_else(|| ApiError::invalid("Couldn't find PID field in ps output"))?;
    let mut procs = Vec::new();
    for l in lines {
        let fields: Vec<&str> = l.split_whitespace().collect();
        if fields.len() < titles.len() {
            continue;
        }
        let Ok(pid) = fields[pid_col].parse::<i32>() else {
            continue;
        };
        if !pids.contains(&pid) {
            continue;
        }
        // The last column takes the rest of the line (the command with its spaces).
        let mut row: Vec<String> = fields[..titles.len() - 1]
            .iter()
            .map(|s| s.to_string())
            .collect();
        row.push(fields[titles.len() - 1..].join(" "));
        procs.push(row);
    }
    Ok(body::json(
        StatusCode::OK,
        &json!({"Titles": titles, "Processes": procs}),
    ))
}

fn system_cpu_ns() -> u64 {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(l) = s.lines().next() else { return 0 };
    let ticks: u64 = l
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|x| x.parse::<u64>().ok())
        .sum();
    // USER_HZ is 100 on Linux.
    ticks * 10_000_000
}

fn online_cpus() -> u64 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u64)
        .unwrap_or(1)
}

fn sample(c: &Arc<Containers>, id: &str) -> ApiResult<Value> {
    let (rec, st) = c.cgroup_stats(id)?;
    let now = skiff_engine::containers::model::rfc3339_nano(chrono::Utc::now());
    let Some(s) = st else {
        return Ok(json!({
            "name": rec.name, "id": rec.id, "read": now, "preread": "0001-01-01T00:00:00Z",
            "pids_stats": {}, "blkio_stats": {"io_service_bytes_recursive": null, "io_serviced_recursive": null},
            "num_procs": 0, "storage_stats": {}, "cpu_stats": {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0}, "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}},
            "precpu_stats": {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0}, "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}},
            "memory_stats": {},
        }));
    };
    let blk = |v: &Vec<skiff_cgroups::stats::BlkioEntry>| -> Value {
        json!(v
            .iter()
            .map(|e| json!({"major": e.major, "minor": e.minor, "op": e.op, "value": e.value}))
            .collect::<Vec<_>>())
    };
    let cpu = json!({
        "cpu_usage": {
            "total_usage": s.cpu.usage.total_ns,
            "percpu_usage": if s.cpu.usage.per_cpu_ns.is_empty() { Value::Null } else { json!(s.cpu.usage.per_cpu_ns) },
            "usage_in_kernelmode": s.cpu.usage.system_ns,
            "usage_in_usermode": s.cpu.usage.user_ns,
        },
        "system_cpu_usage": system_cpu_ns(),
        "online_cpus": online_cpus(),
        "throttling_data": {
            "periods": s.cpu.throttling.periods,
            "throttled_periods": s.cpu.throttling.throttled_periods,
            "throttled_time": s.cpu.throttling.throttled_time_ns,
        },
    });
    let host_mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map(|k| k * 1024)
        .unwrap_or(0);
    Ok(json!({
        "name": rec.name,
        "id": rec.id,
        "read": now,
        "preread": "0001-01-01T00:00:00Z",
        "pids_stats": {"current": s.pids.current, "limit": s.pids.limit},
        "blkio_stats": {
            "io_service_bytes_recursive": blk(&s.blkio.io_service_bytes),
            "io_serviced_recursive": blk(&s.blkio.io_serviced),
            "io_queue_recursive": null, "io_service_time_recursive": null,
            "io_wait_time_recursive": null, "io_merged_recursive": null,
            "io_time_recursive": null, "sectors_recursive": null,
        },
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu,
        "precpu_stats": cpu,
        "memory_stats": {
            "usage": s.memory.usage,
            "max_usage": s.memory.max_usage,
            "stats": s.memory.stat,
            "failcnt": s.memory.failcnt,
            "limit": s.memory.limit.unwrap_or(host_mem).min(if host_mem > 0 { host_mem } else { u64::MAX }),
        },
    }))
}

pub async fn stats(c: &Arc<Containers>, id: &str, q: &Query) -> ApiResult<Resp> {
    let stream = q.get("stream").is_none() || q.bool("stream");
    let one_shot = q.bool("one-shot");
    let c2 = c.clone();
    let id2 = id.to_string();
    let first = tokio::task::spawn_blocking(move || sample(&c2, &id2))
        .await
        .map_err(|e| ApiError::system(e.to_string()))??;
    if !stream {
        // Without one-shot, dockerd waits one interval so precpu_stats is a real sample.
        let v = if one_shot {
            first
        } else {
            tokio::time::sleep(Duration::from_millis(1000)).await;
            let c2 = c.clone();
            let id2 = id.to_string();
            let mut second = tokio::task::spawn_blocking(move || sample(&c2, &id2))
                .await
                .map_err(|e| ApiError::system(e.to_string()))??;
            second["precpu_stats"] = first["cpu_stats"].clone();
            second["preread"] = first["read"].clone();
            second
        };
        return Ok(body::json(StatusCode::OK, &v));
    }
    let (tx, body) = Body::channel(2);
    let c = c.clone();
    let id = id.to_string();
    tokio::spawn(async move {
        let mut prev = first;
        loop {
            let mut b = serde_json::to_vec(&prev).unwrap_or_default();
            b.push(b'\n');
            if tx.send(Bytes::from(b)).await.is_err() {
                break;
            }
            tokio::time::sleep(super::containers::STATS_INTERVAL).await;
            let c2 = c.clone();
            let id2 = id.clone();
            let Ok(Ok(mut next)) = tokio::task::spawn_blocking(move || sample(&c2, &id2)).await
            else {
                break;
            };
            next["precpu_stats"] = prev["cpu_stats"].clone();
            next["preread"] = prev["read"].clone();
            prev = next;
        }
    });
    Ok(body::json_stream(body))
}
