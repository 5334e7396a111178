//! Test support for the daemon end-to-end tests: a real `skiff daemon` (this package's
//! binary, with this package's `skiff-shim` as its monitor) on a temp socket, data root and
//! exec root, with a busybox image imported from the host's busybox-static; the real docker
//! CLI pointed at it; raw HTTP for malformed requests. Drop removes every container (their
//! monitors, mounts and cgroups go with them), stops the daemon and removes the directories.

#![allow(dead_code)]

#[path = "../../../skiff-daemon/tests/support/ready.rs"]
mod ready;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

#[path = "../support/mod.rs"]
mod rt_support;

pub const SKIFF: &str = env!("CARGO_BIN_EXE_skiff");
pub const SHIM: &str = env!("CARGO_BIN_EXE_skiff-shim");

pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub sock: PathBuf,
    child: Option<Child>,
    /// The daemon's own network namespace: its bridge, veths and nftables table live there,
    /// so parallel test daemons never meet and the host's network and firewall stay as
    /// they were. Dropped after the daemon (field order).
    pub netns: NetNs,
    /// Run in the host's namespace with networking off (tests that reach a registry on the
    /// host's 127.0.0.1).
    host_net: bool,
    /// Extra environment for the daemon process.
    env: Vec<(String, String)>,
}

/// A named network namespace (`ip netns add`) with `lo` up, deleted on drop.
pub struct NetNs {
    pub name: String,
}

impl NetNs {
    pub fn new() -> NetNs {
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let name = format!(
            "skt-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap();
        assert!(ok.success(), "ip netns add {name}");
        let ok = Command::new("ip")
            .args(["-n", &name, "link", "set", "lo", "up"])
            .status()
            .unwrap();
        assert!(ok.success(), "lo up in {name}");
        NetNs { name }
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    /// `cmd` run inside this namespace (through nsenter: only the network namespace).
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.path().display()))
            .arg("--")
            .arg(program);
        c
    }
}

impl Default for NetNs {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

impl Daemon {
    /// A daemon with the `busybox:latest` image.
    pub fn start() -> Daemon {
        Self::start_with("{}")
    }

    /// A daemon in the host's network namespace with networking off (`"bridge": "none"`):
    /// for tests that talk to servers on the host's loopback (registries).
    pub fn start_on_host() -> Daemon {
        Self::start_opts(r#"{"bridge": "none"}"#, true)
    }

    pub fn start_with(daemon_json: &str) -> Daemon {
        Self::start_opts(daemon_json, false)
    }

    /// [`Daemon::start_on_host`] with extra environment variables for the daemon.
    pub fn start_on_host_env(env: &[(&str, &str)]) -> Daemon {
        Self::start_env(r#"{"bridge": "none"}"#, true, env)
    }

    fn start_opts(daemon_json: &str, host_net: bool) -> Daemon {
        Self::start_env(daemon_json, host_net, &[])
    }

    fn start_env(daemon_json: &str, host_net: bool, env: &[(&str, &str)]) -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("skiff-d-")
            .tempdir_in("/tmp")
            .unwrap();
        import_busybox(dir.path(), &dir.path().join("root"));
        std::fs::write(dir.path().join("daemon.json"), daemon_json).unwrap();
        let sock = dir.path().join("d.sock");
        let mut d = Daemon {
            dir,
            sock,
            child: None,
            netns: NetNs::new(),
            host_net,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        d.spawn();
        d
    }

    pub fn exec_root(&self) -> PathBuf {
        self.dir.path().join("exec")
    }
    pub fn data_root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// (Re)starts the daemon process on the same roots.
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("daemon.log"))
            .unwrap();
        let mut cmd = if self.host_net {
            Command::new(SKIFF)
        } else {
            self.netns.command(SKIFF)
        };
        let child = cmd
            .arg("--data-root")
            .arg(self.data_root())
            .arg("--config-file")
            .arg(self.dir.path().join("daemon.json"))
            .arg("daemon")
            .arg("-H")
            .arg(format!("unix://{}", self.sock.display()))
            .arg("--exec-root")
            .arg(self.exec_root())
            .env("SKIFF_SHIM", SHIM)
            .env("SKIFF_LOG", "debug")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start skiff daemon");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if ready::answers_ping(&self.sock) {
                return;
            }
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("daemon exited with {st}: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("daemon did not listen: {}", self.log());
    }

    /// SIGTERM the daemon and wait (10 s, then SIGKILL) for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on our child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGKILL the daemon (containers must survive).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.sock.display())
    }

