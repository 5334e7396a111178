//! `import`: a rootfs tarball (plain, gzip or zstd) into a single-layer image — the layer blob
//! (recompressed), its diffID and a minimal image config.
//!
//! `--change` instructions supported (a Dockerfile subset, parsed minimally): `CMD` and
//! `ENTRYPOINT` (JSON array, else shell form → `["/bin/sh","-c",…]`), `ENV k=v …` (or the
//! legacy `ENV k v`), `EXPOSE port[/proto] …`, `LABEL k=v …`, `USER u`, `WORKDIR /p`,
//! `VOLUME ["/a"]` or `VOLUME /a /b`. Values may be double-quoted; no variable expansion,
//! no escapes, no line continuations. Anything else is an error naming the instruction.

use std::io::{self, Read, Write};

use serde_json::{json, Map, Value};

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
    #[error("import: --change {instruction:?}: {msg}")]
    Change { instruction: String, msg: String },
}

#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// Where the tarball came from ("-" for stdin, a path or URL): goes into the history.
    pub source: String,
    /// Dockerfile-like instructions (see the module docs).
    pub changes: Vec<String>,
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
            changes: Vec::new(),
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
    let config_part = parse_changes(&opts.changes)?;
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
        "config": Value::Object(config_part),
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

fn unquote(s: &str) -> String {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
        .to_string()
}

/// Splits on whitespace, keeping double-quoted runs together.
fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for ch in s.chars() {
        match ch {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Parses `--change` instructions into the `config` object of an image config.
pub fn parse_changes(changes: &[String]) -> Result<Map<String, Value>, ImportError> {
    let mut cfg = Map::new();
    for change in changes {
        let err = |msg: &str| ImportError::Change {
            instruction: change.clone(),
            msg: msg.into(),
        };
        let t = change.trim();
        let (instr, rest) = t
            .split_once(char::is_whitespace)
            .map(|(a, b)| (a, b.trim()))
            .unwrap_or((t, ""));
        if rest.is_empty() {
            return Err(err("missing arguments"));
        }
        let list = |rest: &str| -> Value {
            match serde_json::from_str::<Vec<String>>(rest) {
                Ok(v) => json!(v),
                Err(_) => json!(["/bin/sh", "-c", rest]),
            }
        };
        let kv = |rest: &str, key: &str| -> Result<Vec<(String, String)>, ImportError> {
            let ws = words(rest);
            if ws.first().is_some_and(|w| !w.contains('=')) {
                // Legacy `ENV key value…`.
                let (k, v) = rest
                    .split_once(char::is_whitespace)
                    .ok_or_else(|| err(&format!("{key} needs key=value")))?;
                return Ok(vec![(k.to_string(), unquote(v.trim()))]);
            }
            ws.into_iter()
                .map(|w| {
                    w.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .ok_or_else(|| err(&format!("{key} needs key=value")))
                })
                .collect()
        };
        match instr.to_ascii_uppercase().as_str() {
            "CMD" => {
                cfg.insert("Cmd".into(), list(rest));
            }
            "ENTRYPOINT" => {
                cfg.insert("Entrypoint".into(), list(rest));
            }
            "ENV" => {
                let env = cfg.entry("Env").or_insert_with(|| json!([]));
                for (k, v) in kv(rest, "ENV")? {
                    let arr = env.as_array_mut().expect("Env is an array");
                    arr.retain(|e| e.as_str().and_then(|s| s.split_once('=')).map(|(ek, _)| ek != k).unwrap_or(true));
                    arr.push(json!(format!("{k}={v}")));
                }
            }
            "LABEL" => {
                let labels = cfg.entry("Labels").or_insert_with(|| json!({}));
                for (k, v) in kv(rest, "LABEL")? {
                    labels[unquote(&k)] = json!(v);
                }
            }
            "EXPOSE" => {
                let ports = cfg.entry("ExposedPorts").or_insert_with(|| json!({}));
                for p in words(rest) {
                    let (num, proto) = p.split_once('/').unwrap_or((&p, "tcp"));
                    if num.parse::<u16>().is_err() || !matches!(proto, "tcp" | "udp" | "sctp") {
                        return Err(err(&format!("invalid port {p:?}")));
                    }
                    ports[format!("{num}/{proto}")] = json!({});
                }
            }
            "USER" => {
                cfg.insert("User".into(), json!(unquote(rest)));
            }
            "WORKDIR" => {
                cfg.insert("WorkingDir".into(), json!(unquote(rest)));
            }
            "VOLUME" => {
                let vols = cfg.entry("Volumes").or_insert_with(|| json!({}));
                let list: Vec<String> = serde_json::from_str(rest).unwrap_or_else(|_| words(rest));
                for v in list {
                    vols[v] = json!({});
                }
            }
            other => return Err(err(&format!("unsupported instruction {other} (supported: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, WORKDIR, VOLUME)"))),
        }
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(v: &[&str]) -> Result<Value, ImportError> {
        parse_changes(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>()).map(Value::Object)
    }

    #[test]
    fn changes_subset() {
        let c = ch(&[
            r#"CMD ["/bin/sh", "-l"]"#,
            "ENTRYPOINT echo hi",
            "ENV A=1 B=\"two words\"",
            "ENV LEGACY some value",
            "ENV A=3",
            "EXPOSE 80 53/udp",
            "LABEL org.x=y",
            "USER 1000:1000",
            "WORKDIR /srv",
            "VOLUME /data /logs",
        ])
        .unwrap();
        assert_eq!(c["Cmd"], json!(["/bin/sh", "-l"]));
        assert_eq!(c["Entrypoint"], json!(["/bin/sh", "-c", "echo hi"]));
        assert_eq!(c["Env"], json!(["B=two words", "LEGACY=some value", "A=3"]));
        assert_eq!(c["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}}));
        assert_eq!(c["Labels"], json!({"org.x": "y"}));
        assert_eq!(c["User"], json!("1000:1000"));
        assert_eq!(c["WorkingDir"], json!("/srv"));
        assert_eq!(c["Volumes"], json!({"/data": {}, "/logs": {}}));
    }

    #[test]
    fn bad_changes_are_named() {
        let e = ch(&["RUN rm -rf /"]).unwrap_err().to_string();
        assert!(
            e.starts_with("import: --change \"RUN rm -rf /\": unsupported instruction RUN"),
            "{e}"
        );
        assert!(ch(&["EXPOSE http"]).is_err());
        assert!(ch(&["CMD"]).is_err());
    }

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
