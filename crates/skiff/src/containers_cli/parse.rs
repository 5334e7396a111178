//! Parsers for docker's flag values: sizes (`64m`), Go durations (`1m30s`), port specs
//! (`127.0.0.1:8080:80/tcp`, ranges), volume specs, ulimits, restart policies, env files.
//! Errors read like docker's.

use std::collections::BTreeMap;

/// go-units `RAMInBytes`: `64m`, `1.5g`, `512kb`, `100` (binary multiples).
pub fn ram_in_bytes(s: &str) -> Result<i64, String> {
    let bad = || format!("invalid size: '{s}'");
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(digits_end);
    if num.is_empty() || num.starts_with('.') {
        return Err(bad());
    }
    let n: f64 = num.parse().map_err(|_| bad())?;
    let unit = unit.trim_start();
    let unit = unit.strip_suffix('b').unwrap_or(unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let mul: i64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        "p" => 1 << 50,
        _ => return Err(bad()),
    };
    Ok((n * mul as f64) as i64)
}

/// A memory flag: `-1` (unlimited, for swap) or a size.
pub fn memory(flag: &str, s: &str) -> Result<i64, String> {
    if s == "-1" {
        return Ok(-1);
    }
    ram_in_bytes(s).map_err(|e| format!("invalid argument \"{s}\" for \"{flag}\" flag: {e}"))
}

/// Go's `time.ParseDuration`, in nanoseconds.
pub fn go_duration(s: &str) -> Result<i64, String> {
    let bad = || format!("time: invalid duration \"{s}\"");
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("time: missing unit in duration \"{s}\""))?;
        let n: f64 = rest[..n_end].parse().map_err(|_| bad())?;
        rest = &rest[n_end..];
        let u_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mul = match &rest[..u_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            u => return Err(format!("time: unknown unit \"{u}\" in duration \"{s}\"")),
        };
        total += n * mul;
        rest = &rest[u_end..];
    }
    Ok(if neg { -total } else { total } as i64)
}

/// One `-p` spec: `(("80", "tcp") as "80/tcp", HostIp, HostPort)` per container port.
pub type PortBinding = (String, String, String);

/// docker's `nat.ParsePortSpec`.
pub fn port_spec(spec: &str) -> Result<Vec<PortBinding>, String> {
    let bad = |why: &str| format!("invalid port spec {spec:?}: {why}");
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, p)) => (r, p.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    // [ip]:host:container, with an IPv6 address in brackets.
    let (ip, rest) = match rest.strip_prefix('[') {
        Some(r) => {
            let (ip, after) = r.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
            let after = after.strip_prefix(':').ok_or_else(|| bad("expected ':'"))?;
            (ip.to_string(), after)
        }
        None => match rest.matches(':').count() {
            0 | 1 => (String::new(), rest),
            _ => {
                let (ip, r) = rest.split_once(':').expect("two colons");
                (ip.to_string(), r)
            }
        },
    };
    let (host, container) = match rest.rsplit_once(':') {
        Some((h, c)) => (h, c),
        None => ("", rest),
    };
    if container.is_empty() {
        return Err(bad("no container port"));
    }
    let (c_start, c_end) = port_range(container).map_err(|e| bad(&e))?;
    let host_range = if host.is_empty() {
        None
    } else {
        Some(port_range(host).map_err(|e| bad(&e))?)
    };
    let mut out = Vec::new();
    if c_start == c_end {
        out.push((format!("{c_start}/{proto}"), ip, host.to_string()));
        return Ok(out);
    }
    if let Some((h_start, h_end)) = host_range {
        if h_end - h_start != c_end - c_start {
            return Err(bad("host and container port ranges differ in size"));
        }
    }
    for (i, p) in (c_start..=c_end).enumerate() {
        let hp = host_range.map_or(String::new(), |(h, _)| (h + i as u32).to_string());
        out.push((format!("{p}/{proto}"), ip.clone(), hp));
    }
    Ok(out)
}

fn port_range(s: &str) -> Result<(u32, u32), String> {
    let parse = |p: &str| {
        p.parse::<u32>()
            .ok()
            .filter(|n| *n <= 65535)
            .ok_or_else(|| format!("invalid port {p:?}"))
    };
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (parse(a)?, parse(b)?);
            if b < a {
                return Err(format!("invalid range {s:?}"));
            }
            Ok((a, b))
        }
        None => parse(s).map(|p| (p, p)),
    }
}

/// A `-v` spec: a bind / named volume for `HostConfig.Binds`, or an anonymous volume.
#[derive(Debug, PartialEq, Eq)]
pub enum VolumeSpec {
    Bind(String),
    Anonymous(String),
}