    pub fn docker_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("docker");
        c.env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.dir.path().join("docker-config"))
            .args(args);
        c
    }

    /// Runs the docker CLI with a timeout.
    pub fn docker(&self, args: &[&str]) -> Output {
        self.docker_input(args, None)
    }

    pub fn docker_input(&self, args: &[&str], input: Option<&[u8]>) -> Output {
        let mut c = self.docker_cmd(args);
        c.stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = c.spawn().expect("docker CLI");
        if let Some(i) = input {
            let mut s = child.stdin.take().unwrap();
            s.write_all(i).unwrap();
        }
        let pid = child.id();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            if rx.recv_timeout(Duration::from_secs(60)).is_err() {
                // SAFETY: kill(2) on a pid we spawned; at worst it has exited already.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
        });
        let out = child.wait_with_output().unwrap();
        let _ = tx.send(());
        out
    }

    /// Runs the docker CLI and asserts success; returns trimmed stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            o.status.success(),
            "docker {args:?} failed ({:?}): {}\n--- daemon log tail:\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr),
            tail(&self.log(), 30)
        );
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    pub fn inspect(&self, id: &str) -> serde_json::Value {
        let s = self.ok(&["inspect", id]);
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        v[0].clone()
    }

    /// One raw HTTP request; returns (status, body).
    pub fn http(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        let mut s = UnixStream::connect(&self.sock).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let b = body.unwrap_or("");
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{b}",
            b.len()
        );
        s.write_all(req.as_bytes()).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out).to_string();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|x| x.1)
            .unwrap_or("")
            .to_string();
        (status, body)
    }

    /// Waits until `f` holds (polling), or panics with `what`.
    pub fn until(&self, what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if f() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("timed out waiting for {what}\n{}", tail(&self.log(), 30));
    }
}

/// Imports `busybox:latest` (from the host's busybox-static) into the data root `root`,
/// using `scratch` for the rootfs it builds.
pub fn import_busybox(scratch: &Path, root: &Path) {
    let rootfs = scratch.join("rootfs");
    rt_support::make_rootfs(&rootfs);
    let mut tar = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .args(["-c", "."])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let st = Command::new(SKIFF)
        .arg("--data-root")
        .arg(root)
        .args(["import", "--change", "CMD [\"sh\"]", "-", "busybox:latest"])
        .stdin(tar.stdout.take().unwrap())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(tar.wait().unwrap().success(), "tar of the busybox rootfs");
    assert!(st.success(), "import busybox");
    std::fs::remove_dir_all(&rootfs).unwrap();
}

pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn shims_under(exec_root: &Path) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    let needle = exec_root.display().to_string();
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains("skiff-shim") {
            // The shim's argument is the container dir under the data root.
            if let Some(root) = Path::new(&needle).parent() {
                if cmd.contains(&root.display().to_string()) {
                    out.push(pid);
                }
            }
        }
    }
    out
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.is_none() {
            self.spawn();
        }
        let ids = self.docker(&["ps", "-aq", "--no-trunc"]);
        for id in stdout(&ids).split_whitespace() {
            let _ = self.docker(&["rm", "-f", id]);
        }
        self.stop();
        // Anything left (a test that failed midway): the runtime's state, monitors, mounts.
        let rt = self.exec_root().join("runtime");
        if let Ok(rd) = std::fs::read_dir(&rt) {
            for e in rd.flatten() {
                let _ = Command::new(SKIFF)
                    .arg("runtime")
                    .arg("--root")
                    .arg(&rt)
                    .args(["delete", "--force"])
                    .arg(e.file_name())
                    .output();
            }
        }
        for pid in shims_under(&self.exec_root()) {
            // SAFETY: kill(2) on a leftover monitor of this test.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        if let Ok(rd) = std::fs::read_dir(self.data_root().join("containers")) {
            for e in rd.flatten() {
                let _ = Command::new("umount")
                    .arg("-l")
                    .arg(e.path().join("rootfs"))
                    .stderr(Stdio::null())
                    .status();
            }
        }
        // Namespace files of containers (and of the pool) left, then the directories' own
        // bind mounts.
        for ns in [
            self.exec_root().join("netns"),
            self.exec_root().join("netns-pool"),
        ] {
            if let Ok(rd) = std::fs::read_dir(&ns) {
                for e in rd.flatten() {
                    let _ = Command::new("umount")
                        .arg("-l")
                        .arg(e.path())
                        .stderr(Stdio::null())
                        .status();
                }
            }
            let _ = Command::new("umount")
                .arg("-l")
                .arg(&ns)
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A raw HTTP response: status, headers (lower-cased names) and the body (de-chunked).
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == &name.to_ascii_lowercase())
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// Decodes a `Transfer-Encoding: chunked` body.
pub fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = std::str::from_utf8(&b[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 {
            return out;
        }
        let start = eol + 2;
        let end = (start + size).min(b.len());
        out.extend_from_slice(&b[start..end]);
        b = &b[(end + 2).min(b.len())..];
    }
}

impl Daemon {
    /// One raw HTTP request with a binary body and a content type; the body is de-chunked.
    pub fn http_raw(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> RawResponse {
        let mut s = UnixStream::connect(&self.sock).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let split = out
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or(out.len());
        let head = String::from_utf8_lossy(&out[..split]).to_string();
        let raw = out.get(split + 4..).unwrap_or_default();
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let chunked = headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
        let body = if chunked { dechunk(raw) } else { raw.to_vec() };
        RawResponse {
            status,
            headers,
            body,
        }
    }

    /// Ids of the `skiff-shim` monitors of this daemon still running.
    pub fn live_shims(&self) -> Vec<i32> {
        shims_under(&self.exec_root())
    }
}
