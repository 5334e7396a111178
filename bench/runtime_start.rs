//! runtime-start: how long `run` of a container that execs /bin/true takes,
//! skiff's runtime side by side with runc and a bare-namespaces baseline,
//! measured interleaved in the same run so machine noise hits all equally.
//!
//! ```text
//! cargo build --release -p skiff -p skiff-bench && target/release/runtime-start [--runs 50]
//!     [--warmup 5] [--skiff PATH] [--runc PATH] [--peers skiff,runc,baseline]
//! ```
//! Needs root and /bin/busybox (busybox-static). Peers that are not installed
//! are reported as such; a peer whose run fails makes the program exit non-zero.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use common::{find_tool, make_rootfs, median_mean, which};

struct Opts {
    runs: usize,
    warmup: usize,
    skiff: Option<PathBuf>,
    runc: Option<PathBuf>,
    peers: Vec<String>,
}

fn usage() -> ! {
    eprintln!(
        "usage: runtime-start [--runs N] [--warmup N] [--skiff PATH] [--runc PATH] \
         [--peers skiff,runc,baseline]"
    );
    std::process::exit(2)
}

fn parse_opts() -> Result<Opts> {
    let mut o = Opts {
        runs: 50,
        warmup: 5,
        skiff: None,
        runc: None,
        peers: vec!["skiff".into(), "runc".into(), "baseline".into()],
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--runs" => o.runs = val().parse().context("--runs")?,
            "--warmup" => o.warmup = val().parse().context("--warmup")?,
            "--skiff" => o.skiff = Some(PathBuf::from(val())),
            "--runc" => o.runc = Some(PathBuf::from(val())),
            "--peers" => o.peers = val().split(',').map(|s| s.trim().to_string()).collect(),
            "-h" | "--help" => usage(),
            other => bail!("unknown argument {other:?}"),
        }
    }
    if o.runs == 0 {
        bail!("--runs must be at least 1");
    }
    Ok(o)
}

/// A scratch directory removed (with everything in it) on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Builds DIR/rootfs (busybox + `true`/`sh` symlinks) and DIR/config.json:
/// runc's default spec with args ["/bin/true"] and terminal false.
fn make_bundle(dir: &Path) -> Result<PathBuf> {
    let rootfs = dir.join("rootfs");
    make_rootfs(&rootfs)?;
    let spec = default_spec(&["/bin/true"], "rootfs");
    std::fs::write(dir.join("config.json"), serde_json::to_vec_pretty(&spec)?)?;
    Ok(rootfs)
}

/// Builds a probe bundle in `dir` sharing `rootfs` (absolute root.path):
/// `sh -c 'echo probe-$$'` must print `probe-1`.
fn make_probe_bundle(dir: &Path, rootfs: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let spec = default_spec(
        &["/bin/sh", "-c", "echo probe-$$"],
        &rootfs.to_string_lossy(),
    );
    std::fs::write(dir.join("config.json"), serde_json::to_vec_pretty(&spec)?)?;
    Ok(())
}

