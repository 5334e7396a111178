//! OCI device cgroup rules normalised once, for both the v1 devices files
//! and the v2 BPF device filter.

use std::fmt;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::error::{CgroupError, Result};

/// Access bits, numbered as the kernel's BPF_DEVCG_ACC_* constants.
pub(crate) const ACC_MKNOD: u8 = 1;
pub(crate) const ACC_READ: u8 = 2;
pub(crate) const ACC_WRITE: u8 = 4;
pub(crate) const ACC_ALL: u8 = ACC_MKNOD | ACC_READ | ACC_WRITE;

/// Device kind of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    All,
    Block,
    Char,
}

/// One normalised rule; `None` major/minor is the wildcard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rule {
    pub allow: bool,
    pub kind: Kind,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u8,
}

impl Rule {
    /// Is this "a *:* rwm" (whatever the verdict)?
    pub(crate) fn is_wildcard_all(&self) -> bool {
        self.kind == Kind::All
            && self.major.is_none()
            && self.minor.is_none()
            && self.access == ACC_ALL
    }
}

/// "c 1:3 rwm" — the devices.allow / devices.deny line.
impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            Kind::All => 'a',
            Kind::Block => 'b',
            Kind::Char => 'c',
        };
        let num = |n: Option<u32>| n.map_or_else(|| "*".to_string(), |v| v.to_string());
        let mut access = String::new();
        for (bit, ch) in [(ACC_READ, 'r'), (ACC_WRITE, 'w'), (ACC_MKNOD, 'm')] {
            if self.access & bit != 0 {
                access.push(ch);
            }
        }
        write!(f, "{kind} {}:{} {access}", num(self.major), num(self.minor))
    }
}

fn number(what: &'static str, v: Option<i64>) -> Result<Option<u32>> {
    match v {
        None => Ok(None),
        Some(n) if n < 0 => Ok(None), // -1 is the wildcard in some specs
        Some(n) => u32::try_from(n)
            .map(Some)
            .map_err(|_| CgroupError::InvalidResource {
                resource: "devices",
                reason: format!("{what} number {n} is out of range"),
            }),
    }
}

/// Normalise the OCI rules. FIFO ("p") rules are dropped: the device cgroup
/// does not govern FIFOs.
pub(crate) fn normalise(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Rule>> {
    let mut out = Vec::with_capacity(rules.len());
    for r in rules {
        let kind = match r.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => Kind::All,
            LinuxDeviceType::B => Kind::Block,
            LinuxDeviceType::C | LinuxDeviceType::U => Kind::Char,
            LinuxDeviceType::P => continue,
        };
        let access = match r.access().as_deref() {
            None | Some("") => ACC_ALL,
            Some(s) => {
                let mut bits = 0;
                for ch in s.chars() {
                    bits |= match ch {
                        'r' => ACC_READ,
                        'w' => ACC_WRITE,
                        'm' => ACC_MKNOD,
                        _ => {
                            return Err(CgroupError::InvalidResource {
                                resource: "devices",
                                reason: format!("invalid access {s:?} (want a subset of \"rwm\")"),
                            })
                        }
                    };
                }
                bits
            }
        };
        out.push(Rule {
            allow: r.allow(),
            kind,
            major: number("major", r.major())?,
            minor: number("minor", r.minor())?,
            access,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    #[test]
    fn normalises_and_formats() {
        let rules = vec![
            LinuxDeviceCgroupBuilder::default()
                .allow(false)
                .access("rwm")
                .build()
                .unwrap(),
            LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .typ(LinuxDeviceType::C)
                .major(1)
                .minor(3)
                .access("rw")
                .build()
                .unwrap(),
            LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .typ(LinuxDeviceType::P)
                .build()
                .unwrap(),
            LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .typ(LinuxDeviceType::B)
                .major(8)
                .access("m")
                .build()
                .unwrap(),
        ];
        let n = normalise(&rules).unwrap();
        assert_eq!(n.len(), 3);
        assert!(n[0].is_wildcard_all() && !n[0].allow);
        assert_eq!(n[0].to_string(), "a *:* rwm");
        assert_eq!(n[1].to_string(), "c 1:3 rw");
        assert_eq!(n[2].to_string(), "b 8:* m");
    }

    #[test]
    fn bad_access_is_rejected() {
        let rules = vec![LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .access("rx")
            .build()
            .unwrap()];
        assert_eq!(
            normalise(&rules).unwrap_err().to_string(),
            "invalid devices: invalid access \"rx\" (want a subset of \"rwm\")"
        );
    }
}
