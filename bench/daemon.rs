//! daemon-bench: skiff's daemon side by side with Debian's dockerd (containerd + runc), both
//! driven by the same client, the real docker CLI (`DOCKER_HOST` per peer), with the same
//! busybox image in both and `--network none` for every container:
//!
//! 1. `docker run --rm busybox true` wall time, via the CLI and as raw API calls (create,
//!    wait `condition=removed`, start);
//! 2. `docker exec C true` into a running container, via the CLI and as raw API calls
//!    (`POST /containers/C/exec` + `POST /exec/ID/start` over the unix socket);
//! 3. N detached `sleep 3600` containers: start time, host used-memory delta, the PSS of the
//!    per-container monitors (skiff-shim vs containerd-shim-runc-v2), daemon RSS;
//! 4. `docker logs C` of a container that wrote 1M lines (CLI, and `GET /logs` to EOF).
//!
//! ```text
//! cargo build --release -p skiff -p skiff-bench && target/release/daemon-bench [--runs 20]
//! ```
//! Needs root and busybox-static; docker.io (dockerd) for the peer, else "not installed".
//! Everything it starts (containers, daemons, mounts) is removed at the end, on failure and on
//! Ctrl-C too. See bench/README.md for the options.

mod common;

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use common::{
    check_stop, comm, http, in_tempdir, install_signals, json_body, lat, make_rootfs, ms,
    ok_output, ppid, pss_kib, run_api, run_timeout, sibling, skiff_import, start_docker,
    start_skiff, stats, status_of, which, Kind, Peer, SkiffDaemon,
};

struct Opts {
    runs: usize,
    warmup: usize,
    containers: usize,
    log_lines: usize,
    log_runs: usize,
    peers: Vec<Kind>,
    skip: HashSet<String>,
    skiff: PathBuf,
    shim: PathBuf,
    skiff_log: Option<String>,
    keep: bool,
}

const USAGE: &str = "usage: daemon-bench [--runs N] [--warmup N] [--containers N] \
[--log-lines N] [--log-runs N] [--peers skiff,docker] [--skip run,exec,many,logs] \
[--skiff PATH] [--shim PATH] [--skiff-log FILTER] [--keep]";

fn parse_args() -> Result<Opts> {
    let mut o = Opts {
        runs: 20,
        warmup: 3,
        containers: 100,
        log_lines: 1_000_000,
        log_runs: 3,
        peers: vec![Kind::Skiff, Kind::Docker],
        skip: HashSet::new(),
        skiff: sibling("skiff"),
        shim: PathBuf::new(),
        skiff_log: None,
        keep: false,
    };
    let mut shim = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || {
            args.next()
                .with_context(|| format!("{a} needs a value; {USAGE}"))
        };
        match a.as_str() {
            "--runs" => o.runs = val()?.parse()?,
            "--warmup" => o.warmup = val()?.parse()?,
            "--containers" => o.containers = val()?.parse()?,
            "--log-lines" => o.log_lines = val()?.parse()?,
            "--log-runs" => o.log_runs = val()?.parse()?,
            "--peers" => o.peers = Kind::parse_list(&val()?)?,
            "--skip" => {
                for s in val()?.split(',') {
                    if !["run", "exec", "many", "logs"].contains(&s) {
                        bail!("unknown section {s:?} (run, exec, many, logs)");
                    }
                    o.skip.insert(s.to_string());
                }
            }
            "--skiff" => o.skiff = val()?.into(),
            "--shim" => shim = Some(PathBuf::from(val()?)),
            "--skiff-log" => o.skiff_log = Some(val()?),
            "--keep" => o.keep = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}; {USAGE}"),
        }
    }
    if o.runs == 0 || o.log_runs == 0 || o.containers == 0 {
        bail!("--runs, --log-runs and --containers must be at least 1");
    }
    o.shim = shim.unwrap_or_else(|| o.skiff.with_file_name("skiff-shim"));
    Ok(o)
}

