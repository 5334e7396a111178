//! From Dockerfile bytes to logical lines ("nodes"): parser directives, comments, line
//! continuations and heredoc bodies, with the source line range of each instruction.
//!
//! What matches Docker (BuildKit's `parser.Parse`):
//! - A UTF-8 byte-order mark on the first line is dropped; lines end at `\n` (a `\r` before
//!   it is dropped too).
//! - Parser directives (`# syntax=...`, `# escape=...`, `# check=...`) count only in the
//!   leading run of directive comments; any other line (even an empty one) ends that run.
//!   A repeated directive is an error; `escape` takes `\` or a backtick.
//! - A line whose first non-blank character is `#` is a comment, also in the middle of a
//!   continued instruction; comments are not continued.
//! - A line ending in the escape token (trailing blanks allowed, not when the escape token is
//!   itself escaped) continues on the next line; leading whitespace of continuation lines is
//!   kept. Empty continuation lines are skipped with a warning, as Docker does. A
//!   continuation that reaches the end of the file ends the instruction there.
//! - RUN/COPY/ADD (and those behind ONBUILD) in shell form read heredoc bodies after the
//!   instruction's last line.

use crate::error::{DockerfileError, ErrorKind, Loc};
use crate::heredoc::{heredocs_from_line, Heredoc};
use crate::words::{parse_json, split_command, Json};

/// One instruction before typing: the logical line, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawNode {
    /// The instruction word as written (`run`, `RUN`, ...).
    pub cmd: String,
    /// Leading `--flags`, each `--name[=value]` with quotes removed.
    pub flags: Vec<String>,
    /// The arguments after the flags, trimmed.
    pub rest: String,
    /// The logical line (continuations joined), as Docker shows it in `Step N/M : ...`.
    pub original: String,
    /// 1-based first and last source line (heredoc bodies included).
    pub start: usize,
    pub end: usize,
    /// Heredoc bodies, in the order they are opened.
    pub heredocs: Vec<Heredoc>,
}

/// The lexer's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lexed {
    pub nodes: Vec<RawNode>,
    /// The escape token (`\` unless `# escape=` said otherwise).
    pub escape: char,
    /// The `# syntax=` directive, if any (informational: skiff has one frontend).
    pub syntax: Option<String>,
    /// The `# check=` directive, if any.
    pub check: Option<String>,
    /// Warnings Docker prints (empty continuation lines).
    pub warnings: Vec<String>,
}

struct Directives {
    escape: char,
    done: bool,
    seen: Vec<String>,
    syntax: Option<String>,
    check: Option<String>,
}

impl Directives {
    /// Looks at a (left-trimmed) line for a parser directive.
    fn possible(&mut self, line: &str) -> Result<(), ErrorKind> {
        if self.done {
            return Ok(());
        }
        let Some((key, value)) = directive(line) else {
            self.done = true;
            return Ok(());
        };
        let key = key.to_ascii_lowercase();
        if !matches!(key.as_str(), "escape" | "syntax" | "check") {
            self.done = true;
            return Ok(());
        }
        if self.seen.contains(&key) {
            return Err(ErrorKind::DuplicateDirective(key));
        }
        self.seen.push(key.clone());
        match key.as_str() {
            "escape" => match value {
                "\\" => self.escape = '\\',
                "`" => self.escape = '`',
                _ => return Err(ErrorKind::BadEscapeToken(value.to_string())),
            },
            "syntax" => self.syntax = Some(value.to_string()),
            _ => self.check = Some(value.to_string()),
        }
        Ok(())
    }

    /// Removes a trailing escape token: `(line, ends_here)`.
    fn trim_continuation(&self, line: &str) -> (String, bool) {
        let t = line.trim_end_matches([' ', '\t']);
        let Some(before) = t.strip_suffix(self.escape) else {
            return (line.to_string(), true);
        };
        if before.is_empty() || !before.ends_with(self.escape) {
            (before.to_string(), false)
        } else {
            (line.to_string(), true)
        }
    }
}

/// `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`
fn directive(line: &str) -> Option<(&str, &str)> {
    let is_s = |c: char| matches!(c, ' ' | '\t' | '\n' | '\u{c}' | '\r');
    let rest = line.strip_prefix('#')?.trim_start_matches(is_s);
    let key_len = rest
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(rest.len());
    let key = &rest[..key_len];
    if !key.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let value = rest[key_len..]
        .trim_start_matches(is_s)
        .strip_prefix('=')?
        .trim_start_matches(is_s)
        .trim_end_matches(is_s);
    (!value.is_empty()).then_some((key, value))
}

