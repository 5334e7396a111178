//! [`CompiledFilter`]: a classic BPF program plus the seccomp(2) flags to load it with,
//! and its stable byte encoding (used by the on-disk cache).
//!
//! Encoding, format version 1 (all integers little-endian):
//! ```text
//! magic    8  b"SKFBPF\0\x01"
//! version  4  1
//! flags    4  SECCOMP_FILTER_FLAG_* bits passed to seccomp(2)
//! notify   1  1 if the filter uses SCMP_ACT_NOTIFY, else 0
//! pad      3  zero
//! count    4  number of instructions (1..=4096)
//! insns    8*count  code u16, jt u8, jf u8, k u32
//! sha256   32 over every preceding byte
//! ```

use sha2::{Digest, Sha256};

use crate::SeccompError;

/// `SECCOMP_FILTER_FLAG_TSYNC`.
pub const FLAG_TSYNC: u32 = 1 << 0;
/// `SECCOMP_FILTER_FLAG_LOG`.
pub const FLAG_LOG: u32 = 1 << 1;
/// `SECCOMP_FILTER_FLAG_SPEC_ALLOW`.
pub const FLAG_SPEC_ALLOW: u32 = 1 << 2;
/// `SECCOMP_FILTER_FLAG_NEW_LISTENER`.
pub const FLAG_NEW_LISTENER: u32 = 1 << 3;
/// `SECCOMP_FILTER_FLAG_TSYNC_ESRCH`.
pub const FLAG_TSYNC_ESRCH: u32 = 1 << 4;
/// `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`.
pub const FLAG_WAIT_KILLABLE_RECV: u32 = 1 << 5;
/// Every flag this crate knows.
pub(crate) const KNOWN_FLAGS: u32 = (1 << 6) - 1;

/// The kernel's limit on instructions in one filter (`BPF_MAXINSNS`).
pub const MAX_INSNS: usize = 4096;

const MAGIC: &[u8; 8] = b"SKFBPF\0\x01";
const FORMAT_VERSION: u32 = 1;
const HEADER_LEN: usize = 8 + 4 + 4 + 4 + 4;
const INSN_LEN: usize = 8;
const SUM_LEN: usize = 32;

/// A filter compiled to classic BPF, ready to install in a child process without libseccomp
/// or allocation. Build it with [`crate::compile`] or [`crate::FilterCache`], install it with
/// [`CompiledFilter::install`].
#[derive(Clone)]
pub struct CompiledFilter {
    pub(crate) insns: Vec<libc::sock_filter>,
    pub(crate) flags: u32,
    pub(crate) needs_notify: bool,
}

impl CompiledFilter {
    /// Whether the profile uses `SCMP_ACT_NOTIFY`, i.e. [`CompiledFilter::install`] returns a listener fd.
    pub fn needs_notify(&self) -> bool {
        self.needs_notify
    }

    /// The `SECCOMP_FILTER_FLAG_*` bits passed to seccomp(2) (0 means prctl(2) is used).
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// The BPF program, -ENOSYS stub first.
    pub fn instructions(&self) -> &[libc::sock_filter] {
        &self.insns
    }

    /// Number of BPF instructions.
    pub fn len(&self) -> usize {
        self.insns.len()
    }

    /// Never true for a filter built by this crate; here for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }

