//! build-bench: `docker build` (the classic builder, `DOCKER_BUILDKIT=0`) against skiff's daemon
//! and Debian's dockerd side by side, same Dockerfile (4 RUN + 2 COPY over busybox), same
//! context, same client (the docker CLI; `--network none` for both):
//!
//! 1. cold: `build --no-cache` (every step executed), median of `--cold` runs;
//! 2. cached: an unchanged rebuild (all steps from the cache), median of `--runs` runs, through
//!    the docker CLI, and as one raw `POST /build` over the unix socket (no CLI start-up);
//!    skiff's own CLI too.
//!
//! ```text
//! cargo build --release -p skiff -p skiff-bench && target/release/build-bench [--runs 10] [--cold 3]
//! ```
//! Needs root and busybox-static; docker.io (dockerd) for the peer, else `not installed`.
//! Daemons, mounts and the temp dir are removed at the end (and on failure).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

const DOCKERFILE: &str = r#"FROM busybox
COPY app/ /app/
RUN mkdir -p /work && cp -r /app /work/ && echo built > /work/stamp
RUN ls -R /work > /work/listing && wc -l /work/listing
COPY data.txt /work/data.txt
RUN sha256sum /work/data.txt > /work/sum
RUN cat /work/stamp /work/sum
CMD ["cat", "/work/listing"]
"#;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn sh(c: &mut Command) -> Result<String> {
    let o = c
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("{c:?}"))?;
    if !o.status.success() {
        bail!("{c:?}: {}", String::from_utf8_lossy(&o.stderr));
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

struct Peer {
    name: &'static str,
    dir: PathBuf,
    sock: PathBuf,
    cfg: PathBuf,
    daemon: Option<Child>,
}

impl Peer {
    fn docker(&self, args: &[&str]) -> Command {
        let mut c = Command::new("docker");
        c.env("DOCKER_HOST", format!("unix://{}", self.sock.display()))
            .env("DOCKER_CONFIG", &self.cfg)
            .env("DOCKER_BUILDKIT", "0")
            .args(args);
        c
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(90);
        while Instant::now() < deadline {
            if let Some(Ok(Some(st))) = self.daemon.as_mut().map(|c| c.try_wait()) {
                bail!("{} daemon exited with {st}", self.name);
            }
            if UnixStream::connect(&self.sock).is_ok() && sh(&mut self.docker(&["version"])).is_ok()
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("{} daemon did not answer", self.name)
    }

    /// One timed `docker build` (output discarded); fails if the build fails.
    fn build(&self, ctx: &Path, extra: &[&str]) -> Result<f64> {
        let mut args = vec!["build", "-q", "--network", "none", "-t", "bench"];
        args.extend_from_slice(extra);
        let ctx = ctx.display().to_string();
        args.push(&ctx);
        let mut c = self.docker(&args);
        let t = Instant::now();
        sh(&mut c)?;
        Ok(ms(t.elapsed()))
    }

    /// One timed raw `POST /build` with the context tar; the stream must end in success.
    fn api_build(&self, tar_bytes: &[u8]) -> Result<f64> {
        let t = Instant::now();
        let mut s = UnixStream::connect(&self.sock)?;
        write!(
            s,
            "POST /v1.41/build?t=bench&q=1&networkmode=none HTTP/1.1\r\nHost: d\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            tar_bytes.len()
        )?;
        s.write_all(tar_bytes)?;
        let mut out = Vec::new();
        s.read_to_end(&mut out)?;
        let el = ms(t.elapsed());
        let text = String::from_utf8_lossy(&out);
        if text.contains("errorDetail") || !text.contains("sha256:") {
            bail!("{}: POST /build failed: {text}", self.name);
        }
        Ok(el)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            let kids = children_naming(&self.dir);
            // SAFETY: kill(2) on our own child, not yet reaped.
            unsafe { libc::kill(d.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline && matches!(d.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = d.kill();
            let _ = d.wait();
            for p in kids {
                // SAFETY: kill(2) on a process whose command line names our temp dir (the
                // containerd our dockerd started).
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
        }
        unmount_under(&self.dir);
    }
}

/// Processes whose command line names `dir` (the containerd a private dockerd starts).
fn children_naming(dir: &Path) -> Vec<i32> {
    let needle = dir.display().to_string();
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                .filter(|p| {
                    std::fs::read(format!("/proc/{p}/cmdline"))
                        .map(|c| String::from_utf8_lossy(&c).contains(&needle))
                        .unwrap_or(false)
                        && *p != std::process::id() as i32
                })
                .collect()
        })
        .unwrap_or_default()
}

fn unmount_under(dir: &Path) {
    let prefix = dir.display().to_string();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .filter(|m| m.starts_with(&prefix))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = Command::new("umount").arg("-l").arg(p).status();
    }
}

fn make_rootfs(rootfs: &Path) -> Result<()> {
    let bb = Path::new("/bin/busybox");
    if !bb.is_file() {
        bail!("/bin/busybox is missing: install busybox-static");
    }
    for d in ["bin", "etc", "proc", "sys", "dev", "root", "tmp"] {
        std::fs::create_dir_all(rootfs.join(d))?;
    }
    std::fs::copy(bb, rootfs.join("bin/busybox"))?;
    for applet in sh(Command::new(bb).arg("--list"))?.lines() {
        let dst = rootfs.join("bin").join(applet);
        if !applet.is_empty() && !dst.exists() {
            std::os::unix::fs::symlink("/bin/busybox", &dst)?;
        }
    }
    std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")?;
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\n")?;
    Ok(())
}

fn import(rootfs: &Path, cmd: &mut Command) -> Result<()> {
    let mut tar = Command::new("tar")
        .arg("-C")
        .arg(rootfs)
        .args(["-c", "."])
        .stdout(Stdio::piped())
        .spawn()?;
    let st = cmd
        .stdin(tar.stdout.take().context("tar stdout")?)
        .stdout(Stdio::null())
        .status()?;
    let _ = tar.wait();
    if !st.success() {
        bail!("import into {cmd:?} failed");
    }
    Ok(())
}

fn start(cmd: &mut Command, log: &Path) -> Result<Child> {
    let f = std::fs::File::create(log)?;
    Ok(cmd
        .stdin(Stdio::null())
        .stdout(f.try_clone()?)
        .stderr(f)
        .process_group(0)
        .spawn()?)
}

fn skiff_peer(tmp: &Path, skiff: &Path, rootfs: &Path) -> Result<Peer> {
    let dir = tmp.join("skiff");
    std::fs::create_dir_all(&dir)?;
    // Networking off, as dockerd's `--bridge=none` beside it: the benchmark's daemon runs in
    // the host's namespace and must not make a bridge or firewall table there.
    std::fs::write(dir.join("daemon.json"), r#"{"bridge": "none"}"#)?;
    let root = dir.join("root");
    let mut imp = Command::new(skiff);
    imp.arg("--data-root").arg(&root).args([
        "import",
        "--change",
        "CMD [\"sh\"]",
        "-",
        "busybox:latest",
    ]);
    import(rootfs, &mut imp)?;
    let mut c = Command::new(skiff);
    c.arg("--data-root")
        .arg(&root)
        .arg("--config-file")
        .arg(dir.join("daemon.json"))
        .arg("daemon")
        .arg("-H")
        .arg(format!("unix://{}", dir.join("d.sock").display()))
        .arg("--exec-root")
        .arg(dir.join("x"))
        .env("SKIFF_SHIM", skiff.with_file_name("skiff-shim"))
        .env_remove("SKIFF_LOG");
    let mut p = Peer {
        name: "skiff",
        sock: dir.join("d.sock"),
        cfg: tmp.join("docker-config"),
        daemon: Some(start(&mut c, &dir.join("daemon.log"))?),
        dir,
    };
    p.wait_ready()?;
    Ok(p)
}

fn docker_peer(tmp: &Path, dockerd: &Path, rootfs: &Path) -> Result<Peer> {
    let dir = tmp.join("docker");
    std::fs::create_dir_all(&dir)?;
    let mut c = Command::new(dockerd);
    c.args(["--bridge=none", "--iptables=false", "--ip6tables=false"])
        .arg(format!("--data-root={}", dir.join("data").display()))
        .arg(format!("--exec-root={}", dir.join("exec").display()))
        .arg(format!("--pidfile={}", dir.join("pid").display()))
        .arg(format!(
            "--host=unix://{}",
            dir.join("docker.sock").display()
        ));
    let mut p = Peer {
        name: "docker",
        sock: dir.join("docker.sock"),
        cfg: tmp.join("docker-config"),
        daemon: Some(start(&mut c, &dir.join("daemon.log"))?),
        dir,
    };
    p.wait_ready()?;
    let mut imp = p.docker(&["import", "--change", "CMD [\"sh\"]", "-", "busybox:latest"]);
    import(rootfs, &mut imp)?;
    Ok(p)
}

fn context(dir: &Path) -> Result<Vec<u8>> {
    std::fs::create_dir_all(dir.join("app/lib"))?;
    std::fs::write(dir.join("Dockerfile"), DOCKERFILE)?;
    for i in 0..20 {
        std::fs::write(
            dir.join(format!("app/lib/m{i}.txt")),
            format!("module {i}\n").repeat(200),
        )?;
    }
    std::fs::write(dir.join("app/main.txt"), "main\n")?;
    std::fs::write(dir.join("data.txt"), "x".repeat(256 * 1024))?;
    let mut b = tar::Builder::new(Vec::new());
    b.append_dir_all(".", dir)?;
    Ok(b.into_inner()?)
}

struct Figures {
    cold: f64,
    cached_cli: f64,
    cached_api: f64,
    cached_skiff_cli: Option<f64>,
}

fn measure(
    p: &Peer,
    ctx: &Path,
    tar_bytes: &[u8],
    runs: usize,
    cold: usize,
    skiff: Option<&Path>,
) -> Result<Figures> {
    let mut colds = Vec::new();
    for _ in 0..cold {
        colds.push(p.build(ctx, &["--no-cache"])?);
    }
    p.build(ctx, &[])?; // warm
    let mut cli = Vec::new();
    let mut api = Vec::new();
    let mut own = Vec::new();
    for _ in 0..runs {
        cli.push(p.build(ctx, &[])?);
        api.push(p.api_build(tar_bytes)?);
        if let Some(s) = skiff {
            let mut c = Command::new(s);
            c.arg("-H")
                .arg(format!("unix://{}", p.sock.display()))
                .args(["build", "-q", "--network", "none", "-t", "bench"])
                .arg(ctx);
            let t = Instant::now();
            sh(&mut c)?;
            own.push(ms(t.elapsed()));
        }
    }
    Ok(Figures {
        cold: median(&mut colds),
        cached_cli: median(&mut cli),
        cached_api: median(&mut api),
        cached_skiff_cli: (!own.is_empty()).then(|| median(&mut own)),
    })
}

fn main() -> Result<()> {
    let mut runs = 10;
    let mut cold = 3;
    let exe = std::env::current_exe()?;
    let mut skiff = exe.with_file_name("skiff");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--runs" => runs = val()?.parse()?,
            "--cold" => cold = val()?.parse()?,
            "--skiff" => skiff = val()?.into(),
            _ => bail!("usage: build-bench [--runs N] [--cold N] [--skiff PATH]"),
        }
    }
    if runs == 0 || cold == 0 {
        bail!("--runs and --cold must be at least 1");
    }
    let tmp = tempfile::Builder::new()
        .prefix("build-bench-")
        .tempdir_in("/tmp")?;
    let rootfs = tmp.path().join("rootfs");
    make_rootfs(&rootfs)?;
    let ctx = tmp.path().join("ctx");
    let tar_bytes = context(&ctx)?;
    let dockerd = ["/usr/sbin/dockerd", "/usr/bin/dockerd"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file());

    let s = {
        let p = skiff_peer(tmp.path(), &skiff, &rootfs)?;
        measure(&p, &ctx, &tar_bytes, runs, cold, Some(&skiff))?
    };
    let d = match &dockerd {
        Some(dd) => {
            let p = docker_peer(tmp.path(), dd, &rootfs)?;
            Some(measure(&p, &ctx, &tar_bytes, runs, cold, None)?)
        }
        None => None,
    };
    let fmt = |v: Option<f64>| v.map_or("not installed".to_string(), |v| format!("{v:.1} ms"));
    println!("build-bench: 4 RUN + 2 COPY over busybox, --network none, medians ({cold} cold, {runs} cached runs)");
    println!(
        "{:<34} {:>14} {:>14} {:>8}   target",
        "", "skiff", "docker", "ratio"
    );
    let row = |name: &str, a: f64, b: Option<f64>, target: &str| {
        let ratio = b.map_or("-".to_string(), |b| format!("{:.2}", a / b));
        println!(
            "{name:<34} {:>14} {:>14} {ratio:>8}   {target}",
            format!("{a:.1} ms"),
            fmt(b)
        );
    };
    row(
        "cold build (docker CLI)",
        s.cold,
        d.as_ref().map(|d| d.cold),
        "ratio <= 0.33",
    );
    row(
        "cached rebuild (docker CLI)",
        s.cached_cli,
        d.as_ref().map(|d| d.cached_cli),
        "",
    );
    row(
        "cached rebuild (POST /build)",
        s.cached_api,
        d.as_ref().map(|d| d.cached_api),
        "skiff <= 20 ms",
    );
    if let Some(own) = s.cached_skiff_cli {
        println!(
            "{:<34} {:>14} {:>14} {:>8}",
            "cached rebuild (skiff CLI)",
            format!("{own:.1} ms"),
            "-",
            "-"
        );
    }
    if dockerd.is_none() {
        println!("docker: not installed (apt-get install docker.io)");
    }
    Ok(())
}