/// The basename of a process's executable (comm is cut at 15 bytes).
fn exe_name(pid: u32) -> String {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .and_then(|p| Some(p.file_name()?.to_string_lossy().into_owned()))
        .unwrap_or_else(|| comm(pid))
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// MemTotal - MemAvailable, KiB: the median of 5 samples over 0.8 s (other processes on the
/// machine move it; this damps short spikes only).
fn used_mem_kib() -> i64 {
    let mut v: Vec<i64> = (0..5)
        .map(|i| {
            if i > 0 {
                std::thread::sleep(Duration::from_millis(200));
            }
            used_mem_sample()
        })
        .collect();
    v.sort_unstable();
    v[2]
}

/// Kernel memory that containers cost and builds elsewhere on the machine move less:
/// SUnreclaim + KernelStack + PageTables, KiB.
fn kernel_kib() -> i64 {
    meminfo(&["SUnreclaim:", "KernelStack:", "PageTables:"])
}

fn meminfo(keys: &[&str]) -> i64 {
    let t = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    keys.iter()
        .map(|k| {
            t.lines()
                .find(|l| l.starts_with(k))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<i64>().ok())
                .unwrap_or(0)
        })
        .sum()
}

fn used_mem_sample() -> i64 {
    meminfo(&["MemTotal:"]) - meminfo(&["MemAvailable:"])
}

/// skiff's daemon in the host's namespace: as dockerd here (--bridge=none
/// --iptables=false), no bridge, the host untouched.
fn start_skiff_peer(tmp: &Path, o: &Opts) -> Result<Peer> {
    start_skiff(
        tmp,
        SkiffDaemon {
            cmd: Command::new(&o.skiff),
            skiff: &o.skiff,
            shim: &o.shim,
            log: o.skiff_log.as_deref(),
            config: r#"{"bridge": "none"}"#,
        },
    )
}

/// dockerd with busybox loaded (from skiff's saved image, else imported from the rootfs).
fn start_docker_peer(tmp: &Path, dockerd: &Path, image_tar: &Path, rootfs: &Path) -> Result<Peer> {
    let p = start_docker(tmp, dockerd, &[])?;
    if image_tar.is_file() {
        p.ok(&["load", "-q", "-i", &image_tar.display().to_string()])?;
    } else {
        p.import_rootfs(rootfs)?;
    }
    Ok(p)
}

/// `docker run -d --network none ...`: the new container's id (recorded for the clean-up)
/// and the CLI's wall time in ms.
fn run_detached(p: &mut Peer, args: &[&str]) -> Result<(String, f64)> {
    let mut full = vec!["run", "-d", "--network", "none"];
    full.extend_from_slice(args);
    let mut c = p.cmd(&full);
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let t = Instant::now();
    let out = run_timeout(&mut c, Duration::from_secs(300))?;
    let el = ms(t.elapsed());
    let id = ok_output(&mut c, &out)?.trim().to_string();
    if id.len() < 12 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("{}: run -d printed {id:?}, not an id", p.kind.name());
    }
    p.ids.push(id.clone());
    Ok((id, el))
}

/// `docker exec` as the two API calls the CLI makes, without the CLI: create, then start
/// attached (upgraded to a raw stream, read until the daemon closes it). Returns the stream.
fn exec_api(sock: &Path, id: &str, cmd: &[&str]) -> Result<Vec<u8>> {
    let body = serde_json::json!({"AttachStdout": true, "AttachStderr": true, "Cmd": cmd});
    let resp = http(
        sock,
        &format!("POST /v1.41/containers/{id}/exec HTTP/1.1\r\nConnection: close"),
        &body.to_string(),
    )?;
    let exec_id = match (status_of(&resp), json_body(&resp)) {
        (201, Some(v)) => v["Id"].as_str().unwrap_or_default().to_string(),
        _ => bail!(
            "POST /containers/{id}/exec: {}",
            String::from_utf8_lossy(&resp)
        ),
    };
    let resp = http(
        sock,
        &format!(
            "POST /v1.41/exec/{exec_id}/start HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: tcp"
        ),
        r#"{"Detach":false,"Tty":false}"#,
    )?;
    if !matches!(status_of(&resp), 101 | 200) {
        bail!(
            "POST /exec/{exec_id}/start: {}",
            String::from_utf8_lossy(&resp)
        );
    }
    Ok(resp)
}

