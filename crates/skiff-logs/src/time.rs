//! Timestamps: nanoseconds since the Unix epoch (i64, UTC) on disk, Go's RFC3339Nano in
//! json-file. Formatting and parsing are hand-written: they run once per log line.

use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};

/// Nanoseconds since the epoch, saturating outside 1677..2262.
pub(crate) fn system_time_nanos(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_nanos()).map_or(i64::MIN, |n| -n),
    }
}

/// Nanoseconds since the epoch of a chrono time, saturating.
pub(crate) fn datetime_nanos(t: &DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(if t.timestamp() < 0 {
        i64::MIN
    } else {
        i64::MAX
    })
}

/// The chrono time of nanoseconds since the epoch.
pub(crate) fn nanos_datetime(n: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(n)
}

/// Days from 0001-01-01 (chrono's day 1) to 1970-01-01.
const UNIX_EPOCH_DAYS_FROM_CE: i64 = 719_163;

/// Makes chrono times from nanoseconds, remembering the last day's date: consecutive log
/// entries are mostly on the same day, and the calendar arithmetic is the costly part.
#[derive(Default)]
pub(crate) struct DayCache {
    day: i64,
    date: Option<NaiveDate>,
}

impl DayCache {
    pub(crate) fn datetime(&mut self, nanos: i64) -> DateTime<Utc> {
        let secs = nanos.div_euclid(1_000_000_000);
        let sub = nanos.rem_euclid(1_000_000_000) as u32;
        let day = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400) as u32;
        if self.date.is_none() || self.day != day {
            self.day = day;
            self.date = i32::try_from(day + UNIX_EPOCH_DAYS_FROM_CE)
                .ok()
                .and_then(NaiveDate::from_num_days_from_ce_opt);
        }
        match (
            self.date,
            NaiveTime::from_num_seconds_from_midnight_opt(sod, sub),
        ) {
            (Some(d), Some(t)) => d.and_time(t).and_utc(),
            _ => nanos_datetime(nanos),
        }
    }
}

/// (year, month, day) of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Days since 1970-01-01 of a civil date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn push_digits(out: &mut Vec<u8>, v: u64, width: usize) {
    let mut buf = [b'0'; 20];
    let mut v = v;
    for i in (0..width).rev() {
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.extend_from_slice(&buf[..width]);
}

/// Appends Go's `time.RFC3339Nano` of a UTC time: fraction trimmed of trailing zeros and
/// left out when zero ("2026-11-28T17:55:06.12345Z"). With `fixed`, always nine digits
/// (Docker's `RFC3339NanoFixed`, used by `docker logs --timestamps`).
pub(crate) fn push_rfc3339_nano(out: &mut Vec<u8>, nanos: i64, fixed: bool) {
    let secs = nanos.div_euclid(1_000_000_000);
    let frac = nanos.rem_euclid(1_000_000_000) as u64;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u64;
    let (y, m, d) = civil_from_days(days);
    push_digits(out, y.clamp(0, 9999) as u64, 4);
    out.push(b'-');
    push_digits(out, u64::from(m), 2);
    out.push(b'-');
    push_digits(out, u64::from(d), 2);
    out.push(b'T');
    push_digits(out, sod / 3600, 2);
    out.push(b':');
    push_digits(out, sod / 60 % 60, 2);
    out.push(b':');
    push_digits(out, sod % 60, 2);
    if fixed || frac != 0 {
        out.push(b'.');
        let mut width = 9;
        let mut f = frac;
        if !fixed {
            while f.is_multiple_of(10) {
                f /= 10;
                width -= 1;
            }
        }
        push_digits(out, f, width);
    }
    out.push(b'Z');
}

/// The RFC3339Nano text of the last time formatted: the pieces of one read share a time.
#[derive(Default)]
pub(crate) struct TimeText {
    nanos: Option<i64>,
    text: Vec<u8>,
}

impl TimeText {
    pub(crate) fn get(&mut self, nanos: i64) -> &[u8] {
        if self.nanos != Some(nanos) {
            self.text.clear();
            push_rfc3339_nano(&mut self.text, nanos, false);
            self.nanos = Some(nanos);
        }
        &self.text
    }
}

