//! runc's "-ENOSYS stub" (libcontainer/seccomp/patchbpf), prepended to libseccomp's program.
//!
//! A syscall newer than every syscall the profile names cannot have been meant by the profile's
//! author, so instead of the (non-permissive) default action it gets `-ENOSYS`, which libcs treat
//! as "not implemented, fall back" (glibc: clone3 → clone, faccessat2 → faccessat, ...).
//! For each audit architecture in the filter the stub compares the syscall number with the
//! largest number the profile names on that architecture; x86_64 and x32 share an audit arch and
//! are told apart by bit 30 of the number. s390(x) multiplexes unknown syscalls through nr 0,
//! which also gets -ENOSYS.
//!
//! ```text
//!   ld  [4]                       ; arch
//!   jeq AUDIT_ARCH_a, sec_a       ; one per arch
//!   ja  filter
//! sec_a:
//!   ld  [0]                       ; nr
//!   jgt max_a, enosys, filter     ; (x86_64: jset 1<<30 first to pick x86_64 or x32 max)
//! enosys:
//!   ret ERRNO(ENOSYS)
//! filter:                         ; libseccomp's program, which reloads what it needs
//! ```

use std::collections::BTreeMap;

use libseccomp::ScmpArch;

use crate::SeccompError;

const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JMP_JA: u16 = 0x05;
const BPF_JMP_JEQ_K: u16 = 0x15;
const BPF_JMP_JGT_K: u16 = 0x25;
const BPF_JMP_JSET_K: u16 = 0x45;
const BPF_RET_K: u16 = 0x06;

const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;

/// The kernel's `AUDIT_ARCH_*` for a libseccomp architecture token (x32 shares x86_64's).
pub(crate) fn audit_arch(arch: ScmpArch) -> Option<u32> {
    Some(match arch {
        ScmpArch::Native => return audit_arch(ScmpArch::native()),
        ScmpArch::X86 => 0x4000_0003,
        ScmpArch::X8664 | ScmpArch::X32 => AUDIT_ARCH_X86_64,
        ScmpArch::Arm => 0x4000_0028,
        ScmpArch::Aarch64 => 0xc000_00b7,
        ScmpArch::Loongarch64 => 0xc000_0102,
        ScmpArch::M68k => 0x0000_0004,
        ScmpArch::Mips => 0x0000_0008,
        ScmpArch::Mips64 => 0x8000_0008,
        ScmpArch::Mips64N32 => 0xa000_0008,
        ScmpArch::Mipsel => 0x4000_0008,
        ScmpArch::Mipsel64 => 0xc000_0008,
        ScmpArch::Mipsel64N32 => 0xe000_0008,
        ScmpArch::Ppc => 0x0000_0014,
        ScmpArch::Ppc64 => 0x8000_0015,
        ScmpArch::Ppc64Le => 0xc000_0015,
        ScmpArch::S390 => 0x0000_0016,
        ScmpArch::S390X => 0x8000_0016,
        ScmpArch::Parisc => 0x0000_000f,
        ScmpArch::Parisc64 => 0x8000_000f,
        ScmpArch::Riscv64 => 0xc000_00f3,
        ScmpArch::Sheb => 0x0000_002a,
        ScmpArch::Sh => 0x4000_002a,
        _ => return None,
    })
}

/// Largest syscall numbers named by the profile, per audit arch; x86_64 keeps x86_64 and x32 apart.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Last {
    /// Largest number on the arch (x86_64 mode on AUDIT_ARCH_X86_64).
    pub main: Option<u32>,
    /// Largest x32 number (with bit 30 set), only on AUDIT_ARCH_X86_64.
    pub x32: Option<u32>,
    pub s390: bool,
}

/// For each architecture, the largest syscall number that one of `names` resolves to.
pub(crate) fn last_syscalls<'a>(
    arches: &[ScmpArch],
    names: impl Iterator<Item = &'a str> + Clone,
) -> BTreeMap<u32, Last> {
    let mut out: BTreeMap<u32, Last> = BTreeMap::new();
    for &arch in arches {
        let Some(audit) = audit_arch(arch) else {
            continue;
        };
        let max = names
            .clone()
            .filter_map(|n| libseccomp::ScmpSyscall::from_name_by_arch(n, arch).ok())
            .map(i32::from)
            .filter(|&n| n > 0)
            .max();
        let Some(max) = max else {
            tracing::debug!(
                ?arch,
                "seccomp: no syscalls named for arch, no -ENOSYS stub for it"
            );
            continue;
        };
        let e = out.entry(audit).or_default();
        let slot = if arch == ScmpArch::X32 {
            &mut e.x32
        } else {
            &mut e.main
        };
        *slot = Some(max as u32);
        e.s390 |= matches!(arch, ScmpArch::S390 | ScmpArch::S390X);
    }
    out
}

