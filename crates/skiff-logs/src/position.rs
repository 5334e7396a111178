//! Where a read starts: `tail` (the last N entries over all files, newest file backwards)
//! and `since` (per file, by binary search over the index's max times).

use std::collections::VecDeque;

use crate::error::LogError;
use crate::files::Opened;
use crate::format::Format;
use crate::index::{load, read_index_file, Record};
use crate::scan::{is_boundary, Item, Scanner};

/// The checked checkpoints of one file (at least the implicit one at offset 0).
pub(crate) fn records(fmt: Format, f: &Opened) -> Vec<Record> {
    load(&read_index_file(&f.path), &f.file, f.len, fmt)
}

fn scanner(fmt: Format, f: &Opened, offset: u64) -> Result<Scanner, LogError> {
    let file = f.file.try_clone().map_err(LogError::io("open", &f.path))?;
    Ok(Scanner::new(file, f.path.clone(), fmt, offset))
}

/// Entries from `offset` to the end of the file: how many, the offsets of the last
/// `keep`, and where the last complete one ends.
fn scan_from(
    fmt: Format,
    f: &Opened,
    offset: u64,
    keep: usize,
) -> Result<(u64, VecDeque<u64>, u64), LogError> {
    let mut scan = scanner(fmt, f, offset)?;
    let mut count = 0;
    let mut ring = VecDeque::new();
    let mut end = offset;
    while let Some(item) = scan.next_unit()? {
        if let Item::Entry(off, bytes) = item {
            count += 1;
            end = off + bytes.len() as u64;
            if keep > 0 {
                if ring.len() == keep {
                    ring.pop_front();
                }
                ring.push_back(off);
            }
        }
    }
    Ok((count, ring, end))
}

/// The offset after skipping `n` entries from `offset`.
fn skip_entries(fmt: Format, f: &Opened, offset: u64, n: u64) -> Result<u64, LogError> {
    let mut scan = scanner(fmt, f, offset)?;
    let mut left = n;
    while left > 0 {
        match scan.next_unit()? {
            Some(Item::Entry(..)) => left -= 1,
            Some(Item::Skip) => {}
            None => break,
        }
    }
    Ok(scan.offset())
}

/// The last `need` entries of one file: `Ok(Ok(offset))` where they start, or
/// `Ok(Err(count))` when the file holds only `count` ≤ `need` entries.
fn tail_in_file(fmt: Format, f: &Opened, need: u64) -> Result<Result<u64, u64>, LogError> {
    let mut recs = records(fmt, f);
    while recs.len() > 1 && !is_boundary(fmt, &f.file, recs[recs.len() - 1].offset, f.len) {
        recs.pop();
    }
    let last = recs[recs.len() - 1];
    let keep = usize::try_from(need).unwrap_or(usize::MAX).min(1 << 20);
    let (count, ring, end) = scan_from(fmt, f, last.offset, keep)?;
    if need == 0 {
        return Ok(Ok(end));
    }
    if count >= need && ring.len() as u64 == need {
        return Ok(Ok(ring[0]));
    }
    let total = last.count + count;
    if total <= need {
        return Ok(Err(total));
    }
    let target = total - need;
    let mut i = recs.partition_point(|r| r.count <= target) - 1;
    if !is_boundary(fmt, &f.file, recs[i].offset, f.len) {
        i = 0;
    }
    let r = recs[i];
    Ok(Ok(skip_entries(fmt, f, r.offset, target - r.count)?))
}

/// The start of the last `n` entries over `files` (oldest first): the index of the first
/// file to read and the offset in it.
pub(crate) fn tail_start(fmt: Format, files: &[Opened], n: u64) -> Result<(usize, u64), LogError> {
    let mut need = n;
    for (i, f) in files.iter().enumerate().rev() {
        match tail_in_file(fmt, f, need)? {
            Ok(offset) => return Ok((i, offset)),
            Err(count) => need -= count,
        }
        if need == 0 {
            return Ok((i, 0));
        }
    }
    Ok((0, 0))
}

