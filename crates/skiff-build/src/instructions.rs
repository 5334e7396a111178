//! Typed Dockerfile instructions (BuildKit's `instructions` package), as parsed (variables not
//! yet expanded) or after [`crate::stage::StageState::step`] expanded them.
//!
//! Every instruction keeps its source line range and the logical line Docker's classic builder
//! prints in `Step N/M : ...`. The types serialize to JSON; that JSON (of an expanded
//! instruction) is the instruction part of a cache key.

use serde::Serialize;

use crate::heredoc::Heredoc;
use crate::mounts::{Mount, NetworkMode, SecurityMode};

/// One instruction with where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Instruction {
    /// 1-based first source line.
    #[serde(skip)]
    pub start_line: usize,
    /// 1-based last source line (heredoc bodies included).
    #[serde(skip)]
    pub end_line: usize,
    /// The logical line as written (continuations joined, trimmed), e.g. `RUN echo hi`.
    #[serde(skip)]
    pub original: String,
    /// What it says.
    pub kind: Instr,
}

impl Instruction {
    /// Docker's upper-case instruction name (`RUN`, `COPY`, ...).
    pub fn name(&self) -> &'static str {
        self.kind.name()
    }
}

/// The instructions, one variant each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Instr {
    From(From),
    Arg(Vec<ArgDecl>),
    Run(Run),
    Cmd(CommandLine),
    Entrypoint(CommandLine),
    Env(Vec<KeyValue>),
    Label(Vec<KeyValue>),
    /// Port specs as written (`80`, `8000-8010/udp`, `$PORT`); expanded ones split on spaces.
    Expose(Vec<String>),
    Copy(Copy),
    Add(Copy),
    Workdir(String),
    User(String),
    Volume(Vec<String>),
    /// Always the JSON form.
    Shell(Vec<String>),
    StopSignal(String),
    Healthcheck(Healthcheck),
    /// The trigger instruction's text (`RUN echo hi`), heredoc bodies appended.
    Onbuild(String),
    Maintainer(String),
}

impl Instr {
    /// Docker's upper-case instruction name.
    pub fn name(&self) -> &'static str {
        match self {
            Instr::From(_) => "FROM",
            Instr::Arg(_) => "ARG",
            Instr::Run(_) => "RUN",
            Instr::Cmd(_) => "CMD",
            Instr::Entrypoint(_) => "ENTRYPOINT",
            Instr::Env(_) => "ENV",
            Instr::Label(_) => "LABEL",
            Instr::Expose(_) => "EXPOSE",
            Instr::Copy(_) => "COPY",
            Instr::Add(_) => "ADD",
            Instr::Workdir(_) => "WORKDIR",
            Instr::User(_) => "USER",
            Instr::Volume(_) => "VOLUME",
            Instr::Shell(_) => "SHELL",
            Instr::StopSignal(_) => "STOPSIGNAL",
            Instr::Healthcheck(_) => "HEALTHCHECK",
            Instr::Onbuild(_) => "ONBUILD",
            Instr::Maintainer(_) => "MAINTAINER",
        }
    }
}

/// `FROM [--platform=P] image [AS name]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct From {
    /// The image reference (or earlier stage name, or `scratch`).
    pub image: String,
    /// The stage name, lower-cased (Docker's stage names are case-insensitive).
    pub stage_name: Option<String>,
    pub platform: Option<String>,
}

/// One name of an `ARG` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArgDecl {
    pub name: String,
    /// The default (`ARG name=default`), `None` for `ARG name`.
    pub default: Option<String>,
}

/// `key=value` of ENV and LABEL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

/// The command of RUN, CMD and ENTRYPOINT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandLine {
    /// Exec form: the JSON array. Shell form: one element, the whole command text.
    pub args: Vec<String>,
    /// Shell form: the stage's SHELL is prepended when it runs.
    pub shell_form: bool,
    /// Heredoc bodies (RUN only), in order.
    #[serde(serialize_with = "ser_heredocs")]
    pub heredocs: Vec<Heredoc>,
}

