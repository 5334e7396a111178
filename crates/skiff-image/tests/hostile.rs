//! Hostile layers: each is refused (or contained) and nothing outside the target changes.

mod common;

use common::{gzip, is_root, Layer, Sandbox};
use skiff_image::unpack::{apply_layer, apply_layer_to_rootfs, ApplyError, ApplyOptions, Limits};

fn opts() -> ApplyOptions {
    ApplyOptions {
        layer: "sha256:evil".into(),
        chown: is_root(),
        ..Default::default()
    }
}

/// Applies `tar` in both forms into fresh sandboxes; asserts the outside is untouched and
/// returns the errors (as strings; `None` where the layer applied).
fn run(tar: &[u8], o: &ApplyOptions) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for overlay in [true, false] {
        let s = Sandbox::new();
        let before = s.outside_state();
        let r = if overlay {
            apply_layer(tar, None, &s.target, o)
        } else {
            apply_layer_to_rootfs(tar, None, &s.target, o)
        };
        assert_eq!(
            before,
            s.outside_state(),
            "outside changed (overlay={overlay})"
        );
        out.push(r.err().map(|e| e.to_string()));
    }
    out
}

fn assert_refused(tar: &[u8], needle: &str) {
    for e in run(tar, &opts()) {
        let e = e.expect("hostile layer applied");
        assert!(e.contains(needle), "{e:?} lacks {needle:?}");
        assert!(e.starts_with("layer sha256:evil: "), "{e}");
    }
}

#[test]
fn dotdot_escape() {
    let mut l = Layer::new();
    l.raw(tar::EntryType::Regular, "../outside/passwd", "", b"pwned");
    assert_refused(
        &l.finish(),
        "entry \"../outside/passwd\": path escapes the layer root",
    );
    let mut l = Layer::new();
    l.raw(
        tar::EntryType::Regular,
        "a/../../../../etc/passwd",
        "",
        b"pwned",
    );
    assert_refused(&l.finish(), "path escapes the layer root");
}

#[test]
fn absolute_path_lands_inside_the_target() {
    // Docker and containerd take absolute names relative to the layer root: the entry lands
    // under the target, and the host path of the same name is untouched.
    let s = Sandbox::new();
    let abs = s.outside.join("passwd");
    let mut l = Layer::new();
    l.raw(tar::EntryType::Regular, abs.to_str().unwrap(), "", b"pwned");
    let tar = l.finish();
    for e in run(&tar, &opts()) {
        assert_eq!(e, None, "absolute names are relative to the root");
    }
    let stats = apply_layer(&tar[..], None, &s.target, &opts()).unwrap();
    assert_eq!(stats.files, 1);
    assert_eq!(std::fs::read(&abs).unwrap(), b"root:x:0:0\n");
    let inside = s.target.join(abs.strip_prefix("/").unwrap());
    assert_eq!(std::fs::read(inside).unwrap(), b"pwned");
}

#[test]
fn write_through_planted_symlink_stays_inside() {
    // An absolute symlink to the sandbox's outside dir and a relative one climbing out, then
    // writes through both: resolved as if the target were `/`, they land inside the target.
    let s = Sandbox::new();
    let mut l = Layer::new();
    l.symlink("evil", s.outside.to_str().unwrap())
        .raw(tar::EntryType::Regular, "evil/passwd", "", b"pwned")
        .symlink("up", "../../../../../../..")
        .raw(tar::EntryType::Regular, "up/etc/shadow", "", b"pwned");
    let tar = l.finish();
    let before = s.outside_state();
    apply_layer_to_rootfs(&tar[..], None, &s.target, &opts()).unwrap();
    assert_eq!(before, s.outside_state());
    let inside = s
        .target
        .join(s.outside.strip_prefix("/").unwrap())
        .join("passwd");
    assert_eq!(std::fs::read(inside).unwrap(), b"pwned");
    assert_eq!(
        std::fs::read(s.target.join("etc/shadow")).unwrap(),
        b"pwned"
    );
    for e in run(&tar, &opts()) {
        assert_eq!(e, None);
    }
}

