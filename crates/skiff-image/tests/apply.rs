//! Applying layers for real (root: owners, devices, trusted xattrs).

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

use common::{gzip, is_root, zstd, Layer, Sandbox};
use skiff_image::digest::sha256;
use skiff_image::unpack::{apply_layer, apply_layer_to_rootfs, ApplyOptions};
use skiff_image::Compression;

fn opts() -> ApplyOptions {
    ApplyOptions {
        layer: "sha256:test".into(),
        chown: is_root(),
        ..Default::default()
    }
}

fn xattr(path: &std::path::Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    match rustix::fs::lgetxattr(path, name, &mut buf[..]) {
        Ok(n) => Some(buf[..n].to_vec()),
        Err(_) => None,
    }
}

fn rich_layer() -> Vec<u8> {
    let long = format!("deep/{}/{}", "d".repeat(120), "f".repeat(150));
    let mut l = Layer::new();
    l.dir("bin", 0o755)
        .file_full("bin/su", b"#!su", 0o4755, 0, 0)
        .file_full("home/user/notes", b"hello", 0o640, 1000, 1001)
        .dir("tmp", 0o1777)
        .symlink("bin/sh", "/bin/busybox")
        .file("bin/busybox", b"BUSYBOX")
        .hardlink("bin/ls", "bin/busybox")
        .file(&long, b"long")
        .pax(&[
            (
                "SCHILY.xattr.security.capability",
                &[
                    1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                ],
            ),
            ("SCHILY.xattr.trusted.skiff", b"yes"),
        ])
        .file("bin/ping", b"PING")
        .pax(&[("path", format!("{}f", "pax/".repeat(80)).as_bytes())])
        .file("ignored-name", b"pax path");
    if is_root() {
        l.node("dev/null", tar::EntryType::Char, 1, 3, 0o666)
            .node("dev/sda", tar::EntryType::Block, 8, 0, 0o660)
            .node("run/fifo", tar::EntryType::Fifo, 0, 0, 0o600);
    }
    // A directory whose mtime must survive its content being written afterwards.
    l.dir("var", 0o755).file("var/late", b"x");
    l.finish()
}

fn check_rich(root: &std::path::Path) {
    let md = |p: &str| std::fs::symlink_metadata(root.join(p)).unwrap();
    assert_eq!(md("bin/su").permissions().mode() & 0o7777, 0o4755);
    assert_eq!(md("tmp").permissions().mode() & 0o7777, 0o1777);
    assert_eq!(
        std::fs::read(root.join("home/user/notes")).unwrap(),
        b"hello"
    );
    if is_root() {
        assert_eq!(
            (md("home/user/notes").uid(), md("home/user/notes").gid()),
            (1000, 1001)
        );
    }
    assert_eq!(
        std::fs::read_link(root.join("bin/sh")).unwrap().to_str(),
        Some("/bin/busybox")
    );
    assert_eq!(md("bin/ls").ino(), md("bin/busybox").ino());
    let long = format!("deep/{}/{}", "d".repeat(120), "f".repeat(150));
    assert_eq!(std::fs::read(root.join(long)).unwrap(), b"long");
    assert_eq!(
        std::fs::read(root.join(format!("{}f", "pax/".repeat(80)))).unwrap(),
        b"pax path"
    );
    assert_eq!(md("var").mtime(), 1_600_000_000);
    assert_eq!(md("bin/su").mtime(), 1_600_000_000);
    if is_root() {
        assert_eq!(
            xattr(&root.join("bin/ping"), "trusted.skiff").as_deref(),
            Some(&b"yes"[..])
        );
        assert!(xattr(&root.join("bin/ping"), "security.capability").is_some());
        assert!(md("dev/null").file_type().is_char_device());
        assert_eq!(md("dev/null").rdev(), rustix::fs::makedev(1, 3));
        assert!(md("dev/sda").file_type().is_block_device());
        assert!(md("run/fifo").file_type().is_fifo());
    }
}

#[test]
fn applies_every_entry_kind_plain_gzip_zstd() {
    let tar = rich_layer();
    let want = sha256(&tar);
    for (blob, c) in [
        (tar.clone(), Compression::None),
        (gzip(&tar), Compression::Gzip),
        (zstd(&tar), Compression::Zstd),
    ] {
        let s = Sandbox::new();
        let stats = apply_layer(&blob[..], None, &s.target, &opts()).unwrap();
        assert_eq!(stats.diff_id, want, "{c:?}");
        assert_eq!(stats.compression, c);
        assert_eq!(stats.compressed_size, blob.len() as u64);
        assert_eq!(stats.uncompressed_size, tar.len() as u64);
        assert_eq!(stats.hardlinks, 1);
        check_rich(&s.target);
    }
}

