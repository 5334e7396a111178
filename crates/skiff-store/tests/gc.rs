//! GC, leases, images and metadata crash-safety.

mod common;

use std::fs;

use common::{bytes, desc, open, put_blob};
use skiff_store::{GcOptions, Resource, Store, LABEL_REF_CONTENT, LABEL_REF_SNAPSHOT};

fn gc(s: &Store) -> skiff_store::GcReport {
    s.gc(&GcOptions::default()).unwrap()
}

/// An "image": manifest -> config + layer blobs and snapshot chain, labelled as the images
/// layer will.
fn make_image(s: &Store, seed: u64, name: &str) -> (skiff_store::Digest, Vec<skiff_store::Digest>) {
    let layer = put_blob(s, &bytes(seed, 1000));
    let config = put_blob(s, &bytes(seed + 1, 200));
    let manifest = put_blob(s, format!("manifest {seed}").as_bytes());
    let chain = format!("sha256:chain-{seed}");
    let sn = s.snapshots();
    sn.prepare(&format!("extract-{chain}"), None).unwrap();
    sn.commit(&format!("extract-{chain}"), &chain).unwrap();
    s.content()
        .set_labels(
            &manifest,
            [
                (format!("{LABEL_REF_CONTENT}.config"), config.to_string()),
                (format!("{LABEL_REF_CONTENT}.l.0"), layer.to_string()),
            ]
            .into(),
        )
        .unwrap();
    s.content()
        .set_labels(&config, [(LABEL_REF_SNAPSHOT.to_owned(), chain)].into())
        .unwrap();
    s.image_put(
        name,
        desc(format!("manifest {seed}").as_bytes()),
        Default::default(),
    )
    .unwrap();
    (manifest, vec![config, layer])
}

#[test]
fn gc_keeps_referenced_chains_and_sweeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = open(dir.path());
    let (m1, refs1) = make_image(&s, 10, "docker.io/library/a:latest");
    let (m2, refs2) = make_image(&s, 20, "docker.io/library/b:latest");
    let stray = put_blob(&s, b"stray");
    s.snapshots().prepare("x", None).unwrap();
    s.snapshots().commit("x", "stray-chain").unwrap();
    // A container on image a's chain keeps it even after the image goes.
    s.snapshots()
        .prepare("ctr", Some("sha256:chain-10"))
        .unwrap();

    let r = gc(&s);
    assert_eq!(r.blobs_removed, vec![stray.clone()]);
    assert_eq!(r.snapshots_removed, vec!["stray-chain".to_owned()]);
    assert!(r.bytes_freed >= 5);
    for d in [&m1, &m2].into_iter().chain(&refs1).chain(&refs2) {
        assert!(s.content().info(d).unwrap().is_some(), "{d} kept");
    }
    assert!(s.snapshots().stat("sha256:chain-20").is_ok());

    s.image_delete("docker.io/library/b:latest").unwrap();
    s.image_delete("docker.io/library/a:latest").unwrap();
    let r = gc(&s);
    let mut removed = r.blobs_removed.clone();
    removed.sort();
    let mut want = vec![m1, m2];
    want.extend(refs1);
    want.extend(refs2);
    want.sort();
    assert_eq!(removed, want);
    assert_eq!(r.snapshots_removed, vec!["sha256:chain-20".to_owned()]);
    assert!(
        s.snapshots().stat("sha256:chain-10").is_ok(),
        "kept by the active child"
    );
    s.snapshots().remove("ctr").unwrap();
    assert_eq!(gc(&s).snapshots_removed, vec!["sha256:chain-10".to_owned()]);
    assert!(s.content().list().unwrap().is_empty());
    assert!(
        s.meta()
            .keys(skiff_store::meta::Kind::Content)
            .unwrap()
            .is_empty(),
        "labels swept too"
    );
}

