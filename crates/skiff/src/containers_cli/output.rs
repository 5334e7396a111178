//! Output shared by the container verbs: docker's tables (tabwriter with minwidth 10,
//! padding 3), `--format` (`table ...` with headers, `json`, Go-template fields through
//! `render_template`), short IDs, Go's time formats and docker's JSON indentation.

use std::io::Write;

use serde_json::Value;

use crate::images_cli::render_template;

/// docker's formatter tabwriter: `tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)`. Go counts
/// the padding in the minimum width, the tabwriter crate adds it on top: 7 + 3.
pub fn table<W: Write>(out: W) -> tabwriter::TabWriter<W> {
    tabwriter::TabWriter::new(out).minwidth(7).padding(3)
}

/// Print `rows` with `format` (None = `default`, a `table ...` template). `headers` maps
/// each field to its column title, so `table {{.ID}}\t{{.Names}}` gets docker's header.
pub fn print_rows(format: Option<&str>, default: &str, headers: &Value, rows: &[Value]) {
    let f = match format {
        None | Some("table") | Some("") => default,
        Some(f) => f,
    };
    let mut out = std::io::stdout().lock();
    if f == "json" {
        for r in rows {
            let _ = writeln!(out, "{r}");
        }
        return;
    }
    let mut tw = table(Vec::new());
    if f.starts_with("table") {
        let _ = writeln!(tw, "{}", render_template(f, headers));
    }
    for r in rows {
        let _ = writeln!(tw, "{}", render_template(f, r));
    }
    let _ = tw.flush();
    let _ = out.write_all(&tw.into_inner().unwrap_or_default());
}

/// The first 12 hex digits of an ID (without `sha256:`).
pub fn short_id(id: &str) -> String {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    id.chars().take(12).collect()
}

/// Go's `time.Time.String()` for a Unix time in the local zone:
/// `2024-01-02 03:04:05 +0000 UTC`.
pub fn go_time_string(unix: i64) -> String {
    use chrono::TimeZone;
    let Some(t) = chrono::Local.timestamp_opt(unix, 0).single() else {
        return String::new();
    };
    let off = t.format("%z").to_string();
    let zone = if off == "+0000" {
        "UTC".to_string()
    } else {
        off.clone()
    };
    format!("{} {off} {zone}", t.format("%Y-%m-%d %H:%M:%S"))
}

/// docker's `RFC3339NanoFixed` (`2006-01-02T15:04:05.000000000Z07:00`) in the local zone,
/// as `events` prints times.
pub fn rfc3339_nano_fixed(nanos: i64) -> String {
    use chrono::TimeZone;
    let secs = nanos.div_euclid(1_000_000_000);
    let frac = nanos.rem_euclid(1_000_000_000);
    let Some(t) = chrono::Local.timestamp_opt(secs, frac as u32).single() else {
        return String::new();
    };
    let off = t.format("%:z").to_string();
    format!(
        "{}.{frac:09}{}",
        t.format("%Y-%m-%dT%H:%M:%S"),
        if off == "+00:00" { "Z" } else { &off }
    )
}

/// "3 seconds ago" from a Unix time.
pub fn ago_unix(unix: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    let d = std::time::Duration::from_secs((now - unix).max(0) as u64);
    format!("{} ago", crate::human::duration(d))
}

/// go-units `HumanSize` (four significant digits), as prune totals print.
pub fn human_size4(bytes: u64) -> String {
    crate::human::size4(bytes)
}

/// go-units `BytesSize` (binary units, `%.4g`), as `stats` prints memory.
pub fn bytes_size(bytes: f64) -> String {
    crate::human::bytes_size(bytes)
}

