//! Blob downloads: a byte stream that starts at any offset (HTTP Range, or skipping when the
//! server ignores it), follows redirects to storage, and on connection errors or 5xx resumes
//! from the bytes already received; plus a digest verifier that checks on the fly.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use oci_spec::image::Digest;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_RANGE, RANGE};
use reqwest::{Method, StatusCode};
use sha2::{Digest as _, Sha256, Sha512};

use crate::auth::repo_scope;
use crate::client::{request, try_next_endpoint, Endpoint, Registry};
use crate::error::{Error, Result};
use crate::reference::Reference;

/// sha256 of `data` as a digest.
pub fn sha256_digest(data: &[u8]) -> Digest {
    let hex = to_hex(&Sha256::digest(data));
    Digest::try_from(format!("sha256:{hex}")).expect("a sha256 hex string is a valid digest")
}

fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

pub(crate) fn verify_bytes(want: &Digest, data: &[u8], context: &str) -> Result<()> {
    let mut v = Verifier::new(want)?;
    v.update(data);
    v.finish(context)
}

enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

/// Computes a blob's digest incrementally and compares it with the expected one.
pub struct Verifier {
    expected: Digest,
    hasher: Hasher,
    len: u64,
}

impl Verifier {
    pub fn new(expected: &Digest) -> Result<Self> {
        let hasher = match expected.algorithm().as_ref() {
            "sha256" => Hasher::Sha256(Sha256::new()),
            "sha512" => Hasher::Sha512(Sha512::new()),
            other => return Err(Error::UnsupportedDigest(other.to_string())),
        };
        Ok(Self {
            expected: expected.clone(),
            hasher,
            len: 0,
        })
    }

    pub fn update(&mut self, data: &[u8]) {
        self.len += data.len() as u64;
        match &mut self.hasher {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Errors with both digests when they differ.
    pub fn finish(self, context: &str) -> Result<()> {
        let (alg, hex) = match self.hasher {
            Hasher::Sha256(h) => ("sha256", to_hex(&h.finalize())),
            Hasher::Sha512(h) => ("sha512", to_hex(&h.finalize())),
        };
        let actual = format!("{alg}:{hex}");
        if actual != self.expected.to_string() {
            return Err(Error::DigestMismatch {
                context: context.to_string(),
                expected: self.expected.to_string(),
                actual,
            });
        }
        Ok(())
    }
}

type Body = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

struct Download {
    registry: Registry,
    ep: Endpoint,
    url: url::Url,
    scopes: [String; 1],
    context: String,
    /// Absolute position of the next byte to yield.
    pos: u64,
    /// Bytes still to drop from the current body (server ignored Range).
    skip: u64,
    total: Option<u64>,
    body: Option<Body>,
    failures: u32,
    done: bool,
}

/// A blob's bytes from some offset on. Yields `Bytes` chunks; errors end it.
pub struct BlobStream {
    offset: u64,
    total: Option<u64>,
    inner: Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>>,
}

impl BlobStream {
    /// Position in the blob of the first byte this stream yields.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Size of the whole blob, when the registry said.
    pub fn total_size(&self) -> Option<u64> {
        self.total
    }

    /// Verifies the digest as bytes go by; the stream's last item is an error on mismatch.
    /// `verifier` must already have seen the first `offset()` bytes (use
    /// [`Verifier::new`] and feed it what was downloaded before when resuming).
    pub fn verified(self, verifier: Verifier, context: impl Into<String>) -> VerifiedStream {
        VerifiedStream {
            inner: self,
            verifier: Some(verifier),
            context: context.into(),
        }
    }
}

impl Stream for BlobStream {
    type Item = Result<Bytes>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// A [`BlobStream`] checked against its digest at the end.
pub struct VerifiedStream {
    inner: BlobStream,
    verifier: Option<Verifier>,
    context: String,
}

impl VerifiedStream {
    pub fn total_size(&self) -> Option<u64> {
        self.inner.total
    }
}

impl Stream for VerifiedStream {
    type Item = Result<Bytes>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match this.inner.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(b))) => {
                if let Some(v) = this.verifier.as_mut() {
                    v.update(&b);
                }
                Poll::Ready(Some(Ok(b)))
            }
            Poll::Ready(None) => match this.verifier.take() {
                Some(v) => {
                    let len = v.len();
                    match (v.finish(&this.context), this.inner.total) {
                        (Err(e), _) => Poll::Ready(Some(Err(e))),
                        (Ok(()), Some(t)) if t != len => {
                            Poll::Ready(Some(Err(Error::SizeMismatch {
                                context: this.context.clone(),
                                expected: t,
                                actual: len,
                            })))
                        }
                        (Ok(()), _) => Poll::Ready(None),
                    }
                }
                None => Poll::Ready(None),
            },
            other => {
                if matches!(other, Poll::Ready(Some(Err(_)))) {
                    this.verifier = None;
                }
                other
            }
        }
    }
}