/// `GET /containers/C/logs` read to EOF; the number of bytes.
fn logs_api(sock: &Path, id: &str) -> Result<usize> {
    let resp = http(
        sock,
        &format!("GET /v1.41/containers/{id}/logs?stdout=1&stderr=1 HTTP/1.1\r\nConnection: close"),
        "",
    )?;
    if status_of(&resp) != 200 {
        bail!(
            "GET /containers/{id}/logs: {}",
            String::from_utf8_lossy(&resp[..resp.len().min(300)])
        );
    }
    Ok(resp.len())
}

#[derive(Default)]
struct Many {
    n: usize,
    total_s: f64,
    per_ms: Vec<f64>,
    mem_delta_kib: i64,
    kernel_delta_kib: i64,
    monitor_pss_kib: u64,
    monitor_dirty_kib: u64,
    monitors: usize,
    monitor_name: String,
    daemon_idle_kib: u64,
    daemon_busy_kib: u64,
    rm_s: f64,
}

/// What one peer measured; `status` is "not installed" / "FAILED: .." when it has no figures.
#[derive(Default)]
struct Res {
    status: Option<String>,
    run: Vec<f64>,
    run_api: Vec<f64>,
    exec_cli: Vec<f64>,
    exec_api: Vec<f64>,
    cli_floor: Vec<f64>,
    many: Option<Many>,
    logs: Vec<f64>,
    logs_api: Vec<f64>,
}

fn probe(p: &Peer, res: &mut Res, what: &str, f: impl FnOnce() -> Result<()>) -> bool {
    match f() {
        Ok(()) => true,
        Err(e) => {
            let msg = format!("FAILED {what}: {e:#}");
            eprintln!(
                "{}: {msg}\n--- daemon log tail:\n{}",
                p.kind.name(),
                p.log_tail()
            );
            res.status = Some(msg);
            false
        }
    }
}

fn main() -> Result<()> {
    let o = parse_args()?;
    install_signals();
    let failed = in_tempdir("sbd-", o.keep, "containers and daemons", |tmp| {
        bench(tmp, &o)
    })?;
    if failed {
        // A peer failed a probe or a run (its rows say FAILED).
        std::process::exit(1);
    }
    Ok(())
}