#[test]
fn leases_protect_content_and_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = open(dir.path());
    s.lease_create("pull-1", None, Default::default()).unwrap();
    let data = bytes(30, 4000);
    let cs = s.content().with_lease("pull-1");
    let mut w = cs.writer("k", Some(desc(&data))).unwrap();
    std::io::Write::write_all(&mut w, &data).unwrap();
    let d = w.commit().unwrap();
    let sn = s.snapshots().with_lease("pull-1");
    sn.prepare("extract-c", None).unwrap();
    sn.commit("extract-c", "c").unwrap();
    let lease = s.lease_get("pull-1").unwrap().unwrap();
    assert!(lease.resources.contains(&Resource::Content(d.clone())));
    assert!(lease.resources.contains(&Resource::Snapshot("c".into())));
    // An already-present blob found by a leased writer joins the lease too.
    s.lease_create("pull-2", None, Default::default()).unwrap();
    assert!(s
        .content()
        .with_lease("pull-2")
        .writer("k2", Some(desc(&data)))
        .is_err());
    assert!(s
        .lease_get("pull-2")
        .unwrap()
        .unwrap()
        .resources
        .contains(&Resource::Content(d.clone())));

    let r = gc(&s);
    assert!(
        r.blobs_removed.is_empty() && r.snapshots_removed.is_empty(),
        "{r:?}"
    );
    s.lease_delete("pull-1").unwrap();
    let r = gc(&s);
    assert!(r.blobs_removed.is_empty(), "still held by pull-2");
    assert_eq!(r.snapshots_removed, vec!["c".to_owned()]);
    s.lease_delete("pull-2").unwrap();
    let r = gc(&s);
    assert_eq!(r.blobs_removed, vec![d]);
    assert!(s.lease_delete("pull-2").is_err());

    // Expired leases protect nothing and are deleted.
    let d2 = put_blob(&s, b"x");
    s.lease_create(
        "old",
        Some(chrono::Utc::now() - chrono::Duration::seconds(1)),
        Default::default(),
    )
    .unwrap();
    s.lease_add_resource("old", Resource::Content(d2.clone()))
        .unwrap();
    let r = gc(&s);
    assert_eq!(r.leases_expired, vec!["old".to_owned()]);
    assert_eq!(r.blobs_removed, vec![d2]);
}

#[test]
fn gc_removes_stale_ingests_only() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = open(dir.path());
    let mut w = s.content().writer("stale", None).unwrap();
    std::io::Write::write_all(&mut w, b"partial").unwrap();
    drop(w);
    let busy = s.content().writer("busy", None).unwrap();
    assert!(gc(&s).ingests_removed.is_empty(), "young ingests kept");
    let r = s
        .gc(&GcOptions {
            ingest_max_age: std::time::Duration::ZERO,
        })
        .unwrap();
    assert_eq!(r.ingests_removed, vec!["stale".to_owned()]);
    drop(busy);
}

#[test]
fn metadata_survives_torn_writes_and_debris() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = open(dir.path());
    let (m, _) = make_image(&s, 40, "img:1");
    drop(s);
    let meta = dir.path().join("meta");
    // A crash mid atomic_write leaves a temp file (torn), never a torn record.
    fs::write(
        meta.join("images/.tmp-999-0-img%3A1.json"),
        b"{\"name\": \"img:1\", \"tar",
    )
    .unwrap();
    fs::write(meta.join("snapshots/.tmp-999-1-x.json"), b"").unwrap();
    // A snapshot dir half-made, one half-removed, one with no record, a dangling link.
    let ov = dir.path().join("overlay");
    fs::create_dir_all(ov.join(".tmp-999-2-abcd/diff")).unwrap();
    fs::create_dir_all(ov.join(".trash-ffff/diff")).unwrap();
    fs::create_dir_all(ov.join("0123456789abcdef0123456789abcdef/diff")).unwrap();
    std::os::unix::fs::symlink("../gone/diff", ov.join("l/AAAAAAAAAAAAAAAAAAAAAAAAAA")).unwrap();
    // An unreadable record (disk corruption): quarantined and reported, not silently lost.
    fs::write(meta.join("images/bad.json"), b"garbage").unwrap();
    // An ingest dir with no metadata (crashed before it started).
    fs::create_dir_all(dir.path().join("content/ingest/k9")).unwrap();

    let (s, r) = open(dir.path());
    assert_eq!(r.problems.len(), 1, "{r}");
    assert!(r.problems[0].contains("bad.json"), "{r}");
    assert!(dir.path().join("meta/quarantine/images-bad.json").exists());
    assert_eq!(r.repaired.len(), 7, "{r}");
    assert_eq!(s.image_get("img:1").unwrap().unwrap().target.digest, m);
    assert_eq!(
        fs::read_dir(&ov).unwrap().count(),
        2,
        "l/ and the one real snapshot"
    );
    assert_eq!(fs::read_dir(ov.join("l")).unwrap().count(), 1);
    let (_, r) = open(dir.path());
    assert!(
        r.is_clean() && r.repaired.is_empty(),
        "second check finds nothing: {r}"
    );
}

