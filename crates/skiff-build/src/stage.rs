//! Building one stage, step by step: variable expansion with Docker's ARG/ENV scoping, the
//! image config changes, and what the executor has to do for each instruction.
//!
//! What matches Docker (BuildKit):
//! - Expanded instructions: ADD, COPY (sources, dest, `--chown`, `--chmod`, `--exclude`,
//!   unquoted heredoc bodies), ENV, EXPOSE (split into words), LABEL, STOPSIGNAL, USER,
//!   VOLUME, WORKDIR, ARG defaults and RUN `--mount` values. RUN, CMD, ENTRYPOINT, SHELL,
//!   HEALTHCHECK, ONBUILD and MAINTAINER are not: the shell expands at run time.
//! - The variables seen are the stage's declared ARGs that have a value, overridden by ENV
//!   (the base image's ENV included) whatever the order. All pairs of one ENV line are
//!   expanded with the values from before that line.
//! - `ARG NAME` takes the build arg, else its default (expanded), else the global value of
//!   the same name (global ARGs and platform args); undeclared names are not visible.
//! - RUN gets the config's ENV, the declared ARGs not overridden by ENV, and the proxy build
//!   args; its cache key gets the declared ARGs (not the undeclared proxy args).

use std::collections::BTreeMap;

use crate::apply::ImageState;
use crate::args::{GlobalArgs, PROXY_ARGS};
use crate::dockerfile::Dockerfile;
use crate::error::{DockerfileError, ErrorKind, Loc};
use crate::image_config::ImageConfig;
use crate::instructions::*;
use crate::lexer::lex;
use crate::mounts::{parse_mount, MountType};
use crate::parse_instr::parse_instruction;
use crate::shell_lex::Lex;

/// What the executor does for one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Run `argv` in a container of the current image with `env`, as the config's USER in its
    /// WORKDIR, then commit the changes. `script` says how `argv` came about (a
    /// [`RunScript::ShebangFile`] must be mounted at `/dev/pipes/NAME` first).
    Run {
        script: RunScript,
        argv: Vec<String>,
        env: Vec<String>,
        /// `NAME=value` of the build args that go into the cache key, sorted.
        cache_args: Vec<String>,
    },
    /// Copy files (the step's instruction is the expanded COPY/ADD).
    Copy,
    /// WORKDIR: the config changed; `path` must exist in the image (created if missing).
    Workdir { path: String },
    /// Only the image config changed (already applied to [`StageState::image`]).
    Config,
}

/// One step: the instruction after expansion and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub instruction: Instruction,
    pub action: Action,
}

/// The state of one stage being built.
#[derive(Debug, Clone)]
pub struct StageState {
    file: String,
    escape: char,
    build_args: BTreeMap<String, String>,
    global: GlobalArgs,
    /// ARGs declared in this stage, with their values.
    args: Vec<(String, Option<String>)>,
    /// The image config so far.
    pub image: ImageState,
}

impl StageState {
    /// Starts a stage of `df` on a base image whose config is `base` (default for `scratch`).
    /// Also returns the base image's ONBUILD triggers, parsed, to be stepped through first.
    pub fn new(
        df: &Dockerfile,
        global: &GlobalArgs,
        build_args: &BTreeMap<String, String>,
        base: ImageConfig,
    ) -> Result<(StageState, Vec<Instruction>), DockerfileError> {
        let (image, triggers) = ImageState::from_base(base);
        let triggers = parse_triggers(&df.file, &triggers)?;
        Ok((
            StageState {
                file: df.file.clone(),
                escape: df.escape,
                build_args: build_args.clone(),
                global: global.clone(),
                args: Vec::new(),
                image,
            },
            triggers,
        ))
    }

    /// The variables instructions are expanded with: declared ARGs, then ENV over them.
    pub fn vars(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        for (k, v) in &self.args {
            match v {
                Some(v) => m.insert(k.clone(), v.clone()),
                None => m.remove(k),
            };
        }
        m.extend(self.image.config.env_pairs());
        m
    }

    fn declared_not_env(&self) -> BTreeMap<String, String> {
        let env: BTreeMap<_, _> = self.image.config.env_pairs().into_iter().collect();
        let mut m = BTreeMap::new();
        for (k, v) in &self.args {
            match v {
                Some(v) if !env.contains_key(k) => m.insert(k.clone(), v.clone()),
                _ => m.remove(k),
            };
        }
        m
    }

    /// RUN's environment: ENV, then declared ARGs not set by ENV, then proxy build args.
    pub fn run_env(&self) -> Vec<String> {
        let mut env: Vec<String> = self.image.config.env.clone().unwrap_or_default();
        let declared = self.declared_not_env();
        env.extend(declared.iter().map(|(k, v)| format!("{k}={v}")));
        for p in PROXY_ARGS {
            let taken = declared.contains_key(p) || self.image.config.env_value(p).is_some();
            if let (Some(v), false) = (self.build_args.get(p), taken) {
                env.push(format!("{p}={v}"));
            }
        }
        env
    }

    /// `NAME=value` of the declared ARGs not set by ENV, sorted: RUN's cache key input.
    pub fn cache_args(&self) -> Vec<String> {
        self.declared_not_env()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    }

