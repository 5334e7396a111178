//! Start, exit, stop, kill, wait, restart policies, pause, rename, remove, and the
//! reconciliation with running monitors when the daemon starts.
//!
//! Start: mount the writable layer, write config.json and shim.json, spawn `skiff-shim`
//! (which creates the container and reports the init's pid), connect attaches made before
//! start, then tell the monitor to start the process. A watcher task holds a `wait` request
//! on the monitor's socket; its answer (or the exit record, if the daemon was down) is the
//! exit. Restart policies follow moby's restart manager: 100 ms back-off doubling up to 1 min,
//! reset after 10 s of running; `stop`/`kill` cancel restarts.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use nix::sys::signal::Signal;
use serde_json::json;

use super::model::{rfc3339_nano, Status};
use super::service::{sys, Containers, ContainersError, Entry, PendingAttach, Result};
use super::shim;
use skiff_shim::proto::{ExitRecord, LogOptions, ShimConfig};

/// The monitor's exit record when the monitor is gone and left none (host reboot, or it was
/// killed): Docker reports 255.
fn lost_monitor() -> ExitRecord {
    ExitRecord {
        exit_code: 255,
        signal: None,
        oom_killed: false,
        finished_at: rfc3339_nano(Utc::now()),
    }
}

fn parse_signal(s: &str) -> Result<Signal> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n)
            .map_err(|_| ContainersError::Invalid(format!("Invalid signal: {s}")));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<Signal>()
        .map_err(|_| ContainersError::Invalid(format!("Invalid signal: {s}")))
}

impl Containers {
    /// `POST /containers/{id}/start`.
    pub async fn start(self: &Arc<Self>, what: &str) -> Result<()> {
        let e = self.get(what)?;
        let _op = e.op.lock().await;
        self.start_locked(&e).await
    }

    async fn start_locked(self: &Arc<Self>, e: &Arc<Entry>) -> Result<()> {
        let c = e.snapshot();
        match c.state.status {
            Status::Running if c.state.paused => {
                return Err(ContainersError::Conflict(
                    "cannot start a paused container, try unpause instead".into(),
                ))
            }
            Status::Running => {
                return Err(ContainersError::NotModified(
                    "container already started".into(),
                ))
            }
            Status::Removing | Status::Dead => {
                return Err(ContainersError::Conflict(format!(
                    "container {} is marked for removal and cannot be started",
                    c.id
                )))
            }
            _ => {}
        }
        let t0 = std::time::Instant::now();
        let ms = |t: std::time::Instant| t.elapsed().as_secs_f64() * 1e3;
        let sock = self.socket(&c.id);
        let this = self.clone();
        let dir = e.dir.clone();
        let prep = {
            let c = c.clone();
            let sock = sock.clone();
            tokio::task::spawn_blocking(move || this.prepare_start(&dir, &c, &sock))
                .await
                .map_err(|j| ContainersError::System(format!("start: {j}")))?
        };
        let (sandbox, endpoints) = match prep {
            Ok(x) => x,
            Err(err) => {
                self.start_failed(e, &err).await;
                return Err(err);
            }
        };
        let prepared = ms(t0);
        let log = e.dir.join("shim.log");
        let pid = match shim::spawn(&self.defaults.shim, &e.dir, &log).await {
            Ok(p) => p,
            Err(err) => {
                let err = start_error(err);
                self.start_failed(e, &err).await;
                return Err(err);
            }
        };
        // Attaches made before start get every byte: they connect before the process runs.
        let pending: Vec<_> =
            std::mem::take(&mut *e.pending_attach.lock().unwrap_or_else(|p| p.into_inner()));
        for tx in pending {
            let (atx, arx) = tokio::sync::oneshot::channel();
            if tx
                .send(PendingAttach {
                    socket: sock.clone(),
                    attached: atx,
                })
                .is_ok()
            {
                let _ = tokio::time::timeout(Duration::from_secs(5), arx).await;
            }
        }
        let spawned = ms(t0);
        if let Err(err) = shim::call(&sock, &json!({"op": "start"})).await {
            let err = start_error(err);
            self.start_failed(e, &err).await;
            return Err(err);
        }
        e.save(|c| {
            c.state.status = Status::Running;
            c.state.running = true;
            c.state.paused = false;
            c.state.restarting = false;
            c.state.pid = pid;
            c.state.error.clear();
            c.state.exit_code = 0;
            c.state.oom_killed = false;
            c.state.started_at = rfc3339_nano(Utc::now());
            c.state.finished_at = super::model::ZERO_TIME.into();
            c.manually_stopped = false;
            c.has_been_started = true;
            for mp in &mut c.mount_points {
                mp.copy_up = false;
            }
            for (name, got) in &endpoints {
                c.networks.insert(name.clone(), got.clone());
            }
            c.sandbox_key = sandbox
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
        })?;
        tracing::debug!(
            id = %c.id,
            prepared_ms = prepared,
            monitor_ready_ms = spawned,
            started_ms = ms(t0),
            "start: timings"
        );
        e.life.send_modify(|l| l.running = true);
        self.emit("start", &e.snapshot(), &[]);
        self.watch(e.clone(), sock);
        self.start_health(e);
        Ok(())
    }

