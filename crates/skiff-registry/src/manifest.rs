//! Manifests: fetch by tag or digest (Docker v2 schema 2, Docker manifest list, OCI manifest,
//! OCI index), digest computed or verified on the bytes fetched, and platform selection.

use std::fmt;
use std::str::FromStr;

use bytes::Bytes;
use oci_spec::image::{Digest, ImageIndex, ImageManifest};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::Method;

use crate::auth::repo_scope;
use crate::blob::sha256_digest;
use crate::client::{request, try_next_endpoint, Registry};
use crate::error::{Error, Result};
use crate::reference::Reference;

pub const DOCKER_MANIFEST_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST_V1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_MANIFEST_V1_SIGNED: &str =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Manifests larger than this are refused (docker uses 4 MiB).
pub const MAX_MANIFEST_SIZE: usize = 4 << 20;

/// What a fetched manifest is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    /// An image manifest (Docker v2 schema 2 or OCI).
    Image,
    /// A list of per-platform manifests (Docker manifest list or OCI index).
    Index,
}

/// A manifest exactly as the registry sent it.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    pub bytes: Bytes,
    pub media_type: String,
    pub digest: Digest,
}

impl FetchedManifest {
    pub fn kind(&self) -> ManifestKind {
        match self.media_type.as_str() {
            DOCKER_MANIFEST_LIST | OCI_INDEX => ManifestKind::Index,
            _ => ManifestKind::Image,
        }
    }

    pub fn image(&self) -> Result<ImageManifest> {
        serde_json::from_slice(&self.bytes).map_err(|source| Error::InvalidManifest {
            context: format!("manifest {}", self.digest),
            source,
        })
    }

    pub fn index(&self) -> Result<ImageIndex> {
        serde_json::from_slice(&self.bytes).map_err(|source| Error::InvalidManifest {
            context: format!("manifest list {}", self.digest),
            source,
        })
    }
}

/// An image manifest chosen for a platform, with the index it came from if any.
#[derive(Debug, Clone)]
pub struct ResolvedManifest {
    pub index: Option<FetchedManifest>,
    pub manifest: FetchedManifest,
    pub image: ImageManifest,
}

/// `os/arch[/variant]`, normalised as containerd does (`x86_64` → `amd64`, `aarch64` → `arm64`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    pub fn new(os: &str, arch: &str, variant: Option<&str>) -> Self {
        let os = os.to_ascii_lowercase();
        let os = if os == "macos" { "darwin".into() } else { os };
        let (architecture, variant) = normalize_arch(&arch.to_ascii_lowercase(), variant);
        Self {
            os,
            architecture,
            variant,
        }
    }

    /// The platform of this machine (linux/amd64 here).
    pub fn host() -> Self {
        Self::new("linux", std::env::consts::ARCH, None)
    }

    /// True when an index entry for `other` can run where `self` was asked for.
    pub fn matches(&self, os: &str, arch: &str, variant: Option<&str>) -> bool {
        let other = Platform::new(os, arch, variant);
        if other.os != self.os || other.architecture != self.architecture {
            return false;
        }
        match (&self.variant, &other.variant) {
            (None, _) => true,
            (Some(a), Some(b)) => a == b,
            // An entry without variant for arm64 is v8.
            (Some(a), None) => self.architecture == "arm64" && a == "v8",
        }
    }
}

