//! End-to-end tests of the image verbs (`pull`, `images`, `rmi`, `tag`, `login`, `logout`):
//! the real `skiff` binary, each test with its own data root and daemon.json, against
//! Debian's docker-registry on 127.0.0.1 (or a fake registry serving bad bytes). Test
//! images are built here from the host's busybox-static; nothing is downloaded.

mod images_support;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use images_support::*;
use serde_json::json;

/// The three-layer busybox test image: a busybox rootfs with fixtures (layer 1), a layer
/// with a whiteout, an opaque dir, hard links and a setuid file (layer 2), and a small top.
fn busybox_image() -> &'static Image {
    static IMG: OnceLock<Image> = OnceLock::new();
    IMG.get_or_init(|| {
        let l1 = base_layer().clone();
        let l2 = LayerBuilder::new()
            .dir("data", 0o755)
            .file("data/.wh.gone.txt", 0o644, b"")
            .file("data/added.txt", 0o644, b"layer2\n")
            .dir("opq", 0o755)
            .file("opq/.wh..wh..opq", 0o644, b"")
            .file("opq/new", 0o644, b"new\n")
            .dir("l2", 0o755)
            .file("l2/a", 0o644, b"linked\n")
            .hardlink("l2/b", "l2/a")
            .file("l2/suid", 0o4755, b"#!/bin/sh\necho suid\n")
            .finish();
        let l3 = LayerBuilder::new()
            .dir("etc", 0o755)
            .file("etc/motd", 0o644, b"hello from layer 3\n")
            .symlink("abs", "/etc/motd")
            .finish();
        image(vec![l1, l2, l3], "amd64")
    })
}

fn base_layer() -> &'static Layer {
    static L: OnceLock<Layer> = OnceLock::new();
    L.get_or_init(|| {
        LayerBuilder::new()
            .busybox()
            .dir("data", 0o755)
            .file("data/gone.txt", 0o644, b"gone\n")
            .file("data/keep.txt", 0o644, b"keep\n")
            .dir("opq", 0o755)
            .file("opq/old1", 0o644, b"old1\n")
            .file("opq/old2", 0o644, b"old2\n")
            .dir("hl", 0o755)
            .file("hl/one", 0o644, b"hard\n")
            .hardlink("hl/two", "hl/one")
            .symlink("etc/link", "passwd")
            .finish()
    })
}

/// Shares the base layer with busybox_image.
fn other_image() -> &'static Image {
    static IMG: OnceLock<Image> = OnceLock::new();
    IMG.get_or_init(|| {
        let top = LayerBuilder::new()
            .file("other.txt", 0o644, b"other\n")
            .finish();
        image(vec![base_layer().clone(), top], "amd64")
    })
}

fn short(d: &str) -> String {
    hex(d)[..12].to_string()
}

fn assert_contains(hay: &str, needle: &str) {
    assert!(hay.contains(needle), "expected {needle:?} in:\n{hay}");
}

#[test]
fn pull_all_tags_of_a_repository() {
    let reg = Registry::start();
    let bb = busybox_image();
    let other = other_image();
    reg.pusher().image("library/multi", "1", bb);
    reg.pusher().image("library/multi", "2", other);
    let s = Skiff::new(json!({}));
    let repo = format!("{}/library/multi", reg.addr());
    let out = s.ok(&["pull", "-a", &repo]);
    assert_contains(
        &out,
        &format!("Status: Downloaded newer image for {repo}:1"),
    );
    assert_contains(
        &out,
        &format!("Status: Downloaded newer image for {repo}:2"),
    );
    let mut ids = s.image_ids();
    ids.sort();
    let mut want = vec![bb.config_digest.clone(), other.config_digest.clone()];
    want.sort();
    assert_eq!(ids, want);
    // A tag with -a is refused, as docker does.
    let o = s.run(&["pull", "-a", &format!("{repo}:1")]);
    assert!(!o.status.success());
    assert_contains(
        &String::from_utf8_lossy(&o.stderr),
        "tag can't be used with --all-tags/-a",
    );
}

