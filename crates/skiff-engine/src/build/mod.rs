//! The Dockerfile executor: skiff-build's plan and steps run against the store and runtime.
//!
//! - [`Builder::build`] ([`exec`]): stages of the plan that feed the target, in waves; each
//!   stage from its base image (pulled when missing or with `--pull`), a stage, or scratch.
//! - Steps: RUN in a real container on an overlay snapshot whose parent is the previous layer
//!   ([`run`]: `skiff runtime run`, a child process, so the daemon never forks itself), on
//!   the bridge network by default when the daemon has networking, with its `--mount`s
//!   ([`run_mounts`]; cache mounts persist in [`cache_mounts`]);
//!   COPY/ADD from the context, another stage or an image, or a URL ([`copy`], [`fetch`]);
//!   WORKDIR creates its directory; the rest only change the config.
//! - Each filesystem step's upper dir becomes a layer blob (gzip tar in Docker's whiteout
//!   form) and the same directory becomes the committed snapshot of its chainID, so nothing
//!   is unpacked again ([`layer`]).
//! - Every step's result is in the build cache ([`cache`], its layout documented there).
//! - The final image: config + manifest through the image service's writer, named by each tag.
//!
//! Output is Docker's classic builder's (`Step 1/5 : FROM busybox`, ` ---> Running in …`,
//! ` ---> Using cache`, `Successfully built …`), handed to a [`BuildOutput`].

pub mod cache;
pub mod cache_mounts;
mod copy;
mod exec;
mod fetch;
pub(crate) mod history;
mod layer;
mod rootfs;
mod run;
mod run_mounts;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use cache::{BuildCache, CachePruneReport, CacheRecord, CACHE_LEASE, CACHE_VERSION};

use crate::images::{ImageService, ImagesError};

