//! `ps` / `container ls`: docker's columns (CONTAINER ID, IMAGE, COMMAND, CREATED, STATUS,
//! PORTS, NAMES [, SIZE]), `-a -q -n -l -s --filter --format --no-trunc`.

use std::collections::BTreeMap;

use clap::Args;
use serde_json::{json, Value};

use super::output::{ago_unix, go_time_string, print_rows, short_id};
use super::{CliError, Res};
use crate::client::{Client, Query};

#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    pub all: bool,
    /// Only display container IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Show n last created containers (includes all states).
    #[arg(short = 'n', long = "last", allow_hyphen_values = true)]
    pub last: Option<i64>,
    /// Show the latest created container (includes all states).
    #[arg(short = 'l', long)]
    pub latest: bool,
    /// Display total file sizes.
    #[arg(short, long)]
    pub size: bool,
    /// Filter output based on conditions provided (name=value).
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Format output using a custom template ('table', 'table TEMPLATE', 'json', 'TEMPLATE').
    #[arg(long)]
    pub format: Option<String>,
    /// Don't truncate output.
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
}

/// `--filter k=v ...` as docker sends it: `{"k": {"v": true}}`.
pub fn filters_json(items: &[String]) -> Res<String> {
    let mut m: BTreeMap<String, BTreeMap<String, bool>> = BTreeMap::new();
    for f in items {
        let (k, v) = f.split_once('=').ok_or_else(|| {
            CliError::Usage(format!(
                "invalid argument {f:?} for \"-f, --filter\" flag: bad format of filter (expected name=value)"
            ))
        })?;
        m.entry(k.trim().to_ascii_lowercase())
            .or_default()
            .insert(v.to_string(), true);
    }
    Ok(serde_json::to_string(&m).expect("map serializes"))
}

const HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Ports", "PORTS"),
    ("State", "STATE"),
    ("Status", "STATUS"),
    ("Size", "SIZE"),
    ("Names", "NAMES"),
    ("Labels", "LABELS"),
    ("Mounts", "MOUNTS"),
    ("Networks", "NETWORKS"),
    ("LocalVolumes", "LOCAL VOLUMES"),
];

pub fn ps(c: &Client, a: PsArgs) -> Res<i32> {
    let limit = if a.latest {
        Some(1)
    } else {
        a.last.filter(|n| *n > 0)
    };
    let q = Query::new()
        .add_if(a.all || limit.is_some(), "all", "1")
        .opt("limit", limit.map(|n| n.to_string()))
        .add_if(a.size, "size", "1")
        .opt(
            "filters",
            (!a.filter.is_empty())
                .then(|| filters_json(&a.filter))
                .transpose()?,
        );
    let list: Vec<Value> = c.get(&q.to("/containers/json"))?;
    let trunc = !a.no_trunc;
    if a.quiet {
        for x in &list {
            let id = x["Id"].as_str().unwrap_or_default();
            println!("{}", if trunc { short_id(id) } else { id.to_string() });
        }
        return Ok(0);
    }
    let rows: Vec<Value> = list.iter().map(|x| row(x, trunc)).collect();
    let headers: serde_json::Map<String, Value> = HEADERS
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    let mut default =
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
            .to_string();
    if a.size {
        default.push_str("\t{{.Size}}");
    }
    print_rows(
        a.format.as_deref(),
        &default,
        &Value::Object(headers),
        &rows,
    );
    Ok(0)
}

