//! Docker's seccomp profile format → OCI `linux.seccomp`, as moby's `profiles/seccomp`
//! `setupSeccomp` does for a container with a given capability bounding set on this host.
//!
//! - `archMap`: the entry whose `architecture` is the host's becomes `architectures`
//!   (that arch and its `subArchitectures`); `architectures` and `archMap` together are an error.
//! - each rule: skipped when `excludes.arches` holds the host arch (Go naming: amd64, arm64, ...),
//!   any of `excludes.caps` is held, or the kernel is at least `excludes.minKernel`; skipped
//!   unless the host arch is in `includes.arches`, every one of `includes.caps` is held and the
//!   kernel is at least `includes.minKernel`.

use std::str::FromStr;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder, LinuxSeccompFilterFlag,
    LinuxSeccompOperator, LinuxSyscall,
};
use serde::Deserialize;

use crate::SeccompError;

static DEFAULT_PROFILE: &[u8] = include_bytes!("../profiles/default.json");

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    #[serde(default)]
    default_action: String,
    default_errno_ret: Option<u32>,
    architectures: Option<Vec<String>>,
    arch_map: Option<Vec<ArchMap>>,
    syscalls: Option<Vec<Syscall>>,
    flags: Option<Vec<String>>,
    listener_path: Option<std::path::PathBuf>,
    listener_metadata: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: String,
    sub_architectures: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Syscall {
    #[serde(default)]
    name: String,
    names: Option<Vec<String>>,
    action: String,
    errno_ret: Option<u32>,
    args: Option<Vec<Arg>>,
    includes: Option<Filter>,
    excludes: Option<Filter>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Arg {
    index: usize,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Filter {
    caps: Option<Vec<String>>,
    arches: Option<Vec<String>>,
    min_kernel: Option<String>,
}

/// What the conversion needs to know about the host; [`Host::current`] for this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Go's GOARCH naming, as used in profiles' `arches` (amd64, arm64, s390x, ...).
    pub arch: String,
    /// The seccomp architecture to pick from `archMap`, if the host has one.
    pub seccomp_arch: Option<Arch>,
    /// Running kernel (major, minor); read lazily when `None` and a rule has `minKernel`.
    pub kernel: Option<(u32, u32)>,
}

impl Host {
    /// This machine: compile-time architecture, kernel version read when first needed.
    pub fn current() -> Self {
        let (arch, seccomp_arch) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", Some(Arch::ScmpArchX86_64)),
            "x86" => ("x86", Some(Arch::ScmpArchX86)),
            "aarch64" => ("arm64", Some(Arch::ScmpArchAarch64)),
            "arm" => ("arm", Some(Arch::ScmpArchArm)),
            "s390x" => ("s390x", Some(Arch::ScmpArchS390x)),
            "powerpc64" if cfg!(target_endian = "little") => {
                ("ppc64le", Some(Arch::ScmpArchPpc64le))
            }
            "powerpc64" => ("ppc64", Some(Arch::ScmpArchPpc64)),
            "riscv64" => ("riscv64", Some(Arch::ScmpArchRiscv64)),
            "loongarch64" => ("loong64", Some(Arch::ScmpArchLoongarch64)),
            "mips64" => ("mips64", Some(Arch::ScmpArchMips64)),
            other => (other, None),
        };
        Self {
            arch: arch.to_string(),
            seccomp_arch,
            kernel: None,
        }
    }

    fn kernel(&mut self) -> Result<(u32, u32), SeccompError> {
        if let Some(k) = self.kernel {
            return Ok(k);
        }
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_err(|source| SeccompError::KernelVersion { source })?;
        let k = parse_release(release.trim()).ok_or_else(|| SeccompError::KernelVersion {
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("unparsable release {release:?}"),
            ),
        })?;
        self.kernel = Some(k);
        Ok(k)
    }
}

/// "6.18.44-fc" → (6, 18).
fn parse_release(s: &str) -> Option<(u32, u32)> {
    let mut it = s.split(|c: char| !c.is_ascii_digit());
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// A profile's `minKernel`: exactly "major.minor" as moby's KernelVersion.
fn parse_min_kernel(s: &str) -> Result<(u32, u32), SeccompError> {
    let bad = || SeccompError::MinKernel(s.to_string());
    let (a, b) = s.split_once('.').ok_or_else(bad)?;
    Ok((a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?))
}

fn normalize_cap(c: &str) -> String {
    let c = c.trim().to_ascii_uppercase();
    if c.starts_with("CAP_") {
        c
    } else {
        format!("CAP_{c}")
    }
}

fn parse_arch(s: &str) -> Result<Arch, SeccompError> {
    Arch::from_str(s).map_err(|_| SeccompError::UnknownArch(s.to_string()))
}

/// Docker's default profile as OCI, for a container with `capabilities` (bounding set) here.
pub fn docker_default_profile(capabilities: &[String]) -> Result<LinuxSeccomp, SeccompError> {
    docker_profile_to_oci(DEFAULT_PROFILE, capabilities)
}

/// The embedded copy of Docker's default profile JSON.
pub fn docker_default_profile_json() -> &'static [u8] {
    DEFAULT_PROFILE
}

/// Docker profile JSON → OCI section for a container whose bounding set is `capabilities`
/// ("CAP_SYS_ADMIN" or "SYS_ADMIN"), on this host. A profile with neither `defaultAction` nor
/// `syscalls` means "unconfined" to Docker and is an error here; see [`docker_profile_to_oci_for`].
pub fn docker_profile_to_oci(
    json: &[u8],
    capabilities: &[String],
) -> Result<LinuxSeccomp, SeccompError> {
    docker_profile_to_oci_for(json, capabilities, &mut Host::current())?.ok_or_else(|| {
        SeccompError::DockerProfile("no defaultAction and no syscalls (unconfined)".into())
    })
}

