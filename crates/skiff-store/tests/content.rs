//! Content store: ingest verification, resume, concurrency (threads and processes), labels.

mod common;

use std::io::{Read, Write};
use std::sync::{Arc, Barrier};

use common::{bytes, desc, open, put_blob};
use skiff_store::{ContentError, Descriptor, Digest};

#[test]
fn ingest_good_blob_is_readable() {
    let dir = tempfile::tempdir().unwrap();
    let (s, report) = open(dir.path());
    assert!(report.is_clean(), "{report}");
    let data = bytes(1, 100_000);
    let d = put_blob(&s, &data);
    assert_eq!(d, Digest::of_bytes(&data));
    let mut got = Vec::new();
    s.content()
        .reader(&d)
        .unwrap()
        .read_to_end(&mut got)
        .unwrap();
    assert_eq!(got, data);
    assert_eq!(s.content().info(&d).unwrap(), Some(100_000));
    assert_eq!(s.content().list().unwrap(), vec![d.clone()]);
    assert!(
        s.content().ingests().unwrap().is_empty(),
        "ingest removed after commit"
    );
    // Writing it again reports it present.
    let e = s.content().writer("again", Some(desc(&data))).unwrap_err();
    assert!(matches!(e, ContentError::AlreadyExists { .. }), "{e}");
    assert!(s.content().delete(&d).unwrap());
    assert!(matches!(
        s.content().reader(&d),
        Err(ContentError::NotFound { .. })
    ));
    assert_eq!(s.content().info(&d).unwrap(), None);
}

#[test]
fn ingest_without_expected_computes_digest() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = open(dir.path());
    let mut w = s.content().writer("upload-1", None).unwrap();
    w.write_all(b"hello").unwrap();
    assert_eq!(w.commit().unwrap(), Digest::of_bytes(b"hello"));
}

#[test]
fn ingest_wrong_digest_is_refused_and_invisible() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = open(dir.path());
    let data = bytes(2, 5000);
    let mut bad = data.clone();
    bad[100] ^= 1;
    let d = desc(&data);
    let mut w = s.content().writer("k", Some(d.clone())).unwrap();
    w.write_all(&bad).unwrap();
    let e = w.commit().unwrap_err();
    assert!(
        matches!(&e, ContentError::DigestMismatch { expected, .. } if *expected == d.digest),
        "{e}"
    );
    assert!(e.to_string().contains("digest mismatch"), "{e}");
    assert_eq!(s.content().info(&d.digest).unwrap(), None);
    assert!(s.content().list().unwrap().is_empty());
    // The bad bytes were discarded: a retry starts from zero.
    let w = s.content().writer("k", Some(d)).unwrap();
    assert_eq!(w.offset(), 0);
}

#[test]
fn ingest_wrong_size_and_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = open(dir.path());
    let data = bytes(3, 1234);
    // Too many bytes: refused while writing.
    let small = Descriptor::new(Digest::of_bytes(&data), 1000);
    let mut w = s.content().writer("big", Some(small)).unwrap();
    let e = w.write_all(&data).unwrap_err();
    assert!(
        e.to_string().contains("size mismatch: expected 1000"),
        "{e}"
    );
    w.abort().unwrap();
    // Truncated: refused at commit, with the message naming digest and sizes.
    let d = desc(&data);
    let mut w = s.content().writer("short", Some(d.clone())).unwrap();
    w.write_all(&data[..1200]).unwrap();
    let e = w.commit().unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "content {}: size mismatch: expected 1234, got 1200",
            d.digest
        )
    );
    assert_eq!(s.content().info(&d.digest).unwrap(), None);
}

#[test]
fn resume_after_dropped_writer() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = open(dir.path());
    let data = bytes(4, 300_000);
    let d = desc(&data);
    let mut w = s.content().writer("dl", Some(d.clone())).unwrap();
    w.write_all(&data[..123_457]).unwrap();
    drop(w); // a broken download
    let st = s.content().ingests().unwrap();
    assert_eq!(st.len(), 1);
    assert_eq!(
        (st[0].key.as_str(), st[0].offset, st[0].busy),
        ("dl", 123_457, false)
    );
    // Also survives reopening the store (a new process).
    let (s, report) = open(dir.path());
    assert!(report.is_clean(), "{report}");
    let mut w = s.content().writer("dl", Some(d.clone())).unwrap();
    assert_eq!(w.offset(), 123_457);
    w.write_all(&data[123_457..]).unwrap();
    assert_eq!(w.commit().unwrap(), d.digest);
    // A writer opened with a different expectation restarts the ingest.
    let mut w = s.content().writer("other", None).unwrap();
    w.write_all(b"abc").unwrap();
    drop(w);
    let w = s.content().writer("other", Some(desc(b"xyz"))).unwrap();
    assert_eq!(w.offset(), 0);
}

