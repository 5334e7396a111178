//! `skiff`: the command-line entry point. Thin: parsing and output; the work is in the
//! library crates.

mod build_cli;
mod client;
mod containers_cli;
mod human;
mod images_cli;
mod images_cli2;
mod run_cli;
mod runtime_cli;

use clap::{Parser, Subcommand};
/// `skiff run` goes through the daemon (as docker's); `skiff run-local` runs in-process,
/// the CLI being the container's monitor (no daemon: used by bench/run-image).
use containers_cli::run as run_verb;
use containers_cli::RunVerb;

#[derive(Parser)]
#[command(
    name = "skiff",
    version,
    about = "skiff: a container engine in the Docker mould"
)]
struct Cli {
    #[command(flatten)]
    engine: images_cli::EngineArgs,
    #[command(flatten)]
    connection: containers_cli::ConnectionArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
enum Command {
    /// The OCI runtime, runc-compatible (create, start, run, exec, kill, delete, ...).
    Runtime(runtime_cli::RuntimeArgs),
    /// Run the daemon: the Docker Engine API on /run/skiff/skiff.sock.
    Daemon(DaemonArgs),
    /// Run a command in a new container.
    Run(run_verb::RunArgs),
    /// Run a command in a new container without a daemon (foreground, removed at exit).
    #[command(name = "run-local", hide = true)]
    RunLocal(run_cli::RunArgs),
    /// Download an image from a registry.
    Pull(images_cli::PullArgs),
    /// List images.
    Images(images_cli::ImagesArgs),
    /// Remove one or more images.
    Rmi(images_cli::RmiArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.
    Tag(images_cli::TagArgs),
    /// Log in to a registry.
    Login(images_cli::LoginArgs),
    /// Log out from a registry.
    Logout { server: Option<String> },
    /// Upload an image to a registry.
    Push(images_cli2::PushArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default).
    Save(images_cli2::SaveArgs),
    /// Load an image from a tar archive or STDIN.
    Load(images_cli2::LoadArgs),
    /// Import the contents from a tarball to create a filesystem image.
    Import(images_cli2::ImportArgs),
    /// Show the history of an image.
    History(images_cli2::HistoryArgs),
    /// Build an image from a Dockerfile (docker's classic builder, through the daemon).
    Build(build_cli::BuildArgs),
    /// Manage builds.
    #[command(subcommand)]
    Builder(build_cli::BuilderCmd),
    /// Manage images.
    #[command(subcommand)]
    Image(ImageCmd),
    /// Manage skiff.
    #[command(subcommand)]
    System(images_cli2::SystemCmd),
    #[command(flatten)]
    Containers(containers_cli::Verbs),
}

#[derive(clap::Args)]
struct DaemonArgs {
    /// Sockets to listen on: unix:///path or tcp://127.0.0.1:PORT (repeatable).
    #[arg(short = 'H', long = "host")]
    hosts: Vec<String>,
    #[arg(short = 'D', long)]
    debug: bool,
    #[arg(short = 'l', long = "log-level")]
    log_level: Option<String>,
    /// text or json
    #[arg(long = "log-format", default_value = "text")]
    log_format: String,
    /// Group owning the unix sockets (default: skiff, when it exists).
    #[arg(short = 'G', long)]
    group: Option<String>,
    /// Runtime state and monitor sockets (default /run/skiff).
    #[arg(long = "exec-root")]
    exec_root: Option<std::path::PathBuf>,
}

#[derive(Subcommand)]
enum ImageCmd {
    /// Download an image from a registry.
    Pull(images_cli::PullArgs),
    /// List images.
    #[command(alias = "list")]
    Ls(images_cli::ImagesArgs),
    /// Remove one or more images.
    #[command(alias = "remove")]
    Rm(images_cli::RmiArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.
    Tag(images_cli::TagArgs),
    /// Upload an image to a registry.
    Push(images_cli2::PushArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default).
    Save(images_cli2::SaveArgs),
    /// Load an image from a tar archive or STDIN.
    Load(images_cli2::LoadArgs),
    /// Import the contents from a tarball to create a filesystem image.
    Import(images_cli2::ImportArgs),
    /// Display detailed information on one or more images.
    Inspect(images_cli2::InspectArgs),
    /// Show the history of an image.
    History(images_cli2::HistoryArgs),
    /// Remove unused images.
    Prune(images_cli2::PruneArgs),
}

/// skiff invoked through a link named `skiff-runtime` (or `runc`): the runtime CLI itself, so
/// containerd's shim or `dockerd --add-runtime` can use it as a drop-in for runc.
#[derive(Parser)]
#[command(
    name = "skiff-runtime",
    version,
    about = "skiff's runc-compatible OCI runtime"
)]
struct RuntimeOnly {
    #[command(flatten)]
    args: runtime_cli::RuntimeArgs,
}

fn runtime_personality() -> bool {
    std::env::args_os()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_name()
                .map(|n| n == "skiff-runtime" || n == "runc")
        })
        .unwrap_or(false)
}

