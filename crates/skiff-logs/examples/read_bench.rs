//! Write and read a large log, printing timings.
//!
//! `cargo run --release -p skiff-logs --example read_bench -- [LINES]` (default 1,000,000).
//! Reading is what `docker logs` costs the daemon before HTTP framing; Docker's json-file
//! reader takes about 5 s for a million lines on the reference machine.

use std::time::{Duration, Instant, SystemTime};

use skiff_logs::{LogConfig, ReadOptions, Reader, Stream, Writer};

fn main() {
    let lines: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    // `--cpu`: print CPU time (user + system) instead of wall time, for a loaded machine
    let verbose = std::env::args().any(|a| a == "--cpu");
    let dir = tempfile::tempdir().expect("temp dir");
    println!(
        "{lines} lines, {:>10} {:>10} {:>10} {:>10} {:>10}",
        "write", "read all", "tail 100", "since 1%", "MB"
    );
    for driver in ["json-file", "local"] {
        let cfg = LogConfig::from_opts(
            driver,
            &[("max-size".to_string(), "10g".to_string())]
                .into_iter()
                .collect(),
            dir.path().join(format!("{driver}.log")),
        )
        .expect("config");
        // what a container's pipe delivers: 4 KiB reads holding many lines
        let mut data = Vec::new();
        for i in 0..lines {
            data.extend_from_slice(
                format!(
                    "2026-11-28 17:55:06 INFO request {i} handled path=/api/v1/items status=200\n"
                )
                .as_bytes(),
            );
        }
        let start = SystemTime::now();
        let t = Instant::now();
        let mut w = Writer::open(&cfg).expect("writer");
        for (n, chunk) in data.chunks(4096).enumerate() {
            let stream = if n % 10 == 0 {
                Stream::Stderr
            } else {
                Stream::Stdout
            };
            w.write(stream, chunk, start + Duration::from_micros(n as u64))
                .expect("write");
        }
        w.flush().expect("flush");
        drop(w);
        let write = t.elapsed();
        let size = std::fs::metadata(&cfg.path).expect("stat").len();

        let time = |opts: ReadOptions| {
            let cpu = cpu_time();
            let t = Instant::now();
            let mut n = 0usize;
            let mut bytes = 0usize;
            for e in Reader::open(&cfg, opts).expect("reader") {
                let e = e.expect("entry");
                n += 1;
                bytes += e.line.len();
            }
            let (wall, cpu) = (t.elapsed(), cpu_time() - cpu);
            (if verbose { cpu } else { wall }, n, bytes)
        };
        let (all, n, bytes) = time(ReadOptions::default());
        assert!(n >= lines && bytes >= data.len(), "read {n} entries");
        let (tail, n, _) = time(ReadOptions {
            tail: Some(100),
            ..Default::default()
        });
        assert_eq!(n, 100);
        let since = start + Duration::from_micros((data.len() / 4096 * 99 / 100) as u64);
        let (since, _, _) = time(ReadOptions {
            since: Some(since.into()),
            ..Default::default()
        });
        println!(
            "{driver:>13} {:>9.1?} {:>9.1?} {:>9.1?} {:>9.1?} {:>10.1}",
            write,
            all,
            tail,
            since,
            size as f64 / 1e6
        );
    }
}

/// User + system CPU time of this process (from /proc/self/stat, 10 ms resolution).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: u64 = fields
        .get(11..13)
        .map_or(0, |f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum());
    Duration::from_millis(ticks * 10)
}
