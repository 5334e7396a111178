//! Root tests that really mount overlayfs: a 3-layer chain with whiteouts and opaque
//! directories, and 130-layer chains mounted through the short `l/` links.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::open;
use skiff_store::{mount_to, mount_to_with, unmount, LongOptions, MountSpec, Store};

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Unmounts on drop, so a failing assertion never leaves a mount behind.
struct Mounted(PathBuf);

impl Mounted {
    fn new(specs: &[MountSpec], target: &Path, how: LongOptions) -> Self {
        fs::create_dir_all(target).unwrap();
        mount_to_with(specs, target, how).unwrap_or_else(|e| panic!("{e}: {specs:?}"));
        Mounted(target.to_owned())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Err(e) = unmount(&self.0) {
            eprintln!("cleanup: {e}");
        }
    }
}

fn layer(s: &Store, chain: &str, parent: Option<&str>, fill: impl FnOnce(&Path)) {
    let key = format!("extract-{chain}");
    s.snapshots().prepare(&key, parent).unwrap();
    fill(&s.snapshots().upper_dir(&key).unwrap());
    s.snapshots().commit(&key, chain).unwrap();
}

#[test]
fn three_layers_whiteouts_opaque_dirs_and_upper_writes() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = open(dir.path());
    layer(&s, "l1", None, |d| {
        fs::write(d.join("a"), "a1").unwrap();
        fs::write(d.join("gone"), "x").unwrap();
        fs::create_dir(d.join("dir")).unwrap();
        fs::write(d.join("dir/x"), "x").unwrap();
    });
    layer(&s, "l2", Some("l1"), |d| {
        fs::write(d.join("b"), "b2").unwrap();
        // Whiteout: a 0/0 character device hides the lower file.
        rustix::fs::mknodat(
            rustix::fs::CWD,
            d.join("gone"),
            rustix::fs::FileType::CharacterDevice,
            0o000.into(),
            0,
        )
        .unwrap();
        // Opaque dir: hides the lower dir's content.
        fs::create_dir(d.join("dir")).unwrap();
        fs::write(d.join("dir/y"), "y").unwrap();
        rustix::fs::setxattr(
            d.join("dir"),
            "trusted.overlay.opaque",
            b"y",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
    });
    layer(&s, "l3", Some("l2"), |d| {
        fs::write(d.join("c"), "c3").unwrap()
    });

    let specs = s.snapshots().prepare("ctr", Some("l3")).unwrap();
    let target = dir.path().join("mnt");
    {
        let _m = Mounted::new(&specs, &target, LongOptions::Auto);
        assert_eq!(fs::read_to_string(target.join("a")).unwrap(), "a1");
        assert_eq!(fs::read_to_string(target.join("b")).unwrap(), "b2");
        assert_eq!(fs::read_to_string(target.join("c")).unwrap(), "c3");
        assert!(
            !target.join("gone").exists(),
            "whiteout hides the lower file"
        );
        let names: Vec<_> = fs::read_dir(target.join("dir"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["y"], "opaque dir hides the lower content");
        fs::write(target.join("new"), "n").unwrap();
        fs::write(target.join("a"), "changed").unwrap();
        fs::remove_file(target.join("b")).unwrap();
    }
    let upper = s.snapshots().upper_dir("ctr").unwrap();
    assert_eq!(fs::read_to_string(upper.join("new")).unwrap(), "n");
    assert_eq!(
        fs::read_to_string(upper.join("a")).unwrap(),
        "changed",
        "copy-up lands in the active diff"
    );
    let l1 = dir
        .path()
        .join("overlay")
        .join(s.snapshots().stat("l1").unwrap().id)
        .join("diff");
    assert_eq!(
        fs::read_to_string(l1.join("a")).unwrap(),
        "a1",
        "lower layer untouched"
    );
    assert!(
        fs::symlink_metadata(upper.join("b")).is_ok(),
        "deletion recorded as a whiteout"
    );

    // A read-only view of the chain.
    let specs = s.snapshots().view("view", Some("l3")).unwrap();
    let vt = dir.path().join("vmnt");
    let _m = Mounted::new(&specs, &vt, LongOptions::Auto);
    assert_eq!(fs::read_to_string(vt.join("c")).unwrap(), "c3");
    let e = fs::write(vt.join("z"), "z").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EROFS));
    // A single-layer snapshot is a bind mount.
    let specs = s.snapshots().prepare("base-only", None).unwrap();
    let bt = dir.path().join("bmnt");
    let _b = Mounted::new(&specs, &bt, LongOptions::Auto);
    fs::write(bt.join("f"), "f").unwrap();
    assert!(s
        .snapshots()
        .upper_dir("base-only")
        .unwrap()
        .join("f")
        .exists());
}

fn deep_chain(s: &Store, n: usize) -> String {
    let mut parent: Option<String> = None;
    for i in 0..n {
        let chain = format!("sha256:deep-{i}");
        layer(s, &chain, parent.as_deref(), |d| {
            fs::write(d.join(format!("f{i}")), i.to_string()).unwrap();
            fs::write(d.join("top"), i.to_string()).unwrap();
        });
        parent = Some(chain);
    }
    parent.unwrap()
}

#[test]
fn chain_of_130_layers_mounts() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = open(dir.path());
    let top = deep_chain(&s, 130);
    let specs = s.snapshots().prepare("ctr", Some(&top)).unwrap();
    let opts = specs[0].options.join(",");
    assert!(
        opts.len() > rustix::param::page_size(),
        "absolute options exceed a page: {}",
        opts.len()
    );
    // The lowerdir is made of the short links.
    let lower = specs[0]
        .options
        .iter()
        .find(|o| o.starts_with("lowerdir="))
        .unwrap();
    assert_eq!(lower.split(':').count(), 130);
    assert!(
        lower.split(':').all(|l| l.contains("/overlay/l/")),
        "{lower}"
    );
    for how in [LongOptions::Auto, LongOptions::NewApi, LongOptions::Chdir] {
        let target = dir.path().join(format!("mnt-{how:?}"));
        let _m = Mounted::new(&specs, &target, how);
        for i in [0, 64, 129] {
            assert_eq!(
                fs::read_to_string(target.join(format!("f{i}"))).unwrap(),
                i.to_string(),
                "{how:?}"
            );
        }
        assert_eq!(
            fs::read_to_string(target.join("top")).unwrap(),
            "129",
            "nearest layer wins ({how:?})"
        );
        assert_eq!(fs::read_dir(&target).unwrap().count(), 131);
    }
    // A read-only view of the same chain (lowerdir only).
    let specs = s.snapshots().view("v", Some(&top)).unwrap();
    let target = dir.path().join("vmnt");
    let _m = Mounted::new(&specs, &target, LongOptions::Auto);
    assert_eq!(fs::read_to_string(target.join("f0")).unwrap(), "0");
}

#[test]
fn mount_errors_are_specific() {
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let spec = MountSpec {
        typ: "tmpfs".into(),
        source: "x".into(),
        target_hint: String::new(),
        options: vec![],
    };
    let e = mount_to(&[spec], dir.path()).unwrap_err();
    assert!(e.to_string().contains("unsupported mount type"), "{e}");
    let spec = MountSpec {
        typ: "bind".into(),
        source: dir.path().join("missing").display().to_string(),
        target_hint: String::new(),
        options: vec![],
    };
    let e = mount_to(&[spec], dir.path()).unwrap_err();
    assert!(e.to_string().starts_with("mount bind on "), "{e}");
}
