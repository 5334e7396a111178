//! Read-only views of a container: `inspect` (containers, then images, as docker), `top`,
//! `port`, `diff`.

use std::io::Write;

use clap::Args;
use hyper::Method;
use serde_json::Value;

use super::output::{indent_json, table};
use super::{CliError, Res};
use crate::client::{Body, Client, Query};
use crate::images_cli::render_template;

#[derive(Args, Debug)]
pub struct InspectArgs {
    #[arg(required = true)]
    pub names: Vec<String>,
    /// Format output using a custom template ('json' or a Go template).
    #[arg(short, long)]
    pub format: Option<String>,
    /// Only inspect objects of this type: container or image.
    #[arg(long = "type")]
    pub kind: Option<String>,
    /// Display total file sizes if the type is container.
    #[arg(short, long)]
    pub size: bool,
}

/// One object's raw JSON: a container's, else an image's (per `--type`).
fn find(c: &Client, name: &str, kind: Option<&str>, size: bool) -> Result<bytes::Bytes, String> {
    let get = |path: String| c.bytes(Method::GET, &path, Body::Empty).map(|(_, b)| b);
    let container = || {
        let q = Query::new().add_if(size, "size", "1");
        get(q.to(&format!("/containers/{name}/json")))
    };
    let image = || get(format!("/images/{name}/json"));
    match kind {
        Some("container") => container().map_err(|e| e.to_string()),
        Some("image") => image().map_err(|e| e.to_string()),
        Some(other) => Err(format!("\"{other}\" is not a valid value for --type")),
        None => match container() {
            Err(e) if e.is_not_found() => image().map_err(|e| {
                if e.is_not_found() {
                    format!("Error: No such object: {name}")
                } else {
                    e.to_string()
                }
            }),
            r => r.map_err(|e| e.to_string()),
        },
    }
}

pub fn inspect(c: &Client, a: InspectArgs) -> Res<i32> {
    if let Some(k) = &a.kind {
        if k != "container" && k != "image" {
            return Err(CliError::Usage(format!(
                "\"{k}\" is not a valid value for --type"
            )));
        }
    }
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for n in &a.names {
        match find(c, n, a.kind.as_deref(), a.size) {
            Ok(b) => found.push(b),
            Err(e) => errors.push(e),
        }
    }
    let mut out = std::io::stdout().lock();
    match a.format.as_deref() {
        Some(f) if f != "json" => {
            for raw in &found {
                let v: Value = serde_json::from_slice(raw).unwrap_or(Value::Null);
                let _ = writeln!(out, "{}", render_template(f, &v));
            }
        }
        _ => {
            let joined: Vec<&[u8]> = found.iter().map(|b| b.as_ref()).collect();
            let mut arr = b"[".to_vec();
            arr.extend(joined.join(&b","[..]));
            arr.push(b']');
            let _ = writeln!(out, "{}", indent_json(&arr));
        }
    }
    drop(out);
    for e in &errors {
        eprintln!("{e}");
    }
    Ok(if errors.is_empty() { 0 } else { 1 })
}

#[derive(Args, Debug)]
pub struct TopArgs {
    pub container: String,
    /// ps options (default -ef).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

pub fn top(c: &Client, a: TopArgs) -> Res<i32> {
    let q = Query::new().opt(
        "ps_args",
        (!a.ps_args.is_empty()).then(|| a.ps_args.join(" ")),
    );
    let v: Value = c.get(&q.to(&format!("/containers/{}/top", a.container)))?;
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|s| s.as_str().unwrap_or_default().to_string())
            .collect()
    };
    // docker: tabwriter.NewWriter(out, 20, 1, 3, ' ', 0) (the crate adds the padding).
    let mut tw = table(std::io::stdout()).minwidth(17);
    let _ = writeln!(tw, "{}", strs(&v["Titles"]).join("\t"));
    for p in v["Processes"].as_array().into_iter().flatten() {
        let _ = writeln!(tw, "{}", strs(p).join("\t"));
    }
    let _ = tw.flush();
    Ok(0)
}

#[derive(Args, Debug)]
pub struct PortArgs {
    pub container: String,
    /// PRIVATE_PORT[/PROTO]
    pub port: Option<String>,
}

pub fn port(c: &Client, a: PortArgs) -> Res<i32> {
    let v: Value = c.get(&format!("/containers/{}/json", a.container))?;
    let ports = v["NetworkSettings"]["Ports"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let host = |b: &Value| {
        let ip = b["HostIp"].as_str().unwrap_or_default();
        let port = b["HostPort"].as_str().unwrap_or_default();
        if ip.contains(':') {
            format!("[{ip}]:{port}")
        } else {
            format!("{ip}:{port}")
        }
    };
    let mut out = Vec::new();
    if let Some(p) = &a.port {
        let key = if p.contains('/') {
            p.clone()
        } else {
            format!("{p}/tcp")
        };
        let bindings = ports.get(&key).and_then(Value::as_array);
        match bindings {
            Some(b) if !b.is_empty() => out.extend(b.iter().map(host)),
            _ => {
                return Err(CliError::Usage(format!(
                    "Error: No public port '{p}' published for {}",
                    a.container
                )))
            }
        }
    } else {
        for (from, b) in &ports {
            for b in b.as_array().into_iter().flatten() {
                out.push(format!("{from} -> {}", host(b)));
            }
        }
    }
    out.sort_by(|x, y| natural_cmp(x, y));
    for l in out {
        println!("{l}");
    }
    Ok(0)
}

/// Order with digit runs compared as numbers (`sortorder.NaturalLess`).
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, _) => return std::cmp::Ordering::Less,
            (_, None) => return std::cmp::Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let na = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let nb = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let va: u128 = std::str::from_utf8(&a[..na])
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                let vb: u128 = std::str::from_utf8(&b[..nb])
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                if va != vb {
                    return va.cmp(&vb);
                }
                a = &a[na..];
                b = &b[nb..];
            }
            (Some(x), Some(y)) if x != y => return x.cmp(y),
            _ => {
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    pub container: String,
}

pub fn diff(c: &Client, a: DiffArgs) -> Res<i32> {
    let v: Value = c.get(&format!("/containers/{}/changes", a.container))?;
    for ch in v.as_array().into_iter().flatten() {
        let kind = match ch["Kind"].as_u64() {
            Some(0) => "C",
            Some(1) => "A",
            Some(2) => "D",
            _ => "?",
        };
        println!("{kind} {}", ch["Path"].as_str().unwrap_or_default());
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn natural_order() {
        let mut v = vec!["8080/tcp -> :9", "80/tcp -> :1", "443/tcp -> :2"];
        v.sort_by(|a, b| super::natural_cmp(a, b));
        assert_eq!(v, ["80/tcp -> :1", "443/tcp -> :2", "8080/tcp -> :9"]);
    }
}
