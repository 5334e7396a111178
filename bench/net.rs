//! net-bench: skiff's bridge networking (issue 5), measured inside a network namespace of its
//! own, with Debian's dockerd as a reference where it can be one:
//!
//! 1. TCP throughput (1 GiB in 256 KiB writes, median of 3 runs): direct loopback without
//!    containers, through a published port (`-p 127.0.0.1:P:5201`, nftables DNAT) from the
//!    "host" side, and container to container over the bridge;
//! 2. connection rate (connect, send 1 byte, read 1 byte, close) on the same three paths;
//! 3. start latency of `docker run --rm --network bridge busybox true` against
//!    `--network none` (and the same as raw API calls): what the bridge adds to a start.
//!
//! ```text
//! cargo build --release -p skiff -p skiff-bench && target/release/net-bench
//! ```
//! The load generator is this binary: `--sink ADDR` serves (inside a container too: the
//! binary is bind-mounted read-only as /nb with the host's /usr, /lib64 and /usr/lib), and
//! the clients run in threads that `setns` into the namespace. skiff's daemon runs in
//! `skb-<pid>` (`ip netns add`), so every packet stays in that namespace and the host's
//! interfaces and firewall are untouched. dockerd runs with `--bridge=none
//! --iptables=false`: it has no bridge, so only its `--network none` start is measured.
//! Everything (containers, daemons, mounts, the namespace, the temp dir) is removed at the
//! end, on failure and on Ctrl-C too. See bench/README.md for the options.

mod common;

use std::fmt::Write as _;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use common::{
    check_stop, in_tempdir, install_signals, lat, make_rootfs, median, ms, run_api, sh, sibling,
    skiff_import, start_docker, start_skiff, stats, which, Kind, Peer, Proc, SkiffDaemon,
};

// ---------------------------------------------------------------------------------------
// The load generator: a sink server and its clients (also run inside containers as /nb).

/// First byte of a connection: the rest is data to count, answered with the count (u64 LE)
/// once the client shuts its side down.
const MODE_SINK: u8 = b's';
/// First byte of a connection: answered with one byte, then closed.
const MODE_ECHO: u8 = b'e';
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// `--sink ADDR`: serves until killed. Echo connections are answered in the accept loop (no
/// thread per connection in the connection-rate figure); sink connections get a thread.
fn serve(addr: &str) -> Result<()> {
    let l = TcpListener::bind(addr).with_context(|| format!("bind {addr}"))?;
    for s in l.incoming() {
        let Ok(mut s) = s else { continue };
        let _ = s.set_read_timeout(Some(IO_TIMEOUT));
        let mut mode = [0u8; 1];
        if s.read_exact(&mut mode).is_err() {
            continue;
        }
        match mode[0] {
            MODE_ECHO => {
                let _ = s.write_all(&[MODE_ECHO]);
            }
            MODE_SINK => {
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 256 << 10];
                    let mut n = 0u64;
                    loop {
                        match s.read(&mut buf) {
                            Ok(0) => break,
                            Ok(k) => n += k as u64,
                            Err(_) => return,
                        }
                    }
                    let _ = s.write_all(&n.to_le_bytes());
                });
            }
            _ => {}
        }
    }
    Ok(())
}

/// One transfer of `bytes` in `write`-byte writes; MB/s (10^6 bytes) from connect until the
/// server's count of what it received (which must be all of it) arrives.
fn tput(addr: SocketAddr, bytes: u64, write: usize) -> Result<f64> {
    let buf = vec![0x5au8; write];
    let t = Instant::now();
    let mut s = TcpStream::connect(addr).with_context(|| format!("connect {addr}"))?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    s.write_all(&[MODE_SINK])?;
    let mut left = bytes;
    while left > 0 {
        let k = left.min(write as u64) as usize;
        s.write_all(&buf[..k])?;
        left -= k as u64;
    }
    s.shutdown(Shutdown::Write)?;
    let mut got = [0u8; 8];
    s.read_exact(&mut got)
        .with_context(|| format!("{addr}: the sink's count"))?;
    let secs = t.elapsed().as_secs_f64();
    let n = u64::from_le_bytes(got);
    if n != bytes {
        bail!("{addr}: the sink received {n} bytes of {bytes}");
    }
    Ok(bytes as f64 / 1e6 / secs)
}

