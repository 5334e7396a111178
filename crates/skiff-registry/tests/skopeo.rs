//! Interop both ways with skopeo (Debian) against a real registry on 127.0.0.1.

mod support;

use std::path::Path;
use std::process::Command;

use futures_util::StreamExt;
use skiff_registry::{sha256_digest, Platform, DOCKER_MANIFEST_V2, OCI_INDEX, OCI_MANIFEST};
use support::{client, Auth, TestImage, TestRegistry};

fn skopeo(args: &[&str]) -> Vec<u8> {
    assert!(
        Path::new("/usr/bin/skopeo").exists(),
        "/usr/bin/skopeo not found: run scripts/install-deps.sh (apt-get install skopeo)"
    );
    let out = Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .output()
        .expect("run skopeo");
    assert!(
        out.status.success(),
        "skopeo {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Writes `img` as an OCI image layout with tag `tag`.
fn write_oci_layout(dir: &Path, img: &TestImage, tag: &str) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |data: &[u8]| {
        let d = sha256_digest(data);
        std::fs::write(blobs.join(d.digest()), data).unwrap();
    };
    for (_, b) in &img.layers {
        put(b);
    }
    put(&img.config.1);
    put(&img.oci_manifest);
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{
            "mediaType": OCI_MANIFEST, "size": img.oci_manifest.len(),
            "digest": sha256_digest(&img.oci_manifest).to_string(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

#[tokio::test]
async fn skopeo_pushes_we_pull() {
    let r = TestRegistry::start(Auth::Open);
    let layout = tempfile::tempdir().unwrap();
    let img = TestImage::new(21, &[4096, 20_000]);
    write_oci_layout(layout.path(), &img, "v1");
    let src = format!("oci:{}:v1", layout.path().display());
    let dest = format!("docker://{}/interop/from-skopeo:v1", r.host());
    skopeo(&["copy", "--dest-tls-verify=false", &src, &dest]);
    let raw = skopeo(&["inspect", "--raw", "--tls-verify=false", &dest]);

    let reg = client();
    let repo = r.reference("interop/from-skopeo:v1");
    let m = reg
        .resolve_manifest(&repo, &Platform::host())
        .await
        .unwrap();
    assert_eq!(&m.manifest.bytes[..], &raw[..]);
    assert_eq!(m.manifest.digest, sha256_digest(&raw));
    for layer in m.image.layers() {
        let mut s = reg
            .fetch_blob_verified(&repo, layer.digest())
            .await
            .unwrap();
        let mut n = 0u64;
        while let Some(c) = s.next().await {
            n += c.unwrap().len() as u64;
        }
        assert_eq!(n, layer.size());
    }
    let cfg = reg
        .fetch_blob_bytes(&repo, m.image.config().digest())
        .await
        .unwrap();
    assert_eq!(cfg, img.config.1);
}

#[tokio::test]
async fn we_push_skopeo_reads() {
    let r = TestRegistry::start(Auth::Open);
    let reg = client();
    let repo = r.reference("interop/from-skiff:v2");
    let img = TestImage::new(22, &[3000, 5000]);
    img.push_blobs(&reg, &repo).await;
    let digest = reg
        .push_manifest(&repo, DOCKER_MANIFEST_V2, img.docker_manifest.clone())
        .await
        .unwrap();
    let src = format!("docker://{}/interop/from-skiff:v2", r.host());
    let raw = skopeo(&["inspect", "--raw", "--tls-verify=false", &src]);
    assert_eq!(&raw[..], &img.docker_manifest[..]);
    let info: serde_json::Value =
        serde_json::from_slice(&skopeo(&["inspect", "--tls-verify=false", &src])).unwrap();
    assert_eq!(info["Digest"], digest.to_string());

    // skopeo copies it out byte for byte.
    let out = tempfile::tempdir().unwrap();
    let dest = format!("dir:{}", out.path().display());
    skopeo(&["copy", "--src-tls-verify=false", &src, &dest]);
    assert_eq!(
        std::fs::read(out.path().join("manifest.json")).unwrap(),
        &img.docker_manifest[..]
    );
    for (d, b) in img.layers.iter().chain(std::iter::once(&img.config)) {
        assert_eq!(std::fs::read(out.path().join(d.digest())).unwrap(), &b[..]);
    }
}
