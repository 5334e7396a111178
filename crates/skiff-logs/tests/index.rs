//! since/until and tail over large rotated logs, with the index intact, missing, torn or
//! stale: results must never change.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use skiff_logs::{LogConfig, ReadOptions, Reader, Writer};

fn idx(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".idx");
    s.into()
}

fn nth(cfg: &LogConfig, n: u32) -> PathBuf {
    let mut s = cfg.path.clone().into_os_string();
    s.push(format!(".{n}"));
    s.into()
}

/// 16,000 lines over 3 files (the oldest dropped), each with a few checkpoints.
fn big_log(dir: &Path, driver: &str) -> LogConfig {
    // local frames are less than half the size of json-file lines
    let size = if driver == "local" { "150k" } else { "300k" };
    let cfg = cfg(dir, driver, &[("max-size", size), ("max-file", "3")]);
    let mut w = Writer::open(&cfg).unwrap();
    write_numbered(&mut w, 0..16_000);
    cfg
}

/// The answers to a fixed set of queries.
fn answers(cfg: &LogConfig) -> Vec<Vec<u64>> {
    let q = |o: ReadOptions| numbers(&read(cfg, o));
    vec![
        q(all()),
        q(ReadOptions {
            tail: Some(1),
            ..all()
        }),
        q(ReadOptions {
            tail: Some(2_500),
            ..all()
        }),
        q(ReadOptions {
            tail: Some(6_000),
            ..all()
        }),
        q(ReadOptions {
            since: Some(dt(13_000)),
            ..all()
        }),
        q(ReadOptions {
            since: Some(dt(15_990)),
            ..all()
        }),
        q(ReadOptions {
            until: Some(dt(12_010)),
            ..all()
        }),
        q(ReadOptions {
            since: Some(dt(14_000)),
            until: Some(dt(14_003)),
            ..all()
        }),
        q(ReadOptions {
            tail: Some(3_000),
            since: Some(dt(15_000)),
            ..all()
        }),
    ]
}

fn check_answers(cfg: &LogConfig, got: &[Vec<u64>], what: &str) {
    let everything = &got[0];
    let first = everything[0];
    assert!(first > 0 && *everything.last().unwrap() == 15_999, "{what}");
    assert_eq!(everything, &(first..16_000).collect::<Vec<_>>(), "{what}");
    assert_eq!(got[1], [15_999], "{what}");
    assert_eq!(got[2], (13_500..16_000).collect::<Vec<_>>(), "{what}");
    assert_eq!(got[3], (10_000..16_000).collect::<Vec<_>>(), "{what}");
    assert_eq!(got[4], (13_000..16_000).collect::<Vec<_>>(), "{what}");
    assert_eq!(got[5], (15_990..16_000).collect::<Vec<_>>(), "{what}");
    assert_eq!(got[6], (first..=12_010).collect::<Vec<_>>(), "{what}");
    assert_eq!(got[7], [14_000, 14_001, 14_002, 14_003], "{what}");
    assert_eq!(got[8], (15_000..16_000).collect::<Vec<_>>(), "{what}");
    let _ = cfg;
}

#[test]
fn since_until_and_tail_with_the_index() {
    for driver in ["json-file", "local"] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = big_log(dir.path(), driver);
        assert!(nth(&cfg, 2).exists(), "{driver}: three files");
        for p in [nth(&cfg, 1), nth(&cfg, 2)] {
            assert!(
                std::fs::metadata(idx(&p)).unwrap().len() >= 32 * 3,
                "{driver}: checkpoints in {p:?}"
            );
        }
        check_answers(&cfg, &answers(&cfg), driver);
    }
}

#[test]
fn since_skips_the_start_of_the_file_via_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = big_log(dir.path(), "json-file");
    // Spoil the first entry of the live file: a read that starts at the top trips on it.
    let mut bytes = std::fs::read(&cfg.path).unwrap();
    bytes[1] = b'#';
    std::fs::write(&cfg.path, &bytes).unwrap();
    let mut r = Reader::open(
        &cfg,
        ReadOptions {
            since: Some(dt(15_500)),
            ..all()
        },
    )
    .unwrap();
    assert_eq!(
        numbers(&r.by_ref().map(|e| e.unwrap()).collect::<Vec<_>>()),
        (15_500..16_000).collect::<Vec<_>>()
    );
    assert_eq!(r.skipped(), 0, "the index let the read start near 11,500");
    let mut r = Reader::open(&cfg, all()).unwrap();
    r.by_ref().for_each(drop);
    assert_eq!(r.skipped(), 1, "a full read does meet the spoilt entry");
}

