//! Heredocs (`<<EOF`, `<<-EOF`, `<<'EOF'`, `<<"EOF"`, `3<<EOF`), found the way BuildKit finds them.
//!
//! What matches Docker:
//! - Only RUN, COPY and ADD (also behind ONBUILD) in their non-JSON form take heredocs.
//! - The logical line is split into shell words (quotes and escapes kept, unset variables
//!   left alone); every word of the form `[fd]<<[-]WORD` (WORD without `<`) opens a heredoc,
//!   so `cat <<EOF >file` works but `cat <<EOF>file` names a heredoc `EOF>file`, as in Docker.
//! - A quoted WORD (any quote in it) turns off expansion of the body (only COPY/ADD bodies
//!   are ever expanded; RUN bodies go to the shell as written).
//! - Bodies follow the instruction in order, each up to a line that is exactly the word
//!   (`<<-`: after leading tabs are removed). Body lines keep their line endings.
//! - `<<-` strips leading tabs from every body line when the body is used.

use crate::shell_lex::{ExpandError, Lex, NoVars};

/// One heredoc attached to an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The terminator word, quotes removed (also the file name for `COPY <<EOF dest`).
    pub name: String,
    /// The file descriptor before `<<` (0 when none).
    pub fd: u32,
    /// Whether variables in the body are expanded (the word was not quoted).
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from the body.
    pub chomp: bool,
    /// The body, each line with its line ending, tabs not yet stripped.
    pub content: String,
}

impl Heredoc {
    /// The body as used: with leading tabs removed from each line for `<<-`.
    pub fn body(&self) -> String {
        if self.chomp {
            chomp(&self.content)
        } else {
            self.content.clone()
        }
    }
}

/// Removes the leading tabs of every line (`(?m)^\t+`).
pub fn chomp(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for line in s.split_inclusive('\n') {
        out.push_str(line.trim_start_matches('\t'));
    }
    out
}

/// A heredoc opened by `word` (`[fd]<<[-]NAME`), without its body; `None` when the word is
/// not a heredoc opener.
pub fn parse_heredoc(word: &str) -> Result<Option<Heredoc>, ExpandError> {
    let digits = word.bytes().take_while(u8::is_ascii_digit).count();
    let Some(after) = word[digits..].strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, rest) = match after.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, after),
    };
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let fd = word[..digits].parse::<u32>().unwrap_or(0);
    let mut lex = Lex::new('\\');
    lex.skip_unset_env = true;
    let words = lex.process_words(rest, &NoVars)?;
    if words.len() != 1 {
        return Ok(None);
    }
    lex.raw_quotes = true;
    let raw = lex.process_words(rest, &NoVars)?;
    if raw.len() != words.len() {
        return Err(ExpandError {
            word: rest.to_string(),
            message: "internal lexing of heredoc produced inconsistent results".into(),
        });
    }
    let quotes = |s: &str| s.chars().filter(|c| *c == '\'' || *c == '"').count();
    Ok(Some(Heredoc {
        expand: quotes(&words[0]) == quotes(&raw[0]),
        name: words[0].clone(),
        fd,
        chomp,
        content: String::new(),
    }))
}

/// The heredocs a logical line opens, in order.
pub fn heredocs_from_line(line: &str) -> Result<Vec<Heredoc>, ExpandError> {
    let mut lex = Lex::new('\\');
    lex.raw_quotes = true;
    lex.raw_escapes = true;
    lex.skip_unset_env = true;
    let words = lex.process_words(line, &NoVars).unwrap_or_default();
    let mut docs = Vec::new();
    for w in words {
        if let Some(h) = parse_heredoc(&w)? {
            docs.push(h);
        }
    }
    Ok(docs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openers() {
        let h = parse_heredoc("<<EOF").unwrap().unwrap();
        assert_eq!(
            (h.name.as_str(), h.expand, h.chomp, h.fd),
            ("EOF", true, false, 0)
        );
        let h = parse_heredoc("<<-'END'").unwrap().unwrap();
        assert_eq!((h.name.as_str(), h.expand, h.chomp), ("END", false, true));
        let h = parse_heredoc("3<<\"x\"").unwrap().unwrap();
        assert_eq!((h.name.as_str(), h.expand, h.fd), ("x", false, 3));
        let h = parse_heredoc("<<E'O'F").unwrap().unwrap();
        assert_eq!((h.name.as_str(), h.expand), ("EOF", false));
        assert!(parse_heredoc("<<").unwrap().is_none());
        assert!(parse_heredoc("<<<EOF").unwrap().is_none());
        assert!(parse_heredoc("a<<EOF").unwrap().is_none());
        assert!(parse_heredoc("<<'unterminated").is_err());
    }

    #[test]
    fn several_on_a_line() {
        let docs = heredocs_from_line("RUN cat <<A - <<-'B' > /x 2>&1").unwrap();
        let names: Vec<_> = docs.iter().map(|d| (d.name.as_str(), d.chomp)).collect();
        assert_eq!(names, [("A", false), ("B", true)]);
        assert!(heredocs_from_line("RUN echo '<<EOF'").unwrap().is_empty());
        assert_eq!(
            heredocs_from_line("RUN cat <<EOF>f").unwrap()[0].name,
            "EOF>f"
        );
    }

    #[test]
    fn chomping() {
        assert_eq!(chomp("\t\ta\n\tb\n c\n"), "a\nb\n c\n");
    }
}
