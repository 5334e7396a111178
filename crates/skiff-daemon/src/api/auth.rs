//! Registry credentials from clients: the `X-Registry-Auth` header (base64url JSON
//! AuthConfig) on pulls, and `POST /auth`, which checks credentials against the registry
//! without storing them anywhere (the client keeps them, as with dockerd).

use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use hyper::StatusCode;
use serde::Deserialize;
use skiff_registry::{Credentials, Registry};

use super::body::{self, Resp};
use super::error::{registry_kind, ApiError, ApiResult};
use crate::state::{registry_config, Daemon};

/// Docker's AuthConfig.
#[derive(Debug, Default, Deserialize)]
pub struct AuthConfig {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    /// base64 `user:password`, as in config.json.
    #[serde(default)]
    pub auth: String,
    #[serde(default)]
    pub serveraddress: String,
    #[serde(default)]
    pub identitytoken: String,
    #[serde(default)]
    pub registrytoken: String,
    #[serde(default)]
    pub email: String,
}

impl AuthConfig {
    /// The user name and password, if any.
    pub fn credentials(&self) -> ApiResult<Option<Credentials>> {
        if !self.username.is_empty() {
            return Ok(Some(Credentials::new(&self.username, &self.password)));
        }
        if !self.auth.is_empty() {
            let raw = STANDARD
                .decode(self.auth.trim())
                .map_err(|e| ApiError::invalid(format!("invalid auth value: {e}")))?;
            let raw = String::from_utf8(raw)
                .map_err(|_| ApiError::invalid("invalid auth value: not utf-8"))?;
            let (u, p) = raw
                .split_once(':')
                .ok_or_else(|| ApiError::invalid("invalid auth value: no ':'"))?;
            return Ok(Some(Credentials::new(u, p)));
        }
        if !self.identitytoken.is_empty() || !self.registrytoken.is_empty() {
            return Err(ApiError::not_implemented(
                "identity and registry tokens are not supported yet",
            ));
        }
        Ok(None)
    }
}

/// Decodes `X-Registry-Auth`. Docker encodes with base64url; padded, unpadded and standard
/// alphabets are all accepted. An empty header or `{}` means anonymous.
pub fn decode_header(v: &str) -> ApiResult<Option<Credentials>> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    let raw = URL_SAFE
        .decode(v)
        .or_else(|_| URL_SAFE_NO_PAD.decode(v))
        .or_else(|_| STANDARD.decode(v))
        .map_err(|e| ApiError::invalid(format!("invalid X-Registry-Auth header: {e}")))?;
    let cfg: AuthConfig = serde_json::from_slice(&raw)
        .map_err(|e| ApiError::invalid(format!("invalid X-Registry-Auth header: {e}")))?;
    cfg.credentials()
}

/// `POST /auth`: `{"Status": "Login Succeeded"}` or 401 with the registry's reason.
pub async fn auth(d: &Daemon, body: &[u8]) -> ApiResult<Resp> {
    let cfg: AuthConfig = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid(format!("invalid auth configuration: {e}")))?;
    let creds = cfg
        .credentials()?
        .ok_or_else(|| ApiError::invalid("username is required"))?;
    let server = if cfg.serveraddress.is_empty() {
        "https://index.docker.io/v1/".to_string()
    } else {
        cfg.serveraddress.clone()
    };
    // The registry client's login checks the credentials (`GET /v2/` and its challenge)
    // and then writes a docker config file: give it a throwaway one, so nothing is kept.
    let scratch = tempfile::tempdir()
        .map_err(|e| ApiError::system(format!("login {server}: scratch dir: {e}")))?;
    let mut rc = registry_config(&d.config()).map_err(|e| ApiError::system(e.to_string()))?;
    rc.docker_config_path = Some(scratch.path().join("config.json"));
    let reg = Registry::new(rc).map_err(|e| ApiError::system(e.to_string()))?;
    match reg.login(&server, creds).await {
        Ok(()) => Ok(body::json(
            StatusCode::OK,
            &serde_json::json!({"Status": "Login Succeeded", "IdentityToken": ""}),
        )),
        Err(e) => {
            let kind = match registry_kind(&e) {
                super::error::ErrorKind::Forbidden => super::error::ErrorKind::Unauthorized,
                k => k,
            };
            Err(ApiError::new(kind, e.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_forms() {
        let j = br#"{"username":"u","password":"p+/?","serveraddress":"x"}"#;
        for enc in [
            URL_SAFE.encode(j),
            URL_SAFE_NO_PAD.encode(j),
            STANDARD.encode(j),
        ] {
            let c = decode_header(&enc).unwrap().unwrap();
            assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p+/?"));
        }
        assert!(decode_header("").unwrap().is_none());
        assert!(decode_header(&URL_SAFE.encode(b"{}")).unwrap().is_none());
        let a = URL_SAFE.encode(br#"{"auth":"dTpw"}"#);
        assert_eq!(decode_header(&a).unwrap().unwrap().username, "u");
        assert_eq!(decode_header("!!!").unwrap_err().status(), 400);
    }
}
