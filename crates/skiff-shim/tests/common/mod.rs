//! Helpers of the shim's root tests: a busybox rootfs shared by every test (read-only in the
//! containers), one directory per container, the real shim binary, and a small client of the
//! control socket. Every container is removed when its [`Shim`] is dropped.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const BIN: &str = env!("CARGO_BIN_EXE_skiff-shim-dev");

/// The shared bundle (rootfs + runc's default config.json), made once per test run.
pub fn base_bundle() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("shim-busybox-bundle");
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/make-busybox-bundle.sh");
        let out = Command::new("sh").arg(script).arg(&dir).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
}

fn unique_id(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "shimtest-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A container to start: its directory, config.json and shim.json.
pub struct Spec {
    pub dir: tempfile::TempDir,
    pub id: String,
    pub config: Value,
    pub shim: Value,
}

impl Spec {
    pub fn new(tag: &str, args: &[&str]) -> Spec {
        let base = base_bundle();
        let mut config: Value =
            serde_json::from_slice(&std::fs::read(base.join("config.json")).unwrap()).unwrap();
        config["root"]["path"] = json!(base.join("rootfs"));
        config["process"]["args"] = json!(args);
        let dir = tempfile::Builder::new().prefix("shimt").tempdir().unwrap();
        let id = unique_id(tag);
        let d = dir.path();
        let shim = json!({
            "id": id,
            "runtime_root": d.join("rt"),
            "bundle": d,
            "stdin": false,
            "stdin_once": false,
            "tty": false,
            "log": {"driver": "json-file", "opts": {}, "path": d.join("container.log")},
            "exit_file": d.join("exit.json"),
            "socket": d.join("shim.sock"),
        });
        Spec {
            dir,
            id,
            config,
            shim,
        }
    }

    pub fn stdin(mut self, once: bool) -> Spec {
        self.shim["stdin"] = json!(true);
        self.shim["stdin_once"] = json!(once);
        self
    }

    pub fn tty(mut self) -> Spec {
        self.shim["tty"] = json!(true);
        self.config["process"]["terminal"] = json!(true);
        self
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn sock(&self) -> PathBuf {
        self.path().join("shim.sock")
    }

    pub fn rt_root(&self) -> PathBuf {
        self.path().join("rt")
    }

    pub fn write(&self) {
        std::fs::write(self.path().join("config.json"), self.config.to_string()).unwrap();
        std::fs::write(self.path().join("shim.json"), self.shim.to_string()).unwrap();
    }

    /// The shim command as the daemon runs it: stdin /dev/null, stdout a pipe, stderr a file,
    /// its own process group.
    pub fn command(&self) -> Command {
        self.write();
        let mut cmd = Command::new(BIN);
        cmd.arg(self.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(self.path().join("shim.err")).unwrap())
            .process_group(0);
        cmd
    }

    /// Start the shim; Ok(container pid) or Err(the shim's error line), plus the child.
    pub fn start(self) -> (Shim, Result<i32, String>) {
        let mut child = self.command().spawn().unwrap();
        let line = read_line(child.stdout.take().unwrap());
        let shim = Shim {
            spec: self,
            child: Some(child),
        };
        (shim, parse_start(&line))
    }

    /// Start and expect success.
    pub fn run(self) -> (Shim, i32) {
        let (shim, r) = self.start();
        let pid = r.unwrap_or_else(|e| panic!("start failed: {e}; {}", shim.stderr()));
        (shim, pid)
    }
}

pub fn read_line(r: impl Read) -> String {
    let mut line = String::new();
    BufReader::new(r).read_line(&mut line).unwrap();
    line
}

pub fn parse_start(line: &str) -> Result<i32, String> {
    let v: Value =
        serde_json::from_str(line).map_err(|e| format!("bad start line {line:?}: {e}"))?;
    match (v["pid"].as_i64(), v["error"].as_str()) {
        (Some(p), None) => Ok(p as i32),
        (None, Some(e)) => Err(e.to_string()),
        _ => Err(format!("bad start line {line:?}")),
    }
}

/// A started shim; dropping it removes the container (if still there) and waits for the shim.
pub struct Shim {
    pub spec: Spec,
    pub child: Option<Child>,
}

impl Shim {
    pub fn sock(&self) -> PathBuf {
        self.spec.sock()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.spec.path().join("shim.err")).unwrap_or_default()
    }

    pub fn kill_container(&self, sig: nix::sys::signal::Signal) {
        skiff_runtime::Runtime::new(self.spec.rt_root())
            .kill(&self.spec.id, sig, false)
            .unwrap();
    }

    /// Wait for the shim process to exit; its exit code.
    pub fn wait_exit(&mut self) -> i32 {
        let child = self.child.as_mut().expect("shim is our child");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                self.child = None;
                return st.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "shim did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Shim {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let read =
                |n: &str| std::fs::read_to_string(self.spec.path().join(n)).unwrap_or_default();
            eprintln!(
                "shim {}: stderr {:?}; exit record {:?}; log {:?}",
                self.spec.id,
                read("shim.err"),
                read("exit.json"),
                read("container.log")
            );
        }
        let _ = skiff_runtime::Runtime::new(self.spec.rt_root()).delete(&self.spec.id, true);
        if let Some(mut c) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(10);
            while c.try_wait().ok().flatten().is_none() {
                if Instant::now() > deadline {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// Connect, send one request line, read the reply line (byte by byte: the stream follows).
pub fn request(sock: &Path, req: &[u8]) -> (UnixStream, Value) {
    let mut s = UnixStream::connect(sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(req).unwrap();
    let line = reply_line(&mut s);
    let v = serde_json::from_slice(&line)
        .unwrap_or_else(|e| panic!("reply {:?}: {e}", String::from_utf8_lossy(&line)));
    (s, v)
}

pub fn reply_line(s: &mut UnixStream) -> Vec<u8> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match s.read(&mut b) {
            Ok(1) if b[0] == b'\n' => return line,
            Ok(1) => line.push(b[0]),
            Ok(_) => return line,
            Err(e) => panic!("read reply: {e}"),
        }
    }
}

/// A `wait` sent now (before the container can exit); read it with [`wait_reply`].
pub fn waiter(sock: &Path) -> UnixStream {
    let mut s = UnixStream::connect(sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(b"{\"op\":\"wait\"}\n").unwrap();
    s
}

pub fn wait_reply(s: &mut UnixStream) -> Value {
    serde_json::from_slice(&reply_line(s)).unwrap()
}

/// One request, its reply.
pub fn call(sock: &Path, req: Value) -> Value {
    let mut line = req.to_string().into_bytes();
    line.push(b'\n');
    request(sock, &line).1
}

/// Read multiplexed frames until end-of-file: (stdout, stderr).
pub fn read_frames(s: &mut UnixStream) -> (Vec<u8>, Vec<u8>) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    loop {
        let mut h = [0u8; 8];
        match s.read_exact(&mut h) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return (out, err),
            Err(e) => panic!("read frame: {e}"),
        }
        let (stream, len) = skiff_shim::proto::parse_frame_header(&h);
        let mut data = vec![0u8; len as usize];
        s.read_exact(&mut data).unwrap();
        match stream {
            1 => out.extend(data),
            2 => err.extend(data),
            other => panic!("stream {other}"),
        }
    }
}

pub fn read_to_end(s: &mut UnixStream) -> Vec<u8> {
    let mut v = Vec::new();
    s.read_to_end(&mut v).unwrap();
    v
}

/// The cgroup directories a container with this id would have (relative cgroupsPath: under
/// the test process's own cgroups), whichever exist.
pub fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let mut found = Vec::new();
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (
            parts.next(),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or("/"),
        );
        let rel = path.trim_start_matches('/');
        let mut candidates = vec![];
        if ctrls.is_empty() {
            candidates.push(Path::new("/sys/fs/cgroup").join(rel).join(id));
            candidates.push(Path::new("/sys/fs/cgroup/unified").join(rel).join(id));
        } else if !ctrls.contains('=') {
            candidates.push(Path::new("/sys/fs/cgroup").join(ctrls).join(rel).join(id));
            for c in ctrls.split(',') {
                candidates.push(Path::new("/sys/fs/cgroup").join(c).join(rel).join(id));
            }
        }
        found.extend(candidates.into_iter().filter(|p| p.exists()));
    }
    found
}

/// The OCI process of an exec.
pub fn process(args: &[&str], terminal: bool) -> Value {
    json!({
        "terminal": terminal,
        "args": args,
        "cwd": "/",
        "user": {"uid": 0, "gid": 0},
        "env": ["PATH=/bin:/usr/bin:/sbin:/usr/sbin", "TERM=xterm"],
    })
}

/// Poll until `f` holds (or panic after 20 s).
pub fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
