//! `RUN --mount=…`: what each mount becomes in the RUN container's spec (skiff-build parses
//! them: [`skiff_build::mounts`]).
//!
//! What matches Docker (BuildKit):
//! - A relative target is taken from the WORKDIR.
//! - `type=bind` (the default type): `source` (default `/`) from the build context, or from
//!   a stage (name or index) or an image with `from=`; read-only unless `rw`, and then the
//!   writes go to a scratch overlay (context) or a throw-away snapshot (stage/image) that is
//!   discarded after the step. A context source is resolved inside the context: symlinks
//!   are followed but never out of it; a stage source inside the stage's rootfs likewise.
//!   The bound files are part of the step's cache key (the executor adds their checksum, as
//!   for COPY), their content never reaches the layer.
//! - `type=cache`: a directory that outlives the build ([`super::cache_mounts`]), shared,
//!   locked or private per `sharing`, made with `mode`/`uid`/`gid`, read-only with `ro`; its
//!   content is neither in the layer nor in the cache key. With `from=` (a stage or an
//!   image) a cache that does not exist yet starts as a copy of `source` (default `/`) of
//!   that rootfs, resolved inside it; an existing cache keeps its content (BuildKit bases
//!   the cache on the `from` only when it creates it too). `source=` without `from=` is
//!   ignored, as BuildKit does.
//! - `type=tmpfs`: an empty tmpfs (`size=` honoured), gone after the step.
//! - `type=secret` and `type=ssh`: the classic builder's API has no way to pass secrets or
//!   an SSH agent, so, as BuildKit does when none was given, such a mount is left out unless
//!   `required=true`, which fails the step.
//! - Mounts are made parents first (sorted by target depth, stable).
//! - Mount points: the runtime creates a missing target (and parents) in the rootfs; skiff
//!   takes those it created out of the layer again when they are still empty, and the
//!   parents the overlay copied up for them ([`Stubs`]). Docker may leave the empty target
//!   directory in the layer; skiff leaves nothing.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use skiff_build::mounts::{Mount, MountType, Sharing};
use skiff_build::BuildContext;
use skiff_store::Store;

use super::cache_mounts::{CacheMounts, HeldCache};
use super::history::ImgState;
use super::layer::{StepLayer, View};
use super::rootfs::{resolve, Stubs};
use super::{io_err, store_e, BuildError};

/// One `--mount` with its `from=` looked up (`None`: the build context).
pub(crate) struct Resolved {
    pub mount: Mount,
    pub from: Option<ImgState>,
}

/// The mounts of one RUN, ready: [`RunMounts::specs`] go into the container's spec; the
/// views, snapshots, overlays and cache locks behind them live until this is dropped.
pub(crate) struct RunMounts {
    pub specs: Vec<Value>,
    /// Mount points the runtime will create in the rootfs.
    stubs: Stubs,
    /// `<data-root>/builds/mnt-<hex>`: scratch overlays of `rw` context binds.
    dir: Option<PathBuf>,
    overlays: Vec<PathBuf>,
    _views: Vec<View>,
    _layers: Vec<StepLayer>,
    _caches: Vec<(String, HeldCache)>,
}

/// The absolute target of a mount (relative ones are taken from WORKDIR).
pub(crate) fn target_of(m: &Mount, workdir: &str) -> String {
    let t = if m.target.starts_with('/') {
        m.target.clone()
    } else {
        format!(
            "{}/{}",
            if workdir.is_empty() { "/" } else { workdir },
            m.target
        )
    };
    skiff_build::apply::clean_path(&t)
}

/// The error of one mount, naming the line, the type and the target.
pub(crate) fn mount_err(line: usize, m: &Mount, message: impl std::fmt::Display) -> BuildError {
    BuildError::Mount {
        line,
        message: format!("type={},target={}: {message}", m.kind.name(), m.target),
    }
}

