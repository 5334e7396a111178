//! Healthchecks, as dockerd runs them: the test command is exec'd in the container every
//! `Interval` (default 30 s) with a `Timeout` (30 s); `Retries` (3) consecutive failures make
//! it `unhealthy`, one success `healthy`; failures during `StartPeriod` do not count. The last
//! five results are kept in `State.Health.Log`; each status change is a `health_status` event.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

use super::model::{rfc3339_nano, Health, HealthConfig, HealthLog};
use super::service::{Containers, Entry};
use super::shim;

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_RETRIES: i64 = 3;
const MAX_OUTPUT: usize = 4096;
const KEEP: usize = 5;

fn dur(ns: i64, default: Duration) -> Duration {
    if ns > 0 {
        Duration::from_nanos(ns as u64)
    } else {
        default
    }
}

/// The test as argv: `["CMD", args...]`, `["CMD-SHELL", "cmd"]`; `None` for `NONE`/empty.
pub fn test_argv(h: &HealthConfig) -> Option<Vec<String>> {
    let t = h.test.as_ref()?;
    match t.first().map(String::as_str) {
        Some("CMD") if t.len() > 1 => Some(t[1..].to_vec()),
        Some("CMD-SHELL") if t.len() > 1 => {
            Some(vec!["/bin/sh".into(), "-c".into(), t[1..].join(" ")])
        }
        _ => None,
    }
}

/// Runs one probe: (exit code, output).
async fn probe(cs: &Containers, id: &str, argv: &[String], timeout: Duration) -> (i64, String) {
    let sock = cs.socket(id);
    let cfg = std::fs::read(cs.root.join(id).join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
    let Some(mut process) = cfg.map(|c| c["process"].clone()) else {
        return (-1, "no container config".into());
    };
    process["args"] = json!(argv);
    process["terminal"] = json!(false);
    let exec_id = format!("health-{}", &super::random_id()[..16]);
    let req = json!({"op": "exec", "exec_id": exec_id, "process": process, "stdin": false, "stdout": true, "stderr": true});
    let run = async {
        let (_, mut stream) = shim::request(&sock, &req)
            .await
            .map_err(|e| e.to_string())?;
        // Framed output: 8-byte headers.
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw).await;
        let mut out = Vec::new();
        let mut i = 0;
        while i + 8 <= raw.len() {
            let h: [u8; 8] = raw[i..i + 8].try_into().expect("8 bytes");
            let n = skiff_shim::proto::parse_frame_header(&h).1 as usize;
            let end = (i + 8 + n).min(raw.len());
            out.extend_from_slice(&raw[i + 8..end]);
            i = end;
        }
        out.truncate(MAX_OUTPUT);
        let code = shim::call(&sock, &json!({"op": "exec-wait", "exec_id": exec_id}))
            .await
            .ok()
            .and_then(|v| v.get("exit_code").and_then(Value::as_i64))
            .unwrap_or(-1);
        Ok::<_, String>((code, String::from_utf8_lossy(&out).into_owned()))
    };
    match tokio::time::timeout(timeout, run).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => (-1, e),
        Err(_) => (
            -1,
            format!("Health check exceeded timeout ({}s)", timeout.as_secs_f64()),
        ),
    }
}

impl Containers {
    /// Starts the health monitor of a just-started container (if it has a healthcheck).
    pub(crate) fn start_health(self: &Arc<Self>, e: &Arc<Entry>) {
        let c = e.snapshot();
        let Some(h) = c.config.healthcheck.clone() else {
            return;
        };
        let Some(argv) = test_argv(&h) else {
            return;
        };
        let _ = e.save(|c| {
            c.state.health = Some(Health {
                status: "starting".into(),
                failing_streak: 0,
                log: Vec::new(),
            })
        });
        let this = self.clone();
        let e = e.clone();
        let exits = e.life.borrow().exits;
        tokio::spawn(async move {
            let interval = dur(h.interval, DEFAULT_INTERVAL);
            let timeout = dur(h.timeout, DEFAULT_TIMEOUT);
            let retries = if h.retries > 0 {
                h.retries
            } else {
                DEFAULT_RETRIES
            };
            let start_period = dur(h.start_period, Duration::ZERO);
            let started = std::time::Instant::now();
            let mut life = e.life.subscribe();
            loop {
                let stopped = tokio::time::timeout(
                    interval,
                    life.wait_for(|l| l.exits > exits || !l.running || l.removed),
                )
                .await
                .is_ok();
                if stopped {
                    return;
                }
                let begin = Utc::now();
                let (code, output) = probe(&this, &e.id, &argv, timeout).await;
                let end = Utc::now();
                if e.life.borrow().exits > exits {
                    return;
                }
                let mut changed = None;
                let _ = e.save(|c| {
                    let health = c.state.health.get_or_insert_with(Health::default);
                    health.log.push(HealthLog {
                        start: rfc3339_nano(begin),
                        end: rfc3339_nano(end),
                        exit_code: code,
                        output: output.clone(),
                    });
                    if health.log.len() > KEEP {
                        health.log.remove(0);
                    }
                    let old = health.status.clone();
                    if code == 0 {
                        health.failing_streak = 0;
                        health.status = "healthy".into();
                    } else if started.elapsed() >= start_period || health.status != "starting" {
                        health.failing_streak += 1;
                        if health.failing_streak >= retries {
                            health.status = "unhealthy".into();
                        }
                    }
                    if health.status != old {
                        changed = Some(health.status.clone());
                    }
                });
                if let Some(s) = changed {
                    this.emit(&format!("health_status: {s}"), &e.snapshot(), &[]);
                }
            }
        });
    }
}
