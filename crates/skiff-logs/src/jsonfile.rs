//! The json-file line format, version 1: exactly Docker's (`daemon/logger/jsonfilelog`,
//! unchanged since Docker 1.x), so Docker's tools read skiff's logs and the other way round:
//!
//! ```text
//! {"log":"hello\n","stream":"stdout","time":"2026-11-28T17:55:06.123456789Z"}\n
//! ```
//!
//! Encoding follows Docker's hand-written marshaller byte for byte: keys in this order,
//! `"log"` left out when empty, `\n` `\r` `\"` `\\` escaped by name, other control
//! characters and `<` `>` `&` as `\u00XX`, U+2028/U+2029 as `\u2028`/`\u2029`, and every
//! byte of invalid UTF-8 as `\ufffd`. Time is Go's RFC3339Nano in UTC (fraction trimmed of
//! trailing zeros). Decoding has a fast path for exactly that shape and falls back to
//! serde_json for anything else a json-file may hold (e.g. `attrs`, other key orders).

use serde::Deserialize;

use crate::config::Stream;
use crate::time::parse_rfc3339;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// ASCII bytes that Docker's marshaller escapes.
const fn escape_table() -> [bool; 128] {
    let mut t = [false; 128];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t[b'<' as usize] = true;
    t[b'>' as usize] = true;
    t[b'&' as usize] = true;
    t
}
static NEEDS_ESCAPE: [bool; 128] = escape_table();

/// Appends one json-file line (with its '\n') for an entry whose text is `content`,
/// followed by a newline character in the log text when `newline`; `time` is the
/// RFC3339Nano text of its time.
pub(crate) fn encode(
    out: &mut Vec<u8>,
    stream: Stream,
    content: &[u8],
    newline: bool,
    time: &[u8],
) {
    out.push(b'{');
    if !content.is_empty() || newline {
        out.extend_from_slice(b"\"log\":\"");
        if std::str::from_utf8(content).is_ok() {
            escape_valid(out, content);
        } else {
            for chunk in content.utf8_chunks() {
                escape_valid(out, chunk.valid().as_bytes());
                for _ in chunk.invalid() {
                    out.extend_from_slice(b"\\ufffd");
                }
            }
        }
        if newline {
            out.extend_from_slice(b"\\n");
        }
        out.extend_from_slice(b"\",");
    }
    out.extend_from_slice(match stream {
        Stream::Stdout => b"\"stream\":\"stdout\",\"time\":\"",
        Stream::Stderr => b"\"stream\":\"stderr\",\"time\":\"",
    });
    out.extend_from_slice(time);
    out.extend_from_slice(b"\"}\n");
}

/// Escapes valid UTF-8 the way Docker does.
fn escape_valid(out: &mut Vec<u8>, s: &[u8]) {
    let mut start = 0;
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if b < 0x80 {
            if !NEEDS_ESCAPE[b as usize] {
                i += 1;
                continue;
            }
            out.extend_from_slice(&s[start..i]);
            match b {
                b'"' | b'\\' => out.extend_from_slice(&[b'\\', b]),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                _ => out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[(b >> 4) as usize],
                    HEX[(b & 0xf) as usize],
                ]),
            }
            i += 1;
            start = i;
        } else if b == 0xe2
            && s.get(i + 1) == Some(&0x80)
            && matches!(s.get(i + 2), Some(0xa8 | 0xa9))
        {
            out.extend_from_slice(&s[start..i]);
            out.extend_from_slice(if s[i + 2] == 0xa8 {
                b"\\u2028"
            } else {
                b"\\u2029"
            });
            i += 3;
            start = i;
        } else {
            i += 1;
        }
    }
    out.extend_from_slice(&s[start..]);
}

/// A decoded json-file line.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct JsonLine {
    pub(crate) stream: Stream,
    pub(crate) nanos: i64,
    pub(crate) log: Vec<u8>,
}

/// Decodes one line (without its '\n'); `None` when it is not a json-file entry.
pub(crate) fn decode(line: &[u8]) -> Option<JsonLine> {
    decode_fast(line).or_else(|| decode_serde(line))
}

fn decode_fast(line: &[u8]) -> Option<JsonLine> {
    let rest = line.strip_prefix(b"{\"log\":\"")?;
    let (log, rest) = parse_string(rest)?;
    let (stream, rest) = if let Some(r) = rest.strip_prefix(b",\"stream\":\"stdout\",\"time\":\"") {
        (Stream::Stdout, r)
    } else {
        (
            Stream::Stderr,
            rest.strip_prefix(b",\"stream\":\"stderr\",\"time\":\"")?,
        )
    };
    let time = rest.strip_suffix(b"\"}")?;
    let nanos = parse_rfc3339(time)?;
    Some(JsonLine { stream, nanos, log })
}

