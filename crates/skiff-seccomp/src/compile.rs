//! OCI `linux.seccomp` → classic BPF, with runc's semantics (libcontainer/seccomp).
//!
//! libseccomp builds the program (rule ordering, arch dispatch, binary-tree optimisation) and
//! exports it into a memfd; the -ENOSYS stub from [`crate::enosys`] is prepended; the result is
//! a [`CompiledFilter`] that installs without libseccomp.

use std::io::{Read, Seek};
use std::os::fd::{FromRawFd, OwnedFd};

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
    LinuxSyscall,
};

use crate::filter::{
    CompiledFilter, FLAG_LOG, FLAG_NEW_LISTENER, FLAG_SPEC_ALLOW, FLAG_TSYNC, FLAG_TSYNC_ESRCH,
    FLAG_WAIT_KILLABLE_RECV, MAX_INSNS,
};
use crate::{enosys, install, SeccompError};

/// Rule count above which libseccomp's binary-tree optimisation is enabled (as runc does; 2.5.4
/// misbehaves with the tree and no rules).
const OPTIMIZE_ABOVE: usize = 32;

/// OCI action (+ errnoRet) → libseccomp action, as runc's `getAction`.
pub(crate) fn action(
    act: LinuxSeccompAction,
    ret: Option<u32>,
    what: &str,
) -> Result<ScmpAction, SeccompError> {
    let data = |ret: Option<u32>| -> Result<u16, SeccompError> {
        let v = ret.unwrap_or(libc::EPERM as u32);
        u16::try_from(v).map_err(|_| SeccompError::ReturnValue {
            what: what.to_string(),
            value: v,
        })
    };
    Ok(match act {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(i32::from(data(ret)?)),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(data(ret)?),
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
    })
}

/// OCI architecture → libseccomp token.
pub(crate) fn arch(a: Arch) -> ScmpArch {
    match a {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    }
}

fn operator(op: LinuxSeccompOperator, value: u64) -> ScmpCompareOp {
    match op {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        LinuxSeccompOperator::ScmpCmpMaskedEq => ScmpCompareOp::MaskedEqual(value),
    }
}

/// The libseccomp conditions of one OCI rule, grouped as runc does: one group (AND) when every
/// condition is on a different argument, else one group per condition (OR).
fn condition_groups(
    name: &str,
    call: &LinuxSyscall,
) -> Result<Vec<Vec<ScmpArgCompare>>, SeccompError> {
    let args = call.args().as_deref().unwrap_or_default();
    let mut per_index = [0u8; 6];
    let mut conds = Vec::with_capacity(args.len());
    for a in args {
        let index = a.index();
        let idx = u32::try_from(index)
            .ok()
            .filter(|&i| i < 6)
            .ok_or_else(|| SeccompError::ArgIndex {
                syscall: name.to_string(),
                index,
            })?;
        per_index[index] += 1;
        // SCMP_CMP_MASKED_EQ: value is the mask, valueTwo the datum; otherwise value is the datum.
        let datum = match a.op() {
            LinuxSeccompOperator::ScmpCmpMaskedEq => a.value_two().unwrap_or(0),
            _ => a.value(),
        };
        conds.push(ScmpArgCompare::new(idx, operator(a.op(), a.value()), datum));
    }
    Ok(if per_index.iter().any(|&n| n > 1) {
        conds.into_iter().map(|c| vec![c]).collect()
    } else {
        vec![conds]
    })
}

fn filter_flags(profile: &LinuxSeccomp, needs_notify: bool) -> Result<u32, SeccompError> {
    let mut flags = 0;
    for f in profile.flags().as_deref().unwrap_or_default() {
        flags |= match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => FLAG_SPEC_ALLOW,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv if needs_notify => {
                FLAG_WAIT_KILLABLE_RECV
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                tracing::debug!("seccomp: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV ignored without SCMP_ACT_NOTIFY");
                0
            }
        };
    }
    if needs_notify {
        flags |= FLAG_NEW_LISTENER;
        if flags & FLAG_TSYNC != 0 {
            // TSYNC and NEW_LISTENER are only compatible with TSYNC_ESRCH.
            flags |= FLAG_TSYNC_ESRCH;
        }
    }
    let supported = install::supported_flags();
    if needs_notify && supported & FLAG_NEW_LISTENER == 0 {
        return Err(SeccompError::KernelUnsupported(
            "SECCOMP_FILTER_FLAG_NEW_LISTENER (SCMP_ACT_NOTIFY)",
        ));
    }
    let mut dropped = flags & !supported;
    if dropped & FLAG_TSYNC_ESRCH != 0 {
        // Without TSYNC_ESRCH (< 5.7) the kernel refuses TSYNC with a listener: keep the
        // listener. TSYNC only matters for a multi-threaded caller, and install() runs in a
        // single-threaded child.
        dropped |= FLAG_TSYNC;
    }
    if dropped != 0 {
        tracing::warn!(
            flags = format_args!("{dropped:#x}"),
            "seccomp: filter flags not supported by this kernel, ignored"
        );
    }
    Ok(flags & !dropped)
}