#[test]
fn pull_via_mirror_direct_and_by_digest_with_docker_output() {
    let reg = Registry::start();
    let bb = busybox_image();
    let other = other_image();
    reg.skopeo_push(bb, "library/busybox", "latest");
    reg.pusher().image("library/other", "1", other);
    let s = Skiff::new(json!({"registry-mirrors": [format!("http://{}", reg.addr())]}));

    // Through the mirror: `busybox` is docker.io/library/busybox:latest.
    let out = s.ok(&["pull", "busybox"]);
    assert_contains(&out, "Using default tag: latest");
    assert_contains(&out, "latest: Pulling from library/busybox");
    for l in &bb.layers {
        assert_contains(&out, &format!("{}: Pull complete", short(&l.digest)));
    }
    assert_contains(&out, &format!("Digest: {}", bb.manifest_digest));
    assert_contains(&out, "Status: Downloaded newer image for busybox:latest");
    assert_contains(&out, "docker.io/library/busybox:latest");
    let again = s.ok(&["pull", "busybox"]);
    assert_contains(&again, "Status: Image is up to date for busybox:latest");
    assert!(!again.contains("Pull complete"), "{again}");

    // Directly from 127.0.0.1:PORT (loopback is insecure by default); the shared base layer
    // already exists.
    let name = format!("{}/library/other:1", reg.addr());
    let out = s.ok(&["pull", &name]);
    assert_contains(
        &out,
        &format!("{}: Already exists", short(&base_layer().digest)),
    );
    assert_contains(
        &out,
        &format!("{}: Pull complete", short(&other.layers[1].digest)),
    );
    assert_contains(&out, &format!("Status: Downloaded newer image for {name}"));

    // By digest.
    let by_digest = format!("{}/library/busybox@{}", reg.addr(), bb.manifest_digest);
    let out = s.ok(&["pull", &by_digest]);
    assert_contains(&out, &format!("Digest: {}", bb.manifest_digest));
    assert_contains(&out, "Status: ");

    // images: docker's columns, rows, -q, --digests, --format.
    let table = s.ok(&["images"]);
    let mut lines = table.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap()
        .split("   ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        header,
        ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"],
        "{table}"
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    let bb_row = rows
        .iter()
        .find(|r| r[0] == "busybox")
        .unwrap_or_else(|| panic!("{table}"));
    assert_eq!(bb_row[1], "latest");
    assert_eq!(bb_row[2], short(&bb.config_digest));
    let other_row = rows
        .iter()
        .find(|r| r[0] == format!("{}/library/other", reg.addr()))
        .unwrap_or_else(|| panic!("{table}"));
    assert_eq!(other_row[1], "1");
    assert_eq!(other_row[2], short(&other.config_digest));
    assert!(
        rows.iter()
            .any(|r| r[0] == format!("{}/library/busybox", reg.addr()) && r[1] == "<none>"),
        "{table}"
    );

    let q = s.ok(&["images", "-q"]);
    let mut ids: Vec<&str> = q.lines().collect();
    ids.sort();
    let mut want = vec![short(&bb.config_digest), short(&other.config_digest)];
    want.sort();
    assert_eq!(ids, want, "images -q lists each ID once");

    let dig = s.ok(&["images", "--digests"]);
    assert_contains(dig.lines().next().unwrap(), "DIGEST");
    assert_contains(&dig, &bb.manifest_digest);

    let f = s.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_contains(&f, "busybox:latest\n");
    assert_contains(&f, &format!("{}/library/other:1\n", reg.addr()));

    // --filter: reference globs (OR between values), dangling, bad keys.
    let fmt = ["--format", "{{.Repository}}:{{.Tag}}"];
    let f = s.ok(&[&["images", "--filter", "reference=busy*"][..], &fmt[..]].concat());
    assert_eq!(f, "busybox:latest\n");
    let f = s.ok(&[
        &["images", "-f", "reference=*:1", "-f", "reference=busybox"][..],
        &fmt[..],
    ]
    .concat());
    assert_eq!(f.lines().count(), 1, "{f}"); // `*` does not cross '/': only busybox
    assert_eq!(s.ok(&["images", "-q", "--filter", "dangling=true"]), "");
    let o = s.run(&["images", "--filter", "color=blue"]);
    assert!(!o.status.success());
    assert_contains(
        &String::from_utf8_lossy(&o.stderr),
        "invalid filter 'color'",
    );
}

#[test]
fn pull_index_selects_platform() {
    let reg = Registry::start();
    let base = base_layer().clone();
    let mk = |arch: &str| {
        let top = LayerBuilder::new()
            .file("arch", 0o644, arch.as_bytes())
            .finish();
        image(vec![base.clone(), top], arch)
    };
    let (amd, arm) = (mk("amd64"), mk("arm64"));
    let p = reg.pusher();
    p.image("multi/img", &amd.manifest_digest, &amd);
    p.image("multi/img", &arm.manifest_digest, &arm);
    let idx = index(&[(&amd, "amd64"), (&arm, "arm64")]);
    p.manifest("multi/img", "1", MT_INDEX, &idx);
    let name = format!("{}/multi/img:1", reg.addr());

    let s = Skiff::new(json!({}));
    let out = s.ok(&["pull", &name]);
    // The digest users see is the index's, as docker prints it.
    assert_contains(&out, &format!("Digest: {}", sha256(&idx)));
    assert_eq!(s.image_ids(), vec![amd.config_digest.clone()]);
    let top = s.snapshot_diff(amd.chain_ids().last().unwrap());
    assert_eq!(fs::read(top.join("arch")).unwrap(), b"amd64");

    let s2 = Skiff::new(json!({}));
    s2.ok(&["pull", "--platform", "linux/arm64", &name]);
    assert_eq!(s2.image_ids(), vec![arm.config_digest.clone()]);
    let top = s2.snapshot_diff(arm.chain_ids().last().unwrap());
    assert_eq!(fs::read(top.join("arch")).unwrap(), b"arm64");

    let err = s2.fails(&["pull", "--platform", "linux/s390x", &name]);
    assert_contains(&err.to_lowercase(), "s390x");
}

fn find_file(dir: &Path, name: &str) -> Option<std::path::PathBuf> {
    for e in fs::read_dir(dir).ok()?.flatten() {
        let ft = e.file_type().ok()?;
        if e.file_name() == name && ft.is_file() {
            return Some(e.path());
        }
        if ft.is_dir() {
            if let Some(p) = find_file(&e.path(), name) {
                return Some(p);
            }
        }
    }
    None
}

fn getxattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let p = CString::new(path.as_os_str().as_bytes()).unwrap();
    let n = CString::new(name).unwrap();
    let mut buf = [0u8; 256];
    // SAFETY: valid C strings and a buffer of the length passed.
    let r = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (r >= 0).then(|| buf[..r as usize].to_vec())
}

