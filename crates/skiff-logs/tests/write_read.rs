//! Writing and reading back: line splitting, partials, flush, escaping, local, none.

mod common;

use common::*;
use skiff_logs::{LogEntry, ReadOptions, Reader, Stream, Writer};

/// Docker splits lines at 16 KiB.
const MAX_PIECE: usize = 16 * 1024;

#[test]
fn lines_split_across_chunks_and_streams() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg(dir.path(), "json-file", &[]);
    let mut w = Writer::open(&cfg).unwrap();
    w.write(Stream::Stdout, b"a\nb", t(0)).unwrap();
    w.write(Stream::Stderr, b"x", t(1)).unwrap();
    w.write(Stream::Stdout, b"c\n", t(2)).unwrap();
    w.write(Stream::Stderr, b"y\nz\n\n", t(3)).unwrap();
    let got = read(&cfg, all());
    let want = [
        (Stream::Stdout, "a\n", 0),
        (Stream::Stdout, "bc\n", 2),
        (Stream::Stderr, "xy\n", 3),
        (Stream::Stderr, "z\n", 3),
        (Stream::Stderr, "\n", 3),
    ];
    assert_eq!(got.len(), want.len(), "{got:?}");
    for (e, (s, l, i)) in got.iter().zip(want) {
        assert_eq!(
            (e.stream, e.line.as_slice(), e.time, e.partial),
            (s, l.as_bytes(), dt(i), false)
        );
    }
    let raw = std::fs::read_to_string(&cfg.path).unwrap();
    assert_eq!(
        raw.lines().next().unwrap(),
        r#"{"log":"a\n","stream":"stdout","time":"2025-11-28T17:55:06Z"}"#
    );
    // stream filters
    let only_err = read(
        &cfg,
        ReadOptions {
            stdout: false,
            ..all()
        },
    );
    assert_eq!(texts(&only_err), ["xy\n", "z\n", "\n"]);
    assert!(read(
        &cfg,
        ReadOptions {
            stdout: false,
            stderr: false,
            ..all()
        }
    )
    .is_empty());
}

