//! Content digests (`sha256:<64 lowercase hex>`) and descriptors.
//!
//! Only sha256 is accepted: every other algorithm is refused with a clear error rather
//! than stored under a name the rest of the store cannot verify.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// Errors parsing a digest string.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DigestError {
    #[error("digest {0:?}: missing algorithm prefix (expected \"sha256:<64 hex>\")")]
    NoAlgorithm(String),
    #[error("digest {0:?}: unsupported algorithm {1:?} (only sha256 is supported)")]
    UnsupportedAlgorithm(String, String),
    #[error("digest {0:?}: expected 64 lowercase hex characters after \"sha256:\"")]
    BadHex(String),
}

/// A validated `sha256:<hex>` digest.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest {
    hex: String,
}

impl Digest {
    /// Digest of a byte slice.
    pub fn of_bytes(data: &[u8]) -> Self {
        Self::from_sha256(Sha256::digest(data).as_slice())
    }

    /// Builds a digest from a raw 32-byte sha256 output.
    pub(crate) fn from_sha256(raw: &[u8]) -> Self {
        let mut hex = String::with_capacity(64);
        for b in raw {
            hex.push_str(&format!("{b:02x}"));
        }
        Self { hex }
    }

    /// Parses a bare 64-hex string (as used for blob file names).
    pub fn from_hex(hex: &str) -> Result<Self, DigestError> {
        if hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Self {
                hex: hex.to_owned(),
            })
        } else {
            Err(DigestError::BadHex(format!("sha256:{hex}")))
        }
    }

    /// The algorithm: always `sha256`.
    pub fn algorithm(&self) -> &'static str {
        "sha256"
    }

    /// The 64 hex characters.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// A short form for messages (`sha256:ab12cd34ef56`).
    pub fn short(&self) -> String {
        format!("sha256:{}", &self.hex[..12])
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some((alg, hex)) = s.split_once(':') else {
            return Err(DigestError::NoAlgorithm(s.to_owned()));
        };
        if alg != "sha256" {
            return Err(DigestError::UnsupportedAlgorithm(
                s.to_owned(),
                alg.to_owned(),
            ));
        }
        Self::from_hex(hex).map_err(|_| DigestError::BadHex(s.to_owned()))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest(sha256:{})", self.hex)
    }
}

impl Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What a blob is expected to be: digest, size and (for image targets) media type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(
        rename = "mediaType",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
}

impl Descriptor {
    /// A descriptor with no media type (enough for ingest verification).
    pub fn new(digest: Digest, size: u64) -> Self {
        Self {
            media_type: String::new(),
            digest,
            size,
        }
    }

    /// A descriptor with a media type.
    pub fn with_media_type(media_type: impl Into<String>, digest: Digest, size: u64) -> Self {
        Self {
            media_type: media_type.into(),
            digest,
            size,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_valid_and_roundtrip() {
        let d = Digest::of_bytes(b"hello");
        let s = d.to_string();
        assert_eq!(
            s,
            "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(s.parse::<Digest>().unwrap(), d);
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
    }

    #[test]
    fn parse_rejects_bad_input() {
        let hex = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
        assert!(matches!(
            format!("sha512:{hex}").parse::<Digest>(),
            Err(DigestError::UnsupportedAlgorithm(_, a)) if a == "sha512"
        ));
        assert!(matches!(
            hex.parse::<Digest>(),
            Err(DigestError::NoAlgorithm(_))
        ));
        assert!(matches!(
            format!("sha256:{}", hex.to_uppercase()).parse::<Digest>(),
            Err(DigestError::BadHex(_))
        ));
        assert!(matches!(
            format!("sha256:{}", &hex[1..]).parse::<Digest>(),
            Err(DigestError::BadHex(_))
        ));
        assert!(matches!(
            format!("sha256:../{}", &hex[3..]).parse::<Digest>(),
            Err(DigestError::BadHex(_))
        ));
        let e = "md5:abc".parse::<Digest>().unwrap_err().to_string();
        assert!(e.contains("unsupported algorithm \"md5\""), "{e}");
    }
}