/// Runs the sections; Ok(true) when a peer failed a probe.
fn bench(tmp: &Path, o: &Opts) -> Result<bool> {
    if which("docker").is_none() {
        bail!("the docker CLI (the client of both peers) is not installed");
    }
    let rootfs = tmp.join("rootfs");
    make_rootfs(&rootfs)?;
    std::fs::create_dir_all(tmp.join("docker-config"))?;
    std::fs::create_dir_all(tmp.join("skiff"))?;
    let image_tar = tmp.join("busybox.tar");
    let skiff_ok = o.skiff.is_file() && o.shim.is_file();
    if skiff_ok {
        skiff_import(&o.skiff, &tmp.join("skiff/root"), &rootfs, Some(&image_tar))?;
    }
    let dockerd = which("dockerd");

    // `None` for a peer that is not installed or did not start; its row still prints.
    let mut peers: Vec<Option<Peer>> = Vec::new();
    let mut res: Vec<Res> = Vec::new();
    for &k in &o.peers {
        check_stop()?;
        let mut r = Res::default();
        let started = match k {
            Kind::Skiff if !skiff_ok => None,
            Kind::Skiff => Some(start_skiff_peer(tmp, o)),
            Kind::Docker => dockerd
                .as_ref()
                .map(|d| start_docker_peer(tmp, d, &image_tar, &rootfs)),
        };
        let peer = match started {
            None => {
                r.status = Some("not installed".into());
                None
            }
            Some(Err(e)) => {
                check_stop()?;
                eprintln!("{}: {e:#}", k.name());
                r.status = Some(format!("FAILED to start: {e:#}"));
                None
            }
            Some(Ok(p)) => {
                // The correctness probe: a container that runs and whose output arrives.
                probe(&p, &mut r, "probe `run --rm busybox echo probe`", || {
                    let out = p.ok(&[
                        "run",
                        "--rm",
                        "--network",
                        "none",
                        "busybox",
                        "echo",
                        "probe",
                    ])?;
                    if out.trim() != "probe" {
                        bail!("printed {out:?}, not \"probe\"");
                    }
                    Ok(())
                });
                Some(p)
            }
        };
        peers.push(peer);
        res.push(r);
    }
    let live = |res: &[Res]| -> Vec<usize> {
        (0..res.len())
            .filter(|&i| res[i].status.is_none())
            .collect()
    };

    if !o.skip.contains("run") {
        for round in 0..o.warmup + o.runs {
            for i in live(&res) {
                check_stop()?;
                let p = peers[i].as_ref().expect("live peer");
                let step = || -> Result<(f64, f64)> {
                    let cli = p.timed(&["run", "--rm", "--network", "none", "busybox", "true"])?;
                    let t = Instant::now();
                    run_api(&p.sock, "none")?;
                    Ok((cli, ms(t.elapsed())))
                };
                match step() {
                    Ok((c, a)) if round >= o.warmup => {
                        res[i].run.push(c);
                        res[i].run_api.push(a);
                    }
                    Ok(_) => {}
                    Err(e) => res[i].status = Some(format!("FAILED run: {e:#}")),
                }
            }
        }
    }

    if !o.skip.contains("exec") {
        let mut targets = Vec::new();
        for i in live(&res) {
            let p = peers[i].as_mut().expect("live peer");
            let id = match run_detached(p, &["--name", "bench-exec", "busybox", "sleep", "3600"]) {
                Ok((id, _)) => id,
                Err(e) => {
                    res[i].status = Some(format!("FAILED exec set-up: {e:#}"));
                    continue;
                }
            };
            let p = peers[i].as_ref().expect("live peer");
            let good = probe(p, &mut res[i], "probe `exec C echo probe`", || {
                let out = p.ok(&["exec", &id, "echo", "probe"])?;
                if out.trim() != "probe" {
                    bail!("CLI exec printed {out:?}");
                }
                let raw = exec_api(&p.sock, &id, &["echo", "probe"])?;
                if !String::from_utf8_lossy(&raw).contains("probe\n") {
                    bail!(
                        "API exec stream lacks the output: {:?}",
                        String::from_utf8_lossy(&raw)
                    );
                }
                Ok(())
            });
            if good {
                targets.push((i, id));
            }
        }
        for round in 0..o.warmup + o.runs {
            for (i, id) in &targets {
                check_stop()?;
                let (p, r) = (peers[*i].as_ref().expect("live peer"), &mut res[*i]);
                if r.status.is_some() {
                    continue;
                }
                let step = || -> Result<(f64, f64, f64)> {
                    let cli = p.timed(&["exec", id, "true"])?;
                    let t = Instant::now();
                    exec_api(&p.sock, id, &["true"])?;
                    let api = ms(t.elapsed());
                    let floor = p.timed(&["inspect", "-f", "{{.Id}}", id])?;
                    Ok((cli, api, floor))
                };
                match step() {
                    Ok((c, a, f)) if round >= o.warmup => {
                        r.exec_cli.push(c);
                        r.exec_api.push(a);
                        r.cli_floor.push(f);
                    }
                    Ok(_) => {}
                    Err(e) => r.status = Some(format!("FAILED exec: {e:#}")),
                }
            }
        }
        for (i, id) in &targets {
            let _ = peers[*i]
                .as_ref()
                .expect("live peer")
                .remove(std::slice::from_ref(id));
        }
    }

    if !o.skip.contains("many") {
        // Not interleaved: the memory delta of one peer's containers must not include the
        // other's. Each peer's containers are removed before the next peer starts.
        for i in live(&res) {
            check_stop()?;
            match many(peers[i].as_mut().expect("live peer"), o.containers) {
                Ok(m) => res[i].many = Some(m),
                Err(e) => {
                    check_stop()?;
                    res[i].status = Some(format!("FAILED many: {e:#}"));
                }
            }
        }
    }

    if !o.skip.contains("logs") {
        let mut targets = Vec::new();
        for i in live(&res) {
            check_stop()?;
            let lines = o.log_lines.to_string();
            let p = peers[i].as_mut().expect("live peer");
            let id = match run_detached(p, &["busybox", "seq", "1", &lines]) {
                Ok((id, _)) => id,
                Err(e) => {
                    res[i].status = Some(format!("FAILED logs set-up: {e:#}"));
                    continue;
                }
            };
            let p = peers[i].as_ref().expect("live peer");
            let good = probe(p, &mut res[i], "probe `logs C` line count", || {
                let code = p.ok(&["wait", &id])?;
                if code.trim() != "0" {
                    bail!("seq exited with {code:?}");
                }
                let out = p.ok(&["logs", &id])?;
                let n = out.lines().count();
                if n != o.log_lines || out.lines().last() != Some(lines.as_str()) {
                    bail!(
                        "logs printed {n} lines (last {:?}), want {lines}",
                        out.lines().last()
                    );
                }
                Ok(())
            });
            if good {
                targets.push((i, id));
            }
        }
        for round in 0..1 + o.log_runs {
            for (i, id) in &targets {
                check_stop()?;
                let (p, r) = (peers[*i].as_ref().expect("live peer"), &mut res[*i]);
                if r.status.is_some() {
                    continue;
                }
                let step = || -> Result<(f64, f64)> {
                    let cli = p.timed(&["logs", id])?;
                    let t = Instant::now();
                    let n = logs_api(&p.sock, id)?;
                    let api = ms(t.elapsed());
                    // At least the digits and newlines of 1..N.
                    if n < 2 * o.log_lines {
                        bail!("GET /logs gave only {n} bytes");
                    }
                    Ok((cli, api))
                };
                match step() {
                    Ok((c, a)) if round >= 1 => {
                        r.logs.push(c);
                        r.logs_api.push(a);
                    }
                    Ok(_) => {}
                    Err(e) => r.status = Some(format!("FAILED logs: {e:#}")),
                }
            }
        }
        for (i, id) in &targets {
            let _ = peers[*i]
                .as_ref()
                .expect("live peer")
                .remove(std::slice::from_ref(id));
        }
    }

    print_table(o, &res);
    let failed = res
        .iter()
        .any(|r| r.status.as_deref().is_some_and(|s| s.starts_with("FAILED")));
    drop(peers);
    Ok(failed)
}

