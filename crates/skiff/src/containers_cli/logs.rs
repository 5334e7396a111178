//! `logs`: `-f`, `--since`, `--until`, `-n/--tail`, `-t`, `--details`. The stream is
//! multiplexed unless the container has a terminal (docker inspects first to know).

use clap::Args;
use hyper::Method;
use serde_json::Value;

use super::{CliError, Res};
use crate::client::stdcopy::{copy_raw, demux, DemuxError};
use crate::client::{Body, Client, Query};

#[derive(Args, Debug)]
pub struct LogsArgs {
    pub container: String,
    /// Follow log output.
    #[arg(short, long)]
    pub follow: bool,
    /// Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m").
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a timestamp or relative time.
    #[arg(long)]
    pub until: Option<String>,
    /// Number of lines to show from the end of the logs ("all" for every line).
    #[arg(short = 'n', long = "tail", default_value = "all")]
    pub tail: String,
    /// Show timestamps.
    #[arg(short, long)]
    pub timestamps: bool,
    /// Show extra details provided to logs.
    #[arg(long)]
    pub details: bool,
}

/// docker's `GetTimestamp`: a Go duration is "that long ago"; a Unix time (with an
/// optional fraction) passes as is; RFC 3339 or a date become `seconds.nanoseconds`.
pub fn api_timestamp(s: &str, now: chrono::DateTime<chrono::Utc>) -> Result<String, String> {
    if let Ok(ns) = super::parse::go_duration(s) {
        if s != "0" {
            let t = now - chrono::Duration::nanoseconds(ns);
            return Ok(format!(
                "{}.{:09}",
                t.timestamp(),
                t.timestamp_subsec_nanos()
            ));
        }
    }
    let numeric = !s.is_empty()
        && s.split_once('.')
            .map_or(s, |(a, _)| a)
            .bytes()
            .all(|b| b.is_ascii_digit())
        && s.split_once('.')
            .is_none_or(|(_, b)| b.bytes().all(|b| b.is_ascii_digit()));
    if numeric {
        return Ok(s.to_string());
    }
    let parsed = chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").map(|t| t.and_utc())
        })
        .or_else(|_| {
            chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight").and_utc())
        })
        .map_err(|_| {
            format!("invalid value for \"since\"/\"until\": {s:?} is not a timestamp or duration")
        })?;
    Ok(format!(
        "{}.{:09}",
        parsed.timestamp(),
        parsed.timestamp_subsec_nanos()
    ))
}

pub fn logs(c: &Client, a: LogsArgs) -> Res<i32> {
    let info: Value = c.get(&format!("/containers/{}/json", a.container))?;
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let now = chrono::Utc::now();
    let ts = |v: &Option<String>| -> Res<Option<String>> {
        v.as_deref()
            .map(|s| api_timestamp(s, now).map_err(CliError::Usage))
            .transpose()
    };
    let q = Query::new()
        .add("stdout", "1")
        .add("stderr", "1")
        .opt("since", ts(&a.since)?)
        .opt("until", ts(&a.until)?)
        .add_if(a.timestamps, "timestamps", "1")
        .add_if(a.follow, "follow", "1")
        .add("tail", &a.tail)
        .add_if(a.details, "details", "1");
    let (_, body) = c.stream(
        Method::GET,
        &q.to(&format!("/containers/{}/logs", a.container)),
        Body::Empty,
    )?;
    let mut out = std::io::stdout();
    let res = if tty {
        copy_raw(body, &mut out)
    } else {
        demux(body, &mut out, &mut std::io::stderr())
    };
    match res {
        Err(DemuxError::Write(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        r => r.map(|_| 0).map_err(CliError::from),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_like_docker() {
        let now = chrono::DateTime::parse_from_rfc3339("2024-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(api_timestamp("10m", now).unwrap(), "1704164045.000000000");
        assert_eq!(api_timestamp("1704164645", now).unwrap(), "1704164645");
        assert_eq!(api_timestamp("1704164645.5", now).unwrap(), "1704164645.5");
        assert_eq!(
            api_timestamp("2024-01-02T03:04:05.25Z", now).unwrap(),
            "1704164645.250000000"
        );
        assert_eq!(
            api_timestamp("2024-01-02", now).unwrap(),
            "1704153600.000000000"
        );
        assert!(api_timestamp("yesterday", now).is_err());
    }
}
