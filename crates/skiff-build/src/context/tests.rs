use std::fs;
use std::io::Write;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use super::*;
use crate::ignore::walk::{walk, write_context_tar, EntryKind};

/// A tar entry written byte by byte, so hostile names get through unchanged.
fn entry(out: &mut Vec<u8>, name: &str, kind: tar::EntryType, data: &[u8], link: &str) {
    let mut h = tar::Header::new_old();
    {
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    h.set_entry_type(kind);
    h.set_size(data.len() as u64);
    h.set_mode(if kind == tar::EntryType::Directory {
        0o755
    } else {
        0o644
    });
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

fn finish(mut out: Vec<u8>) -> Vec<u8> {
    out.extend_from_slice(&[0u8; 1024]);
    out
}

fn extract(tar: &[u8]) -> (tempfile::TempDir, Result<ExtractStats, ContextError>) {
    let d = tempfile::tempdir().unwrap();
    let r = extract_context(tar, d.path(), Limits::default());
    (d, r)
}

use tar::EntryType as T;

#[test]
fn plain_and_gzip_contexts() {
    let mut t = Vec::new();
    entry(&mut t, "./", T::Directory, b"", "");
    entry(&mut t, "./Dockerfile", T::Regular, b"FROM scratch\n", "");
    entry(&mut t, "src/", T::Directory, b"", "");
    entry(&mut t, "src/a.txt", T::Regular, b"a", "");
    entry(&mut t, "deep/er/file", T::Regular, b"x", "");
    entry(&mut t, "link", T::Symlink, b"", "/etc/passwd");
    entry(&mut t, "hard", T::Link, b"", "src/a.txt");
    let t = finish(t);
    let (d, r) = extract(&t);
    assert_eq!(r.unwrap().entries, 7);
    assert_eq!(fs::read(d.path().join("deep/er/file")).unwrap(), b"x");
    assert_eq!(
        fs::read_link(d.path().join("link")).unwrap(),
        Path::new("/etc/passwd")
    );
    assert_eq!(fs::read(d.path().join("hard")).unwrap(), b"a");

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&t).unwrap();
    let (d, r) = extract(&gz.finish().unwrap());
    r.unwrap();
    let ctx = BuildContext::from_dir(d.path(), "Dockerfile").unwrap();
    assert_eq!(ctx.read_dockerfile().unwrap(), b"FROM scratch\n");
}

#[test]
fn hostile_entries_are_refused() {
    let cases: Vec<Vec<u8>> = vec![
        {
            let mut t = Vec::new();
            entry(&mut t, "../escape", T::Regular, b"x", "");
            t
        },
        {
            let mut t = Vec::new();
            entry(&mut t, "a/../../escape", T::Regular, b"x", "");
            t
        },
        {
            let mut t = Vec::new();
            entry(&mut t, "/etc/abs", T::Regular, b"x", "");
            t
        },
        {
            // Symlink planted, then written through.
            let mut t = Vec::new();
            entry(&mut t, "evil", T::Symlink, b"", "/tmp");
            entry(&mut t, "evil/pwned", T::Regular, b"x", "");
            t
        },
        {
            let mut t = Vec::new();
            entry(&mut t, "up", T::Symlink, b"", "..");
            entry(&mut t, "up/pwned", T::Regular, b"x", "");
            t
        },
        {
            // Hard link to something outside, or through a symlink.
            let mut t = Vec::new();
            entry(&mut t, "h", T::Link, b"", "../../etc/passwd");
            t
        },
        {
            let mut t = Vec::new();
            entry(&mut t, "etc", T::Symlink, b"", "/etc");
            entry(&mut t, "h", T::Link, b"", "etc/passwd");
            t
        },
        {
            let mut t = Vec::new();
            entry(&mut t, "h", T::Link, b"", "missing");
            t
        },
    ];
    for (i, t) in cases.into_iter().enumerate() {
        let outer = tempfile::tempdir().unwrap();
        let dest = outer.path().join("ctx");
        fs::create_dir(&dest).unwrap();
        let r = extract_context(&finish(t)[..], &dest, Limits::default());
        assert!(
            matches!(r, Err(ContextError::HostileEntry { .. })),
            "case {i}: {r:?}"
        );
        assert!(!outer.path().join("escape").exists());
        assert!(!Path::new("/tmp/pwned").exists());
    }
}

#[test]
fn limits_and_compression() {
    let mut t = Vec::new();
    entry(&mut t, "a", T::Regular, &[1u8; 2000], "");
    let d = tempfile::tempdir().unwrap();
    let r = extract_context(
        &finish(t.clone())[..],
        d.path(),
        Limits {
            max_entries: 10,
            max_bytes: 1000,
        },
    );
    assert!(matches!(r, Err(ContextError::TooLarge(_))));
    let r = extract_context(&b"BZh91AY&SY"[..], d.path(), Limits::default());
    assert_eq!(
        r.unwrap_err().to_string(),
        "build context compressed with bzip2: only plain and gzip-compressed tar are supported"
    );
    // Garbage is an error, not a panic.
    assert!(extract_context(&[7u8; 700][..], d.path(), Limits::default()).is_err());
}

#[test]
fn later_entries_replace_earlier_ones() {
    let mut t = Vec::new();
    entry(&mut t, "x", T::Regular, b"1", "");
    entry(&mut t, "x", T::Symlink, b"", "y");
    entry(&mut t, "x", T::Regular, b"2", "");
    let (d, r) = extract(&finish(t));
    r.unwrap();
    assert_eq!(fs::read(d.path().join("x")).unwrap(), b"2");
}

fn tree() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    for (f, c) in [
        ("Dockerfile", "FROM x"),
        (
            ".dockerignore",
            "*.log\nnode_modules\n!node_modules/keep.js\nsecret/\n",
        ),
        ("a.txt", "a"),
        ("b.txt", "b"),
        ("app.log", "log"),
        ("src/main.rs", "fn main() {}"),
        ("src/lib/mod.rs", "mod x;"),
        ("node_modules/dep.js", "x"),
        ("node_modules/keep.js", "k"),
        ("secret/key", "k"),
    ] {
        fs::create_dir_all(p.join(f).parent().unwrap()).unwrap();
        fs::write(p.join(f), c).unwrap();
    }
    symlink("src/main.rs", p.join("main-link")).unwrap();
    symlink("/../../src", p.join("abs-link")).unwrap();
    symlink("/etc/passwd", p.join("outside")).unwrap();
    fs::set_permissions(p.join("b.txt"), fs::Permissions::from_mode(0o755)).unwrap();
    d
}

