//! Dockerfile errors: every one names the file, the line and what is wrong.
//!
//! The text after `FILE:LINE: ` is Docker's own wording where Docker has one (BuildKit's
//! `dockerfile parse error on line N: MESSAGE` becomes `Dockerfile:N: MESSAGE`), so a user
//! who searches for the message finds Docker's documentation of it.

use crate::shell_lex::ExpandError;

/// An error in a Dockerfile, located at the first line of the instruction it comes from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {kind}")]
pub struct DockerfileError {
    /// The Dockerfile's name as given to the parser (usually `Dockerfile`).
    pub file: String,
    /// 1-based first line of the instruction (or of the directive) at fault.
    pub line: usize,
    /// 1-based last line of that instruction (same as `line` for one-line instructions).
    pub end_line: usize,
    /// What is wrong.
    pub kind: ErrorKind,
}

/// How an instruction's argument count is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgCount {
    /// `X requires at least one argument`.
    AtLeastOne,
    /// `X requires exactly one argument`.
    ExactlyOne,
    /// `X requires at least two arguments, but only one was provided...` (COPY, ADD).
    NoDestination,
    /// `FROM requires either one or three arguments`.
    OneOrThree,
}

/// What is wrong, without the location.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    #[error("unknown instruction: {name}{}", suggestion.as_ref().map(|s| format!(" (did you mean {s}?)")).unwrap_or_default())]
    UnknownInstruction {
        name: String,
        suggestion: Option<String>,
    },
    #[error("unterminated heredoc")]
    UnterminatedHeredoc,
    #[error("invalid escape token '{0}' does not match ` or \\")]
    BadEscapeToken(String),
    #[error("only one {0} parser directive can be used")]
    DuplicateDirective(String),
    #[error("file with no instructions")]
    NoInstructions,
    #[error("no build stage in current context")]
    NoBuildStage,
    #[error("{}", arg_count_message(instruction, *count))]
    ArgCount {
        instruction: &'static str,
        count: ArgCount,
    },
    #[error("unknown flag for {instruction}: --{flag}")]
    UnknownFlag {
        instruction: &'static str,
        flag: String,
    },
    #[error("{instruction}: {problem} --{flag}")]
    BadFlag {
        instruction: &'static str,
        flag: String,
        problem: FlagProblem,
    },
    #[error("{0}")]
    Json(String),
    #[error(
        "invalid name for build stage: {0:?}, name can't start with a number or contain symbols"
    )]
    InvalidStageName(String),
    #[error("{instruction} cannot accept a heredoc as {what}")]
    BadHeredoc {
        instruction: &'static str,
        what: &'static str,
    },
    #[error("{instruction} --mount: {message}")]
    Mount {
        instruction: &'static str,
        message: String,
    },
    #[error("{0}")]
    Healthcheck(String),
    #[error("{0}")]
    Expansion(#[from] ExpandError),
    #[error("{instruction}: {message}")]
    Invalid {
        instruction: &'static str,
        message: String,
    },
}

/// What is wrong with a flag that is known to the instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagProblem {
    MissingValue,
    Duplicate,
    NotBoolean,
}

impl std::fmt::Display for FlagProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FlagProblem::MissingValue => "missing a value on flag",
            FlagProblem::Duplicate => "duplicate flag specified:",
            FlagProblem::NotBoolean => "expecting a boolean value (true or false) for flag",
        })
    }
}

fn arg_count_message(instruction: &str, count: ArgCount) -> String {
    match count {
        ArgCount::AtLeastOne => format!("{instruction} requires at least one argument"),
        ArgCount::ExactlyOne => format!("{instruction} requires exactly one argument"),
        ArgCount::NoDestination => format!(
            "{instruction} requires at least two arguments, but only one was provided. \
             Destination could not be determined"
        ),
        ArgCount::OneOrThree => format!("{instruction} requires either one or three arguments"),
    }
}

/// A location (file and line range) that errors are attached to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loc<'a> {
    pub file: &'a str,
    pub start: usize,
    pub end: usize,
}

impl Loc<'_> {
    /// `kind` at this location.
    pub fn err(&self, kind: ErrorKind) -> DockerfileError {
        DockerfileError {
            file: self.file.to_string(),
            line: self.start,
            end_line: self.end,
            kind,
        }
    }
}

/// Result with a [`DockerfileError`].
pub type Result<T, E = DockerfileError> = std::result::Result<T, E>;