#[derive(Clone, Copy)]
enum T {
    Next,
    L(usize),
}

enum Ins {
    Ld(u32),
    J { code: u16, k: u32, jt: T, jf: T },
    Ja(usize),
    Ret(u32),
    Mark(usize),
}

/// Assemble the stub for `last`; empty when there is nothing to check.
pub(crate) fn stub(last: &BTreeMap<u32, Last>) -> Result<Vec<libc::sock_filter>, SeccompError> {
    if last.is_empty() {
        return Ok(Vec::new());
    }
    const ENOSYS: usize = 0;
    const FILTER: usize = 1;
    let mut next_label = 2;
    let mut label = || {
        next_label += 1;
        next_label - 1
    };
    let jgt = |k, jt, jf| Ins::J {
        code: BPF_JMP_JGT_K,
        k,
        jt,
        jf,
    };

    let sections: Vec<(u32, Last, usize)> = last.iter().map(|(&a, &l)| (a, l, label())).collect();
    let mut p = vec![Ins::Ld(4)];
    for &(audit, _, sec) in &sections {
        p.push(Ins::J {
            code: BPF_JMP_JEQ_K,
            k: audit,
            jt: T::L(sec),
            jf: T::Next,
        });
    }
    p.push(Ins::Ja(FILTER));
    for &(audit, l, sec) in &sections {
        p.push(Ins::Mark(sec));
        p.push(Ins::Ld(0));
        if l.s390 {
            p.push(Ins::J {
                code: BPF_JMP_JEQ_K,
                k: 0,
                jt: T::L(ENOSYS),
                jf: T::Next,
            });
        }
        let (x86, x32) = if audit == AUDIT_ARCH_X86_64 {
            (l.main, l.x32)
        } else {
            (l.main, None)
        };
        match (x86, x32) {
            (Some(max), None) if audit != AUDIT_ARCH_X86_64 => {
                p.push(jgt(max, T::L(ENOSYS), T::L(FILTER)));
            }
            (Some(max), None) => {
                // x32 calls are left to libseccomp (bad-arch action).
                p.push(Ins::J {
                    code: BPF_JMP_JSET_K,
                    k: X32_SYSCALL_BIT,
                    jt: T::L(FILTER),
                    jf: T::Next,
                });
                p.push(jgt(max, T::L(ENOSYS), T::L(FILTER)));
            }
            (None, Some(max)) => {
                p.push(Ins::J {
                    code: BPF_JMP_JSET_K,
                    k: X32_SYSCALL_BIT,
                    jt: T::Next,
                    jf: T::L(FILTER),
                });
                p.push(jgt(max, T::L(ENOSYS), T::L(FILTER)));
            }
            (Some(max64), Some(max32)) => {
                let x32_sec = label();
                p.push(Ins::J {
                    code: BPF_JMP_JSET_K,
                    k: X32_SYSCALL_BIT,
                    jt: T::L(x32_sec),
                    jf: T::Next,
                });
                p.push(jgt(max64, T::L(ENOSYS), T::L(FILTER)));
                p.push(Ins::Mark(x32_sec));
                p.push(jgt(max32, T::L(ENOSYS), T::L(FILTER)));
            }
            (None, None) => p.push(Ins::Ja(FILTER)),
        }
    }
    p.push(Ins::Mark(ENOSYS));
    p.push(Ins::Ret(SECCOMP_RET_ERRNO | libc::ENOSYS as u32));
    p.push(Ins::Mark(FILTER));
    assemble(&p, next_label)
}