/// One container as docker's formatter shows it (every field a string).
fn row(x: &Value, trunc: bool) -> Value {
    let s = |k: &str| x[k].as_str().unwrap_or_default().to_string();
    let id = s("Id");
    let mut image = s("Image");
    if trunc && image.starts_with("sha256:") {
        image = short_id(&image);
    }
    let command = if trunc {
        ellipsis(&s("Command"), 20)
    } else {
        s("Command")
    };
    let created = x["Created"].as_i64().unwrap_or(0);
    let names: Vec<String> = x["Names"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|n| n.trim_start_matches('/').to_string())
        .filter(|n| !trunc || !n.contains('/'))
        .collect();
    let labels: BTreeMap<String, String> =
        serde_json::from_value(x["Labels"].clone()).unwrap_or_default();
    let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mounts: Vec<String> = x["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let n = m["Name"]
                .as_str()
                .filter(|n| !n.is_empty())
                .or(m["Source"].as_str())
                .unwrap_or_default();
            if trunc {
                ellipsis(n, 15)
            } else {
                n.to_string()
            }
        })
        .collect();
    let local = x["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["Driver"] == "local")
        .count();
    let networks: Vec<String> = x["NetworkSettings"]["Networks"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let size_rw = x["SizeRw"].as_u64().unwrap_or(0);
    let size_root = x["SizeRootFs"].as_u64().unwrap_or(0);
    let size = if size_root > 0 {
        format!(
            "{} (virtual {})",
            crate::human::size(size_rw),
            crate::human::size(size_root)
        )
    } else {
        crate::human::size(size_rw)
    };
    json!({
        "ID": if trunc { short_id(&id) } else { id },
        "Image": image,
        "Command": go_quote(&command),
        "CreatedAt": go_time_string(created),
        "RunningFor": ago_unix(created),
        "Ports": displayable_ports(x["Ports"].as_array().map(Vec::as_slice).unwrap_or(&[])),
        "State": s("State"),
        "Status": s("Status"),
        "Size": size,
        "Names": names.join(","),
        "Labels": labels.join(","),
        "Mounts": mounts.join(","),
        "Networks": networks.join(","),
        "LocalVolumes": local.to_string(),
    })
}

/// go's `stringutils.Ellipsis`.
pub fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// docker's `DisplayablePorts`: consecutive ports grouped into ranges, host mappings last.
pub fn displayable_ports(ports: &[Value]) -> String {
    struct P {
        ip: String,
        private: u64,
        public: u64,
        kind: String,
    }
    let mut ps: Vec<P> = ports
        .iter()
        .map(|p| P {
            ip: p["IP"].as_str().unwrap_or_default().to_string(),
            private: p["PrivatePort"].as_u64().unwrap_or(0),
            public: p["PublicPort"].as_u64().unwrap_or(0),
            kind: p["Type"].as_str().unwrap_or("tcp").to_string(),
        })
        .collect();
    ps.sort_by(|a, b| {
        (a.private, &a.ip, a.public, &a.kind).cmp(&(b.private, &b.ip, b.public, &b.kind))
    });
    let form = |key: &str, first: u64, last: u64| {
        let (ip, kind) = match key.rsplit_once('/') {
            Some((ip, kind)) => (ip, kind),
            None => ("", key),
        };
        let mut g = first.to_string();
        if first != last {
            g = format!("{g}-{last}");
        }
        if !ip.is_empty() {
            g = format!("{ip}:{g}->{g}");
        }
        format!("{g}/{kind}")
    };
    let mut groups: Vec<(String, u64, u64)> = Vec::new();
    let mut result = Vec::new();
    let mut mappings = Vec::new();
    for p in &ps {
        let mut key = p.kind.clone();
        if !p.ip.is_empty() {
            if p.public != p.private {
                let host = if p.ip.contains(':') {
                    format!("[{}]:{}", p.ip, p.public)
                } else {
                    format!("{}:{}", p.ip, p.public)
                };
                mappings.push(format!("{host}->{}/{}", p.private, p.kind));
                continue;
            }
            key = format!("{}/{}", p.ip, p.kind);
        }
        match groups.iter_mut().find(|g| g.0 == key) {
            None => groups.push((key, p.private, p.private)),
            Some(g) if p.private == g.2 + 1 => g.2 = p.private,
            Some(g) => {
                result.push(form(&g.0, g.1, g.2));
                g.1 = p.private;
                g.2 = p.private;
            }
        }
    }
    for g in &groups {
        result.push(form(&g.0, g.1, g.2));
    }
    result.extend(mappings);
    result.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_display_like_docker() {
        let p = |ip: &str, private: u64, public: u64| json!({"IP": ip, "PrivatePort": private, "PublicPort": public, "Type": "tcp"});
        assert_eq!(displayable_ports(&[]), "");
        assert_eq!(
            displayable_ports(&[p("0.0.0.0", 80, 8080), p("", 443, 0)]),
            "443/tcp, 0.0.0.0:8080->80/tcp"
        );
        assert_eq!(
            displayable_ports(&[p("", 81, 0), p("", 80, 0), p("", 82, 0), p("", 90, 0)]),
            "80-82/tcp, 90/tcp"
        );
        assert_eq!(displayable_ports(&[p("::", 80, 8080)]), "[::]:8080->80/tcp");
        assert_eq!(
            displayable_ports(&[p("0.0.0.0", 80, 80)]),
            "0.0.0.0:80->80/tcp"
        );
    }

    #[test]
    fn rows_truncate_like_docker() {
        let x = json!({"Id": "0123456789abcdef0123", "Image": "busybox", "Command": "sleep 300000000000000000000",
            "Created": 0, "Names": ["/a", "/b/link"], "State": "running", "Status": "Up 2 seconds",
            "Labels": {"z": "1", "a": "2"}});
        let r = row(&x, true);
        assert_eq!(r["ID"], "0123456789ab");
        assert_eq!(r["Command"], "\"sleep 3000000000000…\"");
        assert_eq!(r["Names"], "a");
        assert_eq!(r["Labels"], "a=2,z=1");
        let r = row(&x, false);
        assert_eq!(r["Names"], "a,b/link");
        assert_eq!(go_quote("a\"b\\"), "\"a\\\"b\\\\\"");
        assert!(
            filters_json(&["status=running".into(), "status=exited".into()])
                .unwrap()
                .contains(r#"{"status":{"exited":true,"running":true}}"#)
        );
        assert!(filters_json(&["bogus".into()]).is_err());
    }
}
