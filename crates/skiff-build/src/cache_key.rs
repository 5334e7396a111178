//! Build cache keys.
//!
//! A step's result can be reused when its key matches the key of an earlier step. The key is
//! `sha256:` + hex sha256 over, in this order, each field length-prefixed (8-byte
//! big-endian length, then the bytes) so no two different inputs can collide by shifting
//! bytes between fields:
//!
//! 1. the format tag `skiff-build-cache-v1`;
//! 2. the parent: the id of the image/layer the step runs on (`""` for `scratch`);
//! 3. the instruction after expansion, flags included: the JSON of [`Instr`] (so
//!    `COPY --chown=1 a b` and `COPY a b` differ, and `RUN echo $X` stays literal);
//! 4. the number of build args, then each `NAME=value` sorted: for RUN, the ARGs declared
//!    in the stage and not overridden by ENV ([`crate::stage::StageState::cache_args`]) —
//!    what Docker's classic builder puts in front of RUN's cache command (`|N a=b ...`);
//!    undeclared proxy args stay out, as in Docker;
//! 5. the files checksum for COPY/ADD ([`crate::context::CopyPlan::checksum`]: paths,
//!    types, modes, owners given by `--chown`, contents and link targets), `""` otherwise.
//!
//! What Docker also does and the executor must match: the base image's id is the parent of
//! the first step; ENV/LABEL/... steps chain like the others (each step's result is the
//! next parent), and a cache miss invalidates everything after it in the stage.

use sha2::{Digest, Sha256};

use crate::instructions::Instr;

/// The inputs of one cache key.
#[derive(Debug, Clone, Copy)]
pub struct CacheKeyInput<'a> {
    /// The parent image/layer id (`""` for `scratch`).
    pub parent: &'a str,
    /// The expanded instruction.
    pub instruction: &'a Instr,
    /// `NAME=value` build args (RUN only; empty otherwise).
    pub build_args: &'a [String],
    /// The files checksum (COPY/ADD only; empty otherwise).
    pub files_checksum: &'a str,
}

fn field(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 0xf)] as char);
    }
    s
}

/// The canonical text of an instruction for cache keys (its JSON).
pub fn instruction_text(instr: &Instr) -> String {
    // Serializing these plain data types cannot fail.
    serde_json::to_string(instr).unwrap_or_default()
}

/// The cache key: `sha256:<64 hex>`.
pub fn cache_key(input: &CacheKeyInput<'_>) -> String {
    let mut h = Sha256::new();
    field(&mut h, b"skiff-build-cache-v1");
    field(&mut h, input.parent.as_bytes());
    field(&mut h, instruction_text(input.instruction).as_bytes());
    let mut args: Vec<&String> = input.build_args.iter().collect();
    args.sort();
    h.update((args.len() as u64).to_be_bytes());
    for a in args {
        field(&mut h, a.as_bytes());
    }
    field(&mut h, input.files_checksum.as_bytes());
    format!("sha256:{}", hex(&h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instructions::{CommandLine, Run};

    fn run(cmd: &str) -> Instr {
        Instr::Run(Run {
            cmd: CommandLine {
                args: vec![cmd.into()],
                shell_form: true,
                heredocs: vec![],
            },
            mount_specs: vec![],
            mounts: vec![],
            network: Default::default(),
            security: Default::default(),
        })
    }

    #[test]
    fn every_input_counts() {
        let i = run("echo hi");
        let base = CacheKeyInput {
            parent: "sha256:p",
            instruction: &i,
            build_args: &[],
            files_checksum: "",
        };
        let k = cache_key(&base);
        assert!(k.starts_with("sha256:") && k.len() == 71);
        assert_eq!(k, cache_key(&base), "deterministic");
        assert_ne!(
            k,
            cache_key(&CacheKeyInput {
                parent: "sha256:q",
                ..base
            })
        );
        let j = run("echo ho");
        assert_ne!(
            k,
            cache_key(&CacheKeyInput {
                instruction: &j,
                ..base
            })
        );
        let args = ["A=1".to_string()];
        assert_ne!(
            k,
            cache_key(&CacheKeyInput {
                build_args: &args,
                ..base
            })
        );
        assert_ne!(
            k,
            cache_key(&CacheKeyInput {
                files_checksum: "x",
                ..base
            })
        );
        // Field boundaries matter.
        let a = CacheKeyInput {
            parent: "ab",
            files_checksum: "",
            ..base
        };
        let b = CacheKeyInput {
            parent: "a",
            files_checksum: "b",
            ..base
        };
        assert_ne!(cache_key(&a), cache_key(&b));
    }

    #[test]
    fn build_arg_order_does_not_matter() {
        let i = run("make");
        let x = ["B=2".to_string(), "A=1".to_string()];
        let y = ["A=1".to_string(), "B=2".to_string()];
        let k = |a: &[String]| {
            cache_key(&CacheKeyInput {
                parent: "",
                instruction: &i,
                build_args: a,
                files_checksum: "",
            })
        };
        assert_eq!(k(&x), k(&y));
    }
}
