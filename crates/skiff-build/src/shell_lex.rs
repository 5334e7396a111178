//! Variable substitution and word splitting, as BuildKit's `shell.Lex` does it.
//!
//! What matches Docker:
//! - `$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR-word}`, `${VAR:+word}`, `${VAR+word}`,
//!   `${VAR:?msg}`, `${VAR?msg}`, `${VAR#pat}`, `${VAR##pat}`, `${VAR%pat}`, `${VAR%%pat}`,
//!   `${VAR/pat/repl}`, `${VAR//pat/repl}` (patterns: `*` and `?`, no brackets).
//! - `$` followed by no name stays `$`; `$1` style digit names and the special parameters
//!   (`$@ $* $# $? $- $$ $! $0`) are looked up like any name (so they are usually empty).
//! - Single quotes keep everything literal; double quotes keep everything but `$` and the
//!   escape token, which only escapes `"`, `$` and itself there; outside quotes the escape
//!   token escapes any character (an escape at the very end is dropped).
//! - Unset variables expand to the empty string, unless `skip_unset_env` (used to find
//!   heredoc words) keeps the reference as written.
//! - Word splitting (`process_words`) splits on whitespace after substitution, except
//!   inside quotes.
//!
//! Every name looked up is recorded, so the caller knows which build args a word used.

use std::collections::BTreeSet;

use crate::shell_pattern::{shell_pattern_regex, trim_prefix, trim_suffix};

/// A `${...}` or quoting error: `failed to process "WORD": MESSAGE`, as Docker says it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to process {word:?}: {message}")]
pub struct ExpandError {
    pub word: String,
    pub message: String,
}

/// Where variable values come from.
pub trait Vars {
    /// The value of `name`, `None` when it is not set.
    fn lookup(&self, name: &str) -> Option<&str>;
}

impl Vars for std::collections::BTreeMap<String, String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl Vars for std::collections::HashMap<String, String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl Vars for [(String, String)] {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// No variables at all.
pub struct NoVars;

impl Vars for NoVars {
    fn lookup(&self, _: &str) -> Option<&str> {
        None
    }
}

/// The lexer's options (BuildKit's `Lex` fields).
#[derive(Debug, Clone, Copy)]
pub struct Lex {
    pub escape: char,
    /// Keep quote characters in the output.
    pub raw_quotes: bool,
    /// Keep escape characters in the output.
    pub raw_escapes: bool,
    /// Treat quotes as ordinary characters (heredoc bodies).
    pub skip_process_quotes: bool,
    /// Leave references to unset variables as written.
    pub skip_unset_env: bool,
}

/// The result of processing one word.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Processed {
    /// The word with quotes removed and variables substituted.
    pub result: String,
    /// The same split into words.
    pub words: Vec<String>,
    /// Names that were looked up and found.
    pub matched: BTreeSet<String>,
    /// Names that were looked up and not found.
    pub unmatched: BTreeSet<String>,
}

impl Lex {
    /// A lexer with `escape` as escape token and all options off.
    pub fn new(escape: char) -> Lex {
        Lex {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_process_quotes: false,
            skip_unset_env: false,
        }
    }

    /// Substitutes variables in `word` and splits it into words.
    pub fn process(&self, word: &str, vars: &dyn Vars) -> Result<Processed, ExpandError> {
        let mut sw = Scan {
            lex: *self,
            chars: word.chars().collect(),
            pos: 0,
            vars,
            raw_escapes: self.raw_escapes,
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
        };
        match sw.stop_on(None, self.raw_escapes) {
            Ok((result, words)) => Ok(Processed {
                result,
                words,
                matched: sw.matched,
                unmatched: sw.unmatched,
            }),
            Err(message) => Err(ExpandError {
                word: word.to_string(),
                message,
            }),
        }
    }

    /// `word` with variables substituted and quotes removed (one word in, one word out).
    pub fn process_word(&self, word: &str, vars: &dyn Vars) -> Result<String, ExpandError> {
        self.process(word, vars).map(|p| p.result)
    }

