//! Against a real registry (Debian's docker-registry on 127.0.0.1, started per test).

mod support;

use bytes::Bytes;
use futures_util::StreamExt;
use skiff_registry::{
    sha256_digest, BlobPush, Credentials, Error, ManifestKind, Platform, Reference, RegistryConfig,
    Verifier, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST_V2, OCI_INDEX, OCI_MANIFEST,
};
use support::{client, client_with, index, Auth, TestImage, TestRegistry, PASSWORD, USER};

async fn collect(
    mut s: impl futures_util::Stream<Item = skiff_registry::Result<Bytes>> + Unpin,
) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.unwrap());
    }
    out
}

#[tokio::test]
async fn push_then_pull_by_tag_and_digest() {
    let r = TestRegistry::start(Auth::Open);
    let reg = client();
    let repo = r.reference("test/app:oci");
    let img = TestImage::new(1, &[3000, 70_000]);
    img.push_blobs(&reg, &repo).await;
    // Pushing again finds the blobs there.
    assert_eq!(
        reg.push_blob(&repo, &img.config.0, img.config.1.clone(), None)
            .await
            .unwrap(),
        BlobPush::Existed
    );
    let oci = reg
        .push_manifest(&repo, OCI_MANIFEST, img.oci_manifest.clone())
        .await
        .unwrap();
    let docker_ref = repo.retag("docker").unwrap();
    let docker = reg
        .push_manifest(&docker_ref, DOCKER_MANIFEST_V2, img.docker_manifest.clone())
        .await
        .unwrap();
    assert_eq!(oci, sha256_digest(&img.oci_manifest));

    for (tag, bytes, mt, digest) in [
        ("oci", &img.oci_manifest, OCI_MANIFEST, &oci),
        ("docker", &img.docker_manifest, DOCKER_MANIFEST_V2, &docker),
    ] {
        let by_tag = reg.fetch_manifest(&repo.retag(tag).unwrap()).await.unwrap();
        assert_eq!(&by_tag.bytes, bytes);
        assert_eq!(by_tag.media_type, mt);
        assert_eq!(&by_tag.digest, digest);
        assert_eq!(by_tag.kind(), ManifestKind::Image);
        let by_digest = reg
            .fetch_manifest(&repo.with_digest(digest.clone()))
            .await
            .unwrap();
        assert_eq!(&by_digest.bytes, bytes);
        let parsed = by_digest.image().unwrap();
        assert_eq!(parsed.layers().len(), 2);
    }
    for (d, b) in &img.layers {
        let got = collect(reg.fetch_blob_verified(&repo, d).await.unwrap()).await;
        assert_eq!(&got[..], &b[..]);
    }
    assert_eq!(
        reg.fetch_blob_bytes(&repo, &img.config.0).await.unwrap(),
        img.config.1
    );

    // Push by digest.
    let by_digest = repo.with_digest(sha256_digest(&img.oci_manifest));
    reg.push_manifest(&by_digest, OCI_MANIFEST, img.oci_manifest.clone())
        .await
        .unwrap();

    let missing = reg
        .fetch_manifest(&repo.retag("nope").unwrap())
        .await
        .unwrap_err();
    assert_eq!(
        missing.to_string(),
        format!("pull {}/test/app:nope: manifest unknown", r.host())
    );
    assert!(missing.is_not_found());
    let missing_blob = reg
        .fetch_blob(&repo, &sha256_digest(b"missing"), 0)
        .await
        .err()
        .unwrap();
    assert!(missing_blob.is_not_found(), "{missing_blob}");
    assert!(
        missing_blob.to_string().contains("blob unknown"),
        "{missing_blob}"
    );
}

