//! A directory tree into a layer tar: entries sorted by name, hard links as `Link` entries to
//! their first path, xattrs as PAX `SCHILY.xattr.*`, optional fixed mtime, and (for an
//! overlay upper) 0/0 char devices as `.wh.<name>` and opaque dirs as `.wh..wh..opq`.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::compression::{Compression, Compressor};
use crate::digest::{Digest, HashingWriter};

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("write layer: {0}")]
    Out(#[source] io::Error),
}

#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    /// Every entry's mtime is set to this (for reproducible layers); `None` keeps them.
    pub mtime: Option<u64>,
    /// The directory is an overlayfs upper: convert whiteout devices and opaque xattrs.
    pub overlay_upper: bool,
    /// Paths relative to the directory (`etc/hosts`, no leading `/`) left out of the layer.
    pub exclude: Vec<String>,
}

/// Digests of a written layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerDigests {
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
    /// sha256 of the blob as written (compressed).
    pub digest: Digest,
    pub size: u64,
    pub uncompressed_size: u64,
}

/// Writes `dir` as a layer tar, compressed with `compression`, to `out`.
pub fn write_layer_from_dir(
    dir: &Path,
    out: impl Write,
    compression: Compression,
    opts: &WriteOptions,
) -> Result<LayerDigests, WriteError> {
    let blob = HashingWriter::new(out);
    let comp = Compressor::new(blob, compression).map_err(WriteError::Out)?;
    let plain = HashingWriter::new(comp);
    let mut w = Walker {
        b: tar::Builder::new(plain),
        opts,
        links: HashMap::new(),
    };
    w.b.follow_symlinks(false);
    w.walk(dir, "")?;
    let plain = w.b.into_inner().map_err(WriteError::Out)?;
    let (diff_id, uncompressed_size, comp) = plain.finish();
    let blob = comp.finish().map_err(WriteError::Out)?;
    let (digest, size, mut out) = blob.finish();
    out.flush().map_err(WriteError::Out)?;
    Ok(LayerDigests {
        diff_id,
        digest,
        size,
        uncompressed_size,
    })
}

struct Walker<'a, W: Write> {
    b: tar::Builder<W>,
    opts: &'a WriteOptions,
    /// (dev, ino) → first path, for hard links.
    links: HashMap<(u64, u64), String>,
}

/// xattrs of a path (not following symlinks), sorted by name.
pub(crate) fn read_xattrs(p: &Path) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut names = vec![0u8; 4096];
    let n = match rustix::fs::llistxattr(p, &mut names[..]) {
        Ok(n) => n,
        Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
        Err(rustix::io::Errno::RANGE) => {
            names = vec![0u8; 65536];
            rustix::fs::llistxattr(p, &mut names[..])?
        }
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    for name in names[..n].split(|b| *b == 0).filter(|s| !s.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        let mut val = vec![0u8; 65536];
        match rustix::fs::lgetxattr(p, name.as_str(), &mut val[..]) {
            Ok(k) => out.push((name, val[..k].to_vec())),
            Err(rustix::io::Errno::NODATA) => {}
            Err(e) => return Err(e.into()),
        }
    }
    out.sort();
    Ok(out)
}

impl<W: Write> Walker<'_, W> {
    fn walk(&mut self, dir: &Path, prefix: &str) -> Result<(), WriteError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| WriteError::Io { path, source }
        };
        let mut names: Vec<_> = fs::read_dir(dir)
            .map_err(io_err(dir))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(io_err(dir))?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            let p = dir.join(&name);
            let rel = format!("{prefix}{}", name.to_string_lossy());
            if self.opts.exclude.contains(&rel) {
                continue;
            }
            let md = fs::symlink_metadata(&p).map_err(io_err(&p))?;
            let ft = md.file_type();
            let mut xattrs = read_xattrs(&p).map_err(io_err(&p))?;
            let opaque = self.opts.overlay_upper
                && xattrs
                    .iter()
                    .any(|(k, v)| k == "trusted.overlay.opaque" && v == b"y");
            xattrs.retain(|(k, _)| !k.starts_with("trusted.overlay."));
            let mut h = tar::Header::new_gnu();
            h.set_mode(md.mode() & 0o7777);
            h.set_uid(md.uid().into());
            h.set_gid(md.gid().into());
            h.set_mtime(self.opts.mtime.unwrap_or(md.mtime().max(0) as u64));
            h.set_size(0);
            let pax = |b: &mut tar::Builder<W>, x: &[(String, Vec<u8>)]| {
                if x.is_empty() {
                    return Ok(());
                }
                let keys: Vec<(String, &[u8])> = x
                    .iter()
                    .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v.as_slice()))
                    .collect();
                b.append_pax_extensions(keys.iter().map(|(k, v)| (k.as_str(), *v)))
            };
            let out = |e| WriteError::Io {
                path: p.clone(),
                source: e,
            };
            if ft.is_dir() {
                pax(&mut self.b, &xattrs).map_err(out)?;
                h.set_entry_type(tar::EntryType::Directory);
                self.b
                    .append_data(&mut h, format!("{rel}/"), io::empty())
                    .map_err(out)?;
                if opaque {
                    let mut oh = tar::Header::new_gnu();
                    oh.set_entry_type(tar::EntryType::Regular);
                    oh.set_mode(0o644);
                    oh.set_size(0);
                    oh.set_mtime(self.opts.mtime.unwrap_or(0));
                    self.b
                        .append_data(&mut oh, format!("{rel}/.wh..wh..opq"), io::empty())
                        .map_err(out)?;
                }
                self.walk(&p, &format!("{rel}/"))?;
            } else if ft.is_symlink() {
                pax(&mut self.b, &xattrs).map_err(out)?;
                h.set_entry_type(tar::EntryType::Symlink);
                let target = fs::read_link(&p).map_err(out)?;
                self.b.append_link(&mut h, &rel, target).map_err(out)?;
            } else if ft.is_file() {
                if md.nlink() > 1 {
                    if let Some(first) = self.links.get(&(md.dev(), md.ino())) {
                        h.set_entry_type(tar::EntryType::Link);
                        self.b.append_link(&mut h, &rel, first).map_err(out)?;
                        continue;
                    }
                    self.links.insert((md.dev(), md.ino()), rel.clone());
                }
                pax(&mut self.b, &xattrs).map_err(out)?;
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(md.len());
                let f = fs::File::open(&p).map_err(out)?;
                self.b
                    .append_data(&mut h, &rel, io::Read::take(f, md.len()))
                    .map_err(out)?;
            } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() {
                let rdev = md.rdev();
                if self.opts.overlay_upper && ft.is_char_device() && rdev == 0 {
                    let wh = format!("{prefix}.wh.{}", name.to_string_lossy());
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_mode(0o600);
                    self.b.append_data(&mut h, wh, io::empty()).map_err(out)?;
                    continue;
                }
                pax(&mut self.b, &xattrs).map_err(out)?;
                h.set_entry_type(if ft.is_char_device() {
                    tar::EntryType::Char
                } else if ft.is_block_device() {
                    tar::EntryType::Block
                } else {
                    tar::EntryType::Fifo
                });
                let _ = h.set_device_major(rustix::fs::major(rdev));
                let _ = h.set_device_minor(rustix::fs::minor(rdev));
                self.b.append_data(&mut h, &rel, io::empty()).map_err(out)?;
            }
            // Sockets are not part of images.
        }
        Ok(())
    }
}
