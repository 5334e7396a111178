//! The image verbs beyond pull (push, save, load, import, inspect, history, prune, df)
//! against a real registry (Debian's docker-registry on 127.0.0.1) with skopeo as the peer.
//! Needs root (layers unpack with their owners).

mod support;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::Value;
use skiff_engine::images::{Loaded, PushEvent};
use skiff_registry::Platform;
use support::*;

fn pull(svc: &skiff_engine::ImageService, r: &str) -> skiff_engine::images::PullResult {
    rt().block_on(svc.pull(r, &Platform::host(), &no_progress()))
        .unwrap()
}

fn push(svc: &skiff_engine::ImageService, r: &str) -> (Vec<PushEvent>, String) {
    let events = Mutex::new(Vec::new());
    let res = rt()
        .block_on(svc.push(r, false, &|e| events.lock().unwrap().push(e)))
        .unwrap();
    (events.into_inner().unwrap(), res[0].digest.clone())
}

/// The manifest digest the local image record points at.
fn local_manifest_digest(svc: &skiff_engine::ImageService, name: &str) -> String {
    let full = skiff_registry::Reference::parse(name).unwrap().to_string();
    svc.store
        .image_get(&full)
        .unwrap()
        .unwrap()
        .target
        .digest
        .to_string()
}

fn raw_manifest_digest(reference: &str) -> String {
    sha256(&skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{reference}"),
    ]))
}

fn upper_dir(v: &Value) -> PathBuf {
    PathBuf::from(v[0]["GraphDriver"]["Data"]["UpperDir"].as_str().unwrap())
}

fn names(svc: &skiff_engine::ImageService) -> Vec<String> {
    svc.list()
        .unwrap()
        .into_iter()
        .map(|r| format!("{}:{}", r.repository, r.tag))
        .collect()
}

#[test]
fn push_mounts_within_a_registry_uploads_to_another_and_keeps_the_digest() {
    let reg = TestRegistry::start();
    let reg2 = TestRegistry::start();
    let img = seed(&reg, "src/app:v1", "push");
    let (svc, _root) = engine();
    let src = format!("{}/src/app:v1", reg.host());
    pull(&svc, &src);
    assert_eq!(local_manifest_digest(&svc, &src), img.manifest_digest());

    // Another repository of the same registry: every layer mounted from src/app.
    let other = format!("{}/other/app:v2", reg.host());
    svc.tag(&src, &other).unwrap();
    let (events, digest) = push(&svc, &other);
    assert_eq!(digest, img.manifest_digest());
    let mounted: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, PushEvent::Mounted { from, .. } if from == "src/app"))
        .collect();
    assert_eq!(mounted.len(), 2, "{events:?}");
    assert!(events.contains(&PushEvent::Done {
        tag: "v2".into(),
        digest: img.manifest_digest(),
        size: img.manifest.len() as u64,
    }));
    assert_eq!(raw_manifest_digest(&other), img.manifest_digest());

    // Pushing again: everything is there.
    let (events, _) = push(&svc, &other);
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, PushEvent::AlreadyExists { .. }))
            .count(),
        2,
        "{events:?}"
    );

    // A new registry: uploaded, identical digest, and skopeo copies it back out.
    let fresh = format!("{}/new/app:v1", reg2.host());
    svc.tag(&src, &fresh).unwrap();
    let (events, digest) = push(&svc, &fresh);
    assert_eq!(digest, img.manifest_digest());
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, PushEvent::Pushed { .. }))
            .count(),
        2,
        "{events:?}"
    );
    assert_eq!(raw_manifest_digest(&fresh), img.manifest_digest());
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("copy");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{fresh}"),
        &format!("oci:{}:x", dest.display()),
    ]);
    let config_blob = dest
        .join("blobs/sha256")
        .join(img.id().trim_start_matches("sha256:"));
    assert_eq!(std::fs::read(config_blob).unwrap(), img.config);

    // An unknown tag is a clear error.
    let e = rt()
        .block_on(svc.push(&format!("{}/nope:v1", reg.host()), false, &|_| {}))
        .unwrap_err();
    assert!(e.to_string().contains("does not exist locally"), "{e}");
}