fn normalize_arch(arch: &str, variant: Option<&str>) -> (String, Option<String>) {
    let variant = variant
        .filter(|v| !v.is_empty())
        .map(str::to_ascii_lowercase);
    match arch {
        "x86_64" | "x86-64" | "amd64" => ("amd64".into(), variant),
        "aarch64" | "arm64" => {
            let v = match variant.as_deref() {
                Some("8") | Some("v8") | Some("v8.0") => Some("v8".into()),
                _ => variant,
            };
            ("arm64".into(), v)
        }
        "armhf" => ("arm".into(), Some("v7".into())),
        "armel" => ("arm".into(), Some("v6".into())),
        "arm" => {
            let v = match variant.as_deref() {
                None | Some("7") => Some("v7".into()),
                Some("6") => Some("v6".into()),
                Some("5") => Some("v5".into()),
                _ => variant,
            };
            ("arm".into(), v)
        }
        "i386" | "i686" | "x86" => ("386".into(), variant),
        other => (other.to_string(), variant),
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = Error;
    /// Parses `--platform` as docker does: `linux`, `linux/arm64`, `linux/arm64/v8`, `arm64`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = |reason| Error::InvalidPlatform {
            input: s.to_string(),
            reason,
        };
        let parts: Vec<&str> = s.trim().split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad("empty component"));
        }
        let ok = |p: &&str| {
            p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        };
        if !parts.iter().all(ok) {
            return Err(bad("invalid character"));
        }
        let known_os = |p: &str| {
            matches!(
                p.to_ascii_lowercase().as_str(),
                "linux"
                    | "windows"
                    | "darwin"
                    | "macos"
                    | "freebsd"
                    | "netbsd"
                    | "openbsd"
                    | "solaris"
                    | "illumos"
                    | "aix"
                    | "android"
                    | "ios"
                    | "plan9"
                    | "js"
                    | "wasip1"
            )
        };
        match parts.as_slice() {
            [one] if known_os(one) => Ok(Platform::new(one, std::env::consts::ARCH, None)),
            [one] => Ok(Platform::new("linux", one, None)),
            [os, arch] => Ok(Platform::new(os, arch, None)),
            [os, arch, variant] => Ok(Platform::new(os, arch, Some(variant))),
            _ => Err(bad("want os[/arch[/variant]]")),
        }
    }
}

/// Decides the media type from the Content-Type, or from the body when the registry sent
/// none or a generic one.
fn detect_media_type(content_type: Option<&str>, body: &[u8]) -> String {
    let ct = content_type
        .map(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let generic = ct.is_empty()
        || ct == "application/json"
        || ct == "text/plain"
        || ct == "application/octet-stream";
    if !generic {
        return ct;
    }
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "schemaVersion", default)]
        schema_version: Option<u32>,
        #[serde(rename = "mediaType", default)]
        media_type: Option<String>,
        #[serde(default)]
        manifests: Option<serde_json::Value>,
        #[serde(default)]
        signatures: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<Probe>(body) {
        Ok(p) if p.media_type.is_some() => p.media_type.unwrap_or_default(),
        Ok(p) if p.schema_version == Some(1) => if p.signatures.is_some() {
            DOCKER_MANIFEST_V1_SIGNED
        } else {
            DOCKER_MANIFEST_V1
        }
        .to_string(),
        Ok(p) if p.manifests.is_some() => OCI_INDEX.to_string(),
        Ok(_) => OCI_MANIFEST.to_string(),
        Err(_) => ct,
    }
}

