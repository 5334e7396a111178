//! Pushing: blob existence (HEAD), monolithic upload (POST + PUT ?digest=), chunked upload
//! (POST, PATCH with Content-Range, PUT), cross-repository mount with fallback to upload, and
//! manifest PUT by tag or digest.

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use oci_spec::image::Digest;
use reqwest::header::{
    HeaderMap, HeaderValue, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION,
};
use reqwest::{Method, Response, StatusCode};
use url::Url;

use crate::auth::repo_scope;
use crate::blob::{sha256_digest, verify_bytes, Verifier};
use crate::client::{request, Endpoint, Registry};
use crate::error::{Error, Result};
use crate::reference::Reference;

/// How a blob got into the target repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobPush {
    /// It was there already.
    Existed,
    /// Mounted from another repository of the same registry.
    Mounted,
    Uploaded,
}

fn octet_stream(len: usize) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(CONTENT_LENGTH, HeaderValue::from(len));
    h
}

impl Registry {
    async fn push_endpoint(&self, repo: &Reference) -> Result<(Endpoint, [String; 1], String)> {
        let ep = self.endpoint(repo.domain()).await?;
        let scopes = [repo_scope(repo.repository(), true)];
        Ok((ep, scopes, format!("push {}", repo.familiar_name())))
    }

