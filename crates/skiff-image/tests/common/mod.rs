//! Helpers shared by the integration tests: building layer tars by hand (including hostile
//! headers the `tar` crate's safe setters refuse) and snapshotting directory trees.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub struct Layer {
    pub b: tar::Builder<Vec<u8>>,
}

impl Layer {
    pub fn new() -> Self {
        Layer {
            b: tar::Builder::new(Vec::new()),
        }
    }

    fn header(kind: tar::EntryType, mode: u32) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_600_000_000);
        h.set_size(0);
        h
    }

    pub fn dir(&mut self, path: &str, mode: u32) -> &mut Self {
        let mut h = Self::header(tar::EntryType::Directory, mode);
        self.b.append_data(&mut h, path, &[][..]).unwrap();
        self
    }

    pub fn file(&mut self, path: &str, data: &[u8]) -> &mut Self {
        self.file_full(path, data, 0o644, 0, 0)
    }

    pub fn file_full(
        &mut self,
        path: &str,
        data: &[u8],
        mode: u32,
        uid: u64,
        gid: u64,
    ) -> &mut Self {
        let mut h = Self::header(tar::EntryType::Regular, mode);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_size(data.len() as u64);
        self.b.append_data(&mut h, path, data).unwrap();
        self
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        let mut h = Self::header(tar::EntryType::Symlink, 0o777);
        self.b.append_link(&mut h, path, target).unwrap();
        self
    }

    pub fn hardlink(&mut self, path: &str, target: &str) -> &mut Self {
        let mut h = Self::header(tar::EntryType::Link, 0o644);
        self.b.append_link(&mut h, path, target).unwrap();
        self
    }

    pub fn node(
        &mut self,
        path: &str,
        kind: tar::EntryType,
        major: u32,
        minor: u32,
        mode: u32,
    ) -> &mut Self {
        let mut h = Self::header(kind, mode);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        self.b.append_data(&mut h, path, &[][..]).unwrap();
        self
    }

    pub fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        self.b
            .append_pax_extensions(records.iter().map(|(k, v)| (*k, *v)))
            .unwrap();
        self
    }

    /// An entry with a raw name and link name written straight into the header, bypassing the
    /// tar crate's checks (for `..` and absolute paths).
    pub fn raw(&mut self, kind: tar::EntryType, name: &str, link: &str, data: &[u8]) -> &mut Self {
        let mut h = Self::header(kind, 0o644);
        h.set_size(data.len() as u64);
        {
            let old = h.as_old_mut();
            old.name = [0; 100];
            old.name[..name.len()].copy_from_slice(name.as_bytes());
            old.linkname = [0; 100];
            old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }

    /// A header claiming `size` bytes of content but followed by none.
    pub fn lying_size(&mut self, name: &str, size: u64) -> &mut Self {
        let mut h = Self::header(tar::EntryType::Regular, 0o644);
        h.set_path(name).unwrap();
        h.set_size(size);
        h.set_cksum();
        self.b.get_mut().extend_from_slice(h.as_bytes());
        self
    }

    pub fn finish(self) -> Vec<u8> {
        self.b.into_inner().unwrap()
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).unwrap()
}

/// A sandbox: `<tmp>/target` (where layers go) and `<tmp>/outside` (must never change).
pub struct Sandbox {
    pub tmp: tempfile::TempDir,
    pub target: PathBuf,
    pub outside: PathBuf,
}

impl Sandbox {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("target");
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&target).unwrap();
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("passwd"), b"root:x:0:0\n").unwrap();
        std::fs::create_dir(outside.join("etc")).unwrap();
        std::fs::write(outside.join("etc/shadow"), b"secret").unwrap();
        Sandbox {
            tmp,
            target,
            outside,
        }
    }

    /// Everything in the sandbox except the target.
    pub fn outside_state(&self) -> BTreeMap<PathBuf, String> {
        let mut m = snapshot(self.tmp.path());
        m.retain(|p, _| !p.starts_with("target"));
        m
    }
}

/// path → "type mode uid:gid size content/link" for every entry below `root`.
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for p in names {
        let md = std::fs::symlink_metadata(&p).unwrap();
        let rel = p.strip_prefix(root).unwrap().to_path_buf();
        let ft = md.file_type();
        let desc = if ft.is_symlink() {
            format!("link -> {}", std::fs::read_link(&p).unwrap().display())
        } else if ft.is_dir() {
            format!(
                "dir {:o} {}:{}",
                md.permissions().mode() & 0o7777,
                md.uid(),
                md.gid()
            )
        } else if ft.is_file() {
            let data = std::fs::read(&p).unwrap();
            format!(
                "file {:o} {}:{} mtime={} {}",
                md.permissions().mode() & 0o7777,
                md.uid(),
                md.gid(),
                md.mtime(),
                String::from_utf8_lossy(&data)
            )
        } else {
            format!("node {:o} rdev={}", md.mode(), md.rdev())
        };
        out.insert(rel, desc);
        if ft.is_dir() {
            walk(root, &p, out);
        }
    }
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}
