//! Image references, parsed and normalised exactly as docker does
//! (github.com/distribution/reference: `ParseNormalizedNamed` + `TagNameOnly`).
//!
//! `busybox` → `docker.io/library/busybox:latest`, `user/app` → `docker.io/user/app:latest`,
//! `localhost:5000/x:tag`, `host/a/b@sha256:…`, `index.docker.io` → `docker.io`.

use std::fmt;
use std::str::FromStr;

use oci_spec::image::Digest;

/// The registry that short names resolve to.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// Old name of the default registry, normalised to [`DEFAULT_DOMAIN`].
pub const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// The host that serves the v2 API for docker.io.
pub const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";
/// Namespace of official images on docker.io.
pub const OFFICIAL_REPO_PREFIX: &str = "library/";
/// Tag used when a reference names neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// Why a reference string was refused; messages match docker's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid reference format")]
    InvalidFormat,
    #[error("invalid reference format: repository name must be lowercase")]
    Uppercase,
    #[error("invalid reference format: repository name must not be more than 255 characters")]
    NameTooLong,
    #[error("invalid tag format")]
    InvalidTag,
    #[error("invalid digest format")]
    InvalidDigest,
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    HexIdentifier(String),
}

/// A fully normalised image reference: registry domain, repository path, optional tag and digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses a user-supplied reference as `docker pull` does, adding `:latest` when the
    /// reference has neither tag nor digest.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        let mut r = Self::parse_normalized_named(s)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_string());
        }
        Ok(r)
    }

    /// Parses and normalises without adding a default tag (`ParseNormalizedNamed`).
    pub fn parse_normalized_named(s: &str) -> Result<Self, ReferenceError> {
        if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(ReferenceError::HexIdentifier(s.to_string()));
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote_name = match remainder.find(':') {
            Some(i) => &remainder[..i],
            None => &remainder,
        };
        if remote_name.to_lowercase() != remote_name {
            return Err(ReferenceError::Uppercase);
        }
        parse_parts(&domain, &remainder)
    }

    /// Builds a reference from a repository name (`docker.io/library/busybox`, `busybox`,
    /// `localhost:5000/x`) and a tag.
    pub fn with_tag(name: &str, tag: &str) -> Result<Self, ReferenceError> {
        let mut r = Self::parse_normalized_named(name)?;
        if r.tag.is_some() || r.digest.is_some() {
            return Err(ReferenceError::InvalidFormat);
        }
        if !valid_tag(tag) {
            return Err(ReferenceError::InvalidTag);
        }
        r.tag = Some(tag.to_string());
        Ok(r)
    }

    /// The same repository, naming `digest` instead of any tag.
    pub fn with_digest(&self, digest: Digest) -> Self {
        Self {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: Some(digest),
        }
    }

    /// The same repository with another tag and no digest.
    pub fn retag(&self, tag: &str) -> Result<Self, ReferenceError> {
        if !valid_tag(tag) {
            return Err(ReferenceError::InvalidTag);
        }
        Ok(Self {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: Some(tag.to_string()),
            digest: None,
        })
    }

    /// Registry domain as the user knows it (`docker.io`, `localhost:5000`).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Host (and port) that serves the v2 API: `registry-1.docker.io` for docker.io.
    pub fn api_host(&self) -> &str {
        if self.domain == DEFAULT_DOMAIN {
            DOCKER_HUB_API_HOST
        } else {
            &self.domain
        }
    }

    /// Repository path inside the registry (`library/busybox`).
    pub fn repository(&self) -> &str {
        &self.path
    }

    /// Full repository name (`docker.io/library/busybox`).
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What to put after `/manifests/`: the digest when there is one, else the tag.
    pub fn manifest_ref(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => DEFAULT_TAG.to_string(),
        }
    }

    /// The short form docker displays (`busybox:latest`, `user/app:v1`, `localhost:5000/x:t`).
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        self.push_tag_digest(&mut s);
        s
    }

    /// The short repository name (`busybox`, `user/app`, `localhost:5000/x`).
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
                Some(rest) if !rest.contains('/') => rest.to_string(),
                _ => self.path.clone(),
            }
        } else {
            self.name()
        }
    }

    fn push_tag_digest(&self, s: &mut String) {
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d.as_ref());
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.name();
        self.push_tag_digest(&mut s);
        f.write_str(&s)
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Docker's `splitDockerDomain`.
fn split_docker_domain(name: &str) -> (String, String) {
    let (mut domain, mut remainder) = match name.find('/') {
        Some(i) => {
            let first = &name[..i];
            if !first.contains(['.', ':']) && first != "localhost" && first.to_lowercase() == first
            {
                (DEFAULT_DOMAIN.to_string(), name.to_string())
            } else {
                (first.to_string(), name[i + 1..].to_string())
            }
        }
        None => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN.to_string();
    }
    if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        remainder = format!("{OFFICIAL_REPO_PREFIX}{remainder}");
    }
    (domain, remainder)
}