/// One connection: connect, send a byte, read the answer, close.
fn echo_once(addr: SocketAddr) -> Result<()> {
    let mut s = TcpStream::connect(addr).with_context(|| format!("connect {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(&[MODE_ECHO])?;
    let mut b = [0u8; 1];
    s.read_exact(&mut b)
        .with_context(|| format!("{addr}: no answer"))?;
    if b[0] != MODE_ECHO {
        bail!("{addr}: answered {:?}", b[0]);
    }
    Ok(())
}

/// `n` connections one after the other; connections per second.
fn conn_rate(addr: SocketAddr, n: usize) -> Result<f64> {
    let t = Instant::now();
    for _ in 0..n {
        echo_once(addr)?;
    }
    Ok(n as f64 / t.elapsed().as_secs_f64())
}

/// The modes this binary has inside a container (or the namespace): `Some` when argv asked
/// for one (it has then run it).
fn child_mode() -> Option<Result<()>> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let addr = |s: &str| -> Result<SocketAddr> { s.parse().with_context(|| format!("addr {s}")) };
    let r = match a.first().map(String::as_str)? {
        "--sink" if a.len() == 2 => serve(&a[1]),
        "--client-tput" if a.len() == 4 => (|| {
            let v = tput(addr(&a[1])?, a[2].parse()?, a[3].parse()?)?;
            println!("{v:.1}");
            Ok(())
        })(),
        "--client-conns" if a.len() == 3 => (|| {
            let v = conn_rate(addr(&a[1])?, a[2].parse()?)?;
            println!("{v:.1}");
            Ok(())
        })(),
        _ => return None,
    };
    Some(r)
}

// ---------------------------------------------------------------------------------------
// The network namespace.

/// `ip netns add skb-<pid>` with `lo` up; deleted on drop.
struct NetNs {
    name: String,
}

impl NetNs {
    fn new() -> Result<NetNs> {
        let name = format!("skb-{}", std::process::id());
        sh(Command::new("ip").args(["netns", "add", &name]))?;
        let ns = NetNs { name };
        sh(Command::new("ip").args(["-n", &ns.name, "link", "set", "lo", "up"]))?;
        Ok(ns)
    }

    fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    /// `program` run in this namespace (nsenter: the network namespace only; it execs, so the
    /// child's pid is the program's).
    fn command(&self, program: &Path) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.path().display()))
            .arg("--")
            .arg(program);
        c
    }

    /// `f` on a fresh thread that has joined this namespace (setns affects the calling thread
    /// only; threads it starts inherit it).
    fn run<T: Send>(&self, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
        let fd = File::open(self.path()).with_context(|| format!("open {}", self.name))?;
        std::thread::scope(|sc| {
            sc.spawn(move || {
                // SAFETY: setns(2) with an open namespace fd we own; it switches only this
                // thread, which runs nothing but `f`.
                let r = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
                if r != 0 {
                    bail!("setns: {}", std::io::Error::last_os_error());
                }
                drop(fd);
                f()
            })
            .join()
            .map_err(|_| anyhow!("client thread panicked"))?
        })
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

// ---------------------------------------------------------------------------------------
// Daemons.

struct Opts {
    runs: usize,
    mib: u64,
    write_kib: usize,
    conns: usize,
    start_runs: usize,
    warmup: usize,
    port: u16,
    peers: Vec<Kind>,
    skiff: PathBuf,
    shim: PathBuf,
    skiff_log: Option<String>,
    keep: bool,
    /// Only the start figures (section 3).
    starts_only: bool,
}

const USAGE: &str = "usage: net-bench [--runs N] [--mib N] [--write-kib N] [--conns N] \
[--start-runs N] [--warmup N] [--port P] [--peers skiff,docker] [--skiff PATH] [--shim PATH] \
[--skiff-log FILTER] [--keep] [--starts-only]";

fn parse_args() -> Result<Opts> {
    let mut o = Opts {
        runs: 3,
        mib: 1024,
        write_kib: 256,
        conns: 5000,
        start_runs: 20,
        warmup: 3,
        port: 15201,
        peers: vec![Kind::Skiff, Kind::Docker],
        skiff: sibling("skiff"),
        shim: PathBuf::new(),
        skiff_log: None,
        keep: false,
        starts_only: false,
    };
    let mut shim = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || {
            args.next()
                .with_context(|| format!("{a} needs a value; {USAGE}"))
        };
        match a.as_str() {
            "--runs" => o.runs = val()?.parse()?,
            "--mib" => o.mib = val()?.parse()?,
            "--write-kib" => o.write_kib = val()?.parse()?,
            "--conns" => o.conns = val()?.parse()?,
            "--start-runs" => o.start_runs = val()?.parse()?,
            "--warmup" => o.warmup = val()?.parse()?,
            "--port" => o.port = val()?.parse()?,
            "--peers" => o.peers = Kind::parse_list(&val()?)?,
            "--skiff" => o.skiff = val()?.into(),
            "--shim" => shim = Some(PathBuf::from(val()?)),
            "--skiff-log" => o.skiff_log = Some(val()?),
            "--keep" => o.keep = true,
            "--starts-only" => o.starts_only = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}; {USAGE}"),
        }
    }
    if o.runs == 0 || o.mib == 0 || o.write_kib == 0 || o.conns == 0 || o.start_runs == 0 {
        bail!("--runs, --mib, --write-kib, --conns and --start-runs must be at least 1");
    }
    if o.port == SINK_PORT {
        bail!("--port {SINK_PORT} is the sinks' own port");
    }
    o.shim = shim.unwrap_or_else(|| o.skiff.with_file_name("skiff-shim"));
    Ok(o)
}

