//! v1 devices controller: devices.allow / devices.deny. As runc: when the
//! rule list starts with deny-all, "a *:* rwm" goes to devices.deny first
//! (which empties the allow list), then every rule in order.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::device_rules::{normalise, Rule};
use crate::error::{CgroupError, Result};
use crate::fs;

/// The (file, line) writes for a rule list, in order.
pub(crate) fn plan(rules: &[Rule]) -> Vec<(&'static str, String)> {
    let mut out = Vec::with_capacity(rules.len());
    let mut rest = rules;
    if let Some(first) = rules.first() {
        if !first.allow && first.is_wildcard_all() {
            out.push(("devices.deny", "a *:* rwm".to_string()));
            rest = &rules[1..];
        }
    }
    for r in rest {
        let file = if r.allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        out.push((file, r.to_string()));
    }
    out
}

pub(crate) fn set(dir: Option<&Path>, res: &LinuxResources) -> Result<()> {
    let Some(rules) = res.devices().as_deref().filter(|r| !r.is_empty()) else {
        return Ok(());
    };
    let rules = normalise(rules)?;
    let Some(dir) = dir else {
        return Err(CgroupError::NotMounted {
            controller: "devices",
            what: "device rules",
        });
    };
    for (file, line) in plan(&rules) {
        fs::write(dir, file, line)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device_rules::{Kind, ACC_ALL, ACC_READ, ACC_WRITE};

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
    fn deny_all_first_then_in_order() {
        let rules = [
            rule(false, Kind::All, None, None, ACC_ALL),
            rule(true, Kind::Char, Some(1), Some(3), ACC_READ | ACC_WRITE),
            rule(false, Kind::Char, Some(1), Some(5), ACC_ALL),
        ];
        assert_eq!(
            plan(&rules),
            vec![
                ("devices.deny", "a *:* rwm".to_string()),
                ("devices.allow", "c 1:3 rw".to_string()),
                ("devices.deny", "c 1:5 rwm".to_string()),
            ]
        );
    }

    #[test]
    fn without_deny_all_rules_are_written_as_given() {
        let rules = [rule(false, Kind::Char, Some(1), Some(3), ACC_READ)];
        assert_eq!(plan(&rules), vec![("devices.deny", "c 1:3 r".to_string())]);
    }

    #[test]
    fn writes_files() {
        use oci_spec::runtime::{LinuxDeviceCgroupBuilder, LinuxResourcesBuilder};
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("devices.allow"), "").unwrap();
        std::fs::write(t.path().join("devices.deny"), "").unwrap();
        let res = LinuxResourcesBuilder::default()
            .devices(vec![
                LinuxDeviceCgroupBuilder::default()
                    .allow(false)
                    .access("rwm")
                    .build()
                    .unwrap(),
                LinuxDeviceCgroupBuilder::default()
                    .allow(true)
                    .typ(oci_spec::runtime::LinuxDeviceType::C)
                    .major(1)
                    .minor(3)
                    .access("rwm")
                    .build()
                    .unwrap(),
            ])
            .build()
            .unwrap();
        set(Some(t.path()), &res).unwrap();
        assert_eq!(fs::read(t.path(), "devices.deny").unwrap(), "a *:* rwm");
        assert_eq!(fs::read(t.path(), "devices.allow").unwrap(), "c 1:3 rwm");
    }
}
