//! skiff-build: the pure half of skiff's Dockerfile builder.
//!
//! Everything here behaves as Docker's builder does (BuildKit's Dockerfile frontend where
//! the classic builder and BuildKit differ, noted where it matters); each module says what
//! it matches and how. Nothing here runs containers: the executor (in skiff-engine) takes
//! the [`stage::Step`]s and runs RUN in containers, copies files and commits layers.
//!
//! - [`Dockerfile::parse`]: bytes → stages of typed [`Instruction`]s with line ranges
//!   ([`lexer`], [`words`], [`heredoc`], [`parse_instr`], [`flags`], [`mounts`]); errors
//!   are [`DockerfileError`]s: `Dockerfile:7: unknown instruction: RUNN (did you mean RUN?)`.
//! - [`BuildPlan::new`]: global ARGs, FROM resolution, `--target`, stage dependencies and
//!   waves of independent stages ([`plan`], [`args`]).
//! - [`StageState`]: per-stage ARG/ENV scoping, variable expansion ([`shell_lex`]), image
//!   config changes ([`apply`], [`image_config`]) and the action for each step.
//! - [`ignore`]: `.dockerignore` with moby/patternmatcher semantics; context listing and tar.
//! - [`context`]: the context directory, safe unpacking of an uploaded tar, COPY source
//!   resolution and file checksums.
//! - [`mod@cache_key`]: the cache key of a step ([`cache_key()`]).
//! - [`changes`]: `--change` instructions of `commit` and `import` ([`apply_changes`]).
//! - [`units`]: Go durations, sizes, port specs, signal names.
//!
//! Not here (the executor's part): pulling base images and `--from` images, running RUN
//! (mounts, network, the `/dev/pipes` heredoc file), ADD's URLs, git sources and tar
//! auto-extraction, applying `--chown`/`--chmod`/`--link`/`--parents` while copying,
//! creating WORKDIR, committing layers and history, and the build cache store.

pub mod apply;
pub mod args;
pub mod cache_key;
pub mod changes;
pub mod context;
pub mod dockerfile;
pub mod error;
pub mod flags;
#[doc(hidden)]
pub mod fuzzing;
pub mod heredoc;
pub mod ignore;
pub mod image_config;
pub mod instructions;
pub mod lexer;
pub mod mounts;
pub mod parse_instr;
mod parse_special;
pub mod plan;
pub mod shell_lex;
mod shell_pattern;
pub mod stage;
pub mod units;
pub mod words;

pub use apply::ImageState;
pub use args::{unconsumed_build_args, BuildOptions, GlobalArgs, Platform};
pub use cache_key::{cache_key, CacheKeyInput};
pub use changes::{apply_changes, ChangeError};
pub use context::{BuildContext, ContextError, CopyOptions, CopyPlan};
pub use dockerfile::{Dockerfile, Stage};
pub use error::{DockerfileError, ErrorKind};
pub use ignore::DockerIgnore;
pub use image_config::{HealthConfig, ImageConfig};
pub use instructions::{Instr, Instruction, RunScript};
pub use plan::{Base, BuildPlan, PlanError, Source};
pub use stage::{Action, StageState, Step};
