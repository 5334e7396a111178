//! The registry client: endpoint choice (HTTPS, HTTP fallback for insecure and loopback
//! registries, docker.io mirrors), authenticated requests that answer `WWW-Authenticate`
//! challenges, and error bodies turned into [`Error`]s.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{HeaderMap, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use url::Url;

use crate::auth::{fetch_token, strip_unauthorized, Challenge, Credentials, TokenCache};
use crate::config::{is_loopback_name, split_host_port, RegistryConfig};
use crate::credentials;
use crate::error::{render_error_body, Error, Result};
use crate::reference::{Reference, DEFAULT_DOMAIN, DOCKER_HUB_API_HOST};

/// Where requests for one registry go.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    /// `scheme://host[:port]/[prefix/]`, always ending in `/`.
    pub base: Url,
    /// Accept any TLS certificate (insecure registries over HTTPS).
    pub skip_verify: bool,
    /// Registry domain whose credentials apply (`docker.io`, `localhost:5000`, a mirror host).
    pub cred_key: String,
    /// `host[:port]` for messages and the token cache.
    pub host: String,
    pub mirror: bool,
}

impl Endpoint {
    fn new(base: Url, skip_verify: bool, cred_key: String, mirror: bool) -> Self {
        let mut base = base;
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        let host = match (base.host_str(), base.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => base.to_string(),
        };
        Self {
            base,
            skip_verify,
            cred_key,
            host,
            mirror,
        }
    }

    /// `v2/<path>` under the base.
    pub fn url(&self, v2_path: &str) -> Result<Url> {
        self.base
            .join(&format!("v2/{v2_path}"))
            .map_err(|e| Error::Config(format!("{}: bad url for {v2_path}: {e}", self.host)))
    }
}

/// A registry client. Cheap to clone; clones share connections, tokens and endpoint choices.
#[derive(Clone)]
pub struct Registry {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub config: RegistryConfig,
    http: reqwest::Client,
    http_insecure: reqwest::Client,
    tokens: TokenCache,
    /// Last challenge seen per endpoint host, so later requests authenticate up front.
    challenges: Mutex<HashMap<String, Challenge>>,
    /// Resolved endpoint per registry domain.
    endpoints: Mutex<HashMap<String, Endpoint>>,
    /// Credentials per registry domain: explicit ones, or looked up once from config.json.
    creds: Mutex<HashMap<String, Option<Credentials>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Registry {
    pub fn new(config: RegistryConfig) -> Result<Self> {
        config.validate()?;
        // One TLS stack: rustls on ring, with the platform's roots. Ignored if the process
        // already chose a provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let build = |skip_verify: bool| {
            reqwest::Client::builder()
                .user_agent(config.user_agent.clone())
                .connect_timeout(Duration::from_secs(15))
                .read_timeout(Duration::from_secs(60))
                .tls_danger_accept_invalid_certs(skip_verify)
                .redirect(reqwest::redirect::Policy::limited(10))
                .build()
                .map_err(|e| Error::Config(format!("http client: {e}")))
        };
        Ok(Self {
            inner: Arc::new(Inner {
                http: build(false)?,
                http_insecure: build(true)?,
                config,
                tokens: TokenCache::default(),
                challenges: Mutex::new(HashMap::new()),
                endpoints: Mutex::new(HashMap::new()),
                creds: Mutex::new(HashMap::new()),
            }),
        })
    }

    pub fn config(&self) -> &RegistryConfig {
        &self.inner.config
    }

    /// Uses `creds` (or anonymous access for `None`) for `registry` instead of config.json,
    /// e.g. from an `X-Registry-Auth` header.
    pub fn set_credentials(&self, registry: &str, creds: Option<Credentials>) {
        let key = credentials::normalize_registry(registry);
        lock(&self.inner.creds).insert(key, creds);
    }

