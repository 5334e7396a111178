//! The build loop: stages in the plan's waves (only those the target needs; the stages of
//! one wave on their own threads when there are several), steps in order, each answered
//! from the cache or executed, then the final image stored and named.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use skiff_build::cache_key::{cache_key, CacheKeyInput};
use skiff_build::plan::resolve_source;
use skiff_build::{
    unconsumed_build_args, Action, Base, BuildContext, BuildOptions, BuildPlan, ContextError,
    Dockerfile, Instr, Instruction, Source, StageState, Step,
};
use skiff_registry::Reference;

use super::cache::{BuildCache, CacheEntry, LayerRef, CACHE_VERSION};
use super::copy::{self, SourceRoot};
use super::history::{self, now, ImgState};
use super::layer::{StepLayer, View};
use super::rootfs::{absolute_dest, mkdir_all};
use super::run::{run_in, RunSpec};
use super::run_mounts::{context_source, mount_err, target_of, Resolved, RunMounts};
use super::{io_err, BuildError, BuildOutput, BuildRequest, BuildResult, Builder};
use crate::images::short_id;

/// Drops everything (`-q`).
struct Quiet<'a>(&'a dyn BuildOutput);

impl BuildOutput for Quiet<'_> {
    fn stream(&self, _: &str) {}
    fn cancelled(&self) -> bool {
        self.0.cancelled()
    }
}

/// One build in progress.
struct Job<'a> {
    b: &'a Builder,
    df: &'a Dockerfile,
    plan: &'a BuildPlan,
    ctx: &'a BuildContext,
    req: &'a BuildRequest,
    out: &'a dyn BuildOutput,
    cache: BuildCache,
    total: usize,
    /// Step numbers: each stage's first step number, Dockerfile order.
    first_step: BTreeMap<usize, usize>,
    hits: AtomicUsize,
    executed: AtomicUsize,
    results: Mutex<BTreeMap<usize, ImgState>>,
}

impl Builder {
    /// Builds the image the Dockerfile in `ctx` describes.
    pub fn build(
        &self,
        ctx: &BuildContext,
        req: &BuildRequest,
        out: &dyn BuildOutput,
    ) -> Result<BuildResult, BuildError> {
        let quiet = Quiet(out);
        let out: &dyn BuildOutput = if req.quiet { &quiet } else { out };
        let name = if req.dockerfile.is_empty() {
            "Dockerfile"
        } else {
            req.dockerfile.as_str()
        };
        let bytes = ctx.read_dockerfile().map_err(|e| match e {
            ContextError::NotFound(_) => BuildError::NoDockerfile(name.to_string()),
            e => e.into(),
        })?;
        let df = Dockerfile::parse(name, &bytes)?;
        let opts = BuildOptions {
            build_args: req.build_args.clone(),
            target: req.target.clone(),
            ..Default::default()
        };
        let plan = BuildPlan::new(&df, &opts)?;
        if let super::BuildNetwork::Named(n) = req.network.effective(self.net_on()) {
            super::run::check_network(self, &n)?;
        }
        let cache = self.cache();
        cache.ensure_lease()?;
        let mut first_step = BTreeMap::new();
        let mut total = 0;
        for &i in &plan.needed {
            first_step.insert(i, total + 1);
            total += 1 + df.stages[i].instructions.len();
        }
        let job = Job {
            b: self,
            df: &df,
            plan: &plan,
            ctx,
            req,
            out,
            cache,
            total,
            first_step,
            hits: AtomicUsize::new(0),
            executed: AtomicUsize::new(0),
            results: Mutex::new(BTreeMap::new()),
        };
        for wave in &plan.waves {
            job.run_wave(wave)?;
        }
        let fin = job
            .results
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&plan.target)
            .ok_or(BuildError::Cancelled)?;
        let unused = unconsumed_build_args(&df, &opts);
        if !unused.is_empty() {
            out.stream(&format!(
                "[Warning] One or more build-args [{}] were not consumed\n",
                unused.join(" ")
            ));
        }
        let (id, tags) = self.store_image(fin, req)?;
        out.stream(&format!("Successfully built {}\n", short_id(&id)));
        for t in &tags {
            out.stream(&format!("Successfully tagged {t}\n"));
        }
        Ok(BuildResult {
            id,
            tags,
            cache_hits: job.hits.load(Ordering::Relaxed),
            executed: job.executed.load(Ordering::Relaxed),
        })
    }

    /// A base or `--from` image: local, else pulled (always pulled with `pull`).
    fn base_image(&self, r: &str, pull: bool) -> Result<ImgState, BuildError> {
        if !pull {
            if let Ok(img) = self.images.resolve(r) {
                return Ok(ImgState::from_image(&img));
            }
        }
        let platform = skiff_registry::Platform::host();
        let progress = |_e: crate::images::PullEvent| {};
        let fut = self.images.pull(r, &platform, &progress);
        match &self.handle {
            Some(h) => h.block_on(fut)?,
            None => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(io_err("start a runtime for", r))?
                .block_on(fut)?,
        };
        Ok(ImgState::from_image(&self.images.resolve(r)?))
    }

    /// Stores the final image (unless every tag already names it) and names it.
    fn store_image(
        &self,
        mut fin: ImgState,
        req: &BuildRequest,
    ) -> Result<(String, Vec<String>), BuildError> {
        if !req.labels.is_empty() {
            let mut cfg = fin.run_config();
            cfg.labels
                .get_or_insert_with(Default::default)
                .extend(req.labels.clone());
            fin.config["config"] = serde_json::to_value(&cfg).unwrap_or_default();
            fin.raw = None;
        }
        let bytes = fin.bytes();
        let id = skiff_image::digest::sha256(&bytes).to_string();
        let mut names = Vec::new();
        for t in &req.tags {
            let r = Reference::parse(t).map_err(crate::images::ImagesError::from)?;
            if r.digest().is_some() {
                return Err(crate::images::ImagesError::Invalid(format!(
                    "refusing to create a tag with a digest reference: {t}"
                ))
                .into());
            }
            names.push(r);
        }
        let svc = &self.images;
        let already = !names.is_empty()
            && names.iter().all(|r| {
                matches!(svc.store.image_get(&r.to_string()), Ok(Some(rec))
                    if svc.load_record(&rec).is_ok_and(|(m, _, _)| m.config().digest().to_string() == id))
            });
        if !already {
            super::layer::sync_layers(&svc.store)?;
            let layers = fin
                .layers
                .iter()
                .map(LayerRef::to_new_layer)
                .collect::<Result<Vec<_>, _>>()?;
            svc.store_new_image(&bytes, &layers, &names, "build")?;
        }
        Ok((id, names.iter().map(|r| r.familiar()).collect()))
    }
}

