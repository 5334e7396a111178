//! Docker's port publishing vocabulary: `-p [ip:][hostPort:]containerPort[/proto]` specs,
//! the API's `PortBindings` map (`{"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}`), the
//! requests the network layer allocates from it, and the published ports it reports back
//! (for `NetworkSettings.Ports` and `docker port`).

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Refused port specs and bindings; messages quote the offending text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    #[error("invalid port spec {0:?}: too many colons")]
    TooManyColons(String),
    #[error("invalid containerPort: {0}")]
    ContainerPort(String),
    #[error("invalid hostPort: {0}")]
    HostPort(String),
    #[error("invalid IP address: {0}")]
    HostIp(String),
    #[error("invalid proto: {0}")]
    Proto(String),
    #[error("invalid ranges specified for container and host ports: {0}")]
    RangeMismatch(String),
}

/// Transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

impl FromStr for Proto {
    type Err = PortError;
    fn from_str(s: &str) -> Result<Self, PortError> {
        match s.to_ascii_lowercase().as_str() {
            "" | "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            _ => Err(PortError::Proto(s.to_string())),
        }
    }
}

/// One host binding of a container port, as the API spells it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PortBinding {
    #[serde(default)]
    pub host_ip: String,
    #[serde(default)]
    pub host_port: String,
}

/// `HostConfig.PortBindings`: "80/tcp" → bindings.
pub type PortMap = BTreeMap<String, Vec<PortBinding>>;

fn parse_range(s: &str) -> Option<(u16, u16)> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|c| c.is_ascii_digit());
    if !digits(a) || !digits(b) {
        return None;
    }
    let (a, b): (u16, u16) = (a.parse().ok()?, b.parse().ok()?);
    (a <= b).then_some((a, b))
}

/// Parses one `-p` value into (port key "80/tcp", binding) pairs, as Docker's
/// `nat.ParsePortSpec`: container port ranges expand, a host range of the same size pairs
/// up with them, a host range against one container port stays a range ("pick one").
pub fn parse_port_spec(spec: &str) -> Result<Vec<(String, PortBinding)>, PortError> {
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, p)) => (r, p.parse::<Proto>()?),
        None => (spec, Proto::Tcp),
    };
    // "[::1]:8080:80" style IPv6 host addresses are bracketed.
    let (ip, rest) = if let Some(r) = rest.strip_prefix('[') {
        let (ip, after) = r
            .split_once(']')
            .ok_or_else(|| PortError::HostIp(rest.to_string()))?;
        let after = after
            .strip_prefix(':')
            .ok_or_else(|| PortError::TooManyColons(spec.to_string()))?;
        (Some(ip.to_string()), after)
    } else {
        (None, rest)
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (ip, host, container) = match (ip, parts.as_slice()) {
        (None, [c]) => (String::new(), "", *c),
        (None, [h, c]) => (String::new(), *h, *c),
        (None, [i, h, c]) => (i.to_string(), *h, *c),
        (Some(i), [h, c]) => (i, *h, *c),
        _ => return Err(PortError::TooManyColons(spec.to_string())),
    };
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        return Err(PortError::HostIp(ip));
    }
    let (c0, c1) =
        parse_range(container).ok_or_else(|| PortError::ContainerPort(container.to_string()))?;
    if c0 == 0 {
        return Err(PortError::ContainerPort(container.to_string()));
    }
    let host_range = if host.is_empty() {
        None
    } else {
        Some(parse_range(host).ok_or_else(|| PortError::HostPort(host.to_string()))?)
    };
    let n = c1 - c0;
    let mut out = Vec::with_capacity(usize::from(n) + 1);
    for i in 0..=n {
        let host_port = match host_range {
            None => String::new(),
            Some((h0, h1)) if h1 - h0 == n => (h0 + i).to_string(),
            Some((h0, h1)) if n == 0 => format!("{h0}-{h1}"),
            Some(_) => return Err(PortError::RangeMismatch(spec.to_string())),
        };
        out.push((
            format!("{}/{proto}", c0 + i),
            PortBinding {
                host_ip: ip.clone(),
                host_port,
            },
        ));
    }
    Ok(out)
}

/// Parses several `-p` values into a `PortBindings` map.
pub fn parse_port_specs<'a>(
    specs: impl IntoIterator<Item = &'a str>,
) -> Result<PortMap, PortError> {
    let mut map = PortMap::new();
    for s in specs {
        for (k, b) in parse_port_spec(s)? {
            map.entry(k).or_default().push(b);
        }
    }
    Ok(map)
}

/// `-P`: every exposed port ("80/tcp" keys of `ExposedPorts`) on a free host port.
pub fn publish_all<'a>(exposed: impl IntoIterator<Item = &'a str>, map: &mut PortMap) {
    for k in exposed {
        map.entry(k.to_string())
            .or_insert_with(|| vec![PortBinding::default()]);
    }
}

/// What the network layer is asked to publish: one container port on one host address, on a
/// given host port, any in a range, or any free one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRequest {
    pub proto: Proto,
    pub container_port: u16,
    pub host_ip: Ipv4Addr,
    /// `None`: any free port (Docker's ephemeral range).
    pub host_ports: Option<(u16, u16)>,
}

