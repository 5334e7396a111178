//! skiffd: the Docker Engine API (v1.44) over skiff's services.
//!
//! ```text
//! server (unix/tcp accept loop, hyper http1 + upgrades, peer creds, graceful stop)
//!   └─ api::handle (request id + span, panic → 500, Docker's headers)
//!        └─ api::route (method + path → Action) → api::{system,images,pull,auth} → services
//! ```
//! [`run`] is the whole daemon (logging, signals, config reloads); the `skiff daemon`
//! subcommand and the `skiffd` binary call it.

#![recursion_limit = "256"]

pub mod api;
pub mod config;
pub mod server;
pub mod state;

use std::sync::Arc;

pub use config::{DaemonConfig, DaemonOptions};
pub use state::Daemon;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter};

/// Runs the daemon until SIGTERM or SIGINT: reads the configuration, opens the services,
/// binds the hosts, serves. SIGHUP reloads daemon.json (see [`Daemon::reload`]). Builds its
/// own tokio runtime; call it from a thread that is not inside one.
pub fn run(opts: DaemonOptions) -> anyhow::Result<()> {
    let cfg = DaemonConfig::load(&opts)?;
    let reload_hook = init_logging(&cfg);
    // Two malloc arenas, not one per worker thread: a small, steady idle footprint.
    // SAFETY: mallopt only changes the allocator's tuning; called before other threads exist.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 2) };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("skiffd")
        .build()?;
    let res = rt.block_on(run_async(opts, cfg, reload_hook));
    rt.shutdown_timeout(std::time::Duration::from_secs(5));
    if let Err(e) = &res {
        tracing::error!(error = %e, "daemon failed");
    }
    res
}

/// The daemon on an existing runtime (logging is the caller's).
pub async fn run_async(
    opts: DaemonOptions,
    cfg: DaemonConfig,
    reload_hook: Option<state::ReloadHook>,
) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;

    let hosts = cfg.hosts.clone();
    let group = cfg.group.clone();
    let open_cfg = cfg.clone();
    // Bind first: a second daemon on the same socket is refused here, before it opens the
    // store or touches the first one's networks (bridge, nftables table). Clients that
    // connect meanwhile wait in the backlog until serving starts.
    let listeners = server::bind(&hosts, group.as_deref()).await?;
    let opened = tokio::task::spawn_blocking(move || Daemon::open(open_cfg, reload_hook)).await;
    let d = match opened.map_err(anyhow::Error::from).and_then(|r| Ok(r?)) {
        Ok(d) => d,
        Err(e) => {
            server::unlink(&listeners);
            return Err(e);
        }
    };
    // Reattach to the monitors of running containers; record exits missed while away.
    d.containers.reconcile().await;
    let cs = d.containers.clone();
    tokio::task::spawn_blocking(move || cs.net_reconcile()).await?;
    tokio::spawn(trim_when_idle());
    tracing::info!(
        version = api::system::VERSION,
        data_root = %cfg.engine.data_root.display(),
        "daemon has completed initialization"
    );
    let d2: Arc<Daemon> = d.clone();
    let stop = async move {
        loop {
            tokio::select! {
                _ = term.recv() => { tracing::info!("SIGTERM: stopping"); break; }
                _ = int.recv() => { tracing::info!("SIGINT: stopping"); break; }
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: reloading configuration");
                    match DaemonConfig::load(&opts) {
                        Ok(c) => match d2.reload(c) {
                            Ok(()) => tracing::info!("configuration reloaded"),
                            Err(e) => tracing::error!(error = %e, "reload failed; keeping the old configuration"),
                        },
                        Err(e) => tracing::error!(error = %e, "reload failed; keeping the old configuration"),
                    }
                }
            }
        }
    };
    let cs = d.containers.clone();
    server::serve(d, listeners, stop).await;
    // The pool's prepared namespaces go with the daemon (containers' stay).
    let _ = tokio::task::spawn_blocking(move || cs.net_shutdown()).await;
    tracing::info!("daemon stopped");
    Ok(())
}

/// Text (or JSON lines) on stderr at the configured level; returns the hook that changes
/// the level on reload. Leaves an already-installed subscriber alone.
fn init_logging(cfg: &DaemonConfig) -> Option<state::ReloadHook> {
    let filter = |level: &str| {
        EnvFilter::try_from_env("SKIFFD_LOG").unwrap_or_else(|_| {
            EnvFilter::new(format!("warn,skiff_daemon={level},skiff_engine={level},skiff_registry={level},skiff_store={level}"))
        })
    };
    let (layer, handle) = reload::Layer::new(filter(&cfg.log_level));
    let json = cfg.log_json;
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let ok = tracing_subscriber::registry()
        .with(layer)
        .with(json.then(|| {
            tracing_subscriber::fmt::layer()
                .json()
                .with_writer(std::io::stderr)
        }))
        .with((!json).then(|| {
            tracing_subscriber::fmt::layer()
                .with_ansi(ansi)
                .with_writer(std::io::stderr)
        }))
        .try_init()
        .is_ok();
    if !ok {
        return None;
    }
    Some(Box::new(move |c: &DaemonConfig| {
        let _ = handle.reload(filter(&c.log_level));
    }))
}

/// Gives freed heap back to the kernel once a burst of requests is over: the daemon's idle
/// footprint stays what it was before the burst (glibc keeps freed memory otherwise).
pub async fn trim_when_idle() {
    use std::sync::atomic::Ordering;
    let mut last = 0;
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let now = api::SINCE_TRIM.load(Ordering::Relaxed);
        // Requests came, and none in the last second: trim.
        if now != 0 && now == last {
            api::SINCE_TRIM.store(0, Ordering::Relaxed);
            // SAFETY: malloc_trim only returns free pages of the heap to the kernel.
            unsafe { libc::malloc_trim(0) };
            last = 0;
        } else {
            last = now;
        }
    }
}
