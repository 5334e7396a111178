//! `RUN --mount=...`, `--network=...` and `--security=...`, parsed as BuildKit parses them.
//!
//! What matches Docker:
//! - A mount is a CSV record of `key=value` fields (`"..."` quoting as Go's `encoding/csv`);
//!   keys are case-insensitive: `type`, `from`, `source`/`src`, `target`/`dst`/`destination`,
//!   `readonly`/`ro`, `readwrite`/`rw` (bare or `=bool`), `id`, `sharing`, `required`, `size`
//!   (tmpfs), `mode` (octal), `uid`, `gid`; `type` defaults to `bind`.
//! - Bind and secret/ssh mounts are read-only unless `rw`; cache and tmpfs are writable.
//! - `mode`/`uid`/`gid` only for cache, secret and ssh; `sharing` only for cache; secrets take
//!   no `from` and need one of `source`, `target`, `id`.
//! - `from=` cannot use variables ("define alias stage instead"); other values are expanded.
//! - Defaults filled in as BuildKit's dispatcher does: a secret's id is the base name of its
//!   target and its target `/run/secrets/<id>`; an ssh mount's id is `default` and its target
//!   `/run/buildkit/ssh_agent.<n>`; a cache's id is its target, sharing `shared`, mode 0755.

use serde::Serialize;

/// The mount types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MountType {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

/// Cache mount sharing modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sharing {
    Shared,
    Private,
    Locked,
}

/// One `--mount`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mount {
    pub kind: MountType,
    /// Stage name/index or image to mount from (bind/cache); the context when `None`.
    pub from: Option<String>,
    pub source: Option<String>,
    pub target: String,
    pub readonly: bool,
    /// Cache id, secret id or ssh id.
    pub id: Option<String>,
    pub sharing: Option<Sharing>,
    pub required: bool,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// tmpfs `size=` in bytes.
    pub size: Option<u64>,
}

/// `RUN --network`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    #[default]
    Default,
    None,
    Host,
}

/// `RUN --security`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SecurityMode {
    #[default]
    Sandbox,
    Insecure,
}

/// Parses `--network=MODE`.
pub fn parse_network(v: &str) -> Result<NetworkMode, String> {
    match v {
        "default" => Ok(NetworkMode::Default),
        "none" => Ok(NetworkMode::None),
        "host" => Ok(NetworkMode::Host),
        _ => Err(format!("unsupported network mode {v:?}")),
    }
}

/// Parses `--security=MODE`.
pub fn parse_security(v: &str) -> Result<SecurityMode, String> {
    match v {
        "sandbox" => Ok(SecurityMode::Sandbox),
        "insecure" => Ok(SecurityMode::Insecure),
        _ => Err(format!("unsupported security mode {v:?}")),
    }
}

/// Splits one CSV record (Go's `encoding/csv`, one line).
pub fn csv_fields(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err("extraneous or missing \" in quoted-field".into()),
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                }
            }
            match chars.next() {
                None => {
                    out.push(field);
                    return Ok(out);
                }
                Some(',') => out.push(field),
                Some(_) => return Err("extraneous or missing \" in quoted-field".into()),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        out.push(field);
                        return Ok(out);
                    }
                    Some(',') => break,
                    Some('"') => return Err("bare \" in non-quoted-field".into()),
                    Some(c) => field.push(c),
                }
            }
            out.push(field);
        }
    }
}

fn parse_bool(key: &str, v: &str) -> Result<bool, String> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!("invalid value for {key}: {v}")),
    }
}

fn parse_u32(key: &str, v: &str, radix: u32) -> Result<u32, String> {
    u32::from_str_radix(v, radix).map_err(|_| format!("invalid value {v} for {key}"))
}

/// Substitutes variables in one value; `Err` holds the message.
pub type Expander<'a> = &'a dyn Fn(&str) -> Result<String, String>;