/// The sinks' port: in the containers, and on 127.0.0.1 in the namespace (direct loopback).
const SINK_PORT: u16 = 5201;

/// skiff's daemon inside `ns`, with the default bridge (daemon.json `{}`).
fn start_skiff_peer(tmp: &Path, o: &Opts, ns: &NetNs) -> Result<Peer> {
    start_skiff(
        tmp,
        SkiffDaemon {
            cmd: ns.command(&o.skiff),
            skiff: &o.skiff,
            shim: &o.shim,
            log: o.skiff_log.as_deref(),
            config: "{}",
        },
    )
}

/// Debian's dockerd as the machine's rules have it (no bridge, no iptables), busybox loaded.
fn start_docker_peer(tmp: &Path, dockerd: &Path, image_tar: &Path) -> Result<Peer> {
    let p = start_docker(tmp, dockerd, &[])?;
    p.ok(&["load", "-q", "-i", &image_tar.display().to_string()])?;
    Ok(p)
}

// ---------------------------------------------------------------------------------------
// The sections.

#[derive(Default)]
struct Net {
    tput_direct: Vec<f64>,
    tput_published: Vec<f64>,
    tput_c2c: Vec<f64>,
    conns_direct: Vec<f64>,
    conns_published: Vec<f64>,
    conns_c2c: Vec<f64>,
}

#[derive(Default)]
struct Starts {
    skiff_none: Vec<f64>,
    skiff_bridge: Vec<f64>,
    skiff_none_api: Vec<f64>,
    skiff_bridge_api: Vec<f64>,
    docker_none: Vec<f64>,
    docker_none_api: Vec<f64>,
    /// Why docker has no figures ("not installed", "FAILED: ...").
    docker_status: Option<String>,
}

fn main() -> Result<()> {
    if let Some(r) = child_mode() {
        return r;
    }
    let o = parse_args()?;
    install_signals();
    in_tempdir(
        "snb-",
        o.keep,
        "containers, daemons and the namespace",
        |tmp| bench(tmp, &o),
    )
}

