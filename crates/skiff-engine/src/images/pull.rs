//! `pull`: a reference from a registry into the store, ready to run.
//!
//! ```text
//! resolve (index → platform manifest) ─ manifest + config into content (under a lease)
//! layers: downloads in parallel (max_concurrent_downloads) into the content store, resumed
//!         from a half-done ingest; each layer is unpacked while its blob arrives, in
//!         parallel with the others: straight into a new snapshot's diff dir when the layer
//!         below is committed, else into a staging snapshot swapped into place (a rename, no
//!         copy) once it is; its diffID checked against the config, then committed under its
//!         chainID, bottom-up.
//! Layers whose chainID snapshot exists are skipped ("Already exists"). The image name is
//! written last: an interrupted pull leaves no visible image, and a retry reuses every blob
//! and snapshot already made (the lease keeps them from GC meanwhile).
//! ```

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use futures_util::StreamExt;
use oci_spec::image::{ImageConfiguration, ImageManifest};
use skiff_image::unpack::{apply_layer, ApplyOptions};
use skiff_registry::{Platform, Reference};
use skiff_store::{ContentError, Descriptor, Resource, LABEL_REF_CONTENT, LABEL_REF_SNAPSHOT};
use tokio::sync::Semaphore;

use super::follow::{Follow, Source};

use super::{
    short_id, to_oci, to_store, ImageService, ImagesError, Result, LABEL_INDEX_DIGEST,
    LABEL_REPO_DIGEST,
};

/// Where a layer of a pull is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerStatus {
    Waiting,
    AlreadyExists,
    Downloading { current: u64, total: u64 },
    DownloadComplete,
    Extracting { current: u64, total: u64 },
    PullComplete,
}

/// Progress of a pull, for the CLI's bars and the API's JSON message stream.
#[derive(Debug, Clone)]
pub enum PullEvent {
    /// Pulling from `repository` (familiar name) with `tag`.
    Start {
        repository: String,
        tag: String,
    },
    Layer {
        id: String,
        status: LayerStatus,
    },
    /// Done: the manifest (or index) digest clients see, and whether anything new was stored.
    Done {
        digest: String,
        fresh: bool,
    },
}

pub trait Progress: Send + Sync {
    fn event(&self, e: PullEvent);
}

impl<F: Fn(PullEvent) + Send + Sync> Progress for F {
    fn event(&self, e: PullEvent) {
        self(e)
    }
}

/// The image a pull stored.
#[derive(Debug, Clone)]
pub struct PullResult {
    /// The stored name (`docker.io/library/busybox:latest`).
    pub name: String,
    /// The image ID (config digest).
    pub id: String,
    /// The digest clients see (the index's when pulled through one).
    pub repo_digest: String,
    /// Whether anything was downloaded (Docker's "Downloaded newer image" vs "up to date").
    pub fresh: bool,
}

pub(crate) fn lease_id() -> String {
    let mut b = [0u8; 8];
    // SAFETY: getrandom writes at most b.len() bytes into b.
    let _ = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    format!(
        "pull-{}-{}",
        std::process::id(),
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    )
}

impl ImageService {
    /// Pull `reference` for `platform`.
    pub async fn pull(
        &self,
        reference: &str,
        platform: &Platform,
        progress: &dyn Progress,
    ) -> Result<PullResult> {
        let r = Reference::parse(reference)?;
        let ctx = format!("pull {}", r.familiar());
        progress.event(PullEvent::Start {
            repository: r.familiar_name(),
            tag: r
                .tag()
                .map(str::to_string)
                .unwrap_or_else(|| r.digest().map(|d| d.to_string()).unwrap_or_default()),
        });
        let lease = lease_id();
        let expires = chrono::Utc::now() + chrono::Duration::hours(1);
        self.store
            .lease_create(&lease, Some(expires), BTreeMap::new())
            .map_err(|e| ImagesError::store(&ctx, e))?;
        let res = self.pull_leased(&r, platform, progress, &lease, &ctx).await;
        // The image (if any) now holds what it needs; the lease goes either way (an
        // interrupted pull's lease expires by itself).
        let _ = self.store.lease_delete(&lease);
        res
    }

