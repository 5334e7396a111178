//! The container's root filesystem: mounts in config order, /dev, pivot_root, read-only root,
//! masked and read-only paths. Runs in the container's init, in its new mount namespace.
//!
//! Order (as runc): propagation of `/` → rootfs bound onto itself → mounts → devices and /dev
//! symlinks → (prestart/createRuntime/createContainer hooks) → pivot_root → rootfsPropagation
//! → read-only root; masked and read-only paths come after sysctls (see `init`).

pub mod devices;
pub mod mountinfo;
pub mod options;
pub mod paths;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use oci_spec::runtime::{Mount, Spec};

use crate::error::{errno, Result, RuntimeError};
use paths::{fd_path, Root};

/// What the rootfs setup needs to know besides the spec.
pub struct RootfsContext<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    pub cgroup_paths: &'a HashMap<String, PathBuf>,
    /// Inside a new user namespace (mknod refused, locked mount flags).
    pub userns: bool,
    /// Inside a new cgroup namespace.
    pub cgroupns: bool,
}

fn sys_err(op: &str, path: impl AsRef<Path>, e: nix::errno::Errno) -> RuntimeError {
    RuntimeError::sys(format!("{op} {}", path.as_ref().display()), errno(e))
}

fn nomount() -> Option<&'static str> {
    None
}

/// Parse a propagation name of `rootfsPropagation`.
fn root_propagation(spec: &Spec) -> Result<Option<MsFlags>> {
    let Some(p) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().clone())
    else {
        return Ok(None);
    };
    let o = options::parse(std::slice::from_ref(&p));
    match o.propagation.first() {
        Some(f) if !p.is_empty() => Ok(Some(*f)),
        _ if p.is_empty() => Ok(None),
        _ => Err(RuntimeError::Usage(format!(
            "rootfsPropagation {p:?} is not a propagation mode"
        ))),
    }
}

/// Everything before the hooks: propagation, the rootfs bind, the mounts, /dev.
pub fn prepare(ctx: &RootfsContext) -> Result<Root> {
    let prop = root_propagation(ctx.spec)?.unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC);
    mount(nomount(), "/", nomount(), prop, nomount())
        .map_err(|e| sys_err("set propagation of", "/", e))?;
    make_parent_private(ctx.rootfs)?;
    mount(
        Some(ctx.rootfs),
        ctx.rootfs,
        nomount(),
        MsFlags::MS_BIND | MsFlags::MS_REC,
        nomount(),
    )
    .map_err(|e| sys_err("bind mount rootfs", ctx.rootfs, e))?;
    let root =
        Root::open(ctx.rootfs).map_err(|e| RuntimeError::io("open rootfs", ctx.rootfs, e))?;
    let mut dev_bound = false;
    for m in ctx.spec.mounts().iter().flatten() {
        if m.destination() == Path::new("/dev") && is_bind(m) {
            dev_bound = true;
        }
        mount_one(&root, m, ctx)?;
    }
    if !dev_bound {
        let devs = devices::devices(
            ctx.spec
                .linux()
                .as_ref()
                .and_then(|l| l.devices().as_deref())
                .unwrap_or(&[]),
        )?;
        devices::create(&root, &devs, ctx.userns)?;
        devices::symlinks(&root)?;
    }
    Ok(root)
}

fn is_bind(m: &Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .iter()
            .flatten()
            .any(|o| o == "bind" || o == "rbind")
}

/// pivot_root requires the parent mount of the new root not to be shared. The new root is
/// the rootfs bound onto itself, so its parent is the mount holding the rootfs path (the
/// rootfs itself when it is a mount point, as runc's `rootfsParentMountPrivate`), and the
/// mount holding its parent directory is made private too. A shared one would also carry
/// every mount made for the container back to the host when `rootfsPropagation` keeps the
/// namespace's mounts shared (a `shared` root for `rshared` binds).
fn make_parent_private(rootfs: &Path) -> Result<()> {
    let infos = mountinfo::read_self();
    let parent = rootfs.parent().unwrap_or(Path::new("/"));
    let holder = |p: &Path| {
        infos
            .iter()
            .filter(|m| p.starts_with(&m.mount_point))
            .max_by_key(|m| m.mount_point.len())
    };
    for m in [holder(rootfs), holder(parent)].into_iter().flatten() {
        if m.optional.contains("shared:") {
            mount(
                nomount(),
                m.mount_point.as_str(),
                nomount(),
                MsFlags::MS_PRIVATE,
                nomount(),
            )
            .map_err(|e| sys_err("make private", &m.mount_point, e))?;
        }
    }
    Ok(())
}