/// Parses a JSON string body after its opening quote: the bytes and what follows the
/// closing quote.
fn parse_string(s: &[u8]) -> Option<(Vec<u8>, &[u8])> {
    let first = memchr::memchr2(b'"', b'\\', s)?;
    if s[first] == b'"' {
        return Some((s[..first].to_vec(), &s[first + 1..]));
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    let mut j = first;
    loop {
        out.extend_from_slice(&s[i..j]);
        if s[j] == b'"' {
            return Some((out, &s[j + 1..]));
        }
        let esc = *s.get(j + 1)?;
        i = j + 2;
        match esc {
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'/' | b'\\' | b'"' => out.push(esc),
            b'u' => {
                let hi = hex4(s.get(i..i + 4)?)?;
                i += 4;
                let c = if (0xd800..0xdc00).contains(&hi) {
                    match s.get(i..i + 6) {
                        Some([b'\\', b'u', lo @ ..]) => match hex4(lo) {
                            Some(lo) if (0xdc00..0xe000).contains(&lo) => {
                                i += 6;
                                char::from_u32(0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00))
                            }
                            _ => None,
                        },
                        _ => None,
                    }
                } else {
                    char::from_u32(hi)
                };
                let c = c.unwrap_or(char::REPLACEMENT_CHARACTER);
                out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
            }
            _ => return None,
        }
        j = i + memchr::memchr2(b'"', b'\\', &s[i..])?;
    }
}

fn hex4(b: &[u8]) -> Option<u32> {
    let mut v = 0;
    for &c in b {
        v = v * 16 + (c as char).to_digit(16)?;
    }
    Some(v)
}

#[derive(Deserialize)]
struct Raw {
    #[serde(default)]
    log: String,
    stream: Stream,
    time: String,
}

fn decode_serde(line: &[u8]) -> Option<JsonLine> {
    let raw: Raw = serde_json::from_slice(line).ok()?;
    let nanos = parse_rfc3339(raw.time.as_bytes())?;
    Some(JsonLine {
        stream: raw.stream,
        nanos,
        log: raw.log.into_bytes(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::TimeText;

    fn enc(content: &[u8], newline: bool) -> String {
        let mut v = Vec::new();
        let mut t = TimeText::default();
        encode(
            &mut v,
            Stream::Stdout,
            content,
            newline,
            t.get(1_764_352_506_123_456_789),
        );
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn docker_shape() {
        assert_eq!(
            enc(b"hello", true),
            "{\"log\":\"hello\\n\",\"stream\":\"stdout\",\"time\":\"2025-11-28T17:55:06.123456789Z\"}\n"
        );
        let mut v = Vec::new();
        encode(
            &mut v,
            Stream::Stderr,
            b"",
            false,
            TimeText::default().get(0),
        );
        assert_eq!(
            v,
            b"{\"stream\":\"stderr\",\"time\":\"1970-01-01T00:00:00Z\"}\n"
        );
    }

    #[test]
    fn escapes_like_docker() {
        let s = enc(b"a\"b\\c\td\re\x01<>&\xe2\x80\xa8\xe2\x80\xa9\x7f", false);
        assert!(
            s.starts_with(r#"{"log":"a\"b\\c\u0009d\re\u0001\u003c\u003e\u0026\u2028\u2029"#),
            "{s}"
        );
        // every invalid byte becomes one U+FFFD, valid multibyte text is kept
        let s = enc(b"x\xff\xe2\x80y\xc3\xa9", true);
        assert!(
            s.starts_with("{\"log\":\"x\\ufffd\\ufffd\\ufffdy\u{e9}\\n\""),
            "{s}"
        );
        // the output is valid JSON that serde reads back to the same text
        let line = s.trim_end().as_bytes();
        let d = decode_serde(line).unwrap();
        assert_eq!(d.log, "x\u{fffd}\u{fffd}\u{fffd}y\u{e9}\n".as_bytes());
    }

    #[test]
    fn fast_path_agrees_with_serde() {
        let samples: [&[u8]; 6] = [
            b"plain",
            b"tab\tquote\"back\\slash",
            b"\x00\x1f<html>&amp;",
            "caf\u{e9} \u{1F600} \u{2028}".as_bytes(),
            b"bad \xc3\x28 utf8",
            b"",
        ];
        for s in samples {
            for nl in [false, true] {
                let line = enc(s, nl);
                let line = line.trim_end_matches('\n').as_bytes();
                if s.is_empty() && !nl {
                    // Docker leaves "log" out: only the serde path reads that shape
                    assert_eq!(decode(line).unwrap().log, b"");
                    continue;
                }
                let fast = decode_fast(line).expect("fast path takes Docker's shape");
                let slow = decode_serde(line).unwrap();
                assert_eq!(fast, slow, "{}", String::from_utf8_lossy(line));
                assert_eq!(fast.stream, Stream::Stdout);
            }
        }
    }

    #[test]
    fn surrogates_and_fallback_shapes() {
        let d = decode(
            br#"{"log":"\ud83d\ude00 \ud800x\n","stream":"stderr","time":"2024-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(d.log, "\u{1F600} \u{fffd}x\n".as_bytes());
        assert_eq!(d.stream, Stream::Stderr);
        let d = decode(br#"{"time":"2024-01-01T00:00:00.5+00:00","stream":"stdout","log":"x\n","attrs":{"a":"b"}}"#).unwrap();
        assert_eq!(d.log, b"x\n");
        assert_eq!(d.nanos, 1_704_067_200_500_000_000);
        assert!(decode(br#"{"log":"torn li"#).is_none());
        assert!(decode(br#"{"log":"x","stream":"stdin","time":"2024-01-01T00:00:00Z"}"#).is_none());
        assert!(decode(b"").is_none());
        assert!(decode(b"\x00\x00\x00").is_none());
    }
}
