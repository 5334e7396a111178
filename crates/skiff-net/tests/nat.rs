//! Root tests of NAT for real, inside a throwaway "host" namespace with an "outside" namespace
//! behind a veth (198.18.0.0/30, a benchmarking range that exists only in these namespaces):
//! published TCP/UDP ports reached from outside, from the host (also on 127.0.0.1) and by the
//! container itself (hairpin); masquerade out; internal networks and isolation cut off.

mod common;

use std::net::{Ipv4Addr, SocketAddrV4};

use common::*;
use skiff_net::ports::{parse_port_specs, requests};
use skiff_net::{ConnectRequest, CreateNetwork, Networks, Proto};

const HOST_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const OUT_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

#[test]
fn published_ports_masquerade_and_isolation() {
    if !can_run() {
        return;
    }
    in_fresh_netns(|| {
        let env = Env::new();
        let outside = make_outside(&env, HOST_IP, OUT_IP);
        let nw = Networks::open(env.config()).unwrap();
        let ns = nw.create_netns("web1").unwrap();
        let specs = parse_port_specs(["8080:80", "127.0.0.1:5353:53/udp", "81"]).unwrap();
        let ep = nw
            .connect(
                "bridge",
                &ConnectRequest {
                    container_id: "web1".into(),
                    container_name: "web1".into(),
                    netns: ns.clone(),
                    ports: requests(&specs).unwrap(),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(ep.ip, Ipv4Addr::new(172, 17, 0, 2));
        let eph = ep
            .ports
            .iter()
            .find(|p| p.container_port == 81)
            .unwrap()
            .host_port;
        assert!(eph >= 1024, "ephemeral host port {eph}");
        assert!(ep.ports.iter().any(|p| p.proto == Proto::Udp
            && p.host_port == 5353
            && p.host_ip == Ipv4Addr::LOCALHOST));
        let table = nft_table_text();
        assert!(
            table.contains("tcp dport 8080 dnat to 172.17.0.2:80"),
            "{table}"
        );

        // TCP 8080 from: the host on 127.0.0.1, the host on its own address, outside, hairpin.
        let srv = tcp_echo_in(&ns, 80, 4);
        tcp_roundtrip(None, SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080)).unwrap();
        tcp_roundtrip(None, SocketAddrV4::new(HOST_IP, 8080)).unwrap();
        tcp_roundtrip(Some(&outside), SocketAddrV4::new(HOST_IP, 8080)).unwrap();
        tcp_roundtrip(Some(&ns), SocketAddrV4::new(HOST_IP, 8080)).unwrap();
        let peers = srv.join().unwrap();
        // Outside clients keep their address; loopback and hairpin are masqueraded.
        assert_eq!(peers[0].ip(), Ipv4Addr::new(172, 17, 0, 1));
        assert_eq!(peers[2].ip(), OUT_IP);
        assert_eq!(peers[3].ip(), Ipv4Addr::new(172, 17, 0, 1));
        // The ephemeral mapping works too.
        let srv = tcp_echo_in(&ns, 81, 1);
        tcp_roundtrip(None, SocketAddrV4::new(Ipv4Addr::LOCALHOST, eph)).unwrap();
        srv.join().unwrap();
        // UDP, bound to 127.0.0.1 only.
        let usrv = udp_echo_in(&ns, 53, 1);
        udp_roundtrip(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 5353)).unwrap();
        usrv.join().unwrap();

        // Masquerade: the outside machine sees the host's address.
        let out_srv = tcp_echo_in(&outside, 9000, 1);
        tcp_roundtrip(Some(&ns), SocketAddrV4::new(OUT_IP, 9000)).unwrap();
        assert_eq!(out_srv.join().unwrap()[0].ip(), HOST_IP);

        // An internal network has no way out; different bridges are isolated.
        nw.create(CreateNetwork {
            name: "vault".into(),
            internal: true,
            ..Default::default()
        })
        .unwrap();
        let ins = nw.create_netns("db1").unwrap();
        let iep = nw
            .connect(
                "vault",
                &ConnectRequest {
                    container_id: "db1".into(),
                    container_name: "db1".into(),
                    netns: ins.clone(),
                    ports: requests(&parse_port_specs(["5432:5432"]).unwrap()).unwrap(),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(iep.gateway, None);
        assert!(iep.ports.is_empty(), "internal networks publish nothing");
        let (ok, out) = bb_in(&ins, &["ip", "route"]);
        assert!(ok && !out.contains("default"), "{out}");
        assert!(tcp_roundtrip(Some(&ins), SocketAddrV4::new(OUT_IP, 9000)).is_err());
        let (ok, _) = bb_in(&ns, &["ping", "-c", "1", "-W", "1", &iep.ip.to_string()]);
        assert!(!ok, "bridge → internal network must be dropped");

        // Published ports are released with the endpoint; the host port is free again.
        nw.disconnect_all("web1").unwrap();
        assert!(!nft_table_text().contains("dport 8080"));
        nw.disconnect_all("db1").unwrap();
        let again = nw
            .connect(
                "bridge",
                &ConnectRequest {
                    container_id: "web2".into(),
                    container_name: "web2".into(),
                    netns: nw.create_netns("web2").unwrap(),
                    ports: requests(&parse_port_specs(["8080:80"]).unwrap()).unwrap(),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(again.ports[0].host_port, 8080);
        let e = nw
            .connect(
                "vault",
                &ConnectRequest {
                    container_id: "web3".into(),
                    container_name: "web3".into(),
                    netns: nw.create_netns("web3").unwrap(),
                    ..Default::default()
                },
            )
            .map(|_| ());
        assert!(e.is_ok());
        let dup = nw
            .connect(
                "bridge",
                &ConnectRequest {
                    container_id: "web4".into(),
                    container_name: "web4".into(),
                    netns: nw.create_netns("web4").unwrap(),
                    ports: requests(&parse_port_specs(["8080:80"]).unwrap()).unwrap(),
                    ..Default::default()
                },
            )
            .unwrap_err();
        assert_eq!(
            dup.to_string(),
            "network bridge: bind for 0.0.0.0:8080/tcp failed: port is already allocated"
        );
        for c in ["web2", "web3", "web4"] {
            nw.disconnect_all(c).unwrap();
        }
        nw.uninstall().unwrap();
        assert!(!nft_tables().contains("skiff"));
    });
}

#[test]
fn generated_ruleset_is_valid_nft() {
    if !can_run() {
        return;
    }
    in_fresh_netns(|| {
        use skiff_net::nft::{Firewall, FwNetwork, FwPort};
        let fw = Firewall {
            networks: vec![
                FwNetwork {
                    bridge: "skiff0".into(),
                    subnet: "172.17.0.0/16".parse().unwrap(),
                    internal: false,
                    masquerade: true,
                    icc: true,
                },
                FwNetwork {
                    bridge: "br-x".into(),
                    subnet: "172.18.0.0/16".parse().unwrap(),
                    internal: true,
                    masquerade: false,
                    icc: false,
                },
            ],
            ports: vec![FwPort {
                proto: Proto::Udp,
                host_ip: Ipv4Addr::LOCALHOST,
                host_port: 53,
                container_ip: Ipv4Addr::new(172, 17, 0, 2),
                container_port: 53,
            }],
        };
        fw.check().unwrap();
        fw.apply().unwrap();
        fw.apply().unwrap(); // replacing is idempotent
        assert!(nft_table_text().contains("dnat to 172.17.0.2:53"));
        skiff_net::nft::remove_table().unwrap();
        skiff_net::nft::remove_table().unwrap();
        assert!(!nft_tables().contains("skiff"));
    });
}

#[test]
fn iptables_fallback_publishes_and_cleans_up() {
    if !can_run() || !skiff_net::iptables::available() {
        return;
    }
    in_fresh_netns(|| {
        let env = Env::new();
        let outside = make_outside(&env, HOST_IP, OUT_IP);
        let mut cfg = env.config();
        cfg.firewall = Some(skiff_net::FirewallBackend::Iptables);
        let nw = Networks::open(cfg).unwrap();
        let ns = nw.create_netns("ipt1").unwrap();
        let ports = requests(&parse_port_specs(["8090:80"]).unwrap()).unwrap();
        nw.connect(
            "bridge",
            &ConnectRequest {
                container_id: "ipt1".into(),
                container_name: "ipt1".into(),
                netns: ns.clone(),
                ports,
                ..Default::default()
            },
        )
        .unwrap();
        let rules = std::process::Command::new("iptables")
            .args(["-t", "nat", "-S"])
            .output()
            .unwrap();
        let rules = String::from_utf8_lossy(&rules.stdout).into_owned();
        assert!(
            rules.contains("-A PREROUTING -j SKIFF-PREROUTING"),
            "{rules}"
        );
        assert!(rules.contains("--to-destination 172.17.0.2:80"), "{rules}");
        let srv = tcp_echo_in(&ns, 80, 3);
        tcp_roundtrip(None, SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8090)).unwrap();
        tcp_roundtrip(Some(&outside), SocketAddrV4::new(HOST_IP, 8090)).unwrap();
        tcp_roundtrip(Some(&ns), SocketAddrV4::new(HOST_IP, 8090)).unwrap();
        srv.join().unwrap();
        nw.disconnect_all("ipt1").unwrap();
        nw.uninstall().unwrap();
        let all = std::process::Command::new("sh")
            .args(["-c", "iptables -t nat -S; iptables -S"])
            .output()
            .unwrap();
        assert!(!String::from_utf8_lossy(&all.stdout).contains("SKIFF"));
        assert!(!nft_tables().contains("table ip skiff"));
    });
}