    /// Expands `instr`, applies it to the image config and says what to do.
    pub fn step(&mut self, instr: &Instruction) -> Result<Step, DockerfileError> {
        let loc = Loc {
            file: &self.file,
            start: instr.start_line,
            end: instr.end_line,
        };
        let name = instr.kind.name();
        let vars = self.vars();
        let lex = Lex::new(self.escape);
        let word = |s: &str| {
            lex.process_word(s, &vars)
                .map_err(|e| loc.err(ErrorKind::Expansion(e)))
        };
        let words = |v: &[String]| v.iter().map(|s| word(s)).collect::<Result<Vec<_>, _>>();
        let kv = |v: &[KeyValue]| -> Result<Vec<KeyValue>, DockerfileError> {
            v.iter()
                .map(|p| {
                    Ok(KeyValue {
                        key: word(&p.key)?,
                        value: word(&p.value)?,
                    })
                })
                .collect()
        };
        let kind = match &instr.kind {
            Instr::Arg(decls) => {
                let mut out = Vec::new();
                for d in decls {
                    let value = match (self.build_args.get(&d.name), &d.default) {
                        (Some(v), _) => Some(v.clone()),
                        (None, Some(def)) => Some(word(def)?),
                        (None, None) => self.global.get(&d.name).flatten().map(str::to_string),
                    };
                    self.args.push((d.name.clone(), value.clone()));
                    out.push(ArgDecl {
                        name: d.name.clone(),
                        default: value,
                    });
                }
                Instr::Arg(out)
            }
            Instr::Env(p) => Instr::Env(kv(p)?),
            Instr::Label(p) => Instr::Label(kv(p)?),
            Instr::Expose(ports) => {
                let mut out = Vec::new();
                for p in ports {
                    out.extend(
                        lex.process_words(p, &vars)
                            .map_err(|e| loc.err(ErrorKind::Expansion(e)))?,
                    );
                }
                Instr::Expose(out)
            }
            Instr::Workdir(p) => Instr::Workdir(word(p)?),
            Instr::User(u) => Instr::User(word(u)?),
            Instr::StopSignal(s) => Instr::StopSignal(word(s)?),
            Instr::Volume(v) => Instr::Volume(words(v)?),
            Instr::Copy(c) | Instr::Add(c) => {
                let mut body_lex = lex;
                body_lex.skip_process_quotes = true;
                let mut inline = Vec::new();
                for s in &c.inline {
                    let data = if s.expand {
                        body_lex
                            .process_word(&s.data, &vars)
                            .map_err(|e| loc.err(ErrorKind::Expansion(e)))?
                    } else {
                        s.data.clone()
                    };
                    inline.push(InlineSource { data, ..s.clone() });
                }
                let opt = |o: &Option<String>| o.as_deref().map(word).transpose();
                let c = Copy {
                    sources: words(&c.sources)?,
                    inline,
                    dest: word(&c.dest)?,
                    chown: opt(&c.chown)?,
                    chmod: opt(&c.chmod)?,
                    exclude: words(&c.exclude)?,
                    ..c.clone()
                };
                if matches!(instr.kind, Instr::Copy(_)) {
                    Instr::Copy(c)
                } else {
                    Instr::Add(c)
                }
            }
            Instr::Run(r) => {
                let expand = |s: &str| lex.process_word(s, &vars).map_err(|e| e.to_string());
                let mut mounts = Vec::new();
                let mut ssh = 0;
                for spec in &r.mount_specs {
                    let m = parse_mount(spec, Some(&expand), ssh).map_err(|message| {
                        loc.err(ErrorKind::Mount {
                            instruction: "RUN",
                            message,
                        })
                    })?;
                    if let Some(m) = m {
                        ssh += usize::from(m.kind == MountType::Ssh);
                        mounts.push(m);
                    }
                }
                Instr::Run(Run {
                    mounts,
                    ..r.clone()
                })
            }
            other => other.clone(),
        };
        self.image.apply(&kind).map_err(|message| {
            loc.err(ErrorKind::Invalid {
                instruction: name,
                message,
            })
        })?;
        let action = match &kind {
            Instr::Run(r) => {
                let script = r.script();
                let argv = match &script {
                    RunScript::Exec(a) => a.clone(),
                    RunScript::Shell(t) => {
                        let mut v = self.image.config.shell_or_default();
                        v.push(t.clone());
                        v
                    }
                    RunScript::ShebangFile { name, .. } => vec![format!("/dev/pipes/{name}")],
                };
                if argv.is_empty() {
                    return Err(loc.err(ErrorKind::ArgCount {
                        instruction: "RUN",
                        count: crate::error::ArgCount::AtLeastOne,
                    }));
                }
                Action::Run {
                    script,
                    argv,
                    env: self.run_env(),
                    cache_args: self.cache_args(),
                }
            }
            Instr::Copy(_) | Instr::Add(_) => Action::Copy,
            Instr::Workdir(_) => Action::Workdir {
                path: self
                    .image
                    .config
                    .working_dir
                    .clone()
                    .unwrap_or_else(|| "/".into()),
            },
            _ => Action::Config,
        };
        Ok(Step {
            instruction: Instruction {
                kind,
                ..instr.clone()
            },
            action,
        })
    }
}

/// Parses a base image's ONBUILD triggers (each a one-instruction Dockerfile).
pub fn parse_triggers(
    file: &str,
    triggers: &[String],
) -> Result<Vec<Instruction>, DockerfileError> {
    let mut out = Vec::new();
    for (i, t) in triggers.iter().enumerate() {
        let name = format!("{file} (ONBUILD trigger {})", i + 1);
        let lexed = lex(&name, t)?;
        for node in &lexed.nodes {
            let instr = parse_instruction(node, lexed.escape, &name)?;
            if matches!(
                instr.kind,
                Instr::From(_) | Instr::Onbuild(_) | Instr::Maintainer(_)
            ) {
                let loc = Loc {
                    file: &name,
                    start: node.start,
                    end: node.end,
                };
                return Err(loc.err(ErrorKind::Invalid {
                    instruction: "ONBUILD",
                    message: format!("{} isn't allowed as an ONBUILD trigger", instr.name()),
                }));
            }
            out.push(instr);
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "stage_tests.rs"]
mod tests;
