//! `cp` both ways through the archive endpoint (tar streams), with docker's naming rules
//! (copy into an existing directory, or to a new name), `-` for a tar on stdin/stdout;
//! and `export`.

use std::io::{IsTerminal, Read, Write};
use std::path::{Component, Path, PathBuf};

use base64::Engine as _;
use clap::Args;
use hyper::Method;
use serde_json::Value;

use super::{io_err, output, CliError, Res};
use crate::client::{Body, Client, Query};

#[derive(Args, Debug)]
pub struct CpArgs {
    /// CONTAINER:SRC_PATH or a local path (`-` for a tar stream on stdin).
    pub src: String,
    /// CONTAINER:DEST_PATH or a local path (`-` for a tar stream on stdout).
    pub dest: String,
    /// Archive mode (copy all uid/gid information).
    #[arg(short, long)]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH.
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,
    /// Suppress progress output during copy.
    #[arg(short, long)]
    pub quiet: bool,
}

/// docker's `splitCpArg`: `/abs` and `./rel` are local; `name:path` is in a container.
fn split(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') || arg.starts_with('.') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.is_empty() => (Some(c), p),
        _ => (None, arg),
    }
}

const DIR_BIT: u64 = 1 << 31;

/// The container path's stat (`X-Docker-Container-Path-Stat`), `None` when it does not exist.
fn stat(c: &Client, container: &str, path: &str) -> Res<Option<Value>> {
    let q = Query::new().add("path", path);
    match c.bytes(
        Method::HEAD,
        &q.to(&format!("/containers/{container}/archive")),
        Body::Empty,
    ) {
        Ok((h, _)) => {
            let raw = h
                .get("X-Docker-Container-Path-Stat")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let json = base64::engine::general_purpose::STANDARD
                .decode(raw)
                .unwrap_or_default();
            Ok(Some(serde_json::from_slice(&json).unwrap_or(Value::Null)))
        }
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn base(p: &str) -> String {
    Path::new(p.trim_end_matches('/'))
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| ".".into())
}

fn parent(p: &str) -> String {
    let t = p.trim_end_matches('/');
    match t.rfind('/') {
        Some(0) => "/".into(),
        Some(i) => t[..i].into(),
        None => ".".into(),
    }
}

pub fn cp(c: &Client, a: CpArgs) -> Res<i32> {
    match (split(&a.src), split(&a.dest)) {
        ((Some(_), _), (Some(_), _)) => Err(CliError::Usage(
            "copying between containers is not supported".into(),
        )),
        ((None, _), (None, _)) => Err(CliError::Usage(
            "must specify at least one container source".into(),
        )),
        ((Some(ctr), src), (None, dest)) => from_container(c, ctr, src, dest, a.quiet),
        ((None, src), (Some(ctr), dest)) => to_container(c, src, ctr, dest, a.quiet),
    }
}

fn from_container(c: &Client, ctr: &str, src: &str, dest: &str, quiet: bool) -> Res<i32> {
    let q = Query::new().add("path", src);
    let (_, body) = c.stream(
        Method::GET,
        &q.to(&format!("/containers/{ctr}/archive")),
        Body::Empty,
    )?;
    if dest == "-" {
        let mut out = std::io::stdout().lock();
        std::io::copy(&mut { body }, &mut out).map_err(io_err("copy the archive to stdout"))?;
        return Ok(0);
    }
    let src_base = base(src);
    let dest_path = PathBuf::from(dest);
    let contents_only = src.ends_with("/.");
    // Into an existing directory keeps the source name; otherwise the copy takes DEST's name.
    let (root, rename): (PathBuf, Option<String>) = if dest_path.is_dir() {
        (dest_path.clone(), contents_only.then(String::new))
    } else {
        if dest.ends_with('/') {
            return Err(CliError::Usage(format!(
                "destination directory {dest:?} does not exist"
            )));
        }
        let parent = dest_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        if !parent.is_dir() {
            return Err(CliError::Usage(format!(
                "no such directory: {}",
                parent.display()
            )));
        }
        (parent, Some(base(dest)))
    };
    let mut counted = Counter { inner: body, n: 0 };
    {
        let mut ar = tar::Archive::new(&mut counted);
        ar.set_preserve_permissions(true);
        ar.set_preserve_mtime(true);
        for e in ar.entries().map_err(io_err("read the archive"))? {
            let mut e = e.map_err(io_err("read the archive"))?;
            let name = e.path().map_err(io_err("read the archive"))?.into_owned();
            let rel = rewrite(&name, &src_base, rename.as_deref())?;
            let Some(rel) = rel else { continue };
            let target = root.join(&rel);
            if let Some(p) = target.parent() {
                std::fs::create_dir_all(p).map_err(io_err(format!("create {}", p.display())))?;
                inside(&root, p)?;
            }
            if e.header().entry_type().is_dir() && target.is_dir() {
                continue;
            }
            e.unpack(&target)
                .map_err(io_err(format!("write {}", target.display())))?;
        }
    }
    let _ = std::io::copy(&mut counted, &mut std::io::sink());
    // docker reports the size only to a terminal.
    if !quiet && std::io::stderr().is_terminal() {
        eprintln!(
            "Successfully copied {} to {dest}",
            output::human_size4(counted.n)
        );
    }
    Ok(0)
}

/// An archive entry's path under the destination: the source's base name replaced by
/// `rename` (`Some("")` drops it: contents only). `None` skips the entry. Paths that
/// climb out (`..`, absolute) are refused.
fn rewrite(name: &Path, src_base: &str, rename: Option<&str>) -> Res<Option<PathBuf>> {
    let mut comps = name
        .components()
        .filter(|c| !matches!(c, Component::CurDir));
    let mut out = PathBuf::new();
    let first = comps.next();
    match (first, rename) {
        (None, _) => return Ok(None),
        (Some(Component::Normal(f)), Some(r)) if f.to_string_lossy() == src_base => {
            out.push(r);
        }
        (Some(Component::Normal(f)), _) => out.push(f),
        (Some(other), _) => {
            return Err(CliError::Usage(format!(
                "archive entry {:?} is not a relative path ({other:?})",
                name.display()
            )))
        }
    }
    for c in comps {
        match c {
            Component::Normal(p) => out.push(p),
            other => {
                return Err(CliError::Usage(format!(
                    "archive entry {:?} climbs out of the destination ({other:?})",
                    name.display()
                )))
            }
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

/// Refuse to write through a symlink that leads outside the destination.
fn inside(root: &Path, p: &Path) -> Res<()> {
    let r = root
        .canonicalize()
        .map_err(io_err(format!("resolve {}", root.display())))?;
    let c = p
        .canonicalize()
        .map_err(io_err(format!("resolve {}", p.display())))?;
    if !c.starts_with(&r) {
        return Err(CliError::Usage(format!(
            "refusing to write outside {}: {} resolves to {}",
            root.display(),
            p.display(),
            c.display()
        )));
    }
    Ok(())
}

struct Counter<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for Counter<R> {
    fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(b)?;
        self.n += n as u64;
        Ok(n)
    }
}

fn to_container(c: &Client, src: &str, ctr: &str, dest: &str, quiet: bool) -> Res<i32> {
    let put = |dir: &str, tar: Vec<u8>| -> Res<()> {
        let q = Query::new()
            .add("path", dir)
            .add("noOverwriteDirNonDir", "true");
        c.bytes(
            Method::PUT,
            &q.to(&format!("/containers/{ctr}/archive")),
            Body::Tar(tar),
        )?;
        Ok(())
    };
    if src == "-" {
        let mut tar = Vec::new();
        std::io::stdin()
            .read_to_end(&mut tar)
            .map_err(io_err("read the archive from stdin"))?;
        put(dest, tar)?;
        return Ok(0);
    }
    let meta = std::fs::symlink_metadata(src).map_err(io_err(format!(
        "could not find the file {src} in the local filesystem"
    )))?;
    let dest_stat = stat(c, ctr, dest)?;
    let dest_is_dir = dest_stat
        .as_ref()
        .is_some_and(|s| s["mode"].as_u64().unwrap_or(0) & DIR_BIT != 0);
    if dest_stat.is_none() && dest.ends_with('/') && !meta.is_dir() {
        return Err(CliError::Usage(format!(
            "destination directory {ctr}:{dest} does not exist"
        )));
    }
    if meta.is_dir() && dest_stat.is_some() && !dest_is_dir {
        return Err(CliError::Usage(format!(
            "cannot copy a directory to a file: {ctr}:{dest}"
        )));
    }
    let contents_only = src.ends_with("/.");
    let (dir, name) = if dest_is_dir {
        (dest.to_string(), base(src))
    } else {
        (parent(dest), base(dest))
    };
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    let res = if meta.is_dir() {
        if contents_only && dest_is_dir {
            b.append_dir_all(".", src)
        } else {
            b.append_dir_all(&name, src)
        }
    } else {
        b.append_path_with_name(src, &name)
    };
    res.map_err(io_err(format!("archive {src}")))?;
    let tar = b.into_inner().map_err(io_err(format!("archive {src}")))?;
    let size = tar.len() as u64;
    put(&dir, tar)?;
    // docker reports the size only to a terminal.
    if !quiet && std::io::stderr().is_terminal() {
        eprintln!(
            "Successfully copied {} to {ctr}:{dest}",
            output::human_size4(size)
        );
    }
    Ok(0)
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    pub container: String,
    /// Write to a file, instead of STDOUT.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

pub fn export(c: &Client, a: ExportArgs) -> Res<i32> {
    if a.output.is_none() && std::io::stdout().is_terminal() {
        return Err(CliError::Usage(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect".into(),
        ));
    }
    let (_, mut body) = c.stream(
        Method::GET,
        &format!("/containers/{}/export", a.container),
        Body::Empty,
    )?;
    match &a.output {
        Some(p) => {
            let mut f = std::fs::File::create(p).map_err(io_err(format!(
                "failed to export container: {}",
                p.display()
            )))?;
            std::io::copy(&mut body, &mut f).map_err(io_err(format!(
                "failed to export container: {}",
                p.display()
            )))?;
            f.flush()
                .map_err(io_err(format!("write {}", p.display())))?;
        }
        None => match std::io::copy(&mut body, &mut std::io::stdout().lock()) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            r => {
                r.map_err(io_err("failed to export container"))?;
            }
        },
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_split_like_docker() {
        assert_eq!(split("c1:/etc/hosts"), (Some("c1"), "/etc/hosts"));
        assert_eq!(split("/tmp/a:b"), (None, "/tmp/a:b"));
        assert_eq!(split("./x:y"), (None, "./x:y"));
        assert_eq!(split("plain"), (None, "plain"));
        assert_eq!(base("/a/b/"), "b");
        assert_eq!(parent("/a/b"), "/a");
        assert_eq!(parent("/a"), "/");
    }

    #[test]
    fn entries_are_renamed_and_confined() {
        let r = |n: &str, rename| rewrite(Path::new(n), "src", rename).unwrap();
        assert_eq!(r("src/x", Some("dst")), Some(PathBuf::from("dst/x")));
        assert_eq!(r("src", None), Some(PathBuf::from("src")));
        assert_eq!(r("src/x", Some("")), Some(PathBuf::from("x")));
        assert_eq!(r("src", Some("")), None);
        assert!(rewrite(Path::new("src/../../etc"), "src", None).is_err());
        assert!(rewrite(Path::new("/etc/passwd"), "src", None).is_err());
    }
}
