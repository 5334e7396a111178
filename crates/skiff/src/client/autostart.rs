//! Starting the daemon on demand: when the default socket does not answer (and neither `-H`
//! nor `SKIFF_HOST` chose another daemon, nor `--no-autostart`/`SKIFF_NO_AUTOSTART=1` said
//! no), the CLI starts `skiff daemon` itself, detached in its own session with its output in
//! a log file beside the socket, and waits until `/_ping` answers.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::ClientError;

/// How long the daemon gets to answer `/_ping` after it was started.
pub const READY_TIMEOUT: Duration = Duration::from_secs(5);

/// The daemon's log when the CLI started it.
pub fn log_path(socket: &Path) -> PathBuf {
    socket
        .parent()
        .unwrap_or(Path::new("/run/skiff"))
        .join("skiff-daemon.log")
}

/// Start `skiff daemon` (this executable, with `daemon_args` as global flags before the
/// verb) detached, unless `ping` succeeds once the start lock is held (another CLI started
/// it meanwhile); then wait up to [`READY_TIMEOUT`] for `ping`.
pub fn autostart_daemon(
    socket: &Path,
    daemon_args: &[OsString],
    ping: impl Fn() -> bool,
) -> Result<(), ClientError> {
    let fail = |what: String| ClientError::Autostart(what);
    let dir = socket.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir).map_err(|e| fail(format!("create {}: {e}", dir.display())))?;
    // One starter at a time: concurrent CLIs wait here, then find the daemon up.
    let lock_path = dir.join("autostart.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| fail(format!("open {}: {e}", lock_path.display())))?;
    let _lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| fail(format!("lock {}: {e}", lock_path.display())))?;
    if ping() {
        return Ok(());
    }
    let exe = std::env::current_exe().map_err(|e| fail(format!("find the skiff binary: {e}")))?;
    let log = log_path(socket);
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(|e| fail(format!("open {}: {e}", log.display())))?;
    let err = out
        .try_clone()
        .map_err(|e| fail(format!("open {}: {e}", log.display())))?;
    let mut cmd = Command::new(&exe);
    cmd.args(daemon_args)
        .arg("daemon")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .current_dir("/");
    // SAFETY: the closure runs in the forked child before exec and only calls setsid(2),
    // which is async-signal-safe; it allocates nothing and takes no locks.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid()
                .map(|_| ())
                .map_err(std::io::Error::from)
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| fail(format!("run {} daemon: {e}", exe.display())))?;
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if ping() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(fail(format!(
                "skiff daemon exited ({status}) before it answered; see {}: {}",
                log.display(),
                log_tail(&log)
            )));
        }
        if Instant::now() >= deadline {
            return Err(fail(format!(
                "skiff daemon (pid {}) did not answer on {} within {}s; see {}",
                child.id(),
                socket.display(),
                READY_TIMEOUT.as_secs(),
                log.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The last lines of the daemon log, for the error message.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(3).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lives_beside_the_socket() {
        assert_eq!(
            log_path(Path::new("/run/skiff/skiff.sock")),
            Path::new("/run/skiff/skiff-daemon.log")
        );
    }

    #[test]
    fn a_daemon_that_answers_meanwhile_is_not_started_twice() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("s.sock");
        // ping answers at once: nothing is spawned (the log file is never created).
        autostart_daemon(&sock, &[], || true).unwrap();
        assert!(!log_path(&sock).exists());
        assert!(dir.path().join("autostart.lock").exists());
    }
}
