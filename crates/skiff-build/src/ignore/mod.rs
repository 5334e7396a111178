//! `.dockerignore`, with the semantics of Docker's `moby/patternmatcher` (not gitignore's).
//!
//! What matches Docker:
//! - The file (`ignorefile.ReadAll`): a UTF-8 BOM is dropped; lines starting with `#` are
//!   comments; lines are trimmed; a leading `!` makes an exception (spaces after it are
//!   trimmed too); each pattern is `filepath.Clean`ed and a leading `/` removed, so `/foo`,
//!   `./foo` and `foo` are the same pattern, relative to the context root.
//! - Matching (`PatternMatcher.MatchesOrParentMatches`): patterns are tried in order, the
//!   last one that matches wins (`!` ones re-include); a pattern also matches everything
//!   under a directory it matches. `*` and `?` stop at `/`, `[...]` classes, `\` escapes,
//!   `**` matches any number of directories (including none). A malformed pattern (checked
//!   with Go's `filepath.Match`, then compiled to a regex as Docker does) is an error.
//! - Building the context ([`walk`]): an excluded directory is not descended into unless an
//!   exception pattern starts with its path; the Dockerfile and `.dockerignore` are always
//!   sent (Docker's `TrimBuildFilesFromExcludes`).

pub mod gomatch;
mod pattern;
pub mod walk;

pub use gomatch::{go_clean, go_dir, go_match, BadPattern};
pub use pattern::{Pattern, PatternError};

/// Reads a `.dockerignore` into patterns, as Docker's `ignorefile.ReadAll` does.
pub fn read_patterns(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let mut p = line.trim();
        if p.is_empty() {
            continue;
        }
        let invert = p.starts_with('!');
        if invert {
            p = p[1..].trim();
        }
        let mut pat = String::new();
        if !p.is_empty() {
            pat = go_clean(p);
            if pat.len() > 1 && pat.starts_with('/') {
                pat.remove(0);
            }
        }
        out.push(if invert { format!("!{pat}") } else { pat });
    }
    out
}

/// A compiled list of .dockerignore patterns.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
    exclusions: bool,
}

impl DockerIgnore {
    /// Compiles `patterns` (as returned by [`read_patterns`]).
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<DockerIgnore, PatternError> {
        let mut out = DockerIgnore::default();
        for p in patterns {
            let p = p.as_ref().trim();
            if p.is_empty() {
                continue;
            }
            let pat = Pattern::new(p)?;
            out.exclusions |= pat.exclusion;
            out.patterns.push(pat);
        }
        Ok(out)
    }

    /// The matcher for a context whose `.dockerignore` holds `bytes`, with the Dockerfile at
    /// `dockerfile` (relative to the context root) and `.dockerignore` always kept.
    pub fn for_context(bytes: &[u8], dockerfile: &str) -> Result<DockerIgnore, PatternError> {
        let mut patterns = read_patterns(bytes);
        let first = DockerIgnore::new(&patterns)?;
        if first.matches(".dockerignore") {
            patterns.push("!.dockerignore".into());
        }
        let df = go_clean(dockerfile);
        if first.matches(&df) {
            patterns.push(format!("!{df}"));
        }
        DockerIgnore::new(&patterns)
    }

    /// Whether `path` (relative to the context root, `/`-separated) is excluded.
    pub fn matches(&self, path: &str) -> bool {
        let file = go_clean(path);
        if file == "." {
            return false;
        }
        let parent = go_dir(&file);
        let parent_dirs: Vec<&str> = parent.split('/').collect();
        let mut matched = false;
        for p in &self.patterns {
            if p.exclusion != matched {
                continue;
            }
            let mut m = p.matches(&file);
            if !m && parent != "." {
                for i in 0..parent_dirs.len() {
                    if p.matches(&parent_dirs[..=i].join("/")) {
                        m = true;
                        break;
                    }
                }
            }
            if m {
                matched = !p.exclusion;
            }
        }
        matched
    }

    /// Whether any pattern is an exception (`!`).
    pub fn has_exclusions(&self) -> bool {
        self.exclusions
    }

    /// The compiled patterns, in order.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
