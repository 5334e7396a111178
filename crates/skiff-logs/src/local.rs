//! The `local` driver's on-disk framing, version 1 (skiff's own; Docker's `local` driver
//! uses protobuf records, which skiff does not read).
//!
//! A file is a sequence of frames, all integers little-endian:
//!
//! ```text
//! offset  size  field
//! 0       4     len: payload length in bytes (at most MAX_PAYLOAD)
//! 4       1     magic 0xA7 (frame format version 1)
//! 5       1     flags: bit 0 = stderr (else stdout), bit 1 = partial; other bits 0
//! 6       2     reserved, 0
//! 8       8     time: i64 nanoseconds since the Unix epoch, UTC
//! 16      len   payload: the log text, including its '\n' when the line had one
//! 16+len  4     len again, so the file can be walked backwards
//! ```
//!
//! A frame is valid when magic, flags, reserved and both lengths agree. After a torn or
//! corrupt region a reader resynchronises by trying the next byte offset.

use crate::config::Stream;

pub(crate) const HEADER: usize = 16;
pub(crate) const TRAILER: usize = 4;
pub(crate) const MAGIC: u8 = 0xa7;
/// Writers emit at most 16 KiB + 1; anything much larger is corruption.
pub(crate) const MAX_PAYLOAD: usize = 1 << 20;
const FLAG_STDERR: u8 = 1;
const FLAG_PARTIAL: u8 = 2;

/// Appends one frame.
pub(crate) fn encode(out: &mut Vec<u8>, stream: Stream, content: &[u8], newline: bool, nanos: i64) {
    let len = (content.len() + usize::from(newline)) as u32;
    let mut flags = 0;
    if stream == Stream::Stderr {
        flags |= FLAG_STDERR;
    }
    if !newline {
        flags |= FLAG_PARTIAL;
    }
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&[MAGIC, flags, 0, 0]);
    out.extend_from_slice(&nanos.to_le_bytes());
    out.extend_from_slice(content);
    if newline {
        out.push(b'\n');
    }
    out.extend_from_slice(&len.to_le_bytes());
}

/// What is at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A valid frame of this many bytes.
    Valid(usize),
    /// Not a frame start: skip one byte.
    Invalid,
    /// A plausible header whose frame is not all in the buffer yet.
    Incomplete,
}

fn header_ok(h: &[u8]) -> Option<usize> {
    let len = u32::from_le_bytes(h[0..4].try_into().ok()?) as usize;
    (h[4] == MAGIC
        && h[5] & !(FLAG_STDERR | FLAG_PARTIAL) == 0
        && h[6] == 0
        && h[7] == 0
        && len <= MAX_PAYLOAD)
        .then_some(len)
}

/// Classifies the bytes at the start of `buf`.
pub(crate) fn frame(buf: &[u8]) -> Frame {
    if buf.len() < HEADER {
        // A prefix that cannot become a valid header is invalid now.
        let mut h = [0u8; HEADER];
        h[..buf.len()].copy_from_slice(buf);
        if buf.len() > 4 && (h[4] != MAGIC || (buf.len() > 5 && h[5] & !3 != 0)) {
            return Frame::Invalid;
        }
        return Frame::Incomplete;
    }
    let Some(len) = header_ok(&buf[..HEADER]) else {
        return Frame::Invalid;
    };
    let total = HEADER + len + TRAILER;
    if buf.len() < total {
        return Frame::Incomplete;
    }
    let suffix = u32::from_le_bytes([
        buf[total - 4],
        buf[total - 3],
        buf[total - 2],
        buf[total - 1],
    ]);
    if suffix as usize == len {
        Frame::Valid(total)
    } else {
        Frame::Invalid
    }
}

/// The fields of a valid frame (as classified by [`frame`]).
pub(crate) fn decode(frame: &[u8]) -> (Stream, i64, &[u8], bool) {
    let flags = frame[5];
    let mut t = [0u8; 8];
    t.copy_from_slice(&frame[8..16]);
    let stream = if flags & FLAG_STDERR != 0 {
        Stream::Stderr
    } else {
        Stream::Stdout
    };
    (
        stream,
        i64::from_le_bytes(t),
        &frame[HEADER..frame.len() - TRAILER],
        flags & FLAG_PARTIAL != 0,
    )
}

/// Whether a frame starts at `at` in `buf` (for checking an index record).
pub(crate) fn starts_at(head: &[u8]) -> bool {
    head.len() >= HEADER && header_ok(&head[..HEADER]).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_validation() {
        let mut buf = Vec::new();
        encode(&mut buf, Stream::Stderr, b"hello", true, -5);
        encode(&mut buf, Stream::Stdout, b"part", false, 7);
        let Frame::Valid(n) = frame(&buf) else {
            panic!()
        };
        assert_eq!(n, HEADER + 6 + TRAILER);
        assert_eq!(
            decode(&buf[..n]),
            (Stream::Stderr, -5, &b"hello\n"[..], false)
        );
        let Frame::Valid(m) = frame(&buf[n..]) else {
            panic!()
        };
        assert_eq!(
            decode(&buf[n..n + m]),
            (Stream::Stdout, 7, &b"part"[..], true)
        );
        assert_eq!(frame(&buf[..n - 1]), Frame::Incomplete);
        assert_eq!(frame(&buf[1..]), Frame::Invalid);
        let mut bad = buf.clone();
        bad[n - 1] ^= 1; // suffix disagrees
        assert_eq!(frame(&bad), Frame::Invalid);
        assert_eq!(frame(&[0u8; 40]), Frame::Invalid);
        assert_eq!(frame(&[1, 0, 0, 0, 0]), Frame::Invalid);
        assert!(starts_at(&buf[n..]));
        assert!(!starts_at(&buf[n + 1..]));
    }
}