/// Go's `json.Indent(raw, "", "    ")`: re-indents JSON text keeping the daemon's key order
/// (docker prints inspect output this way).
pub fn indent_json(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(s.len() * 2);
    let mut depth = 0usize;
    let mut in_str = false;
    let mut escaped = false;
    let mut chars = s.trim().chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        for _ in 0..depth {
            out.push_str("    ");
        }
    };
    while let Some(c) = chars.next() {
        if in_str {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_str = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                // Empty containers stay `{}` / `[]`.
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                if matches!(chars.peek(), Some('}') | Some(']')) {
                    out.push(chars.next().expect("peeked"));
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

/// docker's prune prompt: `WARNING! This will remove {what}.` and a `[y/N]` answer read
/// from stdin; whether to go on.
pub fn confirm_removal(what: &str) -> bool {
    print!("WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    matches!(answer.trim(), "y" | "Y" | "yes" | "Yes")
}

/// The `Deleted {title}:` block of a prune answer's `key` list (nothing when empty), then,
/// when the answer has `SpaceReclaimed`, docker's `Total reclaimed space` line.
pub fn print_pruned(r: &Value, key: &str, title: &str) {
    let deleted: Vec<&str> = r[key]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !deleted.is_empty() {
        println!("Deleted {title}:");
        for d in deleted {
            println!("{d}");
        }
        println!();
    }
    if let Some(n) = r.get("SpaceReclaimed").and_then(Value::as_u64) {
        println!("Total reclaimed space: {}", human_size4(n));
    }
}

/// `inspect` of named objects under `prefix` (`/volumes`, `/networks`): each fetched, the
/// found ones printed as an indented JSON array or through `format`, errors on stderr; the
/// exit code is 1 when any was missing.
pub fn inspect_each(
    c: &crate::client::Client,
    prefix: &str,
    names: &[String],
    format: Option<&str>,
) -> i32 {
    let mut found = Vec::new();
    let mut failed = false;
    for n in names {
        match c.get::<Value>(&format!("{prefix}/{n}")) {
            Ok(v) => found.push(v),
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    let mut out = std::io::stdout().lock();
    match format {
        Some(f) if f != "json" => {
            for v in &found {
                let _ = writeln!(out, "{}", render_template(f, v));
            }
        }
        _ => {
            let arr = serde_json::to_vec(&found).unwrap_or_default();
            let _ = writeln!(out, "{}", indent_json(&arr));
        }
    }
    i32::from(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indents_like_go_keeping_order() {
        let raw = br#"{"Id":"x","B":[],"A":{"z":1,"y":"a,b:{c}"},"E":{}, "L":[1,2]}"#;
        assert_eq!(
            indent_json(raw),
            "{\n    \"Id\": \"x\",\n    \"B\": [],\n    \"A\": {\n        \"z\": 1,\n        \"y\": \"a,b:{c}\"\n    },\n    \"E\": {},\n    \"L\": [\n        1,\n        2\n    ]\n}"
        );
        assert_eq!(indent_json(br#"["a\"]"]"#), "[\n    \"a\\\"]\"\n]");
    }

    #[test]
    fn go_times() {
        std::env::set_var("TZ", "UTC");
        assert_eq!(
            rfc3339_nano_fixed(1_700_000_000_120_000_000),
            "2023-11-14T22:13:20.120000000Z"
        );
        assert_eq!(
            rfc3339_nano_fixed(1_700_000_000_000_000_000),
            "2023-11-14T22:13:20.000000000Z"
        );
        assert_eq!(
            go_time_string(1_700_000_000),
            "2023-11-14 22:13:20 +0000 UTC"
        );
        assert_eq!(short_id("sha256:0123456789abcdef"), "0123456789ab");
        assert_eq!(human_size4(0), "0B");
        assert_eq!(human_size4(4_261_000), "4.261MB");
        assert_eq!(bytes_size(1536.0 * 1024.0), "1.5MiB");
        assert_eq!(bytes_size(7.6 * 1024.0 * 1024.0 * 1024.0), "7.6GiB");
        assert_eq!(bytes_size(0.0), "0B");
    }

    #[test]
    fn tables_use_docker_widths() {
        let mut tw = table(Vec::new());
        writeln!(tw, "A\tBB\tC").unwrap();
        writeln!(tw, "long-value\tx\ty").unwrap();
        tw.flush().unwrap();
        let s = String::from_utf8(tw.into_inner().unwrap()).unwrap();
        assert_eq!(s, "A            BB        C\nlong-value   x         y\n");
    }
}
