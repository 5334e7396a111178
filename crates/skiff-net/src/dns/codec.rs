//! A small DNS message codec (RFC 1035): enough to read queries, answer A/PTR lookups and
//! check forwarded replies. Every read is bounds-checked; compressed names are followed
//! only backwards and at most 64 hops, so hostile input cannot loop or panic.
//!
//! Chosen over hickory-server (~1.5 MB of code and its own runtime pieces) because the
//! daemon's idle RSS target is a few MB and the server needs one question type.

use std::net::Ipv4Addr;

/// Malformed messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("dns message truncated at byte {0}")]
    Truncated(usize),
    #[error("dns name at byte {0}: bad compression pointer")]
    BadPointer(usize),
    #[error("dns name at byte {0}: too long")]
    NameTooLong(usize),
    #[error("dns name at byte {0}: reserved label type")]
    BadLabel(usize),
}

pub const TYPE_A: u16 = 1;
pub const TYPE_PTR: u16 = 12;
pub const TYPE_AAAA: u16 = 28;
pub const CLASS_IN: u16 = 1;

pub const RCODE_NOERROR: u8 = 0;
pub const RCODE_FORMERR: u8 = 1;
pub const RCODE_SERVFAIL: u8 = 2;
pub const RCODE_NXDOMAIN: u8 = 3;
pub const RCODE_NOTIMP: u8 = 4;

/// The fixed 12-byte header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Header {
    pub id: u16,
    pub flags: u16,
    pub qdcount: u16,
    pub ancount: u16,
    pub nscount: u16,
    pub arcount: u16,
}

impl Header {
    pub fn is_response(&self) -> bool {
        self.flags & 0x8000 != 0
    }
    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0xf) as u8
    }
    pub fn rcode(&self) -> u8 {
        (self.flags & 0xf) as u8
    }
    pub fn truncated(&self) -> bool {
        self.flags & 0x0200 != 0
    }
}

/// One question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// Dotted, lowercase, no trailing dot ("" is the root).
    pub name: String,
    pub qtype: u16,
    pub qclass: u16,
}

/// One resource record, rdata kept raw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub name: String,
    pub rtype: u16,
    pub class: u16,
    pub ttl: u32,
    pub rdata: Vec<u8>,
}

/// A parsed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub header: Header,
    pub questions: Vec<Question>,
    pub answers: Vec<Record>,
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, CodecError> {
    b.get(at..at + 2)
        .map(|s| u16::from_be_bytes([s[0], s[1]]))
        .ok_or(CodecError::Truncated(at))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, CodecError> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or(CodecError::Truncated(at))
}

/// Reads a (possibly compressed) name at `pos`; returns it and the position after it.
pub fn read_name(b: &[u8], pos: usize) -> Result<(String, usize), CodecError> {
    let mut name = String::new();
    let mut at = pos;
    let mut end = None;
    let mut hops = 0;
    let mut wire_len = 0usize;
    loop {
        let len = *b.get(at).ok_or(CodecError::Truncated(at))?;
        match len & 0xc0 {
            0x00 => {
                if len == 0 {
                    return Ok((name, end.unwrap_or(at + 1)));
                }
                let label = b
                    .get(at + 1..at + 1 + usize::from(len))
                    .ok_or(CodecError::Truncated(at + 1))?;
                wire_len += usize::from(len) + 1;
                if wire_len > 255 {
                    return Err(CodecError::NameTooLong(pos));
                }
                if !name.is_empty() {
                    name.push('.');
                }
                for &c in label {
                    match c {
                        b'A'..=b'Z' => name.push(c.to_ascii_lowercase() as char),
                        b'.' | b'\\' => {
                            name.push('\\');
                            name.push(c as char);
                        }
                        0x21..=0x7e => name.push(c as char),
                        _ => name.push_str(&format!("\\{c:03}")),
                    }
                }
                at += 1 + usize::from(len);
            }
            0xc0 => {
                let ptr = usize::from(u16_at(b, at)? & 0x3fff);
                if ptr >= at || hops >= 64 {
                    return Err(CodecError::BadPointer(at));
                }
                hops += 1;
                end.get_or_insert(at + 2);
                at = ptr;
            }
            _ => return Err(CodecError::BadLabel(at)),
        }
    }
}

/// Parses a whole message: header, questions and answers (authority and additional records
/// are left unread; queries carry at most an EDNS OPT there).
pub fn parse(b: &[u8]) -> Result<Message, CodecError> {
    let header = Header {
        id: u16_at(b, 0)?,
        flags: u16_at(b, 2)?,
        qdcount: u16_at(b, 4)?,
        ancount: u16_at(b, 6)?,
        nscount: u16_at(b, 8)?,
        arcount: u16_at(b, 10)?,
    };
    let mut at = 12;
    let mut questions = Vec::with_capacity(usize::from(header.qdcount.min(4)));
    for _ in 0..header.qdcount {
        let (name, next) = read_name(b, at)?;
        questions.push(Question {
            name,
            qtype: u16_at(b, next)?,
            qclass: u16_at(b, next + 2)?,
        });
        at = next + 4;
    }
    let mut answers = Vec::with_capacity(usize::from(header.ancount.min(16)));
    for _ in 0..header.ancount {
        let (name, next) = read_name(b, at)?;
        let rdlen = usize::from(u16_at(b, next + 8)?);
        let rdata = b
            .get(next + 10..next + 10 + rdlen)
            .ok_or(CodecError::Truncated(next + 10))?;
        answers.push(Record {
            name,
            rtype: u16_at(b, next)?,
            class: u16_at(b, next + 2)?,
            ttl: u32_at(b, next + 4)?,
            rdata: rdata.to_vec(),
        });
        at = next + 10 + rdlen;
    }
    Ok(Message {
        header,
        questions,
        answers,
    })
}

