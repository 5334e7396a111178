//! Loading and checking an OCI bundle's `config.json`.
//!
//! The bundle is a directory holding `config.json` and (usually) the root filesystem it
//! names. Everything a container needs is checked here, before any process, cgroup or state
//! directory exists, so that a bad bundle fails fast and leaves nothing behind.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Result, RuntimeError};

/// runc's `runc spec` default, with skiff's hostname.
pub const DEFAULT_CONFIG: &str = include_str!("default-config.json");

/// A bundle's configuration with its paths made absolute.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Absolute path of the bundle directory.
    pub dir: PathBuf,
    /// The parsed configuration.
    pub spec: Spec,
    /// Absolute path of the root filesystem.
    pub rootfs: PathBuf,
}

impl Bundle {
    /// Read `<dir>/config.json` and check it.
    pub fn load(dir: &Path) -> Result<Bundle> {
        let dir =
            std::path::absolute(dir).map_err(|e| RuntimeError::io("resolve bundle", dir, e))?;
        let path = dir.join("config.json");
        let bytes = std::fs::read(&path).map_err(|source| RuntimeError::ReadConfig {
            path: path.clone(),
            source,
        })?;
        let spec = parse(&path, &bytes)?;
        Bundle::from_spec(&dir, spec)
    }

    /// A bundle from a configuration already in memory (the engine builds it; config.json is
    /// still written to `dir` for reference). Checked like [`Bundle::load`].
    pub fn from_spec(dir: &Path, spec: Spec) -> Result<Bundle> {
        let dir =
            std::path::absolute(dir).map_err(|e| RuntimeError::io("resolve bundle", dir, e))?;
        let path = dir.join("config.json");
        let root = spec
            .root()
            .as_ref()
            .ok_or_else(|| RuntimeError::InvalidConfig {
                path: path.clone(),
                msg: "root is missing".into(),
            })?;
        let rootfs = if root.path().is_absolute() {
            root.path().clone()
        } else {
            dir.join(root.path())
        };
        if !rootfs.is_dir() {
            return Err(RuntimeError::MissingRootfs(rootfs));
        }
        let rootfs = rootfs
            .canonicalize()
            .map_err(|e| RuntimeError::io("resolve rootfs", &rootfs, e))?;
        let bundle = Bundle { dir, spec, rootfs };
        bundle.validate(&path)?;
        Ok(bundle)
    }

    fn validate(&self, path: &Path) -> Result<()> {
        let invalid = |msg: String| RuntimeError::InvalidConfig {
            path: path.to_path_buf(),
            msg,
        };
        let process = self
            .spec
            .process()
            .as_ref()
            .ok_or_else(|| invalid("process is missing".into()))?;
        match process.args() {
            Some(a) if !a.is_empty() => {}
            _ => return Err(invalid("process.args must not be empty".into())),
        }
        if !process.cwd().is_absolute() {
            return Err(invalid(format!(
                "process.cwd {:?} is not an absolute path",
                process.cwd()
            )));
        }
        if let Some(linux) = self.spec.linux() {
            let mut seen = Vec::new();
            for ns in linux.namespaces().iter().flatten() {
                if seen.contains(&ns.typ()) {
                    return Err(invalid(format!("namespace {} is listed twice", ns.typ())));
                }
                seen.push(ns.typ());
                if let Some(p) = ns.path() {
                    if !p.is_absolute() {
                        return Err(invalid(format!(
                            "namespace {} path {:?} is not absolute",
                            ns.typ(),
                            p
                        )));
                    }
                    if !p.exists() {
                        return Err(invalid(format!(
                            "namespace {} path {} does not exist",
                            ns.typ(),
                            p.display()
                        )));
                    }
                }
            }
            let has_userns = seen.contains(&LinuxNamespaceType::User);
            let maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
                || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
            if maps && !has_userns {
                return Err(invalid(
                    "uidMappings/gidMappings are set but there is no user namespace".into(),
                ));
            }
            if linux.sysctl().as_ref().is_some_and(|s| !s.is_empty()) {
                let own = |t: LinuxNamespaceType| {
                    linux.namespaces().iter().flatten().any(|n| {
                        n.typ() == t
                            && n.path().as_ref().is_none_or(|p| {
                                !same_ns(p, &format!("/proc/self/ns/{}", ns_file(t)))
                            })
                    })
                };
                for key in linux.sysctl().as_ref().unwrap().keys() {
                    if key.is_empty() || key.contains("..") || key.starts_with('/') {
                        return Err(invalid(format!("sysctl {key:?} is not a valid name")));
                    }
                    sysctl_allowed(key, own).map_err(invalid)?;
                }
            }
            if let Some(t) = linux.time_offsets() {
                if !t.is_empty() && !seen.contains(&LinuxNamespaceType::Time) {
                    return Err(invalid(
                        "timeOffsets are set but there is no time namespace".into(),
                    ));
                }
            }
        }
        for m in self.spec.mounts().iter().flatten() {
            if !m.destination().is_absolute() {
                return Err(invalid(format!(
                    "mount destination {:?} is not an absolute path",
                    m.destination()
                )));
            }
        }
        Ok(())
    }