fn bench(tmp: &Path, o: &Opts) -> Result<()> {
    if which("docker").is_none() {
        bail!("the docker CLI (the client of both daemons) is not installed");
    }
    if !(o.skiff.is_file() && o.shim.is_file()) {
        bail!(
            "skiff ({}) or skiff-shim ({}) not found: build them first (cargo build --release -p skiff)",
            o.skiff.display(),
            o.shim.display()
        );
    }
    for t in ["ip", "nsenter"] {
        if which(t).is_none() {
            bail!("{t} is missing (iproute2 / util-linux)");
        }
    }
    let me = std::env::current_exe().context("current_exe")?;
    let rootfs = tmp.join("rootfs");
    make_rootfs(&rootfs)?;
    std::fs::create_dir_all(tmp.join("docker-config"))?;
    std::fs::create_dir_all(tmp.join("skiff"))?;
    let image_tar = tmp.join("busybox.tar");
    skiff_import(&o.skiff, &tmp.join("skiff/root"), &rootfs, Some(&image_tar))?;

    // Field order of these locals matters for drops: the daemons go first (declared
    // last), then the direct sink, then the namespace.
    let ns = NetNs::new()?;
    let ns_path = ns.path();
    check_stop()?;
    let skiff = start_skiff_peer(tmp, o, &ns)?;
    let probe_out = skiff.ok(&[
        "run",
        "--rm",
        "--network",
        "bridge",
        "busybox",
        "ip",
        "-4",
        "-o",
        "addr",
        "show",
        "eth0",
    ])?;
    if !probe_out.contains("inet ") {
        bail!("skiff: a bridge container has no IPv4 address on eth0: {probe_out:?}");
    }

    let mut st = Starts::default();
    let docker = if !o.peers.contains(&Kind::Docker) {
        st.docker_status = Some("not measured (--peers)".into());
        None
    } else if let Some(d) = which("dockerd") {
        match start_docker_peer(tmp, &d, &image_tar) {
            Ok(p) => Some(p),
            Err(e) => {
                check_stop()?;
                eprintln!("docker: {e:#}");
                st.docker_status = Some("FAILED to start".into());
                None
            }
        }
    } else {
        st.docker_status = Some("not installed".into());
        None
    };

    // Sections 1 and 2: skiff only (dockerd has no bridge here).
    let mut net = Net::default();
    if !o.starts_only {
        let sink = Proc(
            ns.command(&me)
                .args(["--sink", &format!("127.0.0.1:{SINK_PORT}")])
                .stdin(Stdio::null())
                .process_group(0)
                .spawn()
                .context("start the direct-loopback sink")?,
        );
        let direct: SocketAddr = ([127, 0, 0, 1], SINK_PORT).into();
        let published: SocketAddr = ([127, 0, 0, 1], o.port).into();
        let nb = format!("{}:/nb:ro", me.display());
        let binds = [
            "-v",
            nb.as_str(),
            "-v",
            "/usr:/usr:ro",
            "-v",
            "/lib64:/lib64:ro",
            "-v",
            "/usr/lib:/lib:ro",
        ];
        let publish = format!("127.0.0.1:{}:{SINK_PORT}", o.port);
        let sink_listen = format!("0.0.0.0:{SINK_PORT}");
        let mut args = vec!["run", "-d", "--name", "nb-sink", "-p", &publish];
        args.extend_from_slice(&binds);
        args.extend_from_slice(&["busybox", "/nb", "--sink", &sink_listen]);
        skiff.ok(&args)?;
        let mut args = vec!["run", "-d", "--name", "nb-client"];
        args.extend_from_slice(&binds);
        args.extend_from_slice(&["busybox", "sleep", "3600"]);
        skiff.ok(&args)?;
        let ip = skiff
            .ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "nb-sink"])?
            .trim()
            .to_string();
        let c2c: SocketAddr = format!("{ip}:{SINK_PORT}")
            .parse()
            .with_context(|| format!("nb-sink's address {ip:?}"))?;
        // Ready (and correct) on all three paths before anything is timed.
        for (what, a) in [("direct", direct), ("published", published)] {
            ns.run(|| {
                let deadline = Instant::now() + Duration::from_secs(20);
                loop {
                    check_stop()?;
                    match echo_once(a) {
                        Ok(()) => return Ok(()),
                        Err(e) if Instant::now() > deadline => {
                            return Err(e.context(format!("{what} sink not reachable")))
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(50)),
                    }
                }
            })?;
        }
        let c2c_s = c2c.to_string();
        skiff
            .ok(&["exec", "nb-client", "/nb", "--client-conns", &c2c_s, "1"])
            .context("container to container probe")?;
        eprintln!(
            "skiff daemon in netns {} ({}); nb-sink at {c2c}, published on {published}",
            ns.name,
            ns_path.display()
        );

        let bytes = o.mib << 20;
        let write = o.write_kib << 10;
        let parse = |s: String| -> Result<f64> {
            s.trim()
                .parse::<f64>()
                .with_context(|| format!("client printed {s:?}"))
        };
        let (bytes_s, write_s, conns_s) =
            (bytes.to_string(), write.to_string(), o.conns.to_string());
        for round in 0..1 + o.runs {
            check_stop()?;
            let d = ns.run(|| tput(direct, bytes, write))?;
            check_stop()?;
            let p = ns.run(|| tput(published, bytes, write))?;
            check_stop()?;
            let c = parse(skiff.ok(&[
                "exec",
                "nb-client",
                "/nb",
                "--client-tput",
                &c2c_s,
                &bytes_s,
                &write_s,
            ])?)?;
            eprintln!(
                "throughput {}: direct {d:.0}, published {p:.0}, container→container {c:.0} MB/s",
                if round == 0 { "warm-up" } else { "run" }
            );
            if round > 0 {
                net.tput_direct.push(d);
                net.tput_published.push(p);
                net.tput_c2c.push(c);
            }
        }
        for round in 0..1 + o.runs {
            check_stop()?;
            let d = ns.run(|| conn_rate(direct, o.conns))?;
            check_stop()?;
            let p = ns.run(|| conn_rate(published, o.conns))?;
            check_stop()?;
            let c = parse(skiff.ok(&[
                "exec",
                "nb-client",
                "/nb",
                "--client-conns",
                &c2c_s,
                &conns_s,
            ])?)?;
            eprintln!(
                "connections {}: direct {d:.0}, published {p:.0}, container→container {c:.0} /s",
                if round == 0 { "warm-up" } else { "run" }
            );
            if round > 0 {
                net.conns_direct.push(d);
                net.conns_published.push(p);
                net.conns_c2c.push(c);
            }
        }
        skiff.ok(&["rm", "-f", "nb-sink", "nb-client"])?;
        drop(sink);
    }

    // Section 3, interleaved: skiff none, skiff bridge, docker none.
    let mut docker_ok = docker.is_some();
    if let Some(d) = &docker {
        let out = d.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "echo",
            "probe",
        ]);
        if !out.as_deref().is_ok_and(|s| s.trim() == "probe") {
            eprintln!("docker: probe failed: {out:?}\n{}", d.log_tail());
            st.docker_status = Some("FAILED probe".into());
            docker_ok = false;
        }
    }
    for round in 0..o.warmup + o.start_runs {
        let keep = round >= o.warmup;
        for net_mode in ["none", "bridge"] {
            check_stop()?;
            let cli = skiff.timed(&["run", "--rm", "--network", net_mode, "busybox", "true"])?;
            let t = Instant::now();
            run_api(&skiff.sock, net_mode).with_context(|| format!("skiff API run {net_mode}"))?;
            let api = ms(t.elapsed());
            if keep {
                let (c, a) = if net_mode == "none" {
                    (&mut st.skiff_none, &mut st.skiff_none_api)
                } else {
                    (&mut st.skiff_bridge, &mut st.skiff_bridge_api)
                };
                c.push(cli);
                a.push(api);
            }
        }
        if let (Some(d), true) = (&docker, docker_ok) {
            check_stop()?;
            let r = (|| -> Result<(f64, f64)> {
                let cli = d.timed(&["run", "--rm", "--network", "none", "busybox", "true"])?;
                let t = Instant::now();
                run_api(&d.sock, "none")?;
                Ok((cli, ms(t.elapsed())))
            })();
            match r {
                Ok((c, a)) if keep => {
                    st.docker_none.push(c);
                    st.docker_none_api.push(a);
                }
                Ok(_) => {}
                Err(e) => {
                    check_stop()?;
                    eprintln!("docker: {e:#}");
                    st.docker_status = Some("FAILED run".into());
                    docker_ok = false;
                }
            }
        }
    }

    print_table(o, &ns, &net, &st);
    drop(docker);
    drop(skiff);
    drop(ns);
    Ok(())
}

