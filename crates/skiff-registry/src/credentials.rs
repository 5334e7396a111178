//! Docker's `config.json`: credentials under `auths` (base64 `user:password` in `auth`), per
//! registry helpers in `credHelpers`, a default helper in `credsStore`
//! (`docker-credential-<name> get|store|erase`). Writes keep every other key, are 0600 and
//! atomic (temp file + fsync + rename).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{Map, Value};
use tokio::io::AsyncWriteExt;

use crate::auth::Credentials;
use crate::error::{Error, Result};
use crate::reference::{DEFAULT_DOMAIN, DOCKER_HUB_API_HOST, LEGACY_DEFAULT_DOMAIN};

/// The key docker uses for docker.io in `auths` and with credential helpers.
pub const DOCKER_HUB_CONFIG_KEY: &str = "https://index.docker.io/v1/";

/// Normalises what a user types after `docker login` (`docker.io`, `https://index.docker.io/v1/`,
/// `localhost:5000`, `http://host:5000/`) to a registry domain (`docker.io`, `localhost:5000`).
pub fn normalize_registry(s: &str) -> String {
    let s = s.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or("").to_ascii_lowercase();
    match host.as_str() {
        "" | LEGACY_DEFAULT_DOMAIN | DOCKER_HUB_API_HOST => DEFAULT_DOMAIN.to_string(),
        _ => host,
    }
}

/// The key for `registry` in `auths` / the server URL given to helpers.
pub fn config_key(registry: &str) -> String {
    let r = normalize_registry(registry);
    if r == DEFAULT_DOMAIN {
        DOCKER_HUB_CONFIG_KEY.to_string()
    } else {
        r
    }
}

