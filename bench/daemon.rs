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

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn install_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(
                sig,
                on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            )
        };
    }
}

fn check_stop() -> Result<()> {
    if STOP.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    Ok(())
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/local/bin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

fn sibling(name: &str) -> PathBuf {
    let me = std::env::current_exe().unwrap_or_default();
    let sib = me.with_file_name(name);
    if sib.is_file() {
        sib
    } else {
        which(name).unwrap_or(sib)
    }
}

/// Runs a command to completion, killed after `timeout`.
fn run_timeout(cmd: &mut Command, timeout: Duration) -> Result<Output> {
    let child = cmd.spawn().with_context(|| format!("start {cmd:?}"))?;
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(timeout) {
            // SAFETY: kill(2) on a child we spawned and have not reaped yet (the sender is
            // dropped only after wait_with_output returns).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    });
    let out = child.wait_with_output();
    drop(tx);
    Ok(out?)
}

fn ok_output(cmd: &mut Command, out: &Output) -> Result<String> {
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs a command with piped output; its stdout on success.
fn sh(cmd: &mut Command) -> Result<String> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = run_timeout(cmd, Duration::from_secs(300))?;
    ok_output(cmd, &out)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Skiff,
    Docker,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Skiff => "skiff",
            Kind::Docker => "docker",
        }
    }
}

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
            "--peers" => {
                o.peers = val()?
                    .split(',')
                    .map(|p| match p {
                        "skiff" => Ok(Kind::Skiff),
                        "docker" => Ok(Kind::Docker),
                        _ => bail!("unknown peer {p:?} (skiff, docker)"),
                    })
                    .collect::<Result<_>>()?
            }
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

/// One daemon and the docker CLI pointed at it. Drop removes its containers, stops it and
/// cleans up what it left behind.
struct Peer {
    kind: Kind,
    dir: PathBuf,
    sock: PathBuf,
    cli_config: PathBuf,
    daemon: Option<Child>,
    /// Every container this run created on it (for cgroup clean-up).
    ids: Vec<String>,
    skiff: PathBuf,
}

impl Peer {
    fn log_path(&self) -> PathBuf {
        self.dir.join("daemon.log")
    }

    fn log_tail(&self) -> String {
        let s = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("docker");
        c.env("DOCKER_HOST", format!("unix://{}", self.sock.display()))
            .env("DOCKER_CONFIG", &self.cli_config)
            .args(args);
        c
    }

    /// The docker CLI, successful, its stdout.
    fn ok(&self, args: &[&str]) -> Result<String> {
        sh(&mut self.cmd(args)).with_context(|| format!("{} daemon", self.kind.name()))
    }

    /// The docker CLI with output to /dev/null; wall time in ms.
    fn timed(&self, args: &[&str]) -> Result<f64> {
        let mut c = self.cmd(args);
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let t = Instant::now();
        let out = run_timeout(&mut c, Duration::from_secs(300))?;
        let el = ms(t.elapsed());
        ok_output(&mut c, &out)?;
        Ok(el)
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            check_stop()?;
            if let Some(Ok(Some(st))) = self.daemon.as_mut().map(|c| c.try_wait()) {
                bail!("daemon exited with {st}:\n{}", self.log_tail());
            }
            let mut c = self.cmd(&["version", "--format", "{{.Server.Version}}"]);
            c.stdout(Stdio::null()).stderr(Stdio::null());
            if UnixStream::connect(&self.sock).is_ok()
                && run_timeout(&mut c, Duration::from_secs(10)).is_ok_and(|o| o.status.success())
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "daemon did not answer on {}:\n{}",
                    self.sock.display(),
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The daemon's processes: skiff's daemon; dockerd and its containerd.
    fn daemon_pids(&self) -> Vec<u32> {
        let Some(d) = &self.daemon else {
            return Vec::new();
        };
        let mut v = vec![d.id()];
        if self.kind == Kind::Docker {
            v.extend(
                children(d.id())
                    .into_iter()
                    .filter(|p| comm(*p) == "containerd"),
            );
        }
        v
    }

    /// `docker run -d ...`: the new container's id.
    fn run_detached(&mut self, args: &[&str]) -> Result<(String, f64)> {
        let mut full = vec!["run", "-d", "--network", "none"];
        full.extend_from_slice(args);
        let mut c = self.cmd(&full);
        c.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let t = Instant::now();
        let out = run_timeout(&mut c, Duration::from_secs(300))?;
        let el = ms(t.elapsed());
        let id = ok_output(&mut c, &out)?.trim().to_string();
        if id.len() < 12 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("{}: run -d printed {id:?}, not an id", self.kind.name());
        }
        self.ids.push(id.clone());
        Ok((id, el))
    }

