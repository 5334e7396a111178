//! Test support: a real registry (Debian's `docker-registry`) on a free 127.0.0.1 port with a
//! temporary storage dir, open, with htpasswd Basic auth, or with token auth backed by a small
//! bearer-token issuer written here; killed and cleaned on Drop. Plus image-building helpers.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use base64::Engine;
use bytes::Bytes;
use skiff_registry::{sha256_digest, Digest, Reference, Registry, RegistryConfig};

pub const USER: &str = "skiff";
pub const PASSWORD: &str = "s3cret-pw";
const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

pub enum Auth {
    Open,
    Htpasswd,
    Token,
}

/// A running `docker-registry serve`, killed on Drop.
pub struct TestRegistry {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
    _issuer: Option<TokenIssuer>,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl TestRegistry {
    pub fn start(auth: Auth) -> Self {
        Self::start_with(auth, false)
    }

    /// `tls`: serve HTTPS only, with a self-signed certificate for 127.0.0.1.
    pub fn start_with(auth: Auth, tls: bool) -> Self {
        assert!(
            Path::new(REGISTRY_BIN).exists(),
            "{REGISTRY_BIN} not found: run scripts/install-deps.sh (apt-get install docker-registry skopeo)"
        );
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage).unwrap();
        let (auth_yaml, issuer) = match auth {
            Auth::Open => (String::new(), None),
            Auth::Htpasswd => {
                let hash = bcrypt::hash(PASSWORD, 5).unwrap();
                let file = dir.path().join("htpasswd");
                std::fs::write(&file, format!("{USER}:{hash}\n")).unwrap();
                (
                    format!(
                        "auth:\n  htpasswd:\n    realm: skiff-test\n    path: {}\n",
                        file.display()
                    ),
                    None,
                )
            }
            Auth::Token => {
                let issuer = TokenIssuer::start();
                let bundle = dir.path().join("token-root.pem");
                std::fs::write(&bundle, &issuer.cert_pem).unwrap();
                (
                    format!(
                        "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
                        issuer.port,
                        bundle.display()
                    ),
                    Some(issuer),
                )
            }
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: skiff-test-secret\n{auth_yaml}",
            storage.display()
        );
        let config = if tls {
            let key = rcgen::KeyPair::generate().unwrap();
            let params =
                rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
                    .unwrap();
            let cert = params.self_signed(&key).unwrap();
            let (c, k) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
            std::fs::write(&c, cert.pem()).unwrap();
            std::fs::write(&k, key.serialize_pem()).unwrap();
            config.replace(
                "  secret: skiff-test-secret\n",
                &format!(
                    "  secret: skiff-test-secret\n  tls:\n    certificate: {}\n    key: {}\n",
                    c.display(),
                    k.display()
                ),
            )
        } else {
            config
        };
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
        let mut reg = TestRegistry {
            child,
            port,
            dir,
            _issuer: issuer,
        };
        reg.wait_ready();
        reg
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("docker-registry exited with {status}: {}", self.log());
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
        panic!(
            "docker-registry did not answer on port {}: {}",
            self.port,
            self.log()
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self) -> url::Url {
        url::Url::parse(&format!("http://127.0.0.1:{}/", self.port)).unwrap()
    }

    pub fn reference(&self, repo_tag: &str) -> Reference {
        Reference::parse(&format!("{}/{repo_tag}", self.host())).unwrap()
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client with no docker config (so the machine's ~/.docker is never read).
pub fn client() -> Registry {
    client_with(RegistryConfig::default(), None)
}

pub fn client_with(mut cfg: RegistryConfig, docker_config: Option<PathBuf>) -> Registry {
    cfg.docker_config_path =
        Some(docker_config.unwrap_or_else(|| PathBuf::from("/nonexistent/skiff-test/config.json")));
    cfg.retry_backoff = Duration::from_millis(20);
    Registry::new(cfg).unwrap()
}

/// Deterministic pseudo-random bytes (xorshift).
pub fn random_bytes(seed: u64, len: usize) -> Bytes {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out.into()
}

/// A tiny image: layers, config, and manifests of both flavours over them.
pub struct TestImage {
    pub layers: Vec<(Digest, Bytes)>,
    pub config: (Digest, Bytes),
    pub oci_manifest: Bytes,
    pub docker_manifest: Bytes,
}

impl TestImage {
    pub fn new(seed: u64, layer_sizes: &[usize]) -> Self {
        let layers: Vec<(Digest, Bytes)> = layer_sizes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let b = random_bytes(seed * 100 + i as u64, *n);
                (sha256_digest(&b), b)
            })
            .collect();
        let diff_ids: Vec<String> = layers.iter().map(|(d, _)| d.to_string()).collect();
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created_by": format!("skiff test {seed}")}],
        }))
        .unwrap();
        let config = Bytes::from(config);
        let config_digest = sha256_digest(&config);
        let manifest = |mt: &str, cfg_mt: &str, layer_mt: &str| {
            let layers: Vec<_> = layers
                .iter()
                .map(|(d, b)| serde_json::json!({"mediaType": layer_mt, "size": b.len(), "digest": d.to_string()}))
                .collect();
            Bytes::from(
                serde_json::to_vec_pretty(&serde_json::json!({
                    "schemaVersion": 2, "mediaType": mt,
                    "config": {"mediaType": cfg_mt, "size": config.len(), "digest": config_digest.to_string()},
                    "layers": layers,
                }))
                .unwrap(),
            )
        };
        Self {
            oci_manifest: manifest(
                skiff_registry::OCI_MANIFEST,
                "application/vnd.oci.image.config.v1+json",
                "application/vnd.oci.image.layer.v1.tar",
            ),
            docker_manifest: manifest(
                skiff_registry::DOCKER_MANIFEST_V2,
                "application/vnd.docker.container.image.v1+json",
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
            ),
            config: (config_digest, config.clone()),
            layers,
        }
    }

    pub async fn push_blobs(&self, reg: &Registry, repo: &Reference) {
        for (d, b) in self.layers.iter().chain(std::iter::once(&self.config)) {
            reg.push_blob(repo, d, b.clone(), None).await.unwrap();
        }
    }
}

