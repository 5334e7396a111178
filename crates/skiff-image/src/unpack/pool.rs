//! Writer threads for small regular files. The unpacker's own thread decompresses, hashes and
//! parses the tar, creates every directory (so a parent always exists before its children)
//! and hands each small file — its parent's fd, name, content in memory and metadata — to a
//! few writers. File creation on this kind of host is syscall- and allocator-bound in the
//! kernel (not CPU in user space), so a handful of writers overlap well even on 2 cores.
//!
//! Ordering is the unpacker's job, with the help of [`Pool::is_pending`]: a job is keyed by
//! its resolved parent (device, inode) and name, so two spellings of one path (`a/f`,
//! `link-to-a/f`) have one key. Before anything else touches a key that a job has not
//! finished with, or removes a directory (which may hold pending jobs), the unpacker calls
//! [`Pool::flush`]. Writers only ever create regular files at their own key (replacing a
//! regular file there), never directories, so everything else stays as the unpacker sees it.

use std::collections::{HashMap, VecDeque};
use std::os::fd::OwnedFd;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use super::entry::{self, FilePlan, Meta, MetaOutcome};
use super::error::EntryError;

/// Where a file goes: (device, inode) of its parent directory, and its name.
pub(crate) type Key = (u64, u64, Vec<u8>);

