//! Root test of the embedded DNS server for real: containers on a user-defined network resolve
//! each other by name, alias and short id at 127.0.0.11 (UDP and TCP), only on the networks
//! they share; other names go to a fake upstream resolver on 127.0.0.53 in the test's "host"
//! namespace.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream, UdpSocket};
use std::path::Path;
use std::time::Duration;

use common::*;
use skiff_net::dns::codec::{self, Answer, TYPE_A, TYPE_AAAA, TYPE_PTR};
use skiff_net::{netns, resolv, ConnectRequest, CreateNetwork, DnsServer, Networks};

/// A fake upstream: answers `example.com` A with 198.51.100.7, NXDOMAIN for the rest.
fn fake_upstream() -> std::thread::JoinHandle<()> {
    let s = UdpSocket::bind("127.0.0.53:53").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    std::thread::spawn(move || {
        let mut b = [0u8; 512];
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            let Ok((n, peer)) = s.recv_from(&mut b) else {
                continue;
            };
            let Ok(q) = codec::parse(&b[..n]) else {
                continue;
            };
            if q.questions.first().is_some_and(|q| q.name == "stop.test") {
                break;
            }
            let r = if q.questions[0].name == "example.com" {
                codec::response(&q, 0, &[Answer::A(Ipv4Addr::new(198, 51, 100, 7))], 60)
            } else {
                codec::response(&q, codec::RCODE_NXDOMAIN, &[], 0)
            };
            let _ = s.send_to(&r, peer);
        }
    })
}

/// Asks 127.0.0.11 from inside `ns` over UDP; returns (rcode, A/PTR answers as text).
fn ask(ns: &Path, name: &str, qtype: u16) -> Option<(u8, Vec<String>)> {
    let s = netns::run_in(ns, || UdpSocket::bind("0.0.0.0:0").unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(4))).unwrap();
    // Connected, so a closed server port fails fast (ICMP port unreachable).
    s.connect("127.0.0.11:53").unwrap();
    s.send(&codec::query(0x1234, name, qtype)).unwrap();
    let mut b = [0u8; 1500];
    let n = s.recv(&mut b).ok()?;
    Some(decode(&b[..n]))
}

fn decode(b: &[u8]) -> (u8, Vec<String>) {
    let m = codec::parse(b).unwrap();
    assert_eq!(m.header.id, 0x1234);
    let answers = m
        .answers
        .iter()
        .map(|a| match a.rtype {
            TYPE_A => Ipv4Addr::new(a.rdata[0], a.rdata[1], a.rdata[2], a.rdata[3]).to_string(),
            _ => codec::read_name(&a.rdata, 0).unwrap().0,
        })
        .collect();
    (m.header.rcode(), answers)
}

fn ask_tcp(ns: &Path, name: &str) -> (u8, Vec<String>) {
    let addr = SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 11), 53);
    let mut c = netns::run_in(ns, move || TcpStream::connect(addr).unwrap()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(4))).unwrap();
    let q = codec::query(0x1234, name, TYPE_A);
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&q);
    c.write_all(&framed).unwrap();
    let mut len = [0u8; 2];
    c.read_exact(&mut len).unwrap();
    let mut b = vec![0u8; usize::from(u16::from_be_bytes(len))];
    c.read_exact(&mut b).unwrap();
    decode(&b)
}

