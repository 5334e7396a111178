//! OCI seccomp profiles compiled to classic BPF once, installed cheaply.
//!
//! - [`compile`]: OCI `linux.seccomp` → [`CompiledFilter`] with runc's semantics (libseccomp
//!   builds the program, plus runc's -ENOSYS stub for syscalls newer than the profile).
//! - [`CompiledFilter::install`]: load it in a forked child right before execve, with no
//!   allocation and no libseccomp.
//! - [`FilterCache`]: memory + on-disk cache so a profile is compiled once per host.
//! - [`docker_profile_to_oci`] / [`docker_default_profile`]: Docker's profile format, as moby
//!   converts it for a container's capabilities on this host.
//!
//! ```no_run
//! # fn main() -> Result<(), skiff_seccomp::SeccompError> {
//! use skiff_seccomp::{docker_default_profile, set_no_new_privs, FilterCache};
//!
//! // Daemon, once per process: the cache compiles each distinct profile once per host.
//! let cache = FilterCache::new(Some("/var/lib/skiff/seccomp".into()));
//! let caps = ["CAP_CHOWN".to_string(), "CAP_NET_BIND_SERVICE".to_string()];
//! let filter = cache.get_or_compile(&docker_default_profile(&caps)?)?;
//!
//! // Container init, after fork and right before execve: no allocation, no libseccomp.
//! set_no_new_privs()?;
//! let listener = filter.install()?; // Some(fd) only with SCMP_ACT_NOTIFY
//! # drop(listener); Ok(()) }
//! ```

mod cache;
mod compile;
mod docker;
mod enosys;
mod error;
mod filter;
mod install;

pub use cache::{cache_key, CacheStats, FilterCache};
pub use compile::compile;
pub use docker::{
    docker_default_profile, docker_default_profile_json, docker_profile_to_oci,
    docker_profile_to_oci_for, Host,
};
pub use error::SeccompError;
pub use filter::{
    CompiledFilter, FLAG_LOG, FLAG_NEW_LISTENER, FLAG_SPEC_ALLOW, FLAG_TSYNC, FLAG_TSYNC_ESRCH,
    FLAG_WAIT_KILLABLE_RECV, MAX_INSNS,
};
pub use install::{set_no_new_privs, supported_flags};
