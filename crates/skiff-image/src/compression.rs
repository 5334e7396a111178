//! Layer compression: detection by magic bytes, decompressing readers, compressing writers.

use std::io::{self, Cursor, Read, Write};

/// How a layer blob is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

impl Compression {
    /// Detects the compression from the first bytes of a blob (anything else is taken as plain).
    pub fn detect(prefix: &[u8]) -> Compression {
        if prefix.starts_with(GZIP_MAGIC) {
            Compression::Gzip
        } else if prefix.starts_with(ZSTD_MAGIC) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// The suffix OCI layer media types carry for this compression (`+gzip`, `+zstd`, none).
    pub fn media_type_suffix(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => "+gzip",
            Compression::Zstd => "+zstd",
        }
    }
}

/// A reader that first replays a peeked prefix.
pub type Peeked<R> = io::Chain<Cursor<Vec<u8>>, R>;

/// Reads up to 8 bytes of `reader` to detect its compression; returns it with a reader that
/// still yields every byte.
pub fn peek<R: Read>(mut reader: R) -> io::Result<(Compression, Peeked<R>)> {
    let mut prefix = [0u8; 8];
    let mut n = 0;
    while n < prefix.len() {
        match reader.read(&mut prefix[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let c = Compression::detect(&prefix[..n]);
    Ok((c, Cursor::new(prefix[..n].to_vec()).chain(reader)))
}

/// A decompressing reader over `reader`.
pub fn decompress<'a, R: Read + 'a>(reader: R, c: Compression) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match c {
        Compression::None => Box::new(reader),
        // Multi-member gzip, like Go's gzip.Reader that docker and containerd use.
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(
            io::BufReader::with_capacity(128 * 1024, reader),
        )),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(reader)?),
    })
}

/// A compressing writer; call [`Compressor::finish`] to write the trailer and get `W` back.
pub enum Compressor<W: Write> {
    None(W),
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Compressor<W> {
    /// gzip at level 6 (docker's default is "best speed"-ish; 6 is the zlib default), zstd at 3.
    pub fn new(out: W, c: Compression) -> io::Result<Self> {
        Ok(match c {
            Compression::None => Compressor::None(out),
            Compression::Gzip => Compressor::Gzip(flate2::write::GzEncoder::new(
                out,
                flate2::Compression::new(6),
            )),
            Compression::Zstd => Compressor::Zstd(zstd::stream::write::Encoder::new(out, 3)?),
        })
    }

    pub fn finish(self) -> io::Result<W> {
        match self {
            Compressor::None(w) => Ok(w),
            Compressor::Gzip(e) => e.finish(),
            Compressor::Zstd(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::None(w) => w.write(buf),
            Compressor::Gzip(e) => e.write(buf),
            Compressor::Zstd(e) => e.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Compressor::None(w) => w.flush(),
            Compressor::Gzip(e) => e.flush(),
            Compressor::Zstd(e) => e.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(c: Compression) {
        let data: Vec<u8> = (0..50_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let mut w = Compressor::new(Vec::new(), c).unwrap();
        w.write_all(&data).unwrap();
        let blob = w.finish().unwrap();
        let (detected, r) = peek(&blob[..]).unwrap();
        assert_eq!(detected, c);
        let mut out = Vec::new();
        decompress(r, detected)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, data);
    }

    #[test]
    fn gzip_zstd_plain_round_trip_and_detect() {
        round_trip(Compression::None);
        round_trip(Compression::Gzip);
        round_trip(Compression::Zstd);
    }

    #[test]
    fn peek_short_input() {
        let (c, mut r) = peek(&b"ab"[..]).unwrap();
        assert_eq!(c, Compression::None);
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, "ab");
    }
}
