//! Go's `path/filepath.Match` and `path.Clean` (Unix), ported for .dockerignore and COPY
//! wildcards, which Docker defines by them.
//!
//! `Match` syntax: `*` (any run of non-`/`), `?` (one non-`/` character), `[class]` with
//! ranges and `^` negation, `\` escapes. A malformed pattern is an error even when the
//! match fails early, as in Go since 1.16.

/// `filepath.ErrBadPattern`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("syntax error in pattern")]
pub struct BadPattern;

/// `filepath.Match(pattern, name)`.
pub fn go_match(pattern: &str, name: &str) -> Result<bool, BadPattern> {
    let mut pattern = pattern;
    let mut name = name;
    'pattern: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            return Ok(!name.contains('/'));
        }
        let r = match_chunk(chunk, name);
        if let Ok(Some(t)) = r {
            if t.is_empty() || !pattern.is_empty() {
                name = t;
                continue;
            }
        }
        r?;
        if star {
            for (i, c) in name.char_indices() {
                if c == '/' {
                    break;
                }
                let after = &name[i + c.len_utf8()..];
                match match_chunk(chunk, after)? {
                    Some(t) if pattern.is_empty() && !t.is_empty() => continue,
                    Some(t) => {
                        name = t;
                        continue 'pattern;
                    }
                    None => {}
                }
            }
        }
        // No match: still report a malformed rest of the pattern.
        while !pattern.is_empty() {
            let (_, chunk, rest) = scan_chunk(pattern);
            pattern = rest;
            match_chunk(chunk, "")?;
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

/// `(star, chunk, rest)`: leading stars, then up to the next star outside a class.
fn scan_chunk(pattern: &str) -> (bool, &str, &str) {
    let trimmed = pattern.trim_start_matches('*');
    let star = trimmed.len() != pattern.len();
    let b = trimmed.as_bytes();
    let mut in_range = false;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if i + 1 < b.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => break,
            _ => {}
        }
        i += 1;
    }
    (star, &trimmed[..i], &trimmed[i..])
}

/// Matches `chunk` at the start of `s`: `Ok(Some(rest of s))`, `Ok(None)` for no match.
fn match_chunk<'a>(chunk: &str, s: &'a str) -> Result<Option<&'a str>, BadPattern> {
    let mut chunk = chunk;
    let mut s = s;
    let mut failed = false;
    while let Some(c0) = chunk.chars().next() {
        if !failed && s.is_empty() {
            failed = true;
        }
        match c0 {
            '[' => {
                let mut r = '\0';
                if !failed {
                    let c = s.chars().next().unwrap_or('\0');
                    r = c;
                    s = &s[c.len_utf8()..];
                }
                chunk = &chunk[1..];
                let negated = chunk.starts_with('^');
                if negated {
                    chunk = &chunk[1..];
                }
                let mut matched = false;
                let mut nrange = 0;
                loop {
                    if chunk.starts_with(']') && nrange > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let (lo, rest) = get_esc(chunk)?;
                    chunk = rest;
                    let mut hi = lo;
                    if let Some(rest) = chunk.strip_prefix('-') {
                        let (h, rest) = get_esc(rest)?;
                        hi = h;
                        chunk = rest;
                    }
                    if lo <= r && r <= hi {
                        matched = true;
                    }
                    nrange += 1;
                }
                if matched == negated {
                    failed = true;
                }
            }
            '?' => {
                if !failed {
                    let c = s.chars().next().unwrap_or('/');
                    if c == '/' {
                        failed = true;
                    }
                    s = &s[c.len_utf8().min(s.len())..];
                }
                chunk = &chunk[1..];
            }
            _ => {
                let lit = if c0 == '\\' {
                    chunk = &chunk[1..];
                    chunk.chars().next().ok_or(BadPattern)?
                } else {
                    c0
                };
                if !failed {
                    let c = s.chars().next().unwrap_or('\0');
                    if c != lit {
                        failed = true;
                    }
                    s = &s[c.len_utf8().min(s.len())..];
                }
                chunk = &chunk[lit.len_utf8()..];
            }
        }
    }
    Ok(if failed { None } else { Some(s) })
}

