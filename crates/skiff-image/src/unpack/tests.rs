//! The ordering rules of `ctx.rs` with writer threads, made to bite: the writer of the first
//! queued file sleeps, so without the rules later entries would overtake it.

use std::cell::Cell;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::time::Duration;

use super::entry::{Creation, FilePlan, Meta};
use super::{apply_layer, ApplyError, ApplyOptions, EntryError};

thread_local! {
    /// How long the writer of a layer's first pooled file sleeps (tests only).
    pub(crate) static FIRST_JOB_DELAY: Cell<Duration> = const { Cell::new(Duration::ZERO) };
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A tar built entry by entry.
struct Tar(tar::Builder<Vec<u8>>);

impl Tar {
    fn new() -> Tar {
        Tar(tar::Builder::new(Vec::new()))
    }
    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_mtime(1_600_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(size);
        h
    }
    fn file(mut self, path: &str, data: &[u8]) -> Tar {
        let mut h = Self::header(tar::EntryType::Regular, 0o644, data.len() as u64);
        self.0.append_data(&mut h, path, data).unwrap();
        self
    }
    fn dir(mut self, path: &str, mode: u32, mtime: u64) -> Tar {
        let mut h = Self::header(tar::EntryType::Directory, mode, 0);
        h.set_mtime(mtime);
        self.0.append_data(&mut h, path, std::io::empty()).unwrap();
        self
    }
    fn hardlink(mut self, path: &str, target: &str) -> Tar {
        let mut h = Self::header(tar::EntryType::Link, 0o644, 0);
        self.0.append_link(&mut h, path, target).unwrap();
        self
    }
    fn symlink(mut self, path: &str, target: &str) -> Tar {
        let mut h = Self::header(tar::EntryType::Symlink, 0o777, 0);
        self.0.append_link(&mut h, path, target).unwrap();
        self
    }
    fn finish(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

/// Applies `tar` in overlay form with 4 writers whose first job is 150 ms late.
fn apply_slow_first(tar: &[u8], target: &std::path::Path) -> Result<(), ApplyError> {
    FIRST_JOB_DELAY.set(Duration::from_millis(150));
    let opts = ApplyOptions {
        chown: is_root(),
        writers: 4,
        ..Default::default()
    };
    let res = apply_layer(tar, None, target, &opts);
    FIRST_JOB_DELAY.set(Duration::ZERO);
    res.map(|_| ())
}

#[test]
fn the_last_entry_for_a_path_wins() {
    let t = tempfile::tempdir().unwrap();
    let tar = Tar::new()
        .file("a", b"first")
        .file("d/b", b"first")
        .file("a", b"second")
        .file("link/b", b"second") // the same file as d/b, through a symlink made below
        .finish();
    // Without the symlink: a plain path written twice.
    apply_slow_first(&tar, t.path()).unwrap();
    assert_eq!(std::fs::read(t.path().join("a")).unwrap(), b"second");

    // One file under two spellings: d/b, then link/b with link -> d.
    let t2 = tempfile::tempdir().unwrap();
    let tar = Tar::new()
        .symlink("link", "d")
        .file("d/b", b"first")
        .file("link/b", b"second")
        .finish();
    apply_slow_first(&tar, t2.path()).unwrap();
    assert_eq!(std::fs::read(t2.path().join("d/b")).unwrap(), b"second");
}

#[test]
fn a_whiteout_after_a_queued_file_removes_it() {
    let t = tempfile::tempdir().unwrap();
    let tar = Tar::new()
        .file("d/f", b"data")
        .file("d/.wh.f", b"")
        .finish();
    if is_root() {
        apply_slow_first(&tar, t.path()).unwrap();
        let m = std::fs::symlink_metadata(t.path().join("d/f")).unwrap();
        assert!(m.file_type().is_char_device(), "whiteout device expected");
        assert_eq!(m.rdev(), 0);
    } else {
        // mknod of the whiteout device needs root; the file must still be gone first.
        let _ = apply_slow_first(&tar, t.path());
        assert!(!t.path().join("d/f").is_file());
    }
}

#[test]
fn a_hard_link_to_a_queued_file_links_the_written_file() {
    let t = tempfile::tempdir().unwrap();
    let tar = Tar::new()
        .file("bin/busybox", b"BUSYBOX")
        .hardlink("bin/sh", "bin/busybox")
        .finish();
    apply_slow_first(&tar, t.path()).unwrap();
    let a = std::fs::metadata(t.path().join("bin/busybox")).unwrap();
    let b = std::fs::metadata(t.path().join("bin/sh")).unwrap();
    assert_eq!(a.ino(), b.ino());
    assert_eq!(std::fs::read(t.path().join("bin/sh")).unwrap(), b"BUSYBOX");
}

#[test]
fn deep_directories_exist_before_files_and_keep_their_times() {
    let t = tempfile::tempdir().unwrap();
    let deep = "x/a/b/c/d/e/f/g/h";
    let mut tar =
        Tar::new()
            .dir("x/", 0o750, 1_500_000_000)
            .dir(&format!("{deep}/"), 0o700, 1_400_000_000);
    for i in 0..20 {
        tar = tar.file(&format!("{deep}/f{i}"), format!("{i}").as_bytes());
    }
    let tar = tar.finish();
    apply_slow_first(&tar, t.path()).unwrap();
    for i in 0..20 {
        let p = t.path().join(format!("{deep}/f{i}"));
        assert_eq!(std::fs::read(&p).unwrap(), format!("{i}").as_bytes());
    }
    // Directory times are set after the last (late) file was written into them.
    let m = std::fs::metadata(t.path().join(deep)).unwrap();
    assert_eq!(m.mtime(), 1_400_000_000);
    assert_eq!(m.mode() & 0o7777, 0o700);
    let m = std::fs::metadata(t.path().join("x")).unwrap();
    assert_eq!(m.mtime(), 1_500_000_000);
    assert_eq!(m.mode() & 0o7777, 0o750);
}

#[test]
fn a_file_replacing_a_directory_waits_for_files_below_it() {
    let t = tempfile::tempdir().unwrap();
    let tar = Tar::new()
        .file("d/e/f/g1", b"1")
        .file("d/e/f/g2", b"2")
        .file("d", b"now a file")
        .finish();
    apply_slow_first(&tar, t.path()).unwrap();
    assert_eq!(std::fs::read(t.path().join("d")).unwrap(), b"now a file");
}

#[test]
fn a_queued_file_on_a_later_entrys_path_fails_it_as_a_file_would() {
    let t = tempfile::tempdir().unwrap();
    let tar = Tar::new().file("p", b"file").file("p/q/r", b"x").finish();
    match apply_slow_first(&tar, t.path()) {
        Err(ApplyError::Entry {
            kind: EntryError::ParentNotDir { .. },
            entry,
            ..
        }) => assert_eq!(entry, "p/q/r"),
        other => panic!("expected ParentNotDir, got {other:?}"),
    }
}

#[test]
fn pooled_and_inline_application_agree() {
    let mut tar = Tar::new().dir("etc/", 0o755, 1_300_000_000);
    for i in 0..300 {
        tar = tar.file(
            &format!("usr/share/d{}/f{i}", i % 7),
            format!("{i}").repeat(i).as_bytes(),
        );
        if i % 50 == 0 {
            tar = tar
                .hardlink(&format!("usr/l{i}"), &format!("usr/share/d{}/f{i}", i % 7))
                .file(&format!("usr/share/d{}/f{i}", i % 7), b"replaced");
        }
    }
    let tar = tar.symlink("etc/alt", "../usr/share/d1").finish();
    let walk = |root: &std::path::Path| {
        let mut out = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                let m = std::fs::symlink_metadata(&p).unwrap();
                let rel = p.strip_prefix(root).unwrap().to_path_buf();
                let data = if m.is_file() {
                    std::fs::read(&p).unwrap()
                } else {
                    Vec::new()
                };
                if m.is_dir() {
                    stack.push(p.clone());
                }
                // Implied directories are stamped "now": only listed times must agree.
                let mtime = if m.is_dir() && m.mtime() > 1_700_000_000 {
                    0
                } else {
                    m.mtime()
                };
                out.push((rel, m.mode(), m.uid(), m.gid(), m.nlink(), mtime, data));
            }
        }
        out.sort();
        out
    };
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let opts = |writers| ApplyOptions {
        chown: is_root(),
        writers,
        ..Default::default()
    };
    apply_layer(&tar[..], None, a.path(), &opts(0)).unwrap();
    apply_layer(&tar[..], None, b.path(), &opts(4)).unwrap();
    assert_eq!(walk(a.path()), walk(b.path()));
}

fn meta(mode: u32, uid: u32, gid: u32) -> Meta {
    Meta {
        mode,
        uid,
        gid,
        mtime: rustix::fs::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        xattrs: Vec::new(),
    }
}

#[test]
fn file_plans_skip_only_what_creation_already_did() {
    let c = Creation {
        euid: 0,
        egid: 0,
        umask: Some(0o022),
    };
    let dir = 0o040755;
    // root:root 0644 under umask 022: create, write, times; nothing else.
    let p = FilePlan::new(&meta(0o644, 0, 0), true, &c, dir, 0);
    assert_eq!((p.create_mode, p.chown, p.chmod), (0o644, None, None));
    // The umask would strip group write.
    let p = FilePlan::new(&meta(0o664, 0, 0), true, &c, dir, 0);
    assert_eq!(p.chmod, Some(0o664));
    // setuid: after chown, always.
    let p = FilePlan::new(&meta(0o4755, 1000, 1000), true, &c, dir, 0);
    assert_eq!((p.chown, p.chmod), (Some((1000, 1000)), Some(0o4755)));
    // Below a setgid directory the group comes from it: 0:0 needs a chown there.
    let p = FilePlan::new(&meta(0o644, 0, 0), true, &c, 0o042775, 50);
    assert_eq!(p.chown, Some((0, 0)));
    let p = FilePlan::new(&meta(0o644, 0, 50), true, &c, 0o042775, 50);
    assert_eq!(p.chown, None);
    // Rootless: never chown.
    let p = FilePlan::new(&meta(0o644, 1000, 1000), false, &c, dir, 0);
    assert_eq!(p.chown, None);
    // Unknown umask (or a default ACL): always chmod.
    let c = Creation { umask: None, ..c };
    let p = FilePlan::new(&meta(0o644, 0, 0), true, &c, dir, 0);
    assert_eq!(p.chmod, Some(0o644));
}

#[test]
fn files_get_their_modes_without_a_chmod_call() {
    let t = tempfile::tempdir().unwrap();
    let mut tar = Tar::new();
    for (i, mode) in [0o644, 0o755, 0o600, 0o666, 0o777, 0o4755, 0o2711, 0o1777, 0]
        .into_iter()
        .enumerate()
    {
        let mut h = Tar::header(tar::EntryType::Regular, mode, 1);
        tar.0
            .append_data(&mut h, format!("f{i}"), &b"x"[..])
            .unwrap();
        let mut h = Tar::header(tar::EntryType::Regular, mode, 0);
        tar.0
            .append_data(&mut h, format!("empty{i}"), &b""[..])
            .unwrap();
    }
    let tar = tar.finish();
    apply_layer(
        &tar[..],
        None,
        t.path(),
        &ApplyOptions {
            chown: is_root(),
            ..Default::default()
        },
    )
    .unwrap();
    for (i, mode) in [0o644, 0o755, 0o600, 0o666, 0o777, 0o4755, 0o2711, 0o1777, 0]
        .into_iter()
        .enumerate()
    {
        for name in [format!("f{i}"), format!("empty{i}")] {
            let m = std::fs::metadata(t.path().join(&name)).unwrap();
            assert_eq!(m.mode() & 0o7777, mode, "{name}");
            assert_eq!(m.mtime(), 1_600_000_000, "{name}");
        }
    }
}

/// Random layers over a tiny namespace (the same names again and again: files over
/// directories, links, whiteouts, paths through symlinks), applied inline and with writers:
/// the trees must be the same, or both fail.
#[test]
fn random_layers_apply_the_same_with_and_without_writers() {
    let mut x = 0x0dd_ba11_cafe_f00du64;
    let mut rnd = move |n: u64| {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    };
    // Directories are named a and b, files x, y and z; now and then a file or a link takes
    // a directory's name (replacing it, or making paths through it fail).
    for round in 0..200 {
        let mut tar = Tar::new();
        let mut files: Vec<String> = Vec::new();
        for _ in 0..4 + rnd(24) {
            let dirs = ["a", "b"];
            let parent: Vec<&str> = (0..rnd(3)).map(|_| dirs[rnd(2) as usize]).collect();
            let parent = parent.join("/");
            let leaf = if rnd(12) == 0 {
                dirs[rnd(2) as usize]
            } else {
                ["x", "y", "z"][rnd(3) as usize]
            };
            let path = if parent.is_empty() {
                leaf.to_string()
            } else {
                format!("{parent}/{leaf}")
            };
            tar = match rnd(12) {
                0..=4 => {
                    files.push(path.clone());
                    tar.file(&path, format!("{round}-{}", rnd(1000)).as_bytes())
                }
                5 => tar.dir(&format!("{path}/"), 0o755, 1_000_000 + rnd(1000)),
                6 if rnd(3) == 0 => tar.symlink("b", "a"),
                6 => tar.symlink(&path, "x"),
                7 if !files.is_empty() => {
                    let target = files[rnd(files.len() as u64) as usize].clone();
                    tar.hardlink(&path, &target)
                }
                7 => tar.hardlink(&path, "x"),
                8 if parent.is_empty() => tar.file(&format!(".wh.{leaf}"), b""),
                8 => tar.file(&format!("{parent}/.wh.{leaf}"), b""),
                9 if parent.is_empty() => tar.file(".wh..wh..opq", b""),
                9 => tar.file(&format!("{parent}/.wh..wh..opq"), b""),
                _ if parent.is_empty() => tar.dir("a/", 0o700, 2_000_000),
                _ => tar.dir(&format!("{parent}/"), 0o700, 2_000_000),
            };
        }
        let tar = tar.finish();
        let inline = tempfile::tempdir().unwrap();
        let pooled = tempfile::tempdir().unwrap();
        let opts = |writers| ApplyOptions {
            chown: is_root(),
            writers,
            ..Default::default()
        };
        let a = apply_layer(&tar[..], None, inline.path(), &opts(0));
        if round % 3 == 0 {
            FIRST_JOB_DELAY.set(Duration::from_millis(5));
        }
        let b = apply_layer(&tar[..], None, pooled.path(), &opts(4));
        FIRST_JOB_DELAY.set(Duration::ZERO);
        match (&a, &b) {
            (Ok(_), Ok(_)) => assert_eq!(tree(inline.path()), tree(pooled.path()), "round {round}"),
            (Err(ea), Err(eb)) => assert_eq!(ea.to_string(), eb.to_string(), "round {round}"),
            _ => panic!("round {round}: inline {a:?}, pooled {b:?}"),
        }
    }
}

/// Every path below `root` with its type, mode, size, link target or content.
fn tree(root: &std::path::Path) -> Vec<(std::path::PathBuf, u32, u64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            let data = if m.is_file() {
                std::fs::read(&p).unwrap()
            } else if m.file_type().is_symlink() {
                std::fs::read_link(&p)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes()
            } else {
                Vec::new()
            };
            if m.is_dir() {
                stack.push(p.clone());
            }
            out.push((rel, m.mode(), m.nlink(), data));
        }
    }
    out.sort();
    out
}

