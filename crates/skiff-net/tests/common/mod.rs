//! Test harness: every test runs on a thread inside its own fresh network namespace (the
//! "host" of the test), so bridges, veths, sysctls and the nftables table it makes never touch
//! the real host and vanish with the namespace. Namespace files and mounts are cleaned up by
//! `Env`'s Drop, also when a test fails.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use skiff_net::netlink::{LinkChange, Netlink};
use skiff_net::{netns, NetConfig};

/// Whether the test can run (root, nft, busybox, nsenter).
pub fn can_run() -> bool {
    let root = rustix::process::geteuid().is_root();
    let tools = ["nft", "busybox", "nsenter"].iter().all(|t| {
        Command::new("sh")
            .args(["-c", &format!("command -v {t} >/dev/null")])
            .status()
            .is_ok_and(|s| s.success())
    });
    if !(root && tools) {
        eprintln!("skipped: needs root, nft, busybox and nsenter");
    }
    root && tools
}

/// Runs `f` on a thread inside a new network namespace with `lo` up.
pub fn in_fresh_netns<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: only CLONE_NEWNET is unshared, on this thread alone; the fd table stays
            // shared with the other threads.
            unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNET) }
                .expect("unshare(CLONE_NEWNET)");
            let mut nl = Netlink::open().unwrap();
            let lo = nl.link_index("lo").unwrap().unwrap();
            nl.set_link(
                lo,
                &LinkChange {
                    up: true,
                    ..Default::default()
                },
            )
            .unwrap();
            f()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// A state dir and a namespace dir, removed (namespace files unmounted) on drop.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }
    pub fn netns_dir(&self) -> PathBuf {
        self.dir.path().join("netns")
    }
    pub fn config(&self) -> NetConfig {
        NetConfig::new(self.state(), self.netns_dir())
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let d = self.netns_dir();
        for n in netns::list(&d).unwrap_or_default() {
            let _ = netns::remove(&d, &n);
        }
        let _ = netns::release_dir(&d);
    }
}

/// Runs busybox `args` inside the namespace file `ns`; returns (success, output).
pub fn bb_in(ns: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("nsenter")
        .arg(format!("--net={}", ns.display()))
        .arg("busybox")
        .args(args)
        .output()
        .expect("nsenter");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A TCP echo server inside `ns` on `port`; serves `conns` connections then stops.
pub fn tcp_echo_in(ns: &Path, port: u16, conns: usize) -> std::thread::JoinHandle<Vec<SocketAddr>> {
    let l = netns::run_in(ns, || TcpListener::bind(("0.0.0.0", port)).unwrap()).unwrap();
    std::thread::spawn(move || {
        let mut peers = Vec::new();
        for _ in 0..conns {
            let Ok((mut c, peer)) = l.accept() else { break };
            peers.push(peer);
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut b = [0u8; 64];
            if let Ok(n) = c.read(&mut b) {
                let _ = c.write_all(&b[..n]);
            }
        }
        peers
    })
}

/// A UDP echo server inside `ns` on `port` (one datagram per `n`).
pub fn udp_echo_in(ns: &Path, port: u16, n: usize) -> std::thread::JoinHandle<()> {
    let s = netns::run_in(ns, || UdpSocket::bind(("0.0.0.0", port)).unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    std::thread::spawn(move || {
        let mut b = [0u8; 64];
        for _ in 0..n {
            let Ok((k, peer)) = s.recv_from(&mut b) else {
                break;
            };
            let _ = s.send_to(&b[..k], peer);
        }
    })
}

/// Connects to `addr` from the namespace `ns` (`None`: the caller's), sends a line and
/// expects it back.
pub fn tcp_roundtrip(ns: Option<&Path>, addr: SocketAddrV4) -> std::io::Result<()> {
    let connect = move || TcpStream::connect_timeout(&addr.into(), Duration::from_secs(2));
    let mut c = match ns {
        Some(ns) => netns::run_in(ns, connect).unwrap()?,
        None => connect()?,
    };
    c.set_read_timeout(Some(Duration::from_secs(3)))?;
    c.write_all(b"hello\n")?;
    let mut b = [0u8; 6];
    c.read_exact(&mut b)?;
    assert_eq!(&b, b"hello\n");
    Ok(())
}

/// Sends a datagram to `addr` from the caller's namespace and waits for the echo.
pub fn udp_roundtrip(addr: SocketAddrV4) -> std::io::Result<()> {
    let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    s.send_to(b"ping", addr)?;
    let mut b = [0u8; 8];
    let (n, _) = s.recv_from(&mut b)?;
    assert_eq!(&b[..n], b"ping");
    Ok(())
}

/// Names of the links in the caller's namespace.
pub fn links() -> Vec<String> {
    Netlink::open()
        .unwrap()
        .links()
        .unwrap()
        .into_iter()
        .map(|l| l.name)
        .collect()
}

/// Output of `nft list tables` in the caller's namespace.
pub fn nft_tables() -> String {
    let o = Command::new("nft")
        .args(["list", "tables"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn nft_table_text() -> String {
    let o = Command::new("nft")
        .args(["list", "table", "ip", "skiff"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A veth pair between the caller's namespace (`host_ip`/30) and a new namespace file
/// `outside` (`out_ip`/30): an "external" machine for DNAT and masquerade tests.
pub fn make_outside(env: &Env, host_ip: Ipv4Addr, out_ip: Ipv4Addr) -> PathBuf {
    let ns = netns::create(&env.netns_dir(), "outside").unwrap();
    let mut nl = Netlink::open().unwrap();
    nl.create_veth("ext0", "ext1", 1500).unwrap();
    let h = nl.link_index("ext0").unwrap().unwrap();
    nl.add_address(h, host_ip, 30).unwrap();
    nl.set_link(
        h,
        &LinkChange {
            up: true,
            ..Default::default()
        },
    )
    .unwrap();
    let p = nl.link_index("ext1").unwrap().unwrap();
    let f = std::fs::File::open(&ns).unwrap();
    nl.move_to_netns(p, &f).unwrap();
    let mut o = Netlink::open_in(&ns).unwrap();
    let lo = o.link_index("lo").unwrap().unwrap();
    o.set_link(
        lo,
        &LinkChange {
            up: true,
            ..Default::default()
        },
    )
    .unwrap();
    let p = o.link_index("ext1").unwrap().unwrap();
    o.add_address(p, out_ip, 30).unwrap();
    o.set_link(
        p,
        &LinkChange {
            up: true,
            ..Default::default()
        },
    )
    .unwrap();
    ns
}