/// [`docker_profile_to_oci`] for an explicit host; `Ok(None)` for an empty (unconfined) profile.
pub fn docker_profile_to_oci_for(
    json: &[u8],
    capabilities: &[String],
    host: &mut Host,
) -> Result<Option<LinuxSeccomp>, SeccompError> {
    let p: Profile =
        serde_json::from_slice(json).map_err(|source| SeccompError::DockerJson { source })?;
    let calls = p.syscalls.unwrap_or_default();
    if p.default_action.is_empty() && calls.is_empty() {
        return Ok(None);
    }
    if p.default_action.is_empty() {
        return Err(SeccompError::DockerProfile("missing defaultAction".into()));
    }
    let arches = p.architectures.unwrap_or_default();
    let arch_map = p.arch_map.unwrap_or_default();
    if !arches.is_empty() && !arch_map.is_empty() {
        return Err(SeccompError::DockerProfile(
            "both 'architectures' and 'archMap' are specified, use either".into(),
        ));
    }
    let caps: Vec<String> = capabilities.iter().map(|c| normalize_cap(c)).collect();
    let has_cap = |c: &str| caps.contains(&normalize_cap(c));

    let mut out = LinuxSeccomp::default();
    out.set_default_action(parse_action(&p.default_action)?);
    out.set_default_errno_ret(p.default_errno_ret);
    let mut oci_arches = arches
        .iter()
        .map(|a| parse_arch(a))
        .collect::<Result<Vec<_>, _>>()?;
    for m in &arch_map {
        let a = parse_arch(&m.architecture)?;
        let subs = m.sub_architectures.as_deref().unwrap_or_default();
        let subs = subs
            .iter()
            .map(|s| parse_arch(s))
            .collect::<Result<Vec<_>, _>>()?;
        if host.seccomp_arch == Some(a) {
            oci_arches.push(a);
            oci_arches.extend(subs);
        }
    }
    if !oci_arches.is_empty() {
        out.set_architectures(Some(oci_arches));
    }
    if let Some(flags) = p.flags.filter(|f| !f.is_empty()) {
        let flags = flags
            .iter()
            .map(|f| {
                LinuxSeccompFilterFlag::from_str(f)
                    .map_err(|_| SeccompError::UnknownFlag(f.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        out.set_flags(Some(flags));
    }
    out.set_listener_path(p.listener_path);
    out.set_listener_metadata(p.listener_metadata);

    let mut syscalls = Vec::with_capacity(calls.len());
    for call in calls {
        let names = match (call.name.is_empty(), call.names) {
            (false, Some(n)) if !n.is_empty() => {
                return Err(SeccompError::DockerProfile(format!(
                    "syscall {:?}: both 'name' and 'names' are specified, use either",
                    call.name
                )))
            }
            (false, _) => vec![call.name],
            (true, n) => n.unwrap_or_default(),
        };
        // Validate every rule, even the ones this host skips, so a bad profile fails everywhere.
        let action = parse_action(&call.action)?;
        let label = names.first().cloned().unwrap_or_default();
        let args = call
            .args
            .unwrap_or_default()
            .into_iter()
            .map(|a| {
                let op = LinuxSeccompOperator::from_str(&a.op).map_err(|_| {
                    SeccompError::UnknownOperator {
                        syscall: label.clone(),
                        op: a.op.clone(),
                    }
                })?;
                let mut b = LinuxSeccompArgBuilder::default()
                    .index(a.index)
                    .value(a.value)
                    .op(op);
                if a.value_two != 0 {
                    b = b.value_two(a.value_two);
                }
                b.build().map_err(|e| {
                    SeccompError::DockerProfile(format!("syscall {label:?}: argument: {e}"))
                })
            })
            .collect::<Result<Vec<_>, SeccompError>>()?;

        let ex = call.excludes.unwrap_or_default();
        let inc = call.includes.unwrap_or_default();
        let ex_kernel = ex.min_kernel.as_deref().map(parse_min_kernel).transpose()?;
        let inc_kernel = inc
            .min_kernel
            .as_deref()
            .map(parse_min_kernel)
            .transpose()?;
        if ex
            .arches
            .as_deref()
            .unwrap_or_default()
            .contains(&host.arch)
        {
            continue;
        }
        if ex
            .caps
            .as_deref()
            .unwrap_or_default()
            .iter()
            .any(|c| has_cap(c))
        {
            continue;
        }
        if let Some(k) = ex_kernel {
            if host.kernel()? >= k {
                continue;
            }
        }
        let inc_arches = inc.arches.as_deref().unwrap_or_default();
        if !inc_arches.is_empty() && !inc_arches.contains(&host.arch) {
            continue;
        }
        if !inc
            .caps
            .as_deref()
            .unwrap_or_default()
            .iter()
            .all(|c| has_cap(c))
        {
            continue;
        }
        if let Some(k) = inc_kernel {
            if host.kernel()? < k {
                continue;
            }
        }

        let mut s = LinuxSyscall::default();
        s.set_names(names);
        s.set_action(action);
        s.set_errno_ret(call.errno_ret);
        if !args.is_empty() {
            s.set_args(Some(args));
        }
        syscalls.push(s);
    }
    out.set_syscalls(Some(syscalls));
    Ok(Some(out))
}

fn parse_action(s: &str) -> Result<LinuxSeccompAction, SeccompError> {
    LinuxSeccompAction::from_str(s).map_err(|_| SeccompError::UnknownAction(s.to_string()))
}