#[test]
fn damaged_or_stale_indexes_change_nothing() {
    for driver in ["json-file", "local"] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = big_log(dir.path(), driver);
        let live_idx = std::fs::read(idx(&cfg.path)).unwrap();
        let rotated_idx = std::fs::read(idx(&nth(&cfg, 1))).unwrap();
        type Damage = Box<dyn Fn(&LogConfig)>;
        let damages: Vec<(&str, Damage)> = vec![
            (
                "missing",
                Box::new(|c| {
                    for p in [c.path.clone(), nth(c, 1), nth(c, 2)] {
                        std::fs::remove_file(idx(&p)).unwrap();
                    }
                }),
            ),
            ("torn", {
                let live_idx = live_idx.clone();
                Box::new(move |c| {
                    std::fs::write(idx(&c.path), &live_idx[..live_idx.len() - 13]).unwrap()
                })
            }),
            ("header only", {
                let live_idx = live_idx.clone();
                Box::new(move |c| std::fs::write(idx(&c.path), &live_idx[..32]).unwrap())
            }),
            (
                "garbage",
                Box::new(|c| std::fs::write(idx(&c.path), vec![0x5a; 4096]).unwrap()),
            ),
            // a crash between renaming the log and its index: the live log's index
            // describes the rotated file
            ("stale after rotation", {
                let rotated_idx = rotated_idx.clone();
                Box::new(move |c| std::fs::write(idx(&c.path), &rotated_idx).unwrap())
            }),
            // checkpoints that point between entries: shift every offset by one
            ("shifted records", {
                let live_idx = live_idx.clone();
                Box::new(move |c| {
                    let mut b = live_idx.clone();
                    for rec in b[32..].chunks_exact_mut(32) {
                        let off = u64::from_le_bytes(rec[..8].try_into().unwrap()) + 1;
                        rec[..8].copy_from_slice(&off.to_le_bytes());
                    }
                    std::fs::write(idx(&c.path), b).unwrap()
                })
            }),
        ];
        for (what, damage) in &damages {
            let dir = tempfile::tempdir().unwrap();
            let c = big_log(dir.path(), driver);
            std::fs::copy(idx(&c.path), idx(&c.path.with_extension("log.orig"))).unwrap();
            damage(&c);
            check_answers(&c, &answers(&c), &format!("{driver} {what}"));
            // the writer rebuilds it, and appending goes on correctly
            let mut w = Writer::open(&c).unwrap();
            let rebuilt = std::fs::read(idx(&c.path)).unwrap();
            let original = std::fs::read(idx(&c.path.with_extension("log.orig"))).unwrap();
            assert_eq!(
                rebuilt[32..],
                original[32..],
                "{driver} {what}: rebuilt as written"
            );
            write_numbered(&mut w, 16_000..16_010);
            drop(w);
            let tail = numbers(&read(
                &c,
                ReadOptions {
                    tail: Some(15),
                    ..all()
                },
            ));
            assert_eq!(
                tail,
                (15_995..16_010).collect::<Vec<_>>(),
                "{driver} {what}"
            );
        }
        let _ = cfg;
    }
}

#[test]
fn log_truncated_by_a_crash_under_a_longer_index() {
    for driver in ["json-file", "local"] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = big_log(dir.path(), driver);
        let everything = numbers(&read(&cfg, all()));
        // lose the second half of the live file, mid-entry, but keep its index
        let len = std::fs::metadata(&cfg.path).unwrap().len();
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&cfg.path)
            .unwrap();
        f.set_len(len / 2 + 3).unwrap();
        drop(f);
        let got = numbers(&read(&cfg, all()));
        let kept = &everything[..got.len()];
        assert_eq!(got, kept, "{driver}: a prefix survives");
        assert!(got.len() < everything.len() - 500);
        let last = *got.last().unwrap();
        let tail = numbers(&read(
            &cfg,
            ReadOptions {
                tail: Some(1000),
                ..all()
            },
        ));
        assert_eq!(tail, (last - 999..=last).collect::<Vec<_>>(), "{driver}");
        let since = numbers(&read(
            &cfg,
            ReadOptions {
                since: Some(dt(last - 10)),
                ..all()
            },
        ));
        assert_eq!(since, (last - 10..=last).collect::<Vec<_>>(), "{driver}");
    }
}