/// Validates `domain` and `remainder` (`path[:tag][@digest]`) against the reference grammar.
fn parse_parts(domain: &str, remainder: &str) -> Result<Reference, ReferenceError> {
    if !valid_domain(domain) {
        return Err(ReferenceError::InvalidFormat);
    }
    let (rest, digest) = match remainder.split_once('@') {
        Some((rest, d)) => (rest, Some(parse_digest(d)?)),
        None => (remainder, None),
    };
    let (path, tag) = match rest.rfind(':') {
        Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest, None),
    };
    if path.is_empty() {
        return Err(ReferenceError::InvalidFormat);
    }
    for component in path.split('/') {
        if !valid_path_component(component) {
            if component.to_lowercase() != component {
                return Err(ReferenceError::Uppercase);
            }
            return Err(ReferenceError::InvalidFormat);
        }
    }
    if domain.len() + 1 + path.len() > NAME_TOTAL_LENGTH_MAX {
        return Err(ReferenceError::NameTooLong);
    }
    if let Some(t) = tag {
        if !valid_tag(t) {
            return Err(ReferenceError::InvalidFormat);
        }
    }
    Ok(Reference {
        domain: domain.to_string(),
        path: path.to_string(),
        tag: tag.map(str::to_string),
        digest,
    })
}

