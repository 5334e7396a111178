//! Start-up: from `skiff-shim <container-dir>` to a running container and a serving shim, or
//! to one `{"error": ...}` line and nothing left behind.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use skiff_runtime::spec::Bundle;
use skiff_runtime::{CreateOptions, Runtime};

use crate::error::{Result, ShimError};
use crate::exec::Finished;
use crate::proto::{ErrorReply, PidReply, ShimConfig, CONFIG_FILE};
use crate::shim::Shim;
use crate::stdio::{self, ProcIo};
use crate::sys;

/// The process's entry point: `skiff-shim <container-dir>`. Returns the exit code.
///
/// On entry 0 is /dev/null, 1 the daemon's pipe for the start-up line and 2 a file for the
/// shim's diagnostics (or /dev/null); everything else inherited is closed.
pub fn main() -> i32 {
    let _ = sys::close_inherited();
    let Ok(report) = sys::dup_cloexec(std::io::stdout()) else {
        return 2;
    };
    let mut report = File::from(report);
    let diag = sys::is_regular_file(std::io::stderr())
        .then(|| sys::dup_cloexec(std::io::stderr()).ok().map(File::from))
        .flatten();
    let mut args = std::env::args_os().skip(1);
    let dir = match (args.next(), args.next()) {
        (Some(d), None) => PathBuf::from(d),
        _ => {
            let _ = reply_line(
                &mut report,
                &ErrorReply {
                    error: ShimError::Usage.to_string(),
                },
            );
            return 2;
        }
    };
    match start(&dir, diag) {
        Ok(shim) => {
            let _ = reply_line(&mut report, &PidReply { pid: shim.pid });
            drop(report);
            sys::trim_heap();
            sys::trim_stack();
            shim.run()
        }
        Err(e) => {
            let _ = reply_line(
                &mut report,
                &ErrorReply {
                    error: e.to_string(),
                },
            );
            1
        }
    }
}

fn reply_line<T: serde::Serialize>(f: &mut File, v: &T) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(v).map_err(std::io::Error::other)?;
    line.push(b'\n');
    f.write_all(&line)
}

/// Read `<dir>/shim.json`.
pub fn read_config(dir: &Path) -> Result<ShimConfig> {
    let path = dir.join(CONFIG_FILE);
    let bytes = std::fs::read(&path).map_err(|source| ShimError::ReadConfig {
        path: path.clone(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| ShimError::ParseConfig { path, source })
}

/// Removes the control socket unless disarmed.
struct SocketGuard(Option<PathBuf>);

impl Drop for SocketGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn start(dir: &Path, diag: Option<File>) -> Result<Shim> {
    let null = sys::open_null().map_err(ShimError::io("open", "/dev/null"))?;
    stdio::restore(&null);
    // Already a process-group leader (the daemon's process_group(0)) makes setsid fail with
    // EPERM: the shim then stays in its own group, out of the daemon's anyway.
    let _ = rustix::process::setsid();
    let sigfd = sys::signal_fd().map_err(ShimError::sys("block signals"))?;
    sys::default_dispositions();
    let cfg = read_config(dir)?;
    skiff_runtime::spec::validate_id(&cfg.id)?;
    match std::fs::remove_file(&cfg.exit_file) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(ShimError::Io {
                op: "remove stale exit record",
                path: cfg.exit_file.clone(),
                source: e,
            })
        }
        _ => {}
    }
    let mut guard = SocketGuard(Some(cfg.socket.clone()));
    let listener = bind(&cfg.socket)?;
    let log_cfg =
        skiff_logs::LogConfig::from_opts(&cfg.log.driver, &cfg.log.opts, cfg.log.path.clone())
            .map_err(ShimError::Log)?;
    let log = skiff_logs::Writer::open(&log_cfg).map_err(ShimError::Log)?;

    let bundle = Bundle::load(&cfg.bundle)?;
    let terminal = bundle
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    if terminal != cfg.tty {
        return Err(ShimError::Config(format!(
            "tty is {} but process.terminal in {} is {terminal}",
            cfg.tty,
            bundle.dir.join("config.json").display()
        )));
    }
    let rt = Runtime::new(&cfg.runtime_root);
    let opts = CreateOptions {
        bundle: cfg.bundle.clone(),
        ..CreateOptions::default()
    };
    let (pid, io) = if cfg.tty {
        let (ours, theirs) = UnixStream::pair().map_err(ShimError::sys("socketpair"))?;
        let (_, pid) = if cfg.start_on_request {
            rt.create_bundle(&cfg.id, bundle, &opts, Some(theirs))?
        } else {
            rt.run_bundle(&cfg.id, bundle, &opts, Some(theirs))?
        };
        // The init sent the master before it reported ready: it is queued already.
        let io = ours
            .set_nonblocking(true)
            .and_then(|()| sys::recv_master(&ours))
            .and_then(|m| ProcIo::tty(m, cfg.stdin))
            .map_err(|e| {
                let _ = rt.delete(&cfg.id, true);
                ShimError::Console(e)
            })?;
        (pid, io)
    } else {
        let (io, child) =
            ProcIo::pipes(cfg.stdin, true, true).map_err(ShimError::sys("create stdio pipes"))?;
        let r = child
            .install(&null)
            .map_err(ShimError::sys("set up container stdio"));
        let r = r.and_then(|()| {
            Ok(if cfg.start_on_request {
                rt.create_bundle(&cfg.id, bundle, &opts, None)?
            } else {
                rt.run_bundle(&cfg.id, bundle, &opts, None)?
            })
        });
        stdio::restore(&null);
        drop(child);
        (r?.1, io)
    };
    drop(rt);
    guard.0 = None;
    Ok(Shim {
        started: !cfg.start_on_request,
        cfg,
        pid: pid.as_raw(),
        io,
        log,
        listener,
        sigfd,
        null,
        diag,
        conns: Vec::new(),
        execs: Vec::new(),
        finished: Finished::default(),
        exited: None,
        drain_until: None,
        record: None,
        finish_until: None,
        heavy: false,
        log_failed: false,
    })
}

/// Bind the control socket (a stale one is removed first), mode 0600, non-blocking.
fn bind(path: &Path) -> Result<OwnedFd> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(ShimError::Io {
                op: "remove stale socket",
                path: path.to_path_buf(),
                source: e,
            })
        }
        _ => {}
    }
    let l = UnixListener::bind(path).map_err(ShimError::io("bind control socket", path))?;
    let fd = OwnedFd::from(l);
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(ShimError::io("chmod control socket", path))?;
    sys::set_nonblocking(fd.as_fd()).map_err(ShimError::sys("set socket non-blocking"))?;
    Ok(fd)
}