#[tokio::test]
async fn index_and_platform_selection() {
    let r = TestRegistry::start(Auth::Open);
    let reg = client();
    let repo = r.reference("multi/app:latest");
    let amd = TestImage::new(2, &[1000]);
    let arm = TestImage::new(3, &[1200]);
    amd.push_blobs(&reg, &repo).await;
    arm.push_blobs(&reg, &repo).await;
    let amd_d = reg
        .push_manifest(
            &repo.with_digest(sha256_digest(&amd.oci_manifest)),
            OCI_MANIFEST,
            amd.oci_manifest.clone(),
        )
        .await
        .unwrap();
    let arm_d = reg
        .push_manifest(
            &repo.with_digest(sha256_digest(&arm.oci_manifest)),
            OCI_MANIFEST,
            arm.oci_manifest.clone(),
        )
        .await
        .unwrap();
    let idx = index(
        OCI_INDEX,
        &[
            (&amd.oci_manifest, OCI_MANIFEST, "linux", "amd64", None),
            (
                &arm.oci_manifest,
                OCI_MANIFEST,
                "linux",
                "arm64",
                Some("v8"),
            ),
        ],
    );
    let idx_d = reg
        .push_manifest(&repo, OCI_INDEX, idx.clone())
        .await
        .unwrap();

    let top = reg.fetch_manifest(&repo).await.unwrap();
    assert_eq!(top.kind(), ManifestKind::Index);
    assert_eq!(top.bytes, idx);
    assert_eq!(top.digest, idx_d);

    let res = reg
        .resolve_manifest(&repo, &"linux/arm64/v8".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(res.manifest.digest, arm_d);
    assert_eq!(res.index.as_ref().unwrap().digest, idx_d);
    let res = reg
        .resolve_manifest(&repo, &"linux/arm64".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(res.manifest.digest, arm_d);
    let res = reg
        .resolve_manifest(&repo, &Platform::new("linux", "amd64", None))
        .await
        .unwrap();
    assert_eq!(res.manifest.digest, amd_d);
    assert_eq!(res.image.config().digest(), &amd.config.0);
    let err = reg
        .resolve_manifest(&repo, &"linux/s390x".parse().unwrap())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "pull {}/multi/app:latest: no matching manifest for linux/s390x in the manifest list entries (available: linux/amd64, linux/arm64/v8)",
            r.host()
        )
    );

    // A Docker manifest list over Docker manifests.
    let dl = repo.retag("dockerlist").unwrap();
    reg.push_manifest(
        &dl.with_digest(sha256_digest(&amd.docker_manifest)),
        DOCKER_MANIFEST_V2,
        amd.docker_manifest.clone(),
    )
    .await
    .unwrap();
    let list = index(
        DOCKER_MANIFEST_LIST,
        &[(
            &amd.docker_manifest,
            DOCKER_MANIFEST_V2,
            "linux",
            "amd64",
            None,
        )],
    );
    reg.push_manifest(&dl, DOCKER_MANIFEST_LIST, list)
        .await
        .unwrap();
    let res = reg.resolve_manifest(&dl, &Platform::host()).await.unwrap();
    assert_eq!(res.manifest.media_type, DOCKER_MANIFEST_V2);
    assert_eq!(res.index.unwrap().media_type, DOCKER_MANIFEST_LIST);
}

#[tokio::test]
async fn chunked_upload_and_range_resume() {
    let r = TestRegistry::start(Auth::Open);
    let reg = client();
    let repo = r.reference("big/blob:latest");
    let data = support::random_bytes(9, 1 << 20);
    let digest = sha256_digest(&data);
    let chunks: Vec<std::io::Result<Bytes>> = data
        .chunks(256 * 1024 + 7)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let pushed = reg
        .push_blob_chunked(&repo, &digest, futures_util::stream::iter(chunks))
        .await
        .unwrap();
    assert_eq!(pushed, BlobPush::Uploaded);
    assert_eq!(
        reg.blob_exists(&repo, &digest).await.unwrap(),
        Some(data.len() as u64)
    );

    // Read about half, drop the stream, continue from where we were.
    let mut first = Vec::new();
    let mut s = reg.fetch_blob(&repo, &digest, 0).await.unwrap();
    assert_eq!(s.total_size(), Some(data.len() as u64));
    while first.len() < data.len() / 2 {
        first.extend_from_slice(&s.next().await.unwrap().unwrap());
    }
    drop(s);
    let mut verifier = Verifier::new(&digest).unwrap();
    verifier.update(&first);
    let s = reg
        .fetch_blob(&repo, &digest, first.len() as u64)
        .await
        .unwrap();
    assert_eq!(s.offset(), first.len() as u64);
    assert_eq!(s.total_size(), Some(data.len() as u64));
    let rest = collect(s.verified(verifier, "resume")).await;
    first.extend_from_slice(&rest);
    assert_eq!(sha256_digest(&first), digest);

    // A wrong expected digest is caught at the end of the stream.
    let other = sha256_digest(b"other");
    let mut s = reg
        .fetch_blob(&repo, &digest, 0)
        .await
        .unwrap()
        .verified(Verifier::new(&other).unwrap(), "check");
    let mut last = None;
    while let Some(item) = s.next().await {
        last = Some(item);
    }
    let err = last.unwrap().unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");

    // A chunked upload whose bytes do not match the digest is refused before completion.
    let bad = reg
        .push_blob_chunked(
            &repo,
            &other,
            futures_util::stream::iter(vec![Ok(Bytes::from_static(b"x"))]),
        )
        .await
        .unwrap_err();
    assert!(matches!(bad, Error::DigestMismatch { .. }), "{bad}");
}

