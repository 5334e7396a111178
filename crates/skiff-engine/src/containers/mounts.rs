//! `-v` binds and volumes, `--mount`, `--volumes-from`, the image's `VOLUME`s and
//! `--tmpfs` into a container's mount points (resolved once, at create, and kept in its
//! record as Docker's `MountPoints`) and then into OCI mounts, with Docker's option rules.

use serde_json::{json, Value};

use super::model::{Config, HostConfig, MountPoint};
use super::service::ContainersError;
use crate::volumes::{valid_name, Volumes};

/// A parsed `-v SRC:DST[:OPTS]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub source: String,
    pub destination: String,
    pub read_only: bool,
    pub propagation: String,
    /// `nocopy`: a new volume is not filled from the image.
    pub nocopy: bool,
}

impl Bind {
    /// A named volume rather than a host path.
    pub fn is_volume(&self) -> bool {
        !self.source.starts_with('/')
    }
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
    if !src.starts_with('/') && !valid_name(src) {
        return Err(bad(format!(
            "create {src}: \"{src}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
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
        nocopy: false,
    };
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => b.read_only = true,
            "rw" => b.read_only = false,
            "nocopy" if b.is_volume() => b.nocopy = true,
            "z" | "Z" => {
                tracing::warn!(bind = %spec, "z/Z: this host has no SELinux; relabeling skipped")
            }
            "consistent" | "cached" | "delegated" => {}
            "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate"
                if !b.is_volume() =>
            {
                b.propagation = o.to_string()
            }
            _ => return Err(bad(format!("invalid mode: {o}"))),
        }
    }
    Ok(b)
}

/// Resolves a new container's mount points: `--volumes-from` first, then the image's and
/// `-v /path` anonymous volumes, then `-v` binds/volumes and `--mount`s (which override
/// the others at the same destination; two of those at one destination are an error).
/// Named volumes are created when missing, anonymous ones always; a failure removes the
/// anonymous volumes made so far. Sorted parents first, as Docker mounts them.
pub fn resolve(
    config: &Config,
    h: &HostConfig,
    volumes: &Volumes,
    volumes_from: impl Fn(&str) -> Result<Vec<MountPoint>, ContainersError>,
) -> Result<Vec<MountPoint>, ContainersError> {
    let mut made: Vec<String> = Vec::new();
    let res = resolve_inner(config, h, volumes, volumes_from, &mut made);
    if res.is_err() {
        for v in made {
            let _ = volumes.remove(&v, true);
        }
    }
    res
}

fn new_volume(
    volumes: &Volumes,
    name: Option<&str>,
    opts: Option<&Value>,
    made: &mut Vec<String>,
) -> Result<crate::volumes::Volume, ContainersError> {
    let exists = name.is_some_and(|n| volumes.get(n).is_ok());
    let (mut options, mut labels) = (Default::default(), Default::default());
    if let Some(o) = opts {
        if let Some(l) = o.get("Labels") {
            labels = serde_json::from_value(l.clone()).unwrap_or_default();
        }
        if let Some(d) = o.get("DriverConfig").and_then(|d| d.get("Options")) {
            options = serde_json::from_value(d.clone()).unwrap_or_default();
        }
    }
    let v = volumes
        .create(name, "local", options, labels)
        .map_err(|e| bad(e.to_string()))?;
    if !exists {
        made.push(v.name.clone());
    }
    Ok(v)
}

fn volume_point(
    v: &crate::volumes::Volume,
    volumes: &Volumes,
    dest: &str,
    rw: bool,
    copy: bool,
) -> MountPoint {
    MountPoint {
        kind: "volume".into(),
        name: v.name.clone(),
        source: volumes.mountpoint(&v.name).display().to_string(),
        destination: dest.to_string(),
        driver: v.driver.clone(),
        mode: String::new(),
        rw,
        propagation: String::new(),
        copy_up: copy,
        anonymous: v.anonymous,
    }
}

fn resolve_inner(
    config: &Config,
    h: &HostConfig,
    volumes: &Volumes,
    volumes_from: impl Fn(&str) -> Result<Vec<MountPoint>, ContainersError>,
    made: &mut Vec<String>,
) -> Result<Vec<MountPoint>, ContainersError> {
    let mut points: Vec<MountPoint> = Vec::new();
    let put = |points: &mut Vec<MountPoint>, mp: MountPoint| {
        points.retain(|p| p.destination != mp.destination);
        points.push(mp);
    };
    for spec in h.volumes_from.iter().flatten() {
        let (from, mode) = match spec.rsplit_once(':') {
            Some((c, m @ ("ro" | "rw"))) => (c, Some(m)),
            _ => (spec.as_str(), None),
        };
        for mut mp in volumes_from(from)? {
            if let Some(m) = mode {
                mp.rw = m == "rw";
                mp.mode = m.into();
            }
            mp.copy_up = false;
            put(&mut points, mp);
        }
    }
    // Explicit destinations, to skip image volumes they cover.
    let mut explicit: Vec<String> = Vec::new();
    for spec in h.binds.iter().flatten() {
        explicit.push(parse_bind(spec)?.destination);
    }
    for m in h.mounts.iter().flatten() {
        explicit.push(m.target.clone());
    }
    for (i, d) in explicit.iter().enumerate() {
        if explicit[..i].contains(d) {
            return Err(bad(format!("Duplicate mount point: {d}")));
        }
    }
    for dest in config.volumes.iter().flatten().map(|(k, _)| k) {
        if !clean_abs(dest) {
            return Err(bad(format!(
                "invalid volume: {dest:?}: mount path must be absolute"
            )));
        }
        let dest = dest.trim_end_matches('/').to_string();
        if explicit.contains(&dest) || points.iter().any(|p| p.destination == dest) {
            continue;
        }
        let v = new_volume(volumes, None, None, made)?;
        put(&mut points, volume_point(&v, volumes, &dest, true, true));
    }
    for spec in h.binds.iter().flatten() {
        let b = parse_bind(spec)?;
        if b.is_volume() {
            let v = new_volume(volumes, Some(&b.source), None, made)?;
            let mut mp = volume_point(&v, volumes, &b.destination, !b.read_only, !b.nocopy);
            mp.mode = opts_of(spec);
            put(&mut points, mp);
            continue;
        }
        // Docker creates a missing bind source directory (legacy -v behaviour).
        if std::fs::symlink_metadata(&b.source).is_err() {
            std::fs::create_dir_all(&b.source)
                .map_err(|e| bad(format!("create bind source {}: {e}", b.source)))?;
        }
        put(
            &mut points,
            MountPoint {
                kind: "bind".into(),
                source: b.source.clone(),
                destination: b.destination.clone(),
                mode: opts_of(spec),
                rw: !b.read_only,
                propagation: b.propagation.clone(),
                ..Default::default()
            },
        );
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
                let propagation = m
                    .bind_options
                    .as_ref()
                    .and_then(|b| b.get("Propagation"))
                    .and_then(Value::as_str)
                    .filter(|p| !p.is_empty())
                    .unwrap_or("rprivate");
                if !matches!(
                    propagation,
                    "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate"
                ) {
                    return Err(bad(format!(
                        "invalid mount config: invalid propagation mode: {propagation}"
                    )));
                }
                put(
                    &mut points,
                    MountPoint {
                        kind: "bind".into(),
                        source: m.source.clone(),
                        destination: m.target.clone(),
                        rw: !m.read_only,
                        propagation: propagation.into(),
                        ..Default::default()
                    },
                );
            }
            "volume" => {
                let name = Some(m.source.as_str()).filter(|s| !s.is_empty());
                if let Some(n) = name {
                    if !valid_name(n) {
                        return Err(bad(format!(
                            "invalid mount config for type \"volume\": invalid volume name {n:?}"
                        )));
                    }
                }
                let nocopy = m
                    .volume_options
                    .as_ref()
                    .and_then(|o| o.get("NoCopy"))
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let v = new_volume(volumes, name, m.volume_options.as_ref(), made)?;
                put(
                    &mut points,
                    volume_point(&v, volumes, &m.target, !m.read_only, !nocopy),
                );
            }
            "tmpfs" => {}
            other => {
                return Err(bad(format!(
                    "invalid mount config: mount type {other:?} is not supported by skiff"
                )))
            }
        }
    }
    points.sort_by_key(|p| p.destination.split('/').filter(|c| !c.is_empty()).count());
    Ok(points)
}

