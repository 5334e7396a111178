//! docker save/load tarballs (hand-built legacy and OCI forms, save→load round trips) and OCI
//! layouts (validated by skopeo/umoci when installed).

mod common;

use std::path::Path;

use common::Layer;
use skiff_image::digest::{sha256, Digest};
use skiff_image::formats::media_types::{OCI_CONFIG, OCI_LAYER, OCI_MANIFEST};
use skiff_image::formats::{
    chain_id, load_docker_archive, save_docker_archive, OciLayout, OciLayoutWriter, SaveFormat,
    SaveImage, SaveLayer,
};

fn layer(name: &str) -> Vec<u8> {
    let mut l = Layer::new();
    l.file(name, name.as_bytes());
    l.finish()
}

fn config(diff_ids: &[Digest]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>()},
    }))
    .unwrap()
}

/// A tarball from (name, bytes) pairs, plus optional symlinks.
fn tarball(files: &[(&str, &[u8])], links: &[(&str, &str)]) -> Vec<u8> {
    let mut l = Layer::new();
    for (n, d) in files {
        l.file(n, d);
    }
    for (n, t) in links {
        l.symlink(n, t);
    }
    l.finish()
}

#[test]
fn loads_hand_built_legacy_archive_with_shared_layer_symlink() {
    let (l1, l2) = (layer("a"), layer("b"));
    let ids = [sha256(&l1), sha256(&l2)];
    let cfg = config(&ids);
    let cfg_name = format!("{}.json", sha256(&cfg).digest());
    let manifest = serde_json::json!([{ "Config": cfg_name, "RepoTags": ["busybox:latest"], "Layers": ["aaa/layer.tar", "bbb/layer.tar"] }]).to_string();
    let t = tarball(
        &[
            ("manifest.json", manifest.as_bytes()),
            (&cfg_name, &cfg),
            ("aaa/layer.tar", &l1),
            ("ccc/layer.tar", &l2),
            ("aaa/VERSION", b"1.0"),
        ],
        &[("bbb/layer.tar", "../ccc/layer.tar")],
    );
    let scratch = tempfile::tempdir().unwrap();
    let imgs = load_docker_archive(&t[..], scratch.path()).unwrap();
    assert_eq!(imgs.len(), 1);
    assert_eq!(imgs[0].repo_tags, ["busybox:latest"]);
    assert_eq!(imgs[0].config_digest, sha256(&cfg));
    assert_eq!(
        imgs[0]
            .layers
            .iter()
            .map(|l| l.diff_id.clone())
            .collect::<Vec<_>>(),
        ids
    );
    assert_eq!(std::fs::read(&imgs[0].layers[1].path).unwrap(), l2);
}

#[test]
fn loads_hand_built_oci_form_archive() {
    let l1 = layer("a");
    let id = sha256(&l1);
    let cfg = config(std::slice::from_ref(&id));
    let cd = sha256(&cfg);
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": cd.to_string(), "size": cfg.len()},
        "layers": [{"mediaType": OCI_LAYER, "digest": id.to_string(), "size": l1.len()}],
    })
    .to_string();
    let md = sha256(manifest.as_bytes());
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{"mediaType": OCI_MANIFEST, "digest": md.to_string(), "size": manifest.len(),
        "annotations": {"io.containerd.image.name": "docker.io/library/x:1", "org.opencontainers.image.ref.name": "1"}}]})
    .to_string();
    let blob = |d: &Digest| format!("blobs/sha256/{}", d.digest());
    let mj =
        serde_json::json!([{ "Config": blob(&cd), "RepoTags": ["x:1"], "Layers": [blob(&id)] }])
            .to_string();
    let files: Vec<(String, Vec<u8>)> = vec![
        (
            "oci-layout".into(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ),
        ("index.json".into(), index.into_bytes()),
        (blob(&md), manifest.into_bytes()),
        (blob(&cd), cfg.clone()),
        (blob(&id), l1.clone()),
    ];
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    // With manifest.json (docker ≥ 25) and without it (a plain OCI layout tarball).
    for with_manifest in [true, false] {
        let mut r = refs.clone();
        if with_manifest {
            r.push(("manifest.json", mj.as_bytes()));
        }
        let scratch = tempfile::tempdir().unwrap();
        let imgs = load_docker_archive(&tarball(&r, &[])[..], scratch.path()).unwrap();
        assert_eq!(imgs[0].config_digest, cd);
        assert_eq!(imgs[0].layers[0].diff_id, id);
        let want = if with_manifest {
            "x:1"
        } else {
            "docker.io/library/x:1"
        };
        assert_eq!(imgs[0].repo_tags, [want]);
    }
}