fn ser_heredocs<S: serde::Serializer>(docs: &[Heredoc], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(docs.len()))?;
    for d in docs {
        seq.serialize_element(&(&d.name, d.fd, d.expand, d.chomp, &d.content))?;
    }
    seq.end()
}

/// What a RUN asks the executor to run, after heredocs are taken into account (BuildKit's rules).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunScript {
    /// Run these arguments as they are (exec form).
    Exec(Vec<String>),
    /// Run this text with the stage's SHELL (`SHELL + [text]`).
    Shell(String),
    /// A lone heredoc starting with `#!`: write `data` to a file named `name` (mode 0755),
    /// mount it read-only at `/dev/pipes/NAME` and run that path.
    ShebangFile { name: String, data: String },
}

/// `RUN [--mount=...] [--network=...] [--security=...] command`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Run {
    pub cmd: CommandLine,
    /// The `--mount` values as written; [`Run::mounts`] is their typed form.
    pub mount_specs: Vec<String>,
    /// Typed mounts. Parsing fills the ones without variables; expansion fills all.
    pub mounts: Vec<Mount>,
    pub network: NetworkMode,
    pub security: SecurityMode,
}

impl Run {
    /// What to execute, as BuildKit decides it from the command and its heredocs.
    pub fn script(&self) -> RunScript {
        let c = &self.cmd;
        if !c.shell_form {
            return RunScript::Exec(c.args.clone());
        }
        let text = c.args.first().cloned().unwrap_or_default();
        if c.heredocs.is_empty() {
            return RunScript::Shell(text);
        }
        let lone = crate::heredoc::parse_heredoc(&text)
            .ok()
            .flatten()
            .is_some();
        if lone {
            let doc = &c.heredocs[0];
            let data = doc.body();
            if doc.content.starts_with("#!") {
                return RunScript::ShebangFile {
                    name: doc.name.clone(),
                    data,
                };
            }
            return RunScript::Shell(data);
        }
        let mut full = text;
        for d in &c.heredocs {
            full.push('\n');
            full.push_str(&d.content);
            full.push_str(&d.name);
        }
        RunScript::Shell(full)
    }
}

/// A COPY/ADD source given inline as a heredoc (`COPY <<EOF /dest`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InlineSource {
    /// The heredoc word: the file name the content gets.
    pub name: String,
    /// The content (tabs stripped for `<<-`; expanded after expansion if `expand`).
    pub data: String,
    pub expand: bool,
}

/// COPY and ADD (ADD-only and COPY-only flags are `None`/`false` on the other).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Copy {
    /// Source paths/patterns (wildcards kept as patterns), relative to the context or stage.
    pub sources: Vec<String>,
    /// Heredoc sources.
    pub inline: Vec<InlineSource>,
    /// The last argument.
    pub dest: String,
    /// `--from=<stage name|index|image>` (COPY only; never expanded, as in Docker).
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    /// `--parents` (COPY only): accepted; kept for the executor.
    pub parents: bool,
    /// `--exclude=PATTERN` (repeatable).
    pub exclude: Vec<String>,
    /// ADD only: `--keep-git-dir`.
    pub keep_git_dir: bool,
    /// ADD only: `--checksum=sha256:...`.
    pub checksum: Option<String>,
    /// The JSON form was used.
    pub json: bool,
}

/// HEALTHCHECK.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: turns off an inherited check (config `Test: ["NONE"]`).
    Disable,
    /// `HEALTHCHECK [flags] CMD ...`.
    Check {
        /// `["CMD", args...]` (exec form) or `["CMD-SHELL", text]` (shell form).
        test: Vec<String>,
        /// Durations in nanoseconds; 0 means "not set" (the daemon's default), as in Docker.
        interval: i64,
        timeout: i64,
        start_period: i64,
        start_interval: i64,
        retries: i64,
    },
}
