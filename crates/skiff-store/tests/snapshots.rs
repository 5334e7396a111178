//! Snapshotter semantics without mounting: prepare / view / commit / remove, errors, layout.

mod common;

use std::fs;

use common::open;
use skiff_store::{SnapshotError, SnapshotKind};

#[test]
fn prepare_commit_view_remove() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = open(dir.path());
    let sn = s.snapshots();
    // Base layer: no parent -> a bind mount of its diff dir.
    let m = sn.prepare("extract-1", None).unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].typ, "bind");
    let up = sn.upper_dir("extract-1").unwrap();
    assert_eq!(m[0].source, up.display().to_string());
    fs::write(up.join("f"), vec![0u8; 10_000]).unwrap();
    sn.commit("extract-1", "sha256:chain1").unwrap();
    assert!(matches!(
        sn.stat("extract-1"),
        Err(SnapshotError::NotFound(_))
    ));
    let st = sn.stat("sha256:chain1").unwrap();
    assert_eq!(st.kind, SnapshotKind::Committed);
    let u = sn.usage("sha256:chain1").unwrap();
    assert_eq!(u.inodes, 1);
    assert!(u.size >= 10_000, "{u:?}");
    // Committed snapshots are not mountable, and not writable.
    assert!(matches!(
        sn.mounts("sha256:chain1"),
        Err(SnapshotError::WrongKind { .. })
    ));
    assert!(matches!(
        sn.upper_dir("sha256:chain1"),
        Err(SnapshotError::WrongKind { .. })
    ));

    sn.prepare("extract-2", Some("sha256:chain1")).unwrap();
    sn.commit("extract-2", "sha256:chain2").unwrap();
    // Layout: lower file lists parents nearest first, l/ links resolve to diff dirs.
    let c2 = sn.stat("sha256:chain2").unwrap();
    let c1 = sn.stat("sha256:chain1").unwrap();
    let ov = dir.path().join("overlay");
    let link1 = fs::read_to_string(ov.join(&c1.id).join("link")).unwrap();
    assert_eq!(link1.len(), 26);
    assert_eq!(
        fs::read_to_string(ov.join(&c2.id).join("lower")).unwrap(),
        format!("l/{link1}")
    );
    assert_eq!(
        fs::read_link(ov.join("l").join(&link1))
            .unwrap()
            .display()
            .to_string(),
        format!("../{}/diff", c1.id)
    );

    // Container on top: overlay with upper/work/lowerdir (nearest first).
    let m = sn.prepare("ctr", Some("sha256:chain2")).unwrap();
    assert_eq!(m[0].typ, "overlay");
    let lower = m[0]
        .options
        .iter()
        .find(|o| o.starts_with("lowerdir="))
        .unwrap();
    assert_eq!(lower.matches(':').count(), 1, "{lower}");
    assert!(m[0]
        .options
        .iter()
        .any(|o| o.starts_with("upperdir=") && o.ends_with("/diff")));
    assert!(m[0].options.iter().any(|o| o.starts_with("workdir=")));
    assert_eq!(sn.mounts("ctr").unwrap(), m);

    // Views: read-only.
    let v = sn.view("v1", Some("sha256:chain1")).unwrap();
    assert_eq!(v[0].typ, "bind");
    assert!(v[0].options.contains(&"ro".to_owned()));
    let v = sn.view("v2", Some("sha256:chain2")).unwrap();
    assert_eq!(v[0].typ, "overlay");
    assert!(!v[0].options.iter().any(|o| o.starts_with("upperdir=")));
    assert!(matches!(
        sn.commit("v2", "x"),
        Err(SnapshotError::WrongKind { .. })
    ));

    // Errors.
    assert!(matches!(
        sn.prepare("ctr", None),
        Err(SnapshotError::AlreadyExists(_))
    ));
    assert!(matches!(
        sn.prepare("y", Some("nope")),
        Err(SnapshotError::NotFound(_))
    ));
    let e = sn.prepare("y", Some("ctr")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "snapshot \"y\": parent \"ctr\" is not committed"
    );
    assert!(matches!(
        sn.commit("ctr", "sha256:chain1"),
        Err(SnapshotError::AlreadyExists(_))
    ));
    let e = sn.remove("sha256:chain1").unwrap_err();
    assert!(matches!(e, SnapshotError::HasChildren { .. }), "{e}");
    assert!(e.to_string().contains("sha256:chain2"), "{e}");
    assert!(matches!(
        sn.prepare("", None),
        Err(SnapshotError::BadKey(_))
    ));

    // Remove top-down; directories and links go with the records.
    for k in ["ctr", "v2", "sha256:chain2", "v1", "sha256:chain1"] {
        sn.remove(k).unwrap();
    }
    assert!(sn.list().unwrap().is_empty());
    assert_eq!(fs::read_dir(ov.join("l")).unwrap().count(), 0);
    assert_eq!(fs::read_dir(&ov).unwrap().count(), 1, "only l/ is left");
    assert!(matches!(sn.remove("ctr"), Err(SnapshotError::NotFound(_))));
}

#[test]
fn list_and_labels() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = open(dir.path());
    let sn = s.snapshots();
    sn.prepare("a", None).unwrap();
    sn.prepare("b", None).unwrap();
    sn.set_labels("a", [("k".to_owned(), "v".to_owned())].into())
        .unwrap();
    let l = sn.list().unwrap();
    assert_eq!(
        l.iter().map(|i| i.key.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert_eq!(l[0].labels["k"], "v");
}
