//! `push`: a local image to a registry, as `docker push` does.
//!
//! ```text
//! for each tag pushed (one, or every tag of the repository with --all-tags):
//!   layers + config: HEAD → "Layer already exists"
//!                    else a cross-repository mount from a repository of the same registry
//!                    the blob is known to come from (content label skiff.source.<host>)
//!                    → "Mounted from <repo>"
//!                    else upload of the stored (compressed) blob → "Pushed"
//!   manifest: the exact stored bytes, so the digest is the one the image has locally.
//! ```
//! Images made locally (load, import, commit) push the same way: their layers exist as
//! stored blobs next to their snapshots.

use std::io::Read;

use bytes::Bytes;
use futures_util::StreamExt;
use oci_spec::image::ImageManifest;
use skiff_registry::{BlobPush, Reference};
use skiff_store::ImageRecord;

use super::{short_id, to_store, ImageService, ImagesError, Result, LABEL_REPO_DIGEST};

/// Content label prefix: `skiff.source.<registry host>` = comma-separated repositories of
/// that registry the blob is known to exist in (set at pull and push; used for mounts).
pub const LABEL_SOURCE_PREFIX: &str = "skiff.source.";

/// Blobs above this size are uploaded in chunks rather than in one request.
const CHUNKED_ABOVE: u64 = 32 << 20;
const CHUNK: usize = 8 << 20;
/// Parallel blob uploads per push (Docker's default max-concurrent-uploads).
const UPLOADS: usize = 5;

/// Progress of a push, in docker's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushEvent {
    /// `The push refers to repository [host/repo]`.
    Start {
        repository: String,
    },
    Preparing {
        id: String,
    },
    Pushing {
        id: String,
        current: u64,
        total: u64,
    },
    Pushed {
        id: String,
    },
    Mounted {
        id: String,
        from: String,
    },
    AlreadyExists {
        id: String,
    },
    /// `<tag>: digest: sha256:… size: N`.
    Done {
        tag: String,
        digest: String,
        size: u64,
    },
}

/// One tag pushed.
#[derive(Debug, Clone)]
pub struct PushResult {
    pub reference: String,
    pub tag: String,
    pub digest: String,
    pub size: u64,
}

impl ImageService {
    /// Push `name` (`host/repo[:tag]`), or with `all_tags` every local tag of its repository.
    pub async fn push(
        &self,
        name: &str,
        all_tags: bool,
        progress: &(dyn Fn(PushEvent) + Send + Sync),
    ) -> Result<Vec<PushResult>> {
        let r = if all_tags {
            Reference::parse_normalized_named(name)?
        } else {
            Reference::parse(name)?
        };
        if r.digest().is_some() {
            return Err(ImagesError::Invalid(format!(
                "push {name}: cannot push a digest reference"
            )));
        }
        let records: Vec<ImageRecord> = if all_tags && r.tag().is_none() {
            let repo = r.name();
            let recs = self
                .store
                .image_list()
                .map_err(|e| ImagesError::store(format!("push {name}"), e))?;
            recs.into_iter()
                .filter(|rec| {
                    Reference::parse(&rec.name)
                        .map(|x| x.name() == repo && x.tag().is_some() && x.digest().is_none())
                        .unwrap_or(false)
                })
                .collect()
        } else {
            let full = if r.tag().is_none() {
                Reference::parse(name)?.to_string()
            } else {
                r.to_string()
            };
            self.store
                .image_get(&full)
                .map_err(|e| ImagesError::store(format!("push {name}"), e))?
                .into_iter()
                .collect()
        };
        if records.is_empty() {
            return Err(ImagesError::NotFound(format!(
                "An image does not exist locally with the tag: {}",
                r.familiar_name()
            )));
        }
        progress(PushEvent::Start {
            repository: r.name(),
        });
        let mut out = Vec::new();
        for rec in records {
            let target = Reference::parse(&rec.name)?;
            out.push(self.push_one(&target, &rec, progress).await?);
        }
        Ok(out)
    }