#[test]
fn embedded_dns_resolves_names_on_shared_networks() {
    if !can_run() {
        return;
    }
    in_fresh_netns(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let upstream = fake_upstream();
        let env = Env::new();
        let nw = Networks::open(env.config()).unwrap();
        nw.create(CreateNetwork {
            name: "app".into(),
            ..Default::default()
        })
        .unwrap();
        nw.create(CreateNetwork {
            name: "other".into(),
            ..Default::default()
        })
        .unwrap();
        let dns = DnsServer::new(rt.handle().clone());
        let ups = resolv::upstreams("nameserver 127.0.0.53\n", &[]);
        let web_id = "abcdef0123456789".to_string() + &"0".repeat(48);
        let mut nss = Vec::new();
        for (id, name, net, aliases) in [
            (web_id.as_str(), "web", "app", vec!["www".to_string()]),
            ("client1", "client", "app", vec![]),
            ("stranger", "stranger", "other", vec![]),
        ] {
            let ns = nw.create_netns(id).unwrap();
            nw.connect(
                net,
                &ConnectRequest {
                    container_id: id.into(),
                    container_name: name.into(),
                    aliases,
                    netns: ns.clone(),
                    ..Default::default()
                },
            )
            .unwrap();
            assert!(nw.uses_embedded_dns(id));
            dns.attach(id, &ns, ups.clone()).unwrap();
            nss.push(ns);
        }
        dns.set_table(nw.dns_table());
        let (client, stranger) = (&nss[1], &nss[2]);
        let web_ip = "172.18.0.2".to_string();

        assert_eq!(
            ask(client, "web", TYPE_A).unwrap(),
            (0, vec![web_ip.clone()])
        );
        assert_eq!(
            ask(client, "WWW.", TYPE_A).unwrap(),
            (0, vec![web_ip.clone()])
        );
        assert_eq!(
            ask(client, "abcdef012345", TYPE_A).unwrap(),
            (0, vec![web_ip.clone()])
        );
        assert_eq!(
            ask(client, "web.app", TYPE_A).unwrap(),
            (0, vec![web_ip.clone()])
        );
        assert_eq!(ask(client, "web", TYPE_AAAA).unwrap(), (0, vec![]));
        assert_eq!(
            ask(client, "2.0.18.172.in-addr.arpa", TYPE_PTR).unwrap(),
            (0, vec!["web".to_string()])
        );
        assert_eq!(ask_tcp(client, "web"), (0, vec![web_ip.clone()]));
        // Forwarded to the upstream.
        assert_eq!(
            ask(client, "example.com", TYPE_A).unwrap(),
            (0, vec!["198.51.100.7".to_string()])
        );
        assert_eq!(
            ask(client, "nowhere.test", TYPE_A).unwrap().0,
            codec::RCODE_NXDOMAIN
        );
        // Not on the same network: not resolved locally.
        assert_eq!(
            ask(stranger, "web", TYPE_A).unwrap().0,
            codec::RCODE_NXDOMAIN
        );
        // Garbage gets FORMERR or silence, and the server keeps serving.
        let s = netns::run_in(client, || UdpSocket::bind("0.0.0.0:0").unwrap()).unwrap();
        s.send_to(
            &[0x12, 0x34, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0xff],
            "127.0.0.11:53",
        )
        .unwrap();
        s.send_to(&[1, 2, 3], "127.0.0.11:53").unwrap();
        assert_eq!(ask(client, "web", TYPE_A).unwrap().1, vec![web_ip.clone()]);

        // After disconnect + detach the name is gone and the sockets closed.
        dns.detach(&web_id);
        nw.disconnect_all(&web_id).unwrap();
        dns.set_table(nw.dns_table());
        assert_eq!(ask(client, "web", TYPE_A).unwrap().0, codec::RCODE_NXDOMAIN);
        assert!(ask(&nss[0], "client", TYPE_A).is_none());
        assert_eq!(
            dns.attached(),
            vec!["client1".to_string(), "stranger".to_string()]
        );

        // resolv.conf for containers on user-defined networks.
        let conf = resolv::container_resolv_conf(
            "nameserver 127.0.0.53\nsearch x\n",
            true,
            &Default::default(),
        );
        assert_eq!(conf, "nameserver 127.0.0.11\nsearch x\noptions ndots:0\n");

        drop(dns);
        for c in ["client1", "stranger"] {
            nw.disconnect_all(c).unwrap();
        }
        nw.uninstall().unwrap();
        let stop = UdpSocket::bind("127.0.0.1:0").unwrap();
        stop.send_to(&codec::query(1, "stop.test", TYPE_A), "127.0.0.53:53")
            .unwrap();
        upstream.join().unwrap();
        rt.shutdown_timeout(Duration::from_secs(1));
    });
}
