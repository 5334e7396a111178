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

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Runtime(args) => runtime_cli::main(args),
    };
    std::process::exit(code);
}
