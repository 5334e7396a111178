//! The daemon's shared state: configuration, services, identity. Reloadable parts sit behind
//! locks that are never held across an await.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use skiff_engine::containers::{Containers, Defaults};
use skiff_engine::ImageService;
use skiff_registry::RegistryConfig;

use crate::config::DaemonConfig;

/// Called on a successful reload with the new configuration (e.g. to change the log level).
pub type ReloadHook = Box<dyn Fn(&DaemonConfig) + Send + Sync>;

pub struct Daemon {
    config: RwLock<DaemonConfig>,
    images: RwLock<ImageService>,
    /// The container service (its monitors outlive the daemon).
    pub containers: Arc<Containers>,
    /// Stable engine ID (`/info` `ID`), kept in the data root.
    pub engine_id: String,
    pub started: SystemTime,
    reload_hook: Option<ReloadHook>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("data root {}: {source}", path.display())]
    DataRoot {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("registry-mirrors: {entry:?}: {detail}")]
    Mirror { entry: String, detail: String },
    #[error("{0}")]
    Images(#[from] skiff_engine::ImagesError),
    #[error("{0}")]
    Containers(#[from] skiff_engine::ContainersError),
    #[error("{0}")]
    Registry(#[from] skiff_registry::Error),
    #[error("networking: {0}")]
    Network(String),
}

/// The registry client settings of a configuration. The daemon never reads a docker
/// config.json of its own: credentials come from clients (`X-Registry-Auth`), as in dockerd.
pub fn registry_config(cfg: &DaemonConfig) -> Result<RegistryConfig, StartError> {
    let mut rc = RegistryConfig::default();
    for m in &cfg.engine.registry_mirrors {
        rc.mirrors
            .push(m.parse().map_err(|e: url::ParseError| StartError::Mirror {
                entry: m.clone(),
                detail: e.to_string(),
            })?);
    }
    rc.insecure = cfg.engine.insecure_registries.clone();
    rc.docker_config_path = Some(PathBuf::from(NO_DOCKER_CONFIG));
    Ok(rc)
}

/// A path that never exists: no credentials but the client's.
pub const NO_DOCKER_CONFIG: &str = "/nonexistent/skiffd/docker-config.json";

fn engine_id(root: &Path) -> Result<String, std::io::Error> {
    let path = root.join("engine-id");
    match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => return Ok(s.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut b = [0u8; 16];
    // SAFETY: getrandom writes at most b.len() bytes into b.
    let _ = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let id = format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    );
    // write-temp + fsync + rename: a crash never leaves a half-written ID.
    let tmp = root.join(".engine-id.tmp");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(id.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    Ok(id)
}

impl Daemon {
    /// Opens the services of a configuration (the store is checked on open).
    pub fn open(
        cfg: DaemonConfig,
        reload_hook: Option<ReloadHook>,
    ) -> Result<Arc<Daemon>, StartError> {
        let root = cfg.engine.data_root.clone();
        std::fs::create_dir_all(&root).map_err(|source| StartError::DataRoot {
            path: root.clone(),
            source,
        })?;
        let rc = registry_config(&cfg)?;
        let (images, report) = ImageService::open(&root, rc, cfg.engine.max_concurrent_downloads)?;
        if !report.is_clean() {
            tracing::warn!(report = ?report, "store check repaired or found problems");
        }
        let engine_id = engine_id(&root).map_err(|source| StartError::DataRoot {
            path: root.clone(),
            source,
        })?;
        let containers = Containers::open(
            images.store.clone(),
            Defaults {
                log_driver: cfg.engine.log_driver.clone(),
                log_opts: cfg.engine.log_opts.clone(),
                exec_root: cfg.engine.exec_root.clone(),
                shim: skiff_engine::containers::shim::shim_binary(),
            },
        )?;
        if cfg.engine.bridge != "none" {
            let net = open_networks(&cfg)?;
            containers.set_net(net);
        }
        Ok(Arc::new(Daemon {
            config: RwLock::new(cfg),
            images: RwLock::new(images),
            containers,
            engine_id,
            started: SystemTime::now(),
            reload_hook,
        }))
    }

    pub fn config(&self) -> DaemonConfig {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The image service (a cheap clone sharing the store and registry client).
    pub fn images(&self) -> ImageService {
        self.images
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// SIGHUP: re-read daemon.json and apply what can change at run time: registry mirrors,
    /// insecure registries, download concurrency, log level. `data-root` and `hosts` need a
    /// restart; a change to them is reported and ignored.
    pub fn reload(&self, fresh: DaemonConfig) -> Result<(), StartError> {
        let old = self.config();
        if fresh.engine.data_root != old.engine.data_root {
            tracing::warn!(old = %old.engine.data_root.display(), new = %fresh.engine.data_root.display(), "data-root changes need a restart; keeping the old one");
        }
        if fresh.hosts != old.hosts {
            tracing::warn!("hosts changes need a restart; keeping the old listeners");
        }
        let rc = registry_config(&fresh)?;
        let registry = skiff_registry::Registry::new(rc)?;
        {
            let mut svc = self.images.write().unwrap_or_else(|p| p.into_inner());
            svc.registry = registry;
            svc.max_concurrent_downloads = fresh.engine.max_concurrent_downloads.max(1);
        }
        let mut keep = fresh;
        keep.engine.data_root = old.engine.data_root;
        keep.hosts = old.hosts;
        if let Some(h) = &self.reload_hook {
            h(&keep);
        }
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = keep;
        Ok(())
    }
}

/// Networking (skiff-net) on the daemon's roots: records under `<data-root>/network`,
/// namespace files under `<exec-root>/netns` (the pool's under `<exec-root>/netns-pool`);
/// `default-address-pools`, `iptables`, `bip` and `mtu` from daemon.json. Runs inside the runtime (the DNS server's sockets live on it).
fn open_networks(cfg: &DaemonConfig) -> Result<skiff_engine::containers::network::Net, StartError> {
    let e = &cfg.engine;
    let mut nc = skiff_net::NetConfig::new(e.data_root.join("network"), e.exec_root.join("netns"));
    if !e.default_address_pools.is_empty() {
        let mut pools = Vec::new();
        for p in &e.default_address_pools {
            let base = p.base.parse().map_err(|err| {
                StartError::Network(format!("default-address-pools: base {:?}: {err}", p.base))
            })?;
            let pool = skiff_net::AddressPool { base, size: p.size };
            pool.validate()
                .map_err(|err| StartError::Network(format!("default-address-pools: {err}")))?;
            pools.push(pool);
        }
        nc.address_pools = pools;
    }
    if !e.iptables {
        nc.firewall = None;
    }
    if !e.bridge.is_empty() {
        nc.default_bridge.name = e.bridge.clone();
    }
    if let Some(b) = e.bip() {
        nc.default_bridge.gateway = Some(b.gateway);
        nc.default_bridge.subnet = Some(
            b.subnet()
                .parse()
                .map_err(|err| StartError::Network(format!("bip {}: {err}", e.bip)))?,
        );
    }
    if e.mtu != 0 {
        nc.default_bridge.mtu = e.mtu;
    }
    // Prepared namespaces for the default bridge (skiff-net's pool.rs): a start on it then
    // only finishes eth0.
    // A knob for measurements (net-bench): SKIFF_NETNS_POOL=N entries (0: no pool).
    let knob = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<usize>().ok());
    nc.pool_size = knob("SKIFF_NETNS_POOL").unwrap_or(2);
    let networks =
        skiff_net::Networks::open(nc).map_err(|err| StartError::Network(err.to_string()))?;
    let handle = tokio::runtime::Handle::try_current()
        .map_err(|err| StartError::Network(format!("DNS server: {err}")))?;
    Ok(skiff_engine::containers::network::Net::new(
        Arc::new(networks),
        skiff_net::DnsServer::new(handle),
    ))
}
