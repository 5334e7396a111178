//! write_layer_from_dir → apply → identical tree; changes() of an overlay upper; import.

mod common;

use common::{is_root, snapshot, Layer};
use skiff_image::diff::{changes, write_layer_from_dir, ChangeKind, WriteOptions};
use skiff_image::digest::sha256;
use skiff_image::import::{import_rootfs, ImportOptions};
use skiff_image::unpack::{apply_layer, apply_layer_to_rootfs, ApplyOptions};
use skiff_image::Compression;

fn opts() -> ApplyOptions {
    ApplyOptions {
        chown: is_root(),
        ..Default::default()
    }
}

fn source_tree() -> Vec<u8> {
    let mut l = Layer::new();
    l.dir("etc", 0o755)
        .file_full("etc/shadow", b"s", 0o640, 0, 42)
        .file_full("usr/bin/passwd", b"pw", 0o4755, 0, 0)
        .dir("tmp", 0o1777)
        .symlink("bin", "usr/bin")
        .file("usr/bin/a", b"same inode")
        .hardlink("usr/bin/b", "usr/bin/a")
        .pax(&[("SCHILY.xattr.trusted.k", b"v")])
        .file("usr/bin/cap", b"c");
    if is_root() {
        l.node("dev/null", tar::EntryType::Char, 1, 3, 0o666).node(
            "dev/fifo",
            tar::EntryType::Fifo,
            0,
            0,
            0o644,
        );
    }
    l.finish()
}

#[test]
fn write_then_apply_gives_the_same_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    std::fs::create_dir(&a).unwrap();
    std::fs::create_dir(&b).unwrap();
    apply_layer_to_rootfs(&source_tree()[..], None, &a, &opts()).unwrap();
    for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let mut blob = Vec::new();
        let d = write_layer_from_dir(&a, &mut blob, c, &WriteOptions::default()).unwrap();
        assert_eq!(d.digest, sha256(&blob));
        assert_eq!(d.size, blob.len() as u64);
        let _ = std::fs::remove_dir_all(&b);
        std::fs::create_dir(&b).unwrap();
        let stats = apply_layer_to_rootfs(&blob[..], None, &b, &opts()).unwrap();
        assert_eq!(stats.diff_id, d.diff_id);
        assert_eq!(snapshot(&a), snapshot(&b), "{c:?}");
        assert_eq!(stats.hardlinks, 1);
        if is_root() {
            let mut v = [0u8; 8];
            let n = rustix::fs::lgetxattr(b.join("usr/bin/cap"), "trusted.k", &mut v[..]).unwrap();
            assert_eq!(&v[..n], b"v");
        }
    }
    // Reproducible: same tree, same bytes; with normalized mtimes too.
    let o = WriteOptions {
        mtime: Some(0),
        ..Default::default()
    };
    let (mut x, mut y) = (Vec::new(), Vec::new());
    let dx = write_layer_from_dir(&a, &mut x, Compression::Gzip, &o).unwrap();
    let dy = write_layer_from_dir(&b, &mut y, Compression::Gzip, &o).unwrap();
    assert_eq!(dx, dy);
}

#[test]
fn overlay_upper_changes_and_reexport() {
    if !is_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (lower, upper, re) = (
        tmp.path().join("lower"),
        tmp.path().join("upper"),
        tmp.path().join("re"),
    );
    for d in [&lower, &upper, &re] {
        std::fs::create_dir(d).unwrap();
    }
    let mut base = Layer::new();
    base.dir("etc", 0o755)
        .file("etc/motd", b"m")
        .file("etc/hosts", b"h")
        .dir("opt", 0o755)
        .file("opt/x", b"x");
    apply_layer_to_rootfs(&base.finish()[..], None, &lower, &opts()).unwrap();
    let mut top = Layer::new();
    top.dir("etc", 0o755)
        .file("etc/.wh.motd", b"")
        .file("etc/hosts", b"h2")
        .dir("opt", 0o755)
        .file("opt/.wh..wh..opq", b"")
        .file("opt/y", b"y")
        .file("new", b"n");
    let top_tar = top.finish();
    let o = ApplyOptions {
        lower_dirs: vec![lower.clone()],
        ..opts()
    };
    apply_layer(&top_tar[..], None, &upper, &o).unwrap();

    let ch: Vec<String> = changes(std::slice::from_ref(&lower), &upper)
        .unwrap()
        .iter()
        .map(|c| format!("{} {}", c.kind.letter(), c.path))
        .collect();
    assert_eq!(
        ch,
        [
            "C /etc",
            "C /etc/hosts",
            "D /etc/motd",
            "A /new",
            "C /opt",
            "D /opt/x",
            "A /opt/y"
        ]
    );
    let _ = ChangeKind::Added;

    // The upper re-exported as a layer carries the whiteouts back; applied onto a copy of
    // the lower it gives the merged view.
    let mut blob = Vec::new();
    write_layer_from_dir(
        &upper,
        &mut blob,
        Compression::None,
        &WriteOptions {
            overlay_upper: true,
            ..Default::default()
        },
    )
    .unwrap();
    apply_layer_to_rootfs(&base_copy(&lower, &re)[..], None, &re, &opts()).unwrap();
    apply_layer_to_rootfs(&blob[..], None, &re, &opts()).unwrap();
    assert!(!re.join("etc/motd").exists());
    assert!(!re.join("opt/x").exists());
    assert_eq!(std::fs::read(re.join("opt/y")).unwrap(), b"y");
    assert_eq!(std::fs::read(re.join("etc/hosts")).unwrap(), b"h2");
}

fn base_copy(lower: &std::path::Path, _re: &std::path::Path) -> Vec<u8> {
    let mut v = Vec::new();
    write_layer_from_dir(lower, &mut v, Compression::None, &WriteOptions::default()).unwrap();
    v
}

#[test]
fn import_makes_a_single_layer_image() {
    let rootfs = source_tree();
    let gz = common::gzip(&rootfs);
    let mut blob = Vec::new();
    let o = ImportOptions {
        source: "rootfs.tar.gz".into(),
        created: Some("2024-01-01T00:00:00Z".into()),
        ..Default::default()
    };
    let img = import_rootfs(&gz[..], &mut blob, &o).unwrap();
    assert_eq!(img.layer.diff_id, sha256(&rootfs));
    assert_eq!(img.layer.digest, sha256(&blob));
    assert_eq!(img.config_digest, sha256(&img.config));
    let cfg: serde_json::Value = serde_json::from_slice(&img.config).unwrap();
    assert_eq!(cfg["rootfs"]["diff_ids"][0], img.layer.diff_id.to_string());
    assert_eq!(cfg["config"], serde_json::json!({}));
    assert_eq!(cfg["history"][0]["comment"], "Imported from rootfs.tar.gz");
    assert_eq!(cfg["os"], "linux");
    // The blob applies, with the announced diffID.
    let tmp = tempfile::tempdir().unwrap();
    let s = apply_layer_to_rootfs(
        &blob[..],
        None,
        tmp.path(),
        &ApplyOptions {
            expected_diff_id: Some(img.layer.diff_id.clone()),
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(s.compression, Compression::Gzip);
    // Garbage is refused.
    assert!(import_rootfs(&[0x42u8; 1000][..], Vec::new(), &o).is_err());
}
