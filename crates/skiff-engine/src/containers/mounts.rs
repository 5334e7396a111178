//! `-v` binds, `--mount` and `--tmpfs` into OCI mounts, with Docker's option rules.

use serde_json::{json, Value};

use super::model::HostConfig;
use super::service::ContainersError;

/// A parsed `-v SRC:DST[:OPTS]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub source: String,
    pub destination: String,
    pub read_only: bool,
    pub propagation: String,
}

fn bad(m: String) -> ContainersError {
    ContainersError::Invalid(m)
}

fn clean_abs(p: &str) -> bool {
    p.starts_with('/') && !p.split('/').any(|c| c == "..")
}

/// Parses one `Binds` entry.
pub fn parse_bind(spec: &str) -> Result<Bind, ContainersError> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, opts) = match parts.as_slice() {
        [s, d] => (*s, *d, ""),
        [s, d, o] => (*s, *d, *o),
        _ => return Err(bad(format!("invalid volume specification: '{spec}'"))),
    };
    if src.is_empty() || dst.is_empty() {
        return Err(bad(format!("invalid volume specification: '{spec}'")));
    }
    if !src.starts_with('/') {
        return Err(bad(format!(
            "invalid volume specification: '{spec}': named volumes are not supported by skiff yet; use an absolute host path"
        )));
    }
    if !clean_abs(dst) {
        return Err(bad(format!(
            "invalid volume specification: '{spec}': mount path must be absolute"
        )));
    }
    if dst == "/" {
        return Err(bad(format!(
            "invalid volume specification: '{spec}': destination can't be '/'"
        )));
    }
    let mut b = Bind {
        source: src.to_string(),
        destination: dst.to_string(),
        read_only: false,
        propagation: "rprivate".into(),
    };
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => b.read_only = true,
            "rw" => b.read_only = false,
            "z" | "Z" | "nocopy" | "consistent" | "cached" | "delegated" => {}
            "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" => {
                b.propagation = o.to_string()
            }
            _ => return Err(bad(format!("invalid mode: {o}"))),
        }
    }
    Ok(b)
}

/// The OCI mounts for a container's binds, `--mount`s and tmpfs, in Docker's order.
pub fn oci_mounts(h: &HostConfig) -> Result<Vec<Value>, ContainersError> {
    let mut out = Vec::new();
    for spec in h.binds.iter().flatten() {
        let b = parse_bind(spec)?;
        // Docker creates a missing bind source directory (legacy -v behaviour).
        if std::fs::symlink_metadata(&b.source).is_err() {
            std::fs::create_dir_all(&b.source)
                .map_err(|e| bad(format!("create bind source {}: {e}", b.source)))?;
        }
        let mut opts = vec!["rbind".to_string(), b.propagation.clone()];
        if b.read_only {
            opts.push("ro".into());
        }
        out.push(json!({"destination": b.destination, "type": "bind", "source": b.source, "options": opts}));
    }
    for m in h.mounts.iter().flatten() {
        if !clean_abs(&m.target) {
            return Err(bad(format!(
                "invalid mount config: mount path must be absolute: {:?}",
                m.target
            )));
        }
        match m.kind.as_str() {
            "bind" => {
                if !m.source.starts_with('/') {
                    return Err(bad(format!(
                        "invalid mount config for type \"bind\": invalid mount path: '{}' mount path must be absolute",
                        m.source
                    )));
                }
                if std::fs::symlink_metadata(&m.source).is_err() {
                    return Err(bad(format!(
                        "invalid mount config for type \"bind\": bind source path does not exist: {}",
                        m.source
                    )));
                }
                let mut opts = vec!["rbind".to_string(), "rprivate".to_string()];
                if m.read_only {
                    opts.push("ro".into());
                }
                out.push(json!({"destination": m.target, "type": "bind", "source": m.source, "options": opts}));
            }
            "tmpfs" => {
                let mut opts = vec![
                    "nosuid".to_string(),
                    "nodev".to_string(),
                    "noexec".to_string(),
                ];
                if let Some(t) = &m.tmpfs_options {
                    if let Some(sz) = t.get("SizeBytes").and_then(Value::as_i64) {
                        opts.push(format!("size={sz}"));
                    }
                    if let Some(md) = t.get("Mode").and_then(Value::as_u64) {
                        opts.push(format!("mode={md:o}"));
                    }
                }
                if m.read_only {
                    opts.push("ro".into());
                }
                out.push(json!({"destination": m.target, "type": "tmpfs", "source": "tmpfs", "options": opts}));
            }
            other => {
                return Err(bad(format!(
                    "invalid mount config: mount type {other:?} is not supported by skiff yet"
                )))
            }
        }
    }
    for (dst, o) in h.tmpfs.iter().flatten() {
        if !clean_abs(dst) {
            return Err(bad(format!("invalid tmpfs mount path: {dst:?}")));
        }
        let mut opts = vec![
            "nosuid".to_string(),
            "nodev".to_string(),
            "noexec".to_string(),
        ];
        opts.extend(o.split(',').filter(|s| !s.is_empty()).map(str::to_string));
        out.push(json!({"destination": dst, "type": "tmpfs", "source": "tmpfs", "options": opts}));
    }
    Ok(out)
}

/// The API's `Mounts` of a container (inspect and list).
pub fn mount_points(h: &HostConfig) -> Vec<Value> {
    let mut out = Vec::new();
    for b in h.binds.iter().flatten().filter_map(|s| parse_bind(s).ok()) {
        out.push(json!({"Type": "bind", "Source": b.source, "Destination": b.destination, "Mode": if b.read_only { "ro" } else { "" }, "RW": !b.read_only, "Propagation": b.propagation}));
    }
    for m in h.mounts.iter().flatten() {
        out.push(json!({"Type": m.kind, "Source": m.source, "Destination": m.target, "Mode": "", "RW": !m.read_only, "Propagation": if m.kind == "bind" { "rprivate" } else { "" }}));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds() {
        assert_eq!(
            parse_bind("/a:/b:ro,rslave").unwrap(),
            Bind {
                source: "/a".into(),
                destination: "/b".into(),
                read_only: true,
                propagation: "rslave".into()
            }
        );
        assert!(!parse_bind("/a:/b").unwrap().read_only);
        for bad in [
            "",
            "/a",
            "/a:",
            ":/b",
            "/a:b",
            "/a:/b:xx",
            "vol:/b",
            "/a:/../x",
            "/a:/",
            "/a:/b:ro:z",
        ] {
            assert!(parse_bind(bad).is_err(), "{bad}");
        }
    }
}