    fn remove(&self, ids: &[String]) -> Result<()> {
        for chunk in ids.chunks(50) {
            let mut args = vec!["rm", "-f"];
            args.extend(chunk.iter().map(String::as_str));
            self.ok(&args)?;
        }
        Ok(())
    }

    fn cleanup(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            if matches!(d.try_wait(), Ok(None)) {
                if let Ok(out) = self.ok(&["ps", "-aq", "--no-trunc"]) {
                    let ids: Vec<String> = out.split_whitespace().map(String::from).collect();
                    if let Err(e) = self.remove(&ids) {
                        eprintln!("clean-up: {e:#}");
                    }
                }
            }
            let containerd: Vec<u32> = children(d.id())
                .into_iter()
                .filter(|p| comm(*p) == "containerd")
                .collect();
            // SAFETY: kill(2) on our own child, not yet reaped.
            unsafe { libc::kill(d.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline && matches!(d.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = d.kill();
            let _ = d.wait();
            for p in containerd {
                if cmdline(p).contains(&self.dir.display().to_string()) {
                    // SAFETY: kill(2) on a containerd our dockerd started (checked by its
                    // command line naming our temp dir).
                    unsafe { libc::kill(p as i32, libc::SIGKILL) };
                }
            }
        }
        if self.kind == Kind::Skiff {
            let rt = self.dir.join("x/runtime");
            if let Ok(rd) = std::fs::read_dir(&rt) {
                for e in rd.flatten() {
                    let _ = Command::new(&self.skiff)
                        .arg("runtime")
                        .arg("--root")
                        .arg(&rt)
                        .args(["delete", "--force"])
                        .arg(e.file_name())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status();
                }
            }
        }
        // Monitors left behind (a daemon that died): ours name our temp dir.
        let needle = self.dir.display().to_string();
        for p in all_pids() {
            let c = comm(p);
            if (c == "skiff-shim" || c.starts_with("containerd-shim"))
                && cmdline(p).contains(&needle)
            {
                // SAFETY: kill(2) on a monitor of this benchmark (its command line names our
                // temp dir).
                unsafe { libc::kill(p as i32, libc::SIGKILL) };
            }
        }
        unmount_under(&self.dir);
        let parent = if self.kind == Kind::Skiff {
            "skiff"
        } else {
            "docker"
        };
        for id in &self.ids {
            remove_cgroups(parent, id);
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.cleanup();
    }
}

fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// The basename of a process's executable (comm is cut at 15 bytes).
fn exe_name(pid: u32) -> String {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .and_then(|p| Some(p.file_name()?.to_string_lossy().into_owned()))
        .unwrap_or_else(|| comm(pid))
}

fn cmdline(pid: u32) -> String {
    String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default())
        .replace('\0', " ")
}

fn ppid(pid: u32) -> Option<u32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s[s.rfind(')')? + 2..].split(' ').nth(1)?.parse().ok()
}

fn children(pid: u32) -> Vec<u32> {
    all_pids()
        .into_iter()
        .filter(|p| ppid(*p) == Some(pid))
        .collect()
}

/// Lazily unmounts every mount at or under `dir`, deepest first.
fn unmount_under(dir: &Path) {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let prefix = dir.display().to_string();
    // Only ever our own temp dirs.
    if !prefix.starts_with("/tmp/sbd-") {
        return;
    }
    let mut points: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| p.replace("\\040", " "))
        .filter(|p| p == &prefix || p.starts_with(&format!("{prefix}/")))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    points.dedup();
    for p in points {
        let _ = Command::new("umount")
            .args(["-l", &p])
            .stderr(Stdio::null())
            .status();
    }
}

/// Removes the (empty) cgroups a container left, v1 controllers and the v2 tree alike.
fn remove_cgroups(parent: &str, id: &str) {
    let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    let mut roots: Vec<PathBuf> = vec![PathBuf::from("/sys/fs/cgroup")];
    roots.extend(rd.flatten().map(|e| e.path()));
    for r in roots {
        let p = r.join(parent).join(id);
        if p.is_dir() {
            let _ = std::fs::remove_dir(&p);
        }
    }
}

