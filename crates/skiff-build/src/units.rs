//! Small value syntaxes Docker borrows from Go: durations (`time.ParseDuration`), memory
//! sizes (`go-units.RAMInBytes`), port specs (`go-connections/nat`) and signal names
//! (`moby/sys/signal`). Each behaves as its Go original, errors included.

/// Parses a Go duration (`1h2m3.5s`, `300ms`, `-1.5h`, `0`) into nanoseconds.
pub fn parse_go_duration(orig: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {orig:?}");
    let mut s = orig.as_bytes();
    let mut neg = false;
    if let Some(&c) = s.first() {
        if c == b'-' || c == b'+' {
            neg = c == b'-';
            s = &s[1..];
        }
    }
    if s == b"0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    const LIMIT: u64 = 1 << 63;
    let mut d: u64 = 0;
    while !s.is_empty() {
        if !(s[0] == b'.' || s[0].is_ascii_digit()) {
            return Err(invalid());
        }
        // The integer part.
        let mut v: u64 = 0;
        let digits = s.iter().take_while(|c| c.is_ascii_digit()).count();
        for &c in &s[..digits] {
            if v > (LIMIT - 1) / 10 {
                return Err(invalid());
            }
            v = v * 10 + u64::from(c - b'0');
            if v > LIMIT {
                return Err(invalid());
            }
        }
        let pre = digits > 0;
        s = &s[digits..];
        // The fraction.
        let (mut f, mut scale, mut post) = (0u64, 1f64, false);
        if s.first() == Some(&b'.') {
            s = &s[1..];
            let n = s.iter().take_while(|c| c.is_ascii_digit()).count();
            let mut overflow = false;
            for &c in &s[..n] {
                if overflow {
                    continue;
                }
                if f > (LIMIT - 1) / 10 {
                    overflow = true;
                    continue;
                }
                let y = f * 10 + u64::from(c - b'0');
                if y > LIMIT {
                    overflow = true;
                    continue;
                }
                f = y;
                scale *= 10.0;
            }
            post = n > 0;
            s = &s[n..];
        }
        if !pre && !post {
            return Err(invalid());
        }
        let ulen = s
            .iter()
            .take_while(|c| !(**c == b'.' || c.is_ascii_digit()))
            .count();
        if ulen == 0 {
            return Err(format!("time: missing unit in duration {orig:?}"));
        }
        let u = String::from_utf8_lossy(&s[..ulen]).into_owned();
        s = &s[ulen..];
        let unit: u64 = match u.as_str() {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(format!("time: unknown unit {u:?} in duration {orig:?}")),
        };
        if v > LIMIT / unit {
            return Err(invalid());
        }
        v *= unit;
        if f > 0 {
            v += (f as f64 * (unit as f64 / scale)) as u64;
            if v > LIMIT {
                return Err(invalid());
            }
        }
        d += v;
        if d > LIMIT {
            return Err(invalid());
        }
    }
    if neg {
        return Ok((d as i64).wrapping_neg());
    }
    if d > LIMIT - 1 {
        return Err(invalid());
    }
    Ok(d as i64)
}

/// Parses a size like `64m`, `1.5GiB`, `512 kb` into bytes (binary multiples).
pub fn parse_ram_bytes(s: &str) -> Result<u64, String> {
    let err = || format!("invalid size: '{s}'");
    let num_len = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, mut rest) = s.split_at(num_len);
    if num.is_empty() || !num.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(err());
    }
    if let Some(r) = rest.strip_prefix(' ') {
        rest = r;
    }
    let mut chars = rest.chars().peekable();
    let mut mul: u64 = 1;
    if let Some(c) = chars.peek().copied() {
        let m = match c.to_ascii_lowercase() {
            'k' => Some(1u64 << 10),
            'm' => Some(1 << 20),
            'g' => Some(1 << 30),
            't' => Some(1 << 40),
            'p' => Some(1 << 50),
            _ => None,
        };
        if let Some(m) = m {
            mul = m;
            chars.next();
        }
    }
    if matches!(chars.peek(), Some('i' | 'I')) {
        chars.next();
    }
    if matches!(chars.peek(), Some('b' | 'B')) {
        chars.next();
    }
    if chars.next().is_some() {
        return Err(err());
    }
    let v: f64 = num.parse().map_err(|_| err())?;
    Ok((v * mul as f64) as u64)
}

/// Expands one EXPOSE port spec into `port/proto` keys (`8000-8001/udp` gives two).
pub fn parse_port_spec(raw: &str) -> Result<Vec<String>, String> {
    let container = raw.rsplit(':').next().unwrap_or(raw);
    let (proto, port) = {
        let parts: Vec<&str> = container.split('/').collect();
        if container.is_empty() || parts[0].is_empty() {
            ("", "")
        } else if parts.len() == 1 || parts[1].is_empty() {
            ("tcp", parts[0])
        } else {
            (parts[1], parts[0])
        }
    };
    if port.is_empty() {
        return Err(format!("no port specified: {raw}<empty>"));
    }
    let bad = || format!("invalid containerPort: {port}");
    let (start, end) = match port.split_once('-') {
        None => {
            let p: u16 = port.parse().map_err(|_| bad())?;
            (p, p)
        }
        Some((a, b)) => {
            let a: u16 = a.parse().map_err(|_| bad())?;
            let b: u16 = b.parse().map_err(|_| bad())?;
            if b < a {
                return Err(bad());
            }
            (a, b)
        }
    };
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    Ok((start..=end).map(|p| format!("{p}/{proto}")).collect())
}

