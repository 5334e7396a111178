//! Hand-encoded eBPF for the v2 device controller, and the few bpf(2)
//! commands needed to load and attach it (no libbpf).
//!
//! The program (BPF_PROG_TYPE_CGROUP_DEVICE) sees `struct bpf_cgroup_dev_ctx
//! { u32 access_type; u32 major; u32 minor; }` with `access_type = access << 16
//! | type` and returns 1 to allow, 0 to deny. Each requested access bit
//! (mknod, read, write) is decided on its own: the last rule in the list that
//! matches the device and carries that bit decides; no match means allowed
//! (the v1 kernel default for a fresh cgroup; a leading "deny a *:* rwm" rule
//! turns that into deny-by-default). A request is allowed when every one of
//! its bits is.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use crate::device_rules::{Kind, Rule, ACC_MKNOD, ACC_READ, ACC_WRITE};
use crate::error::{CgroupError, Result};

/// One eBPF instruction, in the kernel's `struct bpf_insn` layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct Insn {
    pub code: u8,
    /// dst_reg in the low nibble, src_reg in the high one.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

// opcodes used here
pub(crate) const LDX_W_MEM: u8 = 0x61; // BPF_LDX | BPF_W | BPF_MEM
pub(crate) const ALU32_AND_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
pub(crate) const ALU32_RSH_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
pub(crate) const ALU32_MOV_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
pub(crate) const ALU64_MOV_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
pub(crate) const JMP32_JEQ_K: u8 = 0x16; // BPF_JMP32 | BPF_JEQ | BPF_K
pub(crate) const JMP32_JNE_K: u8 = 0x56; // BPF_JMP32 | BPF_JNE | BPF_K
pub(crate) const JMP_JA: u8 = 0x05; // BPF_JMP | BPF_JA
pub(crate) const JMP_EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

// struct bpf_cgroup_dev_ctx type values
const DEV_BLOCK: u32 = 1;
const DEV_CHAR: u32 = 2;

const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2; // device type
const R3: u8 = 3; // requested access bits
const R4: u8 = 4; // major
const R5: u8 = 5; // minor
const R6: u8 = 6; // scratch

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (dst & 0xf) | (src << 4),
        off,
        imm,
    }
}

/// Instruction list with forward jumps to labels, patched in `finish`.
struct Asm {
    insns: Vec<Insn>,
    fixups: Vec<(usize, usize)>,
    labels: Vec<Option<usize>>,
}

impl Asm {
    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }
    fn bind(&mut self, label: usize) {
        self.labels[label] = Some(self.insns.len());
    }
    fn emit(&mut self, i: Insn) {
        self.insns.push(i);
    }
    fn jump(&mut self, code: u8, dst: u8, imm: i32, label: usize) {
        self.fixups.push((self.insns.len(), label));
        self.insns.push(insn(code, dst, 0, 0, imm));
    }
    fn ret(&mut self, v: i32) {
        self.emit(insn(ALU64_MOV_K, R0, 0, 0, v));
        self.emit(insn(JMP_EXIT, 0, 0, 0, 0));
    }
    fn finish(mut self) -> Result<Vec<Insn>> {
        for (at, label) in self.fixups {
            let target = self.labels[label].unwrap_or(self.insns.len());
            let off = i16::try_from(target as i64 - at as i64 - 1).map_err(|_| {
                CgroupError::InvalidResource {
                    resource: "devices",
                    reason: "too many device rules for one bpf program".to_string(),
                }
            })?;
            self.insns[at].off = off;
        }
        Ok(self.insns)
    }
}

