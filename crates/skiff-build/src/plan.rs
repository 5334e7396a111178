//! The stage graph: what each stage builds on and reads from, which stages the target needs,
//! and an order that puts independent stages side by side.
//!
//! What matches Docker (BuildKit):
//! - `FROM x` is expanded with the global ARGs (so is `--platform`); `scratch` is the empty
//!   image; a name matching an *earlier* stage (case-insensitive) builds on that stage; any
//!   other name is an image (so `FROM node AS node` uses the image).
//! - `COPY --from=x` and `RUN --mount=from=x` name a stage (by name, or by index when `x` is
//!   a number) or else an image. They are not expanded.
//! - `--target` picks a stage by name (default: the last stage); only the stages it depends
//!   on, directly or not, are built. A dependency cycle is an error.

use std::collections::BTreeSet;

use crate::args::{BuildOptions, GlobalArgs};
use crate::dockerfile::Dockerfile;
use crate::error::{DockerfileError, ErrorKind, Loc};
use crate::instructions::Instr;
use crate::mounts::mount_from;
use crate::shell_lex::Lex;

/// What a stage starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// `FROM scratch`.
    Scratch,
    /// An image reference (to pull or find locally).
    Image(String),
    /// An earlier stage's result.
    Stage(usize),
}

/// Where `COPY --from` / `--mount from=` reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Stage(usize),
    Image(String),
}

/// One stage in the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedStage {
    pub index: usize,
    pub name: Option<String>,
    pub base: Base,
    /// `--platform` after expansion.
    pub platform: Option<String>,
    /// Stages this one needs first (its base and those it copies or mounts from).
    pub deps: BTreeSet<usize>,
    /// Images read by `COPY --from`/`--mount from=` (to pull before the stage runs).
    pub image_sources: BTreeSet<String>,
}

/// The whole plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildPlan {
    pub global: GlobalArgs,
    pub stages: Vec<PlannedStage>,
    /// The stage whose result is the image.
    pub target: usize,
    /// Stages to build (the target and what it needs), in Dockerfile order.
    pub needed: Vec<usize>,
    /// `needed` in waves: every stage of a wave depends only on earlier waves, so the stages
    /// of one wave can be built at the same time.
    pub waves: Vec<Vec<usize>>,
}

/// Why there is no plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Dockerfile(#[from] DockerfileError),
    #[error("failed to reach build target {0} in Dockerfile")]
    TargetNotFound(String),
    #[error("circular dependency detected on stage: {0}")]
    Cycle(String),
}