#[test]
fn symlink_as_last_component_is_replaced_not_followed() {
    let s = Sandbox::new();
    let mut l = Layer::new();
    l.symlink("victim", s.outside.join("passwd").to_str().unwrap())
        .file("victim", b"pwned");
    let before = s.outside_state();
    apply_layer_to_rootfs(&l.finish()[..], None, &s.target, &opts()).unwrap();
    assert_eq!(before, s.outside_state());
    assert_eq!(std::fs::read(s.target.join("victim")).unwrap(), b"pwned");
}

#[test]
fn symlink_in_lower_layer_is_contained() {
    // A lower layer plants `etc -> <outside>`; the next layer writes `etc/passwd`.
    let s = Sandbox::new();
    let mut lower = Layer::new();
    lower.symlink("etc", s.outside.to_str().unwrap());
    apply_layer_to_rootfs(&lower.finish()[..], None, &s.target, &opts()).unwrap();
    let before = s.outside_state();
    let mut upper = Layer::new();
    upper
        .file("etc/passwd", b"pwned")
        .file("etc/etc/shadow", b"pwned");
    apply_layer_to_rootfs(&upper.finish()[..], None, &s.target, &opts()).unwrap();
    assert_eq!(before, s.outside_state());
}

#[test]
fn symlinked_directory_replaced_midway() {
    // dir, then the dir replaced by a symlink to the outside, then a write "into" it.
    let s = Sandbox::new();
    let mut l = Layer::new();
    l.dir("d", 0o755)
        .file("d/a", b"a")
        .symlink("d", s.outside.to_str().unwrap())
        .file("d/passwd", b"pwned");
    let tar = l.finish();
    let before = s.outside_state();
    apply_layer_to_rootfs(&tar[..], None, &s.target, &opts()).unwrap();
    assert_eq!(before, s.outside_state());
    let _ = run(&tar, &opts());
}

#[test]
fn hardlink_escapes() {
    let mut l = Layer::new();
    l.raw(tar::EntryType::Link, "passwd", "../outside/passwd", b"");
    assert_refused(
        &l.finish(),
        "hard link target \"../outside/passwd\" escapes the layer root",
    );
    let s = Sandbox::new();
    let mut l = Layer::new();
    l.raw(
        tar::EntryType::Link,
        "passwd",
        s.outside.join("passwd").to_str().unwrap(),
        b"",
    );
    // An absolute link target is taken inside the root too (as Docker does), where it does
    // not exist: refused, and the host file is never linked.
    assert_refused(&l.finish(), "create hard link: No such file or directory");
}

