//! The container service: records, names, create, list, inspect; the lifecycle (start, stop,
//! exits, restarts, remove) is in [`super::lifecycle`].
//!
//! Concurrency: the index sits behind one short-held mutex; each container has an async
//! operation lock (start/stop/remove/… of one container are serialised, different containers
//! never wait on each other) and a `watch` channel that publishes its life (exits, removal)
//! to waiters. Records are written through [`super::store::save`] on every state change.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::Utc;
use serde_json::Value;
use tokio::sync::watch;

use super::events::Events;
use super::model::{Config, Container, HostConfig, State, Status};
use super::store::{self, Index, LookupError};
use crate::images::{ImageService, ImagesError};

/// Errors of container operations, with the kind that fixes their HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum ContainersError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The operation had nothing to do (HTTP 304).
    #[error("{0}")]
    NotModified(String),
    #[error("{0}")]
    NotImplemented(String),
    #[error("{0}")]
    Image(#[from] ImagesError),
    #[error("{0}")]
    System(String),
}

impl From<LookupError> for ContainersError {
    fn from(e: LookupError) -> Self {
        match e {
            LookupError::NotFound(_) => ContainersError::NotFound(e.to_string()),
            LookupError::Ambiguous(_) => ContainersError::Invalid(e.to_string()),
        }
    }
}

pub type Result<T> = std::result::Result<T, ContainersError>;

pub(crate) fn sys(ctx: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> ContainersError {
    move |e| ContainersError::System(format!("{ctx}: {e}"))
}

/// What waiters see of a container's life.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Life {
    pub running: bool,
    /// Exits so far (in this daemon's life).
    pub exits: u64,
    pub exit_code: i64,
    pub error: Option<String>,
    pub removed: bool,
}

/// One container in memory.
pub struct Entry {
    pub id: String,
    pub dir: PathBuf,
    pub rec: Mutex<Container>,
    pub life: watch::Sender<Life>,
    /// Serialises lifecycle operations on this container.
    pub op: tokio::sync::Mutex<()>,
    /// Attach requests made before start: they are connected before the process runs.
    pub pending_attach: Mutex<Vec<tokio::sync::oneshot::Sender<PendingAttach>>>,
    /// Exec instances of this container.
    pub execs: Mutex<Vec<String>>,
}

/// Handed to an early attach when the monitor is up: connect, then acknowledge.
pub struct PendingAttach {
    pub socket: PathBuf,
    pub attached: tokio::sync::oneshot::Sender<()>,
}

impl Entry {
    pub fn snapshot(&self) -> Container {
        self.rec.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
    pub fn update<R>(&self, f: impl FnOnce(&mut Container) -> R) -> R {
        f(&mut self.rec.lock().unwrap_or_else(|p| p.into_inner()))
    }
    /// Updates and persists the record.
    pub fn save(&self, f: impl FnOnce(&mut Container)) -> Result<()> {
        let c = {
            let mut g = self.rec.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut g);
            g.clone()
        };
        store::save(&self.dir, &c).map_err(sys(format!("save container {}", self.id)))
    }
}

/// Settings from daemon.json that shape containers.
#[derive(Debug, Clone)]
pub struct Defaults {
    pub log_driver: String,
    pub log_opts: BTreeMap<String, String>,
    /// Where the runtime state and monitor sockets live (`exec-root`, default /run/skiff).
    pub exec_root: PathBuf,
    pub shim: PathBuf,
}

/// The container service of one data root.
pub struct Containers {
    pub root: PathBuf,
    pub defaults: Defaults,
    pub events: Events,
    pub(crate) index: Mutex<Index>,
    pub(crate) entries: Mutex<HashMap<String, Arc<Entry>>>,
    pub(crate) store: skiff_store::Store,
    pub(crate) execs: super::exec::Execs,
    /// The volume service (volumes' users are these containers).
    pub volumes: Arc<crate::volumes::Volumes>,
    /// Networking, when the daemon turned it on ([`Containers::set_net`]).
    pub(crate) net: std::sync::OnceLock<super::network::Net>,
}