#[test]
fn walk_and_tar_honour_dockerignore() {
    let d = tree();
    let ctx = BuildContext::from_dir(d.path(), "Dockerfile").unwrap();
    let paths: Vec<String> = walk(d.path(), ctx.ignore())
        .unwrap()
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert!(paths.contains(&"node_modules/keep.js".to_string()));
    for gone in [
        "app.log",
        "node_modules/dep.js",
        "node_modules",
        "secret",
        "secret/key",
    ] {
        assert!(!paths.contains(&gone.to_string()), "{gone} in {paths:?}");
    }
    assert!(
        paths.contains(&".dockerignore".to_string()) && paths.contains(&"Dockerfile".to_string())
    );
    let tar = write_context_tar(d.path(), ctx.ignore(), Vec::new()).unwrap();
    let (out, r) = extract(&tar);
    r.unwrap();
    assert_eq!(
        fs::read(out.path().join("node_modules/keep.js")).unwrap(),
        b"k"
    );
    assert!(!out.path().join("app.log").exists());
    assert_eq!(
        fs::read_link(out.path().join("outside")).unwrap(),
        Path::new("/etc/passwd")
    );
    assert_eq!(
        fs::metadata(out.path().join("b.txt"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o755
    );
}

fn opts() -> CopyOptions<'static> {
    CopyOptions {
        instruction: "COPY",
        ..Default::default()
    }
}

fn rels(p: &CopyPlan) -> Vec<&str> {
    p.entries.iter().map(|e| e.rel.as_str()).collect()
}

#[test]
fn copy_sources() {
    let d = tree();
    let ctx = BuildContext::from_dir(d.path(), "Dockerfile").unwrap();
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    let p = ctx.resolve_copy(&s(&["a.txt"]), "/x", &opts()).unwrap();
    assert_eq!((rels(&p), p.dest_is_dir), (vec!["a.txt"], false));
    assert_eq!(p.target(&p.entries[0], "/x", false), "/x");
    assert_eq!(p.target(&p.entries[0], "/x", true), "/x/a.txt");

    // A directory copies its contents.
    let p = ctx.resolve_copy(&s(&["src"]), "/app", &opts()).unwrap();
    assert_eq!(rels(&p), ["lib", "lib/mod.rs", "main.rs"]);
    assert!(p.dest_is_dir);

    // Wildcards, in name order; ignored files do not exist.
    let p = ctx.resolve_copy(&s(&["*.txt", "*.log"]), "/d/", &opts());
    assert!(matches!(p, Err(ContextError::NoSources)), "{p:?}");
    let p = ctx.resolve_copy(&s(&["*.txt"]), "/d/", &opts()).unwrap();
    assert_eq!(rels(&p), ["a.txt", "b.txt"]);
    assert_eq!(p.entries[1].mode, 0o755);
    let p = ctx.resolve_copy(&s(&["s?c/*.rs"]), "/d/", &opts()).unwrap();
    assert_eq!(rels(&p), ["main.rs"]);
    assert!(matches!(
        ctx.resolve_copy(&s(&["*.txt"]), "/d", &opts()),
        Err(ContextError::DestNotDir("COPY"))
    ));
    assert!(matches!(
        ctx.resolve_copy(&s(&["app.log"]), "/d", &opts()),
        Err(ContextError::NotFound(_))
    ));
    assert!(matches!(
        ctx.resolve_copy(&s(&["nope"]), "/d", &opts()),
        Err(ContextError::NotFound(_))
    ));

    // The whole context, `..` clamped at the root, node_modules only what exceptions keep.
    let p = ctx.resolve_copy(&s(&["../.."]), "/", &opts()).unwrap();
    let r = rels(&p);
    assert!(
        r.contains(&"node_modules/keep.js")
            && !r.contains(&"node_modules/dep.js")
            && !r.contains(&"secret/key")
    );
    assert!(
        r.contains(&"outside"),
        "symlinks inside are copied as links"
    );

    // Symlinked sources are followed inside the root only.
    let p = ctx.resolve_copy(&s(&["main-link"]), "/m", &opts()).unwrap();
    assert_eq!(p.entries[0].src, d.path().join("src/main.rs"));
    assert_eq!(p.entries[0].rel, "main-link");
    let p = ctx.resolve_copy(&s(&["abs-link"]), "/m", &opts()).unwrap();
    assert_eq!(rels(&p), ["lib", "lib/mod.rs", "main.rs"]);
    assert!(matches!(
        ctx.resolve_copy(&s(&["outside"]), "/m", &opts()),
        Err(ContextError::NotFound(_))
    ));

    // --exclude.
    let ex = ["lib".to_string()];
    let p = ctx
        .resolve_copy(
            &s(&["src"]),
            "/app",
            &CopyOptions {
                exclude: &ex,
                ..opts()
            },
        )
        .unwrap();
    assert_eq!(rels(&p), ["main.rs"]);
}

#[test]
fn checksum_tracks_content_mode_and_owner() {
    let d = tree();
    let ctx = BuildContext::from_dir(d.path(), "Dockerfile").unwrap();
    let src = vec!["src".to_string()];
    let sum = |o: &CopyOptions| ctx.resolve_copy(&src, "/app", o).unwrap().checksum;
    let a = sum(&opts());
    assert_eq!(a, sum(&opts()));
    assert_ne!(
        a,
        sum(&CopyOptions {
            chown: Some("1:1"),
            ..opts()
        })
    );
    fs::write(d.path().join("src/main.rs"), "fn main() { }").unwrap();
    let b = sum(&opts());
    assert_ne!(a, b);
    fs::set_permissions(
        d.path().join("src/main.rs"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    assert_ne!(b, sum(&opts()));
}

#[test]
fn from_tar_context() {
    let d = tree();
    let ign = crate::ignore::DockerIgnore::default();
    let tar = write_context_tar(d.path(), &ign, Vec::new()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let ctx =
        BuildContext::from_tar(&tar[..], "Dockerfile", tmp.path(), Limits::default()).unwrap();
    assert_eq!(ctx.read_dockerfile().unwrap(), b"FROM x");
    // The daemon side applies .dockerignore too.
    let p = ctx
        .resolve_copy(&["node_modules".to_string()], "/n/", &opts())
        .unwrap();
    assert_eq!(rels(&p), ["keep.js"]);
    let root = ctx.root().to_path_buf();
    drop(ctx);
    assert!(!root.exists(), "the temporary context is removed");
    let _ = EntryKind::File;
}