#[test]
fn push_of_an_imported_image_pushes_its_stored_blobs() {
    let reg = TestRegistry::start();
    let (svc, _root) = engine();
    let tarball = layer_tar(&[("hello.txt", b"hello\n")]);
    let name = format!("{}/local/imported:v1", reg.host());
    let id = svc
        .import(
            &tarball[..],
            &skiff_engine::images::ImportRequest {
                reference: Some(name.clone()),
                source: "-".into(),
                ..Default::default()
            },
        )
        .unwrap();
    let (_, digest) = push(&svc, &name);
    assert_eq!(digest, local_manifest_digest(&svc, &name));
    assert_eq!(raw_manifest_digest(&name), digest);
    assert_eq!(
        svc.inspect(&name).unwrap()["RepoDigests"],
        serde_json::json!([format!("{}/local/imported@{digest}", reg.host())])
    );
    // And pulls back into a fresh store as the same image.
    let (svc2, _root2) = engine();
    assert_eq!(pull(&svc2, &name).id, id);
}

#[test]
fn save_then_load_into_a_fresh_root_keeps_id_names_and_files() {
    let reg = TestRegistry::start();
    seed(&reg, "src/app:v1", "save");
    let (svc, _root) = engine();
    let src = format!("{}/src/app:v1", reg.host());
    let pulled = pull(&svc, &src);

    let dir = tempfile::tempdir().unwrap();
    let tarball = dir.path().join("save.tar");
    svc.save(
        std::slice::from_ref(&src),
        std::fs::File::create(&tarball).unwrap(),
    )
    .unwrap();
    // Docker ≥ 25's form: an OCI layout plus manifest.json with RepoTags.
    let mut ar = tar::Archive::new(std::fs::File::open(&tarball).unwrap());
    let mut manifest_json = None;
    let mut entries = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().display().to_string();
        if p == "manifest.json" {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut e, &mut s).unwrap();
            manifest_json = Some(s);
        }
        entries.push(p);
    }
    assert!(entries.contains(&"index.json".to_string()), "{entries:?}");
    assert!(entries.contains(&"oci-layout".to_string()), "{entries:?}");
    let m: Value = serde_json::from_str(&manifest_json.unwrap()).unwrap();
    assert_eq!(m[0]["RepoTags"][0], format!("{}/src/app:v1", reg.host()));

    let (svc2, _root2) = engine();
    let loaded = svc2.load(std::fs::File::open(&tarball).unwrap()).unwrap();
    assert_eq!(
        loaded,
        vec![Loaded::Name(format!("{}/src/app:v1", reg.host()))]
    );
    let v = svc2.inspect(&src).unwrap();
    assert_eq!(v["Id"], pulled.id);
    // The files: top layer in UpperDir, the base through LowerDir.
    let wrapped = Value::Array(vec![v.clone()]);
    let upper = upper_dir(&wrapped);
    assert_eq!(
        std::fs::read_to_string(upper.join("data/top.txt")).unwrap(),
        "top save\n"
    );
    let lower = PathBuf::from(v["GraphDriver"]["Data"]["LowerDir"].as_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(lower.join("data/base.txt")).unwrap(),
        "base save\n"
    );
    // Loading twice is idempotent; saving by ID carries no tag.
    assert_eq!(
        svc2.load(std::fs::File::open(&tarball).unwrap())
            .unwrap()
            .len(),
        1
    );
    let by_id = dir.path().join("by-id.tar");
    svc2.save(
        std::slice::from_ref(&pulled.id),
        std::fs::File::create(&by_id).unwrap(),
    )
    .unwrap();
    let (svc3, _root3) = engine();
    assert_eq!(
        svc3.load(std::fs::File::open(&by_id).unwrap()).unwrap(),
        vec![Loaded::Id(pulled.id.clone())]
    );
    assert_eq!(names(&svc3), vec!["<none>:<none>".to_string()]);
}

