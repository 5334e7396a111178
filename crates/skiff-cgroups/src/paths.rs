//! Where the cgroup of a container lives: mount discovery from
//! /proc/self/mountinfo, the caller's own cgroups from /proc/self/cgroup, and
//! runc's cgroupfs path rules (see the crate docs).

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use crate::error::{CgroupError, Result};

/// A v1 hierarchy mount: where it is mounted and which cgroup is its root
/// (not "/" inside a container with a cgroup namespace or bind mounts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct V1Mount {
    pub mount_point: PathBuf,
    pub root: String,
}

/// Unescape the octal sequences (\040 for space ...) of mountinfo fields.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let oct = std::str::from_utf8(&bytes[i + 1..i + 4]).ok();
            if let Some(v) = oct.and_then(|o| u8::from_str_radix(o, 8).ok()) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// v1 controllers (and named hierarchies as "name=systemd") → mount, from
/// the text of /proc/self/mountinfo. The first mount of a controller wins.
pub(crate) fn v1_mounts(mountinfo: &str) -> BTreeMap<String, V1Mount> {
    let mut out = BTreeMap::new();
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        if pre.len() < 5 || post.len() < 3 || post[0] != "cgroup" {
            continue;
        }
        let mount = V1Mount {
            mount_point: PathBuf::from(unescape(pre[4])),
            root: unescape(pre[3]),
        };
        for opt in post[2].split(',') {
            if matches!(opt, "rw" | "ro") || opt.starts_with("release_agent=") {
                continue;
            }
            if opt == "none" || opt == "xattr" || opt == "noprefix" || opt == "clone_children" {
                continue;
            }
            out.entry(opt.to_string()).or_insert_with(|| mount.clone());
        }
    }
    out
}

/// The first cgroup2 mount point (and its root) in mountinfo.
pub(crate) fn v2_mount(mountinfo: &str) -> Option<V1Mount> {
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split(' ').collect();
        if pre.len() >= 5 && post.split(' ').next() == Some("cgroup2") {
            return Some(V1Mount {
                mount_point: PathBuf::from(unescape(pre[4])),
                root: unescape(pre[3]),
            });
        }
    }
    None
}

/// /proc/self/cgroup → controller → cgroup path. Co-mounted controllers
/// ("cpu,cpuacct") get one entry each; the v2 line ("0::/x") has key "".
pub(crate) fn parse_proc_cgroup(content: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in content.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if ctrls.is_empty() {
            out.insert(String::new(), path.to_string());
        } else {
            for c in ctrls.split(',') {
                out.insert(c.to_string(), path.to_string());
            }
        }
    }
    out
}

/// Reject cgroups paths that could escape the hierarchy.
pub(crate) fn validate(cgroups_path: &Path) -> Result<()> {
    if cgroups_path
        .components()
        .any(|c| matches!(c, Component::ParentDir))
    {
        return Err(CgroupError::InvalidPath {
            path: cgroups_path.to_path_buf(),
            reason: "\"..\" is not allowed",
        });
    }
    if cgroups_path.as_os_str().is_empty() {
        return Err(CgroupError::InvalidPath {
            path: cgroups_path.to_path_buf(),
            reason: "empty path",
        });
    }
    Ok(())
}

/// The directory of a container's cgroup in one hierarchy.
///
/// * absolute `cgroups_path` → `mount_point` + path;
/// * relative → `mount_point` + (own cgroup minus the mount's root) + path;
/// * `None` → as relative, with the container id as the path.
pub(crate) fn resolve(
    mount_point: &Path,
    mount_root: &str,
    own: Option<&str>,
    cgroups_path: Option<&Path>,
    container_id: &str,
) -> PathBuf {
    let rel: &Path = match cgroups_path {
        Some(p) if p.is_absolute() => return join_rel(mount_point, p),
        Some(p) => p,
        None => Path::new(container_id),
    };
    let own = own.unwrap_or("/");
    let own_rel = if mount_root != "/" {
        own.strip_prefix(mount_root).unwrap_or(own)
    } else {
        own
    };
    join_rel(&join_rel(mount_point, Path::new(own_rel)), rel)
}

/// `base.join(p)` that never lets an absolute `p` replace `base`.
fn join_rel(base: &Path, p: &Path) -> PathBuf {
    let mut out = base.to_path_buf();
    for c in p.components() {
        if let Component::Normal(n) = c {
            out.push(n);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
30 25 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
33 30 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
34 30 0:30 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
35 30 0:31 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
36 30 0:32 / /mnt/my\\040cg rw - cgroup cgroup rw,pids
";

    #[test]
    fn finds_v1_mounts_including_comounts_and_named() {
        let m = v1_mounts(MOUNTINFO);
        assert_eq!(
            m["cpu"].mount_point,
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct")
        );
        assert_eq!(m["cpu"], m["cpuacct"]);
        assert_eq!(m["memory"].root, "/docker/abc");
        assert!(m.contains_key("name=systemd"));
        assert!(!m.contains_key("xattr") && !m.contains_key("rw"));
        assert_eq!(m["pids"].mount_point, PathBuf::from("/mnt/my cg"));
        assert_eq!(
            v2_mount(MOUNTINFO).unwrap().mount_point,
            PathBuf::from("/sys/fs/cgroup/unified")
        );
    }

    #[test]
    fn parses_proc_self_cgroup() {
        let c = parse_proc_cgroup("4:memory:/a/b\n2:cpu,cpuacct:/\n1:name=systemd:/s\n0::/u\n");
        assert_eq!(c["memory"], "/a/b");
        assert_eq!(c["cpuacct"], "/");
        assert_eq!(c["name=systemd"], "/s");
        assert_eq!(c[""], "/u");
    }

    #[test]
    fn runc_path_rules() {
        let mp = Path::new("/sys/fs/cgroup/memory");
        // absolute: relative to the mount root
        assert_eq!(
            resolve(mp, "/", Some("/a"), Some(Path::new("/x/y")), "id"),
            PathBuf::from("/sys/fs/cgroup/memory/x/y")
        );
        // relative: under our own cgroup
        assert_eq!(
            resolve(mp, "/", Some("/a"), Some(Path::new("x")), "id"),
            PathBuf::from("/sys/fs/cgroup/memory/a/x")
        );
        // none: container id, under our own cgroup
        assert_eq!(
            resolve(mp, "/", Some("/a"), None, "id"),
            PathBuf::from("/sys/fs/cgroup/memory/a/id")
        );
        // own cgroup seen through a mount whose root is not "/"
        assert_eq!(
            resolve(mp, "/docker/abc", Some("/docker/abc/sub"), None, "id"),
            PathBuf::from("/sys/fs/cgroup/memory/sub/id")
        );
    }

    #[test]
    fn rejects_dotdot() {
        let err = validate(Path::new("/a/../../etc")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid cgroups path /a/../../etc: \"..\" is not allowed"
        );
        validate(Path::new("/a/b")).unwrap();
    }
}