/// Writes `name` uncompressed; labels longer than 63 bytes are cut (names here come from
/// container names and reverse lookups, both short).
pub fn write_name(out: &mut Vec<u8>, name: &str) {
    for label in name.split('.').filter(|l| !l.is_empty()) {
        let l = &label.as_bytes()[..label.len().min(63)];
        out.push(l.len() as u8);
        out.extend_from_slice(l);
    }
    out.push(0);
}

/// Answer data the server produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    A(Ipv4Addr),
    Ptr(String),
}

/// A response to `query` (its id, RD bit and first question echoed) with `answers` for the
/// question's name.
pub fn response(query: &Message, rcode: u8, answers: &[Answer], ttl: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + answers.len() * 16);
    let rd = query.header.flags & 0x0100;
    let opcode = query.header.flags & 0x7800;
    let flags = 0x8000 | opcode | 0x0400 /* AA */ | rd | 0x0080 /* RA */ | u16::from(rcode & 0xf);
    let q = query.questions.first();
    out.extend_from_slice(&query.header.id.to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&u16::from(q.is_some()).to_be_bytes());
    out.extend_from_slice(&(if q.is_some() { answers.len() as u16 } else { 0 }).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    let Some(q) = q else {
        return out;
    };
    write_name(&mut out, &q.name);
    out.extend_from_slice(&q.qtype.to_be_bytes());
    out.extend_from_slice(&q.qclass.to_be_bytes());
    for a in answers {
        out.extend_from_slice(&[0xc0, 12]); // the question's name
        let (ty, rdata) = match a {
            Answer::A(ip) => (TYPE_A, ip.octets().to_vec()),
            Answer::Ptr(n) => {
                let mut v = Vec::new();
                write_name(&mut v, n);
                (TYPE_PTR, v)
            }
        };
        out.extend_from_slice(&ty.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&ttl.to_be_bytes());
        out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        out.extend_from_slice(&rdata);
    }
    out
}

/// A query for `name`/`qtype` (tests and health checks).
pub fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + name.len());
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&0x0100u16.to_be_bytes());
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    write_name(&mut out, name);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let q = parse(&query(7, "Web.Example", TYPE_A)).unwrap();
        assert_eq!(q.header.id, 7);
        assert_eq!(q.questions[0].name, "web.example");
        let r = response(
            &q,
            RCODE_NOERROR,
            &[Answer::A(Ipv4Addr::new(172, 18, 0, 2))],
            600,
        );
        let m = parse(&r).unwrap();
        assert!(m.header.is_response() && m.header.rcode() == 0);
        assert_eq!(m.answers.len(), 1);
        assert_eq!(m.answers[0].name, "web.example");
        assert_eq!(m.answers[0].rdata, vec![172, 18, 0, 2]);
        assert_eq!(m.answers[0].ttl, 600);
        let r = response(&q, RCODE_NOERROR, &[Answer::Ptr("web".into())], 600);
        let m = parse(&r).unwrap();
        assert_eq!(read_name(&m.answers[0].rdata, 0).unwrap().0, "web");
    }

    #[test]
    fn compression_and_hostile_pointers() {
        // Header, question "a.b" at 12, an answer whose name is a pointer to 14 ("b").
        let mut m = query(1, "a.b", TYPE_A);
        m[7] = 1; // ancount
        m.extend_from_slice(&[0xc0, 14, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 1, 2, 3, 4]);
        let p = parse(&m).unwrap();
        assert_eq!(p.answers[0].name, "b");
        // A pointer to itself or forwards is refused.
        let mut bad = query(1, "a", TYPE_A);
        bad[7] = 1;
        let at = bad.len();
        bad.extend_from_slice(&[0xc0, at as u8, 0, 1]);
        assert!(matches!(parse(&bad), Err(CodecError::BadPointer(_))));
        assert!(matches!(
            read_name(&[0x40, 0], 0),
            Err(CodecError::BadLabel(0))
        ));
        assert!(matches!(
            read_name(&[3, b'a'], 0),
            Err(CodecError::Truncated(_))
        ));
        let long: Vec<u8> = std::iter::repeat_n([63u8; 64], 5).flatten().collect();
        assert!(read_name(&long, 0).is_err());
        // Odd bytes in labels are escaped, not lost.
        assert_eq!(
            read_name(&[3, b'a', b'.', 0xff, 0], 0).unwrap().0,
            "a\\.\\255"
        );
    }

    /// Seeded fuzzing: random and mutated messages must never panic.
    #[test]
    fn random_bytes_never_panic() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let seed = response(
            &parse(&query(9, "svc.net", TYPE_A)).unwrap(),
            0,
            &[Answer::A(Ipv4Addr::LOCALHOST), Answer::Ptr("x.y".into())],
            5,
        );
        for i in 0..200_000u32 {
            let mut b = if i % 2 == 0 {
                let len = (next() % 96) as usize;
                (0..len).map(|_| next() as u8).collect::<Vec<u8>>()
            } else {
                seed.clone()
            };
            if !b.is_empty() {
                for _ in 0..(next() % 4) {
                    let at = (next() as usize) % b.len();
                    b[at] = next() as u8;
                }
            }
            if let Ok(m) = parse(&b) {
                let _ = response(&m, RCODE_NXDOMAIN, &[Answer::A(Ipv4Addr::LOCALHOST)], 1);
            }
        }
    }
}