    /// `word` substituted and split on unquoted whitespace.
    pub fn process_words(&self, word: &str, vars: &dyn Vars) -> Result<Vec<String>, ExpandError> {
        self.process(word, vars).map(|p| p.words)
    }
}

#[derive(Default)]
struct Words {
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }
    fn add_raw_char(&mut self, ch: char) {
        self.word.push(ch);
        self.in_word = true;
    }
    fn add_string(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }
    fn add_raw_string(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }
    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}

struct Scan<'a> {
    lex: Lex,
    chars: Vec<char>,
    pos: usize,
    vars: &'a dyn Vars,
    raw_escapes: bool,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
}

type R<T> = Result<T, String>;

impl Scan<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn get_env(&mut self, name: &str) -> Option<String> {
        match self.vars.lookup(name) {
            Some(v) => {
                self.matched.insert(name.to_string());
                Some(v.to_string())
            }
            None => {
                self.unmatched.insert(name.to_string());
                None
            }
        }
    }

    fn stop_on(&mut self, stop: Option<char>, raw_escapes: bool) -> R<(String, Vec<String>)> {
        let saved = self.raw_escapes;
        self.raw_escapes = raw_escapes;
        let r = self.stop_on_inner(stop);
        self.raw_escapes = saved;
        r
    }

    fn stop_on_inner(&mut self, stop: Option<char>) -> R<(String, Vec<String>)> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if stop == Some(ch) {
                self.next();
                return Ok((result, words.finish()));
            }
            let quotes = !self.lex.skip_process_quotes;
            if ch == '$' {
                let tmp = self.dollar()?;
                result.push_str(&tmp);
                words.add_string(&tmp);
            } else if quotes && ch == '\'' {
                let tmp = self.single_quote()?;
                result.push_str(&tmp);
                words.add_raw_string(&tmp);
            } else if quotes && ch == '"' {
                let tmp = self.double_quote()?;
                result.push_str(&tmp);
                words.add_raw_string(&tmp);
            } else {
                let mut ch = self.next().unwrap_or(ch);
                if ch == self.lex.escape {
                    if self.raw_escapes {
                        words.add_raw_char(ch);
                        result.push(ch);
                    }
                    match self.next() {
                        None => break,
                        Some(c) => ch = c,
                    }
                    words.add_raw_char(ch);
                } else {
                    words.add_char(ch);
                }
                result.push(ch);
            }
        }
        if let Some(stop) = stop {
            return Err(format!(
                "unexpected end of statement while looking for matching {stop}"
            ));
        }
        Ok((result, words.finish()))
    }

    fn single_quote(&mut self) -> R<String> {
        let mut result = String::new();
        let open = self.next().unwrap_or('\'');
        if self.lex.raw_quotes {
            result.push(open);
        }
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .into(),
                    )
                }
                Some('\'') => {
                    if self.lex.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(c) => result.push(c),
            }
        }
    }

    fn double_quote(&mut self) -> R<String> {
        let mut result = String::new();
        let open = self.next().unwrap_or('"');
        if self.lex.raw_quotes {
            result.push(open);
        }
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .into(),
                    )
                }
                Some('"') => {
                    self.next();
                    if self.lex.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let v = self.dollar()?;
                    result.push_str(&v);
                }
                Some(_) => {
                    let mut ch = self.next().unwrap_or('"');
                    if ch == self.lex.escape {
                        if self.raw_escapes {
                            result.push(ch);
                        }
                        match self.peek() {
                            None => continue,
                            Some(c) if c == '"' || c == '$' || c == self.lex.escape => {
                                self.next();
                                ch = c;
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    self.next();
                    name.push(d);
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                return ch.to_string();
            }
            if !ch.is_alphanumeric() && ch != '_' {
                break;
            }
            self.next();
            name.push(ch);
        }
        name
    }

    fn dollar(&mut self) -> R<String> {
        self.next();
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(match self.get_env(&name) {
                Some(v) => v,
                None if self.lex.skip_unset_env => format!("${name}"),
                None => String::new(),
            });
        }
        self.next();
        match self.peek() {
            None => return Err("syntax error: missing '}'".into()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".into()),
            Some(_) => {}
        }
        let name = self.name();
        let Some(mut ch) = self.next() else {
            return Err("syntax error: missing '}'".into());
        };
        let mut chs = ch.to_string();
        match ch {
            '}' => Ok(match self.get_env(&name) {
                Some(v) => v,
                None if self.lex.skip_unset_env => format!("${{{name}}}"),
                None => String::new(),
            }),
            ':' | '+' | '-' | '?' | '#' | '%' => {
                let null_is_unset = ch == ':';
                if null_is_unset {
                    ch = self.next().unwrap_or('\u{fffd}');
                    chs.push(ch);
                }
                let raw = ch == '#' || ch == '%';
                let word = match self.stop_on(Some('}'), raw) {
                    Ok((w, _)) => w,
                    Err(_) if self.peek().is_none() => {
                        return Err("syntax error: missing '}'".into())
                    }
                    Err(e) => return Err(e),
                };
                let value = self.get_env(&name);
                if self.lex.skip_unset_env && value.is_none() {
                    return Ok(format!("${{{name}{chs}{word}}}"));
                }
                let empty = value.as_deref().is_none_or(str::is_empty);
                let unset = value.is_none() || (null_is_unset && empty);
                match ch {
                    '-' => Ok(if unset {
                        word
                    } else {
                        value.unwrap_or_default()
                    }),
                    '+' => Ok(if unset { String::new() } else { word }),
                    '?' => {
                        if value.is_none() {
                            let m = if word.is_empty() {
                                "is not allowed to be unset"
                            } else {
                                &word
                            };
                            Err(format!("{name}: {m}"))
                        } else if null_is_unset && empty {
                            let m = if word.is_empty() {
                                "is not allowed to be empty"
                            } else {
                                &word
                            };
                            Err(format!("{name}: {m}"))
                        } else {
                            Ok(value.unwrap_or_default())
                        }
                    }
                    '#' | '%' => {
                        let (greedy, pat) = match word.strip_prefix(ch) {
                            Some(rest) => (true, rest.to_string()),
                            None => (false, word),
                        };
                        let value = value.unwrap_or_default();
                        if ch == '%' {
                            trim_suffix(&pat, &value, greedy)
                        } else {
                            trim_prefix(&pat, &value, greedy)
                        }
                    }
                    _ => Err(format!("unsupported modifier ({chs}) in substitution")),
                }
            }
            '/' => {
                let all = self.peek() == Some('/');
                if all {
                    self.next();
                }
                let pattern = match self.stop_on(Some('/'), true) {
                    Ok((p, _)) => p,
                    Err(_) if self.peek().is_none() => {
                        return Err("syntax error: missing '/' in ${}".into())
                    }
                    Err(e) => return Err(e),
                };
                let repl = match self.stop_on(Some('}'), true) {
                    Ok((r, _)) => r,
                    Err(_) if self.peek().is_none() => {
                        return Err("syntax error: missing '}'".into())
                    }
                    Err(e) => return Err(e),
                };
                let Some(value) = self.get_env(&name) else {
                    if self.lex.skip_unset_env {
                        return Ok(format!("${{{name}/{pattern}/{repl}}}"));
                    }
                    return Ok(String::new());
                };
                let re = shell_pattern_regex(&pattern, true, false)
                    .map_err(|e| format!("invalid pattern ({pattern}) in substitution: {e}"))?;
                Ok(if all {
                    re.replace_all(&value, repl.as_str()).into_owned()
                } else {
                    re.replace(&value, repl.as_str()).into_owned()
                })
            }
            _ => Err(format!("unsupported modifier ({chs}) in substitution")),
        }
    }
}

#[cfg(test)]
#[path = "shell_lex_tests.rs"]
mod tests;
