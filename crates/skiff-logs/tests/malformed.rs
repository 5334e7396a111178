//! Malformed and corrupt logs: skipped and counted, never a panic.

mod common;

use std::path::PathBuf;

use common::*;
use skiff_logs::{LogConfig, ReadOptions, Reader, Writer};

fn read_counting(cfg: &LogConfig, opts: ReadOptions) -> (Vec<u64>, u64) {
    let mut r = Reader::open(cfg, opts).unwrap();
    let got = numbers(&r.by_ref().map(|e| e.unwrap()).collect::<Vec<_>>());
    (got, r.skipped())
}

#[test]
fn torn_and_foreign_json_lines_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg(
        dir.path(),
        "json-file",
        &[("max-size", "1k"), ("max-file", "5")],
    );
    write_numbered(&mut Writer::open(&cfg).unwrap(), 0..30);
    let rotated: PathBuf = format!("{}.1", cfg.path.display()).into();
    // a rotated file that ends in a torn line (a crash mid-write, then rotation)
    let mut r1 = std::fs::read(&rotated).unwrap();
    let last_line = r1[..r1.len() - 1].rsplit(|&b| b == b'\n').next().unwrap();
    let torn: u64 = std::str::from_utf8(&last_line[13..19])
        .unwrap()
        .parse()
        .unwrap();
    let keep = r1.len() - 30;
    r1.truncate(keep);
    std::fs::write(&rotated, &r1).unwrap();
    // junk lines in the live file: not JSON, a wrong stream, a bad time, binary
    let mut live = std::fs::read(&cfg.path).unwrap();
    let mut junk = b"not json at all\n{\"log\":\"x\\n\",\"stream\":\"stdin\",\"time\":\"2025-01-01T00:00:00Z\"}\n".to_vec();
    junk.extend_from_slice(
        b"{\"log\":\"x\\n\",\"stream\":\"stdout\",\"time\":\"yesterday\"}\n\x00\xff\xfe\n",
    );
    junk.extend_from_slice(&live);
    live = junk;
    std::fs::write(&cfg.path, &live).unwrap();

    let (got, skipped) = read_counting(&cfg, all());
    assert_eq!(skipped, 5, "the torn line and four junk lines");
    let want: Vec<u64> = (got[0]..30).filter(|&n| n != torn).collect();
    assert_eq!(got, want);
}

#[test]
fn corrupt_local_frames_resynchronise() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg(dir.path(), "local", &[]);
    write_numbered(&mut Writer::open(&cfg).unwrap(), 0..100);
    let mut bytes = std::fs::read(&cfg.path).unwrap();
    // smash the header of entry 10 (frames are 32 bytes) and append a torn frame
    bytes[10 * 32 + 4] = 0;
    bytes.extend_from_within(..20);
    std::fs::write(&cfg.path, &bytes).unwrap();
    let (got, skipped) = read_counting(&cfg, all());
    let want: Vec<u64> = (0..100).filter(|&n| n != 10).collect();
    assert_eq!(got, want);
    assert!(skipped >= 1);
    let (tail, _) = read_counting(
        &cfg,
        ReadOptions {
            tail: Some(3),
            ..all()
        },
    );
    assert_eq!(tail, [97, 98, 99]);

    // a length field hit near the end claims more bytes than the file has: the frames
    // after it are still read, and a reopening writer keeps them
    let mut bytes = std::fs::read(&cfg.path).unwrap();
    bytes.truncate(100 * 32);
    bytes[95 * 32] = 0xff;
    std::fs::write(&cfg.path, &bytes).unwrap();
    let want: Vec<u64> = (0..100).filter(|&n| n != 10 && n != 95).collect();
    assert_eq!(read_counting(&cfg, all()).0, want);
    drop(Writer::open(&cfg).unwrap());
    assert_eq!(std::fs::metadata(&cfg.path).unwrap().len(), 100 * 32);
    assert_eq!(
        read_counting(
            &cfg,
            ReadOptions {
                tail: Some(2),
                ..all()
            }
        )
        .0,
        [98, 99]
    );
}

/// A small deterministic PRNG (xorshift).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[test]
fn random_corruption_never_panics() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for driver in ["json-file", "local"] {
        for round in 0..40 {
            let dir = tempfile::tempdir().unwrap();
            let cfg = cfg(
                dir.path(),
                driver,
                &[("max-size", "100k"), ("max-file", "3")],
            );
            write_numbered(&mut Writer::open(&cfg).unwrap(), 0..5_000);
            // damage a random file (log or index) in a random way
            let mut files: Vec<PathBuf> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            files.sort();
            for _ in 0..3 {
                let f = &files[rng.below(files.len() as u64) as usize];
                let mut b = std::fs::read(f).unwrap();
                if b.is_empty() {
                    continue;
                }
                match rng.below(4) {
                    0 => b.truncate(rng.below(b.len() as u64) as usize),
                    1 => {
                        for _ in 0..20 {
                            let i = rng.below(b.len() as u64) as usize;
                            b[i] = rng.next() as u8;
                        }
                    }
                    2 => {
                        let at = rng.below(b.len() as u64) as usize;
                        let len = (rng.below(300) as usize).min(b.len() - at);
                        b[at..at + len].fill(0);
                    }
                    _ => {
                        let at = rng.below(b.len() as u64) as usize;
                        b.splice(at..at, (0..rng.below(100)).map(|_| rng.next() as u8));
                    }
                }
                std::fs::write(f, b).unwrap();
            }
            let opts = [
                all(),
                ReadOptions {
                    tail: Some(rng.below(6_000) as usize),
                    ..all()
                },
                ReadOptions {
                    since: Some(dt(rng.below(5_000))),
                    until: Some(dt(rng.below(5_000))),
                    ..all()
                },
            ];
            for o in opts {
                let mut r = Reader::open(&cfg, o).unwrap();
                let mut n = 0;
                for e in r.by_ref() {
                    e.unwrap();
                    n += 1;
                }
                assert!(n <= 5_000 + 100, "{driver} round {round}");
            }
            // the writer recovers and appends readable entries
            let mut w = Writer::open(&cfg).unwrap();
            w.write(skiff_logs::Stream::Stdout, b"line 999999\n", t(9_999))
                .unwrap();
            drop(w);
            let last = read(
                &cfg,
                ReadOptions {
                    tail: Some(1),
                    ..all()
                },
            );
            assert_eq!(last[0].line, b"line 999999\n", "{driver} round {round}");
        }
    }
}
