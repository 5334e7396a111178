//! The build context: a directory (given, or unpacked from the uploaded tar) with its
//! .dockerignore, and resolving COPY/ADD sources in it.

mod copy_src;
pub mod extract;

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

pub use copy_src::{resolve_copy, CopyEntry, CopyOptions, CopyPlan};
pub use extract::{extract_context, ExtractStats, Limits};

use crate::ignore::{DockerIgnore, PatternError};

/// Errors about the build context.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("read build context: {0}")]
    Read(#[source] io::Error),
    #[error("write {path}: {source}", path = .0.display(), source = .1)]
    Write(PathBuf, #[source] io::Error),
    #[error("build context compressed with {0}: only plain and gzip-compressed tar are supported")]
    UnsupportedCompression(&'static str),
    #[error("build context entry {name:?} refused: {reason}")]
    HostileEntry { name: String, reason: &'static str },
    #[error("build context too large: {0}")]
    TooLarge(&'static str),
    #[error(".dockerignore: {0}")]
    Ignore(#[from] PatternError),
    #[error("{0:?}: not found")]
    NotFound(String),
    #[error("no source files were specified")]
    NoSources,
    #[error("When using {0} with more than one source file, the destination must be a directory and end with a /")]
    DestNotDir(&'static str),
    #[error("bad pattern {0:?} in {1}")]
    BadPattern(String, &'static str),
    #[error("{0:?}: too many levels of symbolic links")]
    SymlinkLoop(String),
    #[error("read {path}: {source}", path = .0.display(), source = .1)]
    Io(PathBuf, #[source] io::Error),
}

/// A build context on disk.
#[derive(Debug)]
pub struct BuildContext {
    root: PathBuf,
    ignore: DockerIgnore,
    dockerfile: String,
    _tmp: Option<tempfile::TempDir>,
}

impl BuildContext {
    /// A context that is the directory `root`, whose Dockerfile is at `dockerfile` (relative
    /// to `root`); reads `root/.dockerignore` if there is one.
    pub fn from_dir(root: &Path, dockerfile: &str) -> Result<BuildContext, ContextError> {
        let ignore_bytes = match fs::read(root.join(".dockerignore")) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(ContextError::Io(root.join(".dockerignore"), e)),
        };
        Ok(BuildContext {
            root: root.to_path_buf(),
            ignore: DockerIgnore::for_context(&ignore_bytes, dockerfile)?,
            dockerfile: dockerfile.to_string(),
            _tmp: None,
        })
    }

    /// Unpacks an uploaded context (plain or gzip tar) into a temporary directory under
    /// `tmp_parent` (removed when the context is dropped).
    pub fn from_tar<R: Read>(
        r: R,
        dockerfile: &str,
        tmp_parent: &Path,
        limits: Limits,
    ) -> Result<BuildContext, ContextError> {
        let tmp = tempfile::Builder::new()
            .prefix("skiff-build-context-")
            .tempdir_in(tmp_parent)
            .map_err(|e| ContextError::Write(tmp_parent.to_path_buf(), e))?;
        extract_context(r, tmp.path(), limits)?;
        let mut ctx = BuildContext::from_dir(tmp.path(), dockerfile)?;
        ctx._tmp = Some(tmp);
        Ok(ctx)
    }

    /// The context directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The .dockerignore in force (Dockerfile and .dockerignore always kept).
    pub fn ignore(&self) -> &DockerIgnore {
        &self.ignore
    }

    /// The Dockerfile's bytes, read inside the context (symlinks resolved within it).
    pub fn read_dockerfile(&self) -> Result<Vec<u8>, ContextError> {
        let path = copy_src::resolve_in_root(&self.root, &self.dockerfile)?
            .ok_or_else(|| ContextError::NotFound(self.dockerfile.clone()))?;
        fs::read(&path).map_err(|e| ContextError::Io(path, e))
    }

    /// The host path of `rel` (a path in the context, `/` its root), symlinks followed but
    /// never out of the context; `None` when something on the way is missing.
    pub fn resolve(&self, rel: &str) -> Result<Option<PathBuf>, ContextError> {
        copy_src::resolve_in_root(&self.root, rel)
    }

    /// Resolves the sources of a COPY/ADD from the context (see [`resolve_copy`]).
    pub fn resolve_copy(
        &self,
        sources: &[String],
        dest: &str,
        opts: &CopyOptions<'_>,
    ) -> Result<CopyPlan, ContextError> {
        resolve_copy(&self.root, Some(&self.ignore), sources, dest, opts)
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