async fn read_config(path: &Path) -> Result<Option<Map<String, Value>>> {
    let data = match tokio::fs::read(path).await {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    if data.iter().all(u8::is_ascii_whitespace) {
        return Ok(Some(Map::new()));
    }
    match serde_json::from_slice(&data) {
        Ok(Value::Object(m)) => Ok(Some(m)),
        Ok(_) => Err(Error::DockerConfig {
            path: path.to_path_buf(),
            detail: "not a json object".into(),
        }),
        Err(e) => Err(Error::DockerConfig {
            path: path.to_path_buf(),
            detail: e.to_string(),
        }),
    }
}

fn helper_for(cfg: &Map<String, Value>, key: &str, registry: &str) -> Option<String> {
    let helpers = cfg.get("credHelpers").and_then(Value::as_object);
    let named = helpers.and_then(|h| {
        h.get(registry)
            .or_else(|| h.get(key))
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    named.or_else(|| {
        cfg.get("credsStore")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    })
}

/// Finds the `auths` entry for `registry`, accepting the legacy key spellings
/// (`https://host/v1/`, `http://host`).
fn auths_entry<'a>(cfg: &'a Map<String, Value>, registry: &str) -> Option<(&'a String, &'a Value)> {
    let auths = cfg.get("auths")?.as_object()?;
    let want = normalize_registry(registry);
    auths.iter().find(|(k, _)| normalize_registry(k) == want)
}

fn decode_entry(path: &Path, v: &Value) -> Result<Option<Credentials>> {
    let bad = |detail: String| Error::DockerConfig {
        path: path.to_path_buf(),
        detail,
    };
    if let Some(auth) = v
        .get("auth")
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty())
    {
        let raw = B64
            .decode(auth.trim())
            .map_err(|e| bad(format!("invalid auth value: {e}")))?;
        let raw = String::from_utf8(raw).map_err(|_| bad("auth value is not utf-8".into()))?;
        let (u, p) = raw
            .split_once(':')
            .ok_or_else(|| bad("auth value has no ':'".into()))?;
        return Ok(Some(Credentials::new(u, p)));
    }
    let user = v.get("username").and_then(Value::as_str);
    let pass = v.get("password").and_then(Value::as_str);
    Ok(match (user, pass) {
        (Some(u), Some(p)) if !u.is_empty() => Some(Credentials::new(u, p)),
        _ => None,
    })
}

/// Credentials for `registry` from the config file at `path` (helpers first, then `auths`).
pub async fn lookup(path: &Path, registry: &str) -> Result<Option<Credentials>> {
    let Some(cfg) = read_config(path).await? else {
        return Ok(None);
    };
    let key = config_key(registry);
    if let Some(helper) = helper_for(&cfg, &key, &normalize_registry(registry)) {
        if let Some(c) = helper_get(&helper, &key).await? {
            return Ok(Some(c));
        }
    }
    match auths_entry(&cfg, registry) {
        Some((_, v)) => decode_entry(path, v),
        None => Ok(None),
    }
}

/// Stores `creds` for `registry`: through the configured helper if any, else base64 in `auths`.
pub async fn store(path: &Path, registry: &str, creds: &Credentials) -> Result<()> {
    let mut cfg = read_config(path).await?.unwrap_or_default();
    let key = config_key(registry);
    if let Some(helper) = helper_for(&cfg, &key, &normalize_registry(registry)) {
        let input = serde_json::json!({
            "ServerURL": key, "Username": creds.username, "Secret": creds.password,
        });
        run_helper(&helper, "store", input.to_string().as_bytes()).await?;
        // Docker leaves an empty entry in auths so `docker info`/logout know of the login.
        set_auth_entry(&mut cfg, &key, Value::Object(Map::new()));
    } else {
        let auth = B64.encode(format!("{}:{}", creds.username, creds.password));
        set_auth_entry(&mut cfg, &key, serde_json::json!({ "auth": auth }));
    }
    write_config(path, &cfg).await
}

/// Removes the credentials for `registry`; returns false when there were none.
pub async fn erase(path: &Path, registry: &str) -> Result<bool> {
    let Some(mut cfg) = read_config(path).await? else {
        return Ok(false);
    };
    let key = config_key(registry);
    let mut found = false;
    if let Some(helper) = helper_for(&cfg, &key, &normalize_registry(registry)) {
        found |= run_helper(&helper, "erase", key.as_bytes()).await.is_ok();
    }
    let want = normalize_registry(registry);
    if let Some(auths) = cfg.get_mut("auths").and_then(Value::as_object_mut) {
        let before = auths.len();
        auths.retain(|k, _| normalize_registry(k) != want);
        found |= auths.len() != before;
    }
    if found {
        write_config(path, &cfg).await?;
    }
    Ok(found)
}

fn set_auth_entry(cfg: &mut Map<String, Value>, key: &str, entry: Value) {
    let want = normalize_registry(key);
    let auths = cfg
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    if !auths.is_object() {
        *auths = Value::Object(Map::new());
    }
    if let Some(a) = auths.as_object_mut() {
        a.retain(|k, _| normalize_registry(k) != want);
        a.insert(key.to_string(), entry);
    }
}

async fn write_config(path: &Path, cfg: &Map<String, Value>) -> Result<()> {
    let path = path.to_path_buf();
    let data = serde_json::to_vec_pretty(cfg).map_err(|e| Error::DockerConfig {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    tokio::task::spawn_blocking(move || write_atomic(&path, &data))
        .await
        .map_err(|e| Error::Config(format!("config writer task failed: {e}")))?
}

fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let io = |p: &Path| {
        let p: PathBuf = p.to_path_buf();
        move |source| Error::Io { path: p, source }
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io(dir))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io(&tmp))?;
        f.write_all(data).map_err(io(&tmp))?;
        f.write_all(b"\n").map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        std::fs::rename(&tmp, path).map_err(io(path))?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

async fn helper_get(helper: &str, server: &str) -> Result<Option<Credentials>> {
    match run_helper(helper, "get", server.as_bytes()).await {
        Ok(out) => {
            let v: Value = serde_json::from_slice(&out).map_err(|e| Error::CredentialHelper {
                helper: helper.to_string(),
                detail: format!("invalid output: {e}"),
            })?;
            let user = v.get("Username").and_then(Value::as_str).unwrap_or("");
            let secret = v.get("Secret").and_then(Value::as_str).unwrap_or("");
            if secret.is_empty() {
                return Ok(None);
            }
            Ok(Some(Credentials::new(user, secret)))
        }
        Err(Error::CredentialHelper { detail, .. }) if detail.contains("credentials not found") => {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

async fn run_helper(helper: &str, verb: &str, input: &[u8]) -> Result<Vec<u8>> {
    let err = |detail: String| Error::CredentialHelper {
        helper: helper.to_string(),
        detail,
    };
    let mut child = tokio::process::Command::new(format!("docker-credential-{helper}"))
        .arg(verb)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| err(format!("{verb}: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input)
            .await
            .map_err(|e| err(format!("{verb}: write stdin: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| err(format!("{verb}: {e}")))?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let msg = if msg.is_empty() {
            String::from_utf8_lossy(&out.stderr).trim().to_string()
        } else {
            msg
        };
        return Err(err(format!("{verb}: {msg}").to_lowercase()));
    }
    Ok(out.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert_eq!(
            normalize_registry("https://index.docker.io/v1/"),
            "docker.io"
        );
        assert_eq!(normalize_registry("index.docker.io"), "docker.io");
        assert_eq!(normalize_registry("registry-1.docker.io"), "docker.io");
        assert_eq!(
            normalize_registry("http://LocalHost:5000/"),
            "localhost:5000"
        );
        assert_eq!(config_key("docker.io"), DOCKER_HUB_CONFIG_KEY);
        assert_eq!(config_key("127.0.0.1:5000"), "127.0.0.1:5000");
    }

    #[tokio::test]
    async fn store_lookup_erase_keeps_other_keys() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/config.json");
        assert_eq!(lookup(&path, "docker.io").await.unwrap(), None);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            &path,
            r#"{"psFormat":"x","auths":{"https://other.io/v1/":{"auth":"YTpi"}}}"#,
        )
        .unwrap();
        store(&path, "localhost:5000", &Credentials::new("u", "p:w"))
            .await
            .unwrap();
        store(&path, "index.docker.io", &Credentials::new("hub", "pw"))
            .await
            .unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(v["psFormat"], "x");
        assert_eq!(
            v["auths"][DOCKER_HUB_CONFIG_KEY]["auth"],
            B64.encode("hub:pw")
        );
        assert_eq!(
            lookup(&path, "localhost:5000").await.unwrap(),
            Some(Credentials::new("u", "p:w"))
        );
        assert_eq!(
            lookup(&path, "other.io").await.unwrap(),
            Some(Credentials::new("a", "b"))
        );
        assert_eq!(
            lookup(&path, "docker.io").await.unwrap(),
            Some(Credentials::new("hub", "pw"))
        );
        assert!(erase(&path, "localhost:5000").await.unwrap());
        assert!(!erase(&path, "localhost:5000").await.unwrap());
        assert_eq!(lookup(&path, "localhost:5000").await.unwrap(), None);
        let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(v["psFormat"], "x");
        assert!(v["auths"].get("https://other.io/v1/").is_some());
    }

    #[tokio::test]
    async fn credential_helper() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("docker-credential-fake");
        std::fs::write(
            &bin,
            "#!/bin/sh\nread server\nif [ \"$server\" = \"h.io\" ]; then echo '{\"Username\":\"hu\",\"Secret\":\"hs\"}'; else echo 'credentials not found in native keychain'; exit 1; fi\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, r#"{"credHelpers":{"h.io":"fake","x.io":"fake"}}"#).unwrap();
        // The helper is found on PATH, as docker does.
        let old = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![dir.path().to_path_buf()];
        paths.extend(std::env::split_paths(&old));
        // SAFETY: this test module's only env mutation; other tests do not read PATH concurrently
        // in a way that matters (they spawn no helpers).
        unsafe { std::env::set_var("PATH", std::env::join_paths(paths).unwrap()) };
        assert_eq!(
            lookup(&path, "h.io").await.unwrap(),
            Some(Credentials::new("hu", "hs"))
        );
        assert_eq!(lookup(&path, "x.io").await.unwrap(), None);
    }
}