#[test]
fn long_lines_are_written_in_16k_partials() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg(dir.path(), "json-file", &[]);
    let mut w = Writer::open(&cfg).unwrap();
    let line: Vec<u8> = (0..40_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    w.write(Stream::Stdout, &line[..100], t(5)).unwrap();
    w.write(Stream::Stdout, &line[100..30_000], t(6)).unwrap();
    w.write(Stream::Stdout, &line[30_000..], t(7)).unwrap();
    w.write(Stream::Stdout, b"\nnext\n", t(8)).unwrap();
    let got = read(&cfg, all());
    assert_eq!(got.len(), 4);
    assert_eq!(got[0].line.len(), MAX_PIECE);
    assert_eq!(got[1].line.len(), MAX_PIECE);
    assert_eq!(got[2].line.len(), 40_000 - 2 * MAX_PIECE + 1);
    assert_eq!(
        (got[0].partial, got[1].partial, got[2].partial),
        (true, true, false)
    );
    // Docker stamps every piece with the time of the first
    assert!(got[..3].iter().all(|e| e.time == dt(6)));
    let joined: Vec<u8> = got[..3].iter().flat_map(|e| e.line.clone()).collect();
    assert_eq!(&joined[..40_000], &line[..]);
    assert_eq!(got[3].line, b"next\n");
    assert_eq!(got[3].time, dt(8));
    // on disk: a partial's "log" has no trailing \n
    let raw = std::fs::read_to_string(&cfg.path).unwrap();
    let on_disk: Vec<&str> = raw.lines().collect();
    assert!(!on_disk[0].contains(r#"\n","stream""#));
    assert!(!on_disk[1].contains(r#"\n","stream""#));
    assert!(on_disk[2].contains(r#"\n","stream""#));
}

#[test]
fn unterminated_tail_waits_then_is_flushed_as_partial() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg(dir.path(), "json-file", &[]);
    let mut w = Writer::open(&cfg).unwrap();
    w.write(Stream::Stdout, b"done\nno newline", t(1)).unwrap();
    w.write(Stream::Stderr, b"err tail", t(2)).unwrap();
    assert_eq!(texts(&read(&cfg, all())), ["done\n"]);
    w.flush().unwrap();
    let got = read(&cfg, all());
    assert_eq!(texts(&got), ["done\n", "no newline", "err tail"]);
    assert!(got[1].partial && got[2].partial);
    assert_eq!(
        (got[1].stream, got[2].stream),
        (Stream::Stdout, Stream::Stderr)
    );
    assert_eq!((got[1].time, got[2].time), (dt(1), dt(2)));
    // dropping flushes too
    w.write(Stream::Stdout, b"last words", t(3)).unwrap();
    drop(w);
    assert_eq!(texts(&read(&cfg, all())).last().unwrap(), "last words");
}

#[test]
fn json_escaping_of_control_chars_and_invalid_utf8() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg(dir.path(), "json-file", &[]);
    let mut w = Writer::open(&cfg).unwrap();
    w.write(
        Stream::Stdout,
        b"\x1b[1m\t\"q\"\\ <a&b>\x00 \xff\xfe caf\xc3\xa9\r\n",
        t(0),
    )
    .unwrap();
    let raw = std::fs::read_to_string(&cfg.path).unwrap();
    assert_eq!(
        raw,
        "{\"log\":\"\\u001b[1m\\u0009\\\"q\\\"\\\\ \\u003ca\\u0026b\\u003e\\u0000 \\ufffd\\ufffd caf\u{e9}\\r\\n\",\
         \"stream\":\"stdout\",\"time\":\"2025-11-28T17:55:06Z\"}\n"
    );
    let got = read(&cfg, all());
    assert_eq!(
        got[0].line,
        "\x1b[1m\t\"q\"\\ <a&b>\0 \u{fffd}\u{fffd} caf\u{e9}\r\n".as_bytes()
    );
}

#[test]
fn local_driver_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg(dir.path(), "local", &[]);
    assert_eq!(cfg.max_size, Some(20 * 1024 * 1024));
    let mut w = Writer::open(&cfg).unwrap();
    let long = vec![b'z'; MAX_PIECE + 10];
    w.write(Stream::Stdout, b"bin \xff\x00 kept\n", t(1))
        .unwrap();
    w.write(Stream::Stderr, &long, t(2)).unwrap();
    w.write(Stream::Stderr, b"\n", t(3)).unwrap();
    write_numbered(&mut w, 10..1010);
    w.write(Stream::Stdout, b"tail", t(2000)).unwrap();
    w.flush().unwrap();
    let got = read(&cfg, all());
    assert_eq!(got.len(), 3 + 1000 + 1);
    assert_eq!(got[0].line, b"bin \xff\x00 kept\n", "local keeps raw bytes");
    assert_eq!(
        (got[1].line.len(), got[1].partial, got[1].stream),
        (MAX_PIECE, true, Stream::Stderr)
    );
    assert_eq!(
        (got[2].line.len(), got[2].partial, got[2].time),
        (11, false, dt(2))
    );
    assert_eq!(numbers(&got[3..1003]), (10..1010).collect::<Vec<_>>());
    assert_eq!(
        got[1003],
        LogEntry {
            stream: Stream::Stdout,
            time: dt(2000),
            line: b"tail".to_vec(),
            partial: true
        }
    );
    assert_eq!(
        numbers(
            &read(
                &cfg,
                ReadOptions {
                    tail: Some(3),
                    ..all()
                }
            )[..2]
        ),
        [1008, 1009]
    );
    let since = read(
        &cfg,
        ReadOptions {
            since: Some(dt(1000)),
            until: Some(dt(1005)),
            ..all()
        },
    );
    assert_eq!(numbers(&since), (1000..=1005).collect::<Vec<_>>());
    assert!(
        !std::fs::read(&cfg.path).unwrap().starts_with(b"{"),
        "not json"
    );
}

#[test]
fn none_driver_discards_and_refuses_reading() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg(dir.path(), "none", &[]);
    let mut w = Writer::open(&cfg).unwrap();
    w.write(Stream::Stdout, b"gone\n", t(0)).unwrap();
    w.flush().unwrap();
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    let err = Reader::open(&cfg, all()).err().unwrap();
    assert_eq!(
        err.to_string(),
        "configured logging driver does not support reading"
    );
}

#[test]
fn reopening_appends_after_cutting_a_torn_tail() {
    for driver in ["json-file", "local"] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = cfg(dir.path(), driver, &[]);
        write_numbered(&mut Writer::open(&cfg).unwrap(), 0..100);
        // a crash mid-write leaves half an entry
        let mut bytes = std::fs::read(&cfg.path).unwrap();
        let whole = bytes.len();
        bytes.extend_from_within(..20);
        std::fs::write(&cfg.path, &bytes).unwrap();
        write_numbered(&mut Writer::open(&cfg).unwrap(), 100..200);
        let mut r = Reader::open(&cfg, all()).unwrap();
        let got: Vec<LogEntry> = r.by_ref().map(|e| e.unwrap()).collect();
        assert_eq!(numbers(&got), (0..200).collect::<Vec<_>>(), "{driver}");
        assert_eq!(r.skipped(), 0, "{driver}: the torn bytes were cut off");
        assert_eq!(
            std::fs::read(&cfg.path).unwrap().len(),
            2 * whole,
            "{driver}"
        );
    }
}

#[test]
fn missing_log_reads_empty() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg(dir.path(), "json-file", &[]);
    assert!(read(&cfg, all()).is_empty());
    assert!(read(
        &cfg,
        ReadOptions {
            tail: Some(5),
            since: Some(dt(0)),
            ..all()
        }
    )
    .is_empty());
}

#[test]
fn reopening_keeps_a_large_unreadable_tail() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg(dir.path(), "json-file", &[]);
    write_numbered(&mut Writer::open(&cfg).unwrap(), 0..10);
    // not a torn entry: megabytes of something else, without a final newline
    let mut bytes = std::fs::read(&cfg.path).unwrap();
    let foreign = vec![b'x'; 2 << 20];
    bytes.extend_from_slice(&foreign);
    std::fs::write(&cfg.path, &bytes).unwrap();
    write_numbered(&mut Writer::open(&cfg).unwrap(), 10..20);
    assert_eq!(
        std::fs::read(&cfg.path).unwrap()[..bytes.len()],
        bytes[..],
        "nothing deleted"
    );
    let mut r = Reader::open(&cfg, all()).unwrap();
    let got: Vec<LogEntry> = r.by_ref().map(|e| e.unwrap()).collect();
    assert_eq!(numbers(&got), (0..20).collect::<Vec<_>>());
    assert_eq!(r.skipped(), 1);
    let tail = read(
        &cfg,
        ReadOptions {
            tail: Some(12),
            ..all()
        },
    );
    assert_eq!(
        numbers(&tail),
        (9..20).collect::<Vec<_>>(),
        "the foreign line counts as one"
    );
}