    async fn pull_leased(
        &self,
        r: &Reference,
        platform: &Platform,
        progress: &dyn Progress,
        lease: &str,
        ctx: &str,
    ) -> Result<PullResult> {
        let resolved = self
            .registry
            .resolve_manifest(r, platform)
            .await
            .map_err(|e| ImagesError::registry(ctx, e))?;
        let content = self.store.content().with_lease(lease);
        let manifest = &resolved.image;
        let mut fresh = false;

        // Config first: it names the diffIDs the layers must have.
        let config_desc = manifest.config();
        let config_digest = to_store(config_desc.digest())?;
        let config_bytes = match content
            .info(&config_digest)
            .map_err(|e| ImagesError::store(ctx, e))?
        {
            Some(_) => read_all(&content, &config_digest, ctx)?,
            None => {
                fresh = true;
                let b = self
                    .registry
                    .fetch_blob_bytes(r, config_desc.digest())
                    .await
                    .map_err(|e| ImagesError::registry(ctx, e))?;
                put_blob(
                    &content,
                    &config_digest,
                    config_desc.media_type().to_string(),
                    &b,
                    ctx,
                )?;
                b.to_vec()
            }
        };
        let config: ImageConfiguration = serde_json::from_slice(&config_bytes).map_err(|e| {
            ImagesError::Invalid(format!("{ctx}: image config {config_digest}: {e}"))
        })?;
        let diff_ids: Vec<skiff_registry::Digest> = config
            .rootfs()
            .diff_ids()
            .iter()
            .map(to_oci)
            .collect::<Result<_>>()?;
        if diff_ids.len() != manifest.layers().len() {
            return Err(ImagesError::Invalid(format!(
                "{ctx}: manifest has {} layers but the config has {} diff_ids",
                manifest.layers().len(),
                diff_ids.len()
            )));
        }
        let chain_ids = skiff_image::formats::chain_id::chain_ids(&diff_ids);

        // Which layers exist as snapshots already.
        let snaps = self.store.snapshots().with_lease(lease);
        let mut have = 0;
        for c in &chain_ids {
            if snaps.stat(c.as_ref()).is_ok() {
                have += 1;
            } else {
                break;
            }
        }
        for (i, l) in manifest.layers().iter().enumerate() {
            let status = if i < have {
                LayerStatus::AlreadyExists
            } else {
                LayerStatus::Waiting
            };
            progress.event(PullEvent::Layer {
                id: short_id(l.digest()),
                status,
            });
        }

        // Downloads in parallel; each layer's unpacker follows its download (see follow.rs).
        let sem = Arc::new(Semaphore::new(self.max_concurrent_downloads));
        let mut ready = Vec::new();
        let mut tasks = Vec::new();
        let mut progress_rxs = Vec::new();
        for l in manifest.layers().iter().skip(have) {
            let tx = Arc::new(Follow::default());
            ready.push(tx.clone());
            let digest = to_store(l.digest())?;
            if content
                .info(&digest)
                .map_err(|e| ImagesError::store(ctx, e))?
                .is_some()
            {
                let _ = self
                    .store
                    .lease_add_resource(lease, Resource::Content(digest));
                tx.finish(Ok(()));
                progress.event(PullEvent::Layer {
                    id: short_id(l.digest()),
                    status: LayerStatus::DownloadComplete,
                });
                continue;
            }
            fresh = true;
            let svc = self.clone();
            let r = r.clone();
            let l = l.clone();
            let sem = sem.clone();
            let content = content.clone();
            let ctx = ctx.to_string();
            // Progress events from tasks go through a channel to this task's `progress`.
            let (ptx, prx) = tokio::sync::mpsc::unbounded_channel::<PullEvent>();
            progress_rxs.push(prx);
            tasks.push(tokio::spawn(async move {
                let _permit = sem.acquire_owned().await;
                let res = svc.download_layer(&r, &l, &content, &ptx, &tx, &ctx).await;
                tx.finish(res.as_ref().map(|_| ()).map_err(|e| e.to_string()));
                res
            }));
        }
        // Forward task progress while unpacking in order.
        let forward = async {
            let mut merged =
                futures_util::stream::select_all(progress_rxs.into_iter().map(tokio_stream_from));
            while let Some(ev) = merged.next().await {
                progress.event(ev);
            }
        };
        let unpack = self.unpack_layers(
            manifest, &diff_ids, &chain_ids, have, ready, lease, progress, ctx,
        );
        let (_, unpacked) = tokio::join!(forward, unpack);
        for t in tasks {
            match t.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e),
                Err(e) => return Err(ImagesError::Invalid(format!("{ctx}: download task: {e}"))),
            }
        }
        unpacked?;

        // GC edges, then the name: from here on the image is visible and complete.
        let manifest_digest = to_store(&resolved.manifest.digest)?;
        put_blob(
            &content,
            &manifest_digest,
            resolved.manifest.media_type.clone(),
            &resolved.manifest.bytes,
            ctx,
        )?;
        let mut labels = BTreeMap::new();
        labels.insert(
            format!("{LABEL_REF_CONTENT}.config"),
            config_digest.to_string(),
        );
        for (i, l) in manifest.layers().iter().enumerate() {
            labels.insert(format!("{LABEL_REF_CONTENT}.l.{i}"), l.digest().to_string());
        }
        if let Some(top) = chain_ids.last() {
            labels.insert(LABEL_REF_SNAPSHOT.to_string(), top.to_string());
        }
        content
            .set_labels(&manifest_digest, labels)
            .map_err(|e| ImagesError::store(ctx, e))?;
        let mut repo_digest = resolved.manifest.digest.to_string();
        let mut record_labels = BTreeMap::new();
        if let Some(index) = &resolved.index {
            let index_digest = to_store(&index.digest)?;
            put_blob(
                &content,
                &index_digest,
                index.media_type.clone(),
                &index.bytes,
                ctx,
            )?;
            let mut l = BTreeMap::new();
            l.insert(
                format!("{LABEL_REF_CONTENT}.m.0"),
                manifest_digest.to_string(),
            );
            content
                .set_labels(&index_digest, l)
                .map_err(|e| ImagesError::store(ctx, e))?;
            repo_digest = index.digest.to_string();
            record_labels.insert(LABEL_INDEX_DIGEST.to_string(), index_digest.to_string());
        }
        record_labels.insert(
            LABEL_REPO_DIGEST.to_string(),
            format!("{}@{}", r.name(), repo_digest),
        );
        let name = r.to_string();
        let desc = Descriptor {
            media_type: resolved.manifest.media_type.clone(),
            digest: manifest_digest,
            size: resolved.manifest.bytes.len() as u64,
        };
        let previous = self
            .store
            .image_get(&name)
            .map_err(|e| ImagesError::store(ctx, e))?;
        let changed = previous
            .as_ref()
            .map(|p| p.target.digest != desc.digest)
            .unwrap_or(true);
        self.name_image(&name, desc, record_labels, ctx)?;
        // Where the blobs came from, for cross-repository mounts when pushing.
        let mut sources: Vec<String> = manifest
            .layers()
            .iter()
            .map(|l| l.digest().to_string())
            .collect();
        sources.push(config_digest.to_string());
        self.record_source(r, &sources);
        progress.event(PullEvent::Done {
            digest: repo_digest.clone(),
            fresh: fresh || changed,
        });
        Ok(PullResult {
            name,
            id: config_digest.to_string(),
            repo_digest,
            fresh: fresh || changed,
        })
    }

    /// One layer blob into the content store, resuming a half-done ingest.
    async fn download_layer(
        &self,
        r: &Reference,
        l: &oci_spec::image::Descriptor,
        content: &skiff_store::ContentStore,
        progress: &tokio::sync::mpsc::UnboundedSender<PullEvent>,
        follow: &Follow,
        ctx: &str,
    ) -> Result<()> {
        let digest = to_store(l.digest())?;
        let id = short_id(l.digest());
        let total = l.size();
        let desc = Descriptor {
            media_type: l.media_type().to_string(),
            digest: digest.clone(),
            size: total,
        };
        let key = digest.to_string();
        let content2 = content.clone();
        let writer = tokio::task::spawn_blocking(move || content2.writer(&key, Some(desc)))
            .await
            .map_err(|e| ImagesError::Invalid(format!("{ctx}: {e}")))?;
        let mut writer = match writer {
            Ok(w) => w,
            // Another pull (thread or process) stored it meanwhile: shared download.
            Err(ContentError::AlreadyExists { .. }) => {
                let _ = progress.send(PullEvent::Layer {
                    id,
                    status: LayerStatus::DownloadComplete,
                });
                return Ok(());
            }
            Err(e) => return Err(ImagesError::store(ctx, e)),
        };
        let mut offset = writer.offset();
        let mut stream = self
            .registry
            .fetch_blob(r, l.digest(), offset)
            .await
            .map_err(|e| ImagesError::registry(ctx, e))?;
        if stream.offset() != offset {
            // The server ignored the range: start over.
            writer.reset().map_err(|e| ImagesError::store(ctx, e))?;
            offset = 0;
        }
        // A download from the start can be unpacked while it arrives (a resumed one is
        // unpacked once complete).
        if writer.offset() == 0 {
            follow.set_reader(writer.reader().map_err(|e| ImagesError::store(ctx, e))?);
        }
        let mut last = std::time::Instant::now();
        let started = last;
        let mut done = offset;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| ImagesError::registry(ctx, e))?;
            // Small synchronous writes into the page cache; not worth a thread hop each.
            std::io::Write::write_all(&mut writer, &chunk)
                .map_err(|e| ImagesError::store(ctx, e))?;
            follow.add(chunk.len() as u64);
            done += chunk.len() as u64;
            if last.elapsed() > std::time::Duration::from_millis(100) {
                last = std::time::Instant::now();
                let _ = progress.send(PullEvent::Layer {
                    id: id.clone(),
                    status: LayerStatus::Downloading {
                        current: done,
                        total,
                    },
                });
            }
        }
        tokio::task::spawn_blocking(move || writer.commit())
            .await
            .map_err(|e| ImagesError::Invalid(format!("{ctx}: {e}")))?
            .map_err(|e| ImagesError::store(ctx, e))?;
        tracing::debug!(layer = %digest, bytes = done - offset, ms = started.elapsed().as_millis() as u64, "layer downloaded");
        let _ = progress.send(PullEvent::Layer {
            id,
            status: LayerStatus::DownloadComplete,
        });
        Ok(())
    }

    /// Unpack layers `have..`, each as soon as its blob is arriving, up to twice
    /// `max_concurrent_downloads` at once (lower layers first). A layer whose parent is
    /// committed goes straight into its snapshot; one above a layer still unpacking is
    /// staged (see [`ImageService::unpack_staged`]), so the layers of a pull decompress and
    /// write in parallel while the chain is still committed bottom-up.
    #[allow(clippy::too_many_arguments)]
    async fn unpack_layers(
        &self,
        manifest: &ImageManifest,
        diff_ids: &[skiff_registry::Digest],
        chain_ids: &[skiff_registry::Digest],
        have: usize,
        ready: Vec<Arc<Follow>>,
        lease: &str,
        progress: &dyn Progress,
        ctx: &str,
    ) -> Result<()> {
        // Twice the downloads: a layer whose download is done keeps unpacking while the next
        // ones arrive. Each unpack holds at most a few MiB of queued file content.
        let sem = Arc::new(Semaphore::new(2 * self.max_concurrent_downloads.max(1)));
        let (ptx, mut prx) = tokio::sync::mpsc::unbounded_channel();
        let mut below: Option<Arc<Committed>> = None;
        let mut jobs = Vec::new();
        for (n, follow) in ready.into_iter().enumerate() {
            let i = have + n;
            let l = &manifest.layers()[i];
            // In layer order, forwarding progress meanwhile.
            let permit = loop {
                tokio::select! {
                    p = sem.clone().acquire_owned() => break p,
                    Some(ev) = prx.recv() => progress.event(ev),
                }
            }
            .map_err(|e| ImagesError::Invalid(format!("{ctx}: {e}")))?;
            let job = LayerJob {
                digest: to_store(l.digest())?,
                media_type: l.media_type().to_string(),
                parent: (i > 0).then(|| chain_ids[i - 1].to_string()),
                chain: chain_ids[i].to_string(),
                diff_id: diff_ids[i].clone(),
                total: l.size(),
                id: short_id(l.digest()),
                lease: lease.to_string(),
                ctx: ctx.to_string(),
                below: below.take(),
                done: Arc::new(Committed::default()),
            };
            below = Some(job.done.clone());
            let svc = self.clone();
            let ptx = ptx.clone();
            jobs.push(tokio::task::spawn_blocking(move || {
                let _permit = permit;
                let done = job.done.clone();
                let res = svc.unpack_layer(follow, &job, &ptx);
                done.set(res.is_ok());
                if res.is_ok() {
                    let _ = ptx.send(PullEvent::Layer {
                        id: job.id.clone(),
                        status: LayerStatus::PullComplete,
                    });
                }
                res
            }));
        }
        drop(ptx);
        while let Some(ev) = prx.recv().await {
            progress.event(ev);
        }
        // The lowest failure is the cause; layers above it only saw it fail.
        let mut first = None;
        for job in jobs {
            let res = job
                .await
                .map_err(|e| ImagesError::Invalid(format!("{ctx}: {e}")))
                .and_then(|r| r);
            if let (Err(e), None) = (res, &first) {
                first = Some(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// One layer of [`ImageService::unpack_layers`], on a blocking thread.
    fn unpack_layer(
        &self,
        follow: Arc<Follow>,
        job: &LayerJob,
        progress: &tokio::sync::mpsc::UnboundedSender<PullEvent>,
    ) -> Result<()> {
        let ctx = &job.ctx;
        let source: Box<dyn Read + Send> = match follow.wait_source() {
            Ok(Source::Follow(r)) => Box::new(r),
            Ok(Source::Blob) => Box::new(
                self.store
                    .content()
                    .reader(&job.digest)
                    .map_err(|e| ImagesError::store(ctx, e))?,
            ),
            Err(e) => return Err(ImagesError::Invalid(e)),
        };
        match job.below.as_ref().map(|b| b.peek()) {
            None | Some(Some(true)) => self.unpack_direct(source, job, progress),
            Some(Some(false)) => Err(below_failed(job)),
            Some(None) => self.unpack_staged(source, job, progress),
        }
    }

    /// Unpacks a layer whose parent is still being unpacked: into a parentless staging
    /// snapshot (implied directories as plain 0755 root ones), and once the parent is
    /// committed, the staged tree is swapped into a new snapshot on it with one
    /// `renameat2(RENAME_EXCHANGE)` of the two diff dirs (same filesystem, nothing copied),
    /// the implied directories get their lower layers' owner and mode, and that snapshot is
    /// committed. Both snapshots always have a diff dir, so a crash anywhere leaves only
    /// leased, uncommitted snapshots that the next pull or GC removes.
    fn unpack_staged(
        &self,
        source: Box<dyn Read + Send>,
        job: &LayerJob,
        progress: &tokio::sync::mpsc::UnboundedSender<PullEvent>,
    ) -> Result<()> {
        let ctx = &job.ctx;
        let snaps = self.store.snapshots().with_lease(&job.lease);
        if snaps.stat(&job.chain).is_ok() {
            return Ok(()); // another pull made it meanwhile
        }
        let stage = format!("stage-{}-{}", std::process::id(), job.chain);
        let _ = snaps.remove(&stage);
        snaps
            .prepare(&stage, None)
            .map_err(|e| ImagesError::store(ctx, e))?;
        let result = (|| -> Result<()> {
            let staged = snaps
                .upper_dir(&stage)
                .map_err(|e| ImagesError::store(ctx, e))?;
            let opts = self.apply_options(job, Vec::new());
            let stats = self.apply(source, job, &staged, &opts, progress)?;
            if !job.below.as_ref().is_none_or(|b| b.wait()) {
                return Err(below_failed(job));
            }
            if snaps.stat(&job.chain).is_ok() {
                return Ok(());
            }
            let key = format!("extract-{}-{}", std::process::id(), job.chain);
            let _ = snaps.remove(&key);
            snaps
                .prepare(&key, job.parent.as_deref())
                .map_err(|e| ImagesError::store(ctx, e))?;
            let res = (|| -> Result<()> {
                let upper = snaps
                    .upper_dir(&key)
                    .map_err(|e| ImagesError::store(ctx, e))?;
                exchange_dirs(&staged, &upper).map_err(|e| {
                    let what = format!("{ctx}: swap staged layer into {}", upper.display());
                    ImagesError::store(what, e)
                })?;
                let opts = self.apply_options(job, self.lower_dirs(job.parent.as_deref())?);
                skiff_image::unpack::inherit_lower_dirs(&upper, &stats.implied_dirs, &opts)
                    .map_err(|e| ImagesError::Layer {
                        context: ctx.to_string(),
                        source: Box::new(e),
                    })?;
                self.commit_layer(&snaps, &key, job, stats.uncompressed_size)
            })();
            if res.is_err() {
                let _ = snaps.remove(&key);
            }
            res
        })();
        let _ = snaps.remove(&stage);
        result
    }

    fn apply_options(&self, job: &LayerJob, lower_dirs: Vec<PathBuf>) -> ApplyOptions {
        ApplyOptions {
            layer: job.digest.to_string(),
            lower_dirs,
            expected_diff_id: Some(job.diff_id.clone()),
            ..ApplyOptions::default()
        }
    }

    /// Applies the layer stream into `target` with "Extracting" progress.
    fn apply(
        &self,
        source: Box<dyn Read + Send>,
        job: &LayerJob,
        target: &std::path::Path,
        opts: &ApplyOptions,
        progress: &tokio::sync::mpsc::UnboundedSender<PullEvent>,
    ) -> Result<skiff_image::unpack::ApplyStats> {
        let reader = CountingReader {
            inner: std::io::BufReader::with_capacity(256 * 1024, source),
            done: 0,
            last: std::time::Instant::now(),
            total: job.total,
            id: job.id.clone(),
            progress: progress.clone(),
        };
        let compression =
            skiff_image::formats::media_types::layer_type(&job.media_type).map(|t| t.compression);
        let started = std::time::Instant::now();
        let stats =
            apply_layer(reader, compression, target, opts).map_err(|e| ImagesError::Layer {
                context: job.ctx.clone(),
                source: Box::new(e),
            })?;
        tracing::debug!(layer = %job.digest, entries = stats.entries, bytes = stats.uncompressed_size, ms = started.elapsed().as_millis() as u64, staged = opts.lower_dirs.is_empty() && job.parent.is_some(), "layer unpacked");
        Ok(stats)
    }

    /// Commits an unpacked snapshot as `job.chain` with its size label, and tells the layer
    /// above (which may be waiting to commit on it).
    fn commit_layer(
        &self,
        snaps: &skiff_store::Snapshotter,
        key: &str,
        job: &LayerJob,
        size: u64,
    ) -> Result<()> {
        let (chain, ctx) = (&job.chain, &job.ctx);
        let mut labels = BTreeMap::new();
        labels.insert(super::query::LABEL_LAYER_SIZE.to_string(), size.to_string());
        match snaps.commit_labeled(key, chain, Some(labels)) {
            Ok(()) => {
                job.done.set(true);
                Ok(())
            }
            // Another pull of the same layer committed first: theirs is identical.
            Err(skiff_store::SnapshotError::AlreadyExists(_)) => {
                job.done.set(true);
                let _ = snaps.remove(key);
                Ok(())
            }
            Err(e) => Err(ImagesError::store(ctx, e)),
        }
    }

    /// Unpack a layer whose blob is in the content store.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn unpack_one(
        &self,
        digest: &skiff_store::Digest,
        media_type: &str,
        parent: Option<&str>,
        chain: &str,
        diff_id: skiff_registry::Digest,
        lease: &str,
        total: u64,
        id: &str,
        progress: &tokio::sync::mpsc::UnboundedSender<PullEvent>,
        ctx: &str,
    ) -> Result<()> {
        let file = self
            .store
            .content()
            .reader(digest)
            .map_err(|e| ImagesError::store(ctx, e))?;
        self.unpack_from(
            Box::new(file),
            digest,
            media_type,
            parent,
            chain,
            diff_id,
            lease,
            total,
            id,
            progress,
            ctx,
        )
    }

    /// Unpack a layer from `source` (its compressed bytes) into a new snapshot committed as
    /// `chain`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn unpack_from(
        &self,
        source: Box<dyn Read + Send>,
        digest: &skiff_store::Digest,
        media_type: &str,
        parent: Option<&str>,
        chain: &str,
        diff_id: skiff_registry::Digest,
        lease: &str,
        total: u64,
        id: &str,
        progress: &tokio::sync::mpsc::UnboundedSender<PullEvent>,
        ctx: &str,
    ) -> Result<()> {
        let job = LayerJob {
            digest: digest.clone(),
            media_type: media_type.to_string(),
            parent: parent.map(str::to_string),
            chain: chain.to_string(),
            diff_id,
            total,
            id: id.to_string(),
            lease: lease.to_string(),
            ctx: ctx.to_string(),
            below: None,
            done: Arc::default(),
        };
        self.unpack_direct(source, &job, progress)
    }

    /// Unpacks a layer whose parent is committed straight into its snapshot.
    fn unpack_direct(
        &self,
        source: Box<dyn Read + Send>,
        job: &LayerJob,
        progress: &tokio::sync::mpsc::UnboundedSender<PullEvent>,
    ) -> Result<()> {
        let ctx = &job.ctx;
        let snaps = self.store.snapshots().with_lease(&job.lease);
        if snaps.stat(&job.chain).is_ok() {
            return Ok(()); // another pull made it meanwhile
        }
        let key = format!("extract-{}-{}", std::process::id(), job.chain);
        let _ = snaps.remove(&key);
        snaps
            .prepare(&key, job.parent.as_deref())
            .map_err(|e| ImagesError::store(ctx, e))?;
        let result = (|| -> Result<()> {
            let upper = snaps
                .upper_dir(&key)
                .map_err(|e| ImagesError::store(ctx, e))?;
            let opts = self.apply_options(job, self.lower_dirs(job.parent.as_deref())?);
            let stats = self.apply(source, job, &upper, &opts, progress)?;
            self.commit_layer(&snaps, &key, job, stats.uncompressed_size)
        })();
        if result.is_err() {
            let _ = snaps.remove(&key);
        }
        result
    }

    /// The diff dirs of a committed snapshot chain, topmost first.
    fn lower_dirs(&self, top: Option<&str>) -> Result<Vec<PathBuf>> {
        let snaps = self.store.snapshots();
        let mut out = Vec::new();
        let mut cur = top.map(str::to_string);
        while let Some(k) = cur {
            let info = snaps
                .stat(&k)
                .map_err(|e| ImagesError::store("snapshot chain", e))?;
            out.push(self.store.layout().overlay().join(&info.id).join("diff"));
            cur = info.parent;
        }
        Ok(out)
    }
}

/// One layer to unpack, and how it meets the layers next to it.
struct LayerJob {
    digest: skiff_store::Digest,
    media_type: String,
    /// The chainID below (committed, or being unpacked by `below`).
    parent: Option<String>,
    chain: String,
    diff_id: skiff_registry::Digest,
    /// Compressed size, for progress.
    total: u64,
    id: String,
    lease: String,
    ctx: String,
    /// The layer below when it is unpacked in this pull.
    below: Option<Arc<Committed>>,
    /// This layer's outcome, for the layer above.
    done: Arc<Committed>,
}

/// Whether a layer of this pull has been committed (true) or failed (false).
#[derive(Default)]
struct Committed {
    state: std::sync::Mutex<Option<bool>>,
    cv: std::sync::Condvar,
}

impl Committed {
    /// Records the outcome; the first one stands.
    fn set(&self, ok: bool) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.is_none() {
            *s = Some(ok);
            self.cv.notify_all();
        }
    }

    fn peek(&self) -> Option<bool> {
        *self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait(&self) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(ok) = *s {
                return ok;
            }
            s = self.cv.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }
}

