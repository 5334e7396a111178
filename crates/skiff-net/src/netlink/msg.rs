//! Netlink message encoding (header, fixed family header, attributes with nesting) and
//! bounds-checked decoding of replies.

/// Builds one netlink message: a 16-byte header filled in by [`MsgBuilder::finish`], the
/// family's fixed header, then attributes.
pub struct MsgBuilder {
    buf: Vec<u8>,
    nests: Vec<usize>,
}

const NLA_F_NESTED: u16 = 0x8000;

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

impl MsgBuilder {
    /// A message of type `ty` whose fixed header is `fixed` (ifinfomsg, ifaddrmsg, rtmsg…).
    pub fn new(ty: u16, fixed: &[u8]) -> Self {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&[0u8; 16]);
        buf[4..6].copy_from_slice(&ty.to_ne_bytes());
        buf.extend_from_slice(fixed);
        buf.resize(align4(buf.len()), 0);
        MsgBuilder {
            buf,
            nests: Vec::new(),
        }
    }

    /// Appends an attribute.
    pub fn attr(&mut self, ty: u16, data: &[u8]) -> &mut Self {
        let len = 4 + data.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.buf.resize(align4(self.buf.len()), 0);
        self
    }

    /// A string attribute, NUL-terminated as the kernel expects for names.
    pub fn attr_str(&mut self, ty: u16, s: &str) -> &mut Self {
        let mut v = Vec::with_capacity(s.len() + 1);
        v.extend_from_slice(s.as_bytes());
        v.push(0);
        self.attr(ty, &v)
    }

    pub fn attr_u32(&mut self, ty: u16, v: u32) -> &mut Self {
        self.attr(ty, &v.to_ne_bytes())
    }

    /// Opens a nested attribute; close it with [`MsgBuilder::end_nest`].
    pub fn begin_nest(&mut self, ty: u16) -> &mut Self {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&[0, 0]);
        self.buf
            .extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        self
    }

    /// Appends raw bytes (a fixed header inside a nest, as VETH_INFO_PEER wants).
    pub fn raw(&mut self, data: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(data);
        self.buf.resize(align4(self.buf.len()), 0);
        self
    }

    pub fn end_nest(&mut self) -> &mut Self {
        if let Some(start) = self.nests.pop() {
            let len = (self.buf.len() - start) as u16;
            self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        }
        self
    }

    /// Fills in the header and returns the message bytes.
    pub fn finish(&mut self, flags: u16, seq: u32) -> &[u8] {
        while !self.nests.is_empty() {
            self.end_nest();
        }
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[6..8].copy_from_slice(&flags.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        self.buf[12..16].copy_from_slice(&0u32.to_ne_bytes());
        &self.buf
    }
}

/// The parts of a netlink header the client looks at.
#[derive(Debug, Clone, Copy)]
pub struct Header {
    pub ty: u16,
    pub flags: u16,
    pub seq: u32,
}

#[derive(Debug)]
pub struct Truncated;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2).map(|s| u16::from_ne_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}

/// Splits a datagram into (header, payload) pairs.
pub fn messages(mut b: &[u8]) -> Result<Vec<(Header, &[u8])>, Truncated> {
    let mut out = Vec::new();
    while b.len() >= 16 {
        let len = u32_at(b, 0).ok_or(Truncated)? as usize;
        if len < 16 || len > b.len() {
            return Err(Truncated);
        }
        let hdr = Header {
            ty: u16_at(b, 4).ok_or(Truncated)?,
            flags: u16_at(b, 6).ok_or(Truncated)?,
            seq: u32_at(b, 8).ok_or(Truncated)?,
        };
        out.push((hdr, &b[16..len]));
        b = &b[align4(len).min(b.len())..];
    }
    Ok(out)
}

/// Iterates the attributes that follow a fixed header of `skip` bytes.
pub struct Attrs<'a> {
    b: &'a [u8],
}

impl<'a> Attrs<'a> {
    pub fn new(payload: &'a [u8], skip: usize) -> Self {
        Attrs {
            b: payload.get(align4(skip)..).unwrap_or(&[]),
        }
    }

    /// The payload of the first attribute of type `ty`.
    pub fn find(payload: &'a [u8], skip: usize, ty: u16) -> Option<&'a [u8]> {
        Attrs::new(payload, skip)
            .find(|(t, _)| *t == ty)
            .map(|(_, d)| d)
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let len = usize::from(u16_at(self.b, 0)?);
        let ty = u16_at(self.b, 2)? & !NLA_F_NESTED & 0x3fff;
        if len < 4 || len > self.b.len() {
            self.b = &[];
            return None;
        }
        let data = &self.b[4..len];
        self.b = self.b.get(align4(len)..).unwrap_or(&[]);
        Some((ty, data))
    }
}

/// A NUL-terminated (or not) string attribute.
pub fn attr_string(data: &[u8]) -> String {
    let end = data.iter().position(|b| *b == 0).unwrap_or(data.len());
    String::from_utf8_lossy(&data[..end]).into_owned()
}

pub fn attr_u32(data: &[u8]) -> Option<u32> {
    u32_at(data, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_and_parse() {
        let mut m = MsgBuilder::new(16, &[0u8; 16]);
        m.attr_str(3, "br0");
        m.begin_nest(18).attr_str(1, "bridge").end_nest();
        m.attr_u32(4, 1500);
        let bytes = m.finish(5, 7).to_vec();
        let msgs = messages(&bytes).unwrap();
        assert_eq!(msgs.len(), 1);
        let (h, p) = msgs[0];
        assert_eq!((h.ty, h.flags, h.seq), (16, 5, 7));
        let attrs: Vec<_> = Attrs::new(p, 16).collect();
        assert_eq!(attrs.len(), 3);
        assert_eq!(attr_string(attrs[0].1), "br0");
        assert_eq!(attrs[1].0, 18);
        assert_eq!(
            attr_string(Attrs::find(attrs[1].1, 0, 1).unwrap()),
            "bridge"
        );
        assert_eq!(attr_u32(Attrs::find(p, 16, 4).unwrap()), Some(1500));
    }

    #[test]
    fn garbage_never_panics() {
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for _ in 0..20_000 {
            let len = (x % 80) as usize;
            let mut b = Vec::with_capacity(len);
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b.push(x as u8);
            }
            if let Ok(ms) = messages(&b) {
                for (_, p) in ms {
                    let _ = Attrs::new(p, 16).count();
                }
            }
            Attrs::new(&b, 0).for_each(|(_, d)| drop(attr_string(d)));
        }
    }
}
