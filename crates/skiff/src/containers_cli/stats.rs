//! `stats`: docker's columns (CONTAINER ID, NAME, CPU %, MEM USAGE / LIMIT, MEM %, NET I/O,
//! BLOCK I/O, PIDS) computed from the stats JSON as the docker CLI does; `--no-stream` for
//! one sample, otherwise refreshed about once a second.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use clap::Args;
use hyper::Method;
use serde_json::{json, Value};

use super::output::{bytes_size, print_rows, short_id};
use super::{CliError, Res};
use crate::client::{Body, Client, Query};

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Containers (default: all running).
    pub containers: Vec<String>,
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    pub all: bool,
    /// Disable streaming stats and only pull the first result.
    #[arg(long = "no-stream")]
    pub no_stream: bool,
    /// Do not truncate output.
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Format output using a custom template.
    #[arg(long)]
    pub format: Option<String>,
}

const DEFAULT: &str = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

fn headers() -> Value {
    json!({
        "ID": "CONTAINER ID", "Container": "CONTAINER", "Name": "NAME", "CPUPerc": "CPU %",
        "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O",
        "BlockIO": "BLOCK I/O", "PIDs": "PIDS",
    })
}

/// One stats sample as docker's formatter shows it.
pub fn row(s: &Value, container: &str, no_trunc: bool) -> Value {
    let id = s["id"].as_str().unwrap_or_default();
    let cpu_delta = s["cpu_stats"]["cpu_usage"]["total_usage"]
        .as_f64()
        .unwrap_or(0.0)
        - s["precpu_stats"]["cpu_usage"]["total_usage"]
            .as_f64()
            .unwrap_or(0.0);
    let sys_delta = s["cpu_stats"]["system_cpu_usage"].as_f64().unwrap_or(0.0)
        - s["precpu_stats"]["system_cpu_usage"]
            .as_f64()
            .unwrap_or(0.0);
    let online = s["cpu_stats"]["online_cpus"]
        .as_f64()
        .filter(|n| *n > 0.0)
        .or_else(|| {
            s["cpu_stats"]["cpu_usage"]["percpu_usage"]
                .as_array()
                .map(|a| a.len() as f64)
        })
        .unwrap_or(0.0);
    let cpu = if sys_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / sys_delta * online * 100.0
    } else {
        0.0
    };
    let mem = &s["memory_stats"];
    let mut usage = mem["usage"].as_f64().unwrap_or(0.0);
    // cgroup v1 reports total_inactive_file, v2 inactive_file: page cache is not usage.
    let inactive = mem["stats"]["total_inactive_file"]
        .as_f64()
        .or(mem["stats"]["inactive_file"].as_f64())
        .unwrap_or(0.0);
    if inactive < usage {
        usage -= inactive;
    }
    let limit = mem["limit"].as_f64().unwrap_or(0.0);
    let mem_pct = if limit > 0.0 {
        usage / limit * 100.0
    } else {
        0.0
    };
    let (mut rx, mut tx) = (0.0, 0.0);
    for n in s["networks"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
    {
        rx += n["rx_bytes"].as_f64().unwrap_or(0.0);
        tx += n["tx_bytes"].as_f64().unwrap_or(0.0);
    }
    let (mut read, mut write) = (0.0, 0.0);
    for e in s["blkio_stats"]["io_service_bytes_recursive"]
        .as_array()
        .into_iter()
        .flatten()
    {
        match e["op"].as_str().map(str::to_ascii_lowercase).as_deref() {
            Some("read") => read += e["value"].as_f64().unwrap_or(0.0),
            Some("write") => write += e["value"].as_f64().unwrap_or(0.0),
            _ => {}
        }
    }
    let size3 = |v: f64| crate::human::size(v as u64);
    json!({
        "ID": if no_trunc { id.to_string() } else { short_id(id) },
        "Container": container,
        "Name": s["name"].as_str().unwrap_or_default().trim_start_matches('/'),
        "CPUPerc": format!("{cpu:.2}%"),
        "MemUsage": format!("{} / {}", bytes_size(usage), bytes_size(limit)),
        "MemPerc": format!("{mem_pct:.2}%"),
        "NetIO": format!("{} / {}", size3(rx), size3(tx)),
        "BlockIO": format!("{} / {}", size3(read), size3(write)),
        "PIDs": s["pids_stats"]["current"].as_u64().unwrap_or(0).to_string(),
    })
}