#[test]
fn load_of_skopeo_docker_archive_and_of_a_tarred_oci_layout() {
    let reg = TestRegistry::start();
    let img = seed(&reg, "src/app:v1", "skopeo");
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("x.tar");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{}/src/app:v1", reg.host()),
        &format!("docker-archive:{}:foo/bar:t", archive.display()),
    ]);
    let (svc, _root) = engine();
    let loaded = svc.load(std::fs::File::open(&archive).unwrap()).unwrap();
    assert_eq!(loaded, vec![Loaded::Name("foo/bar:t".into())]);
    let v = svc.inspect("foo/bar:t").unwrap();
    assert_eq!(v["Id"], img.id());
    assert_eq!(
        v["RootFS"]["Layers"],
        serde_json::to_value(img.diff_ids()).unwrap()
    );

    // A plain OCI layout, tarred.
    let layout = dir.path().join("layout");
    let img2 = two_layer_layout(&layout, "example.com/oci/img:v3", "layout");
    let tarred = dir.path().join("layout.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&tarred).unwrap());
    b.append_dir_all(".", &layout).unwrap();
    b.into_inner().unwrap();
    let loaded = svc.load(std::fs::File::open(&tarred).unwrap()).unwrap();
    assert_eq!(loaded, vec![Loaded::Name("example.com/oci/img:v3".into())]);
    assert_eq!(
        svc.inspect("example.com/oci/img:v3").unwrap()["Id"],
        img2.id()
    );
}

#[test]
fn import_of_a_small_dir_makes_a_single_layer_image() {
    let (svc, _root) = engine();
    let tarball = layer_tar(&[
        ("app/run.sh", b"#!/bin/sh\necho hi\n"),
        ("etc/motd", b"motd\n"),
    ]);
    let id = svc
        .import(
            &gzip(&tarball)[..],
            &skiff_engine::images::ImportRequest {
                reference: Some("imported/app:1.0".into()),
                changes: vec!["CMD [\"/app/run.sh\"]".into(), "ENV A=b".into()],
                message: Some("from tests".into()),
                platform: Some("linux/arm64".into()),
                source: "rootfs.tar.gz".into(),
            },
        )
        .unwrap();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    let v = svc.inspect("imported/app:1.0").unwrap();
    assert_eq!(v["Id"], id);
    assert_eq!(v["RepoTags"], serde_json::json!(["imported/app:1.0"]));
    assert_eq!(v["Config"]["Cmd"], serde_json::json!(["/app/run.sh"]));
    assert_eq!(v["Config"]["Env"], serde_json::json!(["A=b"]));
    assert_eq!(v["Architecture"], "arm64");
    assert_eq!(v["Comment"], "from tests");
    assert_eq!(v["RootFS"]["Layers"], serde_json::json!([sha256(&tarball)]));
    let upper = upper_dir(&Value::Array(vec![v]));
    assert_eq!(
        std::fs::read_to_string(upper.join("etc/motd")).unwrap(),
        "motd\n"
    );
    let h = svc.history("imported/app:1.0").unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].id.as_deref(), Some(id.as_str()));
    assert_eq!(h[0].comment, "from tests");
    assert_eq!(h[0].size, tarball.len() as u64);

    // A bad --change and a non-tar are errors that store nothing.
    let bad = svc.import(
        &tarball[..],
        &skiff_engine::images::ImportRequest {
            changes: vec!["FROM x".into()],
            source: "-".into(),
            ..Default::default()
        },
    );
    assert_eq!(
        bad.unwrap_err().to_string(),
        "from is not a valid change command"
    );
    let bad = svc.import(
        &b"this is not a tarball at all, not even close, no"[..],
        &skiff_engine::images::ImportRequest {
            source: "junk.bin".into(),
            ..Default::default()
        },
    );
    assert!(bad.unwrap_err().to_string().contains("junk.bin"));
    assert_eq!(names(&svc), vec!["imported/app:1.0".to_string()]);
}