/// Section 3 for one peer.
fn many(p: &mut Peer, n: usize) -> Result<Many> {
    let mut m = Many {
        n,
        ..Default::default()
    };
    std::thread::sleep(Duration::from_secs(2));
    m.daemon_idle_kib = p.daemon_pids().iter().map(|&q| rss_kib(q)).sum();
    let before = used_mem_kib();
    let kernel_before = kernel_kib();
    let t = Instant::now();
    let mut ids = Vec::new();
    let r = (|| -> Result<()> {
        for _ in 0..n {
            check_stop()?;
            let (id, el) = run_detached(p, &["busybox", "sleep", "3600"])?;
            ids.push(id);
            m.per_ms.push(el);
        }
        Ok(())
    })();
    m.total_s = t.elapsed().as_secs_f64();
    let measured = r.and_then(|()| {
        std::thread::sleep(Duration::from_secs(3));
        m.mem_delta_kib = used_mem_kib() - before;
        m.kernel_delta_kib = kernel_kib() - kernel_before;
        m.daemon_busy_kib = p.daemon_pids().iter().map(|&q| rss_kib(q)).sum();
        let mut args = vec!["inspect", "-f", "{{.State.Pid}}"];
        args.extend(ids.iter().map(String::as_str));
        let pids = p.ok(&args)?;
        let mut names = HashSet::new();
        for pid in pids
            .split_whitespace()
            .filter_map(|s| s.parse::<u32>().ok())
        {
            let Some(mon) = ppid(pid).filter(|&q| q > 1) else {
                continue;
            };
            if let Some((pss, dirty)) = pss_kib(mon) {
                m.monitor_pss_kib += pss;
                m.monitor_dirty_kib += dirty;
                m.monitors += 1;
                names.insert(exe_name(mon));
            }
        }
        m.monitor_name = names.into_iter().collect::<Vec<_>>().join("+");
        if m.monitors != n {
            bail!(
                "found {} monitor processes for {n} running containers",
                m.monitors
            );
        }
        Ok(())
    });
    let t = Instant::now();
    let rm = p.remove(&ids);
    m.rm_s = t.elapsed().as_secs_f64();
    measured?;
    rm?;
    Ok(m)
}