/// 64 random hex digits.
pub fn new_id() -> String {
    super::random_id()
}

impl Containers {
    /// Loads every container record under `<data-root>/containers`. Directories without a
    /// record (a create that crashed) are removed with their snapshot. Call
    /// [`Containers::reconcile`] next, inside the runtime, to reattach to running monitors.
    pub fn open(store: skiff_store::Store, defaults: Defaults) -> Result<Arc<Containers>> {
        let root = store.root().join("containers");
        std::fs::create_dir_all(&root).map_err(sys(root.display()))?;
        std::fs::create_dir_all(defaults.exec_root.join("shims"))
            .map_err(sys(defaults.exec_root.display()))?;
        let volumes = crate::volumes::Volumes::open(&store.root().join("volumes"))
            .map_err(|e| ContainersError::System(e.to_string()))?;
        let mut index = Index::default();
        let mut entries = HashMap::new();
        for de in std::fs::read_dir(&root).map_err(sys(root.display()))? {
            let de = de.map_err(sys(root.display()))?;
            let dir = de.path();
            let Some(name) = de.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if !dir.is_dir() {
                continue;
            }
            if name.starts_with(".trash-") {
                let _ = std::fs::remove_dir_all(&dir);
                continue;
            }
            match store::load(&dir) {
                Ok(c) if c.id == name => {
                    for mp in c.mount_points.iter().filter(|m| m.kind == "volume") {
                        volumes.add_user(&mp.name, &c.id);
                    }
                    index.insert(&c.id, c.short_name());
                    entries.insert(c.id.clone(), Arc::new(Self::entry(dir, c)));
                }
                Ok(_) | Err(_) if !store::record_path(&dir).exists() => {
                    tracing::warn!(dir = %dir.display(), "removing a container that was never fully created");
                    let _ = skiff_store::unmount_lazy(&dir.join("rootfs"));
                    let _ = store.snapshots().remove(&name);
                    let _ = std::fs::remove_dir_all(&dir);
                }
                Ok(_) => {
                    tracing::error!(dir = %dir.display(), "container record names another ID; left alone")
                }
                Err(e) => tracing::error!(error = %e, "unreadable container record; left alone"),
            }
        }
        Ok(Arc::new(Containers {
            root,
            defaults,
            events: Events::default(),
            index: Mutex::new(index),
            entries: Mutex::new(entries),
            store,
            execs: Default::default(),
            volumes: Arc::new(volumes),
            net: std::sync::OnceLock::new(),
        }))
    }

    fn entry(dir: PathBuf, c: Container) -> Entry {
        let life = Life {
            running: c.state.running,
            exit_code: c.state.exit_code,
            ..Default::default()
        };
        Entry {
            id: c.id.clone(),
            dir,
            rec: Mutex::new(c),
            life: watch::channel(life).0,
            op: tokio::sync::Mutex::new(()),
            pending_attach: Mutex::new(Vec::new()),
            execs: Mutex::new(Vec::new()),
        }
    }

    /// The monitor socket of a container: 24 hex digits of its ID (unique enough; unix
    /// socket paths are limited to 107 bytes, so long exec roots still fit).
    pub fn socket(&self, id: &str) -> PathBuf {
        let short = &id[..id.len().min(24)];
        self.defaults
            .exec_root
            .join("shims")
            .join(format!("{short}.sock"))
    }

    /// The runtime state root of the engine's containers.
    pub fn runtime_root(&self) -> PathBuf {
        self.defaults.exec_root.join("runtime")
    }

    pub fn runtime(&self) -> skiff_runtime::Runtime {
        skiff_runtime::Runtime::new(self.runtime_root())
    }

    /// Finds a container by ID, name or unique ID prefix.
    pub fn get(&self, what: &str) -> Result<Arc<Entry>> {
        let id = self.lock_index().find(what)?;
        self.lock_entries()
            .get(&id)
            .cloned()
            .ok_or_else(|| ContainersError::NotFound(format!("No such container: {what}")))
    }