fn below_failed(job: &LayerJob) -> ImagesError {
    ImagesError::Invalid(format!(
        "{}: layer {} not unpacked: the layer below it failed",
        job.ctx, job.id
    ))
}

/// Swaps two directories on one filesystem atomically; where the filesystem cannot
/// (RENAME_EXCHANGE is refused), `a` replaces the empty `b` and an empty `a` is made again.
fn exchange_dirs(a: &std::path::Path, b: &std::path::Path) -> std::io::Result<()> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    use rustix::io::Errno;
    match renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE) {
        Ok(()) => Ok(()),
        Err(Errno::INVAL) | Err(Errno::NOSYS) | Err(Errno::NOTSUP) => {
            std::fs::rename(a, b)?;
            std::fs::create_dir(a)
        }
        Err(e) => Err(e.into()),
    }
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<PullEvent>,
) -> impl futures_util::Stream<Item = PullEvent> + Unpin {
    Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}

fn read_all(
    content: &skiff_store::ContentStore,
    d: &skiff_store::Digest,
    ctx: &str,
) -> Result<Vec<u8>> {
    let mut f = content.reader(d).map_err(|e| ImagesError::store(ctx, e))?;
    let mut b = Vec::new();
    f.read_to_end(&mut b)
        .map_err(|e| ImagesError::store(ctx, e))?;
    Ok(b)
}

