//! run-image: `skiff run --rm IMAGE true` against `docker run --rm --network none IMAGE true`
//! (Debian's dockerd with its containerd and runc), the same busybox image pulled by both from
//! a local registry, measured interleaved in one run; and the host memory an idle container
//! costs beyond its own process: skiff's foreground monitor vs docker's containerd-shim.
//!
//! ```text
//! cargo build --release -p skiff -p skiff-bench && target/release/run-image [--runs 20]
//! ```
//! Needs root, busybox-static, umoci, skopeo, docker-registry; docker.io for the peer (else it
//! is reported as "not installed"). dockerd runs with `--bridge=none --iptables=false` and
//! containers with `--network none`. Everything it starts is stopped and removed at the end.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

fn sh(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("run {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/local/bin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

fn skiff_path() -> PathBuf {
    let me = std::env::current_exe().unwrap_or_default();
    let sib = me.with_file_name("skiff");
    if sib.is_file() {
        sib
    } else {
        which("skiff").unwrap_or(sib)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(5099)
}

/// Kills and reaps a child on drop.
struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn make_image(dir: &Path) -> Result<PathBuf> {
    let layout = dir.join("oci");
    let bundle = dir.join("bundle");
    sh(Command::new("umoci")
        .args(["init", "--layout"])
        .arg(&layout))?;
    sh(Command::new("umoci")
        .args(["new", "--image"])
        .arg(format!("{}:1", layout.display())))?;
    sh(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:1", layout.display()))
        .arg(&bundle))?;
    let rootfs = bundle.join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin"))?;
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox"))
        .context("copy /bin/busybox (busybox-static)")?;
    for applet in sh(Command::new("/bin/busybox").arg("--list"))?.lines() {
        let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet));
    }
    sh(Command::new("umoci")
        .args(["repack", "--image"])
        .arg(format!("{}:1", layout.display()))
        .arg(&bundle))?;
    sh(Command::new("umoci")
        .args(["config", "--config.cmd", "sh", "--image"])
        .arg(format!("{}:1", layout.display())))?;
    Ok(layout)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// (PSS, private dirty) of a process, in KiB. Private dirty memory is what each further
/// container adds; clean file pages (the binary) are shared between all of them.
fn pss_kib(pid: u32) -> Option<(u64, u64)> {
    let t = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let field = |name: &str| -> Option<u64> {
        t.lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    Some((field("Pss:")?, field("Private_Dirty:")?))
}

fn mem(v: Option<(u64, u64)>) -> String {
    match v {
        Some((pss, dirty)) => format!(
            "PSS {:.2} MiB, private dirty {:.2} MiB",
            pss as f64 / 1024.0,
            dirty as f64 / 1024.0
        ),
        None => "not installed".into(),
    }
}

fn main() -> Result<()> {
    let mut runs = 20;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => runs = args.next().context("--runs N")?.parse()?,
            other => bail!("unknown argument {other:?} (usage: run-image [--runs N])"),
        }
    }
    let tmp = tempfile_dir()?;
    let result = bench(&tmp, runs);
    let _ = Command::new("umount")
        .arg("-R")
        .arg(tmp.join("docker"))
        .stderr(Stdio::null())
        .status();
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

fn tempfile_dir() -> Result<PathBuf> {
    let p = std::env::temp_dir().join(format!("skiff-bench-run-{}", std::process::id()));
    std::fs::create_dir_all(&p)?;
    Ok(p)
}

fn bench(tmp: &Path, runs: usize) -> Result<()> {
    let skiff = skiff_path();
    let layout = make_image(tmp)?;
    let port = free_port();
    let reg_dir = tmp.join("registry");
    std::fs::create_dir_all(&reg_dir)?;
    std::fs::write(
        reg_dir.join("config.yml"),
        format!("version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n", reg_dir.join("data").display()),
    )?;
    let _registry = Proc(
        Command::new("docker-registry")
            .arg("serve")
            .arg(reg_dir.join("config.yml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start docker-registry (Debian package docker-registry)")?,
    );
    let image = format!("127.0.0.1:{port}/bench/busybox:1");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("docker-registry did not start");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    sh(Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:1", layout.display()))
        .arg(format!("docker://{image}")))?;

    let data_root = tmp.join("skiff");
    let skiff_cmd = |args: &[&str]| {
        let mut c = Command::new(&skiff);
        c.arg("--data-root")
            .arg(&data_root)
            .arg("--config-file")
            .arg(tmp.join("none.json"))
            .args(args);
        c
    };
    sh(&mut skiff_cmd(&["pull", "-q", &image]))?;

    // The peer: our own dockerd, no bridge, no iptables.
    let docker_root = tmp.join("docker");
    let sock = docker_root.join("docker.sock");
    let dockerd = match which("dockerd") {
        Some(d) => {
            std::fs::create_dir_all(&docker_root)?;
            let child = Command::new(d)
                .args(["--bridge=none", "--iptables=false", "--ip6tables=false"])
                .arg(format!(
                    "--data-root={}",
                    docker_root.join("data").display()
                ))
                .arg(format!(
                    "--exec-root={}",
                    docker_root.join("exec").display()
                ))
                .arg(format!("--pidfile={}", docker_root.join("pid").display()))
                .arg(format!("--host=unix://{}", sock.display()))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?;
            Some(Proc(child))
        }
        None => None,
    };
    let docker = |args: &[&str]| {
        let mut c = Command::new("docker");
        c.env("DOCKER_HOST", format!("unix://{}", sock.display()))
            .args(args);
        c
    };
    if dockerd.is_some() {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !docker(&["version"])
            .output()
            .is_ok_and(|o| o.status.success())
        {
            if Instant::now() > deadline {
                bail!("dockerd did not start");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        sh(&mut docker(&["pull", "-q", &image]))?;
    }

    // Warm-up, then interleaved timed runs.
    let mut t_skiff = Vec::new();
    let mut t_docker = Vec::new();
    for i in 0..runs + 2 {
        let t = Instant::now();
        sh(&mut skiff_cmd(&["run-local", "--rm", &image, "true"]))?;
        let s = t.elapsed().as_secs_f64() * 1000.0;
        if dockerd.is_some() {
            let t = Instant::now();
            sh(&mut docker(&[
                "run",
                "--rm",
                "--network",
                "none",
                &image,
                "true",
            ]))?;
            let d = t.elapsed().as_secs_f64() * 1000.0;
            if i >= 2 {
                t_docker.push(d);
            }
        }
        if i >= 2 {
            t_skiff.push(s);
        }
    }

    // Idle memory: the process that stays on the host for each running container.
    let mut skiff_idle = skiff_cmd(&["run-local", "--rm", &image, "sleep", "30"])
        .stdout(Stdio::null())
        .spawn()?;
    std::thread::sleep(Duration::from_millis(1500));
    let skiff_pss = pss_kib(skiff_idle.id());
    let _ = Command::new("kill")
        .arg("-INT")
        .arg(skiff_idle.id().to_string())
        .status();
    let _ = skiff_idle.wait();
    let mut docker_pss = None;
    if dockerd.is_some() {
        let id = sh(&mut docker(&[
            "run",
            "-d",
            "--network",
            "none",
            &image,
            "sleep",
            "30",
        ]))?;
        let id = id.trim().to_string();
        std::thread::sleep(Duration::from_millis(1000));
        let pid = sh(&mut docker(&["inspect", "-f", "{{.State.Pid}}", &id]))?;
        let ppid = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()))
            .ok()
            .and_then(|s| {
                s[s.rfind(')')? + 2..]
                    .split(' ')
                    .nth(1)?
                    .parse::<u32>()
                    .ok()
            });
        docker_pss = ppid.and_then(pss_kib);
        let _ = docker(&["rm", "-f", &id]).output();
    }

    println!(
        "container start from an image: `run --rm IMAGE true`, busybox, {runs} runs interleaved"
    );
    println!("{:<28} {:>10} {:>10}", "", "median ms", "min ms");
    let min = |v: &[f64]| v.iter().cloned().fold(f64::INFINITY, f64::min);
    let ms = median(&mut t_skiff.clone());
    println!("{:<28} {:>10.1} {:>10.1}", "skiff run", ms, min(&t_skiff));
    if t_docker.is_empty() {
        println!("{:<28} {:>10}", "docker run (dockerd)", "not installed");
    } else {
        let md = median(&mut t_docker.clone());
        println!(
            "{:<28} {:>10.1} {:>10.1}",
            "docker run --network none",
            md,
            min(&t_docker)
        );
        println!("docker/skiff (median): {:.1}x faster", md / ms);
    }
    println!("idle container host overhead (the per-container monitor process):");
    println!("  skiff (foreground skiff process): {}", mem(skiff_pss));
    println!("  docker (containerd-shim-runc-v2): {}", mem(docker_pss));
    drop(dockerd);
    Ok(())
}