/// An offset of `f` before which every entry is older than `since` (nanoseconds).
pub(crate) fn since_start(fmt: Format, f: &Opened, since: i64) -> u64 {
    let recs = records(fmt, f);
    let i = recs
        .partition_point(|r| r.max_time < since)
        .saturating_sub(1);
    let r = recs[i];
    if is_boundary(fmt, &f.file, r.offset, f.len) {
        r.offset
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::config::{LogConfig, Stream};
    use crate::files::open_all;
    use crate::scan::BYTES_READ;
    use crate::writer::Writer;

    /// A 20,000-line json-file log (about 1.5 MB), line i at second i.
    fn log(dir: &std::path::Path) -> LogConfig {
        let cfg = LogConfig::from_opts("json-file", &Default::default(), dir.join("log")).unwrap();
        let mut w = Writer::open(&cfg).unwrap();
        for i in 0..20_000u64 {
            let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000 + i);
            w.write(Stream::Stdout, format!("line {i:08}\n").as_bytes(), t)
                .unwrap();
        }
        cfg
    }

    fn measured<T>(f: impl FnOnce() -> T) -> (T, u64) {
        BYTES_READ.with(|c| c.set(0));
        let out = f();
        (out, BYTES_READ.with(|c| c.get()))
    }

    fn entry_index(files: &[Opened], offset: u64) -> u64 {
        // every line has the same length
        let line_len = std::fs::read(&files[0].path)
            .unwrap()
            .iter()
            .position(|&b| b == b'\n')
            .unwrap() as u64
            + 1;
        offset / line_len
    }

    #[test]
    fn tail_and_since_read_a_bounded_part_with_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = log(dir.path());
        let files = open_all(&cfg.path).unwrap();
        let size = files[0].len;
        assert!(size > 1_000_000);
        for n in [0u64, 10, 15_000] {
            let ((i, off), read) = measured(|| tail_start(Format::Json, &files, n).unwrap());
            assert_eq!((i, entry_index(&files, off)), (0, 20_000 - n));
            assert!(read < 400_000, "tail {n} read {read} of {size} bytes");
        }
        let since = 1_700_000_000_000_000_000 + 12_345 * 1_000_000_000;
        let (off, read) = measured(|| since_start(Format::Json, &files[0], since));
        let first = entry_index(&files, off);
        assert!(
            first <= 12_345 && 12_345 - first < 1_000,
            "since starts at entry {first}"
        );
        assert_eq!(
            read, 0,
            "since only reads the index and checks one boundary"
        );

        // Without the index: still right, but the whole file is read.
        std::fs::remove_file(crate::index::index_path(&cfg.path)).unwrap();
        let ((_, off), read) = measured(|| tail_start(Format::Json, &files, 15_000).unwrap());
        assert_eq!(entry_index(&files, off), 5_000);
        assert!(read >= size, "a scan without index reads everything");
        assert_eq!(since_start(Format::Json, &files[0], since), 0);
    }

    #[test]
    fn checkpoints_off_entry_boundaries_are_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = log(dir.path());
        let files = open_all(&cfg.path).unwrap();
        let good = records(Format::Json, &files[0]);
        assert!(good.len() > 10);
        // well-formed records (right check values) that point one byte into an entry
        let shifted: Vec<Record> = good
            .iter()
            .enumerate()
            .map(|(i, r)| Record {
                offset: r.offset + u64::from(i > 0),
                ..*r
            })
            .collect();
        let idx = crate::index::index_path(&cfg.path);
        crate::index::IndexWriter::create(idx, &files[0].file, Format::Json, &shifted).unwrap();
        assert_eq!(
            records(Format::Json, &files[0]).len(),
            good.len(),
            "they load"
        );
        let line_len = files[0].len / 20_000;
        for n in [10u64, 15_000] {
            let (_, off) = tail_start(Format::Json, &files, n).unwrap();
            assert_eq!(off, (20_000 - n) * line_len, "tail {n}");
        }
        let off = since_start(
            Format::Json,
            &files[0],
            1_700_000_000_000_000_000 + 12_345 * 1_000_000_000,
        );
        assert_eq!(off % line_len, 0, "since starts on an entry");
    }
}
