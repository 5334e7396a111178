//! `skiff`: the command-line entry point. Thin: parsing and output; the work is in the
//! library crates.

mod runtime_cli;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "skiff",
    version,
    about = "skiff: a container engine in the Docker mould"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The OCI runtime, runc-compatible (create, start, run, exec, kill, delete, ...).
    Runtime(runtime_cli::RuntimeArgs),
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
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Runtime(args) => runtime_cli::main(args),
    };
    std::process::exit(code);
}