    /// Whether the configuration asks for a namespace of this type (new or joined).
    pub fn has_namespace(&self, typ: LinuxNamespaceType) -> bool {
        self.spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .is_some_and(|n| n.iter().any(|ns| ns.typ() == typ))
    }
}

/// Parse config.json bytes, with errors naming the file and the position.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Spec> {
    serde_json::from_slice(bytes).map_err(|source| RuntimeError::ParseConfig {
        path: path.to_path_buf(),
        source,
    })
}

/// A valid container id, as runc accepts them.
pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(RuntimeError::InvalidId(id.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_parses() {
        let spec = parse(Path::new("config.json"), DEFAULT_CONFIG.as_bytes()).unwrap();
        assert_eq!(spec.hostname().as_deref(), Some("skiff"));
        assert_eq!(spec.mounts().as_ref().unwrap().len(), 7);
    }

    #[test]
    fn ids() {
        assert!(validate_id("abc-1.2_3+x").is_ok());
        for bad in ["", ".x", "a/b", "a b", "../x"] {
            assert!(validate_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_json_names_file() {
        let e = parse(Path::new("/b/config.json"), b"{\"ociVersion\": ").unwrap_err();
        assert!(
            e.to_string().starts_with("/b/config.json: invalid JSON"),
            "{e}"
        );
    }

    #[test]
    fn missing_rootfs_and_process() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), DEFAULT_CONFIG).unwrap();
        let e = Bundle::load(dir.path()).unwrap_err();
        assert!(matches!(e, RuntimeError::MissingRootfs(_)), "{e}");
        std::fs::create_dir(dir.path().join("rootfs")).unwrap();
        Bundle::load(dir.path()).unwrap();
        let mut v: serde_json::Value = serde_json::from_str(DEFAULT_CONFIG).unwrap();
        v["process"]["args"] = serde_json::json!([]);
        std::fs::write(dir.path().join("config.json"), v.to_string()).unwrap();
        let e = Bundle::load(dir.path()).unwrap_err();
        assert!(e.to_string().contains("process.args"), "{e}");
    }
}

/// runc's rule: a sysctl may only be set inside a namespace of the container's own, never on
/// the host through a shared one (`net.*` needs a new network namespace; the IPC ones a new
/// IPC namespace; `kernel.domainname` a new UTS namespace; nothing else is namespaced).
fn sysctl_allowed(key: &str, own: impl Fn(LinuxNamespaceType) -> bool) -> Result<(), String> {
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        return if own(LinuxNamespaceType::Ipc) {
            Ok(())
        } else {
            Err(format!(
                "sysctl {key:?} is not allowed in the host's ipc namespace"
            ))
        };
    }
    if key.starts_with("net.") {
        return if own(LinuxNamespaceType::Network) {
            Ok(())
        } else {
            Err(format!(
                "sysctl {key:?} is not allowed in the host's network namespace"
            ))
        };
    }
    if own(LinuxNamespaceType::Uts) {
        match key {
            "kernel.domainname" => return Ok(()),
            "kernel.hostname" => {
                return Err(
                    "sysctl \"kernel.hostname\" is not allowed; use hostname instead".into(),
                )
            }
            _ => {}
        }
    }
    Err(format!(
        "sysctl {key:?} is not in a separate kernel namespace"
    ))
}

fn ns_file(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Time => "time",
    }
}

/// Whether two namespace files name the same namespace.
fn same_ns(a: &std::path::Path, b: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.ino() == y.ino() && x.dev() == y.dev(),
        _ => false,
    }
}

#[cfg(test)]
mod sysctl_tests {
    use super::*;

    #[test]
    fn sysctls_only_in_own_namespaces() {
        let all = |_: LinuxNamespaceType| true;
        let none = |_: LinuxNamespaceType| false;
        assert!(sysctl_allowed("net.ipv4.ip_forward", all).is_ok());
        assert!(sysctl_allowed("net.ipv4.ip_forward", none)
            .unwrap_err()
            .contains("network namespace"));
        assert!(sysctl_allowed("kernel.shmmax", all).is_ok());
        assert!(sysctl_allowed("fs.mqueue.msg_max", none).is_err());
        assert!(sysctl_allowed("kernel.domainname", all).is_ok());
        assert!(sysctl_allowed("kernel.hostname", all).is_err());
        assert!(sysctl_allowed("vm.swappiness", all)
            .unwrap_err()
            .contains("not in a separate kernel namespace"));
    }
}