const DOCKER_NA: &str = "n/a (dockerd runs with --bridge=none here)";

fn print_table(o: &Opts, ns: &NetNs, net: &Net, st: &Starts) {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nnet: skiff's daemon in netns {} (bridge skiff0, nftables DNAT); host side = that \
         namespace; throughput {} MiB in {} KiB writes and {} connections per run, median of {} \
         runs (+1 warm-up); starts median / p90 ms over {} runs (+{} warm-up), interleaved",
        ns.name, o.mib, o.write_kib, o.conns, o.runs, o.start_runs, o.warmup
    );
    let _ = writeln!(
        out,
        "{:<52} {:>14}  {:<30} docker",
        "figure", "skiff", "of direct / target"
    );
    let row = |out: &mut String, label: &str, skiff: String, tgt: String, docker: &str| {
        let _ = writeln!(out, "{label:<52} {skiff:>14}  {tgt:<30} {docker}");
    };
    let num = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0}"));
    let (td, tp, tc) = (
        median(&net.tput_direct),
        median(&net.tput_published),
        median(&net.tput_c2c),
    );
    let pct = |x: Option<f64>, base: Option<f64>| match (x, base) {
        (Some(x), Some(b)) if b > 0.0 => Some(x / b * 100.0),
        _ => None,
    };
    row(
        &mut out,
        "TCP throughput: direct loopback (no containers), MB/s",
        num(td),
        "100%".into(),
        "- (no daemon)",
    );
    let tgt = match pct(tp, td) {
        Some(p) => format!(
            "{p:.0}%; >= 80%: {}",
            if p >= 80.0 { "met" } else { "MISSED" }
        ),
        None => ">= 80%".into(),
    };
    row(
        &mut out,
        &format!("TCP throughput: published 127.0.0.1:{}, MB/s", o.port),
        num(tp),
        tgt,
        DOCKER_NA,
    );
    row(
        &mut out,
        "TCP throughput: container -> container (bridge), MB/s",
        num(tc),
        pct(tc, td).map_or(String::new(), |p| format!("{p:.0}%")),
        DOCKER_NA,
    );
    let (cd, cp, cc) = (
        median(&net.conns_direct),
        median(&net.conns_published),
        median(&net.conns_c2c),
    );
    row(
        &mut out,
        "connections/s: direct loopback (no containers)",
        num(cd),
        "100%".into(),
        "- (no daemon)",
    );
    row(
        &mut out,
        &format!("connections/s: published 127.0.0.1:{}", o.port),
        num(cp),
        pct(cp, cd).map_or(String::new(), |p| format!("{p:.0}%")),
        DOCKER_NA,
    );
    row(
        &mut out,
        "connections/s: container -> container (bridge)",
        num(cc),
        pct(cc, cd).map_or(String::new(), |p| format!("{p:.0}%")),
        DOCKER_NA,
    );
    let docker_lat = |v: &[f64]| match (&st.docker_status, stats(v)) {
        (_, Some(_)) => lat(v),
        (Some(s), None) => s.clone(),
        (None, None) => "-".into(),
    };
    let delta = |b: &[f64], n: &[f64]| match (median(b), median(n)) {
        (Some(b), Some(n)) => (
            format!("{:+.1}", b - n),
            format!("<= 5 ms: {}", if b - n <= 5.0 { "met" } else { "MISSED" }),
        ),
        _ => ("-".into(), "<= 5 ms".into()),
    };
    for (how, none, bridge, dnone) in [
        ("CLI", &st.skiff_none, &st.skiff_bridge, &st.docker_none),
        (
            "API only",
            &st.skiff_none_api,
            &st.skiff_bridge_api,
            &st.docker_none_api,
        ),
    ] {
        row(
            &mut out,
            &format!("run --rm --network none busybox true ({how}), ms"),
            lat(none),
            String::new(),
            &docker_lat(dnone),
        );
        row(
            &mut out,
            &format!("run --rm --network bridge busybox true ({how}), ms"),
            lat(bridge),
            String::new(),
            DOCKER_NA,
        );
        let (d, t) = delta(bridge, none);
        row(
            &mut out,
            &format!("  bridge - none ({how}, medians), ms"),
            d,
            t,
            DOCKER_NA,
        );
    }
    print!("{out}");
}