/// Compile normalised rules into the device filter program.
pub(crate) fn device_filter(rules: &[Rule]) -> Result<Vec<Insn>> {
    let mut a = Asm {
        insns: Vec::new(),
        fixups: Vec::new(),
        labels: Vec::new(),
    };
    a.emit(insn(LDX_W_MEM, R2, R1, 0, 0));
    a.emit(insn(ALU32_AND_K, R2, 0, 0, 0xffff));
    a.emit(insn(LDX_W_MEM, R3, R1, 0, 0));
    a.emit(insn(ALU32_RSH_K, R3, 0, 0, 16));
    a.emit(insn(LDX_W_MEM, R4, R1, 4, 0));
    a.emit(insn(LDX_W_MEM, R5, R1, 8, 0));
    for bit in [ACC_MKNOD, ACC_READ, ACC_WRITE] {
        let done = a.label();
        a.emit(insn(ALU32_MOV_X, R6, R3, 0, 0));
        a.emit(insn(ALU32_AND_K, R6, 0, 0, i32::from(bit)));
        a.jump(JMP32_JEQ_K, R6, 0, done);
        for rule in rules.iter().rev().filter(|r| r.access & bit != 0) {
            let next = a.label();
            match rule.kind {
                Kind::All => {}
                Kind::Block => a.jump(JMP32_JNE_K, R2, DEV_BLOCK as i32, next),
                Kind::Char => a.jump(JMP32_JNE_K, R2, DEV_CHAR as i32, next),
            }
            if let Some(m) = rule.major {
                a.jump(JMP32_JNE_K, R4, m as i32, next);
            }
            if let Some(m) = rule.minor {
                a.jump(JMP32_JNE_K, R5, m as i32, next);
            }
            if rule.allow {
                a.jump(JMP_JA, 0, 0, done);
            } else {
                a.ret(0);
            }
            a.bind(next);
        }
        a.bind(done);
    }
    a.ret(1);
    a.finish()
}

// bpf(2) commands, program/attach types and flags (linux/bpf.h)
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

#[repr(C)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
}

#[repr(C)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

#[repr(C)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

#[repr(C)]
struct GetFdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// bpf(cmd, attr, sizeof attr).
///
/// # Safety
/// `attr` must be the attribute struct for `cmd`, and every pointer inside it
/// must be valid for what the kernel does with it during the call.
unsafe fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: the caller guarantees that attr matches cmd and that the
    // pointers it carries are valid; attr itself outlives the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>(),
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn bpf_err(op: &'static str, dir: &Path, log: String, source: io::Error) -> CgroupError {
    CgroupError::Bpf {
        op,
        path: dir.to_path_buf(),
        log,
        source,
    }
}

fn load(insns: &[Insn], dir: &Path) -> Result<OwnedFd> {
    const LICENSE: &[u8] = b"Apache-2.0\0";
    let mut log = vec![0u8; 0];
    for log_level in [0u32, 1] {
        if log_level == 1 {
            log = vec![0u8; 64 * 1024];
        }
        let mut attr = ProgLoadAttr {
            prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
            insn_cnt: insns.len() as u32,
            insns: insns.as_ptr() as u64,
            license: LICENSE.as_ptr() as u64,
            log_level,
            log_size: log.len() as u32,
            log_buf: if log.is_empty() {
                0
            } else {
                log.as_mut_ptr() as u64
            },
            kern_version: 0,
            prog_flags: 0,
        };
        // SAFETY: attr is a BPF_PROG_LOAD attribute; insns, LICENSE and log
        // are live buffers of the advertised sizes for the whole call.
        match unsafe { bpf(BPF_PROG_LOAD, &mut attr) } {
            // SAFETY: on success BPF_PROG_LOAD returns a new fd that we own.
            Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) }),
            Err(e) if log_level == 1 => {
                let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                let text = String::from_utf8_lossy(&log[..end]).into_owned();
                return Err(bpf_err("prog load", dir, text, e));
            }
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                return Err(bpf_err("prog load", dir, String::new(), e));
            }
            Err(_) => continue, // retry with the verifier log
        }
    }
    Err(bpf_err(
        "prog load",
        dir,
        String::new(),
        io::Error::from_raw_os_error(libc::EINVAL),
    ))
}