    /// Mounts the rootfs and writes the bundle and the monitor's configuration.
    fn prepare_start(
        &self,
        dir: &std::path::Path,
        c: &super::model::Container,
        sock: &std::path::Path,
    ) -> Result<(
        Option<std::path::PathBuf>,
        std::collections::BTreeMap<String, super::model::NetAttach>,
    )> {
        let rootfs = dir.join("rootfs");
        if !skiff_store::is_mounted(&rootfs) {
            let mounts = self
                .store
                .snapshots()
                .mounts(&c.id)
                .map_err(|e| ContainersError::System(format!("rootfs of {}: {e}", c.id)))?;
            skiff_store::mount_to(&mounts, &rootfs)
                .map_err(|e| ContainersError::System(format!("mount rootfs of {}: {e}", c.id)))?;
        }
        let res = (|| {
            // Volumes: devices mounted for their first user; new ones filled from the image.
            for mp in c.mount_points.iter().filter(|m| m.kind == "volume") {
                self.volumes
                    .mount_for(&mp.name, &c.id)
                    .map_err(|e| ContainersError::System(e.to_string()))?;
                if mp.copy_up {
                    crate::volumes::copy_up(
                        &rootfs,
                        &mp.destination,
                        std::path::Path::new(&mp.source),
                    )
                    .map_err(|e| {
                        ContainersError::System(format!(
                            "copy image content of {} into volume {}: {e}",
                            mp.destination, mp.name
                        ))
                    })?;
                }
            }
            // Networks up before the process exists (resolv.conf and hosts rewritten with
            // the addresses); without networks, the files written at create stay.
            let (sandbox, endpoints) = self.net_up(dir, c)?;
            let mut spec = super::oci::build(c, dir, &rootfs)?;
            if let Some(p) = &sandbox {
                super::spec::join_netns(&mut spec, p);
            }
            let cfg = dir.join("config.json");
            std::fs::write(&cfg, serde_json::to_vec(&spec).expect("spec serializes"))
                .map_err(sys(cfg.display()))?;
            // A stale exit record and socket are the monitor's to remove (it does, first).
            let shim_cfg = ShimConfig {
                id: c.id.clone(),
                runtime_root: self.runtime_root(),
                bundle: dir.to_path_buf(),
                stdin: c.config.open_stdin,
                stdin_once: c.config.stdin_once,
                tty: c.config.tty,
                log: LogOptions {
                    driver: c.log_driver.clone(),
                    opts: c.log_opts.clone(),
                    path: c.log_path.clone().into(),
                },
                exit_file: dir.join("exit.json"),
                socket: sock.to_path_buf(),
                start_on_request: true,
            };
            let p = dir.join("shim.json");
            std::fs::write(
                &p,
                serde_json::to_vec_pretty(&shim_cfg).expect("serializes"),
            )
            .map_err(sys(p.display()))?;
            Ok((sandbox, endpoints))
        })();
        if res.is_err() {
            let _ = skiff_store::unmount_lazy(&rootfs);
            self.release_volumes(c);
            self.net_down(&c.id);
        }
        res
    }

