//! Root tests of bridge networks for real, each inside its own throwaway network namespace:
//! containers (namespace files) connected to a bridge ping and talk TCP; remove and
//! uninstall leave no veth, bridge or table behind; validation errors read well.

mod common;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};

use common::*;
use skiff_net::{netns, ConnectRequest, CreateNetwork, ErrorKind, Networks};

fn connect_req(nw: &Networks, id: &str, name: &str) -> ConnectRequest {
    ConnectRequest {
        container_id: id.to_string(),
        container_name: name.to_string(),
        netns: nw.create_netns(id).unwrap(),
        ..Default::default()
    }
}

#[test]
fn containers_on_a_bridge_talk_and_nothing_leaks() {
    if !can_run() {
        return;
    }
    in_fresh_netns(|| {
        let env = Env::new();
        let nw = Networks::open(env.config()).unwrap();
        // Predefined networks, the default bridge on skiff0 with the first pool subnet.
        let list = nw.list();
        let names: Vec<&str> = list.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["bridge", "host", "none"]);
        let bridge = nw.inspect("bridge").unwrap();
        assert_eq!(bridge.ipam.config[0].subnet, "172.17.0.0/16");
        assert_eq!(bridge.ipam.config[0].gateway, "172.17.0.1");
        assert_eq!(bridge.options["com.docker.network.bridge.name"], "skiff0");
        assert!(links().contains(&"skiff0".to_string()));
        assert_eq!(
            std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
                .unwrap()
                .trim(),
            "1"
        );
        assert_eq!(
            std::fs::read_to_string("/proc/sys/net/ipv4/conf/skiff0/route_localnet")
                .unwrap()
                .trim(),
            "1"
        );

        let id = nw
            .create(CreateNetwork {
                name: "front".into(),
                labels: BTreeMap::from([("team".to_string(), "a".to_string())]),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(id.len(), 64);
        let front = nw.inspect(&id[..8]).unwrap();
        assert_eq!(front.ipam.config[0].subnet, "172.18.0.0/16");
        let bridge_dev = format!("br-{}", &id[..12]);
        assert!(links().contains(&bridge_dev));

        let r1 = connect_req(&nw, "c1aaaaaaaaaaaaaa", "one");
        let r2 = connect_req(&nw, "c2bbbbbbbbbbbbbb", "two");
        let e1 = nw.connect("front", &r1).unwrap();
        let e2 = nw.connect("front", &r2).unwrap();
        assert_eq!(e1.ip, Ipv4Addr::new(172, 18, 0, 2));
        assert_eq!(e2.ip, Ipv4Addr::new(172, 18, 0, 3));
        assert_eq!(e1.mac, "02:42:ac:12:00:02");
        assert_eq!((e1.ifname.as_str(), e1.prefix), ("eth0", 16));
        assert_eq!(e1.gateway, Some(Ipv4Addr::new(172, 18, 0, 1)));
        // A second network becomes eth1 in the container; the default route stays on eth0.
        let eb = nw.connect("bridge", &r1).unwrap();
        assert_eq!(eb.ifname, "eth1");
        let (ok, out) = bb_in(&r1.netns, &["ip", "route"]);
        assert!(
            ok && out.contains("default via 172.18.0.1 dev eth0"),
            "{out}"
        );
        let (ok, out) = bb_in(&r1.netns, &["ip", "link", "show", "eth0"]);
        assert!(ok && out.contains("02:42:ac:12:00:02"), "{out}");

        let (ok, out) = bb_in(&r1.netns, &["ping", "-c", "1", "-W", "2", "172.18.0.3"]);
        assert!(ok, "ping c1 -> c2: {out}");
        let (ok, out) = bb_in(&r2.netns, &["ping", "-c", "1", "-W", "2", "172.18.0.1"]);
        assert!(ok, "ping c2 -> gateway: {out}");
        let server = tcp_echo_in(&r1.netns, 7000, 1);
        tcp_roundtrip(Some(&r2.netns), SocketAddrV4::new(e1.ip, 7000)).unwrap();
        server.join().unwrap();

        // Inspect shows the containers; remove refuses and names them.
        let front = nw.inspect("front").unwrap();
        assert_eq!(front.containers.len(), 2);
        assert_eq!(
            front.containers["c1aaaaaaaaaaaaaa"].ipv4_address,
            "172.18.0.2/16"
        );
        assert_eq!(front.labels["team"], "a");
        let err = nw.remove("front").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict);
        assert_eq!(
            err.to_string(),
            "network front has active endpoints: one, two"
        );
        let err = nw.connect("front", &r1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "network front: container one is already connected"
        );

        // Disconnect removes both veth ends; the address is reusable later.
        nw.disconnect("front", "c2bbbbbbbbbbbbbb").unwrap();
        assert!(!links().contains(&format!("skv{}", &e2.endpoint_id[..11])));
        let (ok, out) = bb_in(&r2.netns, &["ip", "link"]);
        assert!(ok && !out.contains("eth0"), "{out}");
        nw.disconnect_all("c1aaaaaaaaaaaaaa").unwrap();
        assert!(nw.endpoints("c1aaaaaaaaaaaaaa").is_empty());
        assert!(
            !links()
                .iter()
                .any(|l| l.starts_with("skv") || l.starts_with("skp")),
            "{:?}",
            links()
        );
        nw.remove("front").unwrap();
        assert!(!links().contains(&bridge_dev));
        assert!(nw.inspect("front").is_err());
        nw.remove_netns("c1aaaaaaaaaaaaaa").unwrap();
        nw.remove_netns("c2bbbbbbbbbbbbbb").unwrap();
        assert!(netns::list(&env.netns_dir()).unwrap().is_empty());

        // Uninstall takes skiff0 and the table away.
        assert!(nft_tables().contains("table ip skiff"));
        nw.uninstall().unwrap();
        assert!(!links().contains(&"skiff0".to_string()));
        assert!(!nft_tables().contains("skiff"), "{}", nft_tables());
    });
}