    async fn push_one(
        &self,
        r: &Reference,
        rec: &ImageRecord,
        progress: &(dyn Fn(PushEvent) + Send + Sync),
    ) -> Result<PushResult> {
        let ctx = format!("push {}", r.familiar());
        let manifest_bytes = self.read_blob(&rec.target.digest, &ctx)?;
        let manifest: ImageManifest = serde_json::from_slice(&manifest_bytes).map_err(|e| {
            ImagesError::Invalid(format!("{ctx}: manifest {}: {e}", rec.target.digest))
        })?;
        for l in manifest.layers() {
            progress(PushEvent::Preparing {
                id: short_id(l.digest()),
            });
        }
        // Layers in parallel, then the config (docker shows no line for it).
        // Owned descriptors: a closure over `&Descriptor` makes the future non-`Send`
        // (the higher-ranked lifetime problem), and the daemon spawns pushes.
        let layers: Vec<oci_spec::image::Descriptor> = manifest.layers().to_vec();
        let jobs = layers.into_iter().map(|l| {
            let ctx = ctx.clone();
            async move {
                let id = short_id(l.digest());
                let how = self
                    .push_blob(r, l.digest(), l.size(), &id, progress, &ctx)
                    .await?;
                progress(match how {
                    (BlobPush::Existed, _) => PushEvent::AlreadyExists { id },
                    (BlobPush::Mounted, Some(from)) => PushEvent::Mounted { id, from },
                    _ => PushEvent::Pushed { id },
                });
                Ok::<_, ImagesError>(())
            }
        });
        let results: Vec<Result<()>> = futures_util::stream::iter(jobs)
            .buffer_unordered(UPLOADS)
            .collect()
            .await;
        results.into_iter().collect::<Result<Vec<()>>>()?;
        let c = manifest.config();
        self.push_blob(r, c.digest(), c.size(), "", &|_| {}, &ctx)
            .await?;

        let digest = self
            .registry
            .push_manifest(
                r,
                &rec.target.media_type,
                Bytes::from(manifest_bytes.clone()),
            )
            .await
            .map_err(|e| ImagesError::registry(&ctx, e))?;
        let tag = r.tag().unwrap_or("latest").to_string();
        progress(PushEvent::Done {
            tag: tag.clone(),
            digest: digest.to_string(),
            size: manifest_bytes.len() as u64,
        });
        // Every blob now exists in this repository too: later pushes elsewhere can mount.
        let mut all: Vec<String> = manifest
            .layers()
            .iter()
            .map(|l| l.digest().to_string())
            .collect();
        all.push(c.digest().to_string());
        self.record_source(r, &all);
        // The image now has a repository digest (`RepoDigests`), as after a pull.
        if !rec.labels.contains_key(LABEL_REPO_DIGEST) {
            let mut labels = rec.labels.clone();
            labels.insert(
                LABEL_REPO_DIGEST.to_string(),
                format!("{}@{digest}", r.name()),
            );
            let _ = self.store.image_put(&rec.name, rec.target.clone(), labels);
        }
        Ok(PushResult {
            reference: r.to_string(),
            tag,
            digest: digest.to_string(),
            size: manifest_bytes.len() as u64,
        })
    }