#[test]
fn expected_diff_id_is_checked() {
    let tar = rich_layer();
    let s = Sandbox::new();
    let o = ApplyOptions {
        expected_diff_id: Some(sha256(b"other")),
        ..opts()
    };
    let err = apply_layer(&tar[..], None, &s.target, &o)
        .unwrap_err()
        .to_string();
    assert!(err.contains("diffID mismatch"), "{err}");
}

#[test]
fn overlay_whiteouts_and_opaque_dirs() {
    if !is_root() {
        return;
    }
    let mut l = Layer::new();
    l.dir("etc", 0o755)
        .file("etc/.wh.motd", b"")
        .dir("opt", 0o755)
        .file("opt/.wh..wh..opq", b"")
        .file("opt/new", b"n")
        .file(".wh..wh.plnk", b"");
    let tar = l.finish();
    let s = Sandbox::new();
    let stats = apply_layer(&tar[..], None, &s.target, &opts()).unwrap();
    assert_eq!((stats.whiteouts, stats.opaque_dirs), (1, 1));
    let md = std::fs::symlink_metadata(s.target.join("etc/motd")).unwrap();
    assert!(md.file_type().is_char_device());
    assert_eq!(md.rdev(), 0);
    assert_eq!(
        xattr(&s.target.join("opt"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert!(!s.target.join(".wh..wh.plnk").exists());
    assert!(!s.target.join("etc/.wh.motd").exists());
}

#[test]
fn rootfs_whiteouts_delete_and_opaque_empties() {
    let s = Sandbox::new();
    let mut base = Layer::new();
    base.dir("etc", 0o755)
        .file("etc/motd", b"m")
        .file("etc/keep", b"k")
        .dir("opt/old", 0o755)
        .file("opt/old/a", b"a")
        .file("opt/b", b"b");
    apply_layer_to_rootfs(&base.finish()[..], None, &s.target, &opts()).unwrap();
    let mut top = Layer::new();
    top.file("opt/new", b"n")
        .file("opt/.wh..wh..opq", b"")
        .file("etc/.wh.motd", b"")
        .file(".wh.nothing", b"");
    apply_layer_to_rootfs(&top.finish()[..], None, &s.target, &opts()).unwrap();
    assert!(!s.target.join("etc/motd").exists());
    assert!(s.target.join("etc/keep").exists());
    let mut opt: Vec<_> = std::fs::read_dir(s.target.join("opt"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    opt.sort();
    assert_eq!(opt, vec!["new"]);
}

#[test]
fn later_entries_replace_earlier_paths() {
    let s = Sandbox::new();
    let mut l = Layer::new();
    l.dir("a", 0o755)
        .file("a/x", b"x")
        .file("a", b"now a file") // file over dir
        .file("b", b"file")
        .dir("b", 0o700)
        .file("b/y", b"y") // dir over file
        .dir("c", 0o755)
        .symlink("c", "a") // symlink over dir
        .file("d", b"1")
        .file("d", b"2"); // file over file
    apply_layer_to_rootfs(&l.finish()[..], None, &s.target, &opts()).unwrap();
    assert_eq!(std::fs::read(s.target.join("a")).unwrap(), b"now a file");
    assert_eq!(std::fs::read(s.target.join("b/y")).unwrap(), b"y");
    assert!(std::fs::symlink_metadata(s.target.join("c"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read(s.target.join("d")).unwrap(), b"2");
}

#[test]
fn implicit_parents_copy_lower_metadata() {
    if !is_root() {
        return;
    }
    let s = Sandbox::new();
    let lower = s.tmp.path().join("lower");
    std::fs::create_dir_all(lower.join("srv/data")).unwrap();
    std::fs::set_permissions(
        lower.join("srv/data"),
        std::fs::Permissions::from_mode(0o710),
    )
    .unwrap();
    std::os::unix::fs::chown(lower.join("srv/data"), Some(33), Some(34)).unwrap();
    let mut l = Layer::new();
    l.file("srv/data/file", b"f");
    let o = ApplyOptions {
        lower_dirs: vec![lower],
        ..opts()
    };
    apply_layer(&l.finish()[..], None, &s.target, &o).unwrap();
    let md = std::fs::metadata(s.target.join("srv/data")).unwrap();
    assert_eq!(md.permissions().mode() & 0o7777, 0o710);
    assert_eq!((md.uid(), md.gid()), (33, 34));
}