/// One small regular file to write.
pub(crate) struct Job {
    pub(crate) dir: Arc<OwnedFd>,
    pub(crate) key: Key,
    pub(crate) data: Vec<u8>,
    pub(crate) meta: Meta,
    pub(crate) plan: FilePlan,
    /// Its cleaned path in the layer.
    pub(crate) path: Vec<u8>,
    /// The entry's path in the tar, for errors.
    pub(crate) entry: Vec<u8>,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    queued_bytes: usize,
    /// Jobs queued or being written.
    in_flight: usize,
    pending: HashMap<Key, u32>,
    /// The same jobs by cleaned path.
    pending_paths: HashMap<Vec<u8>, u32>,
    /// The first failure (entry path, error); later jobs are dropped.
    error: Option<(Vec<u8>, EntryError)>,
    shutdown: bool,
    xattrs_skipped: u64,
    /// Writers waiting for work, and whether the unpacker waits for a job to finish: the
    /// condvars are only signalled when someone waits (each signal is a syscall).
    idle_writers: usize,
    unpacker_waits: bool,
    /// Jobs taken by writers so far.
    taken: u64,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when a job is queued or on shutdown (writers wait on it).
    work: Condvar,
    /// Signalled when a job finishes (the unpacker waits on it).
    done: Condvar,
    /// Test hook: the writer that takes the first job sleeps this long before writing it, so
    /// that later jobs overtake it and ordering bugs show.
    first_job_delay: std::time::Duration,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A fixed set of writer threads, started on the first job; joined on drop.
pub(crate) struct Pool {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    writers: usize,
    max_bytes: usize,
    max_jobs: usize,
}

/// Why a job could not be queued or waited for: the first writer failure.
pub(crate) struct WriterFailed {
    pub(crate) entry: Vec<u8>,
    pub(crate) error: EntryError,
}

impl Pool {
    /// `writers` threads; the unpacker blocks while `max_bytes` of content or `max_jobs` jobs
    /// are queued.
    pub(crate) fn new(writers: usize, max_bytes: usize, max_jobs: usize) -> Pool {
        Pool {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                work: Condvar::new(),
                done: Condvar::new(),
                first_job_delay: std::time::Duration::ZERO,
            }),
            threads: Vec::new(),
            writers: writers.max(1),
            max_bytes,
            max_jobs: max_jobs.max(1),
        }
    }

    #[cfg(test)]
    pub(crate) fn with_first_job_delay(mut self, delay: std::time::Duration) -> Pool {
        Arc::get_mut(&mut self.shared)
            .expect("no writer started yet")
            .first_job_delay = delay;
        self
    }

    /// Whether a job for `key` is queued or being written.
    pub(crate) fn is_pending(&self, key: &Key) -> bool {
        !self.threads.is_empty() && self.shared.lock().pending.contains_key(key)
    }

    /// Whether a job's cleaned path is one of the directories on the way to `comps`
    /// (components of a cleaned path).
    pub(crate) fn has_pending_prefix(&self, comps: &[&[u8]]) -> bool {
        if self.threads.is_empty() || comps.is_empty() {
            return false;
        }
        let s = self.shared.lock();
        if s.pending_paths.is_empty() {
            return false;
        }
        let mut p = Vec::new();
        for c in comps {
            if !p.is_empty() {
                p.push(b'/');
            }
            p.extend_from_slice(c);
            if s.pending_paths.contains_key(&p) {
                return true;
            }
        }
        false
    }

    /// Queues a job; waits while the queue is full. Fails with the first writer error.
    pub(crate) fn submit(&mut self, job: Job) -> Result<(), WriterFailed> {
        if self.threads.len() < self.writers {
            self.start_writers();
        }
        if self.threads.is_empty() {
            // No thread could be started: write it here.
            let mut out = MetaOutcome::default();
            let res = run(&job, &mut out);
            self.shared.lock().xattrs_skipped += out.xattrs_skipped;
            return res.map_err(|error| WriterFailed {
                entry: job.entry,
                error,
            });
        }
        let mut s = self.shared.lock();
        while s.error.is_none()
            && s.in_flight > 0
            && (s.queue.len() >= self.max_jobs || s.queued_bytes + job.data.len() > self.max_bytes)
        {
            s.unpacker_waits = true;
            s = self.shared.done.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        s.unpacker_waits = false;
        if let Some((entry, error)) = s.error.take() {
            return Err(WriterFailed { entry, error });
        }
        s.queued_bytes += job.data.len();
        s.in_flight += 1;
        *s.pending.entry(job.key.clone()).or_insert(0) += 1;
        *s.pending_paths.entry(job.path.clone()).or_insert(0) += 1;
        s.queue.push_back(job);
        let wake = s.idle_writers > 0;
        drop(s);
        if wake {
            self.shared.work.notify_one();
        }
        Ok(())
    }

    /// Waits until every queued job is written. Fails with the first writer error.
    pub(crate) fn flush(&mut self) -> Result<(), WriterFailed> {
        if self.threads.is_empty() {
            return Ok(());
        }
        let mut s = self.shared.lock();
        while s.in_flight > 0 && s.error.is_none() {
            s.unpacker_waits = true;
            s = self.shared.done.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        s.unpacker_waits = false;
        match s.error.take() {
            Some((entry, error)) => Err(WriterFailed { entry, error }),
            None => Ok(()),
        }
    }

    /// xattrs the writers could not set (EPERM/ENOTSUP), tolerated.
    pub(crate) fn xattrs_skipped(&self) -> u64 {
        self.shared.lock().xattrs_skipped
    }

    fn start_writers(&mut self) {
        while self.threads.len() < self.writers {
            let shared = self.shared.clone();
            let spawned = std::thread::Builder::new()
                .name("skiff-unpack-w".into())
                .spawn(move || writer(&shared));
            match spawned {
                Ok(h) => self.threads.push(h),
                // Out of threads: the ones running (or, with none, the caller) will do.
                Err(_) => {
                    self.writers = self.threads.len();
                    break;
                }
            }
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        {
            let mut s = self.shared.lock();
            s.shutdown = true;
            s.in_flight -= s.queue.len();
            s.queue.clear();
        }
        self.shared.work.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn writer(shared: &Shared) {
    let mut s = shared.lock();
    loop {
        if s.shutdown {
            return;
        }
        let Some(job) = s.queue.pop_front() else {
            s.idle_writers += 1;
            s = shared.work.wait(s).unwrap_or_else(|e| e.into_inner());
            s.idle_writers -= 1;
            continue;
        };
        s.queued_bytes -= job.data.len();
        s.taken += 1;
        let first = s.taken == 1;
        let failed = s.error.is_some();
        drop(s);
        if first && !shared.first_job_delay.is_zero() {
            std::thread::sleep(shared.first_job_delay);
        }
        let mut out = MetaOutcome::default();
        let res = if failed {
            Ok(()) // the layer has failed: drop the rest
        } else {
            // A panic must not leave the job in flight forever (the unpacker waits for it).
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&job, &mut out)))
                .unwrap_or_else(|_| {
                    Err(EntryError::Io {
                        op: "write file",
                        source: std::io::Error::other("writer thread panicked"),
                    })
                })
        };
        s = shared.lock();
        s.xattrs_skipped += out.xattrs_skipped;
        if let Err(e) = res {
            if s.error.is_none() {
                s.error = Some((job.entry, e));
            }
        }
        if let Some(n) = s.pending.get_mut(&job.key) {
            *n -= 1;
            if *n == 0 {
                s.pending.remove(&job.key);
            }
        }
        if let Some(n) = s.pending_paths.get_mut(&job.path) {
            *n -= 1;
            if *n == 0 {
                s.pending_paths.remove(&job.path);
            }
        }
        s.in_flight -= 1;
        if s.unpacker_waits {
            shared.done.notify_all();
        }
    }
}

fn run(job: &Job, out: &mut MetaOutcome) -> Result<(), EntryError> {
    entry::create_file(&job.dir, &job.key.2, &job.data, &job.meta, &job.plan, out)
}