fn assemble(p: &[Ins], labels: usize) -> Result<Vec<libc::sock_filter>, SeccompError> {
    let mut at = vec![usize::MAX; labels];
    let mut pc = 0;
    for i in p {
        match i {
            Ins::Mark(l) => at[*l] = pc,
            _ => pc += 1,
        }
    }
    let rel = |pc: usize, t: T| -> Result<u8, SeccompError> {
        let off = match t {
            T::Next => 0,
            T::L(l) => at[l]
                .checked_sub(pc + 1)
                .ok_or(SeccompError::Program("backward jump in -ENOSYS stub"))?,
        };
        u8::try_from(off).map_err(|_| SeccompError::Program("-ENOSYS stub jump longer than 255"))
    };
    let mut out = Vec::with_capacity(pc);
    for i in p {
        let pc = out.len();
        let ins = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
        out.push(match *i {
            Ins::Mark(_) => continue,
            Ins::Ld(off) => ins(BPF_LD_W_ABS, 0, 0, off),
            Ins::Ret(k) => ins(BPF_RET_K, 0, 0, k),
            Ins::Ja(l) => ins(BPF_JMP_JA, 0, 0, u32::from(rel(pc, T::L(l))?)),
            Ins::J { code, k, jt, jf } => ins(code, rel(pc, jt)?, rel(pc, jf)?, k),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny classic-BPF interpreter for the stub's instruction subset.
    fn run(prog: &[libc::sock_filter], arch: u32, nr: u32) -> Option<u32> {
        let (mut pc, mut a) = (0usize, 0u32);
        while pc < prog.len() {
            let i = prog[pc];
            pc += 1;
            match i.code {
                BPF_LD_W_ABS => a = if i.k == 0 { nr } else { arch },
                BPF_RET_K => return Some(i.k),
                BPF_JMP_JA => pc += i.k as usize,
                c => {
                    let hit = match c {
                        BPF_JMP_JEQ_K => a == i.k,
                        BPF_JMP_JGT_K => a > i.k,
                        BPF_JMP_JSET_K => a & i.k != 0,
                        _ => panic!("unexpected opcode {c:#x}"),
                    };
                    pc += usize::from(if hit { i.jt } else { i.jf });
                }
            }
        }
        None // fell into the real filter
    }

    const ENOSYS_RET: u32 = SECCOMP_RET_ERRNO | 38;

    #[test]
    fn stub_x86_64_with_x32_and_i386() {
        let mut last = BTreeMap::new();
        last.insert(
            AUDIT_ARCH_X86_64,
            Last {
                main: Some(450),
                x32: Some(X32_SYSCALL_BIT | 540),
                s390: false,
            },
        );
        last.insert(
            0x4000_0003,
            Last {
                main: Some(400),
                x32: None,
                s390: false,
            },
        );
        let p = stub(&last).unwrap();
        assert_eq!(run(&p, AUDIT_ARCH_X86_64, 39), None);
        assert_eq!(run(&p, AUDIT_ARCH_X86_64, 450), None);
        assert_eq!(run(&p, AUDIT_ARCH_X86_64, 451), Some(ENOSYS_RET));
        assert_eq!(run(&p, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 540), None);
        assert_eq!(
            run(&p, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 541),
            Some(ENOSYS_RET)
        );
        assert_eq!(run(&p, 0x4000_0003, 401), Some(ENOSYS_RET));
        assert_eq!(run(&p, 0x4000_0003, 400), None);
        assert_eq!(
            run(&p, 0xc000_00b7, 9999),
            None,
            "unknown arch goes to the filter"
        );
    }

    #[test]
    fn stub_x86_64_without_x32_leaves_x32_to_filter() {
        let mut last = BTreeMap::new();
        last.insert(
            AUDIT_ARCH_X86_64,
            Last {
                main: Some(300),
                x32: None,
                s390: false,
            },
        );
        let p = stub(&last).unwrap();
        assert_eq!(run(&p, AUDIT_ARCH_X86_64, 301), Some(ENOSYS_RET));
        assert_eq!(run(&p, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 1), None);
    }

    #[test]
    fn stub_s390x_multiplexer() {
        let mut last = BTreeMap::new();
        last.insert(
            0x8000_0016,
            Last {
                main: Some(300),
                x32: None,
                s390: true,
            },
        );
        let p = stub(&last).unwrap();
        assert_eq!(run(&p, 0x8000_0016, 0), Some(ENOSYS_RET));
        assert_eq!(run(&p, 0x8000_0016, 5), None);
        assert_eq!(run(&p, 0x8000_0016, 301), Some(ENOSYS_RET));
    }

    #[test]
    fn last_syscalls_resolves_per_arch() {
        let names = ["read", "clone3", "no_such_syscall"];
        let m = last_syscalls(
            &[ScmpArch::X8664, ScmpArch::X32, ScmpArch::X86],
            names.iter().copied(),
        );
        let x = m[&AUDIT_ARCH_X86_64];
        assert_eq!(x.main, Some(435));
        assert_eq!(x.x32, Some(X32_SYSCALL_BIT | 435));
        assert_eq!(m[&0x4000_0003].main, Some(435));
    }
}
