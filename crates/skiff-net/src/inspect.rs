//! Docker's `Network` JSON (`GET /networks`, `GET /networks/{id}`), built from the records.

use std::collections::BTreeMap;

use chrono::SecondsFormat;
use serde::{Deserialize, Serialize};

use crate::model::{Driver, EndpointRecord, NetworkRecord};

/// `Network` in the Engine API (v1.44).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkResource {
    pub name: String,
    #[serde(rename = "Id")]
    pub id: String,
    pub created: String,
    pub scope: String,
    pub driver: String,
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    #[serde(rename = "IPAM")]
    pub ipam: IpamResource,
    pub internal: bool,
    pub attachable: bool,
    pub ingress: bool,
    pub config_from: ConfigReference,
    pub config_only: bool,
    pub containers: BTreeMap<String, EndpointResource>,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IpamResource {
    pub driver: String,
    pub options: Option<BTreeMap<String, String>>,
    pub config: Vec<IpamConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IpamConfig {
    pub subnet: String,
    #[serde(rename = "IPRange", default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<String>,
    pub gateway: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ConfigReference {
    pub network: String,
}

/// One entry of `Containers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointResource {
    pub name: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    pub mac_address: String,
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
    #[serde(rename = "IPv6Address")]
    pub ipv6_address: String,
}

/// Docker's options of the default bridge network, shown by `docker network inspect bridge`.
pub(crate) fn default_bridge_options(
    bridge: &str,
    mtu: u32,
    icc: bool,
    masq: bool,
) -> BTreeMap<String, String> {
    [
        (
            "com.docker.network.bridge.default_bridge",
            "true".to_string(),
        ),
        ("com.docker.network.bridge.enable_icc", icc.to_string()),
        (
            "com.docker.network.bridge.enable_ip_masquerade",
            masq.to_string(),
        ),
        (
            "com.docker.network.bridge.host_binding_ipv4",
            "0.0.0.0".to_string(),
        ),
        ("com.docker.network.bridge.name", bridge.to_string()),
        ("com.docker.network.driver.mtu", mtu.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The resource for `rec`; `endpoints` fill `Containers` (empty for list views, as Docker).
pub fn resource<'a>(
    rec: &NetworkRecord,
    endpoints: impl IntoIterator<Item = &'a EndpointRecord>,
) -> NetworkResource {
    let prefix = rec.ipam.as_ref().map(|i| i.subnet.prefix()).unwrap_or(32);
    let containers = endpoints
        .into_iter()
        .map(|e| {
            (
                e.container_id.clone(),
                EndpointResource {
                    name: e.container_name.clone(),
                    endpoint_id: e.endpoint_id.clone(),
                    mac_address: e.mac.clone(),
                    ipv4_address: format!("{}/{prefix}", e.ip),
                    ipv6_address: String::new(),
                },
            )
        })
        .collect();
    let config = rec
        .ipam
        .iter()
        .map(|i| IpamConfig {
            subnet: i.subnet.to_string(),
            ip_range: i.ip_range.map(|r| r.to_string()),
            gateway: i.gateway.to_string(),
        })
        .collect();
    NetworkResource {
        name: rec.name.clone(),
        id: rec.id.clone(),
        created: rec.created.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        scope: "local".to_string(),
        driver: rec.driver.as_str().to_string(),
        enable_ipv6: false,
        ipam: IpamResource {
            driver: "default".to_string(),
            options: if rec.default_bridge || rec.driver != Driver::Bridge {
                None
            } else {
                Some(BTreeMap::new())
            },
            config,
        },
        internal: rec.internal,
        attachable: rec.attachable,
        ingress: false,
        config_from: ConfigReference::default(),
        config_only: false,
        containers,
        options: rec.options.clone(),
        labels: rec.labels.clone(),
    }
}
