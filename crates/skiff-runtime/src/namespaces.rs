//! Namespaces: which to create with clone flags, which to join by path with setns.

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType, Spec};

use crate::error::{Result, RuntimeError};

/// The clone/unshare flag of a namespace type.
pub fn flag(t: LinuxNamespaceType) -> libc::c_int {
    match t {
        LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
        LinuxNamespaceType::User => libc::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
        LinuxNamespaceType::Network => libc::CLONE_NEWNET,
        LinuxNamespaceType::Time => libc::CLONE_NEWTIME,
    }
}

/// The name of a namespace type under /proc/<pid>/ns/.
pub fn proc_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

/// Order in which namespaces are joined: user first (it grants the rights for the others),
/// mount last but one (paths of the others stay reachable), then time/cgroup.
const JOIN_ORDER: [LinuxNamespaceType; 8] = [
    LinuxNamespaceType::User,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::Uts,
    LinuxNamespaceType::Network,
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::Cgroup,
    LinuxNamespaceType::Time,
    LinuxNamespaceType::Mount,
];

/// The namespace plan of a container.
#[derive(Debug, Default)]
pub struct NsPlan {
    /// Flags of the namespaces to create at clone time (without cgroup and time).
    pub clone_flags: libc::c_int,
    /// A new cgroup namespace, unshared by init once it is in its cgroup.
    pub new_cgroupns: bool,
    /// A new time namespace, unshared before init is forked.
    pub new_timens: bool,
    /// Namespaces to join, opened, in join order.
    pub join: Vec<(LinuxNamespaceType, PathBuf, OwnedFd)>,
    pub new_userns: bool,
}

fn open_ns(t: LinuxNamespaceType, p: &std::path::Path) -> Result<OwnedFd> {
    let f = std::fs::File::open(p).map_err(|e| {
        RuntimeError::io(
            match t {
                LinuxNamespaceType::Network => "open network namespace",
                LinuxNamespaceType::User => "open user namespace",
                _ => "open namespace",
            },
            p,
            e,
        )
    })?;
    Ok(f.into())
}

impl NsPlan {
    pub fn from_spec(spec: &Spec) -> Result<NsPlan> {
        let nss: Vec<LinuxNamespace> = spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().clone())
            .unwrap_or_default();
        let mut plan = NsPlan::default();
        for t in JOIN_ORDER {
            let Some(ns) = nss.iter().find(|n| n.typ() == t) else {
                continue;
            };
            match ns.path() {
                Some(p) if !p.as_os_str().is_empty() => {
                    let fd = open_ns(t, p)?;
                    plan.join.push((t, p.clone(), fd));
                }
                _ => match t {
                    LinuxNamespaceType::Cgroup => plan.new_cgroupns = true,
                    LinuxNamespaceType::Time => plan.new_timens = true,
                    _ => {
                        if t == LinuxNamespaceType::User {
                            plan.new_userns = true;
                        }
                        plan.clone_flags |= flag(t)
                    }
                },
            }
        }
        Ok(plan)
    }

    /// The namespaces of a running container's init, to join for exec.
    pub fn of_process(pid: i32, spec: &Spec) -> Result<NsPlan> {
        let nss: Vec<LinuxNamespace> = spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().clone())
            .unwrap_or_default();
        let mut plan = NsPlan::default();
        for t in JOIN_ORDER {
            if !nss.iter().any(|n| n.typ() == t) {
                continue;
            }
            let p = PathBuf::from(format!("/proc/{pid}/ns/{}", proc_name(t)));
            // Joining the namespace we are already in is refused for user namespaces.
            if t == LinuxNamespaceType::User {
                let mine = std::fs::read_link("/proc/self/ns/user").ok();
                if mine.is_some() && mine == std::fs::read_link(&p).ok() {
                    continue;
                }
            }
            let fd = open_ns(t, &p)?;
            plan.join.push((t, p, fd));
        }
        Ok(plan)
    }

    /// Join every namespace in `join` (in the calling, single-threaded child).
    pub fn setns_all(&self) -> Result<()> {
        for (t, p, fd) in &self.join {
            nix::sched::setns(fd, nix::sched::CloneFlags::from_bits_retain(flag(*t))).map_err(
                |e| {
                    RuntimeError::sys(
                        format!("join {} namespace {}", proc_name(*t), p.display()),
                        crate::error::errno(e),
                    )
                },
            )?;
        }
        Ok(())
    }
}
