//! Helpers shared by the benchmark programs (each bin declares `mod common;` and uses a
//! subset): finding binaries, running commands with a timeout, Ctrl-C handling, /proc
//! inspection, clean-up of mounts and cgroups, the busybox rootfs, statistics, a minimal
//! HTTP client for the Engine API over a unix socket, and `Peer`: one daemon (skiff's or
//! dockerd) driven through the docker CLI.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

// ---------------------------------------------------------------------------------------
// Ctrl-C.

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// SIGINT and SIGTERM set a flag (see `check_stop`) instead of killing the program, so that
/// it can still remove what it started.
pub fn install_signals() {
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

/// Whether SIGINT or SIGTERM arrived.
pub fn stopped() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// An "interrupted" error once SIGINT or SIGTERM arrived.
pub fn check_stop() -> Result<()> {
    if stopped() {
        bail!("interrupted");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Finding binaries.

/// Whether `p` is a regular file with an execute bit.
pub fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// First executable `name` on $PATH, then in the sbin and local dirs root usually has.
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain([
            "/usr/local/sbin",
            "/usr/local/bin",
            "/usr/sbin",
            "/usr/bin",
            "/sbin",
        ])
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(name))
        .find(|p| is_executable(p))
}

/// `explicit` if given (and executable), else `name` next to this binary (the cargo target
/// dir: target/release/skiff), else `name` on $PATH.
pub fn find_tool(explicit: Option<&Path>, name: &str) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf()).filter(|p| is_executable(p));
    }
    std::env::current_exe()
        .ok()
        .map(|e| e.with_file_name(name))
        .filter(|p| is_executable(p))
        .or_else(|| which(name))
}

/// `find_tool(None, name)`, else the (missing) path next to this binary, for the error.
pub fn sibling(name: &str) -> PathBuf {
    find_tool(None, name).unwrap_or_else(|| {
        std::env::current_exe()
            .unwrap_or_default()
            .with_file_name(name)
    })
}

// ---------------------------------------------------------------------------------------
// Running commands.

/// Runs a command to completion, killed after `timeout`.
pub fn run_timeout(cmd: &mut Command, timeout: Duration) -> Result<Output> {
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

/// The stdout of a finished command, or an error naming it with its status and output.
pub fn ok_output(cmd: &mut Command, out: &Output) -> Result<String> {
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

/// Runs a command (stdin /dev/null, output piped, killed after 300 s); its stdout on success.
pub fn sh(cmd: &mut Command) -> Result<String> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = run_timeout(cmd, Duration::from_secs(300))?;
    ok_output(cmd, &out)
}

/// Starts a daemon with stdout and stderr to `log`, in its own process group: the terminal's
/// Ctrl-C reaches us, not the daemon, so the clean-up can still use it.
pub fn start_daemon(cmd: &mut Command, log: &Path) -> Result<Child> {
    let f = std::fs::File::create(log).with_context(|| format!("create {}", log.display()))?;
    cmd.stdin(Stdio::null())
        .stdout(f.try_clone()?)
        .stderr(f)
        .process_group(0)
        .spawn()
        .with_context(|| format!("start {cmd:?}"))
}

/// A child process stopped on drop: SIGTERM (lets a daemon stop cleanly), up to 20 s, then
/// SIGKILL; always reaped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            // SAFETY: kill(2) on our own child, not yet reaped.
            unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline && matches!(self.0.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `ok` every 50 ms until it holds; an error naming `what` after `secs`.
pub fn wait_for(what: &str, secs: u64, mut ok: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        check_stop()?;
        if ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{what} did not come up in {secs}s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A free TCP port on 127.0.0.1 (bound and released: the caller binds it next).
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")
        .context("bind 127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Debian's docker-registry serving from `tmp/registry` on a free port of 127.0.0.1, up and
/// accepting connections; stopped when the `Proc` drops.
pub fn start_registry(tmp: &Path) -> Result<(Proc, u16)> {
    let port = free_port()?;
    let cfg = tmp.join("registry.yml");
    std::fs::write(
        &cfg,
        format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            tmp.join("registry").display()
        ),
    )?;
    let log = std::fs::File::create(tmp.join("registry.log"))?;
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("start docker-registry (Debian package docker-registry)")?;
    let p = Proc(child);
    wait_for("docker-registry", 20, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    })?;
    Ok((p, port))
}

// ---------------------------------------------------------------------------------------
// Figures.

/// A duration in milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Sorted copy; (median, p90). The median of an even count is the upper middle sample; p90
/// is the nearest-rank one.
pub fn stats(v: &[f64]) -> Option<(f64, f64)> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let p90 = s[((s.len() * 9).div_ceil(10)).saturating_sub(1)];
    Some((s[s.len() / 2], p90))
}

/// The median as `stats` has it (upper middle of an even count).
pub fn median(v: &[f64]) -> Option<f64> {
    stats(v).map(|(m, _)| m)
}

/// The median with an even count's two middle samples averaged.
pub fn median_mean(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    Some(if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    })
}

