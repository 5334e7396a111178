//! Rotation with max-size / max-file, and tail across rotated files.

mod common;

use common::*;
use skiff_logs::{ReadOptions, Writer};

fn nth(cfg: &skiff_logs::LogConfig, n: u32) -> std::path::PathBuf {
    let mut s = cfg.path.clone().into_os_string();
    s.push(format!(".{n}"));
    s.into()
}

#[test]
fn rotation_keeps_max_file_files_and_drops_the_oldest() {
    for driver in ["json-file", "local"] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = cfg(dir.path(), driver, &[("max-size", "2k"), ("max-file", "3")]);
        let mut w = Writer::open(&cfg).unwrap();
        write_numbered(&mut w, 0..300);
        assert!(
            cfg.path.exists() && nth(&cfg, 1).exists() && nth(&cfg, 2).exists(),
            "{driver}"
        );
        assert!(
            !nth(&cfg, 3).exists(),
            "{driver}: only max-file files are kept"
        );
        for n in [1, 2] {
            let len = std::fs::metadata(nth(&cfg, n)).unwrap().len();
            // rotated once the file reached max-size: at least 2000 bytes, less than one entry more
            assert!((2000..2100).contains(&len), "{driver}: {len}");
            let mut idx = nth(&cfg, n).into_os_string();
            idx.push(".idx");
            assert!(
                std::path::Path::new(&idx).exists(),
                "{driver}: the index moves with its file"
            );
        }
        let got = numbers(&read(&cfg, all()));
        let first = got[0];
        assert!(first > 0, "{driver}: the oldest lines were dropped");
        assert_eq!(
            got,
            (first..300).collect::<Vec<_>>(),
            "{driver}: contiguous, newest last"
        );
    }
}

#[test]
fn tail_across_rotated_files() {
    for driver in ["json-file", "local"] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = cfg(dir.path(), driver, &[("max-size", "4k"), ("max-file", "4")]);
        let mut w = Writer::open(&cfg).unwrap();
        write_numbered(&mut w, 0..400);
        let everything = numbers(&read(&cfg, all()));
        let live = read_live_count(&cfg, driver);
        for n in [
            0,
            1,
            7,
            live,
            live + 1,
            live + 30,
            everything.len() - 1,
            everything.len(),
            10_000,
        ] {
            let got = numbers(&read(
                &cfg,
                ReadOptions {
                    tail: Some(n),
                    ..all()
                },
            ));
            let want = &everything[everything.len().saturating_sub(n)..];
            assert_eq!(got, want, "{driver} tail {n}");
        }
        // tail counts both streams, then the stream filter applies (as Docker)
        let got = read(
            &cfg,
            ReadOptions {
                tail: Some(6),
                stdout: false,
                ..all()
            },
        );
        let want: Vec<u64> = everything[everything.len() - 6..]
            .iter()
            .copied()
            .filter(|i| i % 3 == 0)
            .collect();
        assert_eq!(numbers(&got), want, "{driver}");
        // tail then since
        let got = numbers(&read(
            &cfg,
            ReadOptions {
                tail: Some(50),
                since: Some(dt(380)),
                ..all()
            },
        ));
        assert_eq!(got, (380..400).collect::<Vec<_>>(), "{driver}");
    }
}

fn read_live_count(cfg: &skiff_logs::LogConfig, driver: &str) -> usize {
    let bytes = std::fs::read(&cfg.path).unwrap();
    if driver == "json-file" {
        bytecount(&bytes)
    } else {
        // every numbered local frame is 16 + 12 + 4 bytes
        bytes.len() / 32
    }
}

fn bytecount(b: &[u8]) -> usize {
    b.iter().filter(|&&c| c == b'\n').count()
}

#[test]
fn max_file_one_truncates_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg(dir.path(), "json-file", &[("max-size", "1k")]);
    let mut w = Writer::open(&cfg).unwrap();
    write_numbered(&mut w, 0..105);
    assert!(!nth(&cfg, 1).exists());
    assert!(std::fs::metadata(&cfg.path).unwrap().len() < 1100);
    let got = numbers(&read(&cfg, all()));
    assert_eq!(*got.last().unwrap(), 104);
    assert_eq!(got, (got[0]..105).collect::<Vec<_>>());
    assert!(got.len() < 20);
    assert_eq!(
        numbers(&read(
            &cfg,
            ReadOptions {
                tail: Some(2),
                ..all()
            }
        )),
        [103, 104]
    );
    assert!(got.len() >= 3, "{got:?}");
    let since = numbers(&read(
        &cfg,
        ReadOptions {
            since: Some(dt(got[1])),
            ..all()
        },
    ));
    assert_eq!(since, got[1..]);
}
