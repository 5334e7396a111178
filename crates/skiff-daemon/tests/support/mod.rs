//! Test support: a real skiffd (the crate's binary) on a temp unix socket with a temp data
//! root, the real docker CLI pointed at it, raw HTTP over the socket, and Debian's
//! docker-registry on 127.0.0.1 fed with skopeo from an OCI layout built here from the host's
//! busybox-static. Everything is stopped and removed on Drop; nothing is downloaded.

#![allow(dead_code)]

mod ready;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use flate2::write::GzEncoder;
use sha2::{Digest as _, Sha256};

// ---------------------------------------------------------------- skiffd

pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub sock: PathBuf,
    child: Option<Child>,
}

impl Daemon {
    pub fn start() -> Daemon {
        Self::start_with("{}", &[])
    }

    /// With `daemon_json` as the config file and extra flags.
    pub fn start_with(daemon_json: &str, extra: &[&str]) -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("skiffd-test-")
            .tempdir()
            .unwrap();
        let sock = dir.path().join("run/skiff.sock");
        // Networking off (these tests need none, and a daemon with it on would make its
        // bridge and nftables table in the host's namespace); the exec root in the temp dir.
        let mut cfg: serde_json::Value = serde_json::from_str(daemon_json).unwrap();
        cfg["bridge"] = serde_json::json!("none");
        if cfg.get("exec-root").is_none() {
            cfg["exec-root"] = serde_json::json!(dir.path().join("exec"));
        }
        fs::write(dir.path().join("daemon.json"), cfg.to_string()).unwrap();
        fs::create_dir_all(dir.path().join("docker-config")).unwrap();
        let mut d = Daemon {
            sock,
            child: None,
            dir,
        };
        d.spawn(extra);
        d
    }

    fn spawn(&mut self, extra: &[&str]) {
        let log = fs::File::create(self.dir.path().join("skiffd.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_skiffd"))
            .arg("-H")
            .arg(format!("unix://{}", self.sock.display()))
            .arg("--data-root")
            .arg(self.dir.path().join("root"))
            .arg("--config-file")
            .arg(self.dir.path().join("daemon.json"))
            .arg("--log-level")
            .arg("debug")
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start skiffd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if ready::answers_ping(&self.sock) {
                return;
            }
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("skiffd exited with {st}: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("skiffd did not listen: {}", self.log());
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("skiffd.log")).unwrap_or_default()
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// SIGTERM and wait (at most 20 s): the exit status.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = c.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
        panic!("skiffd did not stop on SIGTERM: {}", self.log());
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.sock.display())
    }

    /// The real docker CLI against this daemon, with an empty docker config of its own.
    pub fn docker_cmd(&self, args: &[&str]) -> Command {
        // Bounded: a CLI waiting on a prompt or a stuck stream fails the test, not hangs it.
        let mut c = Command::new("timeout");
        c.args(["--kill-after=5", "120", "docker"]);
        c.env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.dir.path().join("docker-config"))
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_API_VERSION")
            .args(args)
            .stdin(Stdio::null());
        c
    }

    pub fn docker(&self, args: &[&str]) -> Output {
        self.docker_cmd(args).output().expect("docker CLI")
    }

    /// `docker ARGS` that must succeed: its stdout.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            o.status.success(),
            "docker {args:?} failed: {}\n{}\n--- skiffd log ---\n{}",
            String::from_utf8_lossy(&o.stderr),
            String::from_utf8_lossy(&o.stdout),
            self.log()
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// `docker ARGS` that must fail: its stderr.
    pub fn docker_fails(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            !o.status.success(),
            "docker {args:?} succeeded: {}",
            String::from_utf8_lossy(&o.stdout)
        );
        String::from_utf8(o.stderr).unwrap()
    }

    pub fn http(&self, method: &str, path: &str, body: &[u8]) -> Response {
        self.http_with(method, path, &[], body)
    }

    /// One raw HTTP/1.0 request on the socket (the body is delimited by the close).
    pub fn http_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let mut s = UnixStream::connect(&self.sock).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut req = format!("{method} {path} HTTP/1.0\r\nHost: skiff\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() {
            req.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        Response::parse(&raw)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    fn parse(raw: &[u8]) -> Response {
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("complete HTTP head");
        let head = String::from_utf8_lossy(&raw[..split]).to_string();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Response {
            status,
            headers,
            body: raw[split + 4..].to_vec(),
        }
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        let n = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == n)
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    /// A JSON message stream: one object per line.
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.text()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

// ---------------------------------------------------------------- images

pub fn sha256(b: &[u8]) -> String {
    let d = Sha256::digest(b);
    let mut s = String::from("sha256:");
    for x in d.iter() {
        s.push_str(&format!("{x:02x}"));
    }
    s
}

pub fn hex(d: &str) -> &str {
    d.strip_prefix("sha256:").unwrap_or(d)
}

pub struct Layer {
    pub gz: Vec<u8>,
    pub digest: String,
    pub diff_id: String,
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h.set_size(size);
    h
}

/// A layer of (path, mode, contents) files and directories (contents `None`), and symlinks
/// as (path, target).
pub fn layer(files: &[(&str, u32, Option<&[u8]>)], links: &[(&str, &str)]) -> Layer {
    let mut b = tar::Builder::new(Vec::new());
    for (p, mode, data) in files {
        match data {
            None => {
                let mut h = header(tar::EntryType::Directory, *mode, 0);
                b.append_data(&mut h, p, std::io::empty()).unwrap();
            }
            Some(d) => {
                let mut h = header(tar::EntryType::Regular, *mode, d.len() as u64);
                b.append_data(&mut h, p, *d).unwrap();
            }
        }
    }
    for (p, target) in links {
        let mut h = header(tar::EntryType::Symlink, 0o777, 0);
        b.append_link(&mut h, p, target).unwrap();
    }
    let tar = b.into_inner().unwrap();
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    Layer {
        digest: sha256(&gz),
        diff_id: sha256(&tar),
        gz,
    }
}

/// A busybox rootfs from the host's busybox-static, with a few applet links.
pub fn busybox_layer() -> Layer {
    let bb = fs::read("/bin/busybox").expect("busybox-static is installed");
    let passwd = b"root:x:0:0:root:/root:/bin/sh\n".as_slice();
    layer(
        &[
            ("bin", 0o755, None),
            ("etc", 0o755, None),
            ("tmp", 0o1777, None),
            ("bin/busybox", 0o755, Some(&bb)),
            ("etc/passwd", 0o644, Some(passwd)),
        ],
        &[
            ("bin/sh", "busybox"),
            ("bin/ls", "busybox"),
            ("bin/echo", "busybox"),
        ],
    )
}

pub struct Image {
    pub layers: Vec<Layer>,
    pub config: Vec<u8>,
    pub config_digest: String,
    pub manifest: Vec<u8>,
    pub manifest_digest: String,
}

/// An image over `layers`, created at `created`, with `labels`.
pub fn image(layers: Vec<Layer>, created: &str, labels: serde_json::Value) -> Image {
    let diff_ids: Vec<&str> = layers.iter().map(|l| l.diff_id.as_str()).collect();
    let config = serde_json::to_vec(&serde_json::json!({
        "created": created,
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"], "Labels": labels},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": layers.iter().map(|_| serde_json::json!({"created": created, "created_by": "skiffd test"})).collect::<Vec<_>>(),
    }))
    .unwrap();
    let config_digest = sha256(&config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": layers.iter().map(|l| serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": l.digest, "size": l.gz.len()})).collect::<Vec<_>>(),
    }))
    .unwrap();
    Image {
        manifest_digest: sha256(&manifest),
        layers,
        config,
        config_digest,
        manifest,
    }
}

