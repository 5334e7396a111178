//! An entry's metadata from its tar header and PAX records, read as leniently as Go's
//! archive/tar (what docker and containerd use) where real layers depend on it.

use std::io::{self, Read};

use rustix::fs::Timespec;

use super::entry::Meta;
use super::error::EntryError;
use super::limits::Limits;

/// Mode, owner, mtime and xattrs from the header and its PAX records.
pub(crate) fn meta<R: Read>(
    e: &mut tar::Entry<'_, R>,
    limits: &Limits,
) -> Result<Meta, EntryError> {
    let h = e.header();
    let old = h.as_old();
    // Empty numeric fields read as 0, as Go's archive/tar (docker, containerd) reads them.
    let mode = lenient(h.mode().map(u64::from), &old.mode, "mode")? as u32;
    let mut uid = lenient(h.uid(), &old.uid, "uid")?;
    let mut gid = lenient(h.gid(), &old.gid, "gid")?;
    let mut mtime = Timespec {
        tv_sec: lenient(h.mtime(), &old.mtime, "mtime")? as i64,
        tv_nsec: 0,
    };
    let mut xattrs = Vec::new();
    if let Some(pax) = e.pax_extensions().map_err(header_err("pax"))? {
        for ext in pax {
            let ext = ext.map_err(header_err("pax"))?;
            let Ok(key) = ext.key() else { continue };
            let value = ext.value_bytes();
            let num = || {
                std::str::from_utf8(value)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
            };
            match key {
                "uid" => uid = num().unwrap_or(uid),
                "gid" => gid = num().unwrap_or(gid),
                "mtime" => {
                    if let Some(t) = std::str::from_utf8(value).ok().and_then(parse_pax_time) {
                        mtime = t;
                    }
                }
                _ => {
                    let Some(name) = key.strip_prefix("SCHILY.xattr.") else {
                        continue;
                    };
                    if name.starts_with("trusted.overlay.")
                        || name.is_empty()
                        || name.contains('\0')
                    {
                        continue; // never let a layer steer overlayfs
                    }
                    if value.len() > limits.max_xattr_size {
                        return Err(EntryError::XattrTooLarge {
                            name: name.into(),
                            size: value.len(),
                            limit: limits.max_xattr_size,
                        });
                    }
                    xattrs.push((name.to_owned(), value.to_vec()));
                    if xattrs.len() > limits.max_xattrs_per_entry {
                        return Err(EntryError::TooManyXattrs {
                            count: xattrs.len(),
                            limit: limits.max_xattrs_per_entry,
                        });
                    }
                }
            }
        }
    }
    let id = |v: u64, field| {
        u32::try_from(v).map_err(|_| EntryError::Header {
            field,
            source: io::Error::other("id out of range"),
        })
    };
    Ok(Meta {
        mode,
        uid: id(uid, "uid")?,
        gid: id(gid, "gid")?,
        mtime,
        xattrs,
    })
}

fn lenient(v: io::Result<u64>, raw: &[u8], field: &'static str) -> Result<u64, EntryError> {
    match v {
        Ok(v) => Ok(v),
        Err(_) if raw.iter().all(|b| *b == 0 || *b == b' ') => Ok(0),
        Err(source) => Err(EntryError::Header { field, source }),
    }
}

pub(crate) fn header_err(field: &'static str) -> impl Fn(io::Error) -> EntryError {
    move |source| EntryError::Header { field, source }
}

/// PAX `mtime` is decimal seconds with an optional fraction.
fn parse_pax_time(s: &str) -> Option<Timespec> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let tv_sec: i64 = secs.parse().ok()?;
    let mut digits: String = frac.chars().take(9).collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    while digits.len() < 9 {
        digits.push('0');
    }
    let tv_nsec = if tv_sec < 0 { 0 } else { digits.parse().ok()? };
    Some(Timespec { tv_sec, tv_nsec })
}