/// The flags of the mount at `fd` that must be kept on a remount (locked in a user namespace).
fn locked_flags(path: &str) -> MsFlags {
    let Ok(st) = nix::sys::statvfs::statvfs(path) else {
        return MsFlags::empty();
    };
    use nix::sys::statvfs::FsFlags as S;
    let f = st.flags();
    let mut out = MsFlags::empty();
    for (s, m) in [
        (S::ST_NOSUID, MsFlags::MS_NOSUID),
        (S::ST_NODEV, MsFlags::MS_NODEV),
        (S::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (S::ST_NOATIME, MsFlags::MS_NOATIME),
        (S::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (S::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(s) {
            out |= m;
        }
    }
    out
}

fn mount_one(root: &Root, m: &Mount, ctx: &RootfsContext) -> Result<()> {
    let dest = m.destination();
    let typ = m.typ().as_deref().unwrap_or("");
    let mut opts = options::parse(m.options().as_deref().unwrap_or(&[]));
    if typ == "bind" {
        opts.flags |= MsFlags::MS_BIND;
    }
    let open_err = |e: std::io::Error| RuntimeError::io("create mount point", dest, e);
    if opts.is_bind() {
        let src = m.source().clone().unwrap_or_default();
        let src = if src.is_absolute() {
            src
        } else {
            ctx.bundle.join(src)
        };
        let meta =
            std::fs::metadata(&src).map_err(|e| RuntimeError::io("mount source", &src, e))?;
        let target = if meta.is_dir() {
            root.mkdir_all(dest, 0o755)
        } else {
            root.mkfile(dest)
        }
        .map_err(open_err)?;
        mount(
            Some(&src),
            fd_path(&target).as_str(),
            nomount(),
            opts.flags & (MsFlags::MS_BIND | MsFlags::MS_REC),
            nomount(),
        )
        .map_err(|e| sys_err(&format!("bind mount {} on", src.display()), dest, e))?;
        let rest = opts.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
        if !rest.is_empty() {
            let fd = root.open_path(dest).map_err(open_err)?;
            let p = fd_path(&fd);
            let flags = rest | locked_flags(&p) | MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
            mount(nomount(), p.as_str(), nomount(), flags, nomount())
                .map_err(|e| sys_err("remount", dest, e))?;
        }
    } else if typ == "cgroup" || typ == "cgroup2" {
        mount_cgroup(root, m, &opts, ctx)?;
    } else {
        let target = root.mkdir_all(dest, 0o755).map_err(open_err)?;
        let p = fd_path(&target);
        let src = m
            .source()
            .as_ref()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| typ.to_string());
        let data = (!opts.data.is_empty()).then_some(opts.data.as_str());
        let r = mount(Some(src.as_str()), p.as_str(), Some(typ), opts.flags, data);
        match r {
            Ok(()) => {}
            // In a user namespace that does not own the network namespace, sysfs cannot be
            // mounted; mqueue likewise: fall back to the host's, read-only as runc does.
            Err(nix::errno::Errno::EPERM) if ctx.userns && (typ == "sysfs" || typ == "mqueue") => {
                let host = if typ == "sysfs" {
                    "/sys"
                } else {
                    "/dev/mqueue"
                };
                mount(
                    Some(host),
                    p.as_str(),
                    nomount(),
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    nomount(),
                )
                .map_err(|e| sys_err(&format!("bind mount {host} on"), dest, e))?;
            }
            Err(e) => return Err(sys_err(&format!("mount {typ} on"), dest, e)),
        }
    }
    if !opts.propagation.is_empty() || opts.recursive_set != 0 || opts.recursive_clear != 0 {
        let fd = root.open_path(dest).map_err(open_err)?;
        let p = fd_path(&fd);
        for prop in &opts.propagation {
            mount(nomount(), p.as_str(), nomount(), *prop, nomount())
                .map_err(|e| sys_err("set propagation of", dest, e))?;
        }
        if opts.recursive_set != 0 || opts.recursive_clear != 0 {
            mount_setattr_recursive(&fd, opts.recursive_set, opts.recursive_clear)
                .map_err(|e| RuntimeError::io("mount_setattr", dest, e))?;
        }
    }
    Ok(())
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn mount_setattr_recursive(
    fd: &impl std::os::fd::AsRawFd,
    set: u64,
    clear: u64,
) -> std::io::Result<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: 0,
    };
    const AT_RECURSIVE: libc::c_uint = 0x8000;
    // SAFETY: mount_setattr reads `size` bytes of a valid, initialised mount_attr; the path is
    // a valid NUL-terminated empty string used with AT_EMPTY_PATH on an open descriptor.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH as libc::c_uint | AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The cgroup filesystem at a mount of type "cgroup": with a cgroup namespace the hierarchies
/// are mounted afresh (their root is the container's cgroup); without one, the container's own
/// cgroup directories are bind-mounted, so the container never sees the host's tree.
fn mount_cgroup(
    root: &Root,
    m: &Mount,
    opts: &options::MountOptions,
    ctx: &RootfsContext,
) -> Result<()> {
    let dest = m.destination();
    let open_err = |e: std::io::Error| RuntimeError::io("create mount point", dest, e);
    let flags = opts.flags - MsFlags::MS_RDONLY;
    let ro = opts.flags.contains(MsFlags::MS_RDONLY);
    let host = mountinfo::read_self();
    let v2 = matches!(skiff_cgroups::detect(), skiff_cgroups::CgroupVersion::V2);
    let target = root.mkdir_all(dest, 0o755).map_err(open_err)?;
    if v2 {
        let p = fd_path(&target);
        if ctx.cgroupns {
            mount(
                Some("cgroup2"),
                p.as_str(),
                Some("cgroup2"),
                opts.flags,
                nomount(),
            )
            .map_err(|e| sys_err("mount cgroup2 on", dest, e))?;
        } else if let Some(dir) = ctx
            .cgroup_paths
            .get("")
            .or_else(|| ctx.cgroup_paths.values().next())
        {
            mount(
                Some(dir),
                p.as_str(),
                nomount(),
                MsFlags::MS_BIND | MsFlags::MS_REC,
                nomount(),
            )
            .map_err(|e| sys_err("bind mount cgroup on", dest, e))?;
            if !flags.is_empty() || ro {
                let fd = root.open_path(dest).map_err(open_err)?;
                let p = fd_path(&fd);
                mount(
                    nomount(),
                    p.as_str(),
                    nomount(),
                    opts.flags | locked_flags(&p) | MsFlags::MS_BIND | MsFlags::MS_REMOUNT,
                    nomount(),
                )
                .map_err(|e| sys_err("remount", dest, e))?;
            }
        }
        return Ok(());
    }
    // v1: a tmpfs holding one directory per hierarchy.
    let p = fd_path(&target);
    mount(
        Some("tmpfs"),
        p.as_str(),
        Some("tmpfs"),
        flags,
        Some("mode=755"),
    )
    .map_err(|e| sys_err("mount tmpfs on", dest, e))?;
    for h in host
        .iter()
        .filter(|h| h.fstype == "cgroup" || h.fstype == "cgroup2")
    {
        let Some(name) = Path::new(&h.mount_point).file_name() else {
            continue;
        };
        if !Path::new(&h.mount_point).starts_with("/sys/fs/cgroup") {
            continue;
        }
        let sub = dest.join(name);
        let controllers: Vec<&str> = h
            .super_options
            .split(',')
            .filter(|o| *o != "rw" && *o != "ro")
            .collect();
        // The hierarchy's own directory for this container, if the manager joined it.
        let own = controllers
            .iter()
            .find_map(|c| ctx.cgroup_paths.get(*c))
            .or_else(|| {
                (h.fstype == "cgroup2")
                    .then(|| ctx.cgroup_paths.get(""))
                    .flatten()
            });
        let t = root.mkdir_all(&sub, 0o755).map_err(open_err)?;
        let tp = fd_path(&t);
        let r = if ctx.cgroupns {
            let data = controllers.join(",");
            mount(
                Some("cgroup"),
                tp.as_str(),
                Some(h.fstype.as_str()),
                flags,
                (h.fstype == "cgroup").then_some(data.as_str()),
            )
        } else if let Some(dir) = own {
            mount(
                Some(dir),
                tp.as_str(),
                nomount(),
                MsFlags::MS_BIND | MsFlags::MS_REC,
                nomount(),
            )
        } else {
            continue;
        };
        r.map_err(|e| sys_err("mount cgroup hierarchy on", &sub, e))?;
        if ro || !ctx.cgroupns {
            let fd = root.open_path(&sub).map_err(open_err)?;
            let fp = fd_path(&fd);
            let rf = if ro {
                MsFlags::MS_RDONLY
            } else {
                MsFlags::empty()
            };
            mount(
                nomount(),
                fp.as_str(),
                nomount(),
                flags | rf | locked_flags(&fp) | MsFlags::MS_BIND | MsFlags::MS_REMOUNT,
                nomount(),
            )
            .map_err(|e| sys_err("remount", &sub, e))?;
        }
        // "cpu,cpuacct" style co-mounts get per-controller symlinks, as on the host.
        if controllers.len() > 1 {
            let (dir, _) = root.parent_of(&sub).map_err(open_err)?;
            for c in controllers.iter().filter(|c| !c.starts_with("name=")) {
                let _ = rustix::fs::symlinkat(name, &dir, *c);
            }
        }
    }
    if ro {
        let fd = root.open_path(dest).map_err(open_err)?;
        let fp = fd_path(&fd);
        mount(
            nomount(),
            fp.as_str(),
            nomount(),
            flags | MsFlags::MS_RDONLY | locked_flags(&fp) | MsFlags::MS_REMOUNT,
            Some("mode=755"),
        )
        .map_err(|e| sys_err("remount read-only", dest, e))?;
    }
    Ok(())
}

/// Make the rootfs the process's `/`: pivot_root (or MS_MOVE + chroot with `no_pivot`).
pub fn enter(rootfs: &Path, no_pivot: bool, spec: &Spec) -> Result<()> {
    if no_pivot {
        nix::unistd::chdir(rootfs).map_err(|e| sys_err("chdir", rootfs, e))?;
        mount(Some(rootfs), "/", nomount(), MsFlags::MS_MOVE, nomount())
            .map_err(|e| sys_err("move mount", rootfs, e))?;
        nix::unistd::chroot(".").map_err(|e| sys_err("chroot", rootfs, e))?;
    } else {
        let old = nix::fcntl::open(
            "/",
            nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_RDONLY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| sys_err("open", "/", e))?;
        let new = nix::fcntl::open(
            rootfs,
            nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_RDONLY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| sys_err("open", rootfs, e))?;
        nix::unistd::fchdir(&new).map_err(|e| sys_err("chdir", rootfs, e))?;
        nix::unistd::pivot_root(".", ".").map_err(|e| sys_err("pivot_root", rootfs, e))?;
        // The old root is now mounted on top of the new one at "."; detach it.
        nix::unistd::fchdir(&old).map_err(|e| sys_err("chdir", "old root", e))?;
        mount(
            nomount(),
            ".",
            nomount(),
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            nomount(),
        )
        .map_err(|e| sys_err("make old root a slave", "/", e))?;
        umount2(".", MntFlags::MNT_DETACH).map_err(|e| sys_err("unmount old root", "/", e))?;
    }
    nix::unistd::chdir("/").map_err(|e| sys_err("chdir", "/", e))?;
    if let Some(p) = root_propagation(spec)? {
        mount(nomount(), "/", nomount(), p, nomount())
            .map_err(|e| sys_err("set rootfsPropagation of", "/", e))?;
    }
    Ok(())
}

/// Remount the (already entered) root read-only.
pub fn readonly_root() -> Result<()> {
    let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | locked_flags("/");
    mount(nomount(), "/", nomount(), flags, nomount())
        .map_err(|e| sys_err("remount read-only", "/", e))
}

/// Hide paths: a read-only empty tmpfs over directories, /dev/null over files.
pub fn mask_paths(paths: &[String]) -> Result<()> {
    for p in paths {
        let meta = match std::fs::metadata(p) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(RuntimeError::io("mask", p, e)),
        };
        let r = if meta.is_dir() {
            mount(
                Some("tmpfs"),
                p.as_str(),
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                nomount(),
            )
        } else {
            mount(
                Some("/dev/null"),
                p.as_str(),
                nomount(),
                MsFlags::MS_BIND,
                nomount(),
            )
        };
        r.map_err(|e| sys_err("mask", p, e))?;
    }
    Ok(())
}

/// Make paths read-only: bind each onto itself, then remount it read-only.
pub fn readonly_paths(paths: &[String]) -> Result<()> {
    for p in paths {
        match mount(
            Some(p.as_str()),
            p.as_str(),
            nomount(),
            MsFlags::MS_BIND | MsFlags::MS_REC,
            nomount(),
        ) {
            Ok(()) => {}
            Err(nix::errno::Errno::ENOENT) => continue,
            Err(e) => return Err(sys_err("bind mount", p, e)),
        }
        let flags = MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_RDONLY
            | MsFlags::MS_REC
            | locked_flags(p);
        mount(nomount(), p.as_str(), nomount(), flags, nomount())
            .map_err(|e| sys_err("remount read-only", p, e))?;
    }
    Ok(())
}