    async fn start_failed(self: &Arc<Self>, e: &Arc<Entry>, err: &ContainersError) {
        let code = exit_code_for(&err.to_string());
        let rootfs = e.dir.join("rootfs");
        let _ = tokio::task::spawn_blocking(move || skiff_store::unmount_lazy(&rootfs)).await;
        let (this, id) = (self.clone(), e.id.clone());
        let _ = tokio::task::spawn_blocking(move || this.net_down(&id)).await;
        let _ = e.save(super::network::clear_run);
        let _ = e.save(|c| {
            c.state.error = err.to_string();
            c.state.exit_code = code;
            if c.state.status != Status::Created {
                c.state.status = Status::Exited;
            }
            c.state.running = false;
            c.state.restarting = false;
        });
        e.life.send_modify(|l| {
            l.running = false;
            l.exit_code = code;
            l.error = Some(err.to_string());
        });
        // As dockerd: an auto-remove container whose start failed is removed.
        if e.snapshot().host_config.auto_remove {
            let this = self.clone();
            let id = e.id.clone();
            tokio::spawn(async move {
                let _ = this.remove(&id, true).await;
            });
        }
    }

    /// Waits (in a task) for the monitor to report the exit.
    pub(crate) fn watch(self: &Arc<Self>, e: Arc<Entry>, sock: std::path::PathBuf) {
        let this = self.clone();
        tokio::spawn(async move {
            let rec = match shim::call(&sock, &json!({"op": "wait"})).await {
                Ok(v) => serde_json::from_value::<ExitRecord>(v).ok(),
                Err(err) => {
                    tracing::warn!(container = %e.id, error = %err, "lost the monitor");
                    None
                }
            };
            let rec = match rec {
                Some(r) => r,
                None => read_exit_file(&e.dir).unwrap_or_else(lost_monitor),
            };
            this.exited(&e, rec).await;
        });
    }

    /// The container's init has exited: record it, unmount, then restart or auto-remove.
    /// Unmounts the option volumes a stopped container held (the last user's unmount).
    fn release_volumes(&self, c: &super::model::Container) {
        for mp in c.mount_points.iter().filter(|m| m.kind == "volume") {
            self.volumes.unmount_for(&mp.name, &c.id);
        }
    }