#[tokio::test]
async fn cross_repository_mount() {
    let r = TestRegistry::start(Auth::Token);
    let reg = client();
    reg.set_credentials(&r.host(), Some(Credentials::new(USER, PASSWORD)));
    let a = r.reference("team/a:latest");
    let b = r.reference("team/b:latest");
    let data = support::random_bytes(4, 5000);
    let digest = sha256_digest(&data);
    assert_eq!(
        reg.push_blob(&a, &digest, data.clone(), None)
            .await
            .unwrap(),
        BlobPush::Uploaded
    );
    assert_eq!(
        reg.push_blob(&b, &digest, data.clone(), Some(&a))
            .await
            .unwrap(),
        BlobPush::Mounted
    );
    assert_eq!(reg.blob_exists(&b, &digest).await.unwrap(), Some(5000));
    // Refused mount (blob absent in the source) falls back to an upload.
    let data2 = support::random_bytes(5, 100);
    let d2 = sha256_digest(&data2);
    assert!(!reg.mount_blob(&b, &d2, &a).await.unwrap());
    let c = r.reference("team/c:latest");
    assert_eq!(
        reg.push_blob(&c, &d2, data2, Some(&a)).await.unwrap(),
        BlobPush::Uploaded
    );
}

#[tokio::test]
async fn basic_auth_login_logout() {
    let r = TestRegistry::start(Auth::Htpasswd);
    let home = tempfile::tempdir().unwrap();
    let cfg_path = home.path().join(".docker/config.json");
    let repo = r.reference("private/app:1");

    let anon = client_with(RegistryConfig::default(), Some(cfg_path.clone()));
    let err = anon.fetch_manifest(&repo).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}: unauthorized: authentication required", r.host())
    );

    let err = anon
        .login(&r.host(), Credentials::new(USER, "wrong"))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("{}: unauthorized", r.host())),
        "{err}"
    );
    assert!(!cfg_path.exists());

    anon.login(&r.host(), Credentials::new(USER, PASSWORD))
        .await
        .unwrap();
    check_config_written(&cfg_path, &r.host());

    // A fresh client reads config.json and can push and pull.
    let reg = client_with(RegistryConfig::default(), Some(cfg_path.clone()));
    let img = TestImage::new(6, &[500]);
    img.push_blobs(&reg, &repo).await;
    let d = reg
        .push_manifest(&repo, OCI_MANIFEST, img.oci_manifest.clone())
        .await
        .unwrap();
    assert_eq!(reg.fetch_manifest(&repo).await.unwrap().digest, d);

    assert!(reg.logout(&r.host()).await.unwrap());
    assert!(!reg.logout(&r.host()).await.unwrap());
    let after = client_with(RegistryConfig::default(), Some(cfg_path.clone()));
    assert!(matches!(
        after.fetch_manifest(&repo).await.unwrap_err(),
        Error::Unauthorized { .. }
    ));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&cfg_path).unwrap()).unwrap();
    assert!(v["auths"].get(r.host()).is_none());
    assert_eq!(v["keep"], "me");
}