#[test]
fn inspect_and_history_of_a_pulled_image() {
    let reg = TestRegistry::start();
    let img = seed(&reg, "src/app:v1", "inspect");
    let (svc, _root) = engine();
    let src = format!("{}/src/app:v1", reg.host());
    pull(&svc, &src);
    let v = svc.inspect(&src).unwrap();
    assert_eq!(v["Id"], img.id());
    assert_eq!(v["RepoTags"], serde_json::json!([src.clone()]));
    assert_eq!(
        v["RepoDigests"],
        serde_json::json!([format!("{}/src/app@{}", reg.host(), img.manifest_digest())])
    );
    assert_eq!(v["RootFS"]["Type"], "layers");
    assert_eq!(
        v["RootFS"]["Layers"],
        serde_json::to_value(img.diff_ids()).unwrap()
    );
    assert_eq!(v["Created"], "2024-01-02T03:04:05Z");
    assert_eq!(v["Author"], "skiff tests");
    assert_eq!(v["Os"], "linux");
    assert_eq!(v["Config"]["WorkingDir"], "/data");
    assert_eq!(v["Config"]["Labels"]["seed"], "inspect");
    assert!(v["Config"]["ExposedPorts"]["80/tcp"].is_object());
    assert_eq!(v["Config"]["User"], "");
    assert_eq!(v["GraphDriver"]["Name"], "overlay2");
    let size: u64 = img.layers.iter().map(|l| l.len() as u64).sum();
    assert_eq!(v["Size"], size);
    for k in [
        "Parent",
        "Comment",
        "DockerVersion",
        "Architecture",
        "Metadata",
    ] {
        assert!(v.get(k).is_some(), "missing {k}");
    }
    // By short ID too.
    let short = &img.id()[7..19];
    assert_eq!(svc.inspect(short).unwrap()["Id"], img.id());
    assert!(svc
        .inspect("nope:latest")
        .unwrap_err()
        .to_string()
        .contains("No such image"));

    let h = svc.history(&src).unwrap();
    assert_eq!(h.len(), 3);
    assert_eq!(h[0].id.as_deref(), Some(img.id().as_str()));
    assert!(h[1].id.is_none() && h[2].id.is_none());
    assert_eq!(h[0].created_by, "RUN echo top");
    assert_eq!(h[0].comment, "step two");
    assert_eq!(h[0].size, img.layers[1].len() as u64);
    assert_eq!(h[1].size, 0, "empty layer");
    assert_eq!(h[2].size, img.layers[0].len() as u64);
}