/// What can go wrong in a build; messages read as Docker's where Docker has one.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{0}")]
    Dockerfile(#[from] skiff_build::DockerfileError),
    #[error("{0}")]
    Plan(#[from] skiff_build::PlanError),
    #[error("{0}")]
    Context(#[from] skiff_build::ContextError),
    #[error("Cannot locate specified Dockerfile: {0}")]
    NoDockerfile(String),
    #[error("{0}")]
    Image(#[from] ImagesError),
    #[error("The command '{command}' returned a non-zero code: {code}")]
    RunFailed { command: String, code: i32 },
    #[error("run {command}: {message}")]
    RunStart { command: String, message: String },
    #[error("{instruction}: {message}")]
    Copy {
        instruction: &'static str,
        message: String,
    },
    #[error("ADD {url}: {message}")]
    Fetch { url: String, message: String },
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{context}: {message}")]
    Store { context: String, message: String },
    /// A `RUN --mount` that cannot be made (named with its line).
    #[error("Dockerfile:{line}: RUN --mount={message}")]
    Mount { line: usize, message: String },
    /// A Dockerfile feature skiff does not execute yet (named with its line).
    #[error("{0}")]
    Unsupported(String),
    #[error("build cache {}: {source}", path.display())]
    Cache {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Network(String),
    #[error("build cancelled")]
    Cancelled,
}

pub(crate) fn io_err(
    op: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> BuildError {
    let path = path.into();
    move |source| BuildError::Io { op, path, source }
}

pub(crate) fn store_e(context: impl Into<String>, e: impl std::fmt::Display) -> BuildError {
    BuildError::Store {
        context: context.into(),
        message: e.to_string(),
    }
}

/// The network RUN steps get (`POST /build`'s `networkmode`, `skiff build --network`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum BuildNetwork {
    /// `default`: the `bridge` network when the daemon has networking, else as `none`.
    #[default]
    Default,
    /// A network namespace with only loopback.
    None,
    /// The host's network namespace.
    Host,
    /// A network by name or id: `bridge` or a user-defined one.
    Named(String),
}

impl BuildNetwork {
    /// Parses the API's `networkmode` / the CLI's `--network`.
    pub fn parse(s: &str) -> Result<BuildNetwork, BuildError> {
        match s {
            "" | "default" => Ok(BuildNetwork::Default),
            "none" => Ok(BuildNetwork::None),
            "host" => Ok(BuildNetwork::Host),
            s if s.starts_with("container:") => Err(BuildError::Network(format!(
                "network mode {s:?} is not supported for builds (default, bridge, none, host or a network name)"
            ))),
            name => Ok(BuildNetwork::Named(name.to_string())),
        }
    }

    /// What RUN actually gets, with networking on (`net_on`) or off.
    pub fn effective(&self, net_on: bool) -> BuildNetwork {
        match self {
            BuildNetwork::Default if net_on => BuildNetwork::Named("bridge".into()),
            BuildNetwork::Default => BuildNetwork::None,
            n => n.clone(),
        }
    }
}

/// What a build is asked for (`docker build`'s flags / `POST /build`'s query).
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    /// The Dockerfile's path in the context (`-f`); `Dockerfile` when empty.
    pub dockerfile: String,
    /// `-t` (each a reference; `:latest` added when no tag).
    pub tags: Vec<String>,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub no_cache: bool,
    /// Pull base images even when present.
    pub pull: bool,
    /// `--label`: added to the final image.
    pub labels: BTreeMap<String, String>,
    /// `-q`: no step output.
    pub quiet: bool,
    pub network: BuildNetwork,
}

/// Where the build's progress goes (Docker's `{"stream": …}` lines in the API).
pub trait BuildOutput: Send + Sync {
    /// Text for the user (whole lines, each ending in `\n`).
    fn stream(&self, text: &str);
    /// Whether the client went away (the build stops at the next step).
    fn cancelled(&self) -> bool {
        false
    }
}

impl<F: Fn(&str) + Send + Sync> BuildOutput for F {
    fn stream(&self, text: &str) {
        self(text)
    }
}

/// What a successful build made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildResult {
    /// `sha256:<hex>` of the image config.
    pub id: String,
    /// The names it got (normalized).
    pub tags: Vec<String>,
    /// Steps answered from the cache / steps executed.
    pub cache_hits: usize,
    pub executed: usize,
}

/// The builder of one data root.
#[derive(Clone)]
pub struct Builder {
    pub images: ImageService,
    /// The runtime's state root for build containers.
    pub runtime_root: PathBuf,
    /// The `skiff` binary that runs RUN steps (`skiff runtime run`).
    pub skiff_bin: PathBuf,
    /// The tokio runtime to pull base images on (a private one when `None`).
    pub handle: Option<tokio::runtime::Handle>,
    /// The daemon's containers, whose networking RUN steps on a network use (`None`, or
    /// networking off: RUN gets `none` or `host` only).
    pub containers: Option<std::sync::Arc<crate::containers::Containers>>,
}

impl Builder {
    /// A builder on `images`, running containers with the runtime state under `runtime_root`.
    pub fn new(images: ImageService, runtime_root: PathBuf) -> Builder {
        Builder {
            images,
            runtime_root,
            skiff_bin: skiff_binary(),
            handle: tokio::runtime::Handle::try_current().ok(),
            containers: None,
        }
    }

    /// The same builder with the daemon's containers (their networking for RUN).
    pub fn with_containers(mut self, c: std::sync::Arc<crate::containers::Containers>) -> Self {
        self.containers = Some(c);
        self
    }

    /// Whether RUN steps can join networks.
    pub fn net_on(&self) -> bool {
        self.containers.as_ref().is_some_and(|c| c.net().is_some())
    }

    /// The build cache of this data root.
    pub fn cache(&self) -> BuildCache {
        BuildCache::new(self.images.store.clone())
    }
}

/// Where the `skiff` binary is: `$SKIFF_BIN`, else `skiff` next to the running executable
/// (or one directory up from a test's `deps/`), else on `$PATH`.
pub fn skiff_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("SKIFF_BIN") {
        return PathBuf::from(p);
    }
    if let Ok(exe) = std::env::current_exe() {
        if exe.file_name().is_some_and(|n| n == "skiff") {
            return exe;
        }
        if let Some(dir) = exe.parent() {
            for d in [Some(dir), dir.parent()].into_iter().flatten() {
                let p = d.join("skiff");
                if p.is_file() {
                    return p;
                }
            }
        }
    }
    PathBuf::from("skiff")
}
