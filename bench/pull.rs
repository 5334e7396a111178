//! pull: cold pull + unpack of a ~150 MB, 5-layer image from a local docker-registry,
//! `skiff pull` side by side with `docker pull` (a private dockerd started here), runs
//! interleaved in the same process so machine noise hits both alike.
//!
//! ```text
//! cargo build --release -p skiff -p skiff-bench && target/release/pull [--runs 3]
//!     [--skiff PATH] [--peers skiff,docker] [--serve]
//! ```
//! Needs root, Debian's docker-registry and skopeo; docker (dockerd + docker CLI) optional.
//! `--serve` builds and pushes the image, prints its name and keeps the registry up.
//! The image is built here (busybox-static + generated files; nothing downloaded).

mod common;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use flate2::write::GzEncoder;
use sha2::{Digest as _, Sha256};

use common::{find_tool, median_mean, sh, start_docker, start_registry, which};

struct Opts {
    runs: usize,
    skiff: Option<PathBuf>,
    peers: Vec<String>,
    /// Build and push the image, print its name, then keep the registry up until killed
    /// (for profiling one side by hand).
    serve: bool,
}

fn usage() -> ! {
    eprintln!("usage: pull [--runs N] [--skiff PATH] [--peers skiff,docker] [--serve]");
    std::process::exit(2)
}

fn parse_opts() -> Result<Opts> {
    let mut o = Opts {
        runs: 3,
        skiff: None,
        peers: vec!["skiff".into(), "docker".into()],
        serve: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--runs" => o.runs = val().parse().context("--runs")?,
            "--skiff" => o.skiff = Some(PathBuf::from(val())),
            "--peers" => o.peers = val().split(',').map(|s| s.trim().to_string()).collect(),
            "--serve" => o.serve = true,
            "-h" | "--help" => usage(),
            other => bail!("unknown argument {other:?}"),
        }
    }
    if o.runs == 0 {
        bail!("--runs must be at least 1");
    }
    Ok(o)
}

fn sha256(b: &[u8]) -> String {
    let d = Sha256::digest(b);
    let mut s = String::from("sha256:");
    for x in d.iter() {
        s.push_str(&format!("{x:02x}"));
    }
    s
}

/// Incompressible bytes (xorshift64*).
fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        v.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    v.truncate(len);
    v
}

struct Layer {
    gz: Vec<u8>,
    digest: String,
    diff_id: String,
}

fn layer(files: &mut dyn FnMut(&mut tar::Builder<Vec<u8>>) -> Result<()>) -> Result<Layer> {
    let mut b = tar::Builder::new(Vec::new());
    files(&mut b)?;
    let tar = b.into_inner()?;
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar)?;
    let gz = gz.finish()?;
    Ok(Layer {
        digest: sha256(&gz),
        diff_id: sha256(&tar),
        gz,
    })
}

fn add(b: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32, data: &[u8]) -> Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(mode);
    h.set_mtime(1_700_000_000);
    h.set_size(data.len() as u64);
    b.append_data(&mut h, path, data)?;
    Ok(())
}

fn small_files(b: &mut tar::Builder<Vec<u8>>, dir: &str, n: usize) -> Result<()> {
    for i in 0..n {
        let text = format!("line {i} of a small compressible file in {dir}\n").repeat(40 + i % 60);
        add(
            b,
            &format!("{dir}/d{}/f{i}.txt", i % 50),
            0o644,
            text.as_bytes(),
        )?;
    }
    Ok(())
}

/// The 5 layers: busybox + 2000 small files; 3000 small files; 60 MB random; 2 x 25 MB
/// random; 35 MB random + 1000 small files.
fn build_image(layout: &Path) -> Result<u64> {
    let mb = 1 << 20;
    let bb = fs::read("/bin/busybox").context("/bin/busybox (busybox-static)")?;
    let layers = vec![
        layer(&mut |b| {
            add(b, "bin/busybox", 0o755, &bb)?;
            small_files(b, "usr/share/a", 2000)
        })?,
        layer(&mut |b| small_files(b, "usr/share/b", 3000))?,
        layer(&mut |b| add(b, "data/big1.bin", 0o644, &random_bytes(60 * mb, 1)))?,
        layer(&mut |b| {
            add(b, "data/big2.bin", 0o644, &random_bytes(25 * mb, 2))?;
            add(b, "data/big3.bin", 0o644, &random_bytes(25 * mb, 3))
        })?,
        layer(&mut |b| {
            add(b, "data/big4.bin", 0o644, &random_bytes(35 * mb, 4))?;
            small_files(b, "usr/share/c", 1000)
        })?,
    ];
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["/bin/busybox", "sh"]},
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| &l.diff_id).collect::<Vec<_>>()},
    }))?;
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(&config), "size": config.len()},
        "layers": layers.iter().map(|l| serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": l.digest, "size": l.gz.len()})).collect::<Vec<_>>(),
    }))?;
    let blobs = layout.join("blobs/sha256");
    fs::create_dir_all(&blobs)?;
    let put = |d: &str, b: &[u8]| fs::write(blobs.join(d.trim_start_matches("sha256:")), b);
    for l in &layers {
        put(&l.digest, &l.gz)?;
    }
    put(&sha256(&config), &config)?;
    put(&sha256(&manifest), &manifest)?;
    fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha256(&manifest),
            "size": manifest.len(), "annotations": {"org.opencontainers.image.ref.name": "1"}}]}))?,
    )?;
    Ok(layers.iter().map(|l| l.gz.len() as u64).sum())
}

