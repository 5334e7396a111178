//! v1 net_cls (classid) and net_prio (ifpriomap), applied only when those
//! hierarchies are mounted.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::error::Result;
use crate::fs;

pub(crate) fn set(
    net_cls: Option<&Path>,
    net_prio: Option<&Path>,
    res: &LinuxResources,
) -> Result<()> {
    let Some(net) = res.network() else {
        return Ok(());
    };
    if let Some(id) = net.class_id() {
        match net_cls {
            Some(dir) => fs::write(dir, "net_cls.classid", id)?,
            None => tracing::warn!(class_id = id, "net_cls is not mounted, classID ignored"),
        }
    }
    for p in net.priorities().iter().flatten() {
        match net_prio {
            Some(dir) => fs::write(
                dir,
                "net_prio.ifpriomap",
                format!("{} {}", p.name(), p.priority()),
            )?,
            None => {
                tracing::warn!(interface = %p.name(), "net_prio is not mounted, priority ignored")
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{
        LinuxInterfacePriorityBuilder, LinuxNetworkBuilder, LinuxResourcesBuilder,
    };

    #[test]
    fn writes_when_mounted_and_skips_otherwise() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("net_cls.classid"), "0").unwrap();
        std::fs::write(t.path().join("net_prio.ifpriomap"), "").unwrap();
        let res = LinuxResourcesBuilder::default()
            .network(
                LinuxNetworkBuilder::default()
                    .class_id(0x100001u32)
                    .priorities(vec![LinuxInterfacePriorityBuilder::default()
                        .name("eth0")
                        .priority(5u32)
                        .build()
                        .unwrap()])
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        set(Some(t.path()), Some(t.path()), &res).unwrap();
        assert_eq!(fs::read(t.path(), "net_cls.classid").unwrap(), "1048577");
        assert_eq!(fs::read(t.path(), "net_prio.ifpriomap").unwrap(), "eth0 5");
        set(None, None, &res).unwrap();
    }
}
