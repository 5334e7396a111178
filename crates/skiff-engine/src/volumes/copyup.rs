//! Docker's volume copy-up: a new, empty volume mounted over a path that has content in the
//! image gets that content first (files, directories, symlinks, devices, owners, modes,
//! times), and the volume's root takes the owner and mode of the image's directory.
//!
//! The image path is resolved inside the rootfs with `openat2(RESOLVE_IN_ROOT)`, and the
//! walk goes by directory fds with `O_NOFOLLOW`: a symlink in the image (`/data -> /etc`)
//! is resolved against the container's root, never the host's, and never followed while
//! copying (CVE-2018-15664 class).

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{
    fchmod, fchown, mkdirat, mknodat, openat, openat2, readlinkat, statat, symlinkat, utimensat,
    AtFlags, Dir, FileType, Gid, Mode, OFlags, ResolveFlags, Timespec, Timestamps, Uid,
};

/// Copies what the image has at `path` (inside `rootfs`) into `volume_dir` when the volume
/// is empty. Returns whether anything was copied. A path missing in the image, or not a
/// directory, copies nothing.
pub fn copy_up(rootfs: &Path, path: &str, volume_dir: &Path) -> io::Result<bool> {
    if std::fs::read_dir(volume_dir)?.next().is_some() {
        return Ok(false);
    }
    let root = openat(
        rustix::fs::CWD,
        rootfs,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let rel = path.trim_start_matches('/');
    let src = if rel.is_empty() {
        root
    } else {
        match openat2(
            &root,
            rel,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        ) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) | Err(rustix::io::Errno::NOTDIR) => return Ok(false),
            Err(e) => return Err(e.into()),
        }
    };
    let dst = openat(
        rustix::fs::CWD,
        volume_dir,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )?;
    let st = rustix::fs::fstat(&src)?;
    copy_dir(&src, &dst)?;
    fchown(
        &dst,
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    )?;
    fchmod(&dst, Mode::from_raw_mode(st.st_mode & 0o7777))?;
    Ok(true)
}

fn copy_dir(src: &OwnedFd, dst: &OwnedFd) -> io::Result<()> {
    let dir = Dir::read_from(src)?;
    for ent in dir {
        let ent = ent?;
        let name = ent.file_name();
        if name.to_bytes() == b"." || name.to_bytes() == b".." {
            continue;
        }
        let st = statat(src, name, AtFlags::SYMLINK_NOFOLLOW)?;
        let mode = Mode::from_raw_mode(st.st_mode & 0o7777);
        let owner = (Uid::from_raw(st.st_uid), Gid::from_raw(st.st_gid));
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => {
                mkdirat(dst, name, Mode::from_raw_mode(0o700))?;
                let s = openat(
                    src,
                    name,
                    OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                let d = openat(
                    dst,
                    name,
                    OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                copy_dir(&s, &d)?;
                fchown(&d, Some(owner.0), Some(owner.1))?;
                fchmod(&d, mode)?;
            }
            FileType::RegularFile => {
                let s = openat(
                    src,
                    name,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                let d = openat(
                    dst,
                    name,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )?;
                let (mut s, mut d) = (File::from(s), File::from(d));
                io::copy(&mut s, &mut d)?;
                fchown(&d, Some(owner.0), Some(owner.1))?;
                fchmod(&d, mode)?;
            }
            FileType::Symlink => {
                let target = readlinkat(src, name, Vec::new())?;
                symlinkat(target.as_c_str(), dst, name)?;
                rustix::fs::chownat(
                    dst,
                    name,
                    Some(owner.0),
                    Some(owner.1),
                    AtFlags::SYMLINK_NOFOLLOW,
                )?;
            }
            ft @ (FileType::CharacterDevice
            | FileType::BlockDevice
            | FileType::Fifo
            | FileType::Socket) => {
                mknodat(dst, name, ft, mode, st.st_rdev)?;
                rustix::fs::chownat(
                    dst,
                    name,
                    Some(owner.0),
                    Some(owner.1),
                    AtFlags::SYMLINK_NOFOLLOW,
                )?;
            }
            FileType::Unknown => continue,
        }
        let times = Timestamps {
            last_access: Timespec {
                tv_sec: st.st_atime,
                tv_nsec: st.st_atime_nsec as _,
            },
            last_modification: Timespec {
                tv_sec: st.st_mtime,
                tv_nsec: st.st_mtime_nsec as _,
            },
        };
        let _ = utimensat(dst.as_fd(), name, &times, AtFlags::SYMLINK_NOFOLLOW);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn copies_content_and_keeps_symlinks_inside() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("rootfs");
        std::fs::create_dir_all(root.join("data/sub")).unwrap();
        std::fs::write(root.join("data/a.txt"), b"hello").unwrap();
        std::fs::write(root.join("data/sub/b"), b"b").unwrap();
        std::fs::set_permissions(
            root.join("data/a.txt"),
            std::fs::Permissions::from_mode(0o640),
        )
        .unwrap();
        std::fs::set_permissions(root.join("data"), std::fs::Permissions::from_mode(0o751))
            .unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("data/link")).unwrap();
        // A symlinked image path resolves inside the rootfs, not on the host.
        std::fs::create_dir_all(root.join("inner")).unwrap();
        std::fs::write(root.join("inner/mine"), b"inside").unwrap();
        std::os::unix::fs::symlink("/inner", root.join("esc")).unwrap();
        std::os::unix::fs::symlink("../../../../../../inner", root.join("esc2")).unwrap();

        let vol = t.path().join("vol");
        std::fs::create_dir(&vol).unwrap();
        assert!(copy_up(&root, "/data", &vol).unwrap());
        assert_eq!(std::fs::read(vol.join("a.txt")).unwrap(), b"hello");
        assert_eq!(std::fs::read(vol.join("sub/b")).unwrap(), b"b");
        let m = std::fs::metadata(vol.join("a.txt"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(m & 0o777, 0o640);
        assert_eq!(
            std::fs::metadata(&vol).unwrap().permissions().mode() & 0o777,
            0o751
        );
        assert_eq!(
            std::fs::read_link(vol.join("link")).unwrap(),
            Path::new("/etc/passwd")
        );
        // Not empty any more: a second copy-up does nothing.
        assert!(!copy_up(&root, "/data", &vol).unwrap());

        for esc in ["/esc", "/esc2"] {
            let v2 = t.path().join(format!("v{}", esc.len()));
            std::fs::create_dir(&v2).unwrap();
            assert!(copy_up(&root, esc, &v2).unwrap());
            assert_eq!(std::fs::read(v2.join("mine")).unwrap(), b"inside");
        }
        // A missing path copies nothing.
        let v3 = t.path().join("v3");
        std::fs::create_dir(&v3).unwrap();
        assert!(!copy_up(&root, "/nope", &v3).unwrap());
    }
}