#[test]
fn check_repairs_interrupted_commit_and_reports_missing() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = open(dir.path());
    s.snapshots().prepare("extract-z", None).unwrap();
    let rec = fs::read(dir.path().join("meta/snapshots/extract-z.json")).unwrap();
    s.snapshots().commit("extract-z", "z").unwrap();
    // Simulate the crash between "write committed record" and "delete active record".
    fs::write(dir.path().join("meta/snapshots/extract-z.json"), rec).unwrap();
    // And an image whose target blob vanished.
    s.image_put("lost", desc(b"gone"), Default::default())
        .unwrap();
    let r = s.check().unwrap();
    assert_eq!(r.repaired.len(), 1, "{r}");
    assert!(r.repaired[0].contains("interrupted commit"), "{r}");
    assert_eq!(r.problems.len(), 1, "{r}");
    assert!(r.problems[0].contains("image \"lost\""), "{r}");
    assert!(s.image_get("lost").unwrap().is_some(), "never dropped");
    assert_eq!(s.snapshots().list().unwrap().len(), 1);
    // A missing l/ link is restored.
    let id = s.snapshots().stat("z").unwrap().id;
    let link = fs::read_to_string(dir.path().join("overlay").join(id).join("link")).unwrap();
    fs::remove_file(dir.path().join("overlay/l").join(&link)).unwrap();
    let r = s.check().unwrap();
    assert!(r.repaired[0].contains("restored link"), "{r}");
    assert!(dir.path().join("overlay/l").join(&link).exists());
}

#[test]
fn verify_blobs_removes_corrupt_content() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = open(dir.path());
    let d = put_blob(&s, b"good");
    let p = s.content().blob_path(&d);
    let mut perm = fs::metadata(&p).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o644);
    fs::set_permissions(&p, perm).unwrap();
    fs::write(&p, b"evil").unwrap();
    assert!(s.check().unwrap().is_clean());
    let r = s
        .check_with(skiff_store::CheckOptions { verify_blobs: true })
        .unwrap();
    assert!(r.repaired[0].contains("corrupt blob"), "{r}");
    assert!(s.content().info(&d).unwrap().is_none());
}

#[test]
fn images_put_get_list_delete() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = open(dir.path());
    let t = skiff_store::Descriptor::with_media_type(
        "application/vnd.oci.image.manifest.v1+json",
        skiff_store::Digest::of_bytes(b"m"),
        1,
    );
    let a = s
        .image_put(
            "docker.io/library/busybox:latest",
            t.clone(),
            Default::default(),
        )
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    let b = s
        .image_put(
            "docker.io/library/busybox:latest",
            t.clone(),
            Default::default(),
        )
        .unwrap();
    assert_eq!(a.created, b.created);
    assert!(b.updated > a.updated);
    assert_eq!(s.image_list().unwrap().len(), 1);
    assert_eq!(
        s.image_get("docker.io/library/busybox:latest")
            .unwrap()
            .unwrap()
            .target,
        t
    );
    s.image_delete("docker.io/library/busybox:latest").unwrap();
    assert!(s.image_delete("docker.io/library/busybox:latest").is_err());
}
