//! One error enum for the registry client; messages are lowercase and name the reference
//! or registry and what the registry said ("pull busybox:latest: manifest unknown").

use std::path::PathBuf;

use serde::Deserialize;

use crate::reference::ReferenceError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Coarse classification, for mapping onto HTTP statuses or exit codes at the edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidInput,
    NotFound,
    Unauthorized,
    Denied,
    Unavailable,
    Corrupt,
    Unsupported,
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Reference(#[from] ReferenceError),

    #[error("invalid platform {input:?}: {reason}")]
    InvalidPlatform { input: String, reason: &'static str },

    #[error("invalid registry configuration: {0}")]
    Config(String),

    /// The registry answered with an error status; `detail` is its error body, rendered.
    #[error("{context}: {detail}")]
    Registry {
        context: String,
        status: u16,
        /// First error code from the body (`MANIFEST_UNKNOWN`), if any.
        code: Option<String>,
        detail: String,
    },

    #[error("{registry}: unauthorized: {detail}")]
    Unauthorized { registry: String, detail: String },

    #[error("{registry}: get token from {realm}: {detail}")]
    Token {
        registry: String,
        realm: String,
        detail: String,
    },

    #[error("{context}: {source}")]
    Http {
        context: String,
        #[source]
        source: reqwest::Error,
    },

    #[error("{context}: {detail}")]
    Protocol { context: String, detail: String },

    #[error("{context}: invalid manifest: {source}")]
    InvalidManifest {
        context: String,
        #[source]
        source: serde_json::Error,
    },

    #[error(
        "{context}: manifest schema 1 ({media_type}) is not supported: push the image again with a current client"
    )]
    Schema1 { context: String, media_type: String },

    #[error("{context}: unsupported manifest media type {media_type:?}")]
    UnsupportedMediaType { context: String, media_type: String },

    #[error("{context}: no matching manifest for {platform} in the manifest list entries (available: {available})")]
    NoMatchingPlatform {
        context: String,
        platform: String,
        available: String,
    },

    #[error("{context}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        context: String,
        expected: String,
        actual: String,
    },

    #[error("{context}: size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        context: String,
        expected: u64,
        actual: u64,
    },

    #[error("unsupported digest algorithm {0:?}")]
    UnsupportedDigest(String),

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path}: invalid docker config: {detail}")]
    DockerConfig { path: PathBuf, detail: String },

    #[error("credential helper docker-credential-{helper}: {detail}")]
    CredentialHelper { helper: String, detail: String },
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Reference(_) | Error::InvalidPlatform { .. } | Error::Config(_) => {
                ErrorKind::InvalidInput
            }
            Error::Registry { status, code, .. } => match (status, code.as_deref()) {
                (401, _) | (_, Some("UNAUTHORIZED")) => ErrorKind::Unauthorized,
                (403, _) | (_, Some("DENIED")) => ErrorKind::Denied,
                (404, _) | (_, Some("MANIFEST_UNKNOWN" | "BLOB_UNKNOWN" | "NAME_UNKNOWN")) => {
                    ErrorKind::NotFound
                }
                (400, _) => ErrorKind::InvalidInput,
                (s, _) if *s >= 500 => ErrorKind::Unavailable,
                _ => ErrorKind::Internal,
            },
            Error::Unauthorized { .. } | Error::Token { .. } => ErrorKind::Unauthorized,
            Error::Http { .. } | Error::Protocol { .. } => ErrorKind::Unavailable,
            Error::NoMatchingPlatform { .. } => ErrorKind::NotFound,
            Error::InvalidManifest { .. }
            | Error::DigestMismatch { .. }
            | Error::SizeMismatch { .. } => ErrorKind::Corrupt,
            Error::Schema1 { .. }
            | Error::UnsupportedMediaType { .. }
            | Error::UnsupportedDigest(_) => ErrorKind::Unsupported,
            Error::Io { .. } | Error::DockerConfig { .. } | Error::CredentialHelper { .. } => {
                ErrorKind::Internal
            }
        }
    }

    /// True when the registry said the thing asked for does not exist.
    pub fn is_not_found(&self) -> bool {
        self.kind() == ErrorKind::NotFound
    }

    /// Worth another try on another endpoint or later (connection errors, 5xx, 429).
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            Error::Http { source, .. } => {
                source.is_connect()
                    || source.is_timeout()
                    || source.is_request()
                    || source.is_body()
                    || source.is_decode()
            }
            Error::Registry { status, .. } => *status >= 500 || *status == 429,
            Error::Protocol { .. } => true,
            _ => false,
        }
    }
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(Debug, Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// Renders a registry error body `{"errors":[{"code","message"}]}` the way docker does:
/// `manifest unknown`, `unauthorized: authentication required`. Falls back to the HTTP status.
pub(crate) fn render_error_body(status: u16, body: &[u8]) -> (Option<String>, String) {
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let entries = parsed.map(|b| b.errors).unwrap_or_default();
    if entries.is_empty() {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        let reason = reqwest::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("error")
            .to_lowercase();
        let detail = if text.is_empty() || text.len() > 200 || text.starts_with('<') {
            format!("{reason} (http {status})")
        } else {
            format!("{reason} (http {status}): {text}")
        };
        return (None, detail);
    }
    let code = entries.first().map(|e| e.code.clone());
    let parts: Vec<String> = entries
        .iter()
        .map(|e| {
            let code = e.code.to_lowercase().replace('_', " ");
            let msg = e.message.trim();
            if msg.is_empty() || msg.eq_ignore_ascii_case(&code) {
                code
            } else if code.is_empty() {
                msg.to_string()
            } else {
                format!("{code}: {msg}")
            }
        })
        .collect();
    (code, parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_error_bodies() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}"#;
        assert_eq!(
            render_error_body(404, body),
            (Some("MANIFEST_UNKNOWN".into()), "manifest unknown".into())
        );
        let body = br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#;
        assert_eq!(
            render_error_body(401, body).1,
            "unauthorized: authentication required"
        );
        assert_eq!(render_error_body(502, b"").1, "bad gateway (http 502)");
        assert_eq!(
            render_error_body(500, b"oops").1,
            "internal server error (http 500): oops"
        );
    }

    #[test]
    fn kinds() {
        let e = Error::Registry {
            context: "pull busybox:latest".into(),
            status: 404,
            code: Some("MANIFEST_UNKNOWN".into()),
            detail: "manifest unknown".into(),
        };
        assert_eq!(e.to_string(), "pull busybox:latest: manifest unknown");
        assert!(e.is_not_found());
        assert!(!e.is_transient());
    }
}