/// Parses `bytes start-end/total` → (start, total).
fn parse_content_range(v: &str) -> Option<(u64, Option<u64>)> {
    let v = v.trim().strip_prefix("bytes")?.trim();
    let (range, total) = v.split_once('/')?;
    let (start, _) = range.split_once('-')?;
    Some((start.trim().parse().ok()?, total.trim().parse().ok()))
}

impl Download {
    /// Opens the body at `pos`.
    async fn open(&mut self) -> Result<()> {
        let mut headers = HeaderMap::new();
        if self.pos > 0 {
            let v = HeaderValue::from_str(&format!("bytes={}-", self.pos)).expect("ascii range");
            headers.insert(RANGE, v);
        }
        let url = self.url.clone();
        let resp = self
            .registry
            .send(&self.ep, &self.scopes, &self.context, |c| {
                request(c, Method::GET, &url, &headers)
            })
            .await?;
        let status = resp.status();
        if status == StatusCode::RANGE_NOT_SATISFIABLE && self.total == Some(self.pos) {
            self.done = true;
            return Ok(());
        }
        if !status.is_success() {
            return Err(self
                .registry
                .status_error(&self.ep, &self.context, resp)
                .await);
        }
        if status == StatusCode::PARTIAL_CONTENT {
            let cr = resp
                .headers()
                .get(CONTENT_RANGE)
                .and_then(|v| v.to_str().ok());
            match cr.and_then(parse_content_range) {
                Some((start, total)) if start == self.pos => {
                    self.skip = 0;
                    if total.is_some() {
                        self.total = total;
                    }
                }
                _ => {
                    return Err(Error::Protocol {
                        context: self.context.clone(),
                        detail: format!("unexpected content-range {cr:?} for offset {}", self.pos),
                    });
                }
            }
        } else {
            // A whole body: the server ignored Range; drop what we already have.
            self.skip = self.pos;
            if let Some(len) = resp.content_length() {
                self.total = Some(len);
            }
        }
        self.body = Some(Box::pin(resp.bytes_stream()));
        Ok(())
    }