/// Compile an OCI seccomp section to BPF (runc semantics, plus -ENOSYS for unnamed clone3).
///
/// Unknown syscall names are skipped with a debug log; rules whose action equals the default
/// action are skipped (libseccomp refuses them). When the default action is not permissive
/// (not ALLOW/LOG/TRACE, and not ERRNO(ENOSYS)):
/// - syscalls numbered above the largest one the profile names get `-ENOSYS` (runc's stub);
/// - `clone3`, if the profile does not name it, gets `-ENOSYS` so glibc ≥ 2.34 falls back to
///   `clone` (runc only gets this when clone3 is above the largest named syscall).
pub fn compile(profile: &LinuxSeccomp) -> Result<CompiledFilter, SeccompError> {
    let default = action(
        profile.default_action(),
        profile.default_errno_ret(),
        "default action",
    )?;
    if default == ScmpAction::Notify {
        return Err(SeccompError::NotifyDefault);
    }
    let calls = profile.syscalls().as_deref().unwrap_or_default();
    let needs_notify = calls
        .iter()
        .any(|c| c.action() == LinuxSeccompAction::ScmpActNotify);
    if needs_notify
        && calls.iter().any(|c| {
            c.action() == LinuxSeccompAction::ScmpActNotify
                && c.names().iter().any(|n| n == "write")
        })
    {
        return Err(SeccompError::NotifyWrite);
    }
    let flags = filter_flags(profile, needs_notify)?;

    let mut ctx =
        ScmpFilterContext::new(default).map_err(SeccompError::libseccomp("create filter"))?;
    let mut arches = vec![ScmpArch::native()];
    for a in profile.architectures().as_deref().unwrap_or_default() {
        let a = match arch(*a) {
            ScmpArch::Native => ScmpArch::native(),
            a => a,
        };
        ctx.add_arch(a)
            .map_err(SeccompError::libseccomp("add architecture"))?;
        if !arches.contains(&a) {
            arches.push(a);
        }
    }
    let rule_count: usize = calls.iter().map(|c| c.names().len()).sum();
    if rule_count > OPTIMIZE_ABOVE {
        if let Err(e) = ctx.set_ctl_optimize(2) {
            tracing::debug!(error = %e, "seccomp: libseccomp binary tree optimisation unavailable");
        }
    }

    let permissive_default = matches!(
        default,
        ScmpAction::Allow | ScmpAction::Log | ScmpAction::Trace(_)
    ) || default == ScmpAction::Errno(libc::ENOSYS);
    for call in calls {
        let act = action(
            call.action(),
            call.errno_ret(),
            &format!("syscall {:?}", call.names().join(",")),
        )?;
        for name in call.names() {
            add_rule(&mut ctx, name, call, act, default)?;
        }
    }
    if !permissive_default
        && !calls
            .iter()
            .any(|c| c.names().iter().any(|n| n == "clone3"))
    {
        if let Ok(nr) = ScmpSyscall::from_name("clone3") {
            ctx.add_rule(ScmpAction::Errno(libc::ENOSYS), nr)
                .map_err(|source| SeccompError::Rule {
                    syscall: "clone3".into(),
                    source,
                })?;
        }
    }

    let mut insns = if permissive_default {
        Vec::new()
    } else {
        let names = calls
            .iter()
            .flat_map(|c| c.names().iter().map(String::as_str));
        enosys::stub(&enosys::last_syscalls(&arches, names))?
    };
    insns.extend(export(&ctx)?);
    if insns.len() > MAX_INSNS {
        return Err(SeccompError::Program("longer than 4096 instructions"));
    }
    Ok(CompiledFilter {
        insns,
        flags,
        needs_notify,
    })
}

fn add_rule(
    ctx: &mut ScmpFilterContext,
    name: &str,
    call: &LinuxSyscall,
    act: ScmpAction,
    default: ScmpAction,
) -> Result<(), SeccompError> {
    if act == default {
        tracing::debug!(
            syscall = name,
            "seccomp: rule with the default action skipped"
        );
        return Ok(());
    }
    let Ok(nr) = ScmpSyscall::from_name(name) else {
        tracing::debug!(
            syscall = name,
            "seccomp: syscall unknown to libseccomp on this arch, skipped"
        );
        return Ok(());
    };
    let rule_err = |source| SeccompError::Rule {
        syscall: name.to_string(),
        source,
    };
    for conds in condition_groups(name, call)? {
        if conds.is_empty() {
            ctx.add_rule(act, nr).map_err(rule_err)?;
        } else {
            ctx.add_rule_conditional(act, nr, &conds)
                .map_err(rule_err)?;
        }
    }
    Ok(())
}

/// libseccomp's BPF for `ctx`, through a memfd (libseccomp 2.5 has no in-memory export).
fn export(ctx: &ScmpFilterContext) -> Result<Vec<libc::sock_filter>, SeccompError> {
    // SAFETY: the name is a NUL-terminated C string literal; flags are valid.
    let fd = unsafe { libc::memfd_create(c"skiff-seccomp-bpf".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(SeccompError::Export {
            source: std::io::Error::last_os_error(),
        });
    }
    // SAFETY: memfd_create returned a fresh fd owned by nobody else.
    let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    ctx.export_bpf(&file)
        .map_err(SeccompError::libseccomp("export bpf"))?;
    let mut raw = Vec::new();
    file.rewind()
        .and_then(|_| file.read_to_end(&mut raw))
        .map_err(|source| SeccompError::Export { source })?;
    if raw.is_empty() || raw.len() % 8 != 0 {
        return Err(SeccompError::Program(
            "libseccomp exported a partial instruction",
        ));
    }
    // seccomp_export_bpf writes struct sock_filter in host byte order.
    Ok(raw
        .chunks_exact(8)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect())
}