/// Parses one `--mount` value. `expand` substitutes variables in values. Without it (parse
/// time) a mount that uses variables is only checked for `from=$VAR` and left for later
/// (`Ok(None)`), as BuildKit does.
pub fn parse_mount(
    spec: &str,
    expand: Option<Expander<'_>>,
    ssh_index: usize,
) -> Result<Option<Mount>, String> {
    let fields = csv_fields(spec).map_err(|e| format!("failed to parse csv mounts: {e}"))?;
    for field in &fields {
        if let Some((k, v)) = field.split_once('=') {
            if k.eq_ignore_ascii_case("from") && has_variable(v) {
                return Err(
                    "'from' doesn't support variable expansion, define alias stage instead"
                        .to_string(),
                );
            }
        }
    }
    if expand.is_none() && spec.contains('$') {
        return Ok(None);
    }
    let mut m = Mount {
        kind: MountType::Bind,
        from: None,
        source: None,
        target: String::new(),
        readonly: false,
        id: None,
        sharing: None,
        required: false,
        mode: None,
        uid: None,
        gid: None,
        size: None,
    };
    let mut ro_auto = true;
    for field in fields {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v.to_string())),
            None => (field.to_ascii_lowercase(), None),
        };
        let Some(value) = value else {
            match key.as_str() {
                "readonly" | "ro" => (m.readonly, ro_auto) = (true, false),
                "readwrite" | "rw" => (m.readonly, ro_auto) = (false, false),
                "required" if matches!(m.kind, MountType::Secret | MountType::Ssh) => {
                    m.required = true
                }
                "required" => {
                    return Err(format!(
                        "unexpected key '{key}' for mount type '{}'",
                        m.kind.name()
                    ))
                }
                _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
            }
            continue;
        };
        let value = match expand {
            Some(f) => f(&value)?,
            None => value,
        };
        match key.as_str() {
            "type" => {
                m.kind = match value.to_ascii_lowercase().as_str() {
                    "bind" => MountType::Bind,
                    "cache" => MountType::Cache,
                    "tmpfs" => MountType::Tmpfs,
                    "secret" => MountType::Secret,
                    "ssh" => MountType::Ssh,
                    _ => return Err(format!("unsupported mount type {value:?}")),
                }
            }
            "from" => m.from = Some(value),
            "source" | "src" => m.source = Some(value),
            "target" | "dst" | "destination" => m.target = value,
            "readonly" | "ro" => (m.readonly, ro_auto) = (parse_bool(&key, &value)?, false),
            "readwrite" | "rw" => (m.readonly, ro_auto) = (!parse_bool(&key, &value)?, false),
            "required" if matches!(m.kind, MountType::Secret | MountType::Ssh) => {
                m.required = parse_bool(&key, &value)?
            }
            "size" if m.kind == MountType::Tmpfs => {
                m.size = Some(
                    crate::units::parse_ram_bytes(&value)
                        .map_err(|_| format!("invalid value for {key}: {value}"))?,
                )
            }
            "required" | "size" => {
                return Err(format!(
                    "unexpected key '{key}' for mount type '{}'",
                    m.kind.name()
                ))
            }
            "id" => m.id = Some(value),
            "sharing" => {
                m.sharing = Some(match value.to_ascii_lowercase().as_str() {
                    "shared" => Sharing::Shared,
                    "private" => Sharing::Private,
                    "locked" => Sharing::Locked,
                    _ => return Err(format!("unsupported sharing value {value:?}")),
                })
            }
            "mode" => m.mode = Some(parse_u32("mode", &value, 8)?),
            "uid" => m.uid = Some(parse_u32("uid", &value, 10)?),
            "gid" => m.gid = Some(parse_u32("gid", &value, 10)?),
            _ => return Err(format!("unexpected key '{key}' in '{field}'")),
        }
    }
    validate(&mut m, ro_auto, ssh_index)?;
    Ok(Some(m))
}

/// The `from=` of a mount spec, read without expanding anything (it cannot use variables).
pub fn mount_from(spec: &str) -> Option<String> {
    csv_fields(spec).ok()?.into_iter().find_map(|f| {
        let (k, v) = f.split_once('=')?;
        k.eq_ignore_ascii_case("from").then(|| v.to_string())
    })
}

fn has_variable(v: &str) -> bool {
    v.find('$').is_some_and(|i| i + 1 < v.len())
}

impl MountType {
    /// The name a Dockerfile gives the type (`type=…`).
    pub fn name(self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Cache => "cache",
            MountType::Tmpfs => "tmpfs",
            MountType::Secret => "secret",
            MountType::Ssh => "ssh",
        }
    }
}

fn validate(m: &mut Mount, ro_auto: bool, ssh_index: usize) -> Result<(), String> {
    let name = m.kind.name();
    let file_info = matches!(
        m.kind,
        MountType::Secret | MountType::Ssh | MountType::Cache
    );
    if !file_info {
        for (set, what) in [
            (m.mode.is_some(), "mode"),
            (m.uid.is_some(), "uid"),
            (m.gid.is_some(), "gid"),
        ] {
            if set {
                return Err(format!("{what} not allowed for \"{name}\" type mounts"));
            }
        }
    }
    if ro_auto {
        m.readonly = !matches!(m.kind, MountType::Cache | MountType::Tmpfs);
    }
    if m.sharing.is_some() && m.kind != MountType::Cache {
        return Err(format!("invalid cache sharing set for {name} mount"));
    }
    match m.kind {
        MountType::Secret => {
            if m.from.is_some() {
                return Err("secret mount should not have a from".into());
            }
            if m.source.is_none() && m.target.is_empty() && m.id.is_none() {
                return Err("invalid secret mount. one of source, target required".into());
            }
            if m.source.is_some() && m.id.is_some() {
                return Err("both source and id can't be set".into());
            }
            if m.id.is_none() {
                let from = m.source.clone().unwrap_or_else(|| m.target.clone());
                m.id = Some(base_name(&from).to_string());
            }
            if m.target.is_empty() {
                let id = m.id.clone().unwrap_or_default();
                m.target = format!("/run/secrets/{}", base_name(&id));
            }
        }
        MountType::Ssh => {
            if m.id.is_none() {
                m.id = Some("default".into());
            }
            if m.target.is_empty() {
                m.target = format!("/run/buildkit/ssh_agent.{ssh_index}");
            }
        }
        MountType::Cache | MountType::Bind | MountType::Tmpfs => {
            if m.target.is_empty() {
                return Err(format!("mount type {name} requires a target"));
            }
            if m.kind == MountType::Cache {
                m.id.get_or_insert_with(|| m.target.clone());
                m.sharing.get_or_insert(Sharing::Shared);
                m.mode.get_or_insert(0o755);
            }
        }
    }
    Ok(())
}

fn base_name(p: &str) -> &str {
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return if p.is_empty() { "." } else { "/" };
    }
    t.rsplit('/').next().unwrap_or(t)
}

#[cfg(test)]
#[path = "mounts_tests.rs"]
mod tests;
