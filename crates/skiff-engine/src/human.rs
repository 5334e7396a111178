//! Docker's human-readable sizes and durations (go-units), so output matches `docker`.

/// `units.HumanSizeWithPrecision(size, 3)`: decimal units, three significant digits.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    format!("{}{}", sig3(v), UNITS[i])
}

/// `units.HumanSize`: decimal units, four significant digits (as `system df` and `prune`
/// totals print).
pub fn size4(bytes: u64) -> String {
    scaled(
        bytes as f64,
        1000.0,
        &["B", "kB", "MB", "GB", "TB", "PB", "EB"],
    )
}

/// `units.BytesSize`: binary units, four significant digits (as `stats` prints memory).
pub fn bytes_size(bytes: f64) -> String {
    scaled(
        bytes,
        1024.0,
        &["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"],
    )
}

/// Go's `%.4g` of `v` scaled down by `base` to its unit.
fn scaled(mut v: f64, base: f64, units: &[&str]) -> String {
    let mut i = 0;
    while v >= base && i < units.len() - 1 {
        v /= base;
        i += 1;
    }
    let digits = if v >= 1000.0 {
        0
    } else if v >= 100.0 {
        1
    } else if v >= 10.0 {
        2
    } else {
        3
    };
    let s = format!("{v:.digits$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{}", units[i])
}

/// Go's `%.3g` for values below 1000.
fn sig3(v: f64) -> String {
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// `units.HumanDuration`.
pub fn duration(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    let mins = secs / 60;
    let hours = (d.as_secs_f64() / 3600.0).round() as u64;
    if secs < 1 {
        "Less than a second".into()
    } else if secs == 1 {
        "1 second".into()
    } else if secs < 60 {
        format!("{secs} seconds")
    } else if mins == 1 {
        "About a minute".into()
    } else if mins < 60 {
        format!("{mins} minutes")
    } else if hours == 1 {
        "About an hour".into()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", hours / 24 / 365)
    }
}

/// "3 days ago" from an RFC 3339 time; "N/A" when absent or unparsable.
pub fn ago(rfc3339: Option<&str>) -> String {
    let Some(t) = rfc3339.and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok()) else {
        return "N/A".into();
    };
    let d = chrono::Utc::now().signed_duration_since(t.with_timezone(&chrono::Utc));
    format!("{} ago", duration(d.to_std().unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn four_digit_sizes() {
        assert_eq!(size4(0), "0B");
        assert_eq!(size4(1234), "1.234kB");
        assert_eq!(size4(163_000_000), "163MB");
        assert_eq!(bytes_size(1536.0), "1.5KiB");
        assert_eq!(bytes_size(1023.0 * 1024.0), "1023KiB");
        assert_eq!(bytes_size(0.0), "0B");
    }

    #[test]
    fn sizes_like_docker() {
        assert_eq!(size(0), "0B");
        assert_eq!(size(999), "999B");
        assert_eq!(size(4_261_000), "4.26MB");
        assert_eq!(size(1_990_000), "1.99MB");
        assert_eq!(size(123_456), "123kB");
        assert_eq!(size(5_500_000), "5.5MB");
        assert_eq!(size(77_800_000_000), "77.8GB");
    }

    #[test]
    fn durations_like_docker() {
        assert_eq!(duration(Duration::from_millis(10)), "Less than a second");
        assert_eq!(duration(Duration::from_secs(45)), "45 seconds");
        assert_eq!(duration(Duration::from_secs(90)), "About a minute");
        assert_eq!(duration(Duration::from_secs(3600)), "About an hour");
        assert_eq!(duration(Duration::from_secs(5 * 86400)), "5 days");
        assert_eq!(duration(Duration::from_secs(21 * 86400)), "3 weeks");
        assert_eq!(duration(Duration::from_secs(120 * 86400)), "4 months");
    }
}