    /// Stable encoding (see the module docs), checksummed.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.insns.len() * INSN_LEN + SUM_LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&self.flags.to_le_bytes());
        out.extend_from_slice(&[u8::from(self.needs_notify), 0, 0, 0]);
        // Length is bounded by MAX_INSNS when built by this crate.
        out.extend_from_slice(&(self.insns.len() as u32).to_le_bytes());
        for i in &self.insns {
            out.extend_from_slice(&i.code.to_le_bytes());
            out.push(i.jt);
            out.push(i.jf);
            out.extend_from_slice(&i.k.to_le_bytes());
        }
        let sum = Sha256::digest(&out);
        out.extend_from_slice(&sum);
        out
    }

    /// Decode [`CompiledFilter::to_bytes`] output; rejects truncation, corruption and unknown versions.
    pub fn from_bytes(b: &[u8]) -> Result<Self, SeccompError> {
        use SeccompError::InvalidFilter as Bad;
        if b.len() < HEADER_LEN + SUM_LEN {
            return Err(Bad("truncated header"));
        }
        if &b[..8] != MAGIC {
            return Err(Bad("bad magic"));
        }
        let (body, sum) = b.split_at(b.len() - SUM_LEN);
        if Sha256::digest(body).as_slice() != sum {
            return Err(Bad("checksum mismatch"));
        }
        let u32_at = |off: usize| u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]]);
        if u32_at(8) != FORMAT_VERSION {
            return Err(Bad("unsupported format version"));
        }
        let flags = u32_at(12);
        if flags & !KNOWN_FLAGS != 0 {
            return Err(Bad("unknown flag bits"));
        }
        let needs_notify = match b[16] {
            0 => false,
            1 => true,
            _ => return Err(Bad("bad notify byte")),
        };
        if needs_notify != (flags & FLAG_NEW_LISTENER != 0) {
            return Err(Bad("notify byte disagrees with flags"));
        }
        let count = u32_at(20) as usize;
        if count == 0 || count > MAX_INSNS {
            return Err(Bad("instruction count out of range"));
        }
        if body.len() != HEADER_LEN + count * INSN_LEN {
            return Err(Bad("length does not match instruction count"));
        }
        let insns = body[HEADER_LEN..]
            .chunks_exact(INSN_LEN)
            .map(|c| libc::sock_filter {
                code: u16::from_le_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect();
        Ok(Self {
            insns,
            flags,
            needs_notify,
        })
    }
}

impl std::fmt::Debug for CompiledFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledFilter")
            .field("insns", &self.insns.len())
            .field("flags", &format_args!("{:#x}", self.flags))
            .field("needs_notify", &self.needs_notify)
            .finish()
    }
}

impl PartialEq for CompiledFilter {
    fn eq(&self, other: &Self) -> bool {
        self.flags == other.flags
            && self.needs_notify == other.needs_notify
            && self.insns.len() == other.insns.len()
            && self
                .insns
                .iter()
                .zip(&other.insns)
                .all(|(a, b)| a.code == b.code && a.jt == b.jt && a.jf == b.jf && a.k == b.k)
    }
}

impl Eq for CompiledFilter {}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CompiledFilter {
        CompiledFilter {
            insns: vec![
                libc::sock_filter {
                    code: 0x20,
                    jt: 0,
                    jf: 0,
                    k: 4,
                },
                libc::sock_filter {
                    code: 0x06,
                    jt: 0,
                    jf: 0,
                    k: 0x7fff_0000,
                },
            ],
            flags: FLAG_TSYNC | FLAG_NEW_LISTENER | FLAG_TSYNC_ESRCH,
            needs_notify: true,
        }
    }

    #[test]
    fn bytes_round_trip() {
        let f = sample();
        let b = f.to_bytes();
        assert_eq!(b.len(), HEADER_LEN + 2 * INSN_LEN + SUM_LEN);
        assert_eq!(CompiledFilter::from_bytes(&b).unwrap(), f);
    }

    #[test]
    fn corrupt_bytes_rejected() {
        let b = sample().to_bytes();
        for (i, want) in [
            (0, "bad magic"),
            (30, "checksum mismatch"),
            (b.len() - 1, "checksum mismatch"),
        ] {
            let mut c = b.clone();
            c[i] ^= 0xff;
            let e = CompiledFilter::from_bytes(&c).unwrap_err();
            assert!(e.to_string().contains(want), "byte {i}: {e}");
        }
        let e = CompiledFilter::from_bytes(&b[..b.len() - 9]).unwrap_err();
        assert!(matches!(e, SeccompError::InvalidFilter(_)), "{e}");
        assert!(CompiledFilter::from_bytes(&[]).is_err());
    }

    /// Deterministic mutation fuzzing: truncations and random byte flips never panic, and a
    /// flipped byte is always caught by the checksum or a field check.
    #[test]
    fn mutations_never_panic_or_pass() {
        let b = sample().to_bytes();
        for n in 0..b.len() {
            assert!(
                CompiledFilter::from_bytes(&b[..n]).is_err(),
                "truncated to {n}"
            );
        }
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut c = b.clone();
            let pos = (x % c.len() as u64) as usize;
            let bit = 1u8 << ((x >> 32) % 8);
            c[pos] ^= bit;
            assert!(CompiledFilter::from_bytes(&c).is_err(), "flip at {pos}");
        }
    }
}
