//! sha256 digests: computing them over byte slices and while streaming.

use std::io::{self, Read, Write};

use sha2::{Digest as _, Sha256};

/// The OCI digest type (`sha256:<hex>`), re-exported from oci-spec.
pub use oci_spec::image::Digest;

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 0xf)] as char);
    }
    s
}

/// A `sha256:<hex>` digest from a finished hasher.
pub fn finish(hasher: Sha256) -> Digest {
    let hex = hex(&hasher.finalize());
    sha256_from_hex(&hex).expect("a sha256 hasher yields 64 hex digits")
}

/// A `sha256:<hex>` digest from 64 lower-case hex digits; `None` when `hex` is not that.
pub fn sha256_from_hex(hex: &str) -> Option<Digest> {
    if hex.len() != 64
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    format!("sha256:{hex}").parse().ok()
}

/// The sha256 digest of `bytes`.
pub fn sha256(bytes: &[u8]) -> Digest {
    let mut h = Sha256::new();
    h.update(bytes);
    finish(h)
}

/// Parses `sha256:<hex>` and insists on sha256 (the only algorithm images here use).
pub fn parse_sha256(s: &str) -> Option<Digest> {
    s.strip_prefix("sha256:").and_then(sha256_from_hex)
}

/// A reader that hashes and counts everything read through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }
    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.count
    }
    /// The digest of everything read so far, and the inner reader.
    pub fn finish(self) -> (Digest, u64, R) {
        (finish(self.hasher), self.count, self.inner)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// A writer that hashes and counts everything written through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }
    /// The digest and size of everything written, and the inner writer.
    pub fn finish(self) -> (Digest, u64, W) {
        (finish(self.hasher), self.count, self.inner)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_empty_is_the_known_value() {
        assert_eq!(
            sha256(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn streaming_matches_one_shot() {
        let data = vec![7u8; 100_000];
        let mut r = HashingReader::new(&data[..]);
        io::copy(&mut r, &mut io::sink()).unwrap();
        let (d, n, _) = r.finish();
        assert_eq!(n, 100_000);
        assert_eq!(d, sha256(&data));
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(&data).unwrap();
        assert_eq!(w.finish().0, sha256(&data));
    }

    #[test]
    fn parse_rejects_non_sha256() {
        assert!(parse_sha256("sha512:abcd").is_none());
        assert!(parse_sha256("sha256:ABCD").is_none());
        assert!(parse_sha256(&format!("sha256:{}", "a".repeat(64))).is_some());
    }
}