/// The host path of a bind mount's source in the context (checked to exist).
pub(crate) fn context_source(
    ctx: &BuildContext,
    m: &Mount,
    line: usize,
) -> Result<PathBuf, BuildError> {
    let src = m.source.as_deref().unwrap_or("/");
    match ctx.resolve(src) {
        Ok(Some(p)) => Ok(p),
        Ok(None) => Err(mount_err(
            line,
            m,
            format!("source {src:?} not found in the build context"),
        )),
        Err(e) => Err(mount_err(line, m, e)),
    }
}

impl RunMounts {
    /// Prepares `mounts` for a RUN on `rootfs` (the step's mounted layer).
    pub fn prepare(
        store: &Store,
        ctx: &BuildContext,
        rootfs: &Path,
        mounts: Vec<Resolved>,
        workdir: &str,
        line: usize,
    ) -> Result<RunMounts, BuildError> {
        let mut rm = RunMounts {
            specs: Vec::new(),
            stubs: Stubs::default(),
            dir: None,
            overlays: Vec::new(),
            _views: Vec::new(),
            _layers: Vec::new(),
            _caches: Vec::new(),
        };
        let mut mounts = mounts;
        mounts.sort_by_key(|r| {
            target_of(&r.mount, workdir)
                .split('/')
                .filter(|c| !c.is_empty())
                .count()
        });
        let mut targets: Vec<String> = Vec::new();
        for Resolved { mount: m, from } in mounts {
            let target = target_of(&m, workdir);
            let bind = |src: &Path, ro: bool| {
                json!({"destination": target, "type": "bind", "source": src,
                       "options": ["rbind", "rprivate", if ro { "ro" } else { "rw" }]})
            };
            let spec = match m.kind {
                MountType::Secret | MountType::Ssh => {
                    if m.required {
                        let what = if m.kind == MountType::Secret {
                            "secrets"
                        } else {
                            "an SSH agent"
                        };
                        return Err(mount_err(
                            line,
                            &m,
                            format!("required, but the classic builder API cannot pass {what} (id {:?})", m.id.as_deref().unwrap_or("")),
                        ));
                    }
                    continue;
                }
                MountType::Tmpfs => {
                    let mut opts = vec!["nosuid".to_string(), "nodev".to_string()];
                    if let Some(s) = m.size {
                        opts.push(format!("size={s}"));
                    }
                    json!({"destination": target, "type": "tmpfs", "source": "tmpfs", "options": opts})
                }
                MountType::Cache => {
                    let id = m.id.clone().unwrap_or_else(|| m.target.clone());
                    // One id twice in one RUN: the same directory (a second lock on it
                    // would wait for this very step).
                    if let Some((_, h)) = rm._caches.iter().find(|(i, _)| *i == id) {
                        bind(&h.path, m.readonly)
                    } else {
                        // The seed's rootfs, read-only, mounted only while the cache is made.
                        let seed_view = match &from {
                            Some(state) => Some(View::mount(store, state.top_chain().as_deref())?),
                            None => None,
                        };
                        let src = m.source.as_deref().unwrap_or("/");
                        let seed = match &seed_view {
                            Some(v) => {
                                let p = resolve(&v.rootfs, src, true)
                                    .map_err(|e| mount_err(line, &m, e))?;
                                if !p.is_dir() {
                                    let from = m.from.as_deref().unwrap_or("");
                                    return Err(mount_err(
                                        line,
                                        &m,
                                        format!("source {src:?} is not a directory in {from:?}"),
                                    ));
                                }
                                Some((v.rootfs.as_path(), src))
                            }
                            None => None,
                        };
                        let held = CacheMounts::new(store.root()).hold(
                            &id,
                            m.sharing.unwrap_or(Sharing::Shared),
                            m.mode.unwrap_or(0o755),
                            (m.uid.unwrap_or(0), m.gid.unwrap_or(0)),
                            seed,
                        )?;
                        drop(seed_view);
                        let s = bind(&held.path, m.readonly);
                        rm._caches.push((id, held));
                        s
                    }
                }
                MountType::Bind => match from {
                    None => {
                        let src = context_source(ctx, &m, line)?;
                        if m.readonly {
                            bind(&src, true)
                        } else {
                            let p = rm.scratch_copy(store, &src)?;
                            bind(&p, false)
                        }
                    }
                    Some(state) => {
                        let top = state.top_chain();
                        let root = if m.readonly {
                            let v = View::mount(store, top.as_deref())?;
                            let r = v.rootfs.clone();
                            rm._views.push(v);
                            r
                        } else {
                            let l = StepLayer::prepare(store, top.as_deref())?;
                            let r = l.rootfs.clone();
                            rm._layers.push(l);
                            r
                        };
                        let src = m.source.as_deref().unwrap_or("/");
                        let p = resolve(&root, src, true).map_err(|e| mount_err(line, &m, e))?;
                        if std::fs::symlink_metadata(&p).is_err() {
                            let from = m.from.as_deref().unwrap_or("");
                            return Err(mount_err(
                                line,
                                &m,
                                format!("source {src:?} not found in {from:?}"),
                            ));
                        }
                        bind(&p, m.readonly)
                    }
                },
            };
            // Mount points inside another mount are made there, not in the layer.
            let nested = targets
                .iter()
                .any(|t| t == "/" || target.starts_with(&format!("{t}/")) || *t == target);
            if !nested {
                rm.stubs
                    .add(rootfs, &target)
                    .map_err(|e| mount_err(line, &m, e))?;
            }
            targets.push(target.clone());
            rm.specs.push(spec);
        }
        Ok(rm)
    }