/// The `rootfsPropagation` a container's binds need, by Docker's rule (moby's `WithMounts`):
/// a `shared`/`rshared` bind needs its source on a shared mount of the host and makes the
/// container's root `shared` (so the bind stays in the host's peer group and mounts made in
/// the container reach the host); a `slave`/`rslave` bind needs a shared or slave source and
/// makes the root `rslave` (unless already shared). `None`: the runtime's default (rslave
/// root; private binds).
pub fn root_propagation(points: &[MountPoint]) -> Result<Option<&'static str>, ContainersError> {
    let mut root = None;
    let mut infos = None;
    for p in points {
        let shared = matches!(p.propagation.as_str(), "shared" | "rshared");
        let slave = matches!(p.propagation.as_str(), "slave" | "rslave");
        if !shared && !slave {
            continue;
        }
        let infos = infos.get_or_insert_with(skiff_runtime::rootfs::mountinfo::read_self);
        let src = std::fs::canonicalize(&p.source).unwrap_or_else(|_| p.source.clone().into());
        let Some(m) = infos
            .iter()
            .filter(|m| src.starts_with(&m.mount_point))
            .max_by_key(|m| m.mount_point.len())
        else {
            continue;
        };
        let is_shared = m
            .optional
            .split_whitespace()
            .any(|o| o.starts_with("shared:"));
        let is_slave = m
            .optional
            .split_whitespace()
            .any(|o| o.starts_with("master:"));
        if shared {
            if !is_shared {
                return Err(bad(format!(
                    "path {} is mounted on {} but it is not a shared mount",
                    p.source, m.mount_point
                )));
            }
            root = Some("shared");
        } else {
            if !is_shared && !is_slave {
                return Err(bad(format!(
                    "path {} is mounted on {} but it is not a shared or slave mount",
                    p.source, m.mount_point
                )));
            }
            root = root.or(Some("rslave"));
        }
    }
    Ok(root)
}