    /// The next chunk, reopening the body after transient failures.
    async fn next_chunk(&mut self) -> Option<Result<Bytes>> {
        let max = self.registry.inner.config.blob_retries.max(1);
        loop {
            if self.done {
                return None;
            }
            let step = self.step().await;
            match step {
                Ok(Some(b)) => {
                    self.failures = 0;
                    return Some(Ok(b));
                }
                Ok(None) => {
                    self.done = true;
                    return None;
                }
                Err(e) if e.is_transient() && self.failures + 1 < max => {
                    self.failures += 1;
                    self.body = None;
                    let backoff =
                        self.registry.inner.config.retry_backoff * 2u32.pow(self.failures - 1);
                    tracing::warn!(context = %self.context, offset = self.pos, error = %e, attempt = self.failures, "blob download interrupted, resuming");
                    tokio::time::sleep(backoff).await;
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }

    async fn step(&mut self) -> Result<Option<Bytes>> {
        loop {
            if self.body.is_none() {
                self.open().await?;
                if self.done {
                    return Ok(None);
                }
            }
            let body = self.body.as_mut().expect("opened above");
            match body.next().await {
                Some(Ok(mut b)) => {
                    if self.skip > 0 {
                        let n = self.skip.min(b.len() as u64);
                        self.skip -= n;
                        b = b.slice(n as usize..);
                    }
                    if b.is_empty() {
                        continue;
                    }
                    self.pos += b.len() as u64;
                    if self.total.is_some_and(|t| self.pos > t) {
                        return Err(Error::SizeMismatch {
                            context: self.context.clone(),
                            expected: self.total.unwrap_or_default(),
                            actual: self.pos,
                        });
                    }
                    return Ok(Some(b));
                }
                Some(Err(source)) => {
                    return Err(Error::Http {
                        context: self.context.clone(),
                        source,
                    });
                }
                None => {
                    self.body = None;
                    return match self.total {
                        Some(t) if self.pos < t => Err(Error::Protocol {
                            context: self.context.clone(),
                            detail: format!("connection closed at byte {} of {t}", self.pos),
                        }),
                        _ => Ok(None),
                    };
                }
            }
        }
    }
}

impl Registry {
    /// Streams blob `digest` of `repo` from byte `offset` on. The first request is made
    /// here (so a missing blob errors now); later failures resume transparently.
    pub async fn fetch_blob(
        &self,
        repo: &Reference,
        digest: &Digest,
        offset: u64,
    ) -> Result<BlobStream> {
        let context = format!("pull {}: blob {}", repo.familiar_name(), digest);
        let endpoints = self.endpoints(repo, true).await?;
        let mut last = None;
        for ep in endpoints {
            let mut dl = Download {
                registry: self.clone(),
                url: ep.url(&format!("{}/blobs/{}", repo.repository(), digest))?,
                ep,
                scopes: [repo_scope(repo.repository(), false)],
                context: context.clone(),
                pos: offset,
                skip: 0,
                total: None,
                body: None,
                failures: 0,
                done: false,
            };
            match open_with_retries(&mut dl).await {
                Ok(()) => {
                    let total = dl.total;
                    let inner = futures_util::stream::unfold(dl, |mut dl| async move {
                        dl.next_chunk().await.map(|item| (item, dl))
                    });
                    return Ok(BlobStream {
                        offset,
                        total,
                        // Fused: a verifier polls once more after the end.
                        inner: Box::pin(inner.fuse()),
                    });
                }
                Err(e) if try_next_endpoint(&dl.ep, &e) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::Config("no endpoint".into())))
    }

    /// [`fetch_blob`](Self::fetch_blob) from offset 0, verified against `digest` on the fly.
    pub async fn fetch_blob_verified(
        &self,
        repo: &Reference,
        digest: &Digest,
    ) -> Result<VerifiedStream> {
        let verifier = Verifier::new(digest)?;
        let context = format!("pull {}: blob {}", repo.familiar_name(), digest);
        Ok(self
            .fetch_blob(repo, digest, 0)
            .await?
            .verified(verifier, context))
    }

    /// Fetches a whole (small) blob into memory, verified: configs, manifests by digest.
    pub async fn fetch_blob_bytes(&self, repo: &Reference, digest: &Digest) -> Result<Bytes> {
        let mut s = self.fetch_blob_verified(repo, digest).await?;
        let mut buf = Vec::with_capacity(s.total_size().unwrap_or(0).min(1 << 24) as usize);
        while let Some(chunk) = s.next().await {
            buf.extend_from_slice(&chunk?);
        }
        Ok(buf.into())
    }
}

async fn open_with_retries(dl: &mut Download) -> Result<()> {
    let max = dl.registry.inner.config.blob_retries.max(1);
    // Mirrors are not retried: the next endpoint is the retry.
    let max = if dl.ep.mirror { 1 } else { max };
    let mut attempt = 0;
    loop {
        match dl.open().await {
            Ok(()) => return Ok(()),
            Err(e) if e.is_transient() && attempt + 1 < max => {
                attempt += 1;
                tokio::time::sleep(dl.registry.inner.config.retry_backoff * 2u32.pow(attempt - 1))
                    .await;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_and_verifier() {
        let d = sha256_digest(b"");
        assert_eq!(
            d.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let mut v = Verifier::new(&sha256_digest(b"hello world")).unwrap();
        v.update(b"hello ");
        v.update(b"world");
        assert_eq!(v.len(), 11);
        v.finish("x").unwrap();
        let err = verify_bytes(&d, b"x", "pull a: blob b").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("pull a: blob b: digest mismatch: expected sha256:e3b0"),
            "{err}"
        );
        let sha512 = Digest::try_from(format!("sha512:{}", "0".repeat(128))).unwrap();
        assert!(Verifier::new(&sha512).is_ok());
    }

    #[test]
    fn content_range() {
        assert_eq!(
            parse_content_range("bytes 10-99/100"),
            Some((10, Some(100)))
        );
        assert_eq!(parse_content_range("bytes 10-99/*"), Some((10, None)));
        assert_eq!(parse_content_range("10-99/100"), None);
    }
}
