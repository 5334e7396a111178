//! Test support: Debian's `docker-registry` on a free 127.0.0.1 port with a temporary storage
//! dir (killed on Drop), skopeo, an engine per temporary data root, and test images built
//! here (layer tars, OCI image layouts). Nothing is downloaded.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use skiff_engine::ImageService;
use skiff_image::compression::Compressor;
use skiff_image::formats::OciLayoutWriter;
use skiff_image::Compression;
use skiff_registry::RegistryConfig;

const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// A running `docker-registry serve`, killed on Drop.
pub struct TestRegistry {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl TestRegistry {
    pub fn start() -> Self {
        assert!(
            Path::new(REGISTRY_BIN).exists(),
            "{REGISTRY_BIN} not found: apt-get install docker-registry"
        );
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage).unwrap();
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: skiff-test-secret\n",
            storage.display()
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let mut reg = TestRegistry { child, port, dir };
        reg.wait_ready();
        reg
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("docker-registry exited with {status}");
            }
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.write_all(b"GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
                let mut buf = [0u8; 12];
                if s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.") {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("docker-registry did not answer on port {}", self.port);
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs skopeo (no signature policy), returning stdout; panics with stderr on failure.
pub fn skopeo(args: &[&str]) -> Vec<u8> {
    let out = Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .output()
        .expect("run skopeo (apt-get install skopeo)");
    assert!(
        out.status.success(),
        "skopeo {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// An engine on a fresh data root (kept alive by the returned TempDir).
pub fn engine() -> (ImageService, tempfile::TempDir) {
    let root = tempfile::tempdir().unwrap();
    (engine_at(root.path()), root)
}

pub fn engine_at(root: &Path) -> ImageService {
    let rc = RegistryConfig {
        docker_config_path: Some(PathBuf::from("/nonexistent/skiff-test/config.json")),
        ..RegistryConfig::default()
    };
    ImageService::open(root, rc, 3).unwrap().0
}

pub fn sha256(b: &[u8]) -> String {
    skiff_image::digest::sha256(b).to_string()
}

/// A plain layer tar of `(path, content)` files (directories made as needed, root-owned).
pub fn layer_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut dirs = std::collections::BTreeSet::new();
    for (path, data) in files {
        let mut acc = String::new();
        let parts: Vec<&str> = path.split('/').collect();
        for p in &parts[..parts.len() - 1] {
            acc.push_str(p);
            acc.push('/');
            if dirs.insert(acc.clone()) {
                let mut h = tar::Header::new_ustar();
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                h.set_mtime(1_700_000_000);
                b.append_data(&mut h, &acc, std::io::empty()).unwrap();
            }
        }
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, path, *data).unwrap();
    }
    b.into_inner().unwrap()
}

pub fn gzip(b: &[u8]) -> Vec<u8> {
    let mut c = Compressor::new(Vec::new(), Compression::Gzip).unwrap();
    c.write_all(b).unwrap();
    c.finish().unwrap()
}

/// A test image: its layers (plain tars), config bytes and the OCI manifest bytes.
pub struct TestImage {
    pub layers: Vec<Vec<u8>>,
    pub config: Vec<u8>,
    pub manifest: Vec<u8>,
}

impl TestImage {
    pub fn id(&self) -> String {
        sha256(&self.config)
    }
    pub fn manifest_digest(&self) -> String {
        sha256(&self.manifest)
    }
    pub fn diff_ids(&self) -> Vec<String> {
        self.layers.iter().map(|l| sha256(l)).collect()
    }
}

/// A two-layer image (gzip layers) with three history entries (one empty), written as an
/// OCI image layout at `dir` named `name` (`repo:tag`).
pub fn two_layer_layout(dir: &Path, name: &str, seed: &str) -> TestImage {
    let l1 = layer_tar(&[
        ("etc/os-release", b"NAME=skiff-test\n"),
        ("data/base.txt", format!("base {seed}\n").as_bytes()),
    ]);
    let l2 = layer_tar(&[("data/top.txt", format!("top {seed}\n").as_bytes())]);
    let diff_ids: Vec<String> = [&l1, &l2].iter().map(|l| sha256(l)).collect();
    let config = serde_json::json!({
        "architecture": skiff_image::import::host_arch(), "os": "linux",
        "created": "2024-01-02T03:04:05Z",
        "author": "skiff tests",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"], "WorkingDir": "/data",
                   "Labels": {"seed": seed}, "ExposedPorts": {"80/tcp": {}}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [
            {"created": "2024-01-02T03:04:00Z", "created_by": "/bin/sh -c #(nop) ADD file:0123456789abcdef0123456789abcdef in / "},
            {"created": "2024-01-02T03:04:01Z", "created_by": "/bin/sh -c #(nop)  CMD [\"/bin/sh\"]", "empty_layer": true},
            {"created": "2024-01-02T03:04:05Z", "created_by": "RUN echo top", "comment": "step two"}
        ]
    });
    let config = serde_json::to_vec(&config).unwrap();
    let mut w = OciLayoutWriter::create(dir).unwrap();
    let cdesc = w
        .add_blob("application/vnd.oci.image.config.v1+json", &config)
        .unwrap();
    let mut ldescs = Vec::new();
    for l in [&l1, &l2] {
        ldescs.push(
            w.add_blob("application/vnd.oci.image.layer.v1.tar+gzip", &gzip(l))
                .unwrap(),
        );
    }
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": cdesc, "layers": ldescs,
    });
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let mdesc = w
        .add_blob("application/vnd.oci.image.manifest.v1+json", &manifest)
        .unwrap();
    w.add_manifest(mdesc, Some(name));
    w.finish().unwrap();
    TestImage {
        layers: vec![l1, l2],
        config,
        manifest,
    }
}

/// Puts a two-layer test image into `reg` as `repo_tag` with skopeo (bytes unchanged).
pub fn seed(reg: &TestRegistry, repo_tag: &str, seed: &str) -> TestImage {
    let dir = tempfile::tempdir().unwrap();
    let img = two_layer_layout(dir.path(), "src:v1", seed);
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:v1", dir.path().display()),
        &format!("docker://{}/{repo_tag}", reg.host()),
    ]);
    img
}

/// A multi-threaded runtime for the async verbs.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

pub fn no_progress() -> impl skiff_engine::images::Progress {
    |_: skiff_engine::images::PullEvent| {}
}