/// How a row's figure reads: a latency (median / p90 of the samples) or one number.
enum Fig {
    Lat(fn(&Res) -> &Vec<f64>),
    /// A figure from the many-containers section, and its decimals.
    Many(fn(&Many) -> f64, usize),
}

/// A target for skiff: (limit, lower is better, text).
type Target = Option<(f64, bool, &'static str)>;

fn print_table(o: &Opts, res: &[Res]) {
    let idx = |k: Kind| o.peers.iter().position(|p| *p == k);
    let (si, di) = (idx(Kind::Skiff), idx(Kind::Docker));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\ndaemon: the docker CLI against skiff's daemon and dockerd, busybox, --network none; \
         latencies median / p90 ms over {} runs (+{} warm-up) interleaved",
        o.runs, o.warmup
    );
    for (i, r) in res.iter().enumerate() {
        if let Some(s) = &r.status {
            let _ = writeln!(out, "  {}: {s}", o.peers[i].name());
        }
    }
    let _ = writeln!(
        out,
        "{:<46} {:>16} {:>16} {:>9}  target (skiff)",
        "figure", "skiff", "docker", "dkr/skiff"
    );
    let n = o.containers;
    let mut rows: Vec<(String, Fig, Target)> = Vec::new();
    if !o.skip.contains("run") {
        rows.push((
            "run --rm busybox true (CLI), ms".into(),
            Fig::Lat(|r| &r.run),
            Some((10.0, true, "<= 10 ms")),
        ));
        rows.push((
            "run --rm true (API only: create+wait+start), ms".into(),
            Fig::Lat(|r| &r.run_api),
            Some((10.0, true, "<= 10 ms")),
        ));
    }
    if !o.skip.contains("exec") {
        rows.push((
            "exec C true (via docker CLI), ms".into(),
            Fig::Lat(|r| &r.exec_cli),
            Some((5.0, true, "<= 5 ms")),
        ));
        rows.push((
            "exec C true (API only: create+start), ms".into(),
            Fig::Lat(|r| &r.exec_api),
            Some((5.0, true, "<= 5 ms")),
        ));
        rows.push((
            "  CLI floor: inspect -f {{.Id}} C, ms".into(),
            Fig::Lat(|r| &r.cli_floor),
            None,
        ));
    }
    if !o.skip.contains("many") {
        rows.push((
            format!("{n} x run -d sleep 3600: total, s"),
            Fig::Many(|m| m.total_s, 2),
            None,
        ));
        rows.push((
            "  per container, ms".into(),
            Fig::Lat(|r| r.many.as_ref().map_or(&EMPTY, |m| &m.per_ms)),
            None,
        ));
        rows.push((
            "host used-memory delta / container, MiB".into(),
            Fig::Many(|m| per_mib(m.mem_delta_kib as f64, m), 2),
            Some((1.0, true, "<= 1 MiB")),
        ));
        rows.push((
            "  kernel (SUnreclaim+stacks+PT) / cont., MiB".into(),
            Fig::Many(|m| per_mib(m.kernel_delta_kib as f64, m), 2),
            None,
        ));
        rows.push((
            "monitor PSS / container, MiB".into(),
            Fig::Many(|m| per_mib(m.monitor_pss_kib as f64, m), 2),
            Some((1.0, true, "<= 1 MiB")),
        ));
        rows.push((
            "  monitor private dirty / container, MiB".into(),
            Fig::Many(|m| per_mib(m.monitor_dirty_kib as f64, m), 2),
            None,
        ));
        rows.push((
            "daemon RSS idle, MiB".into(),
            Fig::Many(|m| m.daemon_idle_kib as f64 / 1024.0, 1),
            Some((15.0, true, "<= 15 MB")),
        ));
        rows.push((
            format!("daemon RSS with {n} running, MiB"),
            Fig::Many(|m| m.daemon_busy_kib as f64 / 1024.0, 1),
            None,
        ));
        rows.push((
            format!("rm -f of {n} containers, s"),
            Fig::Many(|m| m.rm_s, 2),
            None,
        ));
    }
    if !o.skip.contains("logs") {
        rows.push((
            format!("logs C ({} lines) > /dev/null, ms", o.log_lines),
            Fig::Lat(|r| &r.logs),
            None,
        ));
        rows.push((
            "logs C (API only: GET /logs to EOF), ms".into(),
            Fig::Lat(|r| &r.logs_api),
            None,
        ));
    }
    for (label, fig, target) in rows {
        let cell = |i: Option<usize>| -> (Option<f64>, String) {
            let Some(r) = i.map(|i| &res[i]) else {
                return (None, "-".into());
            };
            let v = match &fig {
                Fig::Lat(f) => stats(f(r)).map(|(m, _)| (m, lat(f(r)))),
                Fig::Many(f, d) => r.many.as_ref().map(|m| (f(m), format!("{:.*}", *d, f(m)))),
            };
            match (v, &r.status) {
                (Some((v, s)), _) => (Some(v), s),
                (None, Some(s)) if s == "not installed" => (None, s.clone()),
                (None, Some(_)) => (None, "FAILED".into()),
                (None, None) => (None, "-".into()),
            }
        };
        let ((sv, ss), (dv, ds)) = (cell(si), cell(di));
        let ratio = match (sv, dv) {
            (Some(s), Some(d)) if s > 0.0 && d > 0.0 => format!("{:.1}x", d / s),
            _ => "n/a".into(),
        };
        let tgt = match (target, sv) {
            (Some((_, _, t)), Some(s)) if s < 0.0 => format!("{t}: n/a (negative: noise)"),
            (Some((lim, low, t)), Some(s)) => {
                let met = if low { s <= lim } else { s >= lim };
                format!("{t}: {}", if met { "met" } else { "MISSED" })
            }
            (Some((_, _, t)), None) => t.to_string(),
            (None, _) => String::new(),
        };
        let _ = writeln!(out, "{label:<46} {ss:>16} {ds:>16} {ratio:>9}  {tgt}");
    }
    let _ = writeln!(
        out,
        "monitor = the parent of each container's init (skiff-shim / containerd-shim-runc-v2); \
         daemon RSS = skiff daemon / dockerd + containerd"
    );
    if let (Some(s), Some(d)) = (si, di) {
        if let (Some((sm, _)), Some((dm, _))) = (stats(&res[s].logs), stats(&res[d].logs)) {
            let r = dm / sm;
            let met = if r >= 10.0 { "met" } else { "MISSED" };
            let _ = writeln!(
                out,
                "logs via CLI: docker/skiff {r:.1}x (target >= 10x: {met})"
            );
        }
    }
    for (i, r) in res.iter().enumerate() {
        if let Some(m) = &r.many {
            let name = o.peers[i].name();
            let _ = writeln!(
                out,
                "{name} monitors found: {} x {}",
                m.monitors, m.monitor_name
            );
        }
    }
    print!("{out}");
}

static EMPTY: Vec<f64> = Vec::new();

/// KiB for all containers → MiB per container.
fn per_mib(kib: f64, m: &Many) -> f64 {
    kib / 1024.0 / m.n as f64
}