/// A small blob (manifest, config, index) into the content store.
pub(crate) fn put_blob(
    content: &skiff_store::ContentStore,
    d: &skiff_store::Digest,
    media_type: String,
    bytes: &[u8],
    ctx: &str,
) -> Result<()> {
    let desc = Descriptor {
        media_type,
        digest: d.clone(),
        size: bytes.len() as u64,
    };
    match content.writer(&d.to_string(), Some(desc)) {
        Ok(mut w) => {
            if w.offset() != 0 {
                w.reset().map_err(|e| ImagesError::store(ctx, e))?;
            }
            std::io::Write::write_all(&mut w, bytes).map_err(|e| ImagesError::store(ctx, e))?;
            w.commit().map_err(|e| ImagesError::store(ctx, e))?;
            Ok(())
        }
        Err(ContentError::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(ImagesError::store(ctx, e)),
    }
}

/// Counts compressed bytes read by the unpacker, for "Extracting" progress.
struct CountingReader<R> {
    inner: R,
    done: u64,
    last: std::time::Instant,
    total: u64,
    id: String,
    progress: tokio::sync::mpsc::UnboundedSender<PullEvent>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if self.last.elapsed() > std::time::Duration::from_millis(100) {
            self.last = std::time::Instant::now();
            let _ = self.progress.send(PullEvent::Layer {
                id: self.id.clone(),
                status: LayerStatus::Extracting {
                    current: self.done,
                    total: self.total,
                },
            });
        }
        Ok(n)
    }
}