pub fn volume_spec(spec: &str) -> Result<VolumeSpec, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let bad = |why: &str| format!("invalid volume specification: '{spec}': {why}");
    if parts.iter().any(|p| p.is_empty()) || parts.len() > 3 {
        return Err(bad("expected [SOURCE:]DESTINATION[:OPTIONS]"));
    }
    if parts.len() == 1 {
        if !parts[0].starts_with('/') {
            return Err(bad("the destination must be an absolute path"));
        }
        return Ok(VolumeSpec::Anonymous(parts[0].to_string()));
    }
    if !parts[1].starts_with('/') {
        return Err(bad("the destination must be an absolute path"));
    }
    if let Some(opts) = parts.get(2) {
        for o in opts.split(',') {
            let known = matches!(
                o,
                "rw" | "ro"
                    | "z"
                    | "Z"
                    | "nocopy"
                    | "shared"
                    | "rshared"
                    | "slave"
                    | "rslave"
                    | "private"
                    | "rprivate"
            );
            if !known {
                return Err(bad(&format!("unknown option {o:?}")));
            }
        }
    }
    let mut src = parts[0].to_string();
    if src.starts_with('.') {
        let cwd = std::env::current_dir().map_err(|e| bad(&e.to_string()))?;
        src = cwd.join(&src).display().to_string();
    }
    let mut out = vec![src.as_str(), parts[1]];
    out.extend(parts.get(2));
    Ok(VolumeSpec::Bind(out.join(":")))
}

/// `--ulimit nofile=1024:2048` → (name, soft, hard).
pub fn ulimit(s: &str) -> Result<(String, i64, i64), String> {
    let bad = || format!("invalid ulimit argument: {s}");
    let (name, vals) = s.split_once('=').ok_or_else(bad)?;
    let num = |v: &str| -> Result<i64, String> {
        match v {
            "unlimited" | "-1" => Ok(-1),
            _ => v.parse().map_err(|_| bad()),
        }
    };
    let (soft, hard) = match vals.split_once(':') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => (num(vals)?, num(vals)?),
    };
    if hard != -1 && (soft == -1 || soft > hard) {
        return Err(format!(
            "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        ));
    }
    Ok((name.to_string(), soft, hard))
}

/// `--restart` → (Name, MaximumRetryCount).
pub fn restart_policy(s: &str) -> Result<(String, i64), String> {
    let (name, count) = match s.split_once(':') {
        Some((n, c)) => (n, Some(c)),
        None => (s, None),
    };
    match (name, count) {
        ("no" | "always" | "unless-stopped", None) => Ok((name.to_string(), 0)),
        ("", None) => Ok(("no".into(), 0)),
        ("on-failure", None) => Ok((name.to_string(), 0)),
        ("on-failure", Some(c)) => c
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(|n| (name.to_string(), n))
            .ok_or_else(|| format!("invalid restart policy format: maximum retry count must be a non-negative integer: {c:?}")),
        ("no" | "always" | "unless-stopped", Some(_)) => Err(
            "invalid restart policy format: maximum retry count can only be used with 'on-failure'"
                .to_string(),
        ),
        _ => Err(format!("invalid restart policy format: unknown policy {name:?}: use no, always, on-failure[:max-retries] or unless-stopped")),
    }
}

/// `-e KEY=VAL` as is; `-e KEY` takes KEY from this environment (dropped when unset).
pub fn env_var(s: &str) -> Result<Option<String>, String> {
    if s.is_empty() || s.starts_with('=') {
        return Err(format!("invalid environment variable: {s}"));
    }
    if s.contains('=') {
        return Ok(Some(s.to_string()));
    }
    Ok(std::env::var(s).ok().map(|v| format!("{s}={v}")))
}

/// docker's env-file format: `KEY=VALUE` lines, `KEY` alone from this environment, `#`
/// comments and blank lines skipped.
pub fn env_file(path: &str) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("open {path}: {e}"))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = line.split('=').next().unwrap_or("");
        if key.contains(char::is_whitespace) {
            return Err(format!(
                "{path}:{}: variable '{}' contains whitespaces",
                i + 1,
                key.trim_end()
            ));
        }
        if let Some(v) = env_var(line).map_err(|e| format!("{path}:{}: {e}", i + 1))? {
            out.push(v);
        }
    }
    Ok(out)
}