impl BuildPlan {
    /// Plans the build of `df` for `opts`.
    pub fn new(df: &Dockerfile, opts: &BuildOptions) -> Result<BuildPlan, PlanError> {
        let global = GlobalArgs::resolve(df, opts)?;
        let vars = global.vars();
        let lex = Lex::new(df.escape);
        let mut stages: Vec<PlannedStage> = Vec::new();
        for st in &df.stages {
            let fi = &st.from_instruction;
            let loc = Loc {
                file: &df.file,
                start: fi.start_line,
                end: fi.end_line,
            };
            let exp = |s: &str| {
                lex.process_word(s, &vars)
                    .map_err(|e| loc.err(ErrorKind::Expansion(e)))
            };
            let image = exp(&st.from.image)?;
            if image.is_empty() {
                return Err(PlanError::Dockerfile(loc.err(ErrorKind::Invalid {
                    instruction: "FROM",
                    message: format!("base name ({}) should not be blank", st.from.image),
                })));
            }
            let platform = st.from.platform.as_deref().map(exp).transpose()?;
            let lower = image.to_ascii_lowercase();
            let base = if image == "scratch" {
                Base::Scratch
            } else if let Some(prev) = stages
                .iter()
                .find(|p| p.name.as_deref() == Some(lower.as_str()))
            {
                Base::Stage(prev.index)
            } else {
                Base::Image(image)
            };
            let mut deps = BTreeSet::new();
            if let Base::Stage(i) = base {
                deps.insert(i);
            }
            stages.push(PlannedStage {
                index: st.index,
                name: st.from.stage_name.clone(),
                base,
                platform,
                deps,
                image_sources: BTreeSet::new(),
            });
        }
        // Second pass: COPY --from and mounts may name any stage.
        for st in &df.stages {
            for instr in &st.instructions {
                let refs: Vec<String> = match &instr.kind {
                    Instr::Copy(c) => c.from.iter().cloned().collect(),
                    Instr::Run(r) => r.mount_specs.iter().filter_map(|s| mount_from(s)).collect(),
                    _ => Vec::new(),
                };
                for r in refs {
                    match resolve_source(df, &r) {
                        Some(Source::Stage(i)) => {
                            if i >= df.stages.len() {
                                let loc = Loc {
                                    file: &df.file,
                                    start: instr.start_line,
                                    end: instr.end_line,
                                };
                                return Err(PlanError::Dockerfile(loc.err(ErrorKind::Invalid {
                                    instruction: instr.name(),
                                    message: format!("invalid stage index {r}"),
                                })));
                            }
                            stages[st.index].deps.insert(i);
                        }
                        Some(Source::Image(img)) => {
                            stages[st.index].image_sources.insert(img);
                        }
                        None => {}
                    }
                }
            }
        }
        let target = match &opts.target {
            Some(t) => df
                .stage_by_name(t)
                .map(|s| s.index)
                .ok_or_else(|| PlanError::TargetNotFound(t.clone()))?,
            None => df.stages.len() - 1,
        };
        let needed = needed_stages(&stages, target)?;
        let waves = waves(&stages, &needed);
        Ok(BuildPlan {
            global,
            stages,
            target,
            needed,
            waves,
        })
    }

    /// Every stage the target needs (or one not needed, to skip), by index.
    pub fn is_needed(&self, index: usize) -> bool {
        self.needed.contains(&index)
    }
}

/// What `COPY --from=r` names: a stage (by name, or index when `r` is a number), else an
/// image. `None` for an empty reference.
pub fn resolve_source(df: &Dockerfile, r: &str) -> Option<Source> {
    if r.is_empty() {
        return None;
    }
    let digits = r.strip_prefix(['+', '-']).unwrap_or(r);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        let i = if r.starts_with('-') {
            usize::MAX
        } else {
            digits.parse().unwrap_or(usize::MAX)
        };
        return Some(Source::Stage(i));
    }
    Some(match df.stage_by_name(r) {
        Some(s) => Source::Stage(s.index),
        None => Source::Image(r.to_string()),
    })
}

fn needed_stages(stages: &[PlannedStage], target: usize) -> Result<Vec<usize>, PlanError> {
    // Depth-first with colours: 1 = on the current path, 2 = done.
    let mut colour = vec![0u8; stages.len()];
    let mut stack = vec![(target, false)];
    while let Some((i, children_done)) = stack.pop() {
        if children_done {
            colour[i] = 2;
            continue;
        }
        if colour[i] == 2 {
            continue;
        }
        colour[i] = 1;
        stack.push((i, true));
        for &d in &stages[i].deps {
            match colour[d] {
                0 => stack.push((d, false)),
                1 => return Err(PlanError::Cycle(stage_label(&stages[d]))),
                _ => {}
            }
        }
    }
    Ok((0..stages.len()).filter(|i| colour[*i] == 2).collect())
}

fn stage_label(s: &PlannedStage) -> String {
    s.name.clone().unwrap_or_else(|| s.index.to_string())
}

fn waves(stages: &[PlannedStage], needed: &[usize]) -> Vec<Vec<usize>> {
    let mut done: BTreeSet<usize> = BTreeSet::new();
    let mut left: Vec<usize> = needed.to_vec();
    let mut out = Vec::new();
    while !left.is_empty() {
        let (ready, rest): (Vec<usize>, Vec<usize>) = left
            .iter()
            .partition(|i| stages[**i].deps.iter().all(|d| done.contains(d)));
        if ready.is_empty() {
            break; // cycles were rejected before; never loop forever anyway
        }
        done.extend(&ready);
        out.push(ready);
        left = rest;
    }
    out
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
