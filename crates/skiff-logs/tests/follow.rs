//! Following: new lines arrive quickly, rotation is survived, stop/finish end it.

mod common;

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use skiff_logs::{LogConfig, LogEntry, ReadOptions, Reader, Stopper, Stream, Writer};

/// Starts a follower on its own thread; entries come through the channel, the handle
/// returns when the iteration ends.
fn follow(
    cfg: &LogConfig,
    opts: ReadOptions,
) -> (Stopper, mpsc::Receiver<LogEntry>, thread::JoinHandle<()>) {
    let reader = Reader::open(
        cfg,
        ReadOptions {
            follow: true,
            ..opts
        },
    )
    .unwrap();
    let stopper = reader.stopper();
    let (tx, rx) = mpsc::channel();
    let h = thread::spawn(move || {
        for e in reader {
            if tx.send(e.unwrap()).is_err() {
                break;
            }
        }
    });
    (stopper, rx, h)
}

fn recv(rx: &mpsc::Receiver<LogEntry>) -> LogEntry {
    rx.recv_timeout(Duration::from_secs(5))
        .expect("an entry within 5 s")
}

#[test]
fn follower_sees_appended_lines_quickly_and_stop_ends_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg(dir.path(), "json-file", &[]);
    let mut w = Writer::open(&cfg).unwrap();
    write_numbered(&mut w, 0..3);
    let (stopper, rx, h) = follow(
        &cfg,
        ReadOptions {
            tail: Some(1),
            ..all()
        },
    );
    assert_eq!(numbers(&[recv(&rx)]), [2]);
    let mut worst = Duration::ZERO;
    for i in 3..23 {
        thread::sleep(Duration::from_millis(7));
        let sent = Instant::now();
        write_numbered(&mut w, i..i + 1);
        assert_eq!(numbers(&[recv(&rx)]), [i]);
        worst = worst.max(sent.elapsed());
    }
    eprintln!("worst follow latency {worst:?}");
    // polls every 20 ms; allow for a loaded machine
    assert!(
        worst < Duration::from_millis(250),
        "worst latency {worst:?}"
    );
    assert!(
        rx.recv_timeout(Duration::from_millis(100)).is_err(),
        "nothing more"
    );
    let asked = Instant::now();
    stopper.stop();
    h.join().unwrap();
    assert!(
        asked.elapsed() < Duration::from_millis(500),
        "stop ends a waiting follower at once"
    );
}

#[test]
fn follower_survives_rotation() {
    for driver in ["json-file", "local"] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = cfg(dir.path(), driver, &[("max-size", "2k"), ("max-file", "3")]);
        let mut w = Writer::open(&cfg).unwrap();
        write_numbered(&mut w, 0..10);
        let (stopper, rx, h) = follow(
            &cfg,
            ReadOptions {
                tail: Some(0),
                ..all()
            },
        );
        thread::sleep(Duration::from_millis(50));
        // In step with the follower, so that no file is rotated away (max-file 3) before
        // it gets there; a file holds about 25 entries.
        let mut got = Vec::new();
        for i in 10..400 {
            write_numbered(&mut w, i..i + 1);
            if i % 13 == 0 || i == 399 {
                while got.last() != Some(&i) {
                    got.push(numbers(&[recv(&rx)])[0]);
                }
            }
        }
        assert_eq!(
            got,
            (10..400).collect::<Vec<_>>(),
            "{driver}: every line once, in order"
        );
        stopper.stop();
        h.join().unwrap();
    }
}

#[test]
fn follower_catches_up_through_several_rotations_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg(
        dir.path(),
        "json-file",
        &[("max-size", "2k"), ("max-file", "20")],
    );
    let mut w = Writer::open(&cfg).unwrap();
    let (stopper, rx, h) = follow(&cfg, all());
    write_numbered(&mut w, 0..300); // about ten rotations in one go
    let got: Vec<u64> = (0..300).map(|_| numbers(&[recv(&rx)])[0]).collect();
    assert_eq!(got, (0..300).collect::<Vec<_>>());
    stopper.stop();
    h.join().unwrap();
}

#[test]
fn follower_of_a_truncating_log() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg(dir.path(), "json-file", &[("max-size", "1k")]);
    let mut w = Writer::open(&cfg).unwrap();
    let (stopper, rx, h) = follow(&cfg, all());
    // In step with the follower: entries written and truncated away between two polls
    // are lost to a follower (as with Docker's max-file 1).
    let mut got = Vec::new();
    for i in 0..30 {
        write_numbered(&mut w, i..i + 1);
        // entries written after a truncation are found again from the top
        got.push(numbers(&[recv(&rx)])[0]);
    }
    assert!(
        std::fs::metadata(&cfg.path).unwrap().len() < 700,
        "the log was truncated"
    );
    assert_eq!(got, (0..30).collect::<Vec<_>>());
    stopper.stop();
    h.join().unwrap();
}

#[test]
fn finish_returns_the_rest_then_ends() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg(dir.path(), "json-file", &[]);
    let mut w = Writer::open(&cfg).unwrap();
    write_numbered(&mut w, 0..5);
    let (stopper, rx, h) = follow(&cfg, all());
    // the container's last output and exit, then the daemon's finish()
    write_numbered(&mut w, 5..8);
    w.write(Stream::Stdout, b"bye", t(9)).unwrap();
    w.flush().unwrap();
    stopper.finish();
    h.join().unwrap();
    let got: Vec<LogEntry> = rx.try_iter().collect();
    assert_eq!(numbers(&got[..8]), (0..8).collect::<Vec<_>>());
    assert_eq!(
        (got[8].line.as_slice(), got[8].partial),
        (&b"bye"[..], true)
    );
    assert_eq!(got.len(), 9);
}

#[test]
fn follower_waits_for_the_log_to_appear() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg(dir.path(), "local", &[]);
    let (stopper, rx, h) = follow(
        &cfg,
        ReadOptions {
            tail: Some(10),
            ..all()
        },
    );
    thread::sleep(Duration::from_millis(60));
    let mut w = Writer::open(&cfg).unwrap();
    write_numbered(&mut w, 0..2);
    assert_eq!(numbers(&[recv(&rx), recv(&rx)]), [0, 1]);
    stopper.stop();
    h.join().unwrap();
}

#[test]
fn until_ends_a_follow() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg(dir.path(), "json-file", &[]);
    let mut w = Writer::open(&cfg).unwrap();
    write_numbered(&mut w, 0..5);
    // until in the past: the follow ends at the end of the log instead of waiting
    let (_stopper, rx, h) = follow(
        &cfg,
        ReadOptions {
            until: Some(dt(3)),
            ..all()
        },
    );
    h.join().unwrap();
    assert_eq!(numbers(&rx.try_iter().collect::<Vec<_>>()), [0, 1, 2, 3]);
    // an entry newer than until ends it even if the clock has not got there
    let (_stopper, rx, h) = follow(
        &cfg,
        ReadOptions {
            until: Some(chrono::Utc::now() + chrono::Duration::hours(1)),
            ..all()
        },
    );
    thread::sleep(Duration::from_millis(50));
    w.write(
        Stream::Stdout,
        b"from the future\n",
        std::time::SystemTime::now() + Duration::from_secs(7200),
    )
    .unwrap();
    h.join().unwrap();
    assert_eq!(rx.try_iter().count(), 5);
}

#[test]
fn handles_cross_threads() {
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync + Clone>() {}
    send::<Reader>();
    send::<Writer>();
    send_sync::<Stopper>();
}
