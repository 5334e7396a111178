//! The container verbs (`create`, `run`, `start`, `ps`, `logs`, `exec`, ...) and `info`,
//! `version`, `events`: a client of the Docker Engine API served by `skiff daemon` (or any
//! daemon speaking it, selected with `-H`/`SKIFF_HOST`). Flags, output and exit codes
//! follow the docker CLI.

mod attach;
mod commit;
mod cp;
mod create_body;
mod exec;
mod flags;
mod inspect;
mod lifecycle;
mod logs;
mod network;
mod output;
mod parse;
mod ps;
mod pull;
pub mod run;
mod stats;
mod system;
mod volume;

use clap::{Args, Subcommand};

use crate::client::{Client, ClientError, ConnectOptions};
use crate::images_cli::EngineArgs;

/// How the CLI reaches the daemon (global flags, before the verb).
#[derive(Args, Debug, Clone)]
pub struct ConnectionArgs {
    /// Daemon socket to connect to (unix:///path or tcp://host:port).
    #[arg(short = 'H', long = "host", env = "SKIFF_HOST")]
    pub host: Option<String>,
    /// Do not start `skiff daemon` when the default socket does not answer.
    #[arg(long = "no-autostart", env = "SKIFF_NO_AUTOSTART",
          value_parser = clap::builder::FalseyValueParser::new())]
    pub no_autostart: bool,
}

/// A failed verb: printed as is on stderr.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Stream(#[from] crate::client::stdcopy::DemuxError),
    /// A bad flag or argument.
    #[error("{0}")]
    Usage(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// Already reported (per-item errors of a multi-item verb); just the exit code.
    #[error("")]
    Reported(i32),
}

pub type Res<T> = Result<T, CliError>;

pub fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> CliError {
    let what = what.into();
    move |source| CliError::Io { what, source }
}

/// Verbs shared by the top level and `skiff container ...`.
#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum Common {
    /// Create a new container.
    Create(run::CreateArgs),
    /// Start one or more stopped containers.
    Start(attach::StartArgs),
    /// Stop one or more running containers.
    Stop(lifecycle::StopArgs),
    /// Restart one or more containers.
    Restart(lifecycle::StopArgs),
    /// Kill one or more running containers.
    Kill(lifecycle::KillArgs),
    /// Remove one or more containers.
    #[command(alias = "remove")]
    Rm(lifecycle::RmArgs),
    /// Fetch the logs of a container.
    Logs(logs::LogsArgs),
    /// Execute a command in a running container.
    Exec(exec::ExecArgs),
    /// Attach local standard input, output, and error streams to a running container.
    Attach(attach::AttachArgs),
    /// Display detailed information on one or more containers (or images).
    Inspect(inspect::InspectArgs),
    /// Display the running processes of a container.
    Top(inspect::TopArgs),
    /// Display a live stream of container(s) resource usage statistics.
    Stats(stats::StatsArgs),
    /// Block until one or more containers stop, then print their exit codes.
    Wait(lifecycle::NamesArgs),
    /// Pause all processes within one or more containers.
    Pause(lifecycle::NamesArgs),
    /// Unpause all processes within one or more containers.
    Unpause(lifecycle::NamesArgs),
    /// Rename a container.
    Rename(lifecycle::RenameArgs),
    /// Update configuration of one or more containers.
    Update(lifecycle::UpdateArgs),
    /// Copy files/folders between a container and the local filesystem.
    Cp(cp::CpArgs),
    /// Inspect changes to files or directories on a container's filesystem.
    Diff(inspect::DiffArgs),
    /// Export a container's filesystem as a tar archive.
    Export(cp::ExportArgs),
    /// Create a new image from a container's changes.
    Commit(commit::CommitArgs),
    /// List port mappings or a specific mapping for the container.
    Port(inspect::PortArgs),
}

/// The top-level verbs this module adds (flattened into skiff's command list).
#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Verbs {
    #[command(flatten)]
    Common(Common),
    /// List containers.
    Ps(ps::PsArgs),
    /// Get real time events from the server.
    Events(system::EventsArgs),
    /// Display system-wide information.
    Info(system::InfoArgs),
    /// Show the skiff version information.
    Version(system::VersionArgs),
    /// Manage containers.
    #[command(subcommand)]
    Container(ContainerCmd),
    /// Manage volumes.
    #[command(subcommand)]
    Volume(volume::VolumeCmd),
    /// Manage networks.
    #[command(subcommand)]
    Network(network::NetworkCmd),
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum ContainerCmd {
    /// Create and run a new container from an image (through the daemon).
    #[command(disable_help_flag = true)]
    Run(run::RunArgs),
    /// List containers.
    #[command(aliases = ["ps", "list"])]
    Ls(ps::PsArgs),
    /// Remove all stopped containers.
    Prune(lifecycle::PruneArgs),
    #[command(flatten)]
    Common(Common),
}

/// `skiff run`'s implementation, so main.rs switches between the in-process `run_cli` and
/// the daemon-backed [`run`] by changing one `use ... as run_verb;` line.
pub trait RunVerb {
    fn execute(self, engine: &EngineArgs, conn: &ConnectionArgs) -> anyhow::Result<i32>;
}