impl Image {
    /// An OCI image layout at `dir` with this image tagged `tag`.
    pub fn write_layout(&self, dir: &Path, tag: &str) {
        let blobs = dir.join("blobs/sha256");
        fs::create_dir_all(&blobs).unwrap();
        fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        fs::write(blobs.join(hex(&self.config_digest)), &self.config).unwrap();
        for l in &self.layers {
            fs::write(blobs.join(hex(&l.digest)), &l.gz).unwrap();
        }
        fs::write(blobs.join(hex(&self.manifest_digest)), &self.manifest).unwrap();
        let index = serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": self.manifest_digest, "size": self.manifest.len(),
                "annotations": {"org.opencontainers.image.ref.name": tag}}],
        });
        fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    }
}

// ---------------------------------------------------------------- docker-registry

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Debian's docker-registry on 127.0.0.1:<free port>, optionally with htpasswd auth.
pub struct Registry {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Child,
    pub auth: Option<(String, String)>,
}

impl Registry {
    pub fn start(auth: Option<(&str, &str)>) -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("skiffd-reg-")
            .tempdir()
            .unwrap();
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let mut cfg = format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: skiffd-test\n",
                dir.path().join("storage").display()
            );
            if let Some((u, p)) = auth {
                let hash = bcrypt::hash(p, 4).unwrap();
                fs::write(dir.path().join("htpasswd"), format!("{u}:{hash}\n")).unwrap();
                cfg.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: basic-realm\n    path: {}\n",
                    dir.path().join("htpasswd").display()
                ));
            }
            let cfg_path = dir.path().join("config.yml");
            fs::write(&cfg_path, cfg).unwrap();
            let log = fs::File::create(dir.path().join("registry.log")).unwrap();
            let mut child = Command::new("docker-registry")
                .arg("serve")
                .arg(&cfg_path)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("docker-registry (Debian package docker-registry) is installed");
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                    let _ = s.write_all(b"GET /v2/ HTTP/1.0\r\nHost: x\r\n\r\n");
                    let mut buf = [0u8; 12];
                    if s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.") {
                        return Registry {
                            port,
                            dir,
                            child,
                            auth: auth.map(|(u, p)| (u.to_string(), p.to_string())),
                        };
                    }
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            last = fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default();
        }
        panic!("docker-registry did not start: {last}");
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `skopeo copy` of `img` (via an OCI layout) to `repo:tag` here.
    pub fn push(&self, img: &Image, repo: &str, tag: &str) {
        let layout = tempfile::tempdir().unwrap();
        img.write_layout(layout.path(), tag);
        let mut c = Command::new("skopeo");
        c.args([
            "--insecure-policy",
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
        ]);
        if let Some((u, p)) = &self.auth {
            c.arg(format!("--dest-creds={u}:{p}"));
        }
        let out = c
            .arg(format!("oci:{}:{tag}", layout.path().display()))
            .arg(format!("docker://{}/{repo}:{tag}", self.addr()))
            .output()
            .expect("skopeo (Debian package skopeo) is installed");
        assert!(
            out.status.success(),
            "skopeo copy: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