pub fn stats(c: &Client, a: StatsArgs) -> Res<i32> {
    let names: Vec<String> = if a.containers.is_empty() {
        let q = Query::new().add_if(a.all, "all", "1");
        let list: Vec<Value> = c.get(&q.to("/containers/json"))?;
        list.iter()
            .filter_map(|x| x["Id"].as_str().map(str::to_string))
            .collect()
    } else {
        a.containers.clone()
    };
    if a.no_stream {
        let mut rows = Vec::new();
        let mut failed = false;
        for n in &names {
            match c.get::<Value>(&format!("/containers/{n}/stats?stream=false")) {
                Ok(s) => rows.push(row(&s, n, a.no_trunc)),
                Err(e) => {
                    eprintln!("{e}");
                    failed = true;
                }
            }
        }
        print_rows(a.format.as_deref(), DEFAULT, &headers(), &rows);
        return if failed {
            Err(CliError::Reported(1))
        } else {
            Ok(0)
        };
    }
    stream(c, &names, &a)
}

/// One reader thread per container (a client each); the screen is redrawn every second.
fn stream(c: &Client, names: &[String], a: &StatsArgs) -> Res<i32> {
    let latest: Arc<Mutex<BTreeMap<String, Value>>> = Arc::default();
    for n in names {
        let api = c.try_clone()?;
        let (n, latest, no_trunc) = (n.clone(), latest.clone(), a.no_trunc);
        std::thread::spawn(move || {
            let path = format!("/containers/{n}/stats?stream=true");
            let Ok((_, body)) = api.stream(Method::GET, &path, Body::Empty) else {
                return;
            };
            let de = serde_json::Deserializer::from_reader(std::io::BufReader::new(body));
            for s in de.into_iter::<Value>() {
                let Ok(s) = s else { break };
                let r = row(&s, &n, no_trunc);
                latest.lock().expect("stats map").insert(n.clone(), r);
            }
            latest.lock().expect("stats map").remove(&n);
        });
    }
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
        let rows: Vec<Value> = {
            let m = latest.lock().expect("stats map");
            names.iter().filter_map(|n| m.get(n).cloned()).collect()
        };
        print!("\x1b[2J\x1b[H");
        print_rows(a.format.as_deref(), DEFAULT, &headers(), &rows);
        let _ = std::io::stdout().flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn computes_docker_figures() {
        let s = json!({
            "id": "0123456789abcdef", "name": "/web",
            "cpu_stats": {"cpu_usage": {"total_usage": 300}, "system_cpu_usage": 2000, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 100}, "system_cpu_usage": 1000},
            "memory_stats": {"usage": 3_145_728u64, "limit": 1_073_741_824u64,
                             "stats": {"total_inactive_file": 1_048_576u64}},
            "networks": {"eth0": {"rx_bytes": 1500, "tx_bytes": 0}},
            "blkio_stats": {"io_service_bytes_recursive": [
                {"op": "Read", "value": 4096}, {"op": "Write", "value": 1_000_000}]},
            "pids_stats": {"current": 3},
        });
        let r = row(&s, "web", false);
        assert_eq!(r["ID"], "0123456789ab");
        assert_eq!(r["Name"], "web");
        assert_eq!(r["CPUPerc"], "40.00%");
        assert_eq!(r["MemUsage"], "2MiB / 1GiB");
        assert_eq!(r["MemPerc"], "0.20%");
        assert_eq!(r["NetIO"], "1.5kB / 0B");
        assert_eq!(r["BlockIO"], "4.1kB / 1MB");
        assert_eq!(r["PIDs"], "3");
    }
}