/// "median / p90" with one decimal, or "-" without samples.
pub fn lat(v: &[f64]) -> String {
    match stats(v) {
        Some((m, p)) => format!("{m:.1} / {p:.1}"),
        None => "-".into(),
    }
}

// ---------------------------------------------------------------------------------------
// Processes (/proc).

/// Every pid in /proc.
pub fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// A process's comm (its name, cut at 15 bytes); empty when it is gone.
pub fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// A process's command line, arguments joined by spaces; empty when it is gone.
pub fn cmdline(pid: u32) -> String {
    String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default())
        .replace('\0', " ")
}

/// A process's parent pid (field 4 of /proc/PID/stat, read after the `)` ending comm).
pub fn ppid(pid: u32) -> Option<u32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s[s.rfind(')')? + 2..].split(' ').nth(1)?.parse().ok()
}

/// The direct children of `pid`.
pub fn children(pid: u32) -> Vec<u32> {
    all_pids()
        .into_iter()
        .filter(|p| ppid(*p) == Some(pid))
        .collect()
}

/// (PSS, private dirty) of a process, in KiB. Private dirty memory is what each further
/// container adds; clean file pages (the binary) are shared between all of them.
pub fn pss_kib(pid: u32) -> Option<(u64, u64)> {
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

// ---------------------------------------------------------------------------------------
// Clean-up of mounts and cgroups.

/// `umount -l P`, quietly (it may not be mounted).
pub fn umount_l(p: &Path) {
    let _ = Command::new("umount")
        .arg("-l")
        .arg(p)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Lazily unmounts every mount at or under `dir`, deepest first. Only ever below /tmp (the
/// benchmarks' own temp dirs): anything else is left alone.
pub fn unmount_under(dir: &Path) {
    let prefix = dir.display().to_string();
    if !prefix.starts_with("/tmp/") || dir.components().count() < 3 {
        return;
    }
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| p.replace("\\040", " "))
        .filter(|p| p == &prefix || p.starts_with(&format!("{prefix}/")))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    points.dedup();
    for p in points {
        umount_l(Path::new(&p));
    }
}

/// Removes the (empty) cgroups a container left, v1 controllers and the v2 tree alike.
pub fn remove_cgroups(parent: &str, id: &str) {
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

/// Runs `bench` in a fresh temp dir `/tmp/PREFIX-XXXXXX`, then unmounts what is left under
/// it and removes it (kept with `keep`, or when mounts remain). After SIGINT/SIGTERM it exits
/// 130, saying `removed` (what the clean-up took away).
pub fn in_tempdir<T>(
    prefix: &str,
    keep: bool,
    removed: &str,
    bench: impl FnOnce(&Path) -> Result<T>,
) -> Result<T> {
    let tmp = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/tmp")
        .context("create a temp dir in /tmp")?;
    let tmp_path = tmp.path().to_path_buf();
    let r = bench(&tmp_path);
    unmount_under(&tmp_path);
    let left = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .contains(&tmp_path.display().to_string());
    if keep || left {
        if left {
            eprintln!("mounts remain under {}: left in place", tmp_path.display());
        } else {
            eprintln!("kept {}", tmp_path.display());
        }
        let _ = tmp.keep();
    } else {
        drop(tmp);
    }
    if stopped() {
        eprintln!("interrupted ({removed} removed)");
        std::process::exit(130);
    }
    r
}

// ---------------------------------------------------------------------------------------
// The busybox image.

/// The busybox rootfs: busybox-static, its applets as symlinks, /etc/passwd and /etc/group.
pub fn make_rootfs(rootfs: &Path) -> Result<()> {
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
pub fn tar_into(rootfs: &Path, cmd: &mut Command) -> Result<()> {
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

/// `skiff --data-root ROOT import` of `rootfs` as `busybox:latest` (CMD sh), no daemon;
/// then, with `save_to`, `skiff save` of it to that tar (for `docker load`).
pub fn skiff_import(
    skiff: &Path,
    root: &Path,
    rootfs: &Path,
    save_to: Option<&Path>,
) -> Result<()> {
    let mut imp = Command::new(skiff);
    imp.arg("--data-root").arg(root).args([
        "import",
        "--change",
        "CMD [\"sh\"]",
        "-",
        "busybox:latest",
    ]);
    tar_into(rootfs, &mut imp)?;
    if let Some(tar) = save_to {
        sh(Command::new(skiff)
            .arg("--data-root")
            .arg(root)
            .args(["save", "-o"])
            .arg(tar)
            .arg("busybox:latest"))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The Engine API over a unix socket.

/// One HTTP/1.1 request on a fresh connection; the whole answer up to EOF.
pub fn http(sock: &Path, head: &str, body: &str) -> Result<Vec<u8>> {
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

/// The status code of an answer (0 when there is none).
pub fn status_of(resp: &[u8]) -> u16 {
    String::from_utf8_lossy(&resp[..resp.len().min(64)])
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// The JSON body of a complete answer (any chunked framing around it is skipped).
pub fn json_body(resp: &[u8]) -> Option<serde_json::Value> {
    let text = String::from_utf8_lossy(resp);
    let head_end = text.find("\r\n\r\n")?;
    let body = &text[head_end..];
    serde_json::from_str(&body[body.find('{')?..=body.rfind('}')?]).ok()
}

/// `docker run --rm --network NET busybox true` as API calls, without the CLI: create
/// (AutoRemove), wait with `condition=removed` (headers read before the start, as the CLI
/// does), start, then the wait's answer read to EOF. The exit code must be 0.
pub fn run_api(sock: &Path, network: &str) -> Result<()> {
    let body = serde_json::json!({
        "Image": "busybox", "Cmd": ["true"],
        "HostConfig": {"NetworkMode": network, "AutoRemove": true}
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

// ---------------------------------------------------------------------------------------
// Daemons driven through the docker CLI.

/// Which daemon a `Peer` runs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Skiff,
    Docker,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Skiff => "skiff",
            Kind::Docker => "docker",
        }
    }

    /// `--peers skiff,docker`.
    pub fn parse_list(s: &str) -> Result<Vec<Kind>> {
        s.split(',')
            .map(|p| match p.trim() {
                "skiff" => Ok(Kind::Skiff),
                "docker" => Ok(Kind::Docker),
                _ => bail!("unknown peer {p:?} (skiff, docker)"),
            })
            .collect()
    }
}

/// One daemon and the docker CLI pointed at it. Drop removes its containers, stops it and
/// cleans up what it left behind (monitors, mounts, cgroups).
pub struct Peer {
    pub kind: Kind,
    /// The daemon's own dir (data, exec root, socket, daemon.log) in the temp dir.
    pub dir: PathBuf,
    pub sock: PathBuf,
    /// The CLI's DOCKER_CONFIG (empty: no credentials, no contexts).
    pub cli_config: PathBuf,
    pub daemon: Option<Child>,
    /// Containers this run created on it (the clean-up also removes any `ps -a` lists).
    pub ids: Vec<String>,
    /// skiff's binary, for `skiff runtime delete` of containers a dead daemon left.
    pub skiff: PathBuf,
}

impl Peer {
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("daemon.log")
    }

    /// The last 15 lines of the daemon's log.
    pub fn log_tail(&self) -> String {
        let s = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// The docker CLI pointed at this daemon.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("docker");
        c.env("DOCKER_HOST", format!("unix://{}", self.sock.display()))
            .env("DOCKER_CONFIG", &self.cli_config)
            .args(args);
        c
    }

    /// The docker CLI, successful, its stdout.
    pub fn ok(&self, args: &[&str]) -> Result<String> {
        sh(&mut self.cmd(args)).with_context(|| format!("{} daemon", self.kind.name()))
    }

    /// `c` (a `cmd`) with output to /dev/null; wall time in ms; an error if it failed.
    pub fn timed_cmd(&self, mut c: Command) -> Result<f64> {
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let t = Instant::now();
        let out = run_timeout(&mut c, Duration::from_secs(300))?;
        let el = ms(t.elapsed());
        ok_output(&mut c, &out).with_context(|| format!("{} daemon", self.kind.name()))?;
        Ok(el)
    }

    /// The docker CLI with output to /dev/null; wall time in ms.
    pub fn timed(&self, args: &[&str]) -> Result<f64> {
        self.timed_cmd(self.cmd(args))
    }

    /// Until the daemon answers `docker version` (an error if it exits or `timeout` passes).
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            check_stop()?;
            if let Some(Ok(Some(st))) = self.daemon.as_mut().map(|c| c.try_wait()) {
                bail!(
                    "{} daemon exited with {st}:\n{}",
                    self.kind.name(),
                    self.log_tail()
                );
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
                    "{} daemon did not answer on {}:\n{}",
                    self.kind.name(),
                    self.sock.display(),
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The daemon's processes: skiff's daemon; dockerd and its containerd.
    pub fn daemon_pids(&self) -> Vec<u32> {
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

    /// `docker rm -f` of `ids`, 50 at a time.
    pub fn remove(&self, ids: &[String]) -> Result<()> {
        for chunk in ids.chunks(50) {
            let mut args = vec!["rm", "-f"];
            args.extend(chunk.iter().map(String::as_str));
            self.ok(&args)?;
        }
        Ok(())
    }

    /// `tar -C rootfs -c . | docker import - busybox:latest` (CMD sh).
    pub fn import_rootfs(&self, rootfs: &Path) -> Result<()> {
        let mut imp = self.cmd(&["import", "--change", "CMD [\"sh\"]", "-", "busybox:latest"]);
        tar_into(rootfs, &mut imp)
    }

    fn cleanup(&mut self) {
        let mut ids = std::mem::take(&mut self.ids);
        if let Some(mut d) = self.daemon.take() {
            if matches!(d.try_wait(), Ok(None)) {
                if let Ok(out) = self.ok(&["ps", "-aq", "--no-trunc"]) {
                    let all: Vec<String> = out.split_whitespace().map(String::from).collect();
                    for chunk in all.chunks(50) {
                        if let Err(e) = self.remove(chunk) {
                            eprintln!("clean-up: {e:#}");
                        }
                    }
                    ids.extend(all);
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
        if self.kind == Kind::Skiff {
            // The containers' namespace files, then the directory's own bind mount.
            let ns = self.dir.join("x/netns");
            if let Ok(rd) = std::fs::read_dir(&ns) {
                for e in rd.flatten() {
                    umount_l(&e.path());
                }
            }
            umount_l(&ns);
        }
        unmount_under(&self.dir);
        let parent = self.kind.name();
        ids.sort();
        ids.dedup();
        for id in &ids {
            remove_cgroups(parent, id);
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// How to start skiff's daemon for `start_skiff`.
pub struct SkiffDaemon<'a> {
    /// skiff's binary, or a wrapper that execs it (`nsenter --net=... -- skiff`).
    pub cmd: Command,
    pub skiff: &'a Path,
    pub shim: &'a Path,
    /// SKIFF_LOG for the daemon; None clears it.
    pub log: Option<&'a str>,
    /// daemon.json. A daemon in the host's namespace must have `{"bridge": "none"}` (no
    /// bridge, no firewall table there).
    pub config: &'a str,
}

/// skiff's daemon in `tmp/skiff` (data root `tmp/skiff/root`, exec root `tmp/skiff/x`,
/// socket `tmp/skiff/d.sock`), answering.
pub fn start_skiff(tmp: &Path, s: SkiffDaemon) -> Result<Peer> {
    let dir = tmp.join("skiff");
    std::fs::create_dir_all(&dir)?;
    std::fs::create_dir_all(tmp.join("docker-config"))?;
    std::fs::write(dir.join("daemon.json"), s.config)?;
    let mut c = s.cmd;
    c.arg("--data-root")
        .arg(dir.join("root"))
        .arg("--config-file")
        .arg(dir.join("daemon.json"))
        .arg("daemon")
        .arg("-H")
        .arg(format!("unix://{}", dir.join("d.sock").display()))
        .arg("--exec-root")
        .arg(dir.join("x"))
        .env("SKIFF_SHIM", s.shim);
    match s.log {
        Some(f) => c.env("SKIFF_LOG", f),
        None => c.env_remove("SKIFF_LOG"),
    };
    let mut p = Peer {
        kind: Kind::Skiff,
        sock: dir.join("d.sock"),
        cli_config: tmp.join("docker-config"),
        daemon: None,
        ids: Vec::new(),
        skiff: s.skiff.to_path_buf(),
        dir,
    };
    p.daemon = Some(start_daemon(&mut c, &p.log_path())?);
    p.wait_ready(Duration::from_secs(30))?;
    Ok(p)
}

/// Debian's dockerd in `tmp/docker` as the machine's rules have it: `--bridge=none
/// --iptables=false`, plus `extra` arguments; answering.
pub fn start_docker(tmp: &Path, dockerd: &Path, extra: &[&str]) -> Result<Peer> {
    let dir = tmp.join("docker");
    std::fs::create_dir_all(&dir)?;
    std::fs::create_dir_all(tmp.join("docker-config"))?;
    let sock = dir.join("docker.sock");
    let mut c = Command::new(dockerd);
    c.args(["--bridge=none", "--iptables=false", "--ip6tables=false"])
        .arg(format!("--data-root={}", dir.join("data").display()))
        .arg(format!("--exec-root={}", dir.join("exec").display()))
        .arg(format!("--pidfile={}", dir.join("pid").display()))
        .arg(format!("--host=unix://{}", sock.display()))
        .args(extra);
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
    Ok(p)
}