    /// The size of blob `digest` in `repo`, or `None` when the registry does not have it there.
    pub async fn blob_exists(&self, repo: &Reference, digest: &Digest) -> Result<Option<u64>> {
        let ep = self.endpoint(repo.domain()).await?;
        let scopes = [repo_scope(repo.repository(), false)];
        let context = format!("{}: blob {digest}", repo.familiar_name());
        let url = ep.url(&format!("{}/blobs/{digest}", repo.repository()))?;
        let resp = self
            .send(&ep, &scopes, &context, |c| {
                request(c, Method::HEAD, &url, &HeaderMap::new())
            })
            .await?;
        match resp.status() {
            // reqwest's content_length() is the body's size hint, 0 for HEAD: read the header.
            s if s.is_success() => Ok(Some(
                resp.headers()
                    .get(CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            )),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(self.status_error(&ep, &context, resp).await),
        }
    }

    /// Pushes `data` as blob `digest` unless `repo` has it, trying a mount from `mount_from`
    /// (another repository on the same registry) before uploading it in one request.
    pub async fn push_blob(
        &self,
        repo: &Reference,
        digest: &Digest,
        data: Bytes,
        mount_from: Option<&Reference>,
    ) -> Result<BlobPush> {
        if self.blob_exists(repo, digest).await?.is_some() {
            return Ok(BlobPush::Existed);
        }
        verify_bytes(
            digest,
            &data,
            &format!("push {}: blob", repo.familiar_name()),
        )?;
        let location = match mount_from.filter(|f| f.domain() == repo.domain()) {
            Some(from) => match self.start_upload(repo, Some((digest, from))).await? {
                None => return Ok(BlobPush::Mounted),
                Some(loc) => loc,
            },
            None => self
                .start_upload(repo, None)
                .await?
                .expect("no mount asked"),
        };
        self.finish_upload(repo, &location, digest, data).await?;
        Ok(BlobPush::Uploaded)
    }

    /// Asks the registry to mount `digest` from `from` into `repo`; true when it did. A refused
    /// mount's upload session is cancelled.
    pub async fn mount_blob(
        &self,
        repo: &Reference,
        digest: &Digest,
        from: &Reference,
    ) -> Result<bool> {
        match self.start_upload(repo, Some((digest, from))).await? {
            None => Ok(true),
            Some(loc) => {
                let (ep, scopes, context) = self.push_endpoint(repo).await?;
                let _ = self
                    .send(&ep, &scopes, &context, |c| {
                        request(c, Method::DELETE, &loc, &HeaderMap::new())
                    })
                    .await;
                Ok(false)
            }
        }
    }

    /// POST …/blobs/uploads/ (with `?mount=&from=` when mounting). `None` means mounted,
    /// else the upload session's URL.
    async fn start_upload(
        &self,
        repo: &Reference,
        mount: Option<(&Digest, &Reference)>,
    ) -> Result<Option<Url>> {
        let (ep, scopes, context) = self.push_endpoint(repo).await?;
        let mut url = ep.url(&format!("{}/blobs/uploads/", repo.repository()))?;
        let mut scope_list = scopes.to_vec();
        if let Some((digest, from)) = mount {
            url.query_pairs_mut()
                .append_pair("mount", digest.as_ref())
                .append_pair("from", from.repository());
            scope_list.push(repo_scope(from.repository(), false));
        }
        let resp = self
            .send(&ep, &scope_list, &context, |c| {
                request(c, Method::POST, &url, &octet_stream(0))
            })
            .await?;
        match resp.status() {
            StatusCode::CREATED if mount.is_some() => Ok(None),
            StatusCode::ACCEPTED => Ok(Some(location(&ep, &context, &resp)?)),
            _ => Err(self.status_error(&ep, &context, resp).await),
        }
    }

    /// PUT <location>?digest=… with the whole blob.
    async fn finish_upload(
        &self,
        repo: &Reference,
        location: &Url,
        digest: &Digest,
        data: Bytes,
    ) -> Result<()> {
        let (ep, scopes, context) = self.push_endpoint(repo).await?;
        let mut url = location.clone();
        url.query_pairs_mut().append_pair("digest", digest.as_ref());
        let headers = octet_stream(data.len());
        let resp = self
            .send(&ep, &scopes, &context, |c| {
                request(c, Method::PUT, &url, &headers).body(data.clone())
            })
            .await?;
        if resp.status() != StatusCode::CREATED && !resp.status().is_success() {
            return Err(self.status_error(&ep, &context, resp).await);
        }
        Ok(())
    }

    /// Uploads blob `digest` in chunks (one PATCH per item of `chunks`), then closes the
    /// upload with PUT ?digest=. The digest is checked before the final PUT.
    pub async fn push_blob_chunked<S>(
        &self,
        repo: &Reference,
        digest: &Digest,
        mut chunks: S,
    ) -> Result<BlobPush>
    where
        S: Stream<Item = std::io::Result<Bytes>> + Unpin,
    {
        if self.blob_exists(repo, digest).await?.is_some() {
            return Ok(BlobPush::Existed);
        }
        let (ep, scopes, context) = self.push_endpoint(repo).await?;
        let mut location = self
            .start_upload(repo, None)
            .await?
            .expect("no mount asked");
        let mut verifier = Verifier::new(digest)?;
        let mut offset: u64 = 0;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|source| Error::Io {
                path: format!("<blob {digest}>").into(),
                source,
            })?;
            if chunk.is_empty() {
                continue;
            }
            verifier.update(&chunk);
            let end = offset + chunk.len() as u64 - 1;
            let mut headers = octet_stream(chunk.len());
            headers.insert(
                CONTENT_RANGE,
                HeaderValue::from_str(&format!("{offset}-{end}")).expect("ascii range"),
            );
            let url = location.clone();
            let resp = self
                .send(&ep, &scopes, &context, |c| {
                    request(c, Method::PATCH, &url, &headers).body(chunk.clone())
                })
                .await?;
            if resp.status() != StatusCode::ACCEPTED {
                return Err(self.status_error(&ep, &context, resp).await);
            }
            location = location_from(&context, &resp, &location)?;
            offset = end + 1;
        }
        verifier.finish(&format!("{context}: blob"))?;
        self.finish_upload(repo, &location, digest, Bytes::new())
            .await?;
        Ok(BlobPush::Uploaded)
    }

    /// PUTs a manifest under `reference`'s tag (or digest, which must match the bytes);
    /// returns its digest.
    pub async fn push_manifest(
        &self,
        reference: &Reference,
        media_type: &str,
        bytes: Bytes,
    ) -> Result<Digest> {
        let (ep, scopes, _) = self.push_endpoint(reference).await?;
        let context = format!("push {}", reference.familiar());
        let digest = sha256_digest(&bytes);
        if let Some(want) = reference.digest() {
            verify_bytes(want, &bytes, &context)?;
        }
        let url = ep.url(&format!(
            "{}/manifests/{}",
            reference.repository(),
            reference.manifest_ref()
        ))?;
        let mut headers = HeaderMap::new();
        let ct = HeaderValue::from_str(media_type).map_err(|_| Error::UnsupportedMediaType {
            context: context.clone(),
            media_type: media_type.to_string(),
        })?;
        headers.insert(CONTENT_TYPE, ct);
        let resp = self
            .send(&ep, &scopes, &context, |c| {
                request(c, Method::PUT, &url, &headers).body(bytes.clone())
            })
            .await?;
        if !resp.status().is_success() {
            return Err(self.status_error(&ep, &context, resp).await);
        }
        if let Some(d) = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
        {
            if d != digest.as_ref() {
                tracing::warn!(%context, registry_digest = d, %digest, "registry reports another manifest digest");
            }
        }
        Ok(digest)
    }
}

fn location(ep: &Endpoint, context: &str, resp: &Response) -> Result<Url> {
    let base = ep.url("")?;
    location_from(context, resp, &base)
}

/// The `Location` of an upload response, resolved against `base` (it may be relative).
fn location_from(context: &str, resp: &Response, base: &Url) -> Result<Url> {
    let loc = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Error::Protocol {
            context: context.to_string(),
            detail: "upload response has no location".into(),
        })?;
    base.join(loc).map_err(|e| Error::Protocol {
        context: context.to_string(),
        detail: format!("invalid upload location {loc:?}: {e}"),
    })
}
