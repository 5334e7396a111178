//! v2 `unified` map: key = control file name, value written verbatim.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::error::{CgroupError, Result};
use crate::fs;

pub(crate) fn set(dir: &Path, res: &LinuxResources) -> Result<()> {
    let Some(map) = res.unified() else {
        return Ok(());
    };
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort(); // deterministic order
    for key in keys {
        if key.is_empty() || key.contains('/') || key.starts_with('.') || !key.contains('.') {
            return Err(CgroupError::InvalidResource {
                resource: "unified",
                reason: format!("{key:?} is not a cgroup control file name"),
            });
        }
        if !fs::exists(dir, key) {
            let controller = key.split('.').next().unwrap_or(key);
            return Err(CgroupError::InvalidResource {
                resource: "unified",
                reason: format!(
                    "{key}: no such file in {} (is the {controller} controller enabled?)",
                    dir.display()
                ),
            });
        }
        fs::write(dir, key, &map[key])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxResourcesBuilder;
    use std::collections::HashMap;

    fn res(k: &str, v: &str) -> LinuxResources {
        LinuxResourcesBuilder::default()
            .unified(HashMap::from([(k.to_string(), v.to_string())]))
            .build()
            .unwrap()
    }

    #[test]
    fn verbatim_and_checked() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("memory.high"), "max").unwrap();
        set(t.path(), &res("memory.high", "1G")).unwrap();
        assert_eq!(fs::read(t.path(), "memory.high").unwrap(), "1G");
        assert!(set(t.path(), &res("../x.y", "1")).is_err());
        let err = set(t.path(), &res("io.latency", "1")).unwrap_err();
        assert!(
            err.to_string().contains("is the io controller enabled?"),
            "{err}"
        );
    }
}