/// Go's `time.RFC3339Nano` of a time, as json-file writes it.
pub fn format_rfc3339_nano(t: &DateTime<Utc>) -> String {
    let mut out = Vec::with_capacity(36);
    push_rfc3339_nano(&mut out, datetime_nanos(t), false);
    String::from_utf8(out).unwrap_or_default()
}

/// Docker's `RFC3339NanoFixed` (always nine fraction digits), as `docker logs -t` prints.
pub fn format_rfc3339_nano_fixed(t: &DateTime<Utc>) -> String {
    let mut out = Vec::with_capacity(36);
    push_rfc3339_nano(&mut out, datetime_nanos(t), true);
    String::from_utf8(out).unwrap_or_default()
}

fn digits(b: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

/// Parses an RFC 3339 time to nanoseconds since the epoch: a fast path for
/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, chrono for anything else (offsets).
pub(crate) fn parse_rfc3339(s: &[u8]) -> Option<i64> {
    if let Some(n) = parse_utc_fast(s) {
        return Some(n);
    }
    let s = std::str::from_utf8(s).ok()?;
    let t = DateTime::parse_from_rfc3339(s).ok()?;
    t.timestamp_nanos_opt()
}

fn parse_utc_fast(s: &[u8]) -> Option<i64> {
    if s.len() < 20
        || s[4] != b'-'
        || s[7] != b'-'
        || s[10] != b'T'
        || s[13] != b':'
        || s[16] != b':'
    {
        return None;
    }
    if *s.last()? != b'Z' {
        return None;
    }
    let y = digits(&s[0..4])?;
    let mo = digits(&s[5..7])?;
    let d = digits(&s[8..10])?;
    let h = digits(&s[11..13])?;
    let mi = digits(&s[14..16])?;
    let se = digits(&s[17..19])?;
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let frac = &s[19..s.len() - 1];
    let nanos = match frac {
        [] => 0,
        [b'.', f @ ..] if !f.is_empty() && f.len() <= 9 => {
            digits(f)? * 10u32.pow(9 - f.len() as u32)
        }
        _ => return None,
    };
    let days = days_from_civil(i64::from(y), mo, d);
    let secs = days * 86_400 + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(se);
    secs.checked_mul(1_000_000_000)?
        .checked_add(i64::from(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(n: i64) -> String {
        let mut v = Vec::new();
        push_rfc3339_nano(&mut v, n, false);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn formats_like_go_rfc3339nano() {
        assert_eq!(fmt(0), "1970-01-01T00:00:00Z");
        let t = DateTime::parse_from_rfc3339("2026-11-28T17:55:06.123456789Z").unwrap();
        let n = t.timestamp_nanos_opt().unwrap();
        assert_eq!(fmt(n), "2026-11-28T17:55:06.123456789Z");
        assert_eq!(
            fmt(n - 123_456_789 + 120_000_000),
            "2026-11-28T17:55:06.12Z"
        );
        assert_eq!(fmt(951_782_400_000_000_000), "2000-02-29T00:00:00Z");
        let mut v = Vec::new();
        push_rfc3339_nano(&mut v, 1_500_000_000, true);
        assert_eq!(v, b"1970-01-01T00:00:01.500000000Z");
    }

    #[test]
    fn day_cache_agrees_with_chrono() {
        let mut c = DayCache::default();
        for n in [
            0,
            1,
            -1,
            86_399_999_999_999,
            86_400_000_000_000,
            1_764_352_506_123_456_789,
            i64::MIN,
            i64::MAX,
        ] {
            assert_eq!(c.datetime(n), nanos_datetime(n), "{n}");
        }
    }

    #[test]
    fn parses_back_and_with_offsets() {
        for n in [
            0,
            1,
            999_999_999,
            1_764_352_506_123_456_789,
            951_782_400_000_000_000,
            -1_000,
        ] {
            let s = fmt(n);
            assert_eq!(parse_rfc3339(s.as_bytes()), Some(n), "{s}");
            let chrono = DateTime::parse_from_rfc3339(&s).unwrap();
            assert_eq!(chrono.timestamp_nanos_opt(), Some(n));
        }
        assert_eq!(parse_rfc3339(b"1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_rfc3339(b"1970-01-01T00:00:00.5Z"), Some(500_000_000));
        assert_eq!(parse_rfc3339(b"garbage"), None);
        assert_eq!(parse_rfc3339(b"1970-13-01T00:00:00Z"), None);
    }
}