    pub(crate) async fn exited(self: &Arc<Self>, e: &Arc<Entry>, rec: ExitRecord) {
        let rootfs = e.dir.join("rootfs");
        let _ = tokio::task::spawn_blocking(move || skiff_store::unmount_lazy(&rootfs)).await;
        self.release_volumes(&e.snapshot());
        if self.net().is_some() && !e.snapshot().sandbox_key.is_empty() {
            self.net_down_later(&e.id);
        }
        let code = i64::from(rec.exit_code);
        let finished = if rec.finished_at.is_empty() {
            rfc3339_nano(Utc::now())
        } else {
            rec.finished_at.clone()
        };
        let _ = e.save(|c| {
            super::network::clear_run(c);
            c.state.status = Status::Exited;
            c.state.running = false;
            c.state.paused = false;
            c.state.pid = 0;
            c.state.exit_code = code;
            c.state.oom_killed = rec.oom_killed;
            c.state.finished_at = finished.clone();
        });
        let c = e.snapshot();
        if rec.oom_killed {
            self.emit("oom", &c, &[]);
        }
        self.emit("die", &c, &[("exitCode", code.to_string())]);
        e.life.send_modify(|l| {
            l.running = false;
            l.exits += 1;
            l.exit_code = code;
            l.error = None;
        });
        if let Some(delay) = self.restart_delay(e) {
            let _ = e.save(|c| {
                c.state.status = Status::Restarting;
                c.state.restarting = true;
            });
            let this = self.clone();
            let e = e.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _op = e.op.lock().await;
                let c = e.snapshot();
                if !c.state.restarting || c.manually_stopped {
                    return;
                }
                let _ = e.save(|c| c.restart_count += 1);
                if let Err(err) = this.start_locked(&e).await {
                    tracing::warn!(container = %e.id, error = %err, "restart failed");
                    let _ = e.save(|c| {
                        c.state.restarting = false;
                        c.state.status = Status::Exited;
                    });
                }
            });
        } else if c.host_config.auto_remove {
            let this = self.clone();
            let id = e.id.clone();
            tokio::spawn(async move {
                // `--rm` takes the anonymous volumes along, as Docker.
                if let Err(err) = this.remove_with_volumes(&id, true, true).await {
                    tracing::warn!(container = %id, error = %err, "auto-remove failed");
                }
            });
        }
    }

    /// The restart manager's decision, as moby's.
    fn restart_delay(&self, e: &Entry) -> Option<Duration> {
        let c = e.snapshot();
        if c.manually_stopped {
            return None;
        }
        let p = &c.host_config.restart_policy;
        let restart = match p.name.as_str() {
            "always" | "unless-stopped" => true,
            "on-failure" => {
                c.state.exit_code != 0
                    && (p.maximum_retry_count == 0 || c.restart_count < p.maximum_retry_count)
            }
            _ => false,
        };
        if !restart {
            return None;
        }
        let ran = chrono::DateTime::parse_from_rfc3339(&c.state.started_at)
            .ok()
            .map(|s| Utc::now().signed_duration_since(s).num_milliseconds())
            .unwrap_or(0);
        if ran >= 10_000 {
            return Some(Duration::from_millis(100));
        }
        let n = c.restart_count.clamp(0, 10) as u32;
        Some(Duration::from_millis(100 * 2u64.pow(n)).min(Duration::from_secs(60)))
    }

    /// Sends a signal to the init (`kill`).
    pub async fn kill(self: &Arc<Self>, what: &str, signal: Option<&str>) -> Result<()> {
        let e = self.get(what)?;
        let sig = parse_signal(signal.filter(|s| !s.is_empty()).unwrap_or("KILL"))?;
        let c = e.snapshot();
        if !c.state.running {
            return Err(ContainersError::Conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        if matches!(sig, Signal::SIGKILL | Signal::SIGTERM | Signal::SIGINT) {
            e.save(|c| {
                c.manually_stopped = true;
                c.state.restarting = false;
            })?;
        }
        self.signal(&c.id, sig, c.state.paused).await?;
        self.emit(
            "kill",
            &e.snapshot(),
            &[("signal", (sig as i32).to_string())],
        );
        Ok(())
    }

    async fn signal(&self, id: &str, sig: Signal, thaw: bool) -> Result<()> {
        let rt = self.runtime();
        let id = id.to_string();
        tokio::task::spawn_blocking(move || {
            let r = rt.kill(&id, sig, false);
            if thaw {
                let _ = rt.resume(&id);
            }
            r
        })
        .await
        .map_err(|j| ContainersError::System(j.to_string()))?
        .map_err(|err| ContainersError::System(format!("cannot kill container {}: {err}", "")))
    }

    /// `stop`: the stop signal, then SIGKILL after `timeout` seconds (default: the container's
    /// StopTimeout, else 10; negative waits forever).
    pub async fn stop(
        self: &Arc<Self>,
        what: &str,
        signal: Option<&str>,
        timeout: Option<i64>,
    ) -> Result<()> {
        let e = self.get(what)?;
        let _op = e.op.lock().await;
        let c = e.snapshot();
        if c.state.restarting {
            e.save(|c| {
                c.manually_stopped = true;
                c.state.restarting = false;
                c.state.status = Status::Exited;
            })?;
            return Ok(());
        }
        if !c.state.running {
            return Err(ContainersError::NotModified(
                "container already stopped".into(),
            ));
        }
        e.save(|c| c.manually_stopped = true)?;
        let sig_name = signal
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .or(c.config.stop_signal.clone())
            .unwrap_or_else(|| "SIGTERM".into());
        let sig = parse_signal(&sig_name)?;
        let timeout = timeout.or(c.config.stop_timeout).unwrap_or(10);
        let mut life = e.life.subscribe();
        let exits = life.borrow().exits;
        let _ = self.signal(&c.id, sig, c.state.paused).await;
        self.emit("kill", &c, &[("signal", (sig as i32).to_string())]);
        let gone = |l: &super::service::Life| l.exits > exits || !l.running;
        let waited = if timeout < 0 {
            life.wait_for(gone).await.is_ok()
        } else {
            tokio::time::timeout(Duration::from_secs(timeout as u64), life.wait_for(gone))
                .await
                .is_ok()
        };
        if !waited {
            let _ = self.signal(&c.id, Signal::SIGKILL, false).await;
            self.emit("kill", &c, &[("signal", "9".into())]);
            let _ = tokio::time::timeout(Duration::from_secs(30), life.wait_for(gone)).await;
        }
        self.emit("stop", &e.snapshot(), &[]);
        Ok(())
    }

    /// `restart`: stop (if running), then start.
    pub async fn restart(
        self: &Arc<Self>,
        what: &str,
        signal: Option<&str>,
        timeout: Option<i64>,
    ) -> Result<()> {
        match self.stop(what, signal, timeout).await {
            Ok(()) | Err(ContainersError::NotModified(_)) => {}
            Err(e) => return Err(e),
        }
        let e = self.get(what)?;
        let _op = e.op.lock().await;
        match self.start_locked(&e).await {
            Ok(()) | Err(ContainersError::NotModified(_)) => {}
            Err(err) => return Err(err),
        }
        self.emit("restart", &e.snapshot(), &[]);
        Ok(())
    }

    /// `wait` with Docker's conditions: `not-running` (default), `next-exit`, `removed`.
    /// Subscribes now (so an exit right after this call is not missed); the returned future
    /// gives the exit code and the start error, if any.
    pub fn waiter(
        &self,
        what: &str,
        condition: &str,
    ) -> Result<impl std::future::Future<Output = (i64, Option<String>)> + Send + 'static> {
        match condition {
            "" | "not-running" | "next-exit" | "removed" => {}
            other => {
                return Err(ContainersError::Invalid(format!(
                    "invalid condition: \"{other}\""
                )))
            }
        }
        let e = self.get(what)?;
        let mut life = e.life.subscribe();
        drop(e);
        let now = life.borrow().clone();
        let cond = condition.to_string();
        Ok(async move {
            let done = |l: &super::service::Life| match cond.as_str() {
                "removed" => l.removed,
                "next-exit" => {
                    l.exits > now.exits || l.removed || (l.error.is_some() && !l.running)
                }
                _ => !l.running || l.removed,
            };
            let got = life.wait_for(done).await.map(|l| l.clone()).ok();
            // Err: the entry is gone (removed); the last value says how it ended.
            let l = got.unwrap_or_else(|| life.borrow().clone());
            (l.exit_code, l.error)
        })
    }

    /// `pause` / `unpause` (the freezer).
    pub async fn pause(self: &Arc<Self>, what: &str, pause: bool) -> Result<()> {
        let e = self.get(what)?;
        let _op = e.op.lock().await;
        let c = e.snapshot();
        if !c.state.running {
            return Err(ContainersError::Conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        if pause && c.state.paused {
            return Err(ContainersError::Conflict(format!(
                "Container {} is already paused",
                c.id
            )));
        }
        if !pause && !c.state.paused {
            return Err(ContainersError::Conflict(format!(
                "Container {} is not paused",
                c.id
            )));
        }
        let rt = self.runtime();
        let id = c.id.clone();
        tokio::task::spawn_blocking(move || if pause { rt.pause(&id) } else { rt.resume(&id) })
            .await
            .map_err(|j| ContainersError::System(j.to_string()))?
            .map_err(|err| ContainersError::System(err.to_string()))?;
        e.save(|c| {
            c.state.paused = pause;
            c.state.status = if pause {
                Status::Paused
            } else {
                Status::Running
            };
        })?;
        self.emit(if pause { "pause" } else { "unpause" }, &e.snapshot(), &[]);
        Ok(())
    }

    /// `rename`.
    pub fn rename(&self, what: &str, new: &str) -> Result<()> {
        let e = self.get(what)?;
        if !super::store::valid_name(new) {
            return Err(ContainersError::Invalid(format!(
                "Invalid container name ({new}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        let new = new.trim_start_matches('/').to_string();
        let old = e.snapshot().short_name().to_string();
        if old == new {
            return Err(ContainersError::Invalid(
                "Renaming a container with the same name as its current name".into(),
            ));
        }
        {
            let mut ix = self.lock_index();
            if let Some(other) = ix.name_taken(&new) {
                return Err(ContainersError::Conflict(format!(
                    "Conflict. The container name \"/{new}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
                )));
            }
            ix.rename(&e.id, &old, &new);
        }
        if let Err(err) = e.save(|c| c.name = format!("/{new}")) {
            self.lock_index().rename(&e.id, &new, &old);
            return Err(err);
        }
        self.emit("rename", &e.snapshot(), &[("oldName", format!("/{old}"))]);
        Ok(())
    }

    /// `rm`: refuses a running container unless `force` (then kills it first).
    pub async fn remove(self: &Arc<Self>, what: &str, force: bool) -> Result<()> {
        self.remove_with_volumes(what, force, false).await
    }

    /// [`Containers::remove`]; with `volumes` (`rm -v`), its anonymous volumes too (named
    /// ones stay).
    pub async fn remove_with_volumes(
        self: &Arc<Self>,
        what: &str,
        force: bool,
        volumes: bool,
    ) -> Result<()> {
        let e = self.get(what)?;
        let _op = e.op.lock().await;
        let c = e.snapshot();
        if c.state.status == Status::Removing {
            return Err(ContainersError::Conflict(format!(
                "removal of container {} is already in progress",
                c.id
            )));
        }
        if c.state.running || c.state.restarting {
            if !force {
                let what = if c.state.paused {
                    "paused"
                } else if c.state.restarting {
                    "restarting"
                } else {
                    "running"
                };
                return Err(ContainersError::Conflict(format!(
                    "cannot remove container \"{}\": container is {what}: stop the container before removing or force remove",
                    c.name
                )));
            }
            e.save(|c| {
                c.manually_stopped = true;
                c.state.restarting = false;
            })?;
            if c.state.running {
                let mut life = e.life.subscribe();
                let _ = self.signal(&c.id, Signal::SIGKILL, c.state.paused).await;
                let _ =
                    tokio::time::timeout(Duration::from_secs(30), life.wait_for(|l| !l.running))
                        .await;
            }
        }
        e.save(|c| c.state.status = Status::Removing)?;
        let dir = e.dir.clone();
        let store = self.store.clone();
        let id = c.id.clone();
        let runtime = self.runtime();
        let sock = self.socket(&id);
        tokio::task::spawn_blocking(move || -> Result<()> {
            let _ = runtime.delete(&id, true);
            let _ = std::fs::remove_file(&sock);
            let rootfs = dir.join("rootfs");
            let _ = skiff_store::unmount_lazy(&rootfs);
            match store.snapshots().volatile().remove(&id) {
                Ok(_) => {}
                Err(skiff_store::SnapshotError::NotFound(_)) => {}
                Err(err) => {
                    return Err(ContainersError::System(format!(
                        "remove rootfs of {id}: {err}"
                    )))
                }
            }
            // Renamed away at once, deleted in the background (unlinks wait on the journal);
            // a crash leaves a `.trash-*` directory that the next start removes.
            let trash = dir.with_file_name(format!(".trash-{id}"));
            std::fs::rename(&dir, &trash).map_err(sys(dir.display()))?;
            std::thread::spawn(move || {
                let _ = std::fs::remove_dir_all(&trash);
            });
            Ok(())
        })
        .await
        .map_err(|j| ContainersError::System(j.to_string()))??;
        self.lock_index().remove(&c.id, c.short_name());
        self.lock_entries().remove(&c.id);
        self.forget_execs(&c.id);
        self.release_volumes(&c);
        if self.net().is_some() && !c.sandbox_key.is_empty() {
            self.net_down_later(&c.id);
        }
        for mp in c.mount_points.iter().filter(|m| m.kind == "volume") {
            self.volumes.remove_user(&mp.name, &c.id);
            if volumes && mp.anonymous {
                if let Err(err) = self.volumes.remove(&mp.name, true) {
                    tracing::warn!(volume = %mp.name, error = %err, "remove anonymous volume");
                }
            }
        }
        self.emit("destroy", &c, &[]);
        e.life.send_modify(|l| {
            l.removed = true;
            l.running = false;
        });
        Ok(())
    }

    /// On daemon start: reattach to every monitor still running; record exits that happened
    /// while the daemon was away; restart what the policies say.
    pub async fn reconcile(self: &Arc<Self>) {
        for e in self.all() {
            let c = e.snapshot();
            if !(c.state.running || c.state.restarting) {
                if c.host_config.restart_policy.name == "always"
                    || (c.host_config.restart_policy.name == "unless-stopped"
                        && !c.manually_stopped)
                {
                    if let Err(err) = self.start(&c.id).await {
                        tracing::warn!(container = %c.id, error = %err, "restart on daemon start failed");
                    }
                }
                continue;
            }
            let sock = self.socket(&c.id);
            if shim::alive(&sock).await {
                tracing::info!(container = %c.id, "reattached to running container");
                self.watch(e.clone(), sock);
                continue;
            }
            let rec = read_exit_file(&e.dir).unwrap_or_else(lost_monitor);
            tracing::info!(container = %c.id, code = rec.exit_code, "container exited while the daemon was away");
            self.exited(&e, rec).await;
        }
    }
}

fn read_exit_file(dir: &std::path::Path) -> Option<ExitRecord> {
    let b = std::fs::read(dir.join("exit.json")).ok()?;
    serde_json::from_slice(&b).ok()
}

/// A start failure as the error the CLI maps to 126/127 (its messages are matched by text).
fn start_error(e: shim::ShimError) -> ContainersError {
    ContainersError::System(format!(
        "failed to create task for container: OCI runtime create failed: {e}"
    ))
}

/// The exit code Docker records for a start failure.
pub(crate) fn exit_code_for(msg: &str) -> i64 {
    if msg.contains("executable file not found") || msg.contains("no such file or directory") {
        127
    } else if msg.contains("permission denied") {
        126
    } else {
        128
    }
}

/// The API's `State.Status`-derived words of `ps` (`Up 3 seconds`, `Exited (0) 2 minutes ago`).
pub fn status_words(c: &super::model::Container) -> String {
    let since = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .ok()
            .map(|s| {
                crate::human::duration(
                    Utc::now()
                        .signed_duration_since(s)
                        .to_std()
                        .unwrap_or_default(),
                )
            })
            .unwrap_or_default()
    };
    let s = &c.state;
    if s.restarting {
        return format!("Restarting ({}) {} ago", s.exit_code, since(&s.finished_at));
    }
    if s.running {
        let health = match s.health.as_ref().map(|h| h.status.as_str()) {
            Some("starting") => " (health: starting)",
            Some("healthy") => " (healthy)",
            Some("unhealthy") => " (unhealthy)",
            _ => "",
        };
        let paused = if s.paused { " (Paused)" } else { "" };
        return format!("Up {}{paused}{health}", since(&s.started_at));
    }
    match s.status {
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
        Status::Created => "Created".into(),
        _ if s.finished_at == super::model::ZERO_TIME => "Created".into(),
        _ => format!("Exited ({}) {} ago", s.exit_code, since(&s.finished_at)),
    }
}

impl Containers {
    /// `POST /containers/{id}/resize`: the tty's window size.
    pub async fn resize(&self, what: &str, h: u32, w: u32) -> Result<()> {
        let e = self.get(what)?;
        let c = e.snapshot();
        if !c.state.running {
            return Err(ContainersError::Conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        shim::call(
            &self.socket(&c.id),
            &json!({"op": "resize", "height": h, "width": w}),
        )
        .await
        .map(drop)
        .map_err(|err| ContainersError::Conflict(err.to_string()))
    }

    /// Records an attach in the event stream.
    pub fn emit_attach(&self, c: &super::model::Container) {
        self.emit("attach", c, &[]);
    }

    /// The pids of a running container (for `top`).
    pub fn pids(&self, what: &str) -> Result<Vec<i32>> {
        let e = self.get(what)?;
        let c = e.snapshot();
        if !c.state.running {
            return Err(ContainersError::Conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        self.runtime()
            .pids(&c.id)
            .map_err(|err| ContainersError::System(err.to_string()))
    }

    /// cgroup statistics of a running container (`None` when it is not running).
    pub fn cgroup_stats(
        &self,
        what: &str,
    ) -> Result<(super::model::Container, Option<skiff_cgroups::Stats>)> {
        let e = self.get(what)?;
        let c = e.snapshot();
        if !c.state.running {
            return Ok((c, None));
        }
        let s = self.runtime().stats(&c.id).ok();
        Ok((c, s))
    }
}