impl Job<'_> {
    fn run_wave(&self, wave: &[usize]) -> Result<(), BuildError> {
        if wave.len() == 1 {
            let st = self.build_stage(wave[0])?;
            self.results
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(wave[0], st);
            return Ok(());
        }
        std::thread::scope(|s| {
            let handles: Vec<_> = wave
                .iter()
                .map(|&i| (i, s.spawn(move || self.build_stage(i))))
                .collect();
            let mut first_err = None;
            for (i, h) in handles {
                match h.join() {
                    Ok(Ok(st)) => {
                        self.results
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(i, st);
                    }
                    Ok(Err(e)) => {
                        first_err.get_or_insert(e);
                    }
                    Err(_) => {
                        first_err.get_or_insert(BuildError::Cancelled);
                    }
                }
            }
            first_err.map_or(Ok(()), Err)
        })
    }

    fn stage_result(&self, i: usize) -> Option<ImgState> {
        self.results
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&i)
            .cloned()
    }

    fn build_stage(&self, i: usize) -> Result<ImgState, BuildError> {
        let stage = &self.df.stages[i];
        let mut n = self.first_step.get(&i).copied().unwrap_or(1);
        // Parallel stages would interleave: each prints its lines as one block per step.
        let mut text = format!(
            "Step {n}/{} : {}\n",
            self.total, stage.from_instruction.original
        );
        let mut cur = match &self.plan.stages[i].base {
            Base::Scratch => ImgState::scratch(),
            Base::Stage(j) => self.stage_result(*j).ok_or(BuildError::Cancelled)?,
            Base::Image(r) => self.b.base_image(r, self.req.pull)?,
        };
        text.push_str(&format!(" ---> {}\n", short_id(&cur.id)));
        self.out.stream(&text);
        let (mut state, triggers) = StageState::new(
            self.df,
            &self.plan.global,
            &self.req.build_args,
            cur.run_config(),
        )?;
        if !triggers.is_empty() {
            self.out.stream(&format!(
                "# Executing {} build trigger{}\n",
                triggers.len(),
                if triggers.len() == 1 { "" } else { "s" }
            ));
        }
        for t in &triggers {
            let step = state.step(t)?;
            cur = self.exec_step(&step, t, &state, cur)?;
        }
        for instr in &stage.instructions {
            n += 1;
            if self.out.cancelled() {
                return Err(BuildError::Cancelled);
            }
            self.out
                .stream(&format!("Step {n}/{} : {}\n", self.total, instr.original));
            let step = state.step(instr)?;
            cur = self.exec_step(&step, instr, &state, cur)?;
            self.out.stream(&format!(" ---> {}\n", short_id(&cur.id)));
        }
        Ok(cur)
    }

    /// The step's result from the cache, or from `make` (then cached).
    fn cached(
        &self,
        key: &str,
        make: impl FnOnce() -> Result<(ImgState, Option<u64>), BuildError>,
    ) -> Result<ImgState, BuildError> {
        if !self.req.no_cache {
            if let Some(e) = self.cache.get(key) {
                self.out.stream(" ---> Using cache\n");
                self.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(ImgState {
                    config: e.config,
                    layers: e.layers,
                    id: e.id,
                    raw: None,
                });
            }
        }
        let t0 = std::time::Instant::now();
        let (st, layer_size) = make()?;
        let made = t0.elapsed();
        self.executed.fetch_add(1, Ordering::Relaxed);
        let layer = layer_size.and_then(|_| st.layers.last().cloned());
        let created_by = st.config["history"]
            .as_array()
            .and_then(|h| h.last())
            .and_then(|h| h["created_by"].as_str())
            .unwrap_or("")
            .to_string();
        let entry = CacheEntry {
            version: CACHE_VERSION,
            id: st.id.clone(),
            config: st.config.clone(),
            layers: st.layers.clone(),
            layer,
            layer_size: layer_size.unwrap_or(0),
            created_by,
            created: now(),
        };
        self.cache.put(key, &entry)?;
        tracing::debug!(
            step = %entry.created_by,
            exec_ms = made.as_secs_f64() * 1e3,
            total_ms = t0.elapsed().as_secs_f64() * 1e3,
            "build step executed"
        );
        Ok(st)
    }

    fn key(&self, parent: &ImgState, instr: &Instr, args: &[String], files: &str) -> String {
        cache_key(&CacheKeyInput {
            parent: &parent.id,
            instruction: instr,
            build_args: args,
            files_checksum: files,
        })
    }

    /// A `--mount`'s `from=` looked up (bind mounts: `None` is the context) and what it adds
    /// to the step's cache key: for a bind, the target and the checksum of the bound files
    /// (from the context: as COPY's; from a stage or image: its id). Cache and tmpfs mounts
    /// add nothing (their content is not an input of the step).
    fn mount_input(
        &self,
        m: &skiff_build::mounts::Mount,
        workdir: &str,
        line: usize,
    ) -> Result<(Option<ImgState>, String), BuildError> {
        use skiff_build::mounts::MountType;
        let target = target_of(m, workdir);
        match m.kind {
            MountType::Bind => {}
            // A cache's seed (`from=`) is looked up like a bind's source, but, as all of a
            // cache's content, stays out of the key.
            MountType::Cache if m.from.is_some() => {}
            _ => return Ok((None, String::new())),
        }
        let Some(f) = m.from.as_deref() else {
            let src = m.source.as_deref().unwrap_or("/");
            // Checked to exist first: the error names the mount.
            context_source(self.ctx, m, line)?;
            let opts = skiff_build::CopyOptions {
                chown: None,
                exclude: &[],
                instruction: "RUN --mount",
            };
            let plan = self
                .ctx
                .resolve_copy(&[src.to_string()], "/", &opts)
                .map_err(|e| mount_err(line, m, e))?;
            return Ok((None, format!("bind:{target}={};", plan.checksum)));
        };
        let st = match resolve_source(self.df, f) {
            Some(Source::Stage(j)) => self.stage_result(j).ok_or(BuildError::Cancelled)?,
            Some(Source::Image(r)) => self.b.base_image(&r, false)?,
            None => ImgState::scratch(),
        };
        if m.kind == MountType::Cache {
            return Ok((Some(st), String::new()));
        }
        let sum = format!("bind:{target}=from:{};", st.id);
        Ok((Some(st), sum))
    }

    /// Executes one step (`raw`: the instruction as written).
    fn exec_step(
        &self,
        step: &Step,
        raw: &Instruction,
        state: &StageState,
        cur: ImgState,
    ) -> Result<ImgState, BuildError> {
        let cfg = &state.image.config;
        let author = state.image.author.as_deref();
        let store = &self.b.images.store;
        let diff_ids: Vec<String> = cur.layers.iter().map(|l| l.diff_id.clone()).collect();
        let instr = &step.instruction.kind;
        match &step.action {
            Action::Config => {
                // ARG keys on the declaration as written, as Docker's: a build arg's value
                // reaches the keys of the steps that use it (RUN's args, expanded text).
                let keyed = if matches!(instr, Instr::Arg(_)) {
                    &raw.kind
                } else {
                    instr
                };
                let key = self.key(&cur, keyed, &[], "");
                let by = history::nop(&history::instruction_text(&step.instruction.original));
                self.cached(&key, || Ok((cur.next(cfg, author, by, None), None)))
            }
            Action::Run {
                script,
                argv,
                env,
                cache_args,
            } => {
                let mut network = self.req.network.clone();
                let mut resolved = Vec::new();
                let mut files = String::new();
                let line = step.instruction.start_line;
                if let Instr::Run(r) = instr {
                    if r.security != skiff_build::mounts::SecurityMode::Sandbox {
                        return Err(BuildError::Unsupported(format!(
                            "Dockerfile:{line}: RUN --security=insecure is not supported by skiff"
                        )));
                    }
                    network = match r.network {
                        skiff_build::mounts::NetworkMode::Default => network,
                        skiff_build::mounts::NetworkMode::None => super::BuildNetwork::None,
                        skiff_build::mounts::NetworkMode::Host => super::BuildNetwork::Host,
                    };
                    let workdir = cfg.working_dir.as_deref().unwrap_or("/");
                    for m in &r.mounts {
                        let (from, sum) = self.mount_input(m, workdir, line)?;
                        files.push_str(&sum);
                        resolved.push(Resolved {
                            mount: m.clone(),
                            from,
                        });
                    }
                }
                let key = self.key(&cur, instr, cache_args, &files);
                self.cached(&key, || {
                    let layer = StepLayer::prepare(store, cur.top_chain().as_deref())?;
                    let workdir = cfg.working_dir.as_deref().unwrap_or("/");
                    let mounts = if resolved.is_empty() {
                        None
                    } else {
                        Some(RunMounts::prepare(
                            store,
                            self.ctx,
                            &layer.rootfs,
                            resolved,
                            workdir,
                            line,
                        )?)
                    };
                    let spec = RunSpec {
                        argv,
                        env,
                        user: cfg.user.as_deref(),
                        workdir: cfg.working_dir.as_deref(),
                        script,
                        network,
                        mounts: mounts.as_ref(),
                    };
                    run_in(self.b, &layer, &spec, self.out)?;
                    // Views, overlays and cache locks go before the layer is committed.
                    drop(mounts);
                    let (l, size) = layer.commit(&diff_ids)?;
                    let by = history::run(argv, cache_args);
                    Ok((cur.next(cfg, author, by, Some(l)), Some(size)))
                })
            }
            Action::Workdir { path } => {
                let key = self.key(&cur, instr, &[], "");
                let by = format!("/bin/sh -c #(nop) WORKDIR {path}");
                self.cached(&key, || {
                    let layer = StepLayer::prepare(store, cur.top_chain().as_deref())?;
                    let (_, created) =
                        mkdir_all(&layer.rootfs, path, (0, 0)).map_err(io_err("create", path))?;
                    if !created {
                        return Ok((cur.next(cfg, author, by, None), None));
                    }
                    let (l, size) = layer.commit(&diff_ids)?;
                    Ok((cur.next(cfg, author, by, Some(l)), Some(size)))
                })
            }
            Action::Copy => {
                let (c, add) = match instr {
                    Instr::Copy(c) => (c, false),
                    Instr::Add(c) => (c, true),
                    _ => unreachable!("Action::Copy comes from COPY or ADD"),
                };
                let tmp = store.root().join("tmp");
                let from = match c.from.as_deref() {
                    None => None,
                    Some(f) => Some(match resolve_source(self.df, f) {
                        Some(Source::Stage(j)) => {
                            self.stage_result(j).ok_or(BuildError::Cancelled)?
                        }
                        Some(Source::Image(r)) => self.b.base_image(&r, false)?,
                        None => ImgState::scratch(),
                    }),
                };
                let (prepared, files) = match &from {
                    Some(src) => (None, format!("from:{}", src.id)),
                    None => {
                        let p = copy::prepare(c, add, SourceRoot::Context(self.ctx), &tmp, self.b)?;
                        let sum = p.checksum.clone();
                        (Some(p), sum)
                    }
                };
                let key = self.key(&cur, instr, &[], &files);
                let dest = absolute_dest(cfg.working_dir.as_deref().unwrap_or("/"), &c.dest);
                let kw = if add { "ADD" } else { "COPY" };
                self.cached(&key, || {
                    let view;
                    let prepared = match (prepared, &from) {
                        (Some(p), _) => p,
                        (None, Some(src)) => {
                            view = View::mount(store, src.top_chain().as_deref())?;
                            copy::prepare(c, add, SourceRoot::Dir(&view.rootfs), &tmp, self.b)?
                        }
                        (None, None) => unreachable!("a COPY has a context or a --from source"),
                    };
                    let layer = StepLayer::prepare(store, cur.top_chain().as_deref())?;
                    let owner = copy::owner(&layer.rootfs, c.chown.as_deref())?;
                    let mode = copy::chmod(c)?;
                    copy::apply(&prepared, &layer.rootfs, &dest, owner, mode)?;
                    let sum = prepared.checksum.trim_start_matches("sha256:").to_string();
                    let (l, size) = layer.commit(&diff_ids)?;
                    let by = format!("/bin/sh -c #(nop) {kw} multi:{sum} in {dest} ");
                    Ok((cur.next(cfg, author, by, Some(l)), Some(size)))
                })
            }
        }
    }
}