/// Checks the unpacked snapshots of busybox_image under `s`.
fn check_busybox_content(s: &Skiff) {
    let bb = busybox_image();
    let chain = bb.chain_ids();
    let d1 = s.snapshot_diff(&chain[0]);
    let d2 = s.snapshot_diff(&chain[1]);
    let d3 = s.snapshot_diff(&chain[2]);
    // Layer 1: busybox, contents, hard link, symlink.
    assert_eq!(
        fs::read(d1.join("bin/busybox")).unwrap(),
        fs::read("/bin/busybox").unwrap()
    );
    assert_eq!(
        fs::read_link(d1.join("bin/sh")).unwrap(),
        Path::new("../bin/busybox")
    );
    assert_eq!(
        fs::read_link(d1.join("etc/link")).unwrap(),
        Path::new("passwd")
    );
    let one = fs::metadata(d1.join("hl/one")).unwrap();
    let two = fs::metadata(d1.join("hl/two")).unwrap();
    assert_eq!((one.ino(), one.nlink()), (two.ino(), 2));
    assert_eq!(fs::read(d1.join("data/gone.txt")).unwrap(), b"gone\n");
    assert_eq!(
        fs::metadata(d1.join("tmp")).unwrap().mode() & 0o7777,
        0o1777
    );
    // Layer 2: whiteout as a 0/0 char device, opaque xattr, setuid, hard links.
    let wh = fs::symlink_metadata(d2.join("data/gone.txt")).unwrap();
    assert!(wh.file_type().is_char_device(), "whiteout is a char device");
    assert_eq!(wh.rdev(), 0, "whiteout is device 0/0");
    assert!(!d2.join("data/.wh.gone.txt").exists());
    assert_eq!(
        getxattr(&d2.join("opq"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert!(!d2.join("opq/.wh..wh..opq").exists());
    assert_eq!(fs::read(d2.join("opq/new")).unwrap(), b"new\n");
    let suid = fs::metadata(d2.join("l2/suid")).unwrap();
    assert_eq!(suid.permissions().mode() & 0o7777, 0o4755, "setuid kept");
    let a = fs::metadata(d2.join("l2/a")).unwrap();
    assert_eq!(a.nlink(), 2);
    assert_eq!(a.ino(), fs::metadata(d2.join("l2/b")).unwrap().ino());
    assert_eq!(fs::read(d2.join("l2/b")).unwrap(), b"linked\n");
    // Layer 3.
    assert_eq!(
        fs::read(d3.join("etc/motd")).unwrap(),
        b"hello from layer 3\n"
    );
    assert_eq!(
        fs::read_link(d3.join("abs")).unwrap(),
        Path::new("/etc/motd")
    );

    // A real overlay mount of the chain: deleted file gone, opaque dir replaced.
    let m = OverlayMount::read_only(&[d3, d2, d1]);
    let r = m.path();
    assert!(!r.join("data/gone.txt").exists(), "whiteout hides the file");
    assert_eq!(fs::read(r.join("data/keep.txt")).unwrap(), b"keep\n");
    assert_eq!(fs::read(r.join("data/added.txt")).unwrap(), b"layer2\n");
    assert_eq!(list(&r.join("opq")), vec!["new".to_string()]);
    assert_eq!(
        fs::read(r.join("etc/motd")).unwrap(),
        b"hello from layer 3\n"
    );
    let out = std::process::Command::new("chroot")
        .arg(r)
        .args(["/bin/sh", "-c", "echo ok; cat /data/keep.txt"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\nkeep\n");
}

#[test]
fn unpacked_snapshots_have_overlay_form_and_content() {
    let reg = Registry::start();
    reg.skopeo_push(busybox_image(), "library/busybox", "latest");
    let s = Skiff::new(json!({}));
    s.ok(&["pull", &format!("{}/library/busybox", reg.addr())]);
    check_busybox_content(&s);
}

/// An image whose second layer is ~60 MB of random data (one big gzip blob).
fn big_image() -> &'static Image {
    static IMG: OnceLock<Image> = OnceLock::new();
    IMG.get_or_init(|| {
        let big = LayerBuilder::new()
            .dir("big", 0o755)
            .file("big/random.bin", 0o644, &random_bytes(60 << 20, 42))
            .finish();
        image(vec![base_layer().clone(), big], "amd64")
    })
}

#[test]
fn kill_9_midway_leaves_clean_store_and_retry_resumes() {
    let reg = Registry::start();
    let img = big_image();
    reg.pusher().image("bench/big", "1", img);
    // Paced to ~40 MB/s so the pull is still running when killed; counts bytes sent.
    let proxy = Proxy::start(reg.addr(), Some(40 << 20));
    let name = format!("{}/bench/big:1", proxy.addr());
    let s = Skiff::new(json!({}));
    let mut child = s
        .cmd(&["pull", &name])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ingest = s.root.join("content/ingest");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut at_kill = 0;
    while Instant::now() < deadline {
        at_kill = tree_bytes(&ingest);
        if at_kill > 8 << 20 {
            break;
        }
        if child.try_wait().unwrap().is_some() {
            panic!("pull finished before it could be killed");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    assert!(at_kill > 8 << 20, "ingest never grew");
    let first_transfer = proxy.down_bytes.load(std::sync::atomic::Ordering::SeqCst);

    // No image, `images` works, the store opens clean.
    assert!(s.image_ids().is_empty());
    let (first, second) = s.check_store();
    assert!(first.is_clean(), "after kill -9: {first}");
    assert!(
        second.is_clean() && second.repaired.is_empty(),
        "second check: {second}"
    );

    // The retry completes and resumes the partial blob.
    proxy
        .down_bytes
        .store(0, std::sync::atomic::Ordering::SeqCst);
    let out = s.ok(&["pull", &name]);
    assert_contains(&out, "Status: Downloaded newer image");
    let retry_transfer = proxy.down_bytes.load(std::sync::atomic::Ordering::SeqCst);
    let big = img.layers[1].gz.len() as u64;
    eprintln!(
        "kill -9 at {at_kill} ingest bytes ({first_transfer} sent); retry sent {retry_transfer} of a {big}-byte layer"
    );
    assert!(
        retry_transfer + at_kill / 2 < big + (4 << 20),
        "retry re-downloaded the partial layer: {retry_transfer} bytes for a {big}-byte layer, {at_kill} already there"
    );
    assert_eq!(s.image_ids(), vec![img.config_digest.clone()]);
    let top = s.snapshot_diff(&img.chain_ids()[1]);
    let got = fs::read(top.join("big/random.bin")).unwrap();
    assert!(got == random_bytes(60 << 20, 42), "content after resume");
    assert!(
        list(&ingest).is_empty(),
        "no ingest left: {:?}",
        list(&ingest)
    );
    let (_, after) = s.check_store();
    assert!(after.is_clean() && after.repaired.is_empty(), "{after}");
}

#[test]
fn concurrent_pulls_of_one_image_share_everything() {
    let reg = Registry::start();
    let img = busybox_image();
    reg.pusher().image("library/busybox", "latest", img);
    // Paced so that the two pulls overlap.
    let proxy = Proxy::start(reg.addr(), Some(4 << 20));
    let name = format!("{}/library/busybox:latest", proxy.addr());
    let s = Skiff::new(json!({}));
    let a = s
        .cmd(&["pull", &name])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let b = s
        .cmd(&["pull", &name])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    for (n, c) in [a, b].into_iter().enumerate() {
        let o = c.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "pull {n}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    assert_eq!(s.image_ids(), vec![img.config_digest.clone()]);
    let mut want: Vec<String> = img
        .blobs()
        .into_iter()
        .map(|(d, _)| hex(&d).to_string())
        .collect();
    want.push(hex(&img.manifest_digest).to_string());
    want.sort();
    assert_eq!(s.blobs(), want, "one copy of each blob");
    assert_eq!(
        s.snapshot_dirs().len(),
        img.layers.len(),
        "one snapshot per layer: {:?}",
        s.snapshot_dirs()
    );
    assert!(list(&s.root.join("content/ingest")).is_empty());
    check_busybox_content(&s);
}

#[test]
fn hostile_layers_are_refused_without_harm() {
    let reg = Registry::start();
    let good = busybox_image();
    reg.pusher().image("library/busybox", "latest", good);
    let s = Skiff::new(json!({}));
    s.ok(&["pull", &format!("{}/library/busybox", reg.addr())]);
    let before_snaps = s.snapshot_dirs();

    let outside = tempfile::Builder::new()
        .prefix("skiff-outside-")
        .tempdir()
        .unwrap();
    let out_path = outside.path().display().to_string();
    let cases: Vec<(&str, Layer, &str)> = vec![
        (
            "dotdot",
            LayerBuilder::new()
                .raw("../../evil", tar::EntryType::Regular, None, b"evil\n")
                .finish(),
            "../../evil",
        ),
        (
            "deepdotdot",
            LayerBuilder::new()
                .dir("a", 0o755)
                .raw(
                    "a/../../../../../../../../../../..",
                    tar::EntryType::Directory,
                    None,
                    b"",
                )
                .raw(
                    "a/../../../../../../../../../../../evil2",
                    tar::EntryType::Regular,
                    None,
                    b"evil\n",
                )
                .finish(),
            "a/../../../",
        ),
        (
            "symlink-then-write",
            LayerBuilder::new()
                .symlink("escape", &out_path)
                .raw("escape/pwned", tar::EntryType::Regular, None, b"pwned\n")
                .finish(),
            "escape/pwned",
        ),
        (
            "relative-symlink-then-write",
            LayerBuilder::new()
                .symlink("up", "../../../../../../../../../..")
                .raw(
                    &format!("up{out_path}/pwned2"),
                    tar::EntryType::Regular,
                    None,
                    b"pwned\n",
                )
                .finish(),
            "pwned2",
        ),
        (
            "hardlink-out",
            LayerBuilder::new()
                .raw(
                    "hl",
                    tar::EntryType::Link,
                    Some("../../../../../../etc/passwd"),
                    b"",
                )
                .finish(),
            "hl",
        ),
    ];
    for (tag, layer, entry) in cases {
        let img = image(vec![base_layer().clone(), layer], "amd64");
        reg.pusher().image("evil/img", tag, &img);
        let o = s.run(&["pull", &format!("{}/evil/img:{tag}", reg.addr())]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stderr),
            String::from_utf8_lossy(&o.stdout)
        );
        eprintln!("{tag}: {}", text.lines().last().unwrap_or(""));
        if o.status.success() {
            // Symlinks are resolved inside the layer root (as Docker does): accepted only if
            // the write landed inside the snapshot; then the image goes again.
            assert!(
                tag.contains("symlink"),
                "{tag}: hostile layer accepted: {text}"
            );
            let top = s.snapshot_diff(&img.chain_ids()[1]);
            let name = Path::new(entry).file_name().unwrap();
            let found = find_file(&top, name.to_str().unwrap());
            assert!(
                found.is_some(),
                "{tag}: accepted but {entry} is not inside {top:?}"
            );
            eprintln!("{tag}: accepted, written in-root at {:?}", found.unwrap());
            s.ok(&["rmi", &format!("{}/evil/img:{tag}", reg.addr())]);
            continue;
        }
        assert_contains(&text, entry);
        assert!(!text.contains("panicked"), "{tag}: {text}");
    }
    // A symlink in one layer, a write through it in the next: resolved against the lower
    // snapshots, never the host.
    let img = image(
        vec![
            base_layer().clone(),
            LayerBuilder::new().symlink("out", &out_path).finish(),
            LayerBuilder::new()
                .raw("out/pwned3", tar::EntryType::Regular, None, b"x")
                .finish(),
        ],
        "amd64",
    );
    reg.pusher().image("evil/img", "lower", &img);
    let o = s.run(&["pull", &format!("{}/evil/img:lower", reg.addr())]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    if o.status.success() {
        let top = s.snapshot_diff(&img.chain_ids()[2]);
        assert!(find_file(&top, "pwned3").is_some(), "lower symlink: {text}");
        s.ok(&["rmi", &format!("{}/evil/img:lower", reg.addr())]);
    } else {
        assert_contains(&text, "out/pwned3");
    }
    eprintln!(
        "symlink in lower layer: {}",
        text.lines().last().unwrap_or("")
    );

    // Nothing written outside the snapshot dirs.
    assert!(
        list(outside.path()).is_empty(),
        "{:?}",
        list(outside.path())
    );
    for p in [
        s.root.join("overlay/evil"),
        s.root.join("evil"),
        s.dir.path().join("evil"),
        s.root.join("overlay/evil2"),
        Path::new("/evil2").to_path_buf(),
        Path::new("/pwned2").to_path_buf(),
    ] {
        assert!(!p.exists(), "{p:?} was written");
    }
    // No evil image, no leftover snapshots (the base layer is shared with busybox), and
    // the good image still works.
    let ids = s.image_ids();
    assert_eq!(ids, vec![good.config_digest.clone()]);
    assert_eq!(s.snapshot_dirs(), before_snaps);
    check_busybox_content(&s);
}

#[test]
fn malformed_and_mismatched_registry_content_fails_clearly() {
    let fake = FakeRegistry::start();
    let good = other_image();
    let s = Skiff::new(json!({}));
    let route_image = |repo: &str, manifest: &[u8], blobs: &[(String, Vec<u8>)]| {
        fake.route(&format!("/v2/{repo}/manifests/1"), MT_MANIFEST, manifest);
        fake.route(
            &format!("/v2/{repo}/manifests/{}", sha256(manifest)),
            MT_MANIFEST,
            manifest,
        );
        for (d, b) in blobs {
            fake.route(
                &format!("/v2/{repo}/blobs/{d}"),
                "application/octet-stream",
                b,
            );
        }
    };
    let good_blobs: Vec<(String, Vec<u8>)> = good
        .blobs()
        .into_iter()
        .map(|(d, b)| (d, b.to_vec()))
        .collect();

    // Manifest that is not JSON.
    route_image(
        "bad/manifest",
        b"{\"schemaVersion\": 2, \"layers\": [",
        &good_blobs,
    );
    let e = s.fails(&["pull", &format!("{}/bad/manifest:1", fake.addr())]);
    assert_contains(&e.to_lowercase(), "manifest");
    eprintln!("malformed manifest: {}", e.trim());

    // Config that is not JSON (digest right).
    let bad_cfg = b"{\"rootfs\": oops".to_vec();
    let mut m: serde_json::Value = serde_json::from_slice(&good.manifest).unwrap();
    m["config"]["digest"] = json!(sha256(&bad_cfg));
    m["config"]["size"] = json!(bad_cfg.len());
    let mb = serde_json::to_vec(&m).unwrap();
    let mut blobs = good_blobs.clone();
    blobs.push((sha256(&bad_cfg), bad_cfg));
    route_image("bad/config", &mb, &blobs);
    let e = s.fails(&["pull", &format!("{}/bad/config:1", fake.addr())]);
    assert_contains(&e, "config");
    eprintln!("malformed config: {}", e.trim());

    // A layer whose bytes do not match the manifest's digest (same size).
    let mut wrong = good_blobs.clone();
    let last = wrong.len() - 1;
    let mut bytes = wrong[last].1.clone();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    wrong[last].1 = bytes;
    route_image("bad/digest", &good.manifest, &wrong);
    let t = Instant::now();
    let e = s.fails(&["pull", &format!("{}/bad/digest:1", fake.addr())]);
    assert_contains(&e, &good.layers[1].digest);
    assert_contains(&e.to_lowercase(), "digest");
    eprintln!("wrong blob ({:?}): {}", t.elapsed(), e.trim());

    // Schema 1.
    let s1 = br#"{"schemaVersion": 1, "name": "bad/s1", "tag": "1", "architecture": "amd64", "fsLayers": [], "history": []}"#;
    fake.route(
        "/v2/bad/s1/manifests/1",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        s1,
    );
    let e = s.fails(&["pull", &format!("{}/bad/s1:1", fake.addr())]);
    assert_contains(&e.to_lowercase(), "schema 1");
    eprintln!("schema 1: {}", e.trim());

    assert!(s.image_ids().is_empty());
    // The mismatched blob never became visible.
    assert!(!s.blobs().contains(&hex(&good.layers[1].digest).to_string()));
    let (first, _) = s.check_store();
    assert!(first.is_clean(), "{first}");
}

#[test]
fn rmi_untags_then_deletes_and_gc_empties_the_root() {
    let reg = Registry::start();
    let (bb, other) = (busybox_image(), other_image());
    let p = reg.pusher();
    p.image("library/busybox", "latest", bb);
    p.image("library/other", "1", other);
    let s = Skiff::new(json!({}));
    let bb_name = format!("{}/library/busybox:latest", reg.addr());
    let other_name = format!("{}/library/other:1", reg.addr());
    s.ok(&["pull", &bb_name]);
    s.ok(&["pull", &other_name]);

    s.ok(&["tag", &bb_name, "mine:v1"]);
    let f = s.ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    let id = short(&bb.config_digest);
    assert_contains(&f, &format!("{bb_name} {id}"));
    assert_contains(&f, &format!("mine:v1 {id}"));

    // An ID with two names needs -f.
    let o = s.run(&["rmi", &id]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_contains(&err, "must be forced");
    eprintln!("rmi ID with two tags: {}", err.trim());

    // Untag only.
    let out = s.ok(&["rmi", "mine:v1"]);
    assert_contains(&out, "Untagged: mine:v1");
    assert!(!out.contains("Deleted:"), "{out}");
    assert_eq!(s.image_ids().len(), 2);

    // Last name: delete; blobs only of other remain (the base layer is shared).
    let out = s.ok(&["rmi", &bb_name]);
    assert_contains(&out, "Untagged: ");
    assert_contains(&out, &format!("Deleted: {}", bb.config_digest));
    let mut want: Vec<String> = other
        .blobs()
        .into_iter()
        .map(|(d, _)| hex(&d).to_string())
        .collect();
    want.push(hex(&other.manifest_digest).to_string());
    want.sort();
    assert_eq!(s.blobs(), want, "GC kept exactly other's blobs");
    assert_eq!(s.snapshot_dirs().len(), 2, "{:?}", s.snapshot_dirs());
    assert_eq!(
        fs::read(s.snapshot_diff(&other.chain_ids()[1]).join("other.txt")).unwrap(),
        b"other\n"
    );

    // -f on an ID with two names removes both.
    s.ok(&["tag", &other_name, "again:2"]);
    let out = s.ok(&["rmi", "-f", &short(&other.config_digest)]);
    assert_contains(&out, "Untagged: again:2");
    assert_contains(&out, &format!("Deleted: {}", other.config_digest));
    assert!(s.image_ids().is_empty());
    assert!(s.blobs().is_empty(), "{:?}", s.blobs());
    assert!(s.snapshot_dirs().is_empty(), "{:?}", s.snapshot_dirs());
    assert!(list(&s.root.join("meta/snapshots")).is_empty());
    assert!(list(&s.root.join("overlay/l")).is_empty());
    let e = s.fails(&["rmi", "busybox:nope"]);
    assert_contains(&e, "No such image");
}

#[test]
fn login_logout_with_htpasswd_registry() {
    let reg = Registry::start_with(Some(("alice", "s3cret")));
    reg.skopeo_push(other_image(), "private/img", "1");
    let s = Skiff::new(json!({}));
    let name = format!("{}/private/img:1", reg.addr());
    let cfg = s.docker_config.join("config.json");

    let e = s.fails(&["pull", &name]);
    let lower = e.to_lowercase();
    assert!(
        lower.contains("unauthorized") || lower.contains("authentication required"),
        "{e}"
    );
    eprintln!("pull without login: {}", e.trim());

    let o = s.with_stdin(
        &["login", "-u", "alice", "--password-stdin", &reg.addr()],
        "wrong\n",
    );
    assert!(!o.status.success(), "login with a wrong password succeeded");
    assert!(!cfg.exists() || !fs::read_to_string(&cfg).unwrap().contains(&reg.addr()));

    let o = s.with_stdin(
        &["login", "-u", "alice", "--password-stdin", &reg.addr()],
        "s3cret\n",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_contains(&String::from_utf8_lossy(&o.stdout), "Login Succeeded");
    let c: serde_json::Value = serde_json::from_slice(&fs::read(&cfg).unwrap()).unwrap();
    assert!(c["auths"][reg.addr()]["auth"].is_string(), "{c}");

    s.ok(&["pull", &name]);
    assert_eq!(s.image_ids(), vec![other_image().config_digest.clone()]);

    let out = s.ok(&["logout", &reg.addr()]);
    assert_contains(
        &out,
        &format!("Removing login credentials for {}", reg.addr()),
    );
    let c: serde_json::Value = serde_json::from_slice(&fs::read(&cfg).unwrap()).unwrap();
    assert!(c["auths"].get(reg.addr()).is_none(), "{c}");
    let err = s.fails(&["pull", &name]);
    assert!(
        err.to_lowercase().contains("unauthorized")
            || err.to_lowercase().contains("authentication required"),
        "{err}"
    );
}