    /// A writable stand-in for a context path whose writes are thrown away: an overlay on a
    /// directory, a copy of a file.
    fn scratch_copy(&mut self, store: &Store, src: &Path) -> Result<PathBuf, BuildError> {
        let dir = match &self.dir {
            Some(d) => d.clone(),
            None => {
                let hex = &crate::containers::random_id()[..24];
                let d = store.root().join("builds").join(format!("mnt-{hex}"));
                std::fs::create_dir_all(&d).map_err(io_err("create", &d))?;
                self.dir = Some(d.clone());
                d
            }
        };
        let n = self.overlays.len() + self.specs.len();
        let base = dir.join(n.to_string());
        if !src.is_dir() {
            std::fs::create_dir_all(&base).map_err(io_err("create", &base))?;
            let f = base.join("file");
            std::fs::copy(src, &f).map_err(io_err("copy", src))?;
            return Ok(f);
        }
        let (upper, work, merged) = (base.join("upper"), base.join("work"), base.join("merged"));
        for d in [&upper, &work, &merged] {
            std::fs::create_dir_all(d).map_err(io_err("create", d))?;
        }
        let spec = skiff_store::MountSpec {
            typ: "overlay".into(),
            source: "overlay".into(),
            target_hint: String::new(),
            options: vec![
                format!("lowerdir={}", src.display()),
                format!("upperdir={}", upper.display()),
                format!("workdir={}", work.display()),
            ],
        };
        skiff_store::mount_to(&[spec], &merged).map_err(|e| store_e("mount rw bind", e))?;
        self.overlays.push(merged.clone());
        Ok(merged)
    }

    /// Takes the mount points the runtime created out of the step's upper dir
    /// ([`Stubs::remove`]).
    pub fn clean_layer(&self, upper: &Path) {
        self.stubs.remove(upper);
    }
}

impl Drop for RunMounts {
    fn drop(&mut self) {
        let mut stuck = false;
        for m in self.overlays.iter().rev() {
            if skiff_store::unmount(m).is_err() && skiff_store::unmount_lazy(m).is_err() {
                stuck = true;
            }
        }
        // Never remove through a mount that is still there (its lower dir is the context).
        if let (Some(d), false) = (&self.dir, stuck) {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}