    /// A GET of any `https://` (or `http://`) URL on this client's HTTP stack: rustls with the
    /// platform's roots (`SSL_CERT_FILE`/`SSL_CERT_DIR` honoured), redirects followed (up to
    /// 10), no registry auth. The body is streamed into `out`; returns the bytes written. A
    /// non-2xx answer is an [`Error::Registry`] naming the status. (The builder's
    /// `ADD <url>`.)
    pub async fn download(&self, url: &str, out: &mut (dyn std::io::Write + Send)) -> Result<u64> {
        let http = |source| Error::Http {
            context: format!("GET {url}"),
            source,
        };
        let mut resp = self.inner.http.get(url).send().await.map_err(http)?;
        let status = resp.status();
        if !status.is_success() {
            return Err(Error::Registry {
                context: format!("GET {url}"),
                status: status.as_u16(),
                code: None,
                detail: format!("status {status}"),
            });
        }
        let mut n = 0u64;
        while let Some(chunk) = resp.chunk().await.map_err(http)? {
            out.write_all(&chunk).map_err(|e| Error::Protocol {
                context: format!("GET {url}"),
                detail: format!("write: {e}"),
            })?;
            n += chunk.len() as u64;
        }
        Ok(n)
    }

    pub(crate) fn client(&self, ep: &Endpoint) -> &reqwest::Client {
        if ep.skip_verify {
            &self.inner.http_insecure
        } else {
            &self.inner.http
        }
    }

    async fn credentials_for(&self, key: &str) -> Result<Option<Credentials>> {
        if let Some(c) = lock(&self.inner.creds).get(key) {
            return Ok(c.clone());
        }
        let found = match self.inner.config.docker_config_file() {
            Some(path) => credentials::lookup(&path, key).await?,
            None => None,
        };
        lock(&self.inner.creds).insert(key.to_string(), found.clone());
        Ok(found)
    }

    pub(crate) fn forget_credentials(&self, registry: &str) {
        lock(&self.inner.creds).remove(&credentials::normalize_registry(registry));
    }

    /// Endpoints to try for `reference`, in order: docker.io mirrors first for pulls.
    pub(crate) async fn endpoints(
        &self,
        reference: &Reference,
        pull: bool,
    ) -> Result<Vec<Endpoint>> {
        let mut out = Vec::new();
        if pull && reference.domain() == DEFAULT_DOMAIN {
            for m in &self.inner.config.mirrors {
                let key = credentials::normalize_registry(m.as_str());
                out.push(Endpoint::new(m.clone(), false, key, true));
            }
        }
        out.push(self.endpoint(reference.domain()).await?);
        Ok(out)
    }

    /// The endpoint of a registry domain: HTTPS, or for insecure/loopback registries HTTPS
    /// without verification falling back to plain HTTP when HTTPS does not answer.
    pub(crate) async fn endpoint(&self, domain: &str) -> Result<Endpoint> {
        if let Some(ep) = lock(&self.inner.endpoints).get(domain) {
            return Ok(ep.clone());
        }
        let ep = if domain == DEFAULT_DOMAIN {
            let base = match &self.inner.config.docker_hub_endpoint {
                Some(u) => u.clone(),
                None => parse_url(&format!("https://{DOCKER_HUB_API_HOST}/"))?,
            };
            Endpoint::new(base, false, DEFAULT_DOMAIN.to_string(), false)
        } else {
            let resolved = self.resolve_for_cidr(domain).await;
            let https = parse_url(&format!("https://{domain}/"))?;
            if self.inner.config.is_insecure(domain, &resolved) {
                let secure = Endpoint::new(https, true, domain.to_string(), false);
                if self.ping(&secure).await.is_ok() {
                    secure
                } else {
                    let http = parse_url(&format!("http://{domain}/"))?;
                    tracing::debug!(registry = domain, "https unavailable, using plain http");
                    Endpoint::new(http, false, domain.to_string(), false)
                }
            } else {
                Endpoint::new(https, false, domain.to_string(), false)
            }
        };
        lock(&self.inner.endpoints).insert(domain.to_string(), ep.clone());
        Ok(ep)
    }

