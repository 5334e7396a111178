//! v2 devices: the rules become a BPF_PROG_TYPE_CGROUP_DEVICE program
//! (see `bpf`) attached to the cgroup directory.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::device_rules::normalise;
use crate::error::Result;
use crate::v2::bpf;

pub(crate) fn set(dir: &Path, res: &LinuxResources) -> Result<()> {
    let Some(rules) = res.devices().as_deref().filter(|d| !d.is_empty()) else {
        return Ok(());
    };
    let rules = normalise(rules)?;
    let prog = bpf::device_filter(&rules)?;
    bpf::install(dir, &prog)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device_rules::{Kind, Rule, ACC_ALL, ACC_MKNOD, ACC_READ, ACC_WRITE};
    use crate::v2::bpf::interp::run;

    const BLOCK: u32 = 1;
    const CHAR: u32 = 2;
    const R: u32 = ACC_READ as u32;
    const W: u32 = ACC_WRITE as u32;
    const M: u32 = ACC_MKNOD as u32;

    fn rule(allow: bool, kind: Kind, major: Option<u32>, minor: Option<u32>, access: u8) -> Rule {
        Rule {
            allow,
            kind,
            major,
            minor,
            access,
        }
    }

    #[test]
    fn docker_like_allow_list() {
        let prog = bpf::device_filter(&[
            rule(false, Kind::All, None, None, ACC_ALL),
            rule(true, Kind::Char, Some(1), Some(3), ACC_ALL), // /dev/null
            rule(true, Kind::Char, Some(136), None, ACC_READ | ACC_WRITE), // pts
            rule(true, Kind::All, None, None, ACC_MKNOD),      // mknod anything
        ])
        .unwrap();
        assert_eq!(run(&prog, CHAR, R | W, 1, 3), 1);
        assert_eq!(run(&prog, CHAR, R, 1, 5), 0); // /dev/zero
        assert_eq!(run(&prog, BLOCK, R, 1, 3), 0); // block 1:3 is not /dev/null
        assert_eq!(run(&prog, CHAR, R | W, 136, 7), 1);
        assert_eq!(run(&prog, CHAR, M, 136, 7), 1);
        assert_eq!(run(&prog, BLOCK, M, 8, 0), 1);
        assert_eq!(run(&prog, BLOCK, M | R, 8, 0), 0);
    }

    #[test]
    fn last_rule_wins_per_access_bit_and_default_allows() {
        let prog = bpf::device_filter(&[
            rule(false, Kind::Char, Some(1), Some(3), ACC_READ),
            rule(true, Kind::Char, Some(1), None, ACC_READ | ACC_WRITE),
            rule(false, Kind::Char, Some(1), Some(5), ACC_WRITE),
        ])
        .unwrap();
        assert_eq!(run(&prog, CHAR, R, 1, 3), 1); // re-allowed by the later wildcard
        assert_eq!(run(&prog, CHAR, R, 1, 5), 1);
        assert_eq!(run(&prog, CHAR, R | W, 1, 5), 0); // write denied last
        assert_eq!(run(&prog, BLOCK, R | W, 8, 0), 1); // no match: allowed
        let deny_all = bpf::device_filter(&[rule(false, Kind::All, None, None, ACC_ALL)]).unwrap();
        assert_eq!(run(&deny_all, CHAR, R, 1, 3), 0);
        assert_eq!(run(&deny_all, BLOCK, M, 1, 3), 0);
    }
}
