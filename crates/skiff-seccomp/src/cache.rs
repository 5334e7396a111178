//! [`FilterCache`]: compile each distinct profile once per host.
//!
//! Layout of the optional cache directory (layout version 1):
//! ```text
//! <dir>/<key>.bpf     CompiledFilter::to_bytes() (format 1, sha256-checked)
//! <dir>/.<key>.tmp.*  in-flight writes (write, fsync, rename, fsync dir)
//! ```
//! `<key>` is the hex sha256 of: layout version, the libseccomp version, the native
//! architecture, the seccomp flags this kernel accepts (each length-prefixed) and the profile
//! serialized to JSON by oci-spec (struct field order is fixed, so this is canonical). A changed library, arch or kernel
//! feature set thus misses instead of loading a stale program. Corrupt files are recompiled
//! and rewritten; any disk failure only costs a compile.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use oci_spec::runtime::LinuxSeccomp;
use sha2::{Digest, Sha256};

use crate::{compile, install, CompiledFilter, SeccompError};

const LAYOUT_VERSION: &str = "skiff-seccomp-cache-v1";

/// Counters of a [`FilterCache`], for tests and metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    /// Profiles compiled with libseccomp.
    pub compiled: u64,
    /// Lookups answered from memory.
    pub memory_hits: u64,
    /// Lookups answered from the cache directory.
    pub disk_hits: u64,
}

/// An in-memory and optional on-disk cache of compiled filters, keyed by profile content.
#[derive(Debug)]
pub struct FilterCache {
    dir: Option<PathBuf>,
    mem: Mutex<HashMap<String, Arc<CompiledFilter>>>,
    compiled: AtomicU64,
    memory_hits: AtomicU64,
    disk_hits: AtomicU64,
}

impl FilterCache {
    /// A cache in memory, persisted under `dir` when given (created on first write).
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self {
            dir,
            mem: Mutex::new(HashMap::new()),
            compiled: AtomicU64::new(0),
            memory_hits: AtomicU64::new(0),
            disk_hits: AtomicU64::new(0),
        }
    }

    /// The compiled filter for `profile`: from memory, else from disk, else compiled (and stored).
    pub fn get_or_compile(
        &self,
        profile: &LinuxSeccomp,
    ) -> Result<Arc<CompiledFilter>, SeccompError> {
        let key = cache_key(profile)?;
        if let Some(f) = self.lock().get(&key) {
            self.memory_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Arc::clone(f));
        }
        let filter = match self.load(&key) {
            Some(f) => {
                self.disk_hits.fetch_add(1, Ordering::Relaxed);
                f
            }
            None => {
                let t = Instant::now();
                let f = compile(profile)?;
                tracing::debug!(key = %key, insns = f.len(), elapsed_us = t.elapsed().as_micros() as u64, "seccomp: profile compiled");
                self.compiled.fetch_add(1, Ordering::Relaxed);
                self.store(&key, &f);
                f
            }
        };
        let mut mem = self.lock();
        Ok(Arc::clone(
            mem.entry(key).or_insert_with(|| Arc::new(filter)),
        ))
    }

    /// Counters since creation.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            compiled: self.compiled.load(Ordering::Relaxed),
            memory_hits: self.memory_hits.load(Ordering::Relaxed),
            disk_hits: self.disk_hits.load(Ordering::Relaxed),
        }
    }

    /// Path of the cache file for `profile`, if the cache has a directory.
    pub fn path_for(&self, profile: &LinuxSeccomp) -> Result<Option<PathBuf>, SeccompError> {
        let key = cache_key(profile)?;
        Ok(self.dir.as_ref().map(|d| d.join(format!("{key}.bpf"))))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<CompiledFilter>>> {
        // A panic while holding the lock cannot leave the map inconsistent (single inserts).
        self.mem.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn load(&self, key: &str) -> Option<CompiledFilter> {
        let path = self.dir.as_ref()?.join(format!("{key}.bpf"));
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "seccomp: cache read failed, recompiling");
                return None;
            }
        };
        match CompiledFilter::from_bytes(&bytes) {
            Ok(f) => Some(f),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "seccomp: corrupt cache file, recompiling");
                None
            }
        }
    }

    fn store(&self, key: &str, f: &CompiledFilter) {
        let Some(dir) = &self.dir else { return };
        if let Err(SeccompError::Cache { path, source }) = write_atomic(dir, key, &f.to_bytes()) {
            tracing::warn!(path = %path.display(), error = %source, "seccomp: cache write failed");
        }
    }
}

/// The cache key of `profile` on this host (hex sha256, see the module docs).
pub fn cache_key(profile: &LinuxSeccomp) -> Result<String, SeccompError> {
    // The host part is fixed for the life of the process: hash it once, clone the state.
    static HOST: OnceLock<Sha256> = OnceLock::new();
    let mut h = HOST
        .get_or_init(|| {
            let lib = libseccomp::ScmpVersion::current()
                .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
                .unwrap_or_default();
            let mut h = Sha256::new();
            for part in [
                LAYOUT_VERSION.as_bytes(),
                lib.as_bytes(),
                std::env::consts::ARCH.as_bytes(),
                &install::supported_flags().to_le_bytes(),
            ] {
                h.update((part.len() as u64).to_le_bytes());
                h.update(part);
            }
            h
        })
        .clone();
    // The profile JSON comes last, so it needs no length prefix; stream it into the hash.
    serde_json::to_writer(HashWriter(&mut h), profile)
        .map_err(|source| SeccompError::Serialize { source })?;
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// write temp + fsync + rename + fsync dir.
fn write_atomic(dir: &Path, key: &str, bytes: &[u8]) -> Result<(), SeccompError> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let final_path = dir.join(format!("{key}.bpf"));
    let tmp = dir.join(format!(
        ".{key}.tmp.{}.{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SeccompError::Cache { path, source }
    };
    fs::create_dir_all(dir).map_err(io(dir))?;
    let res = (|| {
        let mut f = fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        fs::rename(&tmp, &final_path).map_err(io(&final_path))?;
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}
