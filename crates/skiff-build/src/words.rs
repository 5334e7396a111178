//! The line parsers of BuildKit's Dockerfile parser: how the text after an instruction name
//! becomes flags and arguments, before any variable is expanded.
//!
//! What matches Docker:
//! - Flags are the leading `--words` (quotes and `\` honoured inside them); the first word
//!   not starting with `--` ends them, and a lone `--` ends them and is dropped.
//! - JSON form: the arguments start with `[` and the first JSON value is an array; an array
//!   holding anything but strings is an error, anything else that is not an array falls
//!   back to the shell form (`CMD [not json` runs `[not json` in the shell). As Go's
//!   `json.Decoder` does, text after the array is ignored.
//! - ENV/LABEL words keep their quotes and escapes (the expander removes them later); the
//!   old form `ENV key the value` is taken when the first word has no `=`.
//! - Whitespace splitting (FROM, EXPOSE, COPY shell form) splits on `[\t\v\f\r ]+`, keeping
//!   quotes as characters.

/// Splits leading `--flags` from the rest: `(rest, flags)`.
pub fn extract_builder_flags(line: &str) -> (String, Vec<String>) {
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut blank_ok = false;
    let mut i = 0;
    loop {
        let Some(&(at, ch)) = chars.get(i) else {
            if in_word && word != "--" && (blank_ok || !word.is_empty()) {
                words.push(word);
            }
            return (String::new(), words);
        };
        if !in_word {
            if ch.is_whitespace() {
                i += 1;
                continue;
            }
            if ch != '-' || chars.get(i + 1).map(|c| c.1) != Some('-') {
                return (line[at..].to_string(), words);
            }
            in_word = true;
        }
        match quote {
            None => {
                if ch.is_whitespace() {
                    in_word = false;
                    if word == "--" {
                        return (line[at..].to_string(), words);
                    }
                    if blank_ok || !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                    word.clear();
                    blank_ok = false;
                } else if ch == '\'' || ch == '"' {
                    quote = Some(ch);
                    blank_ok = true;
                } else if ch == '\\' {
                    if let Some(&(_, next)) = chars.get(i + 1) {
                        word.push(next);
                        i += 1;
                    }
                } else {
                    word.push(ch);
                }
            }
            Some(q) => {
                if ch == q {
                    quote = None;
                } else if ch == '\\' {
                    match chars.get(i + 1) {
                        Some(&(_, next)) => {
                            word.push(next);
                            i += 1;
                        }
                        None => quote = None,
                    }
                } else {
                    word.push(ch);
                }
            }
        }
        i += 1;
    }
}

/// Splits a logical line into `(instruction, flags, arguments)`.
pub fn split_command(line: &str) -> (String, Vec<String>, String) {
    let trimmed = line.trim();
    let (cmd, rest) = match trimmed.find(is_go_space_token) {
        Some(i) => {
            let rest = trimmed[i..].trim_start_matches(is_go_space_token);
            (&trimmed[..i], Some(rest))
        }
        None => (trimmed, None),
    };
    match rest {
        Some(rest) => {
            let (args, flags) = extract_builder_flags(rest);
            (cmd.to_string(), flags, args.trim().to_string())
        }
        None => (cmd.to_string(), Vec::new(), String::new()),
    }
}

/// `[\t\v\f\r ]`, the whitespace of the parser's `reWhitespace`.
pub fn is_go_space_token(c: char) -> bool {
    matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

/// Splits on runs of `[\t\v\f\r ]` (Go's `regexp.Split`, so a leading or trailing run gives an
/// empty word, as in Docker).
pub fn split_whitespace_go(s: &str) -> Vec<String> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_space = false;
    for c in s.chars() {
        if is_go_space_token(c) {
            if !in_space {
                out.push(std::mem::take(&mut cur));
                in_space = true;
            }
        } else {
            in_space = false;
            cur.push(c);
        }
    }
    out.push(cur);
    out
}

/// Outcome of trying the JSON form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Json {
    /// A JSON array of strings.
    Array(Vec<String>),
    /// Not the JSON form: use the shell form.
    NotJson,
    /// A JSON array with a non-string element: an error in Docker.
    NotStrings,
}

/// Tries to read `rest` as a JSON array of strings.
pub fn parse_json(rest: &str) -> Json {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return Json::NotJson;
    }
    let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<serde_json::Value>();
    match stream.next() {
        Some(Ok(serde_json::Value::Array(items))) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    serde_json::Value::String(s) => out.push(s),
                    _ => return Json::NotStrings,
                }
            }
            Json::Array(out)
        }
        _ => Json::NotJson,
    }
}

/// The message Docker gives for [`Json::NotStrings`].
pub const NOT_STRING_ARRAY: &str =
    "when using JSON array syntax, arrays must be comprised of strings only";

/// Words of an ENV/LABEL/ARG line: split on whitespace outside quotes, quotes and escapes kept.
pub fn parse_words(rest: &str, escape: char) -> Vec<String> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut pos = 0;
    loop {
        let ch = chars.get(pos).copied();
        if phase == Phase::Spaces {
            match ch {
                None => break,
                Some(c) if c.is_whitespace() => {
                    pos += 1;
                    continue;
                }
                Some(_) => phase = Phase::Word,
            }
        }
        let Some(mut ch) = ch else {
            if blank_ok || !word.is_empty() {
                words.push(word);
            }
            break;
        };
        if phase == Phase::Word {
            if ch.is_whitespace() {
                phase = Phase::Spaces;
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
            }
            if ch == escape {
                if pos + 1 == chars.len() {
                    pos += 1;
                    continue;
                }
                word.push(ch);
                pos += 1;
                ch = chars[pos];
            }
            word.push(ch);
            pos += 1;
            continue;
        }
        // Phase::Quote
        if ch == quote {
            phase = Phase::Word;
        }
        if ch == escape && quote != '\'' {
            if pos + 1 == chars.len() {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            pos += 1;
            word.push(ch);
            ch = chars[pos];
        }
        word.push(ch);
        pos += 1;
    }
    words
}

/// ENV/LABEL arguments as (key, value) pairs, not yet expanded; `Err` holds Docker's message.
pub fn parse_name_val(
    rest: &str,
    instruction: &str,
    escape: char,
) -> Result<Vec<(String, String)>, String> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Ok(Vec::new());
    };
    if !first.contains('=') {
        let parts: Vec<&str> = {
            let mut it = rest.splitn(2, is_go_space_token);
            let k = it.next().unwrap_or("");
            match it.next() {
                Some(v) => vec![k, v.trim_start_matches(is_go_space_token)],
                None => vec![k],
            }
        };
        if parts.len() < 2 {
            return Err(format!("{instruction} must have two arguments"));
        }
        return Ok(vec![(parts[0].to_string(), parts[1].to_string())]);
    }
    let mut out = Vec::new();
    for w in words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(format!(
                "Syntax error - can't find = in {w:?}. Must be of the form: name=value"
            ));
        };
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

#[cfg(test)]
#[path = "words_tests.rs"]
mod tests;
