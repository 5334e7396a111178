//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use skiff_logs::{LogConfig, LogEntry, ReadOptions, Reader, Stream, Writer};

pub const BASE: u64 = 1_764_352_506;

/// Second `i` after a fixed base time.
pub fn t(i: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(BASE + i)
}

/// The same instant as a chrono time.
pub fn dt(i: u64) -> DateTime<Utc> {
    DateTime::from_timestamp((BASE + i) as i64, 0).unwrap()
}

pub fn cfg(dir: &Path, driver: &str, opts: &[(&str, &str)]) -> LogConfig {
    let opts: BTreeMap<String, String> = opts
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    LogConfig::from_opts(driver, &opts, dir.join("c-json.log")).unwrap()
}

pub fn all() -> ReadOptions {
    ReadOptions::default()
}

pub fn read(cfg: &LogConfig, opts: ReadOptions) -> Vec<LogEntry> {
    Reader::open(cfg, opts)
        .unwrap()
        .map(|e| e.unwrap())
        .collect()
}

pub fn texts(entries: &[LogEntry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| String::from_utf8_lossy(&e.line).into_owned())
        .collect()
}

/// Writes `line {i}\n` for i in range, at second i, alternating chunk shapes.
pub fn write_numbered(w: &mut Writer, range: std::ops::Range<u64>) {
    for i in range {
        let stream = if i % 3 == 0 {
            Stream::Stderr
        } else {
            Stream::Stdout
        };
        w.write(stream, format!("line {i:06}\n").as_bytes(), t(i))
            .unwrap();
    }
}

/// The numbers of `line N` entries.
pub fn numbers(entries: &[LogEntry]) -> Vec<u64> {
    entries
        .iter()
        .map(|e| {
            let s = std::str::from_utf8(&e.line).unwrap();
            s.trim_end().strip_prefix("line ").unwrap().parse().unwrap()
        })
        .collect()
}