fn main() -> Result<()> {
    let o = parse_opts()?;
    for tool in ["docker-registry", "skopeo"] {
        if which(tool).is_none() {
            bail!("{tool} is required (Debian packages docker-registry, skopeo)");
        }
    }
    let tmp = tempfile::Builder::new()
        .prefix("skiff-bench-pull-")
        .tempdir_in("/tmp")?;
    let t = Instant::now();
    let layout = tmp.path().join("layout");
    let size = build_image(&layout)?;
    let (_registry, port) = start_registry(tmp.path())?;
    let name = format!("127.0.0.1:{port}/bench/big:1");
    sh(Command::new("skopeo")
        .args([
            "--insecure-policy",
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
        ])
        .arg(format!("oci:{}:1", layout.display()))
        .arg(format!("docker://{name}")))?;
    eprintln!(
        "image: 5 layers, {:.1} MB compressed, built and pushed in {:.1}s",
        size as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    if o.serve {
        println!("{name}");
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }

    let skiff = if o.peers.iter().any(|p| p == "skiff") {
        find_tool(o.skiff.as_deref(), "skiff")
    } else {
        None
    };
    let docker = if o.peers.iter().any(|p| p == "docker") && which("docker").is_some() {
        match which("dockerd") {
            // Its own containerd namespaces: nothing shared with another containerd's.
            Some(dockerd) => Some(start_docker(
                tmp.path(),
                &dockerd,
                &[
                    "--containerd-namespace=skiffbench",
                    "--containerd-plugins-namespace=skiffbench-plugins",
                ],
            )?),
            None => None,
        }
    } else {
        None
    };
    let daemon_json = tmp.path().join("daemon.json");
    fs::write(&daemon_json, "{}")?;
    let mut times: Vec<(&str, Vec<f64>)> = vec![("skiff", vec![]), ("docker", vec![])];
    for i in 0..o.runs {
        if let Some(bin) = &skiff {
            let root = tmp.path().join(format!("skiff-root-{i}"));
            let t = Instant::now();
            sh(Command::new(bin)
                .arg("--config-file")
                .arg(&daemon_json)
                .arg("--data-root")
                .arg(&root)
                .args(["pull", "-q", &name]))?;
            let secs = t.elapsed().as_secs_f64();
            times[0].1.push(secs);
            eprintln!("run {i}: skiff {secs:.3}s");
            fs::remove_dir_all(&root)?;
        }
        if let Some(d) = &docker {
            let t = Instant::now();
            d.ok(&["pull", "-q", &name])?;
            let secs = t.elapsed().as_secs_f64();
            times[1].1.push(secs);
            eprintln!("run {i}: docker {secs:.3}s");
            d.ok(&["rmi", &name])?;
            d.ok(&["image", "prune", "-af"])?;
        }
    }
    println!(
        "pull: cold pull + unpack of a 5-layer {:.0} MB image from docker-registry on 127.0.0.1, {} runs, interleaved",
        size as f64 / 1e6,
        o.runs
    );
    println!(
        "{:<8} {:>10} {:>10} {:>10}  binary",
        "name", "median s", "min s", "MB/s"
    );
    let mut med = [None, None];
    for (k, (peer, v)) in times.iter_mut().enumerate() {
        let installed = if k == 0 {
            skiff.as_ref().map(|p| p.display().to_string())
        } else {
            docker
                .as_ref()
                .map(|_| which("dockerd").unwrap().display().to_string())
        };
        match installed {
            Some(bin) if !v.is_empty() => {
                v.sort_by(|a, b| a.total_cmp(b));
                let m = median_mean(v).unwrap_or(f64::NAN);
                med[k] = Some(m);
                println!(
                    "{:<8} {:>10.3} {:>10.3} {:>10.1}  {bin}",
                    peer,
                    m,
                    v[0],
                    size as f64 / 1e6 / m
                );
            }
            _ => println!(
                "{:<8} {:>10} {:>10} {:>10}  not installed",
                peer, "-", "-", "-"
            ),
        }
    }
    match med {
        [Some(s), Some(d)] => println!("skiff/docker (median): {:.2}x (target <= 0.33x)", s / d),
        _ => println!("skiff/docker (median): n/a (needs both)"),
    }
    // Stops dockerd and unmounts what it left under its dir.
    drop(docker);
    Ok(())
}