/// `KEY=VALUE` options (labels, sysctls, log-opts) into a map; `KEY` alone maps to "".
pub fn key_values(flag: &str, items: &[String]) -> Result<BTreeMap<String, String>, String> {
    let mut m = BTreeMap::new();
    for it in items {
        let (k, v) = it.split_once('=').unwrap_or((it.as_str(), ""));
        if k.is_empty() {
            return Err(format!(
                "invalid argument {it:?} for \"{flag}\": expected KEY=VALUE"
            ));
        }
        m.insert(k.to_string(), v.to_string());
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(ram_in_bytes("64m").unwrap(), 64 << 20);
        assert_eq!(ram_in_bytes("1.5G").unwrap(), 3 << 29);
        assert_eq!(ram_in_bytes("512kb").unwrap(), 512 << 10);
        assert_eq!(ram_in_bytes("100").unwrap(), 100);
        assert_eq!(ram_in_bytes("2MiB").unwrap(), 2 << 20);
        assert_eq!(ram_in_bytes("abc").unwrap_err(), "invalid size: 'abc'");
        assert!(ram_in_bytes("10x").is_err());
        assert_eq!(memory("-m", "-1").unwrap(), -1);
    }

    #[test]
    fn durations() {
        assert_eq!(go_duration("30s").unwrap(), 30_000_000_000);
        assert_eq!(go_duration("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(go_duration("500ms").unwrap(), 500_000_000);
        assert_eq!(go_duration("0").unwrap(), 0);
        assert!(go_duration("10").unwrap_err().contains("missing unit"));
        assert!(go_duration("3d").unwrap_err().contains("unknown unit"));
    }

    #[test]
    fn ports() {
        assert_eq!(
            port_spec("80").unwrap(),
            vec![("80/tcp".into(), "".into(), "".into())]
        );
        assert_eq!(
            port_spec("127.0.0.1:8080:80/udp").unwrap(),
            vec![("80/udp".into(), "127.0.0.1".into(), "8080".into())]
        );
        assert_eq!(
            port_spec("127.0.0.1::80").unwrap(),
            vec![("80/tcp".into(), "127.0.0.1".into(), "".into())]
        );
        assert_eq!(
            port_spec("[::1]:8080:80").unwrap(),
            vec![("80/tcp".into(), "::1".into(), "8080".into())]
        );
        let r = port_spec("8000-8001:80-81").unwrap();
        assert_eq!(r[1], ("81/tcp".into(), "".into(), "8001".into()));
        assert!(port_spec("8000-8002:80-81").is_err());
        assert!(port_spec("80/xyz").is_err());
        assert!(port_spec("99999").is_err());
    }

    #[test]
    fn volumes() {
        assert_eq!(
            volume_spec("/data").unwrap(),
            VolumeSpec::Anonymous("/data".into())
        );
        assert_eq!(
            volume_spec("/src:/dst:ro").unwrap(),
            VolumeSpec::Bind("/src:/dst:ro".into())
        );
        assert_eq!(
            volume_spec("named:/dst").unwrap(),
            VolumeSpec::Bind("named:/dst".into())
        );
        assert!(volume_spec("/src:dst").is_err());
        assert!(volume_spec("/src:/dst:bogus").is_err());
        assert!(volume_spec("relative").is_err());
    }

    #[test]
    fn ulimits_restart_env() {
        assert_eq!(
            ulimit("nofile=1024:2048").unwrap(),
            ("nofile".into(), 1024, 2048)
        );
        assert_eq!(ulimit("nproc=10").unwrap(), ("nproc".into(), 10, 10));
        assert!(ulimit("nofile=20:10").is_err());
        assert!(ulimit("nofile").is_err());
        assert_eq!(
            restart_policy("on-failure:3").unwrap(),
            ("on-failure".into(), 3)
        );
        assert_eq!(restart_policy("always").unwrap(), ("always".into(), 0));
        assert!(restart_policy("bogus").is_err());
        assert!(restart_policy("always:2").is_err());
        assert_eq!(env_var("A=b=c").unwrap(), Some("A=b=c".into()));
        assert!(env_var("=x").is_err());
        std::env::remove_var("SKIFF_TEST_UNSET_VAR");
        assert_eq!(env_var("SKIFF_TEST_UNSET_VAR").unwrap(), None);
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("env");
        std::fs::write(&f, "# c\n\nA=1\n  B= two \n").unwrap();
        assert_eq!(
            env_file(f.to_str().unwrap()).unwrap(),
            vec!["A=1".to_string(), "B= two ".to_string()]
        );
        std::fs::write(&f, "BAD KEY=1\n").unwrap();
        assert!(env_file(f.to_str().unwrap())
            .unwrap_err()
            .contains("whitespaces"));
    }
}
