//! Test images built locally, downloading nothing: layer tars written with the `tar` crate
//! (including hostile entries the crate's safe API refuses), gzip, config + OCI manifest,
//! an OCI image layout for skopeo, and index (multi-platform) manifests.

use std::fs;
use std::io::Write;
use std::path::Path;

use flate2::write::GzEncoder;
use sha2::{Digest as _, Sha256};

pub const MT_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MT_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MT_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MT_LAYER_GZ: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// `sha256:<hex>` of `b`.
pub fn sha256(b: &[u8]) -> String {
    let d = Sha256::digest(b);
    let mut s = String::from("sha256:");
    for x in d.iter() {
        s.push_str(&format!("{x:02x}"));
    }
    s
}

/// The hex part of a digest.
pub fn hex(d: &str) -> &str {
    d.strip_prefix("sha256:").unwrap_or(d)
}

/// chainIDs of a diffID list, as the OCI image spec defines them.
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(p) => sha256(format!("{p} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

/// Deterministic incompressible bytes (xorshift64*).
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        v.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    v.truncate(len);
    v
}

/// One layer being written.
pub struct LayerBuilder {
    b: tar::Builder<Vec<u8>>,
}

/// A finished layer: the gzip blob and its digests.
#[derive(Clone)]
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

impl Default for LayerBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl LayerBuilder {
    pub fn new() -> Self {
        LayerBuilder {
            b: tar::Builder::new(Vec::new()),
        }
    }
    pub fn dir(mut self, path: &str, mode: u32) -> Self {
        let mut h = header(tar::EntryType::Directory, mode, 0);
        self.b.append_data(&mut h, path, std::io::empty()).unwrap();
        self
    }
    pub fn file(mut self, path: &str, mode: u32, data: &[u8]) -> Self {
        let mut h = header(tar::EntryType::Regular, mode, data.len() as u64);
        self.b.append_data(&mut h, path, data).unwrap();
        self
    }
    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        let mut h = header(tar::EntryType::Symlink, 0o777, 0);
        self.b.append_link(&mut h, path, target).unwrap();
        self
    }
    pub fn hardlink(mut self, path: &str, target: &str) -> Self {
        let mut h = header(tar::EntryType::Link, 0o644, 0);
        self.b.append_link(&mut h, path, target).unwrap();
        self
    }
    /// An entry whose name is written byte for byte (`../../evil`), bypassing the tar
    /// crate's path checks.
    pub fn raw(
        mut self,
        name: &str,
        kind: tar::EntryType,
        link: Option<&str>,
        data: &[u8],
    ) -> Self {
        let mut h = header(kind, 0o644, data.len() as u64);
        {
            let g = h.as_gnu_mut().unwrap();
            g.name = [0; 100];
            g.name[..name.len()].copy_from_slice(name.as_bytes());
            if let Some(l) = link {
                g.linkname = [0; 100];
                g.linkname[..l.len()].copy_from_slice(l.as_bytes());
            }
        }
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }
    /// A minimal busybox rootfs from the host's busybox-static: /bin/busybox, one symlink
    /// per applet (as scripts/make-busybox-bundle.sh), /etc/passwd, /etc/group, /tmp.
    pub fn busybox(self) -> Self {
        let bb = fs::read("/bin/busybox").expect("busybox-static is installed");
        let mut s = self
            .dir("bin", 0o755)
            .dir("sbin", 0o755)
            .dir("usr", 0o755)
            .dir("usr/bin", 0o755)
            .dir("usr/sbin", 0o755)
            .dir("etc", 0o755)
            .dir("tmp", 0o1777)
            .dir("proc", 0o555)
            .dir("sys", 0o555)
            .dir("dev", 0o755)
            .dir("root", 0o700)
            .file("bin/busybox", 0o755, &bb)
            .file("etc/passwd", 0o644, b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
            .file("etc/group", 0o644, b"root:x:0:\nnogroup:x:65534:\n");
        let list = std::process::Command::new("/bin/busybox")
            .arg("--list-full")
            .output()
            .expect("busybox --list-full");
        for applet in String::from_utf8_lossy(&list.stdout).lines() {
            let applet = applet.trim_start_matches('/');
            if applet.is_empty() || applet == "bin/busybox" {
                continue;
            }
            let depth = applet.matches('/').count();
            let target = format!("{}bin/busybox", "../".repeat(depth));
            s = s.symlink(applet, &target);
        }
        s
    }
    pub fn finish(self) -> Layer {
        let tar = self.b.into_inner().unwrap();
        let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let gz = gz.finish().unwrap();
        Layer {
            digest: sha256(&gz),
            diff_id: sha256(&tar),
            gz,
        }
    }
}

/// An image: its layers, config and OCI manifest, all as bytes.
#[derive(Clone)]
pub struct Image {
    pub layers: Vec<Layer>,
    pub config: Vec<u8>,
    pub config_digest: String,
    pub manifest: Vec<u8>,
    pub manifest_digest: String,
}

pub fn image(layers: Vec<Layer>, arch: &str) -> Image {
    let diff_ids: Vec<&str> = layers.iter().map(|l| l.diff_id.as_str()).collect();
    let config = serde_json::to_vec(&serde_json::json!({
        "created": "2024-01-02T03:04:05Z",
        "architecture": arch,
        "os": "linux",
        "config": {"Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": layers.iter().map(|_| serde_json::json!({"created_by": "skiff e2e"})).collect::<Vec<_>>(),
    }))
    .unwrap();
    let config_digest = sha256(&config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": {"mediaType": MT_CONFIG, "digest": config_digest, "size": config.len()},
        "layers": layers.iter().map(|l| serde_json::json!({
            "mediaType": MT_LAYER_GZ, "digest": l.digest, "size": l.gz.len()})).collect::<Vec<_>>(),
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
    pub fn diff_ids(&self) -> Vec<String> {
        self.layers.iter().map(|l| l.diff_id.clone()).collect()
    }
    pub fn chain_ids(&self) -> Vec<String> {
        chain_ids(&self.diff_ids())
    }
    /// Every blob of the image (config and layers) with its digest.
    pub fn blobs(&self) -> Vec<(String, &[u8])> {
        let mut v = vec![(self.config_digest.clone(), self.config.as_slice())];
        for l in &self.layers {
            v.push((l.digest.clone(), l.gz.as_slice()));
        }
        v
    }

    /// Writes an OCI image layout at `dir` with this image tagged `tag`.
    pub fn write_layout(&self, dir: &Path, tag: &str) {
        let blobs = dir.join("blobs/sha256");
        fs::create_dir_all(&blobs).unwrap();
        fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        for (d, b) in self.blobs() {
            fs::write(blobs.join(hex(&d)), b).unwrap();
        }
        fs::write(blobs.join(hex(&self.manifest_digest)), &self.manifest).unwrap();
        let index = serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{"mediaType": MT_MANIFEST, "digest": self.manifest_digest,
                "size": self.manifest.len(),
                "annotations": {"org.opencontainers.image.ref.name": tag}}],
        });
        fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    }
}

/// An OCI index over `(image, arch)` entries (os linux).
pub fn index(images: &[(&Image, &str)]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MT_INDEX,
        "manifests": images.iter().map(|(i, arch)| serde_json::json!({
            "mediaType": MT_MANIFEST, "digest": i.manifest_digest, "size": i.manifest.len(),
            "platform": {"architecture": arch, "os": "linux"}})).collect::<Vec<_>>(),
    }))
    .unwrap()
}
