//! Line splitting of one stream, as Docker's log copier does it
//! (`daemon/logger/copier.go`).
//!
//! A line ends at '\n'. A line of 16 KiB or more goes out in 16 KiB pieces marked partial
//! (no '\n'), then the rest with its '\n'; all pieces carry the time of the first one. An
//! unterminated tail waits for more bytes, or for [`LineBuf::flush`], which writes it as a
//! partial entry. The result does not depend on how the bytes were chunked.

use crate::error::LogError;

/// Docker's copier buffer size: the longest entry.
pub const MAX_PIECE: usize = 16 * 1024;

/// The unterminated tail of one stream.
#[derive(Default)]
pub(crate) struct LineBuf {
    buf: Vec<u8>,
    /// Time of the first piece of a line that went out in pieces.
    partial_time: Option<i64>,
    /// Time of the last bytes added to `buf`.
    tail_time: i64,
}

impl LineBuf {
    /// Splits `data` read at time `now`; `emit(content, newline, time)` receives each entry.
    pub(crate) fn push<F>(&mut self, data: &[u8], now: i64, emit: &mut F) -> Result<(), LogError>
    where
        F: FnMut(&[u8], bool, i64) -> Result<(), LogError>,
    {
        let mut rest = data;
        while let Some(q) = memchr::memchr(b'\n', rest) {
            if self.buf.is_empty() {
                self.line(&rest[..q], now, emit)?;
            } else {
                let mut line = std::mem::take(&mut self.buf);
                line.extend_from_slice(&rest[..q]);
                self.line(&line, now, emit)?;
                line.clear();
                self.buf = line;
            }
            rest = &rest[q + 1..];
        }
        if rest.is_empty() {
            return Ok(());
        }
        self.buf.extend_from_slice(rest);
        self.tail_time = now;
        if self.buf.len() >= MAX_PIECE {
            let buf = std::mem::take(&mut self.buf);
            let mut pieces = buf.chunks_exact(MAX_PIECE);
            for piece in &mut pieces {
                let t = *self.partial_time.get_or_insert(now);
                emit(piece, false, t)?;
            }
            self.buf = pieces.remainder().to_vec();
        }
        Ok(())
    }

    /// A whole line's content (without its '\n').
    fn line<F>(&mut self, content: &[u8], now: i64, emit: &mut F) -> Result<(), LogError>
    where
        F: FnMut(&[u8], bool, i64) -> Result<(), LogError>,
    {
        let mut content = content;
        while content.len() >= MAX_PIECE {
            let t = *self.partial_time.get_or_insert(now);
            emit(&content[..MAX_PIECE], false, t)?;
            content = &content[MAX_PIECE..];
        }
        let t = self.partial_time.take().unwrap_or(now);
        emit(content, true, t)
    }

    /// Writes the unterminated tail, if any, as a partial entry (at container exit).
    pub(crate) fn flush<F>(&mut self, emit: &mut F) -> Result<(), LogError>
    where
        F: FnMut(&[u8], bool, i64) -> Result<(), LogError>,
    {
        if self.buf.is_empty() {
            return Ok(());
        }
        let t = *self.partial_time.get_or_insert(self.tail_time);
        let buf = std::mem::take(&mut self.buf);
        emit(&buf, false, t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Out = Vec<(Vec<u8>, bool, i64)>;

    fn run(chunks: &[&[u8]], flush: bool) -> Out {
        let mut lb = LineBuf::default();
        let mut out = Out::new();
        let mut emit = |c: &[u8], nl: bool, t: i64| {
            out.push((c.to_vec(), nl, t));
            Ok(())
        };
        for (i, c) in chunks.iter().enumerate() {
            lb.push(c, i as i64, &mut emit).unwrap();
        }
        if flush {
            lb.flush(&mut emit).unwrap();
        }
        out
    }

    #[test]
    fn splits_lines_across_chunks() {
        let out = run(&[b"a\nb", b"c", b"\n\nd"], false);
        assert_eq!(
            out,
            vec![
                (b"a".to_vec(), true, 0),
                (b"bc".to_vec(), true, 2),
                (b"".to_vec(), true, 2)
            ]
        );
        let out = run(&[b"a\nb", b"c", b"\n\nd"], true);
        assert_eq!(out.last().unwrap(), &(b"d".to_vec(), false, 2));
    }

    #[test]
    fn long_lines_in_16k_pieces_whatever_the_chunking() {
        let mut line = vec![b'x'; 2 * MAX_PIECE + 5];
        line.push(b'\n');
        let whole = run(&[&line], false);
        let bytewise: Vec<&[u8]> = line.chunks(1000).collect();
        let mut pieced = run(&bytewise, false);
        assert_eq!(whole.len(), 3);
        assert_eq!(whole[0].0.len(), MAX_PIECE);
        assert!(!whole[0].1 && !whole[1].1 && whole[2].1);
        assert_eq!(whole[2].0.len(), 5);
        // same pieces, and every piece has the first piece's time
        let t0 = pieced[0].2;
        assert!(pieced.iter().all(|p| p.2 == t0));
        for p in &mut pieced {
            p.2 = 0;
        }
        assert_eq!(whole, pieced);
        // exactly 16 KiB then '\n': one full piece, then an empty terminated one
        let mut exact = vec![b'y'; MAX_PIECE];
        exact.push(b'\n');
        let out = run(&[&exact], false);
        assert_eq!(out.len(), 2);
        assert_eq!((out[1].0.len(), out[1].1), (0, true));
    }
}
