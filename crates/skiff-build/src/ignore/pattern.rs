//! One .dockerignore pattern compiled as `moby/patternmatcher` compiles it: an exact string,
//! a prefix (`dir/**`), a suffix (`**/name`) or else a regex translated character by
//! character (`*` → `[^/]*`, `?` → `[^/]`, `**/` → `(.*/)?`, classes passed through).

use regex::Regex;

use super::gomatch::{go_clean, go_match};

/// A pattern that is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("illegal exclusion pattern: \"!\"")]
    LoneExclamation,
    #[error("syntax error in pattern: {0:?}")]
    Syntax(String),
}

#[derive(Debug, Clone)]
enum Kind {
    Exact,
    Prefix,
    Suffix,
    Regex(Regex),
}

/// One compiled pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// The cleaned pattern without its `!`.
    pub cleaned: String,
    /// A `!` exception.
    pub exclusion: bool,
    kind: Kind,
}

impl Pattern {
    /// Compiles one (trimmed, non-empty) pattern.
    pub fn new(p: &str) -> Result<Pattern, PatternError> {
        let mut p = go_clean(p);
        let mut exclusion = false;
        if let Some(rest) = p.strip_prefix('!') {
            if rest.is_empty() {
                return Err(PatternError::LoneExclamation);
            }
            exclusion = true;
            p = rest.to_string();
        }
        if go_match(&p, ".").is_err() {
            return Err(PatternError::Syntax(p));
        }
        let kind = compile(&p).ok_or_else(|| PatternError::Syntax(p.clone()))?;
        Ok(Pattern {
            cleaned: p,
            exclusion,
            kind,
        })
    }

    /// Whether `path` (cleaned, `/`-separated) matches.
    pub fn matches(&self, path: &str) -> bool {
        let p = &self.cleaned;
        match &self.kind {
            Kind::Exact => path == p,
            Kind::Prefix => path.starts_with(&p[..p.len() - 2]),
            Kind::Suffix => {
                let suffix = &p[2..];
                path.ends_with(suffix) || suffix.strip_prefix('/') == Some(path)
            }
            Kind::Regex(re) => re.is_match(path),
        }
    }
}

impl Pattern {
    /// How the pattern is matched: `exact`, `prefix`, `suffix` or `regex <regex>`.
    pub fn kind_name(&self) -> String {
        match &self.kind {
            Kind::Exact => "exact".into(),
            Kind::Prefix => "prefix".into(),
            Kind::Suffix => "suffix".into(),
            Kind::Regex(re) => format!("regex {}", re.as_str()),
        }
    }
}

/// The regex (or simpler matcher) for a cleaned pattern; `None` if the regex is invalid.
fn compile(pattern: &str) -> Option<Kind> {
    #[derive(PartialEq)]
    enum Detected {
        Exact,
        Prefix,
        Suffix,
        Regex,
    }
    let mut re = String::from("^");
    let mut detected = Detected::Exact;
    let chars: Vec<char> = pattern.chars().collect();
    let mut pos = 0;
    let mut iteration = 0;
    // Inside `[...]`: where the class started (to treat a first `]` as a literal).
    let mut class_start: Option<usize> = None;
    while pos < chars.len() {
        let ch = chars[pos];
        pos += 1;
        let first = iteration == 0;
        iteration += 1;
        if let Some(start) = class_start {
            match ch {
                ']' if pos - 1 > start => {
                    class_start = None;
                    re.push(']');
                }
                '\\' => {
                    re.push('\\');
                    if let Some(&n) = chars.get(pos) {
                        re.push(n);
                        pos += 1;
                    }
                }
                '[' if chars.get(pos) != Some(&':') => re.push_str("\\["),
                '&' | '~' | '-' if chars.get(pos) == Some(&ch) => {
                    re.push('\\');
                    re.push(ch);
                }
                _ => re.push(ch),
            }
            continue;
        }
        match ch {
            '*' if chars.get(pos) == Some(&'*') => {
                pos += 1;
                if chars.get(pos) == Some(&'/') {
                    pos += 1;
                }
                if pos >= chars.len() {
                    if detected == Detected::Exact {
                        detected = Detected::Prefix;
                    } else {
                        re.push_str(".*");
                        detected = Detected::Regex;
                    }
                } else {
                    re.push_str("(.*/)?");
                    detected = Detected::Regex;
                }
                if first {
                    detected = Detected::Suffix;
                }
            }
            '*' => {
                re.push_str("[^/]*");
                detected = Detected::Regex;
            }
            '?' => {
                re.push_str("[^/]");
                detected = Detected::Regex;
            }
            '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$' => {
                re.push('\\');
                re.push(ch);
            }
            ']' => {
                re.push_str("\\]");
                detected = Detected::Regex;
            }
            '\\' => match chars.get(pos) {
                Some(&n) => {
                    pos += 1;
                    re.push('\\');
                    re.push(n);
                    detected = Detected::Regex;
                }
                None => re.push_str("\\\\"),
            },
            '[' => {
                re.push('[');
                detected = Detected::Regex;
                let mut start = pos;
                if chars.get(pos) == Some(&'^') {
                    re.push('^');
                    pos += 1;
                    start = pos;
                }
                class_start = Some(start);
            }
            _ => re.push(ch),
        }
    }
    Some(match detected {
        Detected::Exact => Kind::Exact,
        Detected::Prefix => Kind::Prefix,
        Detected::Suffix => Kind::Suffix,
        Detected::Regex => {
            re.push('$');
            Kind::Regex(Regex::new(&re).ok()?)
        }
    })
}