fn get_esc(chunk: &str) -> Result<(char, &str), BadPattern> {
    let mut chunk = chunk;
    if chunk.is_empty() || chunk.starts_with('-') || chunk.starts_with(']') {
        return Err(BadPattern);
    }
    if let Some(rest) = chunk.strip_prefix('\\') {
        chunk = rest;
    }
    let c = chunk.chars().next().ok_or(BadPattern)?;
    let rest = &chunk[c.len_utf8()..];
    if rest.is_empty() {
        return Err(BadPattern);
    }
    Ok((c, rest))
}

/// Go's `path.Clean` (`filepath.Clean` on Unix).
pub fn go_clean(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let rooted = path.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => match out.last() {
                Some(&l) if l != ".." => {
                    out.pop();
                }
                _ if rooted => {}
                _ => out.push(".."),
            },
            s => out.push(s),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// Go's `filepath.Dir`: everything before the last `/`, cleaned.
pub fn go_dir(path: &str) -> String {
    match path.rfind('/') {
        Some(i) => go_clean(&path[..=i]),
        None => ".".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Go's own `filepath.Match` test table.
    #[test]
    fn go_match_table() {
        let ok: &[(&str, &str, bool)] = &[
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*", "abc", true),
            ("a*", "ab/c", false),
            ("a*/b", "abc/b", true),
            ("a*/b", "a/c/b", false),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", false),
            ("a*b?c*x", "abxbbxdbxebxczzx", true),
            ("a*b?c*x", "abxbbxdbxebxczzy", false),
            ("ab[c]", "abc", true),
            ("ab[b-d]", "abc", true),
            ("ab[e-g]", "abc", false),
            ("ab[^c]", "abc", false),
            ("ab[^b-d]", "abc", false),
            ("ab[^e-g]", "abc", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "ab", false),
            ("a?b", "a☺b", true),
            ("a[^a]b", "a☺b", true),
            ("a???b", "a☺b", false),
            ("a[^a][^a][^a]b", "a☺b", false),
            ("[a-ζ]*", "α", true),
            ("*[a-ζ]", "A", false),
            ("a?b", "a/b", false),
            ("a*b", "a/b", false),
            ("[\\]a]", "]", true),
            ("[\\-]", "-", true),
            ("[x\\-]", "x", true),
            ("[x\\-]", "-", true),
            ("[x\\-]", "z", false),
            ("[\\-x]", "x", true),
            ("[\\-x]", "-", true),
            ("[\\-x]", "a", false),
            ("*x", "xxx", true),
        ];
        for (p, s, want) in ok {
            assert_eq!(go_match(p, s), Ok(*want), "Match({p:?}, {s:?})");
        }
        let bad: &[(&str, &str)] = &[
            ("[]a]", "]"),
            ("[-]", "-"),
            ("[x-]", "x"),
            ("[x-]", "-"),
            ("[x-]", "z"),
            ("[-x]", "x"),
            ("[-x]", "-"),
            ("[-x]", "a"),
            ("\\", "a"),
            ("[a-b-c]", "a"),
            ("[", "a"),
            ("[^", "a"),
            ("[^bc", "a"),
            ("a[", "a"),
            ("a[", "ab"),
            ("a[", "x"),
            ("a/b[", "x"),
            ("*x[", "a"),
            ("[a-b-c]*", "x"),
        ];
        for (p, s) in bad {
            assert_eq!(go_match(p, s), Err(BadPattern), "Match({p:?}, {s:?})");
        }
    }

    #[test]
    fn clean_like_go() {
        let cases = [
            ("", "."),
            ("abc", "abc"),
            ("abc/", "abc"),
            ("a//c", "a/c"),
            ("./abc", "abc"),
            ("abc/.", "abc"),
            ("abc/../def", "def"),
            ("..", ".."),
            ("../../abc", "../../abc"),
            ("/../abc", "/abc"),
            ("/", "/"),
            ("//", "/"),
            ("abc/../..", ".."),
            ("a/./b/../../c", "c"),
        ];
        for (i, want) in cases {
            assert_eq!(go_clean(i), want, "Clean({i:?})");
        }
        assert_eq!(go_dir("a/b/c"), "a/b");
        assert_eq!(go_dir("a"), ".");
        assert_eq!(go_dir("/a"), "/");
    }
}