#[test]
fn hardlink_through_symlink_cannot_reach_outside() {
    // `out -> <outside>`, then a hard link to `out/passwd`: resolved inside, so it is missing.
    let s = Sandbox::new();
    let mut l = Layer::new();
    l.symlink("out", s.outside.to_str().unwrap())
        .hardlink("stolen", "out/passwd");
    let errs = run(&l.finish(), &opts());
    for e in errs {
        let e = e.expect("link to a missing target");
        assert!(e.contains("entry \"stolen\""), "{e}");
    }
    // And linking to the symlink itself links the symlink, not its target.
    let mut l = Layer::new();
    l.symlink("out", s.outside.join("passwd").to_str().unwrap())
        .hardlink("stolen", "out");
    let before = s.outside_state();
    apply_layer_to_rootfs(&l.finish()[..], None, &s.target, &opts()).unwrap();
    assert!(std::fs::symlink_metadata(s.target.join("stolen"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(before, s.outside_state());
}

#[test]
fn device_nodes_when_mknod_is_denied() {
    if is_root() {
        // As root mknod works; the EPERM path is covered by running the suite unprivileged.
        return;
    }
    let mut l = Layer::new();
    l.node("dev/sda", tar::EntryType::Block, 8, 0, 0o660);
    let tar = l.finish();
    for e in run(&tar, &opts()) {
        assert!(e.unwrap().contains("mknod"));
    }
    let o = ApplyOptions {
        skip_devices_on_eperm: true,
        ..opts()
    };
    assert_eq!(run(&tar, &o), vec![None, None]);
}

#[test]
fn huge_header_size() {
    let mut l = Layer::new();
    l.lying_size("big", 1 << 60);
    assert_refused(
        &l.finish(),
        "entry \"big\": entry size 1152921504606846976 is over the limit",
    );
    // Under the limit but larger than the stream: a read error, not a hang or a huge file.
    let mut l = Layer::new();
    l.lying_size("big", 1 << 30);
    for e in run(&l.finish(), &opts()) {
        assert!(e.is_some());
    }
}

#[test]
fn entry_count_limit() {
    let mut l = Layer::new();
    for i in 0..20 {
        l.file(&format!("f{i}"), b"");
    }
    let o = ApplyOptions {
        limits: Limits {
            max_entries: 10,
            ..Limits::default()
        },
        ..opts()
    };
    for e in run(&l.finish(), &o) {
        assert_eq!(e.unwrap(), "layer sha256:evil: more than 10 entries");
    }
}

#[test]
fn total_bytes_limit() {
    let mut l = Layer::new();
    for i in 0..20 {
        l.file(&format!("f{i}"), &[1u8; 10_000]);
    }
    let o = ApplyOptions {
        limits: Limits {
            max_total_bytes: 100_000,
            ..Limits::default()
        },
        ..opts()
    };
    for e in run(&l.finish(), &o) {
        assert_eq!(
            e.unwrap(),
            "layer sha256:evil: more than 100000 uncompressed bytes"
        );
    }
}

#[test]
fn gzip_bomb() {
    // 16 MiB of zeros gzip to ~16 KiB (~1000:1).
    let mut l = Layer::new();
    l.file("zeros", &vec![0u8; 16 << 20]);
    let blob = gzip(&l.finish());
    let o = ApplyOptions {
        limits: Limits {
            max_ratio: 100,
            ratio_min_bytes: 1 << 20,
            ..Limits::default()
        },
        ..opts()
    };
    for e in run(&blob, &o) {
        let e = e.unwrap();
        assert!(e.contains("decompression bomb"), "{e}");
    }
}

#[test]
fn long_path_and_xattr_limits() {
    let mut l = Layer::new();
    l.file(&"a/".repeat(3000), b"");
    let _ = l; // the tar crate writes it as a GNU long name
    let mut l = Layer::new();
    l.file(&format!("{}x", "a/".repeat(3000)), b"");
    assert_refused(&l.finish(), "over the limit of 4096");
    let mut l = Layer::new();
    let big = vec![b'x'; 70_000];
    l.pax(&[("SCHILY.xattr.user.big", &big)]).file("f", b"");
    assert_refused(&l.finish(), "xattr \"user.big\" is 70000 bytes");
}

#[test]
fn overlay_xattrs_from_the_tar_are_dropped() {
    if !is_root() {
        return;
    }
    let s = Sandbox::new();
    let mut l = Layer::new();
    l.pax(&[("SCHILY.xattr.trusted.overlay.redirect", b"/etc")])
        .dir("d", 0o755);
    apply_layer(&l.finish()[..], None, &s.target, &opts()).unwrap();
    let mut buf = [0u8; 64];
    assert!(
        rustix::fs::lgetxattr(s.target.join("d"), "trusted.overlay.redirect", &mut buf[..])
            .is_err()
    );
}

#[test]
fn garbage_is_a_read_error() {
    let e = run(&vec![0x55u8; 4096], &opts());
    for e in e {
        let e = e.unwrap();
        assert!(
            e.contains("read tar stream") || e.contains("layer sha256:evil"),
            "{e}"
        );
    }
    let _ = ApplyError::Read {
        layer: String::new(),
        source: std::io::Error::other("x"),
    };
}
