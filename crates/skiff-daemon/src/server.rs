//! Listeners and the accept loop: unix sockets (default `/run/skiff/skiff.sock`, mode 0660,
//! group `skiff` when it exists) and TCP only when a `tcp://` host is asked for. Each
//! connection is served by hyper's HTTP/1 server with upgrades enabled (attach/exec hijacks
//! will downcast the upgraded IO back to the raw `UnixStream`); the peer's credentials are
//! read once per connection. Shutdown stops accepting, lets in-flight requests finish (up to
//! a deadline), and removes the socket files.

use std::convert::Infallible;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{mpsc, watch};

use crate::api::{self, ConnInfo};
use crate::config::DEFAULT_GROUP;
use crate::state::Daemon;

/// How long in-flight requests get to finish on shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A `-H` address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Unix(PathBuf),
    Tcp(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("invalid host {0:?}: want unix:///path or tcp://host:port")]
    BadHost(String),
    #[error("{0}: another daemon is already listening there")]
    InUse(String),
    #[error("listen on {addr}: {source}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("group {0:?} for the API socket does not exist")]
    NoGroup(String),
}

impl Host {
    pub fn parse(s: &str) -> Result<Host, ServerError> {
        if let Some(p) = s.strip_prefix("unix://") {
            let p = if p.is_empty() {
                "/run/skiff/skiff.sock"
            } else {
                p
            };
            if !p.starts_with('/') {
                return Err(ServerError::BadHost(s.into()));
            }
            return Ok(Host::Unix(PathBuf::from(p)));
        }
        if let Some(a) = s.strip_prefix("tcp://") {
            let a = a.trim_end_matches('/');
            if a.is_empty() || !a.contains(':') {
                return Err(ServerError::BadHost(s.into()));
            }
            return Ok(Host::Tcp(a.to_string()));
        }
        if s.starts_with('/') {
            return Ok(Host::Unix(PathBuf::from(s)));
        }
        Err(ServerError::BadHost(s.into()))
    }
}

/// A bound listener.
pub enum Listener {
    Unix(UnixListener, PathBuf),
    Tcp(TcpListener, String),
}

impl Listener {
    pub fn addr(&self) -> String {
        match self {
            Listener::Unix(_, p) => p.display().to_string(),
            Listener::Tcp(l, a) => l
                .local_addr()
                .map(|x| x.to_string())
                .unwrap_or_else(|_| a.clone()),
        }
    }
}

fn group_gid(group: Option<&str>) -> Result<Option<nix::unistd::Gid>, ServerError> {
    let (name, explicit) = match group {
        Some(g) => (g, true),
        None => (DEFAULT_GROUP, false),
    };
    if name.is_empty() {
        return Ok(None);
    }
    if let Ok(gid) = name.parse::<u32>() {
        return Ok(Some(nix::unistd::Gid::from_raw(gid)));
    }
    match std::fs::read_to_string("/etc/group")
        .ok()
        .and_then(|t| gid_in_group_file(&t, name))
    {
        Some(g) => Ok(Some(nix::unistd::Gid::from_raw(g))),
        None if explicit => Err(ServerError::NoGroup(name.into())),
        None => Ok(None),
    }
}

/// The gid of `name` in the text of an /etc/group file. Read directly, as Go's os/user does
/// without cgo (dockerd's `-G`): going through NSS would load libnss_* modules into the
/// daemon for its whole life (~0.4 MiB of RSS) for one lookup at start.
fn gid_in_group_file(text: &str, name: &str) -> Option<u32> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let mut f = l.split(':');
        (f.next()? == name).then_some(())?;
        f.nth(1)?.trim().parse().ok()
    })
}

#[cfg(test)]
mod group_tests {
    #[test]
    fn group_file_lookup() {
        let t = "# comment\nroot:x:0:\nskiffx:x:12:a\nskiff:x:998:alice,bob\nbad:x:zz:\n";
        assert_eq!(super::gid_in_group_file(t, "skiff"), Some(998));
        assert_eq!(super::gid_in_group_file(t, "root"), Some(0));
        assert_eq!(super::gid_in_group_file(t, "bad"), None);
        assert_eq!(super::gid_in_group_file(t, "nope"), None);
        assert_eq!(super::gid_in_group_file("", "skiff"), None);
    }
}

