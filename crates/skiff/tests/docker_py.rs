//! docker-py (the Python SDK, >= 7) against the skiff daemon: each script in `tests/py/`
//! drives one area and exits non-zero with a message on the first mismatch. Needs root and
//! python3 with the `docker` package (Debian: python3-docker); a missing package fails the
//! test with that message rather than skipping it.

mod daemon_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use daemon_support::{stderr, stdout, tail, Daemon};

fn py_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py")
}

fn require_docker_py() {
    let o = Command::new("python3")
        .args(["-c", "import docker; print(docker.__version__)"])
        .output()
        .expect("python3 is needed for the docker-py tests");
    assert!(
        o.status.success(),
        "`import docker` failed: install python3-docker (docker-py >= 7): {}",
        stderr(&o)
    );
    let v = stdout(&o);
    let major: u32 = v
        .split('.')
        .next()
        .unwrap_or("0")
        .trim()
        .parse()
        .unwrap_or(0);
    assert!(
        major >= 7,
        "docker-py {v} is too old: install python3-docker >= 7"
    );
}

/// Runs `tests/py/<script>` against `d` (with a timeout); panics with its output on failure.
fn run_py(d: &Daemon, script: &str) {
    require_docker_py();
    let mut child = Command::new("python3")
        .arg(py_dir().join(script))
        .arg(d.host())
        .current_dir(py_dir())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if rx.recv_timeout(Duration::from_secs(180)).is_err() {
            // SAFETY: kill(2) on the python process we spawned; at worst it has exited.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    });
    let _ = child.stdin.take();
    let out = child.wait_with_output().unwrap();
    let _ = tx.send(());
    assert!(
        out.status.success() && stdout(&out).trim_end().ends_with("ok"),
        "{script} failed ({:?}):\n{}{}\n--- daemon log tail:\n{}",
        out.status,
        stdout(&out),
        stderr(&out),
        tail(&d.log(), 30)
    );
}

#[test]
fn docker_py_is_installed() {
    require_docker_py();
}

#[test]
fn docker_py_containers() {
    let d = Daemon::start();
    run_py(&d, "containers.py");
}

#[test]
fn docker_py_attach_socket() {
    let d = Daemon::start();
    run_py(&d, "attach.py");
}

#[test]
fn docker_py_images_and_events() {
    let d = Daemon::start();
    run_py(&d, "images_events.py");
}

#[test]
fn docker_py_low_level_create_and_inspect() {
    let d = Daemon::start();
    run_py(&d, "lowlevel.py");
}

#[test]
fn docker_py_exec() {
    let d = Daemon::start();
    run_py(&d, "exec.py");
}

#[test]
fn docker_py_exec_fast_output() {
    let d = Daemon::start();
    run_py(&d, "exec_fast.py");
}

#[test]
fn docker_py_attach_logs() {
    let d = Daemon::start();
    run_py(&d, "attach_logs.py");
}

#[test]
fn docker_py_healthcheck_with_null_fields() {
    let d = Daemon::start();
    run_py(&d, "healthcheck_nulls.py");
}

#[test]
fn docker_py_df() {
    let d = Daemon::start();
    run_py(&d, "df.py");
}

#[test]
fn docker_py_networks_and_volumes() {
    let d = Daemon::start();
    run_py(&d, "net_vol.py");
}

#[test]
fn docker_py_commit() {
    let d = Daemon::start();
    run_py(&d, "commit.py");
}