fn check_config_written(path: &std::path::Path, host: &str) {
    use base64::Engine;
    use std::os::unix::fs::PermissionsExt;
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let want = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    assert_eq!(v["auths"][host]["auth"], want);
    assert_eq!(
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Other keys survive later writes.
    let mut v = v;
    v["keep"] = serde_json::json!("me");
    std::fs::write(path, serde_json::to_vec(&v).unwrap()).unwrap();
}

#[tokio::test]
async fn token_auth() {
    let r = TestRegistry::start(Auth::Token);
    let home = tempfile::tempdir().unwrap();
    let cfg_path = home.path().join(".docker/config.json");
    let repo = r.reference("tok/app:v1");

    let anon = client();
    let err = anon.fetch_manifest(&repo).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}: unauthorized: invalid username or password", r.host())
    );

    let bad = client();
    bad.set_credentials(&r.host(), Some(Credentials::new(USER, "nope")));
    assert!(matches!(
        bad.fetch_manifest(&repo).await.unwrap_err(),
        Error::Unauthorized { .. }
    ));
    let err = bad
        .login(&r.host(), Credentials::new(USER, "nope"))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("{}: unauthorized", r.host())),
        "{err}"
    );

    let login = client_with(RegistryConfig::default(), Some(cfg_path.clone()));
    login
        .login(&r.host(), Credentials::new(USER, PASSWORD))
        .await
        .unwrap();
    check_config_written(&cfg_path, &r.host());

    let reg = client_with(RegistryConfig::default(), Some(cfg_path.clone()));
    let img = TestImage::new(7, &[800, 900]);
    img.push_blobs(&reg, &repo).await;
    let d = reg
        .push_manifest(&repo, DOCKER_MANIFEST_V2, img.docker_manifest.clone())
        .await
        .unwrap();
    let got = reg.fetch_manifest(&repo).await.unwrap();
    assert_eq!(got.digest, d);
    assert_eq!(got.bytes, img.docker_manifest);
    let blob = reg.fetch_blob_bytes(&repo, &img.layers[1].0).await.unwrap();
    assert_eq!(blob, img.layers[1].1);
    // The missing tag error comes through token auth too.
    let err = reg
        .fetch_manifest(&repo.retag("nope").unwrap())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("pull {}/tok/app:nope: manifest unknown", r.host())
    );
    assert!(login.logout(&r.host()).await.unwrap());
}

#[tokio::test]
async fn mirrors_fall_back_in_order() {
    let full = TestRegistry::start(Auth::Open);
    let empty = TestRegistry::start(Auth::Open);
    let seed = client();
    let upstream_repo = full.reference("library/alpine:3");
    let img = TestImage::new(8, &[1500]);
    img.push_blobs(&seed, &upstream_repo).await;
    seed.push_manifest(&upstream_repo, OCI_MANIFEST, img.oci_manifest.clone())
        .await
        .unwrap();

    let dead = url::Url::parse(&format!("http://127.0.0.1:{}/", support::free_port())).unwrap();
    let hub = Reference::parse("alpine:3").unwrap();

    // Dead mirror, mirror lacking the image, then the mirror that has it.
    let cfg = RegistryConfig {
        mirrors: vec![dead.clone(), empty.url(), full.url()],
        docker_hub_endpoint: Some(dead.clone()),
        ..Default::default()
    };
    let reg = client_with(cfg, None);
    let m = reg.resolve_manifest(&hub, &Platform::host()).await.unwrap();
    assert_eq!(m.manifest.bytes, img.oci_manifest);
    let blob = reg.fetch_blob_bytes(&hub, &img.layers[0].0).await.unwrap();
    assert_eq!(blob, img.layers[0].1);

    // All mirrors failing falls back to the upstream.
    let cfg = RegistryConfig {
        mirrors: vec![dead.clone(), empty.url()],
        docker_hub_endpoint: Some(full.url()),
        ..Default::default()
    };
    let reg = client_with(cfg, None);
    assert_eq!(
        reg.fetch_manifest(&hub).await.unwrap().bytes,
        img.oci_manifest
    );
    assert_eq!(
        reg.fetch_blob_bytes(&hub, &img.config.0).await.unwrap(),
        img.config.1
    );

    // When the upstream lacks it too, its answer is the error.
    let cfg = RegistryConfig {
        mirrors: vec![dead],
        docker_hub_endpoint: Some(empty.url()),
        ..Default::default()
    };
    let err = client_with(cfg, None)
        .fetch_manifest(&hub)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "pull alpine:3: manifest unknown");
}

#[tokio::test]
async fn loopback_tries_https_first_without_verification() {
    let r = TestRegistry::start_with(Auth::Open, true);
    let reg = client();
    let repo = r.reference("tls/app:1");
    let img = TestImage::new(30, &[2000]);
    img.push_blobs(&reg, &repo).await;
    let d = reg
        .push_manifest(&repo, OCI_MANIFEST, img.oci_manifest.clone())
        .await
        .unwrap();
    let m = reg.fetch_manifest(&repo).await.unwrap();
    assert_eq!(m.digest, d);
    assert_eq!(
        reg.fetch_blob_bytes(&repo, &img.layers[0].0).await.unwrap(),
        img.layers[0].1
    );
}
