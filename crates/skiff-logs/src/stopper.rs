//! [`Stopper`]: how another thread ends or wakes a following [`crate::Reader`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// A cloneable handle that ends or wakes a [`crate::Reader`] from another thread.
///
/// How the daemon uses it for `GET /containers/{id}/logs`:
///
/// ```no_run
/// # use skiff_logs::{LogConfig, ReadOptions, Reader};
/// # fn demo(cfg: LogConfig, opts: ReadOptions, container_running: bool) -> Result<(), skiff_logs::LogError> {
/// let reader = Reader::open(&cfg, opts)?;
/// let stopper = reader.stopper();
/// // 1. Register `stopper.clone()` with the container *before* checking its state, and
/// //    call `finish()` when the container exits (after its shim flushed the log);
/// //    if it is not running now, finish right away: the follow then ends at the end.
/// if !container_running {
///     stopper.finish();
/// }
/// // 2. Run the blocking iterator on a blocking thread (`tokio::task::spawn_blocking`),
/// //    sending entries through a bounded channel; when the send fails (the client went
/// //    away) the loop ends. Also call `stopper.stop()` from the request task when the
/// //    connection closes, so a follower blocked waiting for new lines ends at once.
/// for entry in reader {
///     let _entry = entry?;
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default)]
pub struct Stopper {
    inner: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    stopped: AtomicBool,
    state: Mutex<State>,
    cv: Condvar,
}

#[derive(Debug, Default)]
struct State {
    finished: bool,
    generation: u64,
}

impl Stopper {
    /// Ends the iteration as soon as possible, even mid-backlog (the client went away).
    pub fn stop(&self) {
        self.inner.stopped.store(true, Ordering::SeqCst);
        self.bump(false);
    }

    /// The log is complete (the container exited and its writer was flushed): a follower
    /// returns every entry written so far, then ends instead of waiting.
    pub fn finish(&self) {
        self.bump(true);
    }

    /// Wakes a waiting follower to look for new entries now (optional: it also polls).
    pub fn wake(&self) {
        self.bump(false);
    }

    fn bump(&self, finish: bool) {
        let mut st = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
        st.finished |= finish;
        st.generation += 1;
        drop(st);
        self.inner.cv.notify_all();
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.inner.stopped.load(Ordering::Relaxed)
    }

    /// (finished, generation), read before looking for more data.
    pub(crate) fn snapshot(&self) -> (bool, u64) {
        let st = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
        (st.finished, st.generation)
    }

    /// Waits up to `timeout` unless something happened since `generation`.
    pub(crate) fn wait(&self, generation: u64, timeout: Duration) {
        let st = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.generation != generation {
            return;
        }
        let _ = self.inner.cv.wait_timeout(st, timeout);
    }
}