/// The `Mode` text of a `-v` entry (its third field).
fn opts_of(spec: &str) -> String {
    spec.splitn(3, ':').nth(2).unwrap_or_default().to_string()
}

/// The OCI mounts for a container: its mount points (binds; volumes bind their data
/// directory), then `--mount type=tmpfs` and `--tmpfs`, in Docker's order.
pub fn oci_mounts(points: &[MountPoint], h: &HostConfig) -> Result<Vec<Value>, ContainersError> {
    let mut out = Vec::new();
    for p in points {
        let mut opts = vec!["rbind".to_string()];
        opts.push(if p.propagation.is_empty() {
            "rprivate".to_string()
        } else {
            p.propagation.clone()
        });
        if !p.rw {
            opts.push("ro".into());
        }
        out.push(json!({"destination": p.destination, "type": "bind", "source": p.source, "options": opts}));
    }
    for m in h.mounts.iter().flatten().filter(|m| m.kind == "tmpfs") {
        if !clean_abs(&m.target) {
            return Err(bad(format!(
                "invalid mount config: mount path must be absolute: {:?}",
                m.target
            )));
        }
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
        out.push(
            json!({"destination": m.target, "type": "tmpfs", "source": "tmpfs", "options": opts}),
        );
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
pub fn mount_points(points: &[MountPoint], h: &HostConfig) -> Vec<Value> {
    let mut out = Vec::new();
    for p in points {
        let mut v = json!({"Type": p.kind, "Source": p.source, "Destination": p.destination, "Mode": p.mode, "RW": p.rw, "Propagation": p.propagation});
        if p.kind == "volume" {
            v["Name"] = json!(p.name);
            v["Driver"] = json!(p.driver);
        }
        out.push(v);
    }
    for m in h.mounts.iter().flatten().filter(|m| m.kind == "tmpfs") {
        out.push(json!({"Type": "tmpfs", "Source": "", "Destination": m.target, "Mode": "", "RW": !m.read_only, "Propagation": ""}));
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
                propagation: "rslave".into(),
                nocopy: false,
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
            "-vol:/b",
            "vol:/b:rslave",
            "/a:/../x",
            "/a:/",
            "/a:/b:ro:z",
        ] {
            assert!(parse_bind(bad).is_err(), "{bad}");
        }
    }
}
