//! The shell patterns of `${VAR#pat}`, `${VAR%pat}` and `${VAR/pat/repl}`, as BuildKit
//! implements them: `*` and `?` wildcards and `\` escapes (no bracket expressions), turned
//! into a regex; the shortest or longest (`##`, `%%`) match is removed, and suffixes are
//! found by reversing both the pattern and the value.

use regex::Regex;

type R<T> = Result<T, String>;

/// A shell wildcard pattern (`*`, `?`, `\` escapes; no brackets) as a regex.
pub(crate) fn shell_pattern_regex(pattern: &str, greedy: bool, anchored: bool) -> R<Regex> {
    let mut out = String::with_capacity(pattern.len() + 4);
    if anchored {
        out.push('^');
    }
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let tok = chars[i];
        i += 1;
        match tok {
            '*' => out.push_str(if greedy { ".*" } else { ".*?" }),
            '?' => out.push('.'),
            '\\' => {
                if matches!(chars.get(i), Some('}' | '/')) {
                    continue;
                }
                match chars.get(i) {
                    Some(&c @ ('*' | '?' | '\\')) => {
                        out.push('\\');
                        out.push(c);
                        i += 1;
                    }
                    Some(c) => return Err(format!("invalid escape '\\{c}'")),
                    None => return Err("invalid escape '\\'".into()),
                }
            }
            c => out.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
        }
    }
    Regex::new(&out).map_err(|e| e.to_string())
}

pub(crate) fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> R<String> {
    let re = shell_pattern_regex(pattern, greedy, true)
        .map_err(|e| format!("invalid pattern ({pattern}) in substitution: {e}"))?;
    Ok(match re.find(value) {
        Some(m) => value[m.end()..].to_string(),
        None => value.to_string(),
    })
}

pub(crate) fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> R<String> {
    // Regexes find leftmost matches: reverse both so the rightmost suffix becomes a prefix.
    let p: Vec<char> = pattern.chars().collect();
    let mut rev = Vec::with_capacity(p.len());
    let mut i = 0;
    while i < p.len() {
        if p[i] == '\\' && i + 1 < p.len() {
            rev.push((p[i], Some(p[i + 1])));
            i += 2;
        } else {
            rev.push((p[i], None));
            i += 1;
        }
    }
    let rpattern: String = rev
        .iter()
        .rev()
        .flat_map(|&(a, b)| std::iter::once(a).chain(b))
        .collect();
    let rvalue: String = value.chars().rev().collect();
    Ok(trim_prefix(&rpattern, &rvalue, greedy)?
        .chars()
        .rev()
        .collect())
}