impl Registry {
    /// Fetches the manifest `reference` names (its digest if it has one, else its tag), as raw
    /// bytes with media type and digest. A digest reference is verified against the bytes.
    pub async fn fetch_manifest(&self, reference: &Reference) -> Result<FetchedManifest> {
        let context = format!("pull {}", reference.familiar());
        let endpoints = self.endpoints(reference, true).await?;
        let mut last = None;
        let cfg = &self.inner.config;
        for ep in &endpoints {
            // Mirrors get one try (the next endpoint is the retry); the upstream a few.
            let attempts = if ep.mirror {
                1
            } else {
                cfg.blob_retries.max(1)
            };
            let mut attempt = 1;
            loop {
                match self.fetch_manifest_at(ep, reference, &context).await {
                    Ok(m) => return Ok(m),
                    Err(e) if try_next_endpoint(ep, &e) => {
                        tracing::info!(mirror = %ep.base, error = %e, "mirror failed, trying next endpoint");
                        last = Some(e);
                        break;
                    }
                    Err(e) if e.is_transient() && attempt < attempts => {
                        tracing::warn!(%context, error = %e, attempt, "retrying manifest fetch");
                        tokio::time::sleep(cfg.retry_backoff * 2u32.pow(attempt - 1)).await;
                        attempt += 1;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Err(last.unwrap_or_else(|| Error::Config("no endpoint".into())))
    }

    async fn fetch_manifest_at(
        &self,
        ep: &crate::client::Endpoint,
        reference: &Reference,
        context: &str,
    ) -> Result<FetchedManifest> {
        let url = ep.url(&format!(
            "{}/manifests/{}",
            reference.repository(),
            reference.manifest_ref()
        ))?;
        let mut headers = HeaderMap::new();
        let accept = [
            OCI_INDEX,
            DOCKER_MANIFEST_LIST,
            OCI_MANIFEST,
            DOCKER_MANIFEST_V2,
            DOCKER_MANIFEST_V1_SIGNED,
        ]
        .join(", ");
        headers.insert(
            ACCEPT,
            HeaderValue::from_str(&accept).expect("static header value"),
        );
        let scopes = [repo_scope(reference.repository(), false)];
        let resp = self
            .send(ep, &scopes, context, |c| {
                request(c, Method::GET, &url, &headers)
            })
            .await?;
        if !resp.status().is_success() {
            return Err(self.status_error(ep, context, resp).await);
        }
        if resp
            .content_length()
            .is_some_and(|l| l > MAX_MANIFEST_SIZE as u64)
        {
            return Err(Error::Protocol {
                context: context.to_string(),
                detail: "manifest larger than 4 MiB".into(),
            });
        }
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = resp.bytes().await.map_err(|source| Error::Http {
            context: context.to_string(),
            source,
        })?;
        let media_type = detect_media_type(content_type.as_deref(), &bytes);
        if media_type == DOCKER_MANIFEST_V1 || media_type == DOCKER_MANIFEST_V1_SIGNED {
            return Err(Error::Schema1 {
                context: context.to_string(),
                media_type,
            });
        }
        if ![
            DOCKER_MANIFEST_V2,
            DOCKER_MANIFEST_LIST,
            OCI_MANIFEST,
            OCI_INDEX,
        ]
        .contains(&media_type.as_str())
        {
            return Err(Error::UnsupportedMediaType {
                context: context.to_string(),
                media_type,
            });
        }
        let digest = match reference.digest() {
            Some(want) => {
                crate::blob::verify_bytes(want, &bytes, context)?;
                want.clone()
            }
            None => sha256_digest(&bytes),
        };
        Ok(FetchedManifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// Fetches `reference` and, if it is a list, the entry for `platform`; returns the image
    /// manifest parsed, with the index it was picked from.
    pub async fn resolve_manifest(
        &self,
        reference: &Reference,
        platform: &Platform,
    ) -> Result<ResolvedManifest> {
        let top = self.fetch_manifest(reference).await?;
        if top.kind() == ManifestKind::Image {
            let image = top.image()?;
            return Ok(ResolvedManifest {
                index: None,
                manifest: top,
                image,
            });
        }
        let index = top.index()?;
        let context = format!("pull {}", reference.familiar());
        let digest = select_platform(&index, platform, &context)?;
        let manifest = self.fetch_manifest(&reference.with_digest(digest)).await?;
        if manifest.kind() != ManifestKind::Image {
            return Err(Error::Protocol {
                context,
                detail: format!("manifest list entry {} is itself a list", manifest.digest),
            });
        }
        let image = manifest.image()?;
        Ok(ResolvedManifest {
            index: Some(top),
            manifest,
            image,
        })
    }
}

/// Picks the digest of the entry of `index` for `platform`: an exact variant match first,
/// then the first entry of the same os/arch when no variant was asked for.
pub fn select_platform(index: &ImageIndex, platform: &Platform, context: &str) -> Result<Digest> {
    let entries: Vec<(&Digest, Platform)> = index
        .manifests()
        .iter()
        .filter_map(|d| {
            let p = d.platform().as_ref()?;
            let os = p.os().to_string();
            let arch = p.architecture().to_string();
            Some((
                d.digest(),
                Platform::new(&os, &arch, p.variant().as_deref()),
            ))
        })
        .collect();
    let exact = entries.iter().find(|(_, p)| p == platform);
    let loose = entries
        .iter()
        .find(|(_, p)| platform.matches(&p.os, &p.architecture, p.variant.as_deref()));
    match exact.or(loose) {
        Some((d, _)) => Ok((*d).clone()),
        None => Err(Error::NoMatchingPlatform {
            context: context.to_string(),
            platform: platform.to_string(),
            available: entries
                .iter()
                .map(|(_, p)| p.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_platforms() {
        let p: Platform = "linux/arm64/v8".parse().unwrap();
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert_eq!(
            "linux/aarch64".parse::<Platform>().unwrap().to_string(),
            "linux/arm64"
        );
        assert_eq!(
            "linux/x86_64".parse::<Platform>().unwrap().to_string(),
            "linux/amd64"
        );
        assert_eq!(
            "linux/arm".parse::<Platform>().unwrap().to_string(),
            "linux/arm/v7"
        );
        assert_eq!(
            "linux/arm/6".parse::<Platform>().unwrap().to_string(),
            "linux/arm/v6"
        );
        assert_eq!(
            "arm64".parse::<Platform>().unwrap().to_string(),
            "linux/arm64"
        );
        assert_eq!(
            "Linux/AMD64".parse::<Platform>().unwrap().to_string(),
            "linux/amd64"
        );
        assert!("linux//v8".parse::<Platform>().is_err());
        assert!("a/b/c/d".parse::<Platform>().is_err());
        assert!("linux/am d64".parse::<Platform>().is_err());
        assert_eq!(Platform::host().os, "linux");
    }

    #[test]
    fn platform_matching() {
        let want: Platform = "linux/arm64".parse().unwrap();
        assert!(want.matches("linux", "arm64", Some("v8")));
        assert!(want.matches("linux", "aarch64", None));
        let v8: Platform = "linux/arm64/v8".parse().unwrap();
        assert!(v8.matches("linux", "arm64", None));
        let v7: Platform = "linux/arm/v7".parse().unwrap();
        assert!(!v7.matches("linux", "arm", Some("v6")));
        assert!(!want.matches("windows", "arm64", None));
    }

    #[test]
    fn selects_from_index() {
        let idx: ImageIndex = serde_json::from_str(&format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST_LIST}","manifests":[
              {{"mediaType":"{DOCKER_MANIFEST_V2}","size":1,"digest":"sha256:{a}","platform":{{"os":"linux","architecture":"amd64"}}}},
              {{"mediaType":"{DOCKER_MANIFEST_V2}","size":1,"digest":"sha256:{b}","platform":{{"os":"linux","architecture":"arm","variant":"v6"}}}},
              {{"mediaType":"{DOCKER_MANIFEST_V2}","size":1,"digest":"sha256:{c}","platform":{{"os":"linux","architecture":"arm","variant":"v7"}}}},
              {{"mediaType":"{DOCKER_MANIFEST_V2}","size":1,"digest":"sha256:{d}","platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}}]}}"#,
            a = "a".repeat(64),
            b = "b".repeat(64),
            c = "c".repeat(64),
            d = "d".repeat(64)
        ))
        .unwrap();
        let pick = |p: &str| {
            select_platform(&idx, &p.parse().unwrap(), "pull x")
                .unwrap()
                .to_string()
        };
        assert!(pick("linux/amd64").ends_with(&"a".repeat(64)));
        assert!(pick("linux/arm").ends_with(&"c".repeat(64)));
        assert!(pick("linux/arm/v6").ends_with(&"b".repeat(64)));
        assert!(pick("linux/arm64").ends_with(&"d".repeat(64)));
        let err =
            select_platform(&idx, &"linux/s390x".parse().unwrap(), "pull x:latest").unwrap_err();
        assert_eq!(
            err.to_string(),
            "pull x:latest: no matching manifest for linux/s390x in the manifest list entries (available: linux/amd64, linux/arm/v6, linux/arm/v7, linux/arm64/v8)"
        );
    }

    #[test]
    fn detects_media_types() {
        assert_eq!(detect_media_type(Some(OCI_MANIFEST), b"{}"), OCI_MANIFEST);
        assert_eq!(
            detect_media_type(
                Some("application/json"),
                br#"{"schemaVersion":1,"signatures":[]}"#
            ),
            DOCKER_MANIFEST_V1_SIGNED
        );
        assert_eq!(
            detect_media_type(None, br#"{"schemaVersion":2,"manifests":[]}"#),
            OCI_INDEX
        );
        assert_eq!(
            detect_media_type(
                None,
                format!(r#"{{"mediaType":"{DOCKER_MANIFEST_V2}"}}"#).as_bytes()
            ),
            DOCKER_MANIFEST_V2
        );
        assert_eq!(
            detect_media_type(None, br#"{"schemaVersion":2,"layers":[]}"#),
            OCI_MANIFEST
        );
    }
}