#[test]
fn implied_directories_inherit_lower_layers_afterwards_as_they_would_at_once() {
    use std::os::unix::fs::PermissionsExt;
    let lower = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(lower.path().join("srv/data/deep")).unwrap();
    std::fs::set_permissions(
        lower.path().join("srv/data"),
        std::fs::Permissions::from_mode(0o710),
    )
    .unwrap();
    std::fs::write(lower.path().join("srv/file"), b"").unwrap();
    if is_root() {
        std::os::unix::fs::chown(lower.path().join("srv/data"), Some(33), Some(34)).unwrap();
    }
    let tar = Tar::new()
        .file("srv/data/deep/f", b"f")
        .dir("srv/data/listed/", 0o700, 1_000)
        .file("srv/data/listed/g", b"g")
        .file("srv/file/x", b"parent was a file below")
        .finish();
    let opts = |lower_dirs| ApplyOptions {
        chown: is_root(),
        lower_dirs,
        ..Default::default()
    };
    let at_once = tempfile::tempdir().unwrap();
    let later = tempfile::tempdir().unwrap();
    let a = apply_layer(
        &tar[..],
        None,
        at_once.path(),
        &opts(vec![lower.path().into()]),
    )
    .unwrap();
    let b = apply_layer(&tar[..], None, later.path(), &opts(vec![])).unwrap();
    assert_eq!(a.implied_dirs, b.implied_dirs);
    let names: Vec<_> = b.implied_dirs.iter().map(|p| p.to_str().unwrap()).collect();
    assert_eq!(names, ["srv", "srv/data", "srv/data/deep", "srv/file"]);
    assert_eq!(
        std::fs::metadata(later.path().join("srv/data"))
            .unwrap()
            .mode()
            & 0o7777,
        0o755
    );
    super::inherit_lower_dirs(
        later.path(),
        &b.implied_dirs,
        &opts(vec![lower.path().into()]),
    )
    .unwrap();
    for d in [
        "srv",
        "srv/data",
        "srv/data/deep",
        "srv/data/listed",
        "srv/file",
    ] {
        let (x, y) = (
            std::fs::metadata(at_once.path().join(d)).unwrap(),
            std::fs::metadata(later.path().join(d)).unwrap(),
        );
        assert_eq!(
            (x.mode(), x.uid(), x.gid()),
            (y.mode(), y.uid(), y.gid()),
            "{d}"
        );
    }
    let m = std::fs::metadata(later.path().join("srv/data")).unwrap();
    assert_eq!(m.permissions().mode() & 0o7777, 0o710);
    if is_root() {
        assert_eq!((m.uid(), m.gid()), (33, 34));
    }
}
