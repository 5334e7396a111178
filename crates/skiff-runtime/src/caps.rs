//! The five capability sets of the container process.

use std::collections::HashSet;
use std::str::FromStr;

use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};

use crate::error::{Result, RuntimeError};

/// OCI capability names into the kernel's; names this kernel or crate does not know are
/// skipped with a warning, as runc does.
fn convert(set: Option<&Capabilities>) -> CapsHashSet {
    let mut out = HashSet::new();
    for c in set.into_iter().flatten() {
        let name = format!("CAP_{c}");
        match Capability::from_str(&name) {
            Ok(cap) if caps::all().contains(&cap) => {
                out.insert(cap);
            }
            _ => tracing::warn!(capability = %name, "unknown capability ignored"),
        }
    }
    out
}

/// Capability sets resolved before fork, so the child only makes system calls.
#[derive(Debug, Clone)]
pub struct CapPlan {
    pub bounding: CapsHashSet,
    pub effective: CapsHashSet,
    pub permitted: CapsHashSet,
    pub inheritable: CapsHashSet,
    pub ambient: CapsHashSet,
}

impl CapPlan {
    pub fn new(c: Option<&LinuxCapabilities>) -> CapPlan {
        match c {
            None => CapPlan {
                bounding: HashSet::new(),
                effective: HashSet::new(),
                permitted: HashSet::new(),
                inheritable: HashSet::new(),
                ambient: HashSet::new(),
            },
            Some(c) => CapPlan {
                bounding: convert(c.bounding().as_ref()),
                effective: convert(c.effective().as_ref()),
                permitted: convert(c.permitted().as_ref()),
                inheritable: convert(c.inheritable().as_ref()),
                ambient: convert(c.ambient().as_ref()),
            },
        }
    }

    /// Drop what is not in the bounding set. Needs CAP_SETPCAP: call before the uid change.
    pub fn apply_bounding(&self) -> Result<()> {
        for cap in caps::all() {
            if !self.bounding.contains(&cap) {
                match caps::drop(None, CapSet::Bounding, cap) {
                    Ok(()) => {}
                    // Capabilities the running kernel does not have are fine to skip.
                    Err(_)
                        if !caps::runtime::procfs_all_supported(None)
                            .map(|s| s.contains(&cap))
                            .unwrap_or(true) => {}
                    Err(e) => {
                        return Err(RuntimeError::Init(format!(
                            "drop {cap} from the bounding set: {e}"
                        )))
                    }
                }
            }
        }
        Ok(())
    }

    /// Set inheritable, effective, permitted and ambient (after the uid change, with
    /// PR_SET_KEEPCAPS having kept the permitted set).
    pub fn apply_sets(&self) -> Result<()> {
        let err = |what: &str, e: caps::errors::CapsError| {
            RuntimeError::Init(format!("set {what} capabilities: {e}"))
        };
        caps::set(None, CapSet::Inheritable, &self.inheritable)
            .map_err(|e| err("inheritable", e))?;
        caps::set(None, CapSet::Effective, &self.effective).map_err(|e| err("effective", e))?;
        caps::set(None, CapSet::Permitted, &self.permitted).map_err(|e| err("permitted", e))?;
        caps::clear(None, CapSet::Ambient).map_err(|e| err("ambient", e))?;
        for cap in &self.ambient {
            // Ambient needs the capability in both permitted and inheritable; runc ignores
            // the failure for the others.
            if self.permitted.contains(cap) && self.inheritable.contains(cap) {
                caps::raise(None, CapSet::Ambient, *cap).map_err(|e| err("ambient", e))?;
            }
        }
        Ok(())
    }
}