fn main() {
    if runtime_personality() {
        std::process::exit(runtime_cli::main(RuntimeOnly::parse().args));
    }
    let cli: Cli = containers_cli::parse_args();
    if !matches!(cli.command, Command::Runtime(_) | Command::Daemon(_)) {
        // The runtime CLI sets up its own logging (--log, --log-format).
        let filter = tracing_subscriber::EnvFilter::try_from_env("SKIFF_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init();
    }
    let e = &cli.engine;
    let result = match cli.command {
        Command::Runtime(args) => Ok(runtime_cli::main(args)),
        Command::Run(a) => a.execute(e, &cli.connection),
        Command::RunLocal(a) => a.execute(e, &cli.connection),
        Command::Daemon(d) => skiff_daemon::run(skiff_daemon::DaemonOptions {
            // The default file may be missing (defaults); a file named explicitly must exist.
            config_file: (e.config_file
                != std::path::Path::new(skiff_engine::config::DEFAULT_CONFIG_PATH))
            .then(|| e.config_file.clone()),
            hosts: d.hosts,
            data_root: e.data_root.clone(),
            exec_root: d.exec_root,
            debug: d.debug,
            log_level: d.log_level,
            group: d.group,
            log_json: d.log_format == "json",
        })
        .map(|_| 0),
        Command::Pull(a) | Command::Image(ImageCmd::Pull(a)) => images_cli::pull(e, a),
        Command::Images(a) | Command::Image(ImageCmd::Ls(a)) => images_cli::images(e, a),
        Command::Rmi(a) | Command::Image(ImageCmd::Rm(a)) => images_cli::rmi(e, a),
        Command::Tag(a) | Command::Image(ImageCmd::Tag(a)) => images_cli::tag(e, a),
        Command::Login(a) => images_cli::login(e, a),
        Command::Logout { server } => images_cli::logout(e, server),
        Command::Push(a) | Command::Image(ImageCmd::Push(a)) => images_cli2::push(e, a),
        Command::Save(a) | Command::Image(ImageCmd::Save(a)) => images_cli2::save(e, a),
        Command::Load(a) | Command::Image(ImageCmd::Load(a)) => images_cli2::load(e, a),
        Command::Import(a) | Command::Image(ImageCmd::Import(a)) => images_cli2::import(e, a),
        Command::History(a) | Command::Image(ImageCmd::History(a)) => images_cli2::history(e, a),
        Command::Image(ImageCmd::Inspect(a)) => images_cli2::inspect(e, a),
        Command::Image(ImageCmd::Prune(a)) => images_cli2::prune(e, a),
        Command::System(c) => images_cli2::system(e, c),
        Command::Build(a) => Ok(build_cli::main(
            &containers_cli::options(e, &cli.connection),
            build_cli::BuildVerb::Build(a),
        )),
        Command::Builder(b) => Ok(build_cli::main(
            &containers_cli::options(e, &cli.connection),
            build_cli::BuildVerb::Builder(b),
        )),
        Command::Containers(v) => containers_cli::main(e, &cli.connection, v),
    };
    let code = match result {
        Ok(c) => c,
        Err(err) => {
            eprintln!("Error response from daemon: {err:#}");
            1
        }
    };
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definitions_are_consistent() {
        super::Cli::command().debug_assert();
        super::RuntimeOnly::command().debug_assert();
    }
}
