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

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use common::{
    in_tempdir, median, ms, ppid, pss_kib, sh, sibling, start_docker, start_registry, which,
};

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
    in_tempdir("skiff-bench-run-", false, "daemons", |tmp| bench(tmp, runs))
}

fn bench(tmp: &Path, runs: usize) -> Result<()> {
    let skiff = sibling("skiff");
    let layout = make_image(tmp)?;
    let (_registry, port) = start_registry(tmp)?;
    let image = format!("127.0.0.1:{port}/bench/busybox:1");
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
    let dockerd = match which("dockerd") {
        Some(d) => Some(start_docker(tmp, &d, &[])?),
        None => None,
    };
    if let Some(d) = &dockerd {
        d.ok(&["pull", "-q", &image])?;
    }

    // Warm-up, then interleaved timed runs.
    let mut t_skiff = Vec::new();
    let mut t_docker = Vec::new();
    for i in 0..runs + 2 {
        let t = Instant::now();
        sh(&mut skiff_cmd(&["run-local", "--rm", &image, "true"]))?;
        let s = ms(t.elapsed());
        if let Some(dk) = &dockerd {
            let t = Instant::now();
            dk.ok(&["run", "--rm", "--network", "none", &image, "true"])?;
            let d = ms(t.elapsed());
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
    if let Some(dk) = &dockerd {
        let id = dk.ok(&["run", "-d", "--network", "none", &image, "sleep", "30"])?;
        let id = id.trim().to_string();
        std::thread::sleep(Duration::from_millis(1000));
        let pid = dk.ok(&["inspect", "-f", "{{.State.Pid}}", &id])?;
        docker_pss = pid.trim().parse().ok().and_then(ppid).and_then(pss_kib);
        let _ = dk.ok(&["rm", "-f", &id]);
    }

    println!(
        "container start from an image: `run --rm IMAGE true`, busybox, {runs} runs interleaved"
    );
    println!("{:<28} {:>10} {:>10}", "", "median ms", "min ms");
    let min = |v: &[f64]| v.iter().cloned().fold(f64::INFINITY, f64::min);
    let ms = median(&t_skiff).unwrap_or(f64::NAN);
    println!("{:<28} {:>10.1} {:>10.1}", "skiff run", ms, min(&t_skiff));
    if t_docker.is_empty() {
        println!("{:<28} {:>10}", "docker run (dockerd)", "not installed");
    } else {
        let md = median(&t_docker).unwrap_or(f64::NAN);
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