/// `domain-component ('.' domain-component)* (':' port)?` or a bracketed IPv6 address.
fn valid_domain(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        let Some(end) = rest.find(']') else {
            return false;
        };
        let ip = &rest[..end];
        if ip.is_empty() || !ip.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return false;
        }
        match &rest[end + 1..] {
            "" => return true,
            p => match p.strip_prefix(':') {
                Some(port) => return !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()),
                None => return false,
            },
        }
    } else {
        match d.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (d, None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    !host.is_empty()
        && host.split('.').all(|c| {
            !c.is_empty()
                && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !c.starts_with('-')
                && !c.ends_with('-')
        })
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: '.', '_', '__' or one or more '-'.
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `[\w][\w.-]{0,127}`
fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b[1..].iter().all(|&x| word(x) || x == b'.' || x == b'-')
}

/// Parses `algorithm:hex`, checking the length of the registered algorithms.
pub fn parse_digest(d: &str) -> Result<Digest, ReferenceError> {
    let (alg, hex) = d.split_once(':').ok_or(ReferenceError::InvalidDigest)?;
    let alg_ok = !alg.is_empty()
        && alg.split(['-', '_', '+', '.']).all(|c| {
            c.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
                && c.bytes().all(|b| b.is_ascii_alphanumeric())
        });
    if !alg_ok || hex.len() < 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ReferenceError::InvalidDigest);
    }
    let want = match alg {
        "sha256" => Some(64),
        "sha384" => Some(96),
        "sha512" => Some(128),
        _ => None,
    };
    if want.is_some_and(|w| w != hex.len()) || hex.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(ReferenceError::InvalidDigest);
    }
    Digest::from_str(d).map_err(|_| ReferenceError::InvalidDigest)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn full(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    #[test]
    fn normalises_like_docker() {
        let cases = [
            ("busybox", "docker.io/library/busybox:latest"),
            ("busybox:1.36", "docker.io/library/busybox:1.36"),
            ("user/app", "docker.io/user/app:latest"),
            ("user/app/sub:v1", "docker.io/user/app/sub:v1"),
            ("docker.io/busybox", "docker.io/library/busybox:latest"),
            (
                "index.docker.io/busybox",
                "docker.io/library/busybox:latest",
            ),
            ("index.docker.io/user/app:x", "docker.io/user/app:x"),
            ("library/busybox", "docker.io/library/busybox:latest"),
            ("localhost/x", "localhost/x:latest"),
            ("localhost:5000/x:tag", "localhost:5000/x:tag"),
            ("127.0.0.1:5000/a/b", "127.0.0.1:5000/a/b:latest"),
            ("[::1]:5000/a", "[::1]:5000/a:latest"),
            ("host.example/a/b", "host.example/a/b:latest"),
            ("Host.Example/a", "Host.Example/a:latest"),
            (
                "my-reg.io:443/a.b/c_d/e__f/g--h",
                "my-reg.io:443/a.b/c_d/e__f/g--h:latest",
            ),
            ("busybox:Tag_1.2-x", "docker.io/library/busybox:Tag_1.2-x"),
        ];
        for (input, want) in cases {
            assert_eq!(full(input), want, "{input}");
        }
    }

    #[test]
    fn digests_and_tags() {
        let r = Reference::parse(&format!("host.example/a/b@sha256:{HEX}")).unwrap();
        assert_eq!(r.domain(), "host.example");
        assert_eq!(r.repository(), "a/b");
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest().unwrap().to_string(), format!("sha256:{HEX}"));
        assert_eq!(r.manifest_ref(), format!("sha256:{HEX}"));
        let r = Reference::parse(&format!("busybox:1.36@sha256:{HEX}")).unwrap();
        assert_eq!(r.tag(), Some("1.36"));
        assert!(r.digest().is_some());
        assert_eq!(r.familiar(), format!("busybox:1.36@sha256:{HEX}"));
        assert_eq!(r.manifest_ref(), format!("sha256:{HEX}"));
        let r = Reference::parse(&format!("localhost:5000/x@sha256:{HEX}")).unwrap();
        assert_eq!(r.to_string(), format!("localhost:5000/x@sha256:{HEX}"));
    }

    #[test]
    fn familiar_forms() {
        let cases = [
            ("busybox", "busybox:latest"),
            ("docker.io/library/busybox:1", "busybox:1"),
            ("user/app", "user/app:latest"),
            ("docker.io/library/a/b", "library/a/b:latest"),
            ("localhost:5000/x:t", "localhost:5000/x:t"),
        ];
        for (input, want) in cases {
            assert_eq!(Reference::parse(input).unwrap().familiar(), want, "{input}");
        }
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(r.familiar_name(), "busybox");
        assert_eq!(r.name(), "docker.io/library/busybox");
    }

    #[test]
    fn api_host() {
        assert_eq!(
            Reference::parse("busybox").unwrap().api_host(),
            DOCKER_HUB_API_HOST
        );
        assert_eq!(
            Reference::parse("localhost:5000/a").unwrap().api_host(),
            "localhost:5000"
        );
    }

    #[test]
    fn rejects_bad_references() {
        use ReferenceError::*;
        let cases: Vec<(String, ReferenceError)> = vec![
            ("Busybox".into(), Uppercase),
            ("user/App".into(), Uppercase),
            ("localhost:5000/App:tag".into(), Uppercase),
            ("".into(), InvalidFormat),
            ("localhost:5000/".into(), InvalidFormat),
            (":tag".into(), InvalidFormat),
            ("a//b".into(), InvalidFormat),
            ("a/".into(), InvalidFormat),
            ("-a".into(), InvalidFormat),
            ("a-".into(), InvalidFormat),
            ("a..b".into(), InvalidFormat),
            ("a___b".into(), InvalidFormat),
            ("busybox:".into(), InvalidFormat),
            ("busybox:-x".into(), InvalidFormat),
            (format!("busybox:{}", "a".repeat(129)), InvalidFormat),
            ("busybox@sha256:abc".into(), InvalidDigest),
            (
                format!("busybox@sha256:{}", HEX.to_uppercase()),
                InvalidDigest,
            ),
            (format!("busybox@sha512:{HEX}"), InvalidDigest),
            ("busybox@".into(), InvalidDigest),
            ("host:port/a".into(), InvalidFormat),
            ("-host.io/a".into(), InvalidFormat),
            (HEX.into(), HexIdentifier(HEX.into())),
            (format!("x.io/{}", "a".repeat(260)), NameTooLong),
            ("a b".into(), InvalidFormat),
        ];
        for (input, want) in cases {
            assert_eq!(Reference::parse(&input), Err(want), "{input}");
        }
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            Reference::parse("Busybox").unwrap_err().to_string(),
            "invalid reference format: repository name must be lowercase"
        );
        assert_eq!(
            Reference::parse("a b").unwrap_err().to_string(),
            "invalid reference format"
        );
    }

    #[test]
    fn with_tag_and_retag() {
        let r = Reference::with_tag("busybox", "v2").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/busybox:v2");
        assert!(Reference::with_tag("busybox:x", "v2").is_err());
        assert_eq!(r.retag("v3").unwrap().familiar(), "busybox:v3");
        assert!(r.retag("-bad").is_err());
        let d = parse_digest(&format!("sha256:{HEX}")).unwrap();
        assert_eq!(r.with_digest(d).familiar(), format!("busybox@sha256:{HEX}"));
    }
}