fn blob_exists(root: &Path, digest: &str) -> bool {
    root.join("content/blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
        .exists()
}

#[test]
fn prune_removes_dangling_images_and_gc_frees_their_blobs() {
    let (svc, root) = engine();
    let req = |reference: Option<&str>| skiff_engine::images::ImportRequest {
        reference: reference.map(str::to_string),
        source: "-".into(),
        ..Default::default()
    };
    let kept = svc
        .import(
            &layer_tar(&[("a", b"kept\n")])[..],
            &req(Some("keep/me:v1")),
        )
        .unwrap();
    let untagged = svc
        .import(&layer_tar(&[("b", b"untagged\n")])[..], &req(None))
        .unwrap();
    // A tag moved to a new image leaves the old one dangling, as docker does.
    let old = svc
        .import(
            &layer_tar(&[("c", b"old\n")])[..],
            &req(Some("moved/tag:v1")),
        )
        .unwrap();
    svc.import(
        &layer_tar(&[("c", b"new\n")])[..],
        &req(Some("moved/tag:v1")),
    )
    .unwrap();
    assert_eq!(svc.list().unwrap().len(), 4);
    let du = svc.disk_usage(&|_| false).unwrap();
    assert_eq!((du.total, du.active), (4, 0));
    assert_eq!(du.size, du.reclaimable);

    let untagged_layer = svc
        .inspect(&untagged)
        .map(|v| {
            v["GraphDriver"]["Data"]["UpperDir"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .unwrap();
    let untagged_config_blob = untagged.clone();
    assert!(blob_exists(root.path(), &untagged_config_blob));

    let report = svc.prune(false, &|_| false).unwrap();
    let mut deleted = report.deleted.clone();
    deleted.sort();
    let mut want = vec![untagged.clone(), old.clone()];
    want.sort();
    assert_eq!(deleted, want);
    assert!(report.untagged.is_empty());
    assert!(report.space_reclaimed > 0);
    assert!(!blob_exists(root.path(), &untagged_config_blob));
    assert!(!Path::new(&untagged_layer).exists());
    assert!(svc.inspect(&kept).is_ok());
    let mut left = names(&svc);
    left.sort();
    assert_eq!(left, vec!["keep/me:v1", "moved/tag:v1"]);

    // -a: every image no container uses; one "in use" stays.
    let report = svc.prune(true, &|id| id == kept).unwrap();
    assert_eq!(report.untagged, vec!["moved/tag:v1".to_string()]);
    assert_eq!(names(&svc), vec!["keep/me:v1"]);
}

#[test]
fn bad_tarballs_each_give_a_clear_error_and_store_nothing() {
    let (svc, root) = engine();
    let layer = layer_tar(&[("f", b"data\n")]);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [sha256(&layer)]},
    }))
    .unwrap();
    let cfg_name = format!("{}.json", &sha256(&config)[7..]);
    let manifest = |layers: &str| {
        format!(r#"[{{"Config":"{cfg_name}","RepoTags":["bad/img:v1"],"Layers":[{layers}]}}]"#)
    };
    let archive = |files: &[(&str, &[u8])]| -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            // set_path refuses "..": write the raw name the way a hostile tool would.
            let raw = &mut h.as_old_mut().name;
            raw[..name.len()].copy_from_slice(name.as_bytes());
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    };
    let good_manifest = manifest(r#""l/layer.tar""#);
    let mut tampered = layer.clone();
    let n = tampered.len();
    tampered[600] ^= 0xff; // inside the file's data block
    let _ = n;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "malformed manifest.json",
            archive(&[("manifest.json", b"[{not json")]),
            "manifest.json: malformed JSON",
        ),
        (
            "missing layer",
            archive(&[
                ("manifest.json", good_manifest.as_bytes()),
                (&cfg_name, &config),
            ]),
            "l/layer.tar: missing from the archive",
        ),
        (
            "layer digest mismatch",
            archive(&[
                ("manifest.json", good_manifest.as_bytes()),
                (&cfg_name, &config),
                ("l/layer.tar", &tampered),
            ]),
            "l/layer.tar: content has digest",
        ),
        (
            "hostile path",
            archive(&[
                ("../evil", b"x"),
                ("manifest.json", good_manifest.as_bytes()),
            ]),
            "../evil",
        ),
        (
            "config digest mismatch",
            archive(&[
                ("manifest.json", good_manifest.as_bytes()),
                (
                    &cfg_name,
                    b"{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}",
                ),
                ("l/layer.tar", &layer),
            ]),
            "content has digest",
        ),
        (
            "not a tarball",
            b"hello, this is not a tar archive at all....".repeat(20),
            "load",
        ),
    ];
    for (what, bytes, want) in cases {
        let e = svc.load(&bytes[..]).unwrap_err().to_string();
        assert!(e.contains(want), "{what}: {e}");
        assert!(
            svc.list().unwrap().is_empty(),
            "{what}: an image became visible"
        );
        assert!(!root.path().parent().unwrap().join("evil").exists());
    }
    // The scratch dirs are gone, and the good archive loads.
    let tmp = root.path().join("tmp");
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
    let ok = archive(&[
        ("manifest.json", good_manifest.as_bytes()),
        (&cfg_name, &config),
        ("l/layer.tar", &layer),
    ]);
    assert_eq!(
        svc.load(&ok[..]).unwrap(),
        vec![Loaded::Name("bad/img:v1".into())]
    );
}