fn bind_unix(path: &Path, group: Option<&str>) -> Result<Listener, ServerError> {
    let addr = path.display().to_string();
    let err = |source| ServerError::Listen {
        addr: addr.clone(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    if path.exists() {
        // A live daemon answers a connect; a stale socket file refuses it.
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(ServerError::InUse(addr));
        }
        std::fs::remove_file(path).map_err(err)?;
    }
    let l = UnixListener::bind(path).map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(err)?;
    if let Some(gid) = group_gid(group)? {
        nix::unistd::chown(path, None, Some(gid))
            .map_err(|e| err(std::io::Error::from_raw_os_error(e as i32)))?;
    }
    Ok(Listener::Unix(l, path.to_path_buf()))
}

/// Binds every host. TCP is only ever bound when asked for; anything but loopback gets a
/// warning, since the API is root-equivalent and served without TLS.
pub async fn bind(hosts: &[String], group: Option<&str>) -> Result<Vec<Listener>, ServerError> {
    let mut out = Vec::new();
    for h in hosts {
        match Host::parse(h)? {
            Host::Unix(p) => out.push(bind_unix(&p, group)?),
            Host::Tcp(a) => {
                let l = TcpListener::bind(&a)
                    .await
                    .map_err(|source| ServerError::Listen {
                        addr: a.clone(),
                        source,
                    })?;
                if !l
                    .local_addr()
                    .map(|x| x.ip().is_loopback())
                    .unwrap_or(false)
                {
                    tracing::warn!(addr = %a, "API listening on a non-loopback TCP address without TLS: anyone who can reach it is root on this host");
                }
                out.push(Listener::Tcp(l, a));
            }
        }
    }
    Ok(out)
}

/// Resolves once shutdown is asked for (or its sender is gone).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

static CONN_SEQ: AtomicU64 = AtomicU64::new(1);

/// Serves one connection until it closes or shutdown is asked for.
async fn serve_conn<IO>(
    io: IO,
    info: ConnInfo,
    d: Arc<Daemon>,
    mut shutdown: watch::Receiver<bool>,
    _alive: mpsc::Sender<()>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let info = Arc::new(info);
    let svc = service_fn(move |req| {
        let d = d.clone();
        let info = info.clone();
        async move { Ok::<_, Infallible>(api::handle(&d, &info, req).await) }
    });
    let conn = http1::Builder::new()
        .serve_connection(TokioIo::new(io), svc)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        }
        _ = stopped(&mut shutdown) => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Accepts on one listener until shutdown.
async fn accept_loop(
    l: Listener,
    d: Arc<Daemon>,
    mut shutdown: watch::Receiver<bool>,
    alive: mpsc::Sender<()>,
) {
    loop {
        let accepted = tokio::select! {
            _ = stopped(&mut shutdown) => break,
            a = accept(&l) => a,
        };
        match accepted {
            Ok(Accepted::Unix(s)) => {
                let cred = s.peer_cred().ok();
                let info = ConnInfo {
                    conn_id: CONN_SEQ.fetch_add(1, Ordering::Relaxed),
                    peer_uid: cred.map(|c| c.uid()),
                    peer_pid: cred.and_then(|c| c.pid()),
                };
                tokio::spawn(serve_conn(
                    s,
                    info,
                    d.clone(),
                    shutdown.clone(),
                    alive.clone(),
                ));
            }
            Ok(Accepted::Tcp(s)) => {
                let info = ConnInfo {
                    conn_id: CONN_SEQ.fetch_add(1, Ordering::Relaxed),
                    ..Default::default()
                };
                tokio::spawn(serve_conn(
                    s,
                    info,
                    d.clone(),
                    shutdown.clone(),
                    alive.clone(),
                ));
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(listener = %l.addr(), error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

enum Accepted {
    Unix(tokio::net::UnixStream),
    Tcp(tokio::net::TcpStream),
}

async fn accept(l: &Listener) -> std::io::Result<Accepted> {
    match l {
        Listener::Unix(l, _) => l.accept().await.map(|(s, _)| Accepted::Unix(s)),
        Listener::Tcp(l, _) => l.accept().await.map(|(s, _)| {
            let _ = s.set_nodelay(true);
            Accepted::Tcp(s)
        }),
    }
}

/// Removes the socket files of unix listeners that will not be served (start-up failed).
pub fn unlink(listeners: &[Listener]) {
    for l in listeners {
        if let Listener::Unix(_, p) = l {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Serves `listeners` until `stop` resolves, then drains connections (at most
/// [`SHUTDOWN_GRACE`]) and removes the unix socket files.
pub async fn serve(
    d: Arc<Daemon>,
    listeners: Vec<Listener>,
    stop: impl std::future::Future<Output = ()>,
) {
    let (tx, rx) = watch::channel(false);
    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
    let mut paths = Vec::new();
    let mut loops = Vec::new();
    for l in listeners {
        tracing::info!(addr = %l.addr(), "API listen");
        if let Listener::Unix(_, p) = &l {
            paths.push(p.clone());
        }
        loops.push(tokio::spawn(accept_loop(
            l,
            d.clone(),
            rx.clone(),
            alive_tx.clone(),
        )));
    }
    drop(alive_tx);
    stop.await;
    tracing::info!("shutting down: draining connections");
    let _ = tx.send(true);
    for l in loops {
        let _ = l.await;
    }
    // Every connection task holds a sender: recv() yields None once all are gone.
    if tokio::time::timeout(SHUTDOWN_GRACE, alive_rx.recv())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the grace period; closing them");
    }
    for p in paths {
        let _ = std::fs::remove_file(&p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(
            Host::parse("unix:///tmp/a.sock").unwrap(),
            Host::Unix("/tmp/a.sock".into())
        );
        assert_eq!(
            Host::parse("unix://").unwrap(),
            Host::Unix("/run/skiff/skiff.sock".into())
        );
        assert_eq!(
            Host::parse("tcp://127.0.0.1:2375").unwrap(),
            Host::Tcp("127.0.0.1:2375".into())
        );
        assert!(Host::parse("tcp://").is_err());
        assert!(Host::parse("unix://rel").is_err());
        assert!(Host::parse("ssh://x").is_err());
    }
}