/// Ids of the device programs attached to the cgroup (not its parents).
fn query(cg: &File, dir: &Path) -> Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    let mut attr = QueryAttr {
        target_fd: cg.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        query_flags: 0,
        attach_flags: 0,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        _pad: 0,
    };
    // SAFETY: attr is a BPF_PROG_QUERY attribute; prog_ids points to
    // prog_cnt writable u32s that live for the call.
    unsafe { bpf(BPF_PROG_QUERY, &mut attr) }
        .map_err(|e| bpf_err("prog query", dir, String::new(), e))?;
    ids.truncate(attr.prog_cnt as usize);
    Ok(ids)
}

fn prog_fd(id: u32) -> io::Result<OwnedFd> {
    let mut attr = GetFdAttr {
        prog_id: id,
        next_id: 0,
        open_flags: 0,
    };
    // SAFETY: a BPF_PROG_GET_FD_BY_ID attribute carries no pointers.
    let fd = unsafe { bpf(BPF_PROG_GET_FD_BY_ID, &mut attr) }?;
    // SAFETY: on success the kernel returns a new fd that we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn attach_cmd(cmd: libc::c_long, cg: &File, prog: &OwnedFd, flags: u32) -> io::Result<()> {
    let mut attr = AttachAttr {
        target_fd: cg.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: flags,
        replace_bpf_fd: 0,
    };
    // SAFETY: a BPF_PROG_ATTACH/DETACH attribute carries only fds that are
    // open for the duration of the call.
    unsafe { bpf(cmd, &mut attr) }.map(|_| ())
}

/// Load `insns` and make it the only device program of the cgroup at `dir`:
/// attach the new one (BPF_F_ALLOW_MULTI), then detach those that were
/// there before, so there is never a window without a filter.
pub(crate) fn install(dir: &Path, insns: &[Insn]) -> Result<()> {
    let prog = load(insns, dir)?;
    let cg = File::open(dir).map_err(|source| CgroupError::Open {
        path: dir.to_path_buf(),
        source,
    })?;
    let old = query(&cg, dir)?;
    attach_cmd(BPF_PROG_ATTACH, &cg, &prog, BPF_F_ALLOW_MULTI)
        .map_err(|e| bpf_err("prog attach", dir, String::new(), e))?;
    let mut fds: HashMap<u32, OwnedFd> = HashMap::new();
    for id in old {
        match prog_fd(id) {
            Ok(fd) => {
                fds.insert(id, fd);
            }
            Err(e) => tracing::warn!(id, error = %e, "cannot open old device program"),
        }
    }
    for (id, fd) in fds {
        attach_cmd(BPF_PROG_DETACH, &cg, &fd, 0)
            .map_err(|e| bpf_err("prog detach", dir, format!("program id {id}"), e))?;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod interp {
    //! A tiny interpreter of the instructions we emit, to test verdicts
    //! without the kernel.
    use super::*;

    pub(crate) fn run(prog: &[Insn], typ: u32, access: u32, major: u32, minor: u32) -> u64 {
        let ctx = [(access << 16) | typ, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        for _ in 0..100_000 {
            let i = prog[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                LDX_W_MEM => {
                    assert_eq!(src, 1, "loads only from ctx");
                    r[dst] = u64::from(ctx[(i.off / 4) as usize]);
                }
                ALU32_AND_K => r[dst] = u64::from(r[dst] as u32 & i.imm as u32),
                ALU32_RSH_K => r[dst] = u64::from((r[dst] as u32) >> i.imm),
                ALU32_MOV_X => r[dst] = u64::from(r[src] as u32),
                ALU64_MOV_K => r[dst] = i.imm as i64 as u64,
                JMP32_JEQ_K | JMP32_JNE_K | JMP_JA => {
                    let eq = r[dst] as u32 == i.imm as u32;
                    let take = match i.code {
                        JMP32_JEQ_K => eq,
                        JMP32_JNE_K => !eq,
                        _ => true,
                    };
                    if take {
                        pc = (pc as i64 + i64::from(i.off)) as usize;
                    }
                }
                JMP_EXIT => return r[0],
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
        panic!("program does not terminate");
    }
}
