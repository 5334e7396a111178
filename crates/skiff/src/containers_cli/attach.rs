//! Attached streams: the hijacked connection pumped to stdout/stderr (demultiplexed unless
//! there is a terminal) with stdin copied in (half-closed at end of input); a session that
//! puts the local terminal in raw mode, sends the window size on start and on SIGWINCH,
//! and proxies signals to the container through `/kill`. Also `start` and `attach`.

use std::io::{IsTerminal, Read};
use std::sync::mpsc;

use clap::Args;
use hyper::Method;
use serde_json::Value;
use tokio::signal::unix::{signal, SignalKind};

use super::run::{report_start, wait_code};
use super::{io_err, CliError, Res};
use crate::client::stdcopy::{copy_raw, demux, DemuxError};
use crate::client::{Body, Client, Hijacked, Query};
use crate::runtime_cli::console::RawMode;
use std::io::Write as _;

/// Signals forwarded to the container with `--sig-proxy` (docker forwards all it can).
const PROXIED: [i32; 6] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

enum Event {
    Resize,
    Signal(i32),
}

/// What a session resizes: a container's or an exec's terminal.
#[derive(Clone)]
pub enum Target {
    Container(String),
    Exec(String),
}

/// Terminal mode, resize and signal proxy for one attached run; undone on drop.
pub struct Session {
    _raw: Option<RawMode>,
    events: Option<mpsc::Sender<Event>>,
}

impl Session {
    /// `tty`: resize the container's terminal; `raw`: local terminal in raw mode;
    /// `sig_proxy`: forward signals.
    pub fn new(c: &Client, id: &str, tty: bool, raw: bool, sig_proxy: bool) -> Res<Session> {
        Self::for_target(c, Target::Container(id.to_string()), tty, raw, sig_proxy)
    }

    pub fn for_target(
        c: &Client,
        target: Target,
        tty: bool,
        raw: bool,
        sig_proxy: bool,
    ) -> Res<Session> {
        let resize = tty && std::io::stdout().is_terminal();
        let events = if resize || sig_proxy {
            Some(spawn_worker(c, target, resize, sig_proxy)?)
        } else {
            None
        };
        let _raw = (raw && std::io::stdin().is_terminal()).then(RawMode::enter);
        Ok(Session { _raw, events })
    }

    /// The container (or exec) runs: send the terminal size.
    pub fn started(&self) {
        if let Some(tx) = &self.events {
            let _ = tx.send(Event::Resize);
        }
    }
}

/// A thread waiting for signals (tokio's handlers, registered before this returns) and a
/// thread turning them into API calls on a client of its own.
fn spawn_worker(
    c: &Client,
    target: Target,
    resize: bool,
    sig_proxy: bool,
) -> Res<mpsc::Sender<Event>> {
    let api = c.try_clone()?;
    let (tx, rx) = mpsc::channel::<Event>();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io_err("create the signal runtime"))?;
    let mut wanted: Vec<(i32, Event)> = Vec::new();
    if resize {
        wanted.push((libc::SIGWINCH, Event::Resize));
    }
    if sig_proxy {
        wanted.extend(PROXIED.iter().map(|s| (*s, Event::Signal(*s))));
    }
    let mut streams = Vec::new();
    {
        let _g = rt.enter();
        for (n, ev) in wanted {
            let s = signal(SignalKind::from_raw(n)).map_err(io_err(format!("watch signal {n}")))?;
            streams.push((s, ev));
        }
    }
    let stx = tx.clone();
    std::thread::spawn(move || {
        rt.block_on(async move {
            for (mut s, ev) in streams {
                let tx = stx.clone();
                let n = match ev {
                    Event::Resize => None,
                    Event::Signal(n) => Some(n),
                };
                tokio::spawn(async move {
                    while s.recv().await.is_some() {
                        let ev = n.map_or(Event::Resize, Event::Signal);
                        if tx.send(ev).is_err() {
                            break;
                        }
                    }
                });
            }
            std::future::pending::<()>().await
        })
    });
    std::thread::spawn(move || {
        for ev in rx {
            let path = match (&ev, &target) {
                (Event::Resize, t) => {
                    let Ok(ws) = rustix::termios::tcgetwinsize(rustix::stdio::stdout()) else {
                        continue;
                    };
                    let base = match t {
                        Target::Container(id) => format!("/containers/{id}/resize"),
                        Target::Exec(id) => format!("/exec/{id}/resize"),
                    };
                    Query::new()
                        .add("h", ws.ws_row.to_string())
                        .add("w", ws.ws_col.to_string())
                        .to(&base)
                }
                (Event::Signal(n), Target::Container(id)) => {
                    format!("/containers/{id}/kill?signal={n}")
                }
                (Event::Signal(_), Target::Exec(_)) => continue,
            };
            let _ = api.post(&path, Body::Empty);
        }
    });
    Ok(tx)
}

/// The detach keys of a session: `--detach-keys`, else Docker's ctrl-p,ctrl-q.
pub fn detach_keys(flag: Option<&str>) -> Res<Vec<u8>> {
    use skiff_engine::containers::detach;
    match flag.filter(|k| !k.is_empty()) {
        Some(k) => detach::parse_keys(k)
            .map_err(|e| CliError::Usage(format!("invalid detach keys ({k}): {e}"))),
        None => Ok(detach::DEFAULT_KEYS.to_vec()),
    }
}

