//! `import`: a rootfs tarball (plain, gzip or zstd) into a single-layer image — the layer blob
//! (recompressed), its diffID and a minimal image config.
//! The run configuration starts empty: `--change` instructions are applied to it by the
//! caller (skiff-engine, with skiff-build's Dockerfile parser, as for `commit`).

use std::io::{self, Read, Write};

use serde_json::json;

use crate::compression::{self, Compression, Compressor};
use crate::diff::LayerDigests;
use crate::digest::{self, Digest, HashingWriter};

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("import {source_name}: read tarball: {source}")]
    Read {
        source_name: String,
        #[source]
        source: io::Error,
    },
    #[error("import {source_name}: write layer: {source}")]
    Write {
        source_name: String,
        #[source]
        source: io::Error,
    },
}

#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// Where the tarball came from ("-" for stdin, a path or URL): goes into the history.
    pub source: String,
    /// Commit message (history comment); default "Imported from <source>".
    pub message: Option<String>,
    /// Compression of the written layer blob.
    pub compression: Compression,
    /// RFC 3339 creation time; default now.
    pub created: Option<String>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            source: "-".into(),
            message: None,
            compression: Compression::Gzip,
            created: None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Imported {
    pub layer: LayerDigests,
    pub compression: Compression,
    /// The image config JSON; its sha256 is the image ID.
    pub config: Vec<u8>,
    pub config_digest: Digest,
}

/// Reads a rootfs tarball from `reader` (its tar structure is checked on the way), writes the
/// layer blob to `out`, and builds the config.
pub fn import_rootfs(
    reader: impl Read,
    out: impl Write,
    opts: &ImportOptions,
) -> Result<Imported, ImportError> {
    let src = &opts.source;
    let rerr = |source| ImportError::Read {
        source_name: src.clone(),
        source,
    };
    let werr = |source| ImportError::Write {
        source_name: src.clone(),
        source,
    };
    let (c, r) = compression::peek(reader).map_err(rerr)?;
    let plain = compression::decompress(r, c).map_err(rerr)?;
    let sink = HashingWriter::new(
        Compressor::new(HashingWriter::new(out), opts.compression).map_err(werr)?,
    );
    let mut tee = Tee {
        r: plain,
        w: sink,
        werr: None,
    };
    {
        let mut ar = tar::Archive::new(&mut tee);
        for e in ar.entries().map_err(rerr)? {
            let e = e.map_err(rerr)?;
            let _ = e.header().entry_type();
        }
    }
    io::copy(&mut tee, &mut io::sink()).map_err(rerr)?;
    if let Some(e) = tee.werr {
        return Err(werr(e));
    }
    let (diff_id, uncompressed_size, comp) = tee.w.finish();
    let (d, size, mut w) = comp.finish().map_err(werr)?.finish();
    w.flush().map_err(werr)?;
    let layer = LayerDigests {
        diff_id: diff_id.clone(),
        digest: d,
        size,
        uncompressed_size,
    };
    let created = opts.created.clone().unwrap_or_else(now_rfc3339);
    let comment = opts
        .message
        .clone()
        .unwrap_or_else(|| format!("Imported from {src}"));
    let config = json!({
        "architecture": host_arch(),
        "os": "linux",
        "created": created,
        "config": {},
        "rootfs": { "type": "layers", "diff_ids": [diff_id.to_string()] },
        "history": [{ "created": created, "comment": comment }],
    });
    let config = serde_json::to_vec(&config).map_err(|e| werr(io::Error::other(e)))?;
    let config_digest = digest::sha256(&config);
    Ok(Imported {
        layer,
        compression: opts.compression,
        config,
        config_digest,
    })
}

/// Copies what is read into the writer (remembering a write error to report it as such).
struct Tee<R, W> {
    r: R,
    w: W,
    werr: Option<io::Error>,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.r.read(buf)?;
        if let Err(e) = self.w.write_all(&buf[..n]) {
            let msg = e.to_string();
            self.werr = Some(e);
            return Err(io::Error::other(msg));
        }
        Ok(n)
    }
}

/// The GOARCH name of the host.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "riscv64" => "riscv64",
        "s390x" => "s390x",
        other => other,
    }
}

fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    rfc3339(secs)
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
