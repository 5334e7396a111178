//! Mount options of config.json into mount(2) flags, propagation changes and fs data,
//! with runc's table (fs-specific options such as `size=` or `mode=` go to the data string).

use nix::mount::MsFlags;

/// Parsed mount options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    pub flags: MsFlags,
    /// Flags the options clear explicitly (`rw`, `suid`, `exec`...).
    pub cleared: MsFlags,
    /// Propagation changes, applied in order after the mount.
    pub propagation: Vec<MsFlags>,
    /// Recursive attributes for mount_setattr (`rro`, `rnosuid`...): (set, clear).
    pub recursive_set: u64,
    pub recursive_clear: u64,
    /// Everything else, comma-joined, for the filesystem.
    pub data: String,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            flags: MsFlags::empty(),
            cleared: MsFlags::empty(),
            propagation: Vec::new(),
            recursive_set: 0,
            recursive_clear: 0,
            data: String::new(),
        }
    }
}

impl MountOptions {
    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }
}

fn flag(opt: &str) -> Option<(bool, MsFlags)> {
    use MsFlags as F;
    Some(match opt {
        "acl" => (false, F::MS_POSIXACL),
        "async" => (true, F::MS_SYNCHRONOUS),
        "atime" => (true, F::MS_NOATIME),
        "bind" => (false, F::MS_BIND),
        "defaults" => (false, F::empty()),
        "dev" => (true, F::MS_NODEV),
        "diratime" => (true, F::MS_NODIRATIME),
        "dirsync" => (false, F::MS_DIRSYNC),
        "exec" => (true, F::MS_NOEXEC),
        "iversion" => (false, F::MS_I_VERSION),
        "lazytime" => (false, F::MS_LAZYTIME),
        "loud" => (true, F::MS_SILENT),
        "mand" => (false, F::MS_MANDLOCK),
        "noacl" => (true, F::MS_POSIXACL),
        "noatime" => (false, F::MS_NOATIME),
        "nodev" => (false, F::MS_NODEV),
        "nodiratime" => (false, F::MS_NODIRATIME),
        "noexec" => (false, F::MS_NOEXEC),
        "noiversion" => (true, F::MS_I_VERSION),
        "nolazytime" => (true, F::MS_LAZYTIME),
        "nomand" => (true, F::MS_MANDLOCK),
        "norelatime" => (true, F::MS_RELATIME),
        "nostrictatime" => (true, F::MS_STRICTATIME),
        "nosuid" => (false, F::MS_NOSUID),
        "rbind" => (false, F::MS_BIND.union(F::MS_REC)),
        "relatime" => (false, F::MS_RELATIME),
        "remount" => (false, F::MS_REMOUNT),
        "ro" => (false, F::MS_RDONLY),
        "rw" => (true, F::MS_RDONLY),
        "silent" => (false, F::MS_SILENT),
        "strictatime" => (false, F::MS_STRICTATIME),
        "suid" => (true, F::MS_NOSUID),
        "sync" => (false, F::MS_SYNCHRONOUS),
        _ => return None,
    })
}

fn propagation(opt: &str) -> Option<MsFlags> {
    use MsFlags as F;
    Some(match opt {
        "private" => F::MS_PRIVATE,
        "rprivate" => F::MS_PRIVATE | F::MS_REC,
        "shared" => F::MS_SHARED,
        "rshared" => F::MS_SHARED | F::MS_REC,
        "slave" => F::MS_SLAVE,
        "rslave" => F::MS_SLAVE | F::MS_REC,
        "unbindable" => F::MS_UNBINDABLE,
        "runbindable" => F::MS_UNBINDABLE | F::MS_REC,
        _ => return None,
    })
}

// MOUNT_ATTR_* of mount_setattr(2).
const ATTR_RDONLY: u64 = 0x1;
const ATTR_NOSUID: u64 = 0x2;
const ATTR_NODEV: u64 = 0x4;
const ATTR_NOEXEC: u64 = 0x8;
const ATTR_NOATIME: u64 = 0x10;
const ATTR_STRICTATIME: u64 = 0x20;
const ATTR_NODIRATIME: u64 = 0x80;

fn recursive(opt: &str) -> Option<(bool, u64)> {
    Some(match opt {
        "rro" => (false, ATTR_RDONLY),
        "rrw" => (true, ATTR_RDONLY),
        "rnosuid" => (false, ATTR_NOSUID),
        "rsuid" => (true, ATTR_NOSUID),
        "rnodev" => (false, ATTR_NODEV),
        "rdev" => (true, ATTR_NODEV),
        "rnoexec" => (false, ATTR_NOEXEC),
        "rexec" => (true, ATTR_NOEXEC),
        "rnoatime" => (false, ATTR_NOATIME),
        "ratime" => (true, ATTR_NOATIME),
        "rstrictatime" => (false, ATTR_STRICTATIME),
        "rnodiratime" => (false, ATTR_NODIRATIME),
        "rdiratime" => (true, ATTR_NODIRATIME),
        _ => return None,
    })
}

/// Parse a mount's options.
pub fn parse(options: &[String]) -> MountOptions {
    let mut out = MountOptions::default();
    let mut data = Vec::new();
    for opt in options {
        if let Some((clear, f)) = flag(opt) {
            if clear {
                out.flags.remove(f);
                out.cleared.insert(f);
            } else {
                out.flags.insert(f);
                out.cleared.remove(f);
            }
        } else if let Some(p) = propagation(opt) {
            out.propagation.push(p);
        } else if let Some((clear, a)) = recursive(opt) {
            if clear {
                out.recursive_clear |= a;
            } else {
                out.recursive_set |= a;
            }
        } else if opt == "tmpcopyup" || opt == "idmap" || opt == "ridmap" {
            // Accepted and ignored, as runc does where unsupported.
        } else {
            data.push(opt.as_str());
        }
    }
    out.data = data.join(",");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn runc_default_dev_tmpfs() {
        let o = parse(&v(&["nosuid", "strictatime", "mode=755", "size=65536k"]));
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.data, "mode=755,size=65536k");
    }

    #[test]
    fn bind_ro_and_propagation() {
        let o = parse(&v(&["rbind", "ro", "rprivate", "rro"]));
        assert!(o.is_bind());
        assert!(o.flags.contains(MsFlags::MS_REC | MsFlags::MS_RDONLY));
        assert_eq!(o.propagation, vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
        assert_eq!(o.recursive_set, ATTR_RDONLY);
        assert!(o.data.is_empty());
    }

    #[test]
    fn later_options_win() {
        let o = parse(&v(&["ro", "rw", "nosuid", "suid"]));
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
        assert!(!o.flags.contains(MsFlags::MS_NOSUID));
        assert!(o.cleared.contains(MsFlags::MS_RDONLY));
    }
}
