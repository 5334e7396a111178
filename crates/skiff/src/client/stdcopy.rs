//! Docker's multiplexed stdout/stderr stream (used when the container has no terminal):
//! frames of an 8-byte header `[stream, 0, 0, 0, size as u32 big-endian]` and `size` bytes.
//! Stream 0 is stdin (written to stdout), 1 stdout, 2 stderr, 3 an error from the daemon.

use std::io::{Read, Write};

/// What a demultiplexed stream ended with.
#[derive(Debug, thiserror::Error)]
pub enum DemuxError {
    #[error("read the container's output stream: {0}")]
    Read(#[source] std::io::Error),
    #[error("write the container's output: {0}")]
    Write(#[source] std::io::Error),
    #[error("unrecognized stream id {0} in the container's output (not a multiplexed stream?)")]
    BadStream(u8),
    #[error("{0}")]
    Daemon(String),
}

/// Copy frames to `stdout`/`stderr` until end of stream. Each frame is flushed as it
/// arrives, so followed logs and attached output appear without delay.
pub fn demux(
    mut r: impl Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<(), DemuxError> {
    let mut header = [0u8; 8];
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        if !read_full(&mut r, &mut header).map_err(DemuxError::Read)? {
            return Ok(());
        }
        let size = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let mut frame = Vec::new();
        let mut left = size;
        let out: &mut dyn Write = match header[0] {
            0 | 1 => stdout,
            2 => stderr,
            3 => &mut frame,
            other => return Err(DemuxError::BadStream(other)),
        };
        while left > 0 {
            let want = left.min(buf.len());
            if !read_full(&mut r, &mut buf[..want]).map_err(DemuxError::Read)? {
                return Err(DemuxError::Read(std::io::ErrorKind::UnexpectedEof.into()));
            }
            out.write_all(&buf[..want]).map_err(DemuxError::Write)?;
            left -= want;
        }
        out.flush().map_err(DemuxError::Write)?;
        if header[0] == 3 {
            return Err(DemuxError::Daemon(
                String::from_utf8_lossy(&frame).trim_end().to_string(),
            ));
        }
    }
}

/// Fill `buf` completely; `Ok(false)` at a clean end of stream before the first byte.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Copy a raw (terminal) stream to `out`, flushing every chunk.
pub fn copy_raw(mut r: impl Read, out: &mut dyn Write) -> Result<(), DemuxError> {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(DemuxError::Read(e)),
        };
        out.write_all(&buf[..n]).map_err(DemuxError::Write)?;
        out.flush().map_err(DemuxError::Write)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(stream: u8, data: &[u8]) -> Vec<u8> {
        let mut v = vec![stream, 0, 0, 0];
        v.extend_from_slice(&(data.len() as u32).to_be_bytes());
        v.extend_from_slice(data);
        v
    }

    /// A reader that hands out one byte at a time, as a slow socket might.
    struct Trickle(Vec<u8>, usize);
    impl Read for Trickle {
        fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
            if self.1 >= self.0.len() || b.is_empty() {
                return Ok(0);
            }
            b[0] = self.0[self.1];
            self.1 += 1;
            Ok(1)
        }
    }

    #[test]
    fn splits_stdout_and_stderr_across_short_reads() {
        let mut input = frame(1, b"out1\n");
        input.extend(frame(2, b"err\n"));
        input.extend(frame(1, b""));
        input.extend(frame(1, &vec![b'x'; 70_000]));
        let (mut o, mut e) = (Vec::new(), Vec::new());
        demux(Trickle(input, 0), &mut o, &mut e).unwrap();
        assert_eq!(&o[..5], b"out1\n");
        assert_eq!(o.len(), 5 + 70_000);
        assert_eq!(e, b"err\n");
    }

    #[test]
    fn daemon_error_frame_and_truncation_are_errors() {
        let mut input = frame(1, b"a");
        input.extend(frame(3, b"boom\n"));
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let err = demux(&input[..], &mut o, &mut e).unwrap_err();
        assert_eq!(err.to_string(), "boom");
        let cut = &frame(1, b"abcdef")[..10];
        assert!(matches!(
            demux(cut, &mut o, &mut e),
            Err(DemuxError::Read(_))
        ));
        assert!(matches!(
            demux(&b"HTTP/1.1"[..], &mut o, &mut e),
            Err(DemuxError::BadStream(b'H'))
        ));
    }
}