    async fn resolve_for_cidr(&self, domain: &str) -> Vec<IpAddr> {
        let (host, port) = split_host_port(domain);
        if !self.inner.config.has_cidr_entries() || is_loopback_name(host) {
            return Vec::new();
        }
        let port: u16 = port.and_then(|p| p.parse().ok()).unwrap_or(443);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        match tokio::net::lookup_host((host, port)).await {
            Ok(addrs) => addrs.map(|a| a.ip()).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// `GET /v2/`: any HTTP answer means the endpoint speaks the protocol.
    async fn ping(&self, ep: &Endpoint) -> Result<Response> {
        let url = ep.url("")?;
        self.client(ep)
            .get(url)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|source| Error::Http {
                context: ep.host.clone(),
                source,
            })
    }

    /// Sends a request built by `build`, authenticating for `scopes` as the endpoint asks:
    /// a 401 with a challenge is answered once (token or Basic) and the request repeated.
    /// Returns the response whatever its status, except an unanswerable 401.
    pub(crate) async fn send<F>(
        &self,
        ep: &Endpoint,
        scopes: &[String],
        context: &str,
        build: F,
    ) -> Result<Response>
    where
        F: Fn(&reqwest::Client) -> RequestBuilder,
    {
        let mut auth = self.auth_header(ep, scopes, false).await?;
        for attempt in 0..2 {
            let mut req = build(self.client(ep));
            if let Some(h) = &auth {
                req = req.header(AUTHORIZATION, h);
            }
            let resp = req.send().await.map_err(|source| Error::Http {
                context: context.to_string(),
                source,
            })?;
            if resp.status() != StatusCode::UNAUTHORIZED {
                return Ok(resp);
            }
            let challenge = resp
                .headers()
                .get_all(WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(crate::auth::parse_challenge);
            if attempt == 1 || challenge.is_none() {
                return Err(self.unauthorized(ep, resp).await);
            }
            if let Some(c) = challenge {
                let known = lock(&self.inner.challenges).insert(ep.host.clone(), c.clone());
                if known.as_ref() == Some(&c) && auth.is_some() && matches!(c, Challenge::Basic) {
                    return Err(self.unauthorized(ep, resp).await);
                }
            }
            auth = self.auth_header(ep, scopes, true).await?;
            if auth.is_none() {
                return Err(self.unauthorized(ep, resp).await);
            }
        }
        unreachable!("the loop returns on its second attempt")
    }

    /// The Authorization value for `ep` and `scopes` if its challenge is known.
    async fn auth_header(
        &self,
        ep: &Endpoint,
        scopes: &[String],
        fresh: bool,
    ) -> Result<Option<String>> {
        let challenge = lock(&self.inner.challenges).get(&ep.host).cloned();
        let Some(challenge) = challenge else {
            return Ok(None);
        };
        let creds = self.credentials_for(&ep.cred_key).await?;
        match challenge {
            Challenge::Basic => Ok(creds.map(|c| c.basic_header())),
            Challenge::Bearer { realm, service } => {
                let key = scopes.join(" ");
                if !fresh {
                    if let Some(t) = self.inner.tokens.get(&ep.host, &key) {
                        return Ok(Some(format!("Bearer {t}")));
                    }
                }
                let token = fetch_token(
                    self.client(ep),
                    &ep.host,
                    &realm,
                    service.as_deref(),
                    scopes,
                    creds.as_ref(),
                )
                .await?;
                let header = format!("Bearer {}", token.value);
                self.inner.tokens.put(&ep.host, &key, token);
                Ok(Some(header))
            }
        }
    }

    async fn unauthorized(&self, ep: &Endpoint, resp: Response) -> Error {
        let status = resp.status().as_u16();
        let body = resp.bytes().await.unwrap_or_default();
        let (_, detail) = render_error_body(status, &body);
        let detail = strip_unauthorized(&detail);
        let detail = if detail.starts_with("unauthorized (http") || detail.is_empty() {
            "authentication required".to_string()
        } else {
            detail
        };
        Error::Unauthorized {
            registry: ep.host.clone(),
            detail,
        }
    }

    /// Turns a non-success response into an error naming `context`.
    pub(crate) async fn status_error(&self, ep: &Endpoint, context: &str, resp: Response) -> Error {
        let status = resp.status().as_u16();
        if status == 401 {
            return self.unauthorized(ep, resp).await;
        }
        let body = resp.bytes().await.unwrap_or_default();
        let (code, detail) = render_error_body(status, &body);
        Error::Registry {
            context: context.to_string(),
            status,
            code,
            detail,
        }
    }

    /// Checks that `registry` accepts `creds` (`GET /v2/` and its challenge), then stores
    /// them in docker's config.json (or its credential helper).
    pub async fn login(&self, registry: &str, creds: Credentials) -> Result<()> {
        let domain = credentials::normalize_registry(registry);
        let ep = self.endpoint(&domain).await?;
        let resp = self.ping(&ep).await?;
        match resp.status() {
            s if s.is_success() => {}
            StatusCode::UNAUTHORIZED => {
                let challenge = resp
                    .headers()
                    .get_all(WWW_AUTHENTICATE)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .find_map(crate::auth::parse_challenge);
                match challenge {
                    Some(Challenge::Bearer { realm, service }) => {
                        let client = self.client(&ep);
                        fetch_token(
                            client,
                            &ep.host,
                            &realm,
                            service.as_deref(),
                            &[],
                            Some(&creds),
                        )
                        .await?;
                    }
                    Some(Challenge::Basic) => {
                        let url = ep.url("")?;
                        let resp = self
                            .client(&ep)
                            .get(url)
                            .header(AUTHORIZATION, creds.basic_header())
                            .send()
                            .await
                            .map_err(|source| Error::Http {
                                context: format!("login {domain}"),
                                source,
                            })?;
                        if !resp.status().is_success() {
                            return Err(self
                                .status_error(&ep, &format!("login {domain}"), resp)
                                .await);
                        }
                    }
                    None => return Err(self.unauthorized(&ep, resp).await),
                }
            }
            _ => {
                return Err(self
                    .status_error(&ep, &format!("login {domain}"), resp)
                    .await)
            }
        }
        let path = self.docker_config_file()?;
        credentials::store(&path, &domain, &creds).await?;
        self.set_credentials(&domain, Some(creds));
        Ok(())
    }

    /// Removes stored credentials for `registry`; false when there were none.
    pub async fn logout(&self, registry: &str) -> Result<bool> {
        let path = self.docker_config_file()?;
        let removed = credentials::erase(&path, registry).await?;
        self.forget_credentials(registry);
        Ok(removed)
    }

    fn docker_config_file(&self) -> Result<std::path::PathBuf> {
        self.inner
            .config
            .docker_config_file()
            .ok_or_else(|| Error::Config("no docker config path: set HOME or DOCKER_CONFIG".into()))
    }
}

pub(crate) fn parse_url(s: &str) -> Result<Url> {
    Url::parse(s).map_err(|e| Error::Config(format!("invalid url {s:?}: {e}")))
}

/// True when the next endpoint (mirror → upstream) should be tried after `e`.
pub(crate) fn try_next_endpoint(ep: &Endpoint, e: &Error) -> bool {
    ep.mirror
        && (e.is_transient()
            || e.is_not_found()
            || matches!(e, Error::Unauthorized { .. } | Error::Token { .. })
            || matches!(e, Error::Registry { status: 403, .. }))
}

/// Shorthand for building a request on `client`.
pub(crate) fn request(
    client: &reqwest::Client,
    method: Method,
    url: &Url,
    headers: &HeaderMap,
) -> RequestBuilder {
    client.request(method, url.clone()).headers(headers.clone())
}