/// Turns a `PortBindings` map into requests. IPv6 host addresses are skipped (the network
/// layer is IPv4 only, as Docker is without `--ipv6`).
pub fn requests(map: &PortMap) -> Result<Vec<PortRequest>, PortError> {
    let mut out = Vec::new();
    for (key, bindings) in map {
        let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
        let proto: Proto = proto.parse()?;
        let container_port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p != 0 && port.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| PortError::ContainerPort(key.clone()))?;
        for b in bindings {
            let host_ip = match b.host_ip.as_str() {
                "" => Ipv4Addr::UNSPECIFIED,
                s => match s.parse::<std::net::IpAddr>() {
                    Ok(std::net::IpAddr::V4(ip)) => ip,
                    Ok(std::net::IpAddr::V6(_)) => continue,
                    Err(_) => return Err(PortError::HostIp(s.to_string())),
                },
            };
            let host_ports = match b.host_port.as_str() {
                "" | "0" => None,
                s => Some(parse_range(s).ok_or_else(|| PortError::HostPort(s.to_string()))?),
            };
            out.push(PortRequest {
                proto,
                container_port,
                host_ip,
                host_ports,
            });
        }
    }
    Ok(out)
}

/// A port actually published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PublishedPort {
    pub proto: Proto,
    pub container_port: u16,
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
}

/// `NetworkSettings.Ports`: every exposed port key, with its published bindings or `null`.
pub fn settings_ports<'a>(
    exposed: impl IntoIterator<Item = &'a str>,
    published: &[PublishedPort],
) -> BTreeMap<String, Option<Vec<PortBinding>>> {
    let mut out: BTreeMap<String, Option<Vec<PortBinding>>> =
        exposed.into_iter().map(|k| (k.to_string(), None)).collect();
    for p in published {
        out.entry(format!("{}/{}", p.container_port, p.proto))
            .or_insert(None)
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: p.host_ip.to_string(),
                host_port: p.host_port.to_string(),
            });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(ip: &str, port: &str) -> PortBinding {
        PortBinding {
            host_ip: ip.into(),
            host_port: port.into(),
        }
    }

    #[test]
    fn specs() {
        assert_eq!(
            parse_port_spec("80").unwrap(),
            vec![("80/tcp".into(), b("", ""))]
        );
        assert_eq!(
            parse_port_spec("8080:80/udp").unwrap(),
            vec![("80/udp".into(), b("", "8080"))]
        );
        assert_eq!(
            parse_port_spec("127.0.0.1:8080:80").unwrap(),
            vec![("80/tcp".into(), b("127.0.0.1", "8080"))]
        );
        assert_eq!(
            parse_port_spec("127.0.0.1::80").unwrap(),
            vec![("80/tcp".into(), b("127.0.0.1", ""))]
        );
        assert_eq!(
            parse_port_spec("[::1]:8080:80").unwrap(),
            vec![("80/tcp".into(), b("::1", "8080"))]
        );
        assert_eq!(
            parse_port_spec("8000-8001:80-81").unwrap(),
            vec![
                ("80/tcp".into(), b("", "8000")),
                ("81/tcp".into(), b("", "8001"))
            ]
        );
        assert_eq!(
            parse_port_spec("8000-8010:80").unwrap(),
            vec![("80/tcp".into(), b("", "8000-8010"))]
        );
        assert_eq!(parse_port_spec("80-81").unwrap().len(), 2);
    }

    #[test]
    fn bad_specs() {
        let e = |s: &str| parse_port_spec(s).unwrap_err().to_string();
        assert_eq!(e("80/sctp"), "invalid proto: sctp");
        assert_eq!(e("x:80"), "invalid hostPort: x");
        assert_eq!(e("8080:0"), "invalid containerPort: 0");
        assert_eq!(e("8080:70000"), "invalid containerPort: 70000");
        assert_eq!(e("1.2.3:8080:80"), "invalid IP address: 1.2.3");
        assert_eq!(
            e("8000-8002:80-81"),
            "invalid ranges specified for container and host ports: 8000-8002:80-81"
        );
        assert!(e("1:2:3:4").contains("too many colons"));
        assert!(parse_port_spec("90-80").is_err());
        assert!(parse_port_spec("").is_err());
        assert!(parse_port_spec("[::1:80").is_err());
    }

    #[test]
    fn map_to_requests_and_back() {
        let mut map = parse_port_specs([
            "8080:80",
            "127.0.0.1:5353:53/udp",
            "[::]:8080:80",
            "9000-9009:90",
        ])
        .unwrap();
        publish_all(["443/tcp", "80/tcp"], &mut map);
        let reqs = requests(&map).unwrap();
        assert_eq!(reqs.len(), 4, "{reqs:?}"); // the IPv6 binding is skipped
        assert!(reqs.contains(&PortRequest {
            proto: Proto::Udp,
            container_port: 53,
            host_ip: Ipv4Addr::LOCALHOST,
            host_ports: Some((5353, 5353)),
        }));
        assert!(reqs
            .iter()
            .any(|r| r.container_port == 443 && r.host_ports.is_none()));
        assert!(reqs
            .iter()
            .any(|r| r.container_port == 90 && r.host_ports == Some((9000, 9009))));
        let json = serde_json::to_string(&map).unwrap();
        assert!(
            json.contains(r#""80/tcp":[{"HostIp":"","HostPort":"8080"}"#),
            "{json}"
        );
        let published = [PublishedPort {
            proto: Proto::Tcp,
            container_port: 80,
            host_ip: Ipv4Addr::UNSPECIFIED,
            host_port: 8080,
        }];
        let s = settings_ports(["80/tcp", "81/tcp"], &published);
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"80/tcp":[{"HostIp":"0.0.0.0","HostPort":"8080"}],"81/tcp":null}"#
        );
        let bad: PortMap = [("x/tcp".to_string(), vec![])].into();
        assert!(requests(&bad).is_err());
    }
}