/// runc's default spec (`runc spec`, runc 1.1) with `args`, terminal false.
fn default_spec(args: &[&str], root: &str) -> serde_json::Value {
    serde_json::json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "ambient": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": root, "readonly": true},
        "hostname": "runc",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

/// One contender: how to build its command for run `i`, and how to clean up.
struct Peer {
    name: &'static str,
    /// None: not installed (reported, never invented).
    bin: Option<PathBuf>,
    prefix: Vec<String>,
    /// --root for OCI runtimes; None for the baseline.
    root: Option<PathBuf>,
    samples: Vec<f64>,
    /// Set when a run failed: the peer is skipped from then on.
    failed: bool,
}

impl Peer {
    fn command(&self, bundle: &Path, rootfs: &Path, id: &str) -> Command {
        let bin = self.bin.as_ref().expect("installed");
        let mut c = Command::new(bin);
        c.args(&self.prefix);
        match &self.root {
            Some(root) => {
                c.arg("--root")
                    .arg(root)
                    .arg("run")
                    .arg("--bundle")
                    .arg(bundle)
                    .arg(id);
            }
            None => {
                c.args(["-fpium", "--mount-proc", "chroot"])
                    .arg(rootfs)
                    .arg("/bin/true");
            }
        }
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c
    }

    /// Times one run; on failure the error names the command and its stderr.
    fn run_once(&self, bundle: &Path, rootfs: &Path, id: &str) -> Result<f64> {
        let mut cmd = self.command(bundle, rootfs, id);
        let t = Instant::now();
        let out = cmd.output();
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        let out = out.with_context(|| format!("{} failed to start: {cmd:?}", self.name))?;
        self.cleanup(id);
        if !out.status.success() {
            bail!(
                "{} failed ({}): {:?}\nstderr: {}",
                self.name,
                out.status,
                cmd,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(ms)
    }

    /// Untimed check that the runtime really runs containers (a binary that
    /// exits 0 without doing anything must not win the benchmark).
    fn probe(&self, probe_bundle: &Path, rootfs: &Path, id: &str) -> Result<()> {
        let mut cmd = self.command(probe_bundle, rootfs, id);
        cmd.stdout(Stdio::piped());
        let out = cmd
            .output()
            .with_context(|| format!("{} failed to start: {cmd:?}", self.name))?;
        self.cleanup(id);
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || stdout.trim() != "probe-1" {
            bail!(
                "{} failed the probe run ({}): {:?}\nexpected stdout \"probe-1\", got {:?}\nstderr: {}",
                self.name,
                out.status,
                cmd,
                stdout.trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// `delete --force ID` (untimed): `run` deletes on exit, this catches
    /// whatever a failed run left behind.
    fn cleanup(&self, id: &str) {
        if let (Some(bin), Some(root)) = (&self.bin, &self.root) {
            let _ = Command::new(bin)
                .args(&self.prefix)
                .arg("--root")
                .arg(root)
                .args(["delete", "--force", id])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn main() -> Result<()> {
    let opts = parse_opts()?;
    let dir =
        std::env::temp_dir().join(format!("skiff-bench-runtime-start-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let scratch = Scratch(dir.clone());
    let bundle = dir.join("bundle");
    std::fs::create_dir_all(&bundle)?;
    let rootfs = make_bundle(&bundle)?;

    let want = |n: &str| opts.peers.iter().any(|p| p == n);
    let mut peers = Vec::new();
    if want("skiff") {
        peers.push(Peer {
            name: "skiff",
            bin: find_tool(opts.skiff.as_deref(), "skiff"),
            prefix: vec!["runtime".into()],
            root: Some(dir.join("root-skiff")),
            samples: Vec::new(),
            failed: false,
        });
    }
    if want("runc") {
        peers.push(Peer {
            name: "runc",
            bin: opts.runc.clone().or_else(|| which("runc")),
            prefix: Vec::new(),
            root: Some(dir.join("root-runc")),
            samples: Vec::new(),
            failed: false,
        });
    }
    if want("baseline") {
        peers.push(Peer {
            name: "unshare+chroot",
            bin: which("unshare"),
            prefix: Vec::new(),
            root: None,
            samples: Vec::new(),
            failed: false,
        });
    }

    let base = format!("bench-{}", std::process::id());
    let probe_bundle = dir.join("probe");
    make_probe_bundle(&probe_bundle, &rootfs)?;
    let total = opts.warmup + opts.runs;
    let mut failures = Vec::new();
    for p in peers
        .iter_mut()
        .filter(|p| p.bin.is_some() && p.root.is_some())
    {
        if let Err(e) = p.probe(&probe_bundle, &rootfs, &format!("{base}-{}-probe", p.name)) {
            p.failed = true;
            failures.push(e);
        }
    }
    for i in 0..total {
        for p in peers.iter_mut().filter(|p| p.bin.is_some() && !p.failed) {
            let id = format!("{base}-{}-{i}", p.name);
            match p.run_once(&bundle, &rootfs, &id) {
                Ok(ms) if i >= opts.warmup => p.samples.push(ms),
                Ok(_) => {}
                Err(e) => {
                    p.failed = true;
                    failures.push(e);
                }
            }
        }
    }

    println!(
        "runtime start: `run` of /bin/true in a busybox bundle, {} runs (+{} warm-up), interleaved",
        opts.runs, opts.warmup
    );
    println!(
        "{:<16} {:>10} {:>10} {:>10}  binary",
        "name", "median ms", "p90 ms", "min ms"
    );
    let mut medians = std::collections::HashMap::new();
    for p in &mut peers {
        let Some(bin) = &p.bin else {
            println!(
                "{:<16} {:>10} {:>10} {:>10}  not installed",
                p.name, "-", "-", "-"
            );
            continue;
        };
        if p.failed || p.samples.is_empty() {
            println!(
                "{:<16} {:>10} {:>10} {:>10}  {} FAILED",
                p.name,
                "-",
                "-",
                "-",
                bin.display()
            );
            continue;
        }
        p.samples.sort_by(|a, b| a.total_cmp(b));
        let med = median_mean(&p.samples).unwrap_or(f64::NAN);
        medians.insert(p.name, med);
        println!(
            "{:<16} {:>10.2} {:>10.2} {:>10.2}  {}",
            p.name,
            med,
            percentile(&p.samples, 0.9),
            p.samples[0],
            bin.display()
        );
    }
    match (medians.get("skiff"), medians.get("runc")) {
        (Some(s), Some(r)) => println!("skiff/runc (median): {:.2}x", s / r),
        _ => println!("skiff/runc (median): n/a (needs both)"),
    }
    drop(scratch);
    for e in &failures {
        eprintln!("error: {e:#}");
    }
    if !failures.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}
