//! Unpacking a layer while it downloads: the download publishes how far it has written its
//! content-store ingest, and the unpacker reads the same file behind it, waiting for more,
//! until the download has committed (digest verified) — only then does the reader return
//! end-of-file, so a layer whose bytes fail verification never yields a committed snapshot.

use std::fs::File;
use std::io::Read;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

#[derive(Default)]
struct State {
    reader: Option<File>,
    written: u64,
    done: Option<Result<(), String>>,
}

/// Shared between one layer's download task and its unpacker.
#[derive(Default)]
pub(crate) struct Follow {
    state: Mutex<State>,
    cv: Condvar,
}

/// Where the unpacker gets the layer from.
pub(crate) enum Source {
    /// Streaming behind the download.
    Follow(FollowReader),
    /// The download is complete (or was never needed): read the blob.
    Blob,
}

impl Follow {
    /// The download wrote its ingest from the start: unpackers may follow it.
    pub(crate) fn set_reader(&self, f: File) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.reader = Some(f);
        self.cv.notify_all();
    }

    pub(crate) fn add(&self, n: u64) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.written += n;
        self.cv.notify_all();
    }

    pub(crate) fn finish(&self, r: Result<(), String>) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.done = Some(r);
        self.cv.notify_all();
    }

    /// Block until the layer can be read (streaming or complete); the download's error if it
    /// failed before that.
    pub(crate) fn wait_source(self: &std::sync::Arc<Self>) -> Result<Source, String> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(f) = s.reader.take() {
                return Ok(Source::Follow(FollowReader {
                    file: f,
                    pos: 0,
                    follow: self.clone(),
                }));
            }
            match &s.done {
                Some(Ok(())) => return Ok(Source::Blob),
                Some(Err(e)) => return Err(e.clone()),
                None => {}
            }
            s = self
                .cv
                .wait_timeout(s, Duration::from_millis(200))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// Reads a growing ingest file; end-of-file only once the download committed.
pub(crate) struct FollowReader {
    file: File,
    pos: u64,
    follow: std::sync::Arc<Follow>,
}

impl Read for FollowReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let n = self.file.read(buf)?;
            if n > 0 {
                self.pos += n as u64;
                return Ok(n);
            }
            let s = self.follow.state.lock().unwrap_or_else(|e| e.into_inner());
            match &s.done {
                // Committed: what the file holds is the whole verified blob.
                Some(Ok(())) => return Ok(0),
                Some(Err(e)) => return Err(std::io::Error::other(format!("download failed: {e}"))),
                None if s.written > self.pos => {} // written meanwhile: read again
                None => {
                    let _ = self
                        .follow
                        .cv
                        .wait_timeout(s, Duration::from_millis(200))
                        .unwrap_or_else(|e| e.into_inner());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::Arc;

    #[test]
    fn follows_a_growing_file_until_finished() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("data");
        let mut w = std::fs::File::create(&p).unwrap();
        let f = Arc::new(Follow::default());
        f.set_reader(std::fs::File::open(&p).unwrap());
        let f2 = f.clone();
        let writer = std::thread::spawn(move || {
            for i in 0..50u8 {
                w.write_all(&[i; 1000]).unwrap();
                f2.add(1000);
                std::thread::sleep(Duration::from_millis(1));
            }
            f2.finish(Ok(()));
        });
        let Source::Follow(mut r) = f.wait_source().unwrap() else {
            panic!("expected a follower")
        };
        let mut all = Vec::new();
        r.read_to_end(&mut all).unwrap();
        writer.join().unwrap();
        assert_eq!(all.len(), 50_000);
        assert_eq!(all[49_999], 49);
    }

    #[test]
    fn a_failed_download_fails_the_reader() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("data");
        std::fs::write(&p, b"partial").unwrap();
        let f = Arc::new(Follow::default());
        f.set_reader(std::fs::File::open(&p).unwrap());
        f.add(7);
        f.finish(Err("digest mismatch".into()));
        let Source::Follow(mut r) = f.wait_source().unwrap() else {
            panic!("expected a follower")
        };
        let mut all = Vec::new();
        let e = r.read_to_end(&mut all).unwrap_err();
        assert!(e.to_string().contains("digest mismatch"));
    }
}
