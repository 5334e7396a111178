//! Bridges between the async HTTP side and the synchronous image store: a request body (or
//! any HTTP body) read as a blocking [`std::io::Read`], and a blocking [`std::io::Write`]
//! whose bytes become a streamed response.
//!
//! The pump that feeds a [`BodyReader`] keeps reading the body to its end even after the
//! reader is gone (a refused tarball): a client still sending would otherwise see its write
//! fail instead of the answer explaining why.

use std::io::{self, Read, Write};
use std::time::Duration;

use bytes::{Buf, Bytes};
use http_body_util::BodyExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::error::ApiError;

/// How long an answer waits for a refused body to finish arriving.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes a [`ChannelWriter`] gathers before sending a chunk.
const CHUNK: usize = 256 << 10;

/// A body's bytes, read synchronously (on the blocking pool).
pub struct BodyReader {
    rx: mpsc::Receiver<Result<Bytes, String>>,
    cur: Bytes,
    done: bool,
}

/// Starts pumping `body` into a [`BodyReader`]; await the handle (see [`drain`]) before
/// answering so the client has finished sending.
pub fn body_reader<B>(body: B) -> (BodyReader, JoinHandle<()>)
where
    B: hyper::body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: std::fmt::Display + Send,
{
    let (tx, rx) = mpsc::channel::<Result<Bytes, String>>(8);
    let pump = tokio::spawn(async move {
        let mut body = body;
        let mut reader_gone = false;
        while let Some(frame) = body.frame().await {
            let msg = match frame {
                Ok(f) => match f.into_data() {
                    Ok(mut d) => Ok(d.copy_to_bytes(d.remaining())),
                    Err(_) => continue,
                },
                Err(e) => Err(format!("read request body: {e}")),
            };
            let failed = msg.is_err();
            if !reader_gone && tx.send(msg).await.is_err() {
                reader_gone = true;
            }
            if failed {
                return;
            }
        }
    });
    (
        BodyReader {
            rx,
            cur: Bytes::new(),
            done: false,
        },
        pump,
    )
}

/// Waits (bounded) for a body pump to have read the whole body.
pub async fn drain(pump: JoinHandle<()>) {
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, pump).await;
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            if self.done {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => {
                    self.done = true;
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, e));
                }
                None => {
                    self.done = true;
                    return Ok(0);
                }
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur.advance(n);
        Ok(n)
    }
}

/// A blocking writer whose bytes go, in chunks, to an async receiver; a failure is sent as
/// the last message. Writes fail with `BrokenPipe` once the receiver is gone.
pub struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, ApiError>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    pub fn new(depth: usize) -> (ChannelWriter, mpsc::Receiver<Result<Bytes, ApiError>>) {
        let (tx, rx) = mpsc::channel(depth);
        (
            ChannelWriter {
                tx,
                buf: Vec::with_capacity(CHUNK),
            },
            rx,
        )
    }

    /// Ends the stream with an error (after what was written so far).
    pub fn fail(mut self, e: ApiError) {
        let _ = self.flush();
        let _ = self.tx.blocking_send(Err(e));
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn body_reads_whole_and_drains_after_reader_drops() {
        let chunks: Vec<Result<hyper::body::Frame<Bytes>, std::convert::Infallible>> = (0..50)
            .map(|i| Ok(hyper::body::Frame::data(Bytes::from(vec![i as u8; 1000]))))
            .collect();
        let body = http_body_util::StreamBody::new(futures_util::stream::iter(chunks));
        let (mut r, pump) = body_reader(body);
        let got = tokio::task::spawn_blocking(move || {
            let mut first = [0u8; 1500];
            r.read_exact(&mut first).unwrap();
            first[1000]
        })
        .await
        .unwrap();
        assert_eq!(got, 1);
        // The reader is gone after 1500 bytes; the pump still reaches the end.
        tokio::time::timeout(Duration::from_secs(5), pump)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writer_chunks_then_error() {
        let (mut w, mut rx) = ChannelWriter::new(4);
        let t = tokio::task::spawn_blocking(move || {
            w.write_all(&vec![7u8; CHUNK + 10]).unwrap();
            w.fail(ApiError::invalid("boom"));
        });
        let mut total = 0;
        let mut err = None;
        while let Some(m) = rx.recv().await {
            match m {
                Ok(b) => total += b.len(),
                Err(e) => err = Some(e),
            }
        }
        t.await.unwrap();
        assert_eq!(total, CHUNK + 10);
        assert_eq!(err.unwrap().message, "boom");
    }
}
