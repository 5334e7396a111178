//! The controller's error type, and its kinds for the API's status codes.

use crate::ipam::IpamError;
use crate::netlink::NetlinkError;
use crate::netns::NetnsError;
use crate::nft::NftError;
use crate::portalloc::PortAllocError;
use crate::ports::PortError;
use crate::store::StoreError;
use crate::sysctl::SysctlError;

/// What went wrong, for the daemon's error → HTTP status table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 404
    NotFound,
    /// 409 (name taken, endpoints attached, port allocated, already connected)
    Conflict,
    /// 400
    InvalidArgument,
    /// 403 (predefined networks)
    Forbidden,
    /// 500
    Internal,
}

/// Network controller failures; each names the network (and container) concerned.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("network {0} not found")]
    NotFound(String),
    #[error("network with name {0} already exists")]
    NameExists(String),
    #[error("network name {0:?}: must start with a letter or digit and hold only letters, digits, '_', '.' and '-'")]
    BadName(String),
    #[error("network {name}: {what}")]
    Invalid { name: String, what: String },
    #[error("{0} is a pre-defined network and cannot be removed")]
    Predefined(String),
    #[error("network {name}: {what}")]
    NotSupported { name: String, what: String },
    #[error("network {name} has active endpoints: {containers}")]
    ActiveEndpoints { name: String, containers: String },
    #[error("network {network}: container {container} is already connected")]
    AlreadyConnected { network: String, container: String },
    #[error("network {network}: container {container} is not connected")]
    NotConnected { network: String, container: String },
    #[error("network {name}: {source}")]
    Ipam {
        name: String,
        #[source]
        source: IpamError,
    },
    #[error("network {name}: {source}")]
    PortSpec {
        name: String,
        #[source]
        source: PortError,
    },
    #[error("network {name}: {source}")]
    Ports {
        name: String,
        #[source]
        source: PortAllocError,
    },
    #[error("network {name}: {source}")]
    Netlink {
        name: String,
        #[source]
        source: NetlinkError,
    },
    #[error("network {name}: {source}")]
    Sysctl {
        name: String,
        #[source]
        source: SysctlError,
    },
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error("firewall: {0}")]
    Firewall(#[from] NftError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl NetworkError {
    /// The kind, for status codes.
    pub fn kind(&self) -> ErrorKind {
        match self {
            NetworkError::NotFound(_) | NetworkError::NotConnected { .. } => ErrorKind::NotFound,
            NetworkError::NameExists(_)
            | NetworkError::ActiveEndpoints { .. }
            | NetworkError::AlreadyConnected { .. } => ErrorKind::Conflict,
            NetworkError::Ports { source, .. } => match source {
                PortAllocError::Allocated { .. } | PortAllocError::InUse { .. } => {
                    ErrorKind::Conflict
                }
                _ => ErrorKind::Internal,
            },
            NetworkError::Ipam { source, .. } => match source {
                IpamError::InUse { .. } => ErrorKind::Conflict,
                IpamError::PoolsExhausted | IpamError::Exhausted { .. } => ErrorKind::Internal,
                _ => ErrorKind::InvalidArgument,
            },
            NetworkError::BadName(_)
            | NetworkError::Invalid { .. }
            | NetworkError::NotSupported { .. }
            | NetworkError::PortSpec { .. } => ErrorKind::InvalidArgument,
            NetworkError::Predefined(_) => ErrorKind::Forbidden,
            NetworkError::Netlink { .. }
            | NetworkError::Sysctl { .. }
            | NetworkError::Netns(_)
            | NetworkError::Firewall(_)
            | NetworkError::Store(_) => ErrorKind::Internal,
        }
    }
}