    pub(crate) fn lock_index(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }
    pub(crate) fn lock_entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Entry>>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every container (unordered).
    pub fn all(&self) -> Vec<Arc<Entry>> {
        self.lock_entries().values().cloned().collect()
    }

    /// Whether any container uses the image ID (for `rmi`).
    pub fn image_in_use(&self, image_id: &str) -> bool {
        self.all().iter().any(|e| e.update(|c| c.image == image_id))
    }

    pub(crate) fn emit(&self, action: &str, c: &Container, extra: &[(&str, String)]) {
        let mut attrs = BTreeMap::new();
        attrs.insert("image".to_string(), c.config.image.clone());
        attrs.insert("name".to_string(), c.short_name().to_string());
        if let Some(labels) = &c.config.labels {
            for (k, v) in labels {
                attrs.insert(k.clone(), v.clone());
            }
        }
        for (k, v) in extra {
            attrs.insert(k.to_string(), v.clone());
        }
        self.events.emit("container", action, &c.id, attrs);
    }

    /// `POST /containers/create`.
    pub fn create(
        &self,
        images: &ImageService,
        name: Option<&str>,
        config: Config,
        host: HostConfig,
    ) -> Result<(String, Vec<String>)> {
        self.create_with_networks(images, name, config, host, None)
    }

