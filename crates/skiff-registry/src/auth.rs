//! Authentication: `WWW-Authenticate` challenges, bearer tokens (fetched per scope and cached
//! until expiry) and Basic credentials from docker's `config.json` (`auths`, `credHelpers`,
//! `credsStore`), which `login`/`logout` also write.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::Deserialize;

use crate::error::{render_error_body, Error, Result};

/// A user name and password (or token) for Basic auth and token requests.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
        }
    }

    pub(crate) fn basic_header(&self) -> String {
        format!(
            "Basic {}",
            B64.encode(format!("{}:{}", self.username, self.password))
        )
    }
}

/// What a registry asked for in `WWW-Authenticate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// Parses the first Basic or Bearer challenge of a `WWW-Authenticate` value.
pub(crate) fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let params = parse_params(rest);
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        let realm = params.get("realm")?.clone();
        return Some(Challenge::Bearer {
            realm,
            service: params.get("service").cloned(),
        });
    }
    None
}

/// `key="quoted, value",key2=token` → map (keys lowercased).
fn parse_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek() {
                if *c == ',' {
                    break;
                }
                value.push(*c);
                chars.next();
            }
        }
        out.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
    }
    out
}

/// `repository:<path>:pull` or `…:pull,push`.
pub(crate) fn repo_scope(path: &str, push: bool) -> String {
    let actions = if push { "pull,push" } else { "pull" };
    format!("repository:{path}:{actions}")
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// A bearer token and when to stop using it.
#[derive(Clone)]
pub(crate) struct Token {
    pub value: String,
    pub expires: Instant,
}

/// Tokens by (endpoint host, scopes), dropped a little before they expire.
#[derive(Default)]
pub(crate) struct TokenCache {
    tokens: std::sync::Mutex<HashMap<(String, String), Token>>,
}

impl TokenCache {
    pub fn get(&self, host: &str, scopes: &str) -> Option<String> {
        let map = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&(host.to_string(), scopes.to_string()))
            .filter(|t| t.expires > Instant::now())
            .map(|t| t.value.clone())
    }

    pub fn put(&self, host: &str, scopes: &str, token: Token) {
        let mut map = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, t| t.expires > Instant::now());
        map.insert((host.to_string(), scopes.to_string()), token);
    }
}

/// GETs a token from the challenge's realm for `scopes`, sending Basic credentials if any.
pub(crate) async fn fetch_token(
    http: &reqwest::Client,
    registry: &str,
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
    creds: Option<&Credentials>,
) -> Result<Token> {
    let token_err = |detail: String| Error::Token {
        registry: registry.to_string(),
        realm: realm.to_string(),
        detail,
    };
    let mut url = url::Url::parse(realm).map_err(|e| token_err(format!("invalid realm: {e}")))?;
    {
        let mut q = url.query_pairs_mut();
        if let Some(s) = service {
            q.append_pair("service", s);
        }
        for s in scopes {
            q.append_pair("scope", s);
        }
        if creds.is_some() {
            q.append_pair(
                "account",
                &creds.map(|c| c.username.clone()).unwrap_or_default(),
            );
        }
    }
    let mut req = http.get(url);
    if let Some(c) = creds {
        req = req.header(reqwest::header::AUTHORIZATION, c.basic_header());
    }
    let resp = req.send().await.map_err(|e| token_err(e.to_string()))?;
    let status = resp.status().as_u16();
    let body = resp.bytes().await.map_err(|e| token_err(e.to_string()))?;
    if status == 401 || status == 403 {
        let (_, detail) = render_error_body(status, &body);
        return Err(Error::Unauthorized {
            registry: registry.to_string(),
            detail: strip_unauthorized(&detail),
        });
    }
    if !(200..300).contains(&status) {
        return Err(token_err(render_error_body(status, &body).1));
    }
    let parsed: TokenResponse = serde_json::from_slice(&body)
        .map_err(|e| token_err(format!("invalid token response: {e}")))?;
    let value = parsed
        .token
        .filter(|t| !t.is_empty())
        .or(parsed.access_token)
        .ok_or_else(|| token_err("token response has no token".into()))?;
    // The spec's default lifetime is 60 s; keep a margin for clock skew and slow requests.
    let lifetime = parsed.expires_in.unwrap_or(60).max(60);
    Ok(Token {
        value,
        expires: Instant::now() + Duration::from_secs(lifetime.saturating_sub(10)),
    })
}

/// "unauthorized: authentication required" → "authentication required" (the variant adds it).
pub(crate) fn strip_unauthorized(detail: &str) -> String {
    detail
        .strip_prefix("unauthorized: ")
        .unwrap_or(detail)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        let h = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#;
        assert_eq!(
            parse_challenge(h),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge("bearer realm=http://127.0.0.1:9/t, service=reg"),
            Some(Challenge::Bearer {
                realm: "http://127.0.0.1:9/t".into(),
                service: Some("reg".into()),
            })
        );
        assert_eq!(parse_challenge("Bearer service=x"), None);
        assert_eq!(parse_challenge("Negotiate abc"), None);
        let p = parse_params(r#"a="x,\"y",b=z"#);
        assert_eq!(p["a"], "x,\"y");
        assert_eq!(p["b"], "z");
    }

    #[test]
    fn scopes_and_headers() {
        assert_eq!(
            repo_scope("library/busybox", false),
            "repository:library/busybox:pull"
        );
        assert_eq!(repo_scope("a/b", true), "repository:a/b:pull,push");
        assert_eq!(
            Credentials::new("aladdin", "opensesame").basic_header(),
            "Basic YWxhZGRpbjpvcGVuc2VzYW1l"
        );
        assert!(!format!("{:?}", Credentials::new("u", "secret")).contains("secret"));
    }

    #[test]
    fn token_cache_expires() {
        let c = TokenCache::default();
        c.put(
            "h",
            "s",
            Token {
                value: "t".into(),
                expires: Instant::now() + Duration::from_secs(30),
            },
        );
        assert_eq!(c.get("h", "s").as_deref(), Some("t"));
        assert_eq!(c.get("h", "other"), None);
        c.put(
            "h",
            "old",
            Token {
                value: "t".into(),
                expires: Instant::now(),
            },
        );
        assert_eq!(c.get("h", "old"), None);
    }
}
