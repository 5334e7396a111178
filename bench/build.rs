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

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use common::{
    in_tempdir, make_rootfs, median, ms, sh, sibling, skiff_import, start_docker, start_skiff,
    which, Peer, SkiffDaemon,
};

const DOCKERFILE: &str = r#"FROM busybox
COPY app/ /app/
RUN mkdir -p /work && cp -r /app /work/ && echo built > /work/stamp
RUN ls -R /work > /work/listing && wc -l /work/listing
COPY data.txt /work/data.txt
RUN sha256sum /work/data.txt > /work/sum
RUN cat /work/stamp /work/sum
CMD ["cat", "/work/listing"]
"#;

/// The docker CLI pointed at `p`, with the classic builder.
fn docker(p: &Peer, args: &[&str]) -> Command {
    let mut c = p.cmd(args);
    c.env("DOCKER_BUILDKIT", "0");
    c
}

/// One timed `docker build` (output discarded); fails if the build fails.
fn build(p: &Peer, ctx: &Path, extra: &[&str]) -> Result<f64> {
    let mut args = vec!["build", "-q", "--network", "none", "-t", "bench"];
    args.extend_from_slice(extra);
    let ctx = ctx.display().to_string();
    args.push(&ctx);
    let mut c = docker(p, &args);
    let t = Instant::now();
    sh(&mut c)?;
    Ok(ms(t.elapsed()))
}

/// One timed raw `POST /build` with the context tar; the stream must end in success.
fn api_build(p: &Peer, tar_bytes: &[u8]) -> Result<f64> {
    let t = Instant::now();
    let mut s = UnixStream::connect(&p.sock)?;
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
        bail!("{}: POST /build failed: {text}", p.kind.name());
    }
    Ok(el)
}

/// skiff's daemon with busybox imported. Networking off, as dockerd's `--bridge=none` beside
/// it: the benchmark's daemon runs in the host's namespace and must not make a bridge or
/// firewall table there.
fn skiff_peer(tmp: &Path, skiff: &Path, rootfs: &Path) -> Result<Peer> {
    std::fs::create_dir_all(tmp.join("skiff"))?;
    skiff_import(skiff, &tmp.join("skiff/root"), rootfs, None)?;
    start_skiff(
        tmp,
        SkiffDaemon {
            cmd: Command::new(skiff),
            skiff,
            shim: &skiff.with_file_name("skiff-shim"),
            log: None,
            config: r#"{"bridge": "none"}"#,
        },
    )
}

/// dockerd (no bridge, no iptables) with busybox imported.
fn docker_peer(tmp: &Path, dockerd: &Path, rootfs: &Path) -> Result<Peer> {
    let p = start_docker(tmp, dockerd, &[])?;
    p.import_rootfs(rootfs)?;
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
        colds.push(build(p, ctx, &["--no-cache"])?);
    }
    build(p, ctx, &[])?; // warm
    let mut cli = Vec::new();
    let mut api = Vec::new();
    let mut own = Vec::new();
    for _ in 0..runs {
        cli.push(build(p, ctx, &[])?);
        api.push(api_build(p, tar_bytes)?);
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
        cold: median(&colds).context("no cold build")?,
        cached_cli: median(&cli).context("no cached build")?,
        cached_api: median(&api).context("no cached build")?,
        cached_skiff_cli: median(&own),
    })
}

fn main() -> Result<()> {
    let mut runs = 10;
    let mut cold = 3;
    let mut skiff = sibling("skiff");
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
    let dockerd = which("dockerd");
    let (s, d) = in_tempdir("build-bench-", false, "daemons", |tmp| {
        let rootfs = tmp.join("rootfs");
        make_rootfs(&rootfs)?;
        let ctx = tmp.join("ctx");
        let tar_bytes = context(&ctx)?;
        let s = {
            let p = skiff_peer(tmp, &skiff, &rootfs)?;
            measure(&p, &ctx, &tar_bytes, runs, cold, Some(&skiff))?
        };
        let d = match &dockerd {
            Some(dd) => {
                let p = docker_peer(tmp, dd, &rootfs)?;
                Some(measure(&p, &ctx, &tar_bytes, runs, cold, None)?)
            }
            None => None,
        };
        Ok((s, d))
    })?;
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