const SIGNALS: &[&str] = &[
    "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL",
    "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP",
    "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ", "RTMIN", "RTMAX",
];

/// Checks a STOPSIGNAL value as Docker does (a non-zero number, or a Linux signal name with
/// or without `SIG`, `RTMIN+n`/`RTMAX-n` included).
pub fn check_signal(raw: &str) -> Result<(), String> {
    let bad = || format!("Invalid signal: {raw}");
    if let Ok(n) = raw.parse::<i64>() {
        return if n == 0 { Err(bad()) } else { Ok(()) };
    }
    let up = raw.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let ok = SIGNALS.contains(&name)
        || name
            .strip_prefix("RTMIN+")
            .and_then(|n| n.parse::<u8>().ok())
            .is_some_and(|n| (1..=15).contains(&n))
        || name
            .strip_prefix("RTMAX-")
            .and_then(|n| n.parse::<u8>().ok())
            .is_some_and(|n| (1..=14).contains(&n));
    if ok {
        Ok(())
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_go() {
        let ok = [
            ("0", 0),
            ("5s", 5_000_000_000),
            ("30s", 30_000_000_000),
            ("1478s", 1_478_000_000_000),
            ("-5s", -5_000_000_000),
            ("+5s", 5_000_000_000),
            ("1.5h", 5_400_000_000_000),
            ("1h2m3.5s", 3_723_500_000_000),
            ("100ms", 100_000_000),
            ("10us", 10_000),
            ("10\u{b5}s", 10_000),
            ("10\u{3bc}s", 10_000),
            ("3ns", 3),
            (".5s", 500_000_000),
            ("1.s", 1_000_000_000),
            ("1.004s", 1_004_000_000),
            ("9223372036854775807ns", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
            ("0.100000000000000000000h", 360_000_000_000),
        ];
        for (s, want) in ok {
            assert_eq!(parse_go_duration(s), Ok(want), "{s}");
        }
        for bad in [
            "",
            "3",
            "-",
            "s",
            ".",
            "-.",
            ".s",
            "+.s",
            "1d",
            "9223372036854775808ns",
            "3000000h",
        ] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_go_duration("3").unwrap_err(),
            "time: missing unit in duration \"3\""
        );
        assert_eq!(
            parse_go_duration("1d").unwrap_err(),
            "time: unknown unit \"d\" in duration \"1d\""
        );
    }

    #[test]
    fn ram_sizes() {
        assert_eq!(parse_ram_bytes("32"), Ok(32));
        assert_eq!(parse_ram_bytes("32b"), Ok(32));
        assert_eq!(parse_ram_bytes("32k"), Ok(32 << 10));
        assert_eq!(parse_ram_bytes("32 KiB"), Ok(32 << 10));
        assert_eq!(parse_ram_bytes("1.5m"), Ok(3 << 19));
        assert_eq!(parse_ram_bytes("2g"), Ok(2 << 30));
        for bad in ["", "m", "1x", "-1", "1.2.3m", "1mm"] {
            assert!(parse_ram_bytes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn port_specs() {
        assert_eq!(parse_port_spec("80"), Ok(vec!["80/tcp".into()]));
        assert_eq!(parse_port_spec("53/UDP"), Ok(vec!["53/udp".into()]));
        assert_eq!(parse_port_spec("80/"), Ok(vec!["80/tcp".into()]));
        assert_eq!(
            parse_port_spec("7000-7002/sctp"),
            Ok(vec![
                "7000/sctp".into(),
                "7001/sctp".into(),
                "7002/sctp".into()
            ])
        );
        assert_eq!(parse_port_spec("8080:80"), Ok(vec!["80/tcp".into()]));
        assert_eq!(parse_port_spec("80/xyz"), Err("invalid proto: xyz".into()));
        assert_eq!(
            parse_port_spec("abc"),
            Err("invalid containerPort: abc".into())
        );
        assert_eq!(
            parse_port_spec("90-80"),
            Err("invalid containerPort: 90-80".into())
        );
        assert_eq!(
            parse_port_spec("65536"),
            Err("invalid containerPort: 65536".into())
        );
        assert!(parse_port_spec("").is_err());
    }

    #[test]
    fn signals() {
        for ok in ["SIGTERM", "term", "9", "SIGRTMIN+3", "RTMAX-1", "sigwinch"] {
            assert!(check_signal(ok).is_ok(), "{ok}");
        }
        for bad in ["0", "SIGFOO", "RTMIN+16", ""] {
            assert_eq!(check_signal(bad), Err(format!("Invalid signal: {bad}")));
        }
    }
}
