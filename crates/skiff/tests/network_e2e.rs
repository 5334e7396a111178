//! Networking end to end through the real docker CLI: the default bridge, user-defined
//! networks with name and alias resolution by the embedded DNS server, static addresses,
//! connect/disconnect, published TCP and UDP ports reached from the host side on
//! 127.0.0.1, and leak checks after rm, a daemon restart and a daemon `kill -9`.
//!
//! Each test daemon runs in a network namespace of its own (daemon_support::NetNs): "the
//! host" below is that namespace; traffic never leaves it. Needs root.

mod daemon_support;

use std::time::{Duration, Instant};

use daemon_support::{stderr, stdout, Daemon};

/// Output of `program args` run in the daemon's namespace.
fn in_ns(d: &Daemon, program: &str, args: &[&str]) -> std::process::Output {
    d.netns.command(program).args(args).output().unwrap()
}

/// Links in the daemon's namespace whose names start with `prefix`.
fn links(d: &Daemon, prefix: &str) -> Vec<String> {
    let o = in_ns(d, "ip", &["-br", "link"]);
    stdout(&o)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

fn netns_files(d: &Daemon) -> usize {
    std::fs::read_dir(d.exec_root().join("netns"))
        .map(|r| r.count())
        .unwrap_or(0)
}

/// Retries `f` for up to 10 s (a server that is still starting).
fn eventually(what: &str, mut f: impl FnMut() -> Option<String>) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(s) = f() {
            return s;
        }
        assert!(Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn default_bridge_none_and_published_ports() {
    let d = Daemon::start();
    // The default bridge: an address, a route out, the address in /etc/hosts.
    let out = d.ok(&[
        "run",
        "--rm",
        "--hostname",
        "hb",
        "busybox",
        "sh",
        "-c",
        "ip -4 -o addr show eth0; ip route; grep hb /etc/hosts",
    ]);
    assert!(out.contains("inet 172.17."), "{out}");
    assert!(out.contains("default via 172.17.0.1"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("172.17.") && l.ends_with("hb")),
        "{out}"
    );
    // none: loopback only.
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "ip",
        "-o",
        "link",
    ]);
    assert_eq!(out.lines().count(), 1, "{out}");

    // A published TCP port, reached on 127.0.0.1 and on the bridge address from the host.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        "18080:80",
        "--expose",
        "81",
        "busybox",
        "sh",
        "-c",
        "mkdir /w && echo hello-web > /w/index.html && httpd -f -p 80 -h /w",
    ]);
    let got = eventually("GET 127.0.0.1:18080", || {
        let o = in_ns(&d, "busybox", &["wget", "-qO-", "http://127.0.0.1:18080/"]);
        o.status.success().then(|| stdout(&o))
    });
    assert_eq!(got, "hello-web\n");
    let v = d.inspect("web");
    let ns = &v["NetworkSettings"];
    assert_eq!(ns["Ports"]["80/tcp"][0]["HostPort"], "18080", "{ns}");
    assert_eq!(ns["Ports"]["80/tcp"][0]["HostIp"], "0.0.0.0");
    assert!(ns["Ports"]["81/tcp"].is_null(), "{ns}");
    let ip = ns["IPAddress"].as_str().unwrap().to_string();
    assert!(ip.starts_with("172.17."), "{ns}");
    assert_eq!(ns["Networks"]["bridge"]["IPAddress"], ip.as_str());
    assert!(ns["SandboxKey"].as_str().unwrap().contains("/netns/"));
    assert_eq!(d.ok(&["port", "web", "80"]), "0.0.0.0:18080");
    let o = in_ns(
        &d,
        "busybox",
        &["wget", "-qO-", &format!("http://{ip}:80/")],
    );
    assert_eq!(stdout(&o), "hello-web\n", "{}", stderr(&o));
    // A second container reaches it through the published port on the gateway address.
    let out = d.ok(&[
        "run",
        "--rm",
        "busybox",
        "wget",
        "-qO-",
        "http://172.17.0.1:18080/",
    ]);
    assert_eq!(out, "hello-web");
    // The same host port again: refused, naming it.
    let o = d.docker(&["run", "--rm", "-p", "127.0.0.1:18080:80", "busybox", "true"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("18080"), "{}", stderr(&o));

    // Host port 0 picks a free one; UDP works (busybox has no UDP server: the host's
    // python3, bound in read-only, answers inside the container).
    let server = "import socket\n\
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
s.bind(('0.0.0.0', 9999))\n\
while True:\n    d, a = s.recvfrom(100)\n    s.sendto(b'pong:' + d, a)\n";
    d.ok(&[
        "run",
        "-d",
        "--name",
        "udp",
        "-p",
        "127.0.0.1::9999/udp",
        "-v",
        "/usr:/usr:ro",
        "-v",
        "/lib64:/lib64:ro",
        "-v",
        "/usr/lib:/lib:ro",
        "busybox",
        "/usr/bin/python3",
        "-c",
        server,
    ]);
    let v = d.inspect("udp");
    let port = v["NetworkSettings"]["Ports"]["9999/udp"][0]["HostPort"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(port, "0");
    let client = format!(
        "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
s.settimeout(1)\ns.sendto(b'ping', ('127.0.0.1', {port}))\nprint(s.recvfrom(100)[0].decode())\n"
    );
    let got = eventually("UDP answer through the published port", || {
        let o = in_ns(&d, "/usr/bin/python3", &["-c", &client]);
        o.status.success().then(|| stdout(&o))
    });
    assert_eq!(got, "pong:ping\n");

    // Nothing left after rm (the teardown finishes in the background): no veth on the
    // bridge, no namespace file.
    d.ok(&["rm", "-f", "web", "udp"]);
    eventually("veths and namespace files gone", || {
        (links(&d, "skv").is_empty() && netns_files(&d) == 0).then(String::new)
    });
}

#[test]
fn user_networks_resolve_names_and_aliases() {
    let mut d = Daemon::start();
    d.ok(&[
        "network",
        "create",
        "--subnet",
        "10.77.0.0/24",
        "--label",
        "app=x",
        "appnet",
    ]);
    let v: serde_json::Value =
        serde_json::from_str(&d.ok(&["network", "inspect", "appnet"])).unwrap();
    assert_eq!(v[0]["IPAM"]["Config"][0]["Subnet"], "10.77.0.0/24");
    assert_eq!(v[0]["Driver"], "bridge");
    assert_eq!(v[0]["Labels"]["app"], "x");
    assert!(
        d.ok(&["network", "ls", "--filter", "label=app=x", "-q"])
            .len()
            >= 12
    );

    d.ok(&[
        "run",
        "-d",
        "--name",
        "srv",
        "--network",
        "appnet",
        "--network-alias",
        "db",
        "--ip",
        "10.77.0.50",
        "busybox",
        "sh",
        "-c",
        "mkdir /w && echo from-srv > /w/index.html && httpd -f -p 80 -h /w",
    ]);
    let v = d.inspect("srv");
    assert_eq!(
        v["NetworkSettings"]["Networks"]["appnet"]["IPAddress"],
        "10.77.0.50"
    );
    // By name, by alias, by short id; resolv.conf points at the embedded server.
    let short = v["Id"].as_str().unwrap()[..12].to_string();
    let script = format!(
        "cat /etc/resolv.conf; for h in srv db {short}; do wget -qO- http://$h/ || echo FAIL $h; done"
    );
    let out = eventually("names resolve", || {
        let o = d.docker(&[
            "run",
            "--rm",
            "--network",
            "appnet",
            "busybox",
            "sh",
            "-c",
            &script,
        ]);
        (!stdout(&o).contains("FAIL")).then(|| stdout(&o))
    });
    assert!(out.contains("nameserver 127.0.0.11"), "{out}");
    assert_eq!(out.matches("from-srv").count(), 3, "{out}");
    // The default bridge has no name resolution and is isolated from appnet.
    let o = d.docker(&[
        "run",
        "--rm",
        "busybox",
        "wget",
        "-T",
        "2",
        "-qO-",
        "http://10.77.0.50/",
    ]);
    assert_ne!(
        o.status.code(),
        Some(0),
        "bridge reached appnet: {}",
        stdout(&o)
    );

    // connect / disconnect a running container.
    d.ok(&["run", "-d", "--name", "cli", "busybox", "sleep", "1000"]);
    d.ok(&["network", "connect", "--alias", "client", "appnet", "cli"]);
    let out = d.ok(&["exec", "cli", "wget", "-qO-", "http://db/"]);
    assert_eq!(out, "from-srv");
    let nets = d.inspect("cli")["NetworkSettings"]["Networks"].clone();
    assert!(
        nets["appnet"]["IPAddress"]
            .as_str()
            .unwrap()
            .starts_with("10.77.0."),
        "{nets}"
    );
    d.ok(&["network", "disconnect", "appnet", "cli"]);
    let o = d.docker(&["exec", "cli", "ip", "-o", "link"]);
    assert_eq!(stdout(&o).lines().count(), 2, "{}", stdout(&o));

    // In use: rm refused (409, naming the network's containers).
    let o = d.docker(&["network", "rm", "appnet"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("active endpoints"), "{}", stderr(&o));
    // Predefined networks cannot be removed.
    let o = d.docker(&["network", "rm", "bridge"]);
    assert_ne!(o.status.code(), Some(0));

    // The daemon restarts (and is killed): running containers keep their networks and
    // names still resolve; nothing leaks once they are gone.
    d.kill9();
    d.spawn();
    let out = eventually("names after a daemon kill -9", || {
        let o = d.docker(&[
            "run",
            "--rm",
            "--network",
            "appnet",
            "busybox",
            "wget",
            "-qO-",
            "http://db/",
        ]);
        o.status.success().then(|| stdout(&o))
    });
    assert_eq!(out, "from-srv\n");
    d.ok(&["rm", "-f", "srv", "cli"]);
    d.ok(&["network", "rm", "appnet"]);
    let o = d.docker(&["network", "inspect", "appnet"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(links(&d, "skv").is_empty(), "{:?}", links(&d, "skv"));
    assert!(links(&d, "br-").is_empty(), "{:?}", links(&d, "br-"));
    assert_eq!(netns_files(&d), 0);
    // prune removes unused user networks only.
    d.ok(&["network", "create", "gone1"]);
    d.ok(&["network", "prune", "-f"]);
    let ls = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    let mut names: Vec<&str> = ls.lines().collect();
    names.sort();
    assert_eq!(names, ["bridge", "host", "none"]);
}

/// docker-compose (Debian's v1) brings up a server and a client that reaches it by its
/// service name on the project's network, and takes it all down again.
#[test]
fn compose_up_and_down_a_two_service_app() {
    let d = Daemon::start();
    let proj = d.dir.path().join("proj");
    std::fs::create_dir_all(&proj).unwrap();
    std::fs::write(
        proj.join("docker-compose.yml"),
        r#"version: "3"
services:
  server:
    image: busybox
    command: ["sh", "-c", "mkdir -p /w && echo served-by-server > /w/index.html && httpd -f -p 80 -h /w"]
  client:
    image: busybox
    depends_on: [server]
    command: ["sh", "-c", "for i in $$(seq 1 50); do wget -qO- http://server/ && exit 0; sleep 0.2; done; exit 1"]
"#,
    )
    .unwrap();
    let compose = |args: &[&str]| {
        let o = std::process::Command::new("docker-compose")
            .args(["-p", "skt", "--no-ansi"])
            .args(args)
            .current_dir(&proj)
            .env("DOCKER_HOST", d.host())
            .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
            .output()
            .expect("docker-compose (apt install docker-compose)");
        assert!(
            o.status.success(),
            "docker-compose {args:?}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        stdout(&o)
    };
    compose(&["up", "-d"]);
    let code = d.ok(&["wait", "skt_client_1"]);
    let logs = d.ok(&["logs", "skt_client_1"]);
    assert_eq!(code, "0", "client failed: {logs}");
    assert_eq!(logs, "served-by-server");
    let nets = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(nets.lines().any(|n| n == "skt_default"), "{nets}");
    compose(&["down"]);
    assert_eq!(d.ok(&["ps", "-aq"]), "");
    let nets = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!nets.contains("skt_default"), "{nets}");
    assert!(links(&d, "skv").is_empty(), "{:?}", links(&d, "skv"));
    assert!(links(&d, "br-").is_empty(), "{:?}", links(&d, "br-"));
}

/// The skiff CLI's network verbs and run flags (`--network-alias`, `--ip`, `-P`, `--mount`).
#[test]
fn skiff_cli_network_verbs() {
    let d = Daemon::start();
    let skiff = |args: &[&str]| {
        let o = std::process::Command::new(daemon_support::SKIFF)
            .args(["-H", &d.host()])
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "skiff {args:?}: {}", stderr(&o));
        stdout(&o)
    };
    let id = skiff(&["network", "create", "--subnet", "10.88.0.0/24", "cnet"]);
    assert_eq!(id.trim().len(), 64, "{id}");
    let ls = skiff(&["network", "ls"]);
    assert!(
        ls.starts_with("NETWORK ID     NAME      DRIVER    SCOPE\n"),
        "{ls}"
    );
    assert!(ls.contains(" cnet "), "{ls}");
    skiff(&[
        "run",
        "-d",
        "--name",
        "s1",
        "--network",
        "cnet",
        "--network-alias",
        "svc",
        "--ip",
        "10.88.0.9",
        "--expose",
        "80",
        "-P",
        "--mount",
        "type=volume,source=cv,target=/w",
        "busybox",
        "sh",
        "-c",
        "echo via-alias > /w/index.html && httpd -f -p 80 -h /w",
    ]);
    let v = d.inspect("s1");
    assert_eq!(
        v["NetworkSettings"]["Networks"]["cnet"]["IPAddress"],
        "10.88.0.9"
    );
    assert_eq!(v["Mounts"][0]["Name"], "cv");
    let port = v["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(port.parse::<u16>().is_ok_and(|p| p > 0), "{v}");
    let out = eventually("alias answers", || {
        let o = d.docker(&[
            "run",
            "--rm",
            "--network",
            "cnet",
            "busybox",
            "wget",
            "-qO-",
            "http://svc/",
        ]);
        o.status.success().then(|| stdout(&o))
    });
    assert_eq!(out, "via-alias\n");
    let got = eventually("-P port answers", || {
        let o = in_ns(
            &d,
            "busybox",
            &["wget", "-qO-", &format!("http://127.0.0.1:{port}/")],
        );
        o.status.success().then(|| stdout(&o))
    });
    assert_eq!(got, "via-alias\n");
    skiff(&["network", "disconnect", "cnet", "s1"]);
    skiff(&["network", "connect", "--alias", "again", "cnet", "s1"]);
    skiff(&["rm", "-f", "s1"]);
    assert_eq!(skiff(&["network", "rm", "cnet"]).trim(), "cnet");
    skiff(&["network", "create", "unused1"]);
    assert_eq!(
        skiff(&["network", "prune", "-f"]),
        "Deleted Networks:\nunused1\n\n"
    );
}

fn pool_files(d: &Daemon) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(d.exec_root().join("netns-pool"))
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// daemon.json `bip` and `mtu` shape the default bridge; `--mac-address` sets eth0's MAC
/// (skiff CLI and docker CLI, the endpoint's `MacAddress`; `Config.MacAddress` too).
#[test]
fn bip_mtu_and_mac_address() {
    let d = Daemon::start_with(r#"{"bip": "10.55.0.1/24", "mtu": 1400}"#);
    let o = in_ns(&d, "ip", &["-4", "-o", "addr", "show", "skiff0"]);
    assert!(stdout(&o).contains("10.55.0.1/24"), "{}", stdout(&o));
    let o = in_ns(&d, "ip", &["-o", "link", "show", "skiff0"]);
    assert!(stdout(&o).contains("mtu 1400"), "{}", stdout(&o));
    let v: serde_json::Value =
        serde_json::from_str(&d.ok(&["network", "inspect", "bridge"])).unwrap();
    assert_eq!(v[0]["IPAM"]["Config"][0]["Subnet"], "10.55.0.0/24");
    assert_eq!(v[0]["IPAM"]["Config"][0]["Gateway"], "10.55.0.1");
    assert_eq!(v[0]["Options"]["com.docker.network.driver.mtu"], "1400");
    let script = "ip -o link show eth0; ip -4 -o addr show eth0; ip route";
    // Twice: the first start may come from the pool of prepared namespaces, a later one
    // from a namespace made on the spot; both get the MTU and the MAC.
    for _ in 0..2 {
        let out = d.ok(&[
            "run",
            "--rm",
            "--mac-address",
            "92:d0:c6:0a:29:33",
            "busybox",
            "sh",
            "-c",
            script,
        ]);
        assert!(out.contains("mtu 1400"), "{out}");
        assert!(out.contains("link/ether 92:d0:c6:0a:29:33"), "{out}");
        assert!(out.contains("inet 10.55.0."), "{out}");
        assert!(out.contains("default via 10.55.0.1"), "{out}");
    }
    // skiff's own CLI sends the same.
    let out = std::process::Command::new(daemon_support::SKIFF)
        .args(["-H", &d.host(), "run", "--rm"])
        .args(["--mac-address", "02:aa:bb:cc:dd:ee", "busybox", "cat"])
        .arg("/sys/class/net/eth0/address")
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "02:aa:bb:cc:dd:ee\n", "{}", stderr(&out));
    // Without --mac-address: Docker's 02:42 + the address; inspect shows it.
    d.ok(&["run", "-d", "--name", "mac1", "busybox", "sleep", "60"]);
    let v = d.inspect("mac1");
    let ip = v["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    let mac = v["NetworkSettings"]["Networks"]["bridge"]["MacAddress"]
        .as_str()
        .unwrap()
        .to_string();
    let o: Vec<u8> = ip.split('.').map(|x| x.parse().unwrap()).collect();
    assert_eq!(
        mac,
        format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
    );
    // The deprecated Config.MacAddress (older API clients) lands on the endpoint.
    let body = r#"{"Image": "busybox", "Cmd": ["sleep", "60"], "MacAddress": "02:12:34:56:78:9a"}"#;
    let (st, resp) = d.http("POST", "/v1.43/containers/create?name=old", Some(body));
    assert_eq!(st, 201, "{resp}");
    d.ok(&["start", "old"]);
    let v = d.inspect("old");
    assert_eq!(
        v["NetworkSettings"]["Networks"]["bridge"]["MacAddress"],
        "02:12:34:56:78:9a"
    );
    // Bad ones are refused, naming the address.
    for bad in ["zz:d0:c6:0a:29:33", "01:00:5e:00:00:01"] {
        let body = format!(
            r#"{{"Image": "busybox", "NetworkingConfig": {{"EndpointsConfig": {{"bridge": {{"MacAddress": "{bad}"}}}}}}}}"#
        );
        let (st, resp) = d.http("POST", "/containers/create", Some(&body));
        assert_eq!(st, 400, "{resp}");
        assert!(
            resp.contains(&format!("invalid MAC address: {bad}")),
            "{resp}"
        );
    }
    d.ok(&["rm", "-f", "mac1", "old"]);
}

/// The pool of prepared namespaces: two entries while the daemon runs, refilled after
/// starts take them; stale ones removed after a `kill -9`; none left after a stop.
#[test]
fn namespace_pool_does_not_leak() {
    let mut d = Daemon::start();
    let full = |d: &Daemon| pool_files(d).len() == 2 && links(d, "skp").len() == 2;
    eventually("the pool filled", || full(&d).then(String::new));
    for _ in 0..3 {
        let out = d.ok(&[
            "run", "--rm", "busybox", "ip", "-4", "-o", "addr", "show", "eth0",
        ]);
        assert!(out.contains("inet "), "{out}");
    }
    eventually("refilled, nothing else left", || {
        (full(&d) && links(&d, "skv").is_empty() && netns_files(&d) == 0).then(String::new)
    });
    let before = pool_files(&d);
    d.kill9();
    assert_eq!(pool_files(&d), before, "a killed daemon cannot clean up");
    d.spawn();
    eventually("stale entries replaced", || {
        let now = pool_files(&d);
        (full(&d) && now.iter().all(|n| !before.contains(n))).then(String::new)
    });
    d.stop();
    assert!(pool_files(&d).is_empty(), "{:?}", pool_files(&d));
    eventually("pool veths gone with their namespaces", || {
        links(&d, "skp").is_empty().then(String::new)
    });
    d.spawn();
}
