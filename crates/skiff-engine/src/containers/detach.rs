//! Detach keys: the key sequence that ends an attach (or an exec session) with a terminal
//! while the container keeps running. Docker's format and matching rules (moby/term
//! `ToBytes` and `escapeProxy`): a comma-separated list of keys, each a single character or
//! `ctrl-<c>` with `<c>` one of `@`, `a`–`z`, `[`, `\`, `]`, `^`, `_`; the default is
//! `ctrl-p,ctrl-q`. Keys match only when each arrives in a read of its own (typed, not
//! pasted); a partial match is held back and sent on once the sequence breaks.

/// Docker's default detach sequence, ctrl-p ctrl-q.
pub const DEFAULT_KEYS: &[u8] = &[0x10, 0x11];

/// Parses a detach-keys string into the bytes to watch for.
pub fn parse_keys(keys: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for key in keys.split(',') {
        if key.len() == 1 {
            out.push(key.as_bytes()[0]);
            continue;
        }
        let code = key.strip_prefix("ctrl-").and_then(|c| match c.as_bytes() {
            [b'@'] => Some(0),
            [c @ b'a'..=b'z'] => Some(c - b'a' + 1),
            [b'['] => Some(27),
            [b'\\'] | [b'\\', b'\\'] => Some(28),
            [b']'] => Some(29),
            [b'^'] => Some(30),
            [b'_'] => Some(31),
            _ => None,
        });
        match code {
            Some(c) => out.push(c),
            None => return Err(format!("Unknown character: '{key}'")),
        }
    }
    Ok(out)
}

/// What one read of input becomes.
#[derive(Debug, PartialEq, Eq)]
pub enum Filtered {
    /// Bytes to pass on (possibly none: a key of the sequence held back).
    Forward(Vec<u8>),
    /// The whole sequence was typed: detach.
    Detach,
}

/// Watches input for the detach sequence.
#[derive(Debug, Clone)]
pub struct EscapeProxy {
    keys: Vec<u8>,
    pos: usize,
}

impl EscapeProxy {
    /// A proxy for `keys` (empty: never detaches).
    pub fn new(keys: Vec<u8>) -> Self {
        EscapeProxy { keys, pos: 0 }
    }

    /// Filters one read of input.
    pub fn filter(&mut self, read: &[u8]) -> Filtered {
        if self.keys.is_empty() {
            return Filtered::Forward(read.to_vec());
        }
        if read.len() == 1 && read[0] == self.keys[self.pos] {
            if self.pos == self.keys.len() - 1 {
                self.pos = 0;
                return Filtered::Detach;
            }
            self.pos += 1;
            return Filtered::Forward(Vec::new());
        }
        let mut out = self.keys[..self.pos].to_vec();
        out.extend_from_slice(read);
        self.pos = 0;
        Filtered::Forward(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_forms() {
        assert_eq!(parse_keys("ctrl-p,ctrl-q").unwrap(), DEFAULT_KEYS);
        assert_eq!(
            parse_keys("a,ctrl-@,ctrl-_,X").unwrap(),
            vec![b'a', 0, 31, b'X']
        );
        assert_eq!(parse_keys("ctrl-\\").unwrap(), vec![28]);
        assert_eq!(parse_keys("ctrl-[").unwrap(), vec![27]);
        assert_eq!(
            parse_keys("ctrl-P").unwrap_err(),
            "Unknown character: 'ctrl-P'"
        );
        assert!(parse_keys("ab").is_err());
        assert!(parse_keys("").is_err());
        assert!(parse_keys("ctrl-").is_err());
    }

    #[test]
    fn typed_sequence_detaches_and_partial_is_replayed() {
        let mut p = EscapeProxy::new(DEFAULT_KEYS.to_vec());
        assert_eq!(p.filter(b"ls\n"), Filtered::Forward(b"ls\n".to_vec()));
        assert_eq!(p.filter(&[0x10]), Filtered::Forward(vec![]));
        assert_eq!(p.filter(b"x"), Filtered::Forward(vec![0x10, b'x']));
        assert_eq!(p.filter(&[0x10]), Filtered::Forward(vec![]));
        assert_eq!(p.filter(&[0x11]), Filtered::Detach);
        // Pasted (one read): not a detach.
        assert_eq!(p.filter(&[0x10, 0x11]), Filtered::Forward(vec![0x10, 0x11]));
        let mut none = EscapeProxy::new(vec![]);
        assert_eq!(none.filter(&[0x10]), Filtered::Forward(vec![0x10]));
    }
}