    /// [`Containers::create`] with the API's `NetworkingConfig.EndpointsConfig`.
    pub fn create_with_networks(
        &self,
        images: &ImageService,
        name: Option<&str>,
        mut config: Config,
        host: HostConfig,
        endpoints: Option<&Value>,
    ) -> Result<(String, Vec<String>)> {
        super::validate::host_config(&host)?;
        let networks = self.requested_networks(&host, endpoints, config.mac_address.as_deref())?;
        if config.image.is_empty() {
            return Err(ContainersError::Invalid(
                "no image specified (Config.Image is empty)".into(),
            ));
        }
        let img = images.resolve(&config.image)?;
        let id = new_id();
        let given = match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                if !store::valid_name(n) {
                    return Err(ContainersError::Invalid(format!(
                        "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                    )));
                }
                Some(n.trim_start_matches('/').to_string())
            }
            None => None,
        };
        super::merge::image_config(&mut config, img.config.config().as_ref());
        let image_health = serde_json::from_slice::<Value>(&img.config_bytes)
            .ok()
            .and_then(|v| serde_json::from_value(v["config"]["Healthcheck"].clone()).ok());
        config.healthcheck =
            super::merge::healthcheck(config.healthcheck.as_ref(), image_health.as_ref());
        if config.hostname.is_empty() {
            config.hostname = id[..12].to_string();
        }
        let (path, args) = super::merge::command(&config)?;
        let mount_points = super::mounts::resolve(&config, &host, &self.volumes, |from| {
            let other = self.get(from)?.snapshot();
            Ok(other.mount_points)
        })?;
        let anonymous: Vec<String> = mount_points
            .iter()
            .filter(|m| m.anonymous)
            .map(|m| m.name.clone())
            .collect();
        let forget_volumes = |vols: &crate::volumes::Volumes| {
            for n in &anonymous {
                let _ = vols.remove(n, true);
            }
        };
        // Docker's mergeAndVerifyLogConfig: no type means the daemon's; the daemon's options
        // fill in what the container did not set, when the driver is the daemon's.
        let log_driver = if host.log_config.kind.is_empty() {
            self.defaults.log_driver.clone()
        } else {
            host.log_config.kind.clone()
        };
        let mut log_opts = host.log_config.config.clone();
        if log_driver == self.defaults.log_driver {
            for (k, v) in &self.defaults.log_opts {
                log_opts.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        skiff_logs::LogConfig::from_opts(&log_driver, &log_opts, PathBuf::new())
            .map_err(|e| ContainersError::Invalid(e.to_string()))?;
        let dir = self.root.join(&id);
        let log_path = match log_driver.as_str() {
            "json-file" => dir.join(format!("{id}-json.log")),
            "local" => dir.join("local-logs").join("container.log"),
            _ => PathBuf::new(),
        };
        // The name is chosen (or checked) and claimed under one lock: two creates never
        // get the same one.
        let name = {
            let mut ix = self.lock_index();
            let name = match given {
                Some(n) => {
                    if let Some(other) = ix.name_taken(&n) {
                        forget_volumes(&self.volumes);
                        return Err(ContainersError::Conflict(format!(
                            "Conflict. The container name \"/{n}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
                        )));
                    }
                    n
                }
                None => store::random_name(|n| ix.name_taken(n).is_some()),
            };
            ix.insert(&id, &name);
            name
        };
        let c = Container {
            id: id.clone(),
            created: Utc::now(),
            path,
            args,
            config,
            host_config: host,
            state: State {
                status: Status::Created,
                started_at: super::model::ZERO_TIME.into(),
                finished_at: super::model::ZERO_TIME.into(),
                ..Default::default()
            },
            image: img.id.clone(),
            name: format!("/{name}"),
            restart_count: 0,
            log_path: log_path.display().to_string(),
            log_driver,
            log_opts,
            manually_stopped: false,
            has_been_started: false,
            mount_points,
            networks,
            sandbox_key: String::new(),
        };
        for mp in c.mount_points.iter().filter(|m| m.kind == "volume") {
            self.volumes.add_user(&mp.name, &c.id);
        }
        let made = self.make_dir(&dir, &c, &img);
        if let Err(e) = made {
            for mp in c.mount_points.iter().filter(|m| m.kind == "volume") {
                self.volumes.remove_user(&mp.name, &c.id);
            }
            forget_volumes(&self.volumes);
            self.lock_index().remove(&id, &name);
            let _ = self.store.snapshots().volatile().remove(&id);
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
        self.emit("create", &c, &[]);
        self.lock_entries()
            .insert(id.clone(), Arc::new(Self::entry(dir, c)));
        Ok((id, Vec::new()))
    }

    fn make_dir(&self, dir: &Path, c: &Container, img: &crate::images::LocalImage) -> Result<()> {
        std::fs::create_dir_all(dir.join("rootfs")).map_err(sys(dir.display()))?;
        let top = img.top_chain_id();
        self.store
            .snapshots()
            .volatile()
            .prepare(&c.id, top.as_deref())
            .map_err(|e| ContainersError::System(format!("prepare rootfs of {}: {e}", c.id)))?;
        super::files::write_network_files(dir, c).map_err(sys(dir.display()))?;
        // The record last: a directory with a record is a container.
        store::save(dir, c).map_err(sys(format!("save container {}", c.id)))
    }

    /// `GET /containers/{id}/json`.
    pub fn inspect(&self, what: &str, size: bool) -> Result<Value> {
        let e = self.get(what)?;
        let c = e.snapshot();
        let execs = e.execs.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Ok(super::views::inspect(self, &e.dir, &c, &execs, size))
    }
}

impl Containers {
    /// The log configuration of a container.
    pub fn log_config(c: &Container) -> Result<skiff_logs::LogConfig> {
        skiff_logs::LogConfig::from_opts(&c.log_driver, &c.log_opts, PathBuf::from(&c.log_path))
            .map_err(|e| ContainersError::Invalid(e.to_string()))
    }

    /// A reader of a container's log, its tty flag, and its life (to end a follow when the
    /// container exits).
    pub fn logs(
        &self,
        what: &str,
        opts: skiff_logs::ReadOptions,
    ) -> Result<(skiff_logs::Reader, bool, watch::Receiver<Life>)> {
        let e = self.get(what)?;
        let c = e.snapshot();
        let cfg = Self::log_config(&c)?;
        let r = skiff_logs::Reader::open(&cfg, opts).map_err(|err| match err {
            skiff_logs::LogError::ReadingUnsupported => {
                ContainersError::NotImplemented(err.to_string())
            }
            other => ContainersError::System(other.to_string()),
        })?;
        Ok((r, c.config.tty, e.life.subscribe()))
    }
}
