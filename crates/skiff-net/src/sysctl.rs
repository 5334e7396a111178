//! The few sysctls bridge networking needs. Network sysctls under /proc/sys/net belong to the
//! network namespace of the thread that opens them, so these act on the caller's namespace.

use std::io;
use std::path::PathBuf;

/// A sysctl write that failed.
#[derive(Debug, thiserror::Error)]
#[error("sysctl {key}={value}: {source}")]
pub struct SysctlError {
    pub key: String,
    pub value: String,
    #[source]
    pub source: io::Error,
}

fn path_of(key: &str) -> PathBuf {
    PathBuf::from("/proc/sys").join(key.replace('.', "/"))
}

/// Writes `value` to sysctl `key` (dotted, e.g. `net.ipv4.ip_forward`) unless it already has
/// that value. Interface names with dots are not supported (bridge names never have them).
pub fn set(key: &str, value: &str) -> Result<(), SysctlError> {
    let p = path_of(key);
    if std::fs::read_to_string(&p).is_ok_and(|v| v.trim() == value) {
        return Ok(());
    }
    std::fs::write(&p, value).map_err(|source| SysctlError {
        key: key.to_string(),
        value: value.to_string(),
        source,
    })
}

/// Turns on IPv4 forwarding.
pub fn enable_ip_forward() -> Result<(), SysctlError> {
    set("net.ipv4.ip_forward", "1")
}

/// Lets the host reach published ports on 127.0.0.1: packets with a loopback source may be
/// routed out of `bridge` (they are masqueraded to the bridge address on the way).
pub fn enable_route_localnet(bridge: &str) -> Result<(), SysctlError> {
    set(&format!("net.ipv4.conf.{bridge}.route_localnet"), "1")
}
