//! Support for the image end-to-end tests: Debian's `docker-registry` on a free 127.0.0.1
//! port (killed on Drop), a tiny HTTP/1.1 client to push blobs and manifests by hand, a
//! throttling byte-counting TCP proxy, a fake registry that serves whatever bytes a test
//! wants (malformed manifests, wrong blobs), a driver for the `skiff` binary with its own
//! data root and daemon.json, and a guard for overlay mounts.

#![allow(dead_code)]

pub mod image;

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use image::*;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// ---------------------------------------------------------------- HTTP client

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One request over a fresh connection (`Connection: close`); `target` is a path or an
/// absolute `http://host:port/path` URL.
pub fn http(
    addr: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let path = match target.strip_prefix("http://") {
        Some(rest) => &rest[rest.find('/').unwrap_or(rest.len())..],
        None => target,
    };
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let head = String::from_utf8_lossy(&raw[..end]).to_string();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok(Response {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    })
}

/// Pushes by hand with the distribution API (monolithic uploads), optionally with Basic auth.
pub struct Pusher {
    pub addr: String,
    pub auth: Option<String>,
}

impl Pusher {
    fn hdrs<'a>(&'a self, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut h = extra.to_vec();
        if let Some(a) = &self.auth {
            h.push(("Authorization", a.as_str()));
        }
        h
    }
    pub fn blob(&self, repo: &str, digest: &str, data: &[u8]) {
        let r = http(
            &self.addr,
            "POST",
            &format!("/v2/{repo}/blobs/uploads/"),
            &self.hdrs(&[]),
            b"",
        )
        .unwrap();
        assert_eq!(
            r.status,
            202,
            "start upload: {}",
            String::from_utf8_lossy(&r.body)
        );
        let loc = r.header("Location").unwrap().to_string();
        let sep = if loc.contains('?') { '&' } else { '?' };
        let r = http(
            &self.addr,
            "PUT",
            &format!("{loc}{sep}digest={digest}"),
            &self.hdrs(&[("Content-Type", "application/octet-stream")]),
            data,
        )
        .unwrap();
        assert_eq!(
            r.status,
            201,
            "put blob: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
    pub fn manifest(&self, repo: &str, reference: &str, media_type: &str, body: &[u8]) {
        let r = http(
            &self.addr,
            "PUT",
            &format!("/v2/{repo}/manifests/{reference}"),
            &self.hdrs(&[("Content-Type", media_type)]),
            body,
        )
        .unwrap();
        assert_eq!(
            r.status,
            201,
            "put manifest: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
    /// Blobs, then the manifest under `reference` (a tag or the manifest digest).
    pub fn image(&self, repo: &str, reference: &str, img: &Image) {
        for (d, b) in img.blobs() {
            self.blob(repo, &d, b);
        }
        self.manifest(repo, reference, MT_MANIFEST, &img.manifest);
    }
}

// ---------------------------------------------------------------- docker-registry

/// Debian's docker-registry on 127.0.0.1:<free port>, storage and log in a temp dir.
pub struct Registry {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Child,
    pub auth: Option<(String, String)>,
}

impl Registry {
    pub fn start() -> Registry {
        Self::start_with(None)
    }

    /// With `auth = Some((user, password))`, htpasswd Basic auth (bcrypt written here).
    pub fn start_with(auth: Option<(&str, &str)>) -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("skiff-reg-")
            .tempdir()
            .unwrap();
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let mut cfg = format!(
                "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: 127.0.0.1:{port}\n",
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
            let addr = format!("127.0.0.1:{port}");
            while Instant::now() < deadline {
                if let Ok(r) = http(&addr, "GET", "/v2/", &[], b"") {
                    if r.status == 200 || r.status == 401 {
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

    pub fn pusher(&self) -> Pusher {
        Pusher {
            addr: self.addr(),
            auth: self.auth.as_ref().map(|(u, p)| {
                use base64_lite as b;
                format!("Basic {}", b::encode(format!("{u}:{p}").as_bytes()))
            }),
        }
    }

    /// `skopeo copy` of `img` (via an OCI layout) to `repo:tag` in this registry.
    pub fn skopeo_push(&self, img: &Image, repo: &str, tag: &str) {
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

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Base64 (standard alphabet, padded), for Basic auth headers.
pub mod base64_lite {
    pub fn encode(b: &[u8]) -> String {
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut s = String::new();
        for c in b.chunks(3) {
            let n = (c[0] as u32) << 16
                | (*c.get(1).unwrap_or(&0) as u32) << 8
                | *c.get(2).unwrap_or(&0) as u32;
            for i in 0..4 {
                if i <= c.len() {
                    s.push(T[(n >> (18 - 6 * i)) as usize & 63] as char);
                } else {
                    s.push('=');
                }
            }
        }
        s
    }
}

// ---------------------------------------------------------------- throttling proxy

/// A TCP proxy on 127.0.0.1:<port> to `upstream` that counts the bytes sent back to
/// clients and, with `rate` set, paces them to about that many bytes per second.
pub struct Proxy {
    pub port: u16,
    pub down_bytes: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    pub fn start(upstream: String, rate: Option<u64>) -> Proxy {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let down_bytes = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, stop2) = (down_bytes.clone(), stop.clone());
        std::thread::spawn(move || {
            for c in l.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = c else { continue };
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c2, &mut s2);
                    let _ = s2.shutdown(std::net::Shutdown::Write);
                });
                let count = count.clone();
                let (mut client, mut server) = (client, server);
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 64 * 1024];
                    let start = Instant::now();
                    let mut sent = 0u64;
                    loop {
                        let n = match server.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if client.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        sent += n as u64;
                        count.fetch_add(n as u64, Ordering::SeqCst);
                        if let Some(rate) = rate {
                            let due = Duration::from_secs_f64(sent as f64 / rate as f64);
                            if let Some(wait) = due.checked_sub(start.elapsed()) {
                                std::thread::sleep(wait);
                            }
                        }
                    }
                    let _ = client.shutdown(std::net::Shutdown::Both);
                    let _ = server.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        Proxy {
            port,
            down_bytes,
            stop,
        }
    }
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

// ---------------------------------------------------------------- fake registry

/// Path → (content type, body).
pub type Routes = Arc<Mutex<HashMap<String, (String, Vec<u8>)>>>;

/// A registry that serves fixed bytes: `routes[path] = (content type, body)`; `/v2/` is 200.
/// HEAD answers the headers only; manifests carry `Docker-Content-Digest` of their body.
pub struct FakeRegistry {
    pub port: u16,
    stop: Arc<AtomicBool>,
    pub routes: Routes,
}

impl FakeRegistry {
    pub fn start() -> FakeRegistry {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let routes: Routes = Arc::default();
        let (stop2, routes2) = (stop.clone(), routes.clone());
        std::thread::spawn(move || {
            for c in l.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut c) = c else { continue };
                let routes = routes2.clone();
                std::thread::spawn(move || {
                    let _ = serve_one(&mut c, &routes);
                });
            }
        });
        FakeRegistry { port, stop, routes }
    }
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
    pub fn route(&self, path: &str, content_type: &str, body: &[u8]) {
        self.routes
            .lock()
            .unwrap()
            .insert(path.to_string(), (content_type.to_string(), body.to_vec()));
    }
}

fn serve_one(c: &mut TcpStream, routes: &Routes) -> std::io::Result<()> {
    c.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut req = Vec::new();
    let mut b = [0u8; 1];
    while !req.ends_with(b"\r\n\r\n") {
        if c.read(&mut b)? == 0 {
            return Ok(());
        }
        req.push(b[0]);
    }
    let line = String::from_utf8_lossy(&req)
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("");
    let path = parts
        .next()
        .unwrap_or("")
        .split('?')
        .next()
        .unwrap_or("")
        .to_string();
    let found = if path == "/v2/" || path == "/v2" {
        Some(("application/json".to_string(), b"{}".to_vec()))
    } else {
        routes.lock().unwrap().get(&path).cloned()
    };
    let (status, ct, body) = match found {
        Some((ct, body)) => ("200 OK", ct, body),
        None => (
            "404 Not Found",
            "application/json".to_string(),
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#.to_vec(),
        ),
    };
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if path.contains("/manifests/") {
        head.push_str(&format!("Docker-Content-Digest: {}\r\n", sha256(&body)));
    }
    head.push_str("\r\n");
    c.write_all(head.as_bytes())?;
    if method != "HEAD" {
        c.write_all(&body)?;
    }
    c.flush()
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

// ---------------------------------------------------------------- skiff driver

/// The `skiff` binary with its own data root, daemon.json and docker config dir.
pub struct Skiff {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub config: PathBuf,
    pub docker_config: PathBuf,
}

impl Skiff {
    /// `daemon` is the daemon.json body (`{}` for none).
    pub fn new(daemon: serde_json::Value) -> Skiff {
        let dir = tempfile::Builder::new()
            .prefix("skiff-e2e-")
            .tempdir()
            .unwrap();
        let root = dir.path().join("root");
        let config = dir.path().join("daemon.json");
        let docker_config = dir.path().join("docker");
        fs::create_dir_all(&docker_config).unwrap();
        fs::write(&config, serde_json::to_vec(&daemon).unwrap()).unwrap();
        Skiff {
            dir,
            root,
            config,
            docker_config,
        }
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_skiff"));
        c.arg("--config-file")
            .arg(&self.config)
            .arg("--data-root")
            .arg(&self.root)
            .args(args)
            .env("DOCKER_CONFIG", &self.docker_config)
            .env("HOME", self.dir.path())
            .env_remove("SKIFF_CONFIG")
            .env_remove("SKIFF_DATA_ROOT")
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "skiff {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// Runs and asserts failure; returns stderr + stdout.
    pub fn fails(&self, args: &[&str]) -> String {
        let o = self.run(args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stderr),
            String::from_utf8_lossy(&o.stdout)
        );
        assert!(!o.status.success(), "skiff {args:?} succeeded: {text}");
        text
    }

    pub fn with_stdin(&self, args: &[&str], input: &str) -> Output {
        let mut c = self.cmd(args);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    /// `skiff images -q --no-trunc`, one ID per line.
    pub fn image_ids(&self) -> Vec<String> {
        self.ok(&["images", "-q", "--no-trunc"])
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Files in content/blobs/sha256.
    pub fn blobs(&self) -> Vec<String> {
        list(&self.root.join("content/blobs/sha256"))
    }

    /// The diff dir of the committed snapshot `chain_id`.
    pub fn snapshot_diff(&self, chain_id: &str) -> PathBuf {
        let rec = self
            .root
            .join("meta/snapshots")
            .join(format!("{}.json", chain_id.replace(':', "%3A")));
        let v: serde_json::Value =
            serde_json::from_slice(&fs::read(&rec).unwrap_or_else(|e| panic!("{rec:?}: {e}")))
                .unwrap();
        self.root
            .join("overlay")
            .join(v["id"].as_str().unwrap())
            .join("diff")
    }

    /// Snapshot directories under overlay/ (excluding `l`).
    pub fn snapshot_dirs(&self) -> Vec<String> {
        list(&self.root.join("overlay"))
            .into_iter()
            .filter(|n| n != "l")
            .collect()
    }

    /// Opens the store in-process (its self-check runs) and checks it again.
    pub fn check_store(&self) -> (skiff_store::CheckReport, skiff_store::CheckReport) {
        let (store, first) = skiff_store::Store::open(&self.root).expect("store opens");
        let second = store.check().expect("store check");
        (first, second)
    }
}

pub fn list(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = match fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

/// Total bytes of regular files under `dir` (a live tree: entries that vanish between the
/// listing and their stat, as a pull commits its ingests, are skipped).
pub fn tree_bytes(dir: &Path) -> u64 {
    let mut n = 0;
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                n += tree_bytes(&e.path());
            } else if m.is_file() {
                n += m.len();
            }
        }
    }
    n
}

// ---------------------------------------------------------------- mounts

/// An overlay mount, unmounted (lazily) on Drop.
pub struct OverlayMount {
    pub target: tempfile::TempDir,
}

impl OverlayMount {
    /// Read-only overlay of `lowers` (topmost first; at least two).
    pub fn read_only(lowers: &[PathBuf]) -> OverlayMount {
        let target = tempfile::tempdir().unwrap();
        let opts = format!(
            "lowerdir={}",
            lowers
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(":")
        );
        let out = Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o", &opts])
            .arg(target.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mount overlay: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        OverlayMount { target }
    }
    pub fn path(&self) -> &Path {
        self.target.path()
    }
}

impl Drop for OverlayMount {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.target.path())
            .status();
    }
}
