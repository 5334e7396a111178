//! skiff's runtime driven by a real peer: Debian's dockerd (with its containerd and
//! containerd-shim-runc-v2) started with `--add-runtime skiff=<skiff-runtime link>`, and the
//! real `docker` CLI. The shim calls skiff exactly as it calls runc (create/start/state/kill/
//! delete/exec/pause/resume/update with `--log-format json`), so this checks runc
//! compatibility with a client nobody here wrote.
//!
//! dockerd runs with `--bridge=none --iptables=false` and containers with `--network none`:
//! no network traffic, no host firewall change. Everything lives under a temp dir and is
//! removed afterwards (dockerd stopped, its mounts gone, its `docker` cgroups removed).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Dockerd {
    child: Child,
    dir: tempfile::TempDir,
    sock: PathBuf,
}

impl Dockerd {
    fn start() -> Dockerd {
        let dir = tempfile::Builder::new()
            .prefix("skiff-dockerd-")
            .tempdir()
            .unwrap();
        // dockerd wants the runtime as one executable: a link named skiff-runtime makes the
        // skiff binary behave as the runtime CLI.
        let link = dir.path().join("skiff-runtime");
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_skiff"), &link).unwrap();
        let sock = dir.path().join("docker.sock");
        let log = std::fs::File::create(dir.path().join("dockerd.log")).unwrap();
        let child = Command::new("dockerd")
            .args(["--bridge=none", "--iptables=false", "--ip6tables=false"])
            .arg(format!("--add-runtime=skiff={}", link.display()))
            .arg(format!("--data-root={}", dir.path().join("data").display()))
            .arg(format!("--exec-root={}", dir.path().join("exec").display()))
            .arg(format!(
                "--pidfile={}",
                dir.path().join("docker.pid").display()
            ))
            .arg(format!("--host=unix://{}", sock.display()))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start dockerd: run scripts/install-deps.sh (Debian package docker.io)");
        let d = Dockerd { child, dir, sock };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !d.docker(&["version"]).status.success() {
            assert!(
                Instant::now() < deadline,
                "dockerd did not come up: {}",
                std::fs::read_to_string(d.dir.path().join("dockerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        d
    }

    fn docker(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker")
            .env("DOCKER_HOST", format!("unix://{}", self.sock.display()))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run docker CLI")
    }

    /// Run docker, require success, return stdout.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            o.status.success(),
            "docker {args:?} failed ({}): {}{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let _ = self.docker(&["rm", "-f", "-v", "sk1", "sk2", "sk3"]);
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => break,
                _ if Instant::now() > deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
        // Mounts dockerd may have left under its roots.
        let root = self.dir.path().to_string_lossy().into_owned();
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
        // The (now empty) `docker` parent cgroups.
        for root in support::CGROUP_ROOTS {
            let _ = std::fs::remove_dir(Path::new(root).join("docker"));
        }
    }
}

fn import_busybox(d: &Dockerd) {
    let rootfs = d.dir.path().join("rootfs");
    support::make_rootfs(&rootfs);
    let mut tar = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .args(["-cf", "-", "."])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let imp = Command::new("docker")
        .env("DOCKER_HOST", format!("unix://{}", d.sock.display()))
        .args(["import", "-", "skiff-test-busybox:1"])
        .stdin(tar.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(
        tar.wait().unwrap().success(),
        "tar of the busybox rootfs failed"
    );
    assert!(
        imp.status.success(),
        "docker import: {}",
        String::from_utf8_lossy(&imp.stderr)
    );
}

#[test]
fn dockerd_drives_skiff_as_its_runtime() {
    if !nix::unistd::geteuid().is_root() {
        panic!("this test needs root");
    }
    let d = Dockerd::start();
    import_busybox(&d);
    let img = "skiff-test-busybox:1";
    let run = ["run", "--network", "none", "--runtime", "skiff"];

    // Foreground run: output, exit code, Docker's default capabilities and seccomp profile.
    let out = d.ok(&[
        &run[..],
        &[
            "--rm",
            img,
            "sh",
            "-c",
            "echo pid=$$; grep -E '^(CapEff|Seccomp):' /proc/self/status",
        ],
    ]
    .concat());
    assert!(out.contains("pid=1"), "{out}");
    assert!(
        out.contains("CapEff:\t00000000a80425fb"),
        "docker's default capabilities: {out}"
    );
    assert!(
        out.contains("Seccomp:\t2"),
        "docker's seccomp profile applied: {out}"
    );
    let o = d.docker(&[&run[..], &["--rm", img, "sh", "-c", "exit 7"]].concat());
    assert_eq!(o.status.code(), Some(7), "exit code through dockerd");
    // Docker's profile denies unshare of a mount namespace without CAP_SYS_ADMIN.
    let o = d.docker(&[&run[..], &["--rm", img, "unshare", "-m", "true"]].concat());
    assert!(
        !o.status.success(),
        "unshare -m must be refused under docker's profile"
    );

    // A detached container with limits: exec, pause/unpause, update, top, stop, rm.
    d.ok(&[
        &run[..],
        &[
            "-d",
            "--name",
            "sk1",
            "-m",
            "64m",
            "--pids-limit",
            "40",
            img,
            "sleep",
            "300",
        ],
    ]
    .concat());
    let lim = d.ok(&[
        "exec",
        "sk1",
        "sh",
        "-c",
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max",
    ]);
    if support::cgroup_v1() {
        assert_eq!(
            lim.split_whitespace().collect::<Vec<_>>(),
            ["67108864", "40"]
        );
    }
    assert_eq!(
        d.docker(&["exec", "sk1", "sh", "-c", "exit 3"])
            .status
            .code(),
        Some(3)
    );
    d.ok(&["pause", "sk1"]);
    assert!(d
        .ok(&["inspect", "-f", "{{.State.Status}}", "sk1"])
        .contains("paused"));
    d.ok(&["unpause", "sk1"]);
    d.ok(&["update", "--memory", "128m", "--memory-swap", "256m", "sk1"]);
    if support::cgroup_v1() {
        let lim = d.ok(&[
            "exec",
            "sk1",
            "cat",
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
        ]);
        assert_eq!(lim.trim(), "134217728");
    }
    assert!(d.ok(&["top", "sk1"]).contains("sleep 300"));
    d.ok(&["stop", "-t", "1", "sk1"]);
    assert!(d
        .ok(&["inspect", "-f", "{{.State.Status}}", "sk1"])
        .contains("exited"));
    d.ok(&["rm", "sk1"]);

    // A terminal: the shim hands skiff a console socket and receives the pty master.
    let o = d.ok(&[
        &run[..],
        &["--rm", "-t", img, "sh", "-c", "tty; ls -l /dev/console"],
    ]
    .concat());
    assert!(o.contains("/dev/pts/0"), "tty inside: {o}");
    assert!(o.contains("136,"), "/dev/console is the pty: {o}");
}
