//! Device nodes and the standard /dev symlinks in a container's /dev.

use std::path::Path;

use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};
use rustix::fs::{FileType, Mode};

use super::paths::{fd_path, Root};
use crate::error::{Result, RuntimeError};

/// The devices every container gets, as runc creates them (char devices, mode 0666).
pub const DEFAULT_DEVICES: &[(&str, u32, u32)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// A device to create in the container.
#[derive(Debug, Clone)]
pub struct Device {
    pub path: String,
    pub kind: FileType,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The default devices followed by the config's own (a config entry replaces a default one).
pub fn devices(config: &[LinuxDevice]) -> Result<Vec<Device>> {
    let mut out: Vec<Device> = DEFAULT_DEVICES
        .iter()
        .map(|(p, maj, min)| Device {
            path: p.to_string(),
            kind: FileType::CharacterDevice,
            major: *maj as u64,
            minor: *min as u64,
            mode: 0o666,
            uid: 0,
            gid: 0,
        })
        .collect();
    for d in config {
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => FileType::CharacterDevice,
            LinuxDeviceType::B => FileType::BlockDevice,
            LinuxDeviceType::P => FileType::Fifo,
            LinuxDeviceType::A => {
                return Err(RuntimeError::Usage(format!(
                    "device {}: type \"a\" is only valid in cgroup rules",
                    d.path().display()
                )))
            }
        };
        let path = d.path().to_string_lossy().into_owned();
        if !path.starts_with("/dev/") {
            return Err(RuntimeError::Usage(format!(
                "device {path}: devices must be under /dev"
            )));
        }
        out.retain(|x| x.path != path);
        out.push(Device {
            path,
            kind,
            major: d.major() as u64,
            minor: d.minor() as u64,
            mode: d.file_mode().unwrap_or(0o666) & 0o7777,
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        });
    }
    Ok(out)
}

/// Create the devices: mknod, or (in a user namespace, where mknod is refused) a bind mount
/// of the host's node.
pub fn create(root: &Root, devs: &[Device], bind: bool) -> Result<()> {
    for d in devs {
        let p = Path::new(&d.path);
        let (dir, name) = root
            .parent_of(p)
            .map_err(|e| RuntimeError::io("create device parent", p, e))?;
        let _ = rustix::fs::unlinkat(&dir, name, rustix::fs::AtFlags::empty());
        let made = if bind {
            false
        } else {
            let dev = rustix::fs::makedev(d.major as u32, d.minor as u32);
            match rustix::fs::mknodat(&dir, name, d.kind, Mode::from_raw_mode(d.mode), dev) {
                Ok(()) => true,
                Err(rustix::io::Errno::PERM) => false,
                Err(e) => {
                    return Err(RuntimeError::io(
                        "mknod",
                        p,
                        std::io::Error::from_raw_os_error(e.raw_os_error()),
                    ))
                }
            }
        };
        if made {
            // mknod applies the umask: set the mode and owner exactly.
            rustix::fs::chmodat(
                &dir,
                name,
                Mode::from_raw_mode(d.mode),
                rustix::fs::AtFlags::empty(),
            )
            .and_then(|_| {
                rustix::fs::chownat(
                    &dir,
                    name,
                    Some(rustix::fs::Uid::from_raw(d.uid)),
                    Some(rustix::fs::Gid::from_raw(d.gid)),
                    rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
                )
            })
            .map_err(|e| {
                RuntimeError::io(
                    "chown device",
                    p,
                    std::io::Error::from_raw_os_error(e.raw_os_error()),
                )
            })?;
        } else {
            let target = root
                .mkfile(p)
                .map_err(|e| RuntimeError::io("create device bind target", p, e))?;
            nix::mount::mount(
                Some(p),
                fd_path(&target).as_str(),
                None::<&str>,
                nix::mount::MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| RuntimeError::io("bind mount device", p, crate::error::errno(e)))?;
        }
    }
    Ok(())
}

/// /dev/fd, /dev/stdin, /dev/stdout, /dev/stderr (and /dev/core where the host has
/// /proc/kcore), and /dev/ptmx pointing at the container's own devpts instance.
pub fn symlinks(root: &Root) -> Result<()> {
    let mut links = vec![
        ("/proc/self/fd", "/dev/fd"),
        ("/proc/self/fd/0", "/dev/stdin"),
        ("/proc/self/fd/1", "/dev/stdout"),
        ("/proc/self/fd/2", "/dev/stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "/dev/core"));
    }
    for (target, link) in links {
        let (dir, name) = root
            .parent_of(Path::new(link))
            .map_err(|e| RuntimeError::io("create symlink parent", link, e))?;
        match rustix::fs::symlinkat(target, &dir, name) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => {
                return Err(RuntimeError::io(
                    "symlink",
                    link,
                    std::io::Error::from_raw_os_error(e.raw_os_error()),
                ))
            }
        }
    }
    let (dir, name) = root
        .parent_of(Path::new("/dev/ptmx"))
        .map_err(|e| RuntimeError::io("open /dev", "/dev", e))?;
    let _ = rustix::fs::unlinkat(&dir, name, rustix::fs::AtFlags::empty());
    rustix::fs::symlinkat("pts/ptmx", &dir, name).map_err(|e| {
        RuntimeError::io(
            "symlink",
            "/dev/ptmx",
            std::io::Error::from_raw_os_error(e.raw_os_error()),
        )
    })?;
    Ok(())
}