#[test]
fn create_validation_and_static_ips() {
    if !can_run() {
        return;
    }
    in_fresh_netns(|| {
        let env = Env::new();
        let nw = Networks::open(env.config()).unwrap();
        let create = |name: &str, subnet: Option<&str>, opts: &[(&str, &str)]| {
            nw.create(CreateNetwork {
                name: name.into(),
                subnet: subnet.map(str::to_string),
                options: opts
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                ..Default::default()
            })
        };
        let e = |r: Result<String, skiff_net::NetworkError>| r.unwrap_err().to_string();
        assert_eq!(
            e(create("foo", Some("10.0.0.0/33"), &[])),
            "network foo: subnet 10.0.0.0/33: invalid prefix"
        );
        assert_eq!(
            e(create("foo", Some("10.1.0.1/16"), &[])),
            "network foo: subnet 10.1.0.1/16: host bits set, it should be 10.1.0.0/16"
        );
        assert_eq!(
            e(create("foo", Some("172.17.5.0/24"), &[])),
            "network foo: subnet 172.17.5.0/24 overlaps with network bridge (172.17.0.0/16)"
        );
        assert_eq!(e(create("foo", None, &[("com.docker.network.driver.mtu", "abc")])), "network foo: option com.docker.network.driver.mtu=abc: must be a number from 68 to 65535");
        assert_eq!(
            e(create(
                "foo",
                None,
                &[("com.docker.network.bridge.enable_icc", "maybe")]
            )),
            "network foo: option com.docker.network.bridge.enable_icc=maybe: invalid boolean"
        );
        assert!(e(create(
            "foo",
            None,
            &[("com.docker.network.bridge.name", "a/b")]
        ))
        .contains("interface name"));
        assert!(e(create("bad name", None, &[])).contains("network name \"bad name\""));
        assert_eq!(
            e(create("bridge", None, &[])),
            "network with name bridge already exists"
        );
        assert_eq!(
            nw.remove("bridge").unwrap_err().to_string(),
            "bridge is a pre-defined network and cannot be removed"
        );
        assert_eq!(
            nw.remove("host").unwrap_err().kind(),
            skiff_net::ErrorKind::Forbidden
        );
        assert_eq!(
            nw.remove("nope").unwrap_err().to_string(),
            "network nope not found"
        );

        // A user subnet with a custom bridge name, MTU and ip-range; static --ip.
        nw.create(CreateNetwork {
            name: "lab".into(),
            subnet: Some("10.99.0.0/24".into()),
            gateway: Some("10.99.0.254".into()),
            ip_range: Some("10.99.0.128/25".into()),
            options: [
                ("com.docker.network.bridge.name", "sklab0"),
                ("com.docker.network.driver.mtu", "1400"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            ..Default::default()
        })
        .unwrap();
        let mut r = connect_req(&nw, "s1", "s1");
        r.ipv4 = Some(Ipv4Addr::new(10, 99, 0, 5));
        let ep = nw.connect("lab", &r).unwrap();
        assert_eq!(
            (ep.ip, ep.gateway),
            (
                Ipv4Addr::new(10, 99, 0, 5),
                Some(Ipv4Addr::new(10, 99, 0, 254))
            )
        );
        let (ok, out) = bb_in(&r.netns, &["ip", "link", "show", "eth0"]);
        assert!(ok && out.contains("mtu 1400"), "{out}");
        let ep2 = nw.connect("lab", &connect_req(&nw, "s2", "s2")).unwrap();
        assert_eq!(ep2.ip, Ipv4Addr::new(10, 99, 0, 128));
        let mut r3 = connect_req(&nw, "s3", "s3");
        r3.ipv4 = Some(Ipv4Addr::new(10, 99, 0, 5));
        assert_eq!(
            nw.connect("lab", &r3).unwrap_err().to_string(),
            "network lab: address 10.99.0.5 is already in use"
        );
        r3.ipv4 = Some(Ipv4Addr::new(10, 98, 0, 5));
        assert_eq!(
            nw.connect("lab", &r3).unwrap_err().to_string(),
            "network lab: address 10.98.0.5 is not in subnet 10.99.0.0/24"
        );
        // Static IPs and aliases are refused on the default bridge.
        r3.ipv4 = Some(Ipv4Addr::new(172, 17, 0, 9));
        assert!(nw
            .connect("bridge", &r3)
            .unwrap_err()
            .to_string()
            .contains("user configured subnets"));
        r3.ipv4 = None;
        r3.aliases = vec!["x".into()];
        assert!(nw
            .connect("bridge", &r3)
            .unwrap_err()
            .to_string()
            .contains("aliases"));
        assert!(links().contains(&"sklab0".to_string()));
        // Failed connects left nothing behind.
        let skv = links().iter().filter(|l| l.starts_with("skv")).count();
        assert_eq!(skv, 2);
        // Prune keeps networks in use.
        nw.create(CreateNetwork {
            name: "idle".into(),
            ..Default::default()
        })
        .unwrap();
        let pruned = nw.prune(|_| true).unwrap();
        assert_eq!(pruned, vec!["idle".to_string()]);
        nw.disconnect_all("s1").unwrap();
        nw.disconnect_all("s2").unwrap();
        assert_eq!(
            nw.prune(|n| n.name == "lab").unwrap(),
            vec!["lab".to_string()]
        );
        assert!(!links().contains(&"sklab0".to_string()));
        nw.uninstall().unwrap();
    });
}

#[test]
fn reconcile_after_a_crash() {
    if !can_run() {
        return;
    }
    in_fresh_netns(|| {
        let env = Env::new();
        let (net_id, ip1) = {
            let nw = Networks::open(env.config()).unwrap();
            let id = nw
                .create(CreateNetwork {
                    name: "app".into(),
                    ..Default::default()
                })
                .unwrap();
            let e1 = nw
                .connect("app", &connect_req(&nw, "live1", "live1"))
                .unwrap();
            let mut r = connect_req(&nw, "dead2", "dead2");
            r.ports = skiff_net::ports::requests(
                &skiff_net::ports::parse_port_specs(["8081:80"]).unwrap(),
            )
            .unwrap();
            nw.connect("app", &r).unwrap();
            (id, e1.ip)
            // Dropped without cleanup: the daemon "crashed".
        };
        // A stray veth a crash between create and record could leave.
        let mut nl = skiff_net::netlink::Netlink::open().unwrap();
        nl.create_veth("skv0123456789a", "skp0123456789a", 1500)
            .unwrap();
        assert!(nft_table_text().contains("dport 8081"));

        let nw = Networks::open(env.config()).unwrap();
        assert_eq!(nw.inspect("app").unwrap().id, net_id);
        assert_eq!(nw.inspect("app").unwrap().containers.len(), 2);
        let live = ["live1".to_string()].into_iter().collect();
        let report = nw.reconcile(&live).unwrap();
        assert_eq!(report.endpoints_removed, vec!["dead2".to_string()]);
        // Deleting either end of the stray pair takes both.
        assert_eq!(report.veths_deleted.len(), 1, "{report:?}");
        assert!(!links().iter().any(|l| l.ends_with("0123456789a")));
        assert_eq!(report.netns_removed, vec!["dead2".to_string()]);
        assert!(!nft_table_text().contains("dport 8081"));
        assert_eq!(
            links()
                .iter()
                .filter(|l| l.starts_with("skv") || l.starts_with("skp"))
                .count(),
            1
        );
        // The survivor still works and keeps its address; a newcomer gets another.
        let (ok, out) = bb_in(
            &nw.netns_path("live1"),
            &["ping", "-c", "1", "-W", "2", "172.18.0.1"],
        );
        assert!(ok, "{out}");
        let e3 = nw
            .connect("app", &connect_req(&nw, "new3", "new3"))
            .unwrap();
        assert_ne!(e3.ip, ip1);
        // After a "reboot" (bridge gone), reconcile makes it again.
        let dev = format!("br-{}", &net_id[..12]);
        nl.delete_link_by_name(&dev).unwrap();
        nw.reconcile(
            &["live1".to_string(), "new3".to_string()]
                .into_iter()
                .collect(),
        )
        .unwrap();
        assert!(links().contains(&dev));
        nw.disconnect_all("live1").unwrap();
        nw.disconnect_all("new3").unwrap();
        nw.reconcile(&Default::default()).unwrap();
        assert!(netns::list(&env.netns_dir()).unwrap().is_empty());
        assert!(!links().iter().any(|l| l.starts_with("skv")));
        nw.uninstall().unwrap();
    });
}

#[test]
fn netns_files() {
    if !can_run() {
        return;
    }
    let env = Env::new();
    let d = env.netns_dir();
    let p = netns::create(&d, "x1").unwrap();
    assert!(netns::is_netns_file(&p));
    assert_eq!(netns::create(&d, "x1").unwrap(), p);
    assert!(netns::create(&d, "../x").is_err());
    // It is a namespace of its own: a link made inside is not in ours.
    let mut nl = netns::run_in(&p, skiff_net::netlink::Netlink::open)
        .unwrap()
        .unwrap();
    nl.create_bridge("skns0", 1500).unwrap();
    assert!(!links().contains(&"skns0".to_string()));
    netns::remove(&d, "x1").unwrap();
    netns::remove(&d, "x1").unwrap();
    assert!(!p.exists());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&format!("{} ", p.display())));
}