/// (PSS, private dirty) in KiB.
fn pss_kib(pid: u32) -> Option<(u64, u64)> {
    let t = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let field = |name: &str| -> Option<u64> {
        t.lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    Some((field("Pss:")?, field("Private_Dirty:")?))
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

/// The busybox rootfs: busybox-static, its applets as symlinks, /etc/passwd and /etc/group.
fn make_rootfs(rootfs: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let bb = Path::new("/bin/busybox");
    if !bb.is_file() {
        bail!("/bin/busybox is missing: install busybox-static");
    }
    for d in [
        "bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "root", "tmp",
    ] {
        std::fs::create_dir_all(rootfs.join(d))?;
    }
    std::fs::set_permissions(rootfs, std::fs::Permissions::from_mode(0o755))?;
    std::fs::set_permissions(rootfs.join("tmp"), std::fs::Permissions::from_mode(0o1777))?;
    std::fs::copy(bb, rootfs.join("bin/busybox"))?;
    for applet in sh(Command::new(bb).arg("--list-full"))?.lines() {
        let dst = rootfs.join(applet.trim_start_matches('/'));
        if applet.is_empty() || dst.exists() {
            continue;
        }
        if let Some(p) = dst.parent() {
            std::fs::create_dir_all(p)?;
        }
        std::os::unix::fs::symlink("/bin/busybox", &dst)?;
    }
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )?;
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
    Ok(())
}

/// `tar -C rootfs -c . | <cmd>`.
fn tar_into(rootfs: &Path, cmd: &mut Command) -> Result<()> {
    let mut tar = Command::new("tar")
        .arg("-C")
        .arg(rootfs)
        .args(["-c", "."])
        .stdout(Stdio::piped())
        .spawn()
        .context("tar")?;
    let out = cmd
        .stdin(tar.stdout.take().context("tar stdout")?)
        .output()
        .with_context(|| format!("run {cmd:?}"))?;
    let _ = tar.wait();
    ok_output(cmd, &out).map(|_| ())
}

fn start_daemon(cmd: &mut Command, log: &Path) -> Result<Child> {
    let f = std::fs::File::create(log)?;
    // Own process group: the terminal's Ctrl-C reaches us, not the daemon, so the clean-up
    // can still use it.
    Ok(cmd
        .stdin(Stdio::null())
        .stdout(f.try_clone()?)
        .stderr(f)
        .process_group(0)
        .spawn()?)
}

fn start_skiff(tmp: &Path, o: &Opts) -> Result<Peer> {
    let dir = tmp.join("skiff");
    // As dockerd here (--bridge=none --iptables=false): no bridge, the host untouched.
    std::fs::write(dir.join("daemon.json"), r#"{"bridge": "none"}"#)?;
    let mut c = Command::new(&o.skiff);
    c.arg("--data-root")
        .arg(dir.join("root"))
        .arg("--config-file")
        .arg(dir.join("daemon.json"))
        .arg("daemon")
        .arg("-H")
        .arg(format!("unix://{}", dir.join("d.sock").display()))
        .arg("--exec-root")
        .arg(dir.join("x"))
        .env("SKIFF_SHIM", &o.shim);
    match &o.skiff_log {
        Some(f) => c.env("SKIFF_LOG", f),
        None => c.env_remove("SKIFF_LOG"),
    };
    let mut p = Peer {
        kind: Kind::Skiff,
        sock: dir.join("d.sock"),
        cli_config: tmp.join("docker-config"),
        daemon: None,
        ids: Vec::new(),
        skiff: o.skiff.clone(),
        dir,
    };
    p.daemon = Some(start_daemon(&mut c, &p.log_path())?);
    p.wait_ready(Duration::from_secs(30))?;
    Ok(p)
}

fn start_docker(tmp: &Path, dockerd: &Path, image_tar: &Path, rootfs: &Path) -> Result<Peer> {
    let dir = tmp.join("docker");
    std::fs::create_dir_all(&dir)?;
    let sock = dir.join("docker.sock");
    let mut c = Command::new(dockerd);
    c.args(["--bridge=none", "--iptables=false", "--ip6tables=false"])
        .arg(format!("--data-root={}", dir.join("data").display()))
        .arg(format!("--exec-root={}", dir.join("exec").display()))
        .arg(format!("--pidfile={}", dir.join("pid").display()))
        .arg(format!("--host=unix://{}", sock.display()));
    let mut p = Peer {
        kind: Kind::Docker,
        sock,
        cli_config: tmp.join("docker-config"),
        daemon: None,
        ids: Vec::new(),
        skiff: PathBuf::new(),
        dir,
    };
    p.daemon = Some(start_daemon(&mut c, &p.log_path())?);
    p.wait_ready(Duration::from_secs(90))?;
    if image_tar.is_file() {
        p.ok(&["load", "-q", "-i", &image_tar.display().to_string()])?;
    } else {
        let mut imp = p.cmd(&["import", "--change", "CMD [\"sh\"]", "-", "busybox:latest"]);
        tar_into(rootfs, &mut imp)?;
    }
    Ok(p)
}

/// One HTTP/1.1 request on a fresh connection; the whole answer up to EOF.
fn http(sock: &Path, head: &str, body: &str) -> Result<Vec<u8>> {
    let mut s = UnixStream::connect(sock).with_context(|| format!("connect {}", sock.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let req = format!(
        "{head}\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes())?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    Ok(out)
}

fn status_of(resp: &[u8]) -> u16 {
    String::from_utf8_lossy(&resp[..resp.len().min(64)])
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
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

/// The JSON body of a complete answer (any chunked framing around it is skipped).
fn json_body(resp: &[u8]) -> Option<serde_json::Value> {
    let text = String::from_utf8_lossy(resp);
    let head_end = text.find("\r\n\r\n")?;
    let body = &text[head_end..];
    serde_json::from_str(&body[body.find('{')?..=body.rfind('}')?]).ok()
}

/// `docker run --rm IMAGE true` as API calls, without the CLI: create (AutoRemove), wait
/// with `condition=removed` (its headers read before the start, as the CLI does), start,
/// then the wait's answer read to EOF. The exit code must be 0.
fn run_api(sock: &Path) -> Result<()> {
    let body = serde_json::json!({
        "Image": "busybox", "Cmd": ["true"],
        "HostConfig": {"NetworkMode": "none", "AutoRemove": true}
    });
    let resp = http(
        sock,
        "POST /v1.41/containers/create HTTP/1.1\r\nConnection: close",
        &body.to_string(),
    )?;
    let id = match (status_of(&resp), json_body(&resp)) {
        (201, Some(v)) => v["Id"].as_str().unwrap_or_default().to_string(),
        _ => bail!(
            "POST /containers/create: {}",
            String::from_utf8_lossy(&resp)
        ),
    };
    let mut wait = UnixStream::connect(sock)?;
    wait.set_read_timeout(Some(Duration::from_secs(60)))?;
    wait.write_all(
        format!(
            "POST /v1.41/containers/{id}/wait?condition=removed HTTP/1.1\r\nHost: docker\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )?;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = wait.read(&mut buf)?;
        if n == 0 {
            bail!("wait: connection closed: {}", String::from_utf8_lossy(&got));
        }
        got.extend_from_slice(&buf[..n]);
    }
    let resp = http(
        sock,
        &format!("POST /v1.41/containers/{id}/start HTTP/1.1\r\nConnection: close"),
        "",
    )?;
    if status_of(&resp) != 204 {
        bail!(
            "POST /containers/{id}/start: {}",
            String::from_utf8_lossy(&resp)
        );
    }
    wait.read_to_end(&mut got)?;
    match json_body(&got) {
        Some(v) if status_of(&got) == 200 && v["StatusCode"] == 0 => Ok(()),
        _ => bail!("wait for {id}: {}", String::from_utf8_lossy(&got)),
    }
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

/// Sorted copy; (median, p90).
fn stats(v: &[f64]) -> Option<(f64, f64)> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let p90 = s[((s.len() * 9).div_ceil(10)).saturating_sub(1)];
    Some((s[s.len() / 2], p90))
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
    let tmp = tempfile::Builder::new().prefix("sbd-").tempdir_in("/tmp")?;
    let tmp_path = tmp.path().to_path_buf();
    let r = bench(&tmp_path, &o);
    unmount_under(&tmp_path);
    let left = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .contains(&tmp_path.display().to_string());
    if o.keep || left {
        if left {
            eprintln!("mounts remain under {}: left in place", tmp_path.display());
        } else {
            eprintln!("kept {}", tmp_path.display());
        }
        let _ = tmp.keep();
    } else {
        drop(tmp);
    }
    if STOP.load(Ordering::SeqCst) {
        eprintln!("interrupted (containers and daemons removed)");
        std::process::exit(130);
    }
    if r? {
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
        let root = tmp.join("skiff/root");
        let mut imp = Command::new(&o.skiff);
        imp.arg("--data-root").arg(&root).args([
            "import",
            "--change",
            "CMD [\"sh\"]",
            "-",
            "busybox:latest",
        ]);
        tar_into(&rootfs, &mut imp)?;
        sh(Command::new(&o.skiff)
            .arg("--data-root")
            .arg(&root)
            .args(["save", "-o"])
            .arg(&image_tar)
            .arg("busybox:latest"))?;
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
            Kind::Skiff => Some(start_skiff(tmp, o)),
            Kind::Docker => dockerd
                .as_ref()
                .map(|d| start_docker(tmp, d, &image_tar, &rootfs)),
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
                    run_api(&p.sock)?;
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
            let id = match p.run_detached(&["--name", "bench-exec", "busybox", "sleep", "3600"]) {
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
            let id = match p.run_detached(&["busybox", "seq", "1", &lines]) {
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
            let (id, el) = p.run_detached(&["busybox", "sleep", "3600"])?;
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

fn lat(v: &[f64]) -> String {
    match stats(v) {
        Some((m, p)) => format!("{m:.1} / {p:.1}"),
        None => "-".into(),
    }
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
