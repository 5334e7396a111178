//! One Debian dockerd for the whole `cli_dockerd` test binary: started on first use under
//! a temp dir (`--bridge=none --iptables=false`, its own data-root, exec-root, pidfile and
//! socket; dockerd runs its own containerd under them), loaded with a busybox image made
//! here from the host's busybox-static (a `docker save` tarball built with the
//! images_support helpers, then `docker load`), and torn down when the test process exits
//! (every container removed, dockerd stopped, mounts under the temp dir detached, the empty
//! `docker` cgroups removed, the temp dir deleted).
//!
//! Drivers for the skiff CLI (`-H unix://<sock> --no-autostart`) and the real docker CLI on
//! the same socket, so a test can compare them. The tests of the verbs beyond `run` live in
//! `verbs.rs` (same binary, same dockerd).

#![allow(dead_code)]

mod verbs;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::images_support::{image, LayerBuilder};

pub const IMAGE: &str = "skiff-cli-test-busybox:1";

pub struct Dockerd {
    pub dir: PathBuf,
    pub sock: PathBuf,
}

static DOCKERD: OnceLock<Dockerd> = OnceLock::new();
static CHILD: Mutex<Option<Child>> = Mutex::new(None);

/// The shared dockerd (started, with the image loaded, on first call).
pub fn dockerd() -> &'static Dockerd {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the cli_dockerd tests need root (dockerd)"
    );
    DOCKERD.get_or_init(start)
}

fn start() -> Dockerd {
    let dir = tempfile::Builder::new()
        .prefix("skiff-cli-dockerd-")
        .tempdir()
        .expect("temp dir")
        .keep();
    let sock = dir.join("docker.sock");
    let log = std::fs::File::create(dir.join("dockerd.log")).expect("dockerd log");
    let child = Command::new("dockerd")
        .arg("--bridge=none")
        .arg("--iptables=false")
        .arg(format!("--data-root={}", dir.join("data").display()))
        .arg(format!("--exec-root={}", dir.join("exec").display()))
        .arg(format!("--pidfile={}", dir.join("docker.pid").display()))
        .arg("-H")
        .arg(format!("unix://{}", sock.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start dockerd: run scripts/install-deps.sh (Debian package docker.io)");
    *CHILD.lock().unwrap() = Some(child);
    // SAFETY: `cleanup` is an `extern "C" fn()` with no arguments, as atexit(3) requires; it
    // catches every panic so none unwinds across the C boundary.
    let rc = unsafe { libc::atexit(cleanup) };
    assert_eq!(rc, 0, "atexit");
    let d = Dockerd { dir, sock };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !d.docker(&["version"]).status.success() {
        assert!(
            Instant::now() < deadline,
            "dockerd did not come up: {}",
            std::fs::read_to_string(d.dir.join("dockerd.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    d.load_busybox();
    d
}

extern "C" fn cleanup() {
    let _ = std::panic::catch_unwind(|| {
        if let Some(d) = DOCKERD.get() {
            d.teardown();
        }
    });
}

impl Dockerd {
    fn teardown(&self) {
        let ids = self.docker(&["ps", "-aq"]);
        let ids = String::from_utf8_lossy(&ids.stdout).into_owned();
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            let _ = self.docker(&[&["rm", "-f", "-v"][..], &ids].concat());
        }
        if let Some(mut child) = CHILD.lock().ok().and_then(|mut c| c.take()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    _ if Instant::now() > deadline => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    _ => std::thread::sleep(Duration::from_millis(100)),
                }
            }
        }
        let root = self.dir.to_string_lossy().into_owned();
        if let Ok(mi) = std::fs::read_to_string("/proc/self/mountinfo") {
            let mut points: Vec<String> = mi
                .lines()
                .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
                .filter(|p| p.starts_with(&root))
                .collect();
            points.sort_by_key(|p| std::cmp::Reverse(p.len()));
            for p in points {
                let _ = nix::mount::umount2(p.as_str(), nix::mount::MntFlags::MNT_DETACH);
            }
        }
        for ctl in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = std::fs::remove_dir(ctl.path().join("docker"));
        }
        let _ = std::fs::remove_dir("/sys/fs/cgroup/docker");
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    fn host(&self) -> String {
        format!("unix://{}", self.sock.display())
    }

    /// The docker CLI on this dockerd.
    pub fn docker_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("docker");
        c.arg("-H").arg(self.host()).args(args).stdin(Stdio::null());
        c
    }

    /// The skiff CLI on this dockerd (never auto-starting a daemon).
    pub fn skiff_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_skiff"));
        c.arg("-H")
            .arg(self.host())
            .arg("--no-autostart")
            .args(args)
            .env_remove("SKIFF_HOST")
            .stdin(Stdio::null());
        c
    }

    pub fn docker(&self, args: &[&str]) -> Output {
        self.docker_cmd(args).output().expect("run the docker CLI")
    }

    pub fn skiff(&self, args: &[&str]) -> Output {
        self.skiff_cmd(args).output().expect("run skiff")
    }

    /// skiff, which must succeed; its stdout.
    pub fn skiff_ok(&self, args: &[&str]) -> String {
        ok(self.skiff(args), "skiff", args)
    }

    /// docker, which must succeed; its stdout.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        ok(self.docker(args), "docker", args)
    }

    /// Run with `input` on stdin.
    pub fn with_stdin(&self, mut cmd: Command, input: &[u8]) -> Output {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn");
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    }

    /// `docker save`-format tarball of a busybox image → `docker load`.
    fn load_busybox(&self) {
        let layer = LayerBuilder::new().busybox().finish();
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        let img = image(vec![layer.clone()], arch);
        let mut tar_bytes = Vec::new();
        flate2::read::GzDecoder::new(&layer.gz[..])
            .read_to_end(&mut tar_bytes)
            .expect("gunzip the layer");
        let cfg_name = format!("{}.json", hex(&img.config_digest));
        let layer_name = format!("{}/layer.tar", hex(&layer.diff_id));
        let manifest = serde_json::json!([{
            "Config": cfg_name, "RepoTags": [IMAGE], "Layers": [layer_name]}]);
        let mut b = tar::Builder::new(Vec::new());
        let mut add = |name: &str, data: &[u8]| {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, data).unwrap();
        };
        add(&cfg_name, &img.config);
        add(&layer_name, &tar_bytes);
        add("manifest.json", manifest.to_string().as_bytes());
        let archive = b.into_inner().unwrap();
        let out = self.with_stdin(self.docker_cmd(&["load"]), &archive);
        assert!(
            out.status.success(),
            "docker load: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Remove containers by name (ignoring errors).
    pub fn remove(&self, names: &[&str]) {
        let _ = self.docker(&[&["rm", "-f"][..], names].concat());
    }
}

fn hex(d: &str) -> &str {
    d.strip_prefix("sha256:").unwrap_or(d)
}

fn ok(o: Output, who: &str, args: &[&str]) -> String {
    assert!(
        o.status.success(),
        "{who} {args:?} failed ({}):\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Run `f` until it returns `Some` or `timeout` passes.
pub fn eventually<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A scratch directory for one test, removed on drop.
pub fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("skiff-cli-test-")
        .tempdir()
        .unwrap()
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}