impl RunVerb for crate::run_cli::RunArgs {
    fn execute(self, engine: &EngineArgs, _conn: &ConnectionArgs) -> anyhow::Result<i32> {
        crate::run_cli::run(engine, self)
    }
}

impl RunVerb for run::RunArgs {
    fn execute(self, engine: &EngineArgs, conn: &ConnectionArgs) -> anyhow::Result<i32> {
        Ok(run::run_verb(&options(engine, conn), self))
    }
}

/// Connection options from the global flags; `--data-root`/`--config-file` go to an
/// auto-started daemon.
pub fn options(engine: &EngineArgs, conn: &ConnectionArgs) -> ConnectOptions {
    let mut daemon_args = Vec::new();
    if let Some(r) = &engine.data_root {
        daemon_args.push("--data-root".into());
        daemon_args.push(r.clone().into_os_string());
    }
    daemon_args.push("--config-file".into());
    daemon_args.push(engine.config_file.clone().into_os_string());
    ConnectOptions {
        host: conn.host.clone(),
        autostart: !conn.no_autostart,
        daemon_args,
    }
}

/// Print an error as docker does and give the exit code.
pub fn report(e: &CliError, code: i32) -> i32 {
    match e {
        CliError::Reported(c) => *c,
        e => {
            eprintln!("{e}");
            code
        }
    }
}

/// Run one verb; the result is the process exit code.
pub fn main(engine: &EngineArgs, conn: &ConnectionArgs, v: Verbs) -> anyhow::Result<i32> {
    let opts = options(engine, conn);
    if let Verbs::Version(a) = v {
        return Ok(system::version(&opts, a));
    }
    if let Verbs::Container(ContainerCmd::Run(a)) = v {
        return Ok(run::run_verb(&opts, a));
    }
    let create = matches!(
        v,
        Verbs::Common(Common::Create(_))
            | Verbs::Container(ContainerCmd::Common(Common::Create(_)))
    );
    let fail_code = if create { 125 } else { 1 };
    let c = match Client::connect(&opts) {
        Ok(c) => c,
        Err(e) => return Ok(report(&e.into(), fail_code)),
    };
    let res = match v {
        Verbs::Common(x) | Verbs::Container(ContainerCmd::Common(x)) => common(&c, x),
        Verbs::Ps(a) | Verbs::Container(ContainerCmd::Ls(a)) => ps::ps(&c, a),
        Verbs::Container(ContainerCmd::Prune(a)) => lifecycle::prune(&c, a),
        Verbs::Events(a) => system::events(&c, a),
        Verbs::Info(a) => system::info(&c, a),
        Verbs::Volume(v) => volume::volume(&c, v),
        Verbs::Network(n) => network::network(&c, n),
        Verbs::Version(_) | Verbs::Container(ContainerCmd::Run(_)) => unreachable!("handled above"),
    };
    Ok(res.unwrap_or_else(|e| report(&e, fail_code)))
}

fn common(c: &Client, v: Common) -> Res<i32> {
    match v {
        Common::Create(a) => run::create(c, a),
        Common::Start(a) => attach::start(c, a),
        Common::Stop(a) => lifecycle::stop(c, a, false),
        Common::Restart(a) => lifecycle::stop(c, a, true),
        Common::Kill(a) => lifecycle::kill(c, a),
        Common::Rm(a) => lifecycle::rm(c, a),
        Common::Logs(a) => logs::logs(c, a),
        Common::Exec(a) => exec::exec(c, a),
        Common::Attach(a) => attach::attach(c, a),
        Common::Inspect(a) => inspect::inspect(c, a),
        Common::Top(a) => inspect::top(c, a),
        Common::Stats(a) => stats::stats(c, a),
        Common::Wait(a) => lifecycle::wait(c, a),
        Common::Pause(a) => lifecycle::each(c, a, "pause"),
        Common::Unpause(a) => lifecycle::each(c, a, "unpause"),
        Common::Rename(a) => lifecycle::rename(c, a),
        Common::Update(a) => lifecycle::update(c, a),
        Common::Cp(a) => cp::cp(c, a),
        Common::Diff(a) => inspect::diff(c, a),
        Common::Export(a) => cp::export(c, a),
        Common::Commit(a) => commit::commit(c, a),
        Common::Port(a) => inspect::port(c, a),
    }
}

/// Parse the command line; flag errors of the container verbs exit with 125 as docker's
/// do (help and version output exit 0, other verbs keep clap's code).
pub fn parse_args<P: clap::Parser>() -> P {
    match P::try_parse() {
        Ok(p) => p,
        Err(e) => {
            use clap::error::ErrorKind as K;
            let informational = matches!(
                e.kind(),
                K::DisplayHelp | K::DisplayVersion | K::DisplayHelpOnMissingArgumentOrSubcommand
            );
            if !informational && ours(&P::command()) {
                let _ = e.print();
                std::process::exit(125);
            }
            e.exit()
        }
    }
}

/// Whether the verb on the command line is one of this module's (or `run`).
fn ours(cmd: &clap::Command) -> bool {
    let mine: Vec<String> = Verbs::augment_subcommands(clap::Command::new("x"))
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .chain(["run".to_string()])
        .collect();
    let known: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    std::env::args()
        .skip(1)
        .find(|a| known.contains(a))
        .is_some_and(|verb| mine.contains(&verb))
}