/// An index (`mediaType` given) with one entry per (manifest, media type, os, arch, variant).
pub fn index(media_type: &str, entries: &[(&Bytes, &str, &str, &str, Option<&str>)]) -> Bytes {
    let manifests: Vec<_> = entries
        .iter()
        .map(|(m, mt, os, arch, variant)| {
            let mut p = serde_json::json!({"os": os, "architecture": arch});
            if let Some(v) = variant {
                p["variant"] = serde_json::json!(v);
            }
            serde_json::json!({"mediaType": mt, "size": m.len(), "digest": sha256_digest(m).to_string(), "platform": p})
        })
        .collect();
    Bytes::from(
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "mediaType": media_type, "manifests": manifests}))
            .unwrap(),
    )
}

// ---- bearer token issuer -------------------------------------------------------------------

pub const SERVICE: &str = "skiff-test-registry";
pub const ISSUER: &str = "skiff-test-issuer";

/// An HTTP token endpoint on 127.0.0.1 that checks Basic credentials and returns ES256 JWTs
/// whose `x5c` header carries a self-signed certificate the registry trusts.
pub struct TokenIssuer {
    pub port: u16,
    pub cert_pem: String,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TokenIssuer {
    pub fn start() -> Self {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let params = rcgen::CertificateParams::new(vec!["skiff-token-issuer".to_string()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let cert_pem = cert.pem();
        let cert_der = B64.encode(cert.der());
        let rng = ring::rand::SystemRandom::new();
        let signer = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &key.serialize_der(),
            &rng,
        )
        .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = handle_token_request(s, &signer, &rng, &cert_der);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self {
            port,
            cert_pem,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for TokenIssuer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn handle_token_request(
    stream: TcpStream,
    signer: &ring::signature::EcdsaKeyPair,
    rng: &ring::rand::SystemRandom,
    cert_der: &str,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut authorization = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.trim().eq_ignore_ascii_case("authorization") {
                authorization = Some(v.trim().to_string());
            }
        }
    }
    let expected = format!("Basic {}", B64.encode(format!("{USER}:{PASSWORD}")));
    let mut out = stream;
    if authorization.as_deref() != Some(expected.as_str()) {
        let body =
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"invalid username or password"}]}"#;
        return write!(
            out,
            "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    }
    let url = url::Url::parse(&format!("http://x{target}")).unwrap();
    let access: Vec<serde_json::Value> = url
        .query_pairs()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' ').map(str::to_string).collect::<Vec<_>>())
        .filter_map(|scope| {
            let mut parts = scope.splitn(2, ':');
            let typ = parts.next()?.to_string();
            let rest = parts.next()?;
            let (name, actions) = rest.rsplit_once(':')?;
            Some(serde_json::json!({"type": typ, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
        })
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [cert_der]});
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": USER, "aud": SERVICE, "exp": now + 300, "nbf": now - 10, "iat": now,
        "jti": format!("{now}-{}", rand_u64(rng)), "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        B64URL.encode(serde_json::to_vec(&header).unwrap()),
        B64URL.encode(serde_json::to_vec(&claims).unwrap())
    );
    let sig = signer.sign(rng, signing_input.as_bytes()).unwrap();
    let token = format!("{signing_input}.{}", B64URL.encode(sig.as_ref()));
    let body =
        serde_json::json!({"token": token, "access_token": token, "expires_in": 300}).to_string();
    write!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn rand_u64(rng: &ring::rand::SystemRandom) -> u64 {
    let mut b = [0u8; 8];
    ring::rand::SecureRandom::fill(rng, &mut b).unwrap();
    u64::from_le_bytes(b)
}