fn trim_newline(s: &str) -> &str {
    s.trim_end_matches(['\r', '\n'])
}

fn is_comment(raw: &str) -> bool {
    trim_newline(raw).trim_start().starts_with('#')
}

/// Strips the comment that starts a line (Docker's `trimComments`: only at column 0).
fn trim_comment(s: &str) -> &str {
    if s.starts_with('#') {
        ""
    } else {
        s
    }
}

/// Whether an instruction in this node may carry heredocs.
fn takes_heredocs(cmd: &str, rest: &str) -> bool {
    let cmd = cmd.to_ascii_lowercase();
    if cmd == "onbuild" {
        let (sub, _, sub_rest) = split_command(rest);
        return takes_heredocs_simple(&sub, &sub_rest);
    }
    takes_heredocs_simple(&cmd, rest)
}

fn takes_heredocs_simple(cmd: &str, rest: &str) -> bool {
    matches!(cmd.to_ascii_lowercase().as_str(), "run" | "copy" | "add")
        && !matches!(parse_json(rest), Json::Array(_))
}

/// Splits `text` (the Dockerfile named `file`) into logical lines.
pub fn lex(file: &str, text: &str) -> Result<Lexed, DockerfileError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut d = Directives {
        escape: '\\',
        done: false,
        seen: Vec::new(),
        syntax: None,
        check: None,
    };
    let mut nodes = Vec::new();
    let mut warnings = Vec::new();
    let mut i = 0; // index of the next line to read
    let at = |start: usize, end: usize| Loc { file, start, end };
    while i < lines.len() {
        let raw = lines[i];
        i += 1;
        let token = trim_newline(raw).trim_start();
        d.possible(token).map_err(|k| at(i, i).err(k))?;
        let start = i;
        let (mut line, mut ends) = d.trim_continuation(trim_comment(token));
        if ends && line.is_empty() {
            continue;
        }
        let mut empty_continuation = false;
        while !ends && i < lines.len() {
            let raw = lines[i];
            i += 1;
            let token = trim_newline(raw);
            d.possible(token).map_err(|k| at(i, i).err(k))?;
            if is_comment(raw) {
                continue;
            }
            let token = trim_comment(token);
            if token.trim_start().is_empty() {
                empty_continuation = true;
                continue;
            }
            let (more, e) = d.trim_continuation(token);
            line.push_str(&more);
            ends = e;
        }
        if empty_continuation {
            warnings.push(format!(
                "{file}:{start}: empty continuation line found in: {line}"
            ));
        }
        let (cmd, flags, rest) = split_command(&line);
        let mut heredocs = Vec::new();
        if takes_heredocs(&cmd, &rest) {
            let opened =
                heredocs_from_line(&line).map_err(|e| at(start, i).err(ErrorKind::Expansion(e)))?;
            for mut doc in opened {
                let mut terminated = false;
                while i < lines.len() {
                    let body_line = lines[i];
                    i += 1;
                    let mut candidate = trim_newline(body_line);
                    if doc.chomp {
                        candidate = candidate.trim_start_matches('\t');
                    }
                    if candidate == doc.name {
                        terminated = true;
                        break;
                    }
                    doc.content.push_str(body_line);
                }
                if !terminated {
                    return Err(at(start, i).err(ErrorKind::UnterminatedHeredoc));
                }
                heredocs.push(doc);
            }
        }
        if cmd.is_empty() {
            // Only an escape token on the last line: Docker makes an empty instruction of it.
            return Err(at(start, i).err(ErrorKind::UnknownInstruction {
                name: d.escape.to_string(),
                suggestion: None,
            }));
        }
        nodes.push(RawNode {
            cmd,
            flags,
            rest,
            original: line,
            start,
            end: i,
            heredocs,
        });
    }
    if nodes.is_empty() {
        let n = lines.len().max(1);
        return Err(at(n, n).err(ErrorKind::NoInstructions));
    }
    Ok(Lexed {
        nodes,
        escape: d.escape,
        syntax: d.syntax,
        check: d.check,
        warnings,
    })
}

#[cfg(test)]
#[path = "lexer_tests.rs"]
mod tests;