    /// One blob into `r`: exists, mount, or upload of the stored bytes.
    async fn push_blob(
        &self,
        r: &Reference,
        digest: &skiff_registry::Digest,
        size: u64,
        id: &str,
        progress: &(dyn Fn(PushEvent) + Send + Sync),
        ctx: &str,
    ) -> Result<(BlobPush, Option<String>)> {
        let reg = |e| ImagesError::registry(ctx, e);
        if self
            .registry
            .blob_exists(r, digest)
            .await
            .map_err(reg)?
            .is_some()
        {
            return Ok((BlobPush::Existed, None));
        }
        let sd = to_store(digest)?;
        let content = self.store.content();
        if content
            .info(&sd)
            .map_err(|e| ImagesError::store(ctx, e))?
            .is_none()
        {
            return Err(ImagesError::Invalid(format!(
                "{ctx}: blob {digest} is not in the local store"
            )));
        }
        // Mount from a repository of the same registry the blob is known to be in.
        let labels = content
            .labels(&sd)
            .map_err(|e| ImagesError::store(ctx, e))?;
        if let Some(repos) = labels.get(&format!("{LABEL_SOURCE_PREFIX}{}", r.domain())) {
            for repo in repos
                .split(',')
                .filter(|x| !x.is_empty() && *x != r.repository())
            {
                let Ok(from) = Reference::parse(&format!("{}/{repo}", r.domain())) else {
                    continue;
                };
                if self
                    .registry
                    .mount_blob(r, digest, &from)
                    .await
                    .unwrap_or(false)
                {
                    return Ok((BlobPush::Mounted, Some(repo.to_string())));
                }
            }
        }
        let how = if size > CHUNKED_ABOVE {
            let file = content
                .reader(&sd)
                .map_err(|e| ImagesError::store(ctx, e))?;
            let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(2);
            let reader = tokio::task::spawn_blocking(move || {
                let mut f = std::io::BufReader::new(file);
                loop {
                    let mut buf = vec![0u8; CHUNK];
                    let mut n = 0;
                    while n < CHUNK {
                        match f.read(&mut buf[n..]) {
                            Ok(0) => break,
                            Ok(k) => n += k,
                            Err(e) => {
                                let _ = tx.blocking_send(Err(e));
                                return;
                            }
                        }
                    }
                    if n == 0 {
                        return;
                    }
                    buf.truncate(n);
                    if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                        return;
                    }
                }
            });
            let id = id.to_string();
            let mut done = 0u64;
            let stream = Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|c| (c, rx))
            }))
            .inspect(move |c| {
                if let Ok(b) = c {
                    done += b.len() as u64;
                    progress(PushEvent::Pushing {
                        id: id.clone(),
                        current: done,
                        total: size,
                    });
                }
            });
            let res = self
                .registry
                .push_blob_chunked(r, digest, Box::pin(stream))
                .await;
            let _ = reader.await;
            res.map_err(reg)?
        } else {
            let data = self.read_blob(&sd, ctx)?;
            self.registry
                .push_blob(r, digest, Bytes::from(data), None)
                .await
                .map_err(reg)?
        };
        Ok((how, None))
    }

    pub(crate) fn read_blob(&self, d: &skiff_store::Digest, ctx: &str) -> Result<Vec<u8>> {
        let mut f = self
            .store
            .content()
            .reader(d)
            .map_err(|e| ImagesError::store(ctx, e))?;
        let mut b = Vec::new();
        f.read_to_end(&mut b)
            .map_err(|e| ImagesError::store(ctx, e))?;
        Ok(b)
    }

    /// Notes on each blob that it exists in repository `r` (best effort: a missing label
    /// only costs a mount later).
    pub(crate) fn record_source(&self, r: &Reference, digests: &[String]) {
        let content = self.store.content();
        let key = format!("{LABEL_SOURCE_PREFIX}{}", r.domain());
        for d in digests {
            let Ok(sd) = d.parse::<skiff_store::Digest>() else {
                continue;
            };
            let Ok(labels) = content.labels(&sd) else {
                continue;
            };
            let mut repos: Vec<String> = labels
                .get(&key)
                .map(|v| v.split(',').map(str::to_string).collect())
                .unwrap_or_default();
            if repos.iter().any(|x| x == r.repository()) {
                continue;
            }
            repos.push(r.repository().to_string());
            // Keep the label bounded: the most recent few repositories are enough.
            let keep = repos.len().saturating_sub(8);
            let v = repos[keep..].join(",");
            let _ = content.set_label(&sd, &key, Some(&v));
        }
    }
}
