//! Crash test: a child process pulls "images" in a loop (leased blobs, labels, snapshot
//! commits, image records) and is killed with SIGKILL at arbitrary moments. Reopening the
//! store must check clean and lose nothing that was committed.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{bytes, desc, open};
use skiff_store::{
    CheckOptions, ContentError, GcOptions, Store, LABEL_REF_CONTENT, LABEL_REF_SNAPSHOT,
};

fn pull(s: &Store, i: u64) {
    let lease = format!("pull-{i}-{}", std::process::id());
    s.lease_create(&lease, None, Default::default()).unwrap();
    let cs = s.content().with_lease(&lease);
    let layer = bytes(i, 64 * 1024 + i as usize);
    let ld = desc(&layer);
    match cs.writer(&ld.digest.to_string(), Some(ld.clone())) {
        Ok(mut w) => {
            // Resume where a killed run stopped (as an HTTP Range request would).
            let from = w.offset() as usize;
            for c in layer[from..].chunks(8192) {
                w.write_all(c).unwrap();
            }
            w.commit().unwrap();
        }
        Err(ContentError::AlreadyExists { .. }) => {}
        Err(e) => panic!("{e}"),
    }
    let chain = format!("sha256:crash-chain-{i}");
    let sn = s.snapshots().with_lease(&lease);
    let key = format!("extract-{chain}");
    let _ = sn.remove(&key); // left by an earlier killed run
    if sn.stat(&chain).is_err() {
        sn.prepare(&key, None).unwrap();
        std::fs::write(sn.upper_dir(&key).unwrap().join("file"), &layer[..100]).unwrap();
        sn.commit(&key, &chain).unwrap();
    }
    let manifest = format!("manifest {i} {}", ld.digest);
    let md = desc(manifest.as_bytes());
    let mut w = match cs.writer(&md.digest.to_string(), Some(md.clone())) {
        Ok(w) => w,
        Err(ContentError::AlreadyExists { .. }) => cs.writer(&format!("again-{i}"), None).unwrap(),
        Err(e) => panic!("{e}"),
    };
    let from = w.offset() as usize;
    w.write_all(&manifest.as_bytes()[from..]).unwrap();
    w.commit().unwrap();
    s.content()
        .set_labels(
            &md.digest,
            [
                (format!("{LABEL_REF_CONTENT}.l.0"), ld.digest.to_string()),
                (format!("{LABEL_REF_SNAPSHOT}.overlay"), chain),
            ]
            .into(),
        )
        .unwrap();
    s.image_put(&format!("crash/img:{i}"), md, Default::default())
        .unwrap();
    s.lease_delete(&lease).unwrap();
}

#[test]
#[ignore = "run by kill_9_mid_write_leaves_a_clean_store"]
fn crash_child() {
    let Ok(root) = std::env::var("SKIFF_STORE_CRASH_ROOT") else {
        return;
    };
    let start: u64 = std::env::var("SKIFF_STORE_CRASH_START")
        .unwrap()
        .parse()
        .unwrap();
    let (s, _) = open(std::path::Path::new(&root));
    let mut out = std::io::stdout().lock();
    for i in start.. {
        pull(&s, i);
        writeln!(out, "committed {i}").unwrap();
        out.flush().unwrap();
        if i % 7 == 0 {
            s.gc(&GcOptions::default()).unwrap();
        }
    }
}

#[test]
fn kill_9_mid_write_leaves_a_clean_store() {
    let dir = tempfile::tempdir().unwrap();
    let _ = open(dir.path());
    let exe = std::env::current_exe().unwrap();
    let mut committed: Vec<u64> = Vec::new();
    let mut next = 0u64;
    for round in 0..6u64 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("SKIFF_STORE_CRASH_ROOT", dir.path())
            .env("SKIFF_STORE_CRASH_START", next.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let want = 3 + round;
        let mut seen = 0;
        while seen < want {
            let Some(line) = lines.next() else {
                panic!("child exited early: {:?}", child.wait())
            };
            if let Some(i) = line.unwrap().strip_prefix("committed ") {
                committed.push(i.parse().unwrap());
                seen += 1;
            }
        }
        // Let it get into the middle of the next pull, at a different point each round.
        std::thread::sleep(Duration::from_micros(500 + round * 1700));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        for line in lines.map_while(Result::ok) {
            if let Some(i) = line.strip_prefix("committed ") {
                committed.push(i.parse().unwrap());
            }
        }
        next = committed.last().unwrap() + 1;

        let (s, report) = open(dir.path());
        assert!(report.is_clean(), "round {round}: {report}");
        let verify = s.check_with(CheckOptions { verify_blobs: true }).unwrap();
        assert!(
            verify.is_clean() && verify.repaired.is_empty(),
            "round {round}: {verify}"
        );
        // A GC after the crash keeps every committed image's content and snapshots.
        s.gc(&GcOptions::default()).unwrap();
        for &i in &committed {
            let img = s
                .image_get(&format!("crash/img:{i}"))
                .unwrap()
                .unwrap_or_else(|| panic!("image {i} lost"));
            let labels = s.content().labels(&img.target.digest).unwrap();
            let layer: skiff_store::Digest =
                labels[&format!("{LABEL_REF_CONTENT}.l.0")].parse().unwrap();
            assert_eq!(
                s.content().info(&layer).unwrap(),
                Some(64 * 1024 + i),
                "layer of image {i}"
            );
            s.snapshots()
                .stat(&format!("sha256:crash-chain-{i}"))
                .unwrap();
        }
    }
    assert!(committed.len() >= 30, "{}", committed.len());
}

/// Many first opens of one fresh root at once (as concurrent `skiff pull`s do): each open's
/// check removes temp files, which must never include another opener's half-written files.
#[test]
fn concurrent_first_opens_of_a_fresh_root_all_succeed() {
    for _ in 0..20 {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let root = root.clone();
                std::thread::spawn(move || Store::open(&root).map(drop).map_err(|e| e.to_string()))
            })
            .collect();
        for h in handles {
            h.join().unwrap().unwrap();
        }
        assert_eq!(
            std::fs::read_to_string(root.join("version")).unwrap(),
            "1\n"
        );
    }
}
