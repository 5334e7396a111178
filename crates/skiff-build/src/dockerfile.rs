//! A parsed Dockerfile: global ARGs and stages of typed instructions.
//!
//! What matches Docker: only ARG may come before the first FROM (those are the global ARGs
//! usable in FROM lines); any other instruction there is `no build stage in current
//! context`. Stage names are case-insensitive. Variables are not expanded here: that happens
//! step by step in [`crate::stage::StageState`], because it depends on build args, on the
//! base image's ENV and on the instructions before.

use crate::error::{DockerfileError, ErrorKind, Loc};
use crate::instructions::{ArgDecl, From, Instr, Instruction};
use crate::lexer::lex;
use crate::parse_instr::parse_instruction;

/// One build stage: a FROM and the instructions after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// 0-based position in the Dockerfile (what `COPY --from=N` means).
    pub index: usize,
    /// The FROM instruction itself.
    pub from_instruction: Instruction,
    /// The FROM's fields (unexpanded).
    pub from: From,
    /// The instructions after FROM, in order.
    pub instructions: Vec<Instruction>,
}

impl Stage {
    /// The stage's name (`AS name`, lower-cased).
    pub fn name(&self) -> Option<&str> {
        self.from.stage_name.as_deref()
    }
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The name used in error messages.
    pub file: String,
    /// The escape token.
    pub escape: char,
    /// `# syntax=` (skiff has one frontend; kept for information).
    pub syntax: Option<String>,
    /// ARG instructions before the first FROM.
    pub global_args: Vec<Instruction>,
    pub stages: Vec<Stage>,
    /// Warnings Docker prints (empty continuation lines, duplicate stage names).
    pub warnings: Vec<String>,
}

impl Dockerfile {
    /// Parses `bytes` (invalid UTF-8 is replaced, as it cannot mean anything to Docker either).
    /// `file` names the Dockerfile in errors (`Dockerfile:7: ...`).
    pub fn parse(file: &str, bytes: &[u8]) -> Result<Dockerfile, DockerfileError> {
        let text = String::from_utf8_lossy(bytes);
        let lexed = lex(file, &text)?;
        let mut global_args = Vec::new();
        let mut stages: Vec<Stage> = Vec::new();
        let mut warnings = lexed.warnings;
        for node in &lexed.nodes {
            let instr = parse_instruction(node, lexed.escape, file)?;
            match &instr.kind {
                Instr::From(from) => {
                    if let Some(name) = &from.stage_name {
                        if stages.iter().any(|s| s.name() == Some(name)) {
                            warnings.push(format!(
                                "{file}:{}: duplicate stage name {name:?}: the first one is used",
                                instr.start_line
                            ));
                        }
                    }
                    stages.push(Stage {
                        index: stages.len(),
                        from: from.clone(),
                        from_instruction: instr,
                        instructions: Vec::new(),
                    });
                }
                Instr::Arg(_) if stages.is_empty() => global_args.push(instr),
                _ => match stages.last_mut() {
                    Some(stage) => stage.instructions.push(instr),
                    None => {
                        let loc = Loc {
                            file,
                            start: instr.start_line,
                            end: instr.end_line,
                        };
                        return Err(loc.err(ErrorKind::NoBuildStage));
                    }
                },
            }
        }
        if stages.is_empty() {
            let line = lexed.nodes.last().map_or(1, |n| n.end);
            let loc = Loc {
                file,
                start: line,
                end: line,
            };
            return Err(loc.err(ErrorKind::NoBuildStage));
        }
        Ok(Dockerfile {
            file: file.to_string(),
            escape: lexed.escape,
            syntax: lexed.syntax,
            global_args,
            stages,
            warnings,
        })
    }

    /// Every ARG declaration before the first FROM, in order.
    pub fn global_arg_decls(&self) -> impl Iterator<Item = &ArgDecl> {
        self.global_args.iter().flat_map(|i| match &i.kind {
            Instr::Arg(a) => a.as_slice(),
            _ => &[],
        })
    }

    /// The stage called `name` (case-insensitive; the first one when names repeat).
    pub fn stage_by_name(&self, name: &str) -> Option<&Stage> {
        let name = name.to_ascii_lowercase();
        self.stages.iter().find(|s| s.name() == Some(name.as_str()))
    }

    /// The number of steps the classic builder counts (`Step N/TOTAL`): every FROM and every
    /// instruction of every stage (global ARGs are not steps).
    pub fn step_count(&self) -> usize {
        self.stages.iter().map(|s| 1 + s.instructions.len()).sum()
    }

    /// All instructions of the stages in order with their classic-builder step number
    /// (1-based): what `Step N/M : ORIGINAL` prints.
    pub fn steps(&self) -> impl Iterator<Item = (usize, &Instruction)> {
        self.stages
            .iter()
            .flat_map(|s| std::iter::once(&s.from_instruction).chain(&s.instructions))
            .enumerate()
            .map(|(i, instr)| (i + 1, instr))
    }
}