#[test]
fn try_writer_reports_busy() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = open(dir.path());
    let w = s.content().writer("k", None).unwrap();
    let e = s.content().try_writer("k", None).unwrap_err();
    assert!(matches!(e, ContentError::IngestBusy { .. }));
    assert_eq!(
        e.to_string(),
        "ingest \"k\": busy (another writer holds it)"
    );
    drop(w);
    s.content().try_writer("k", None).unwrap();
}

#[test]
fn concurrent_writers_threads_share_one_download() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = open(dir.path());
    let data = Arc::new(bytes(5, 1 << 20));
    let d = desc(&data);
    let n = 6;
    let barrier = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let (s, data, d, b) = (s.clone(), data.clone(), d.clone(), barrier.clone());
            std::thread::spawn(move || {
                b.wait();
                match s.content().writer(&d.digest.to_string(), Some(d.clone())) {
                    Ok(mut w) => {
                        for chunk in data.chunks(4096) {
                            w.write_all(chunk).unwrap();
                        }
                        w.commit().unwrap();
                        1
                    }
                    Err(ContentError::AlreadyExists { digest }) => {
                        assert_eq!(digest, d.digest);
                        0
                    }
                    Err(e) => panic!("{e}"),
                }
            })
        })
        .collect();
    let downloads: i32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(downloads, 1, "exactly one thread downloads");
    assert_eq!(s.content().info(&d.digest).unwrap(), Some(1 << 20));
    assert!(s.content().ingests().unwrap().is_empty());
}

/// Child half of the two-process test: opens the store given in the environment and writes
/// the blob slowly, printing whether it downloaded.
#[test]
#[ignore = "run by concurrent_writers_processes"]
fn child_writer() {
    let Ok(root) = std::env::var("SKIFF_STORE_CHILD_ROOT") else {
        return;
    };
    let (s, _) = open(std::path::Path::new(&root));
    let data = bytes(6, 256 * 1024);
    let d = desc(&data);
    let res = match s.content().writer(&d.digest.to_string(), Some(d.clone())) {
        Ok(mut w) => {
            for chunk in data.chunks(16 * 1024) {
                w.write_all(chunk).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            w.commit().unwrap();
            "downloaded"
        }
        Err(ContentError::AlreadyExists { .. }) => "shared",
        Err(e) => panic!("{e}"),
    };
    std::fs::write(
        std::path::Path::new(&root).join(format!("result-{}", std::process::id())),
        res,
    )
    .unwrap();
}

#[test]
fn concurrent_writers_processes() {
    let dir = tempfile::tempdir().unwrap();
    let _ = open(dir.path());
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| {
            std::process::Command::new(&exe)
                .args(["--exact", "child_writer", "--ignored", "--test-threads=1"])
                .env("SKIFF_STORE_CHILD_ROOT", dir.path())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let mut results: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            let n = e.file_name().into_string().unwrap();
            n.starts_with("result-")
                .then(|| std::fs::read_to_string(e.path()).unwrap())
        })
        .collect();
    results.sort();
    assert_eq!(results, vec!["downloaded", "shared"]);
    let (s, report) = open(dir.path());
    assert!(report.is_clean(), "{report}");
    assert_eq!(
        s.content().list().unwrap(),
        vec![Digest::of_bytes(&bytes(6, 256 * 1024))]
    );
}

#[test]
fn labels_roundtrip_and_require_blob() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = open(dir.path());
    let d = put_blob(&s, b"manifest");
    assert!(s.content().labels(&d).unwrap().is_empty());
    s.content()
        .set_label(&d, "skiff.gc.ref.content.l.0", Some("sha256:00"))
        .unwrap();
    s.content().set_label(&d, "a", Some("b")).unwrap();
    let l = s.content().labels(&d).unwrap();
    assert_eq!(l.len(), 2);
    assert_eq!(l["a"], "b");
    s.content().set_label(&d, "a", None).unwrap();
    assert_eq!(s.content().labels(&d).unwrap().len(), 1);
    let missing = Digest::of_bytes(b"nope");
    assert!(matches!(
        s.content().set_labels(&missing, Default::default()),
        Err(ContentError::NotFound { .. })
    ));
}