/// Copy stdin in (when `stdin`) and the output out until the daemon closes the stream.
/// With a terminal, typing `detach` keys ends the session (as the docker CLI does, the
/// keys are watched here too, and sent to the daemon as `detachKeys`); returns whether the
/// session was detached.
pub fn pump(h: Hijacked, stdin: bool, tty: bool, detach: Option<Vec<u8>>) -> Res<bool> {
    use skiff_engine::containers::detach::{EscapeProxy, Filtered};
    let detached = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    if stdin {
        let mut w = h.stream.try_clone().map_err(io_err("attach stdin"))?;
        let flag = detached.clone();
        let keys = detach.filter(|_| tty).unwrap_or_default();
        std::thread::spawn(move || {
            let mut proxy = EscapeProxy::new(keys);
            let mut input = std::io::stdin().lock();
            let mut buf = [0u8; 4096];
            loop {
                let n = match input.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                match proxy.filter(&buf[..n]) {
                    Filtered::Forward(b) => {
                        if w.write_all(&b).is_err() {
                            return;
                        }
                    }
                    Filtered::Detach => {
                        flag.store(true, std::sync::atomic::Ordering::SeqCst);
                        let _ = w.shutdown(std::net::Shutdown::Both);
                        return;
                    }
                }
            }
            let _ = w.close_write();
        });
    }
    let r = std::io::Cursor::new(h.buffered).chain(h.stream);
    let mut out = std::io::stdout();
    let res = if tty {
        copy_raw(r, &mut out)
    } else {
        demux(r, &mut out, &mut std::io::stderr())
    };
    let detached = detached.load(std::sync::atomic::Ordering::SeqCst);
    match res {
        _ if detached => Ok(true),
        Err(DemuxError::Write(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        r => r.map(|()| false).map_err(Into::into),
    }
}

#[derive(Args, Debug)]
pub struct StartArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
    /// Attach STDOUT/STDERR and forward signals.
    #[arg(short, long)]
    pub attach: bool,
    /// Attach container's STDIN.
    #[arg(short, long)]
    pub interactive: bool,
    /// Override the key sequence for detaching a container.
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
}

pub fn start(c: &Client, a: StartArgs) -> Res<i32> {
    if !(a.attach || a.interactive) {
        let mut failed = Vec::new();
        for name in &a.containers {
            match c.post(&format!("/containers/{name}/start"), Body::Empty) {
                Ok(()) => println!("{name}"),
                Err(e) => {
                    eprintln!("{e}");
                    failed.push(name.clone());
                }
            }
        }
        if failed.is_empty() {
            return Ok(0);
        }
        eprintln!("Error: failed to start containers: {}", failed.join(", "));
        return Err(CliError::Reported(1));
    }
    if a.containers.len() > 1 {
        return Err(CliError::Usage(
            "you cannot start and attach multiple containers at once".into(),
        ));
    }
    let name = &a.containers[0];
    let info: Value = c.get(&format!("/containers/{name}/json"))?;
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let stdin = a.interactive && info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    let id = info["Id"].as_str().unwrap_or(name).to_string();
    let keys = a.detach_keys.as_deref();
    let detach = detach_keys(keys)?;
    let stream = attach_stream(c, &id, stdin, keys)?;
    let (_, wait) = c.stream(
        Method::POST,
        &format!("/containers/{id}/wait?condition=next-exit"),
        Body::Empty,
    )?;
    let session = Session::new(c, &id, tty, stdin && tty, !tty)?;
    if let Err(e) = c.post(&format!("/containers/{id}/start"), Body::Empty) {
        drop(session);
        return Err(CliError::Reported(report_start(&e.into())));
    }
    session.started();
    let res = pump(stream, stdin, tty, Some(detach));
    drop(session);
    if res? {
        return Ok(0);
    }
    wait_code(wait)
}

fn attach_stream(c: &Client, id: &str, stdin: bool, detach_keys: Option<&str>) -> Res<Hijacked> {
    let q = Query::new()
        .add("stream", "1")
        .add_if(stdin, "stdin", "1")
        .add("stdout", "1")
        .add("stderr", "1");
    let q = match detach_keys {
        Some(k) => q.add("detachKeys", k),
        None => q,
    };
    Ok(c.hijack(&q.to(&format!("/containers/{id}/attach")), Body::Empty)?)
}

#[derive(Args, Debug)]
pub struct AttachArgs {
    pub container: String,
    /// Do not attach STDIN.
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    /// Proxy all received signals to the process.
    #[arg(long = "sig-proxy", default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub sig_proxy: bool,
    /// Override the key sequence for detaching a container.
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
}

pub fn attach(c: &Client, a: AttachArgs) -> Res<i32> {
    let info: Value = c.get(&format!("/containers/{}/json", a.container))?;
    if !info["State"]["Running"].as_bool().unwrap_or(false) {
        return Err(CliError::Usage(
            "You cannot attach to a stopped container, start it first".into(),
        ));
    }
    if info["State"]["Paused"].as_bool().unwrap_or(false) {
        return Err(CliError::Usage(
            "You cannot attach to a paused container, unpause it first".into(),
        ));
    }
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let stdin = !a.no_stdin && info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    if stdin && tty && !std::io::stdin().is_terminal() {
        return Err(CliError::Usage("the input device is not a TTY".into()));
    }
    let id = info["Id"].as_str().unwrap_or(&a.container).to_string();
    let keys = a.detach_keys.as_deref();
    let detach = detach_keys(keys)?;
    let stream = attach_stream(c, &id, stdin, keys)?;
    let (_, wait) = c.stream(
        Method::POST,
        &format!("/containers/{id}/wait?condition=next-exit"),
        Body::Empty,
    )?;
    let session = Session::new(c, &id, tty, stdin && tty, a.sig_proxy && !tty)?;
    session.started();
    let res = pump(stream, stdin, tty, Some(detach));
    drop(session);
    if res? {
        // As the docker CLI: a detached attach is an error exit.
        eprintln!("read escape sequence");
        return Ok(1);
    }
    wait_code(wait)
}