#[test]
fn bad_archives_are_refused_naming_the_file() {
    let l1 = layer("a");
    let id = sha256(&l1);
    let cfg = config(std::slice::from_ref(&id));
    let cfg_name = format!("{}.json", sha256(&cfg).digest());
    let m = |layers: &str| {
        format!(r#"[{{"Config":"{cfg_name}","RepoTags":[],"Layers":["{layers}"]}}]"#)
    };
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            tarball(&[("manifest.json", b"[{")], &[]),
            "manifest.json: malformed JSON",
        ),
        (
            tarball(
                &[
                    ("manifest.json", m("l/layer.tar").as_bytes()),
                    (&cfg_name, &cfg),
                ],
                &[],
            ),
            "l/layer.tar: missing from the archive",
        ),
        (
            tarball(
                &[
                    ("manifest.json", m("l/layer.tar").as_bytes()),
                    (&cfg_name, &cfg),
                    ("l/layer.tar", &layer("zz")),
                ],
                &[],
            ),
            "l/layer.tar: content has digest",
        ),
        (
            tarball(
                &[
                    ("manifest.json", m("../../etc/passwd").as_bytes()),
                    (&cfg_name, &cfg),
                ],
                &[],
            ),
            "\"../../etc/passwd\": path escapes the archive",
        ),
        (
            tarball(
                &[("manifest.json", m("l").as_bytes()), (&cfg_name, &cfg)],
                &[("l", "/etc/passwd")],
            ),
            "\"l\": path escapes the archive",
        ),
        (
            tarball(
                &[("manifest.json", m("x").as_bytes()), (&cfg_name, b"{}")],
                &[],
            ),
            "content has digest",
        ),
        (tarball(&[("index.json", b"{}")], &[]), "oci-layout"),
        (
            tarball(&[("other", b"")], &[]),
            "neither manifest.json nor index.json",
        ),
    ];
    for (t, want) in cases {
        let scratch = tempfile::tempdir().unwrap();
        let e = load_docker_archive(&t[..], scratch.path())
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{e:?} lacks {want:?}");
    }
    let mut raw = Layer::new();
    raw.raw(tar::EntryType::Regular, "../evil", "", b"x");
    let scratch = tempfile::tempdir().unwrap();
    let e = load_docker_archive(&raw.finish()[..], &scratch.path().join("s"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("\"../evil\": path escapes the archive"), "{e}");
    assert!(!scratch.path().join("evil").exists());
}

fn save_images(dir: &Path) -> Vec<SaveImage> {
    let mut imgs = Vec::new();
    let shared = layer("shared");
    for (i, extra) in ["one", "two"].iter().enumerate() {
        let l2 = layer(extra);
        let (p1, p2) = (
            dir.join(format!("s{i}.tar")),
            dir.join(format!("{extra}.tar")),
        );
        std::fs::write(&p1, &shared).unwrap();
        std::fs::write(&p2, &l2).unwrap();
        let ids = [sha256(&shared), sha256(&l2)];
        imgs.push(SaveImage {
            config: config(&ids),
            repo_tags: vec![format!("localhost:5000/img{i}:v{i}")],
            layers: vec![
                SaveLayer {
                    path: p1,
                    diff_id: ids[0].clone(),
                },
                SaveLayer {
                    path: p2,
                    diff_id: ids[1].clone(),
                },
            ],
        });
    }
    imgs
}

#[test]
fn save_then_load_round_trips_both_forms() {
    let tmp = tempfile::tempdir().unwrap();
    let imgs = save_images(tmp.path());
    for format in [SaveFormat::Legacy, SaveFormat::OciLayout] {
        let mut out = Vec::new();
        save_docker_archive(&mut out, &imgs, format).unwrap();
        let mut again = Vec::new();
        save_docker_archive(&mut again, &imgs, format).unwrap();
        assert_eq!(sha256(&out), sha256(&again), "reproducible");
        let scratch = tempfile::tempdir().unwrap();
        let loaded = load_docker_archive(&out[..], scratch.path()).unwrap();
        assert_eq!(loaded.len(), 2);
        for (l, s) in loaded.iter().zip(&imgs) {
            assert_eq!(l.config, s.config);
            assert_eq!(l.repo_tags, s.repo_tags);
            let ids: Vec<Digest> = l.layers.iter().map(|x| x.diff_id.clone()).collect();
            let want: Vec<Digest> = s.layers.iter().map(|x| x.diff_id.clone()).collect();
            assert_eq!(ids, want);
            assert!(chain_id(&ids).is_some());
        }
        if format == SaveFormat::OciLayout {
            // The extracted archive is a valid OCI layout for skopeo.
            OciLayout::open(scratch.path()).unwrap();
            if let Some(out) = skopeo_inspect(scratch.path(), "v1") {
                assert!(out.contains("\"Layers\""), "{out}");
            }
        }
    }
}

#[test]
fn oci_layout_writer_is_read_back_and_accepted_by_skopeo_and_umoci() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("layout");
    let l1 = common::gzip(&layer("a"));
    let id = sha256(&layer("a"));
    let mut w = OciLayoutWriter::create(&dir).unwrap();
    let ld = w
        .add_blob_reader("application/vnd.oci.image.layer.v1.tar+gzip", &l1[..])
        .unwrap();
    let cd = w
        .add_blob(OCI_CONFIG, &config(std::slice::from_ref(&id)))
        .unwrap();
    let m = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": cd, "layers": [ld]});
    let md = w.add_blob(OCI_MANIFEST, m.to_string().as_bytes()).unwrap();
    w.add_manifest(md, Some("latest"));
    w.finish().unwrap();

    let layout = OciLayout::open(&dir).unwrap();
    let ms = layout.manifests().unwrap();
    assert_eq!(ms.len(), 1);
    layout.verify_blob(&ms[0].1.layers()[0]).unwrap();
    if let Some(out) = skopeo_inspect(&dir, "latest") {
        assert!(out.contains(&ld.digest().to_string()), "{out}");
    }
    if which("umoci") {
        let o = std::process::Command::new("umoci")
            .args(["ls", "--layout"])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "umoci: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(String::from_utf8_lossy(&o.stdout).contains("latest"));
    }
    // A corrupted blob is caught.
    std::fs::write(
        dir.join(format!("blobs/sha256/{}", ld.digest().digest())),
        b"corrupt",
    )
    .unwrap();
    let e = layout
        .verify_blob(&ms[0].1.layers()[0])
        .unwrap_err()
        .to_string();
    assert!(e.contains("content has digest"), "{e}");
}

fn which(bin: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {bin}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn skopeo_inspect(dir: &Path, reference: &str) -> Option<String> {
    if !which("skopeo") {
        eprintln!("skopeo not installed: skipped");
        return None;
    }
    let o = std::process::Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci:{}:{reference}", dir.display()))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    Some(String::from_utf8_lossy(&o.stdout).into_owned())
}
