//! `skiff runtime`: a runc-compatible command line over `skiff_runtime`.
//!
//! Commands, flags, output and exit codes follow runc 1.1, so that containerd, dockerd
//! (`--add-runtime`) and OCI conformance suites can drive skiff in its place.

pub mod commands;
pub mod console;
mod log;

use std::path::PathBuf;

use clap::{Args, Subcommand};

pub use commands::main_with;

#[derive(Args, Debug)]
#[command(about = "runc-compatible OCI runtime")]
pub struct RuntimeArgs {
    /// Root directory for the storage of container state.
    #[arg(long, global = true, default_value = skiff_runtime::DEFAULT_ROOT)]
    pub root: PathBuf,
    /// Log file (default: stderr).
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long = "log-format", global = true, default_value = "text")]
    pub log_format: String,
    /// Debug logging.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Accepted for compatibility; skiff manages cgroupfs directly.
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// Accepted for compatibility (runc's rootless mode).
    #[arg(long, global = true)]
    pub rootless: Option<String>,
    #[command(subcommand)]
    pub cmd: RuntimeCmd,
}

#[derive(Subcommand, Debug)]
pub enum RuntimeCmd {
    /// Create a new specification file (config.json).
    Spec {
        #[arg(short, long)]
        bundle: Option<PathBuf>,
    },
    /// Create a container; its process waits for `start`.
    Create(CreateArgs),
    /// Start the process of a created container.
    Start { id: String },
    /// Create and start a container.
    Run(RunArgs),
    /// Output the state of a container.
    State { id: String },
    /// Send a signal to the container's init (or every process with --all).
    Kill {
        id: String,
        #[arg(default_value = "SIGTERM")]
        signal: String,
        #[arg(short, long)]
        all: bool,
    },
    /// Delete a container and what it holds.
    Delete {
        id: String,
        #[arg(short, long)]
        force: bool,
    },
    /// Run a new process inside a container.
    Exec(ExecArgs),
    /// List the processes of a container.
    Ps {
        id: String,
        #[arg(short, long, default_value = "table")]
        format: String,
        /// Arguments for ps(1) (default -ef).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// List containers.
    List {
        #[arg(short, long, default_value = "table")]
        format: String,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Suspend every process of a container (cgroup freezer).
    Pause { id: String },
    /// Resume a paused container.
    Resume { id: String },
    /// Update the resource limits of a container.
    Update(UpdateArgs),
    /// Resource usage of a container, as JSON (runc events --stats).
    Events {
        id: String,
        #[arg(long)]
        stats: bool,
        #[arg(long, default_value = "5s")]
        interval: String,
    },
}

#[derive(Args, Debug, Clone)]
pub struct CreateArgs {
    pub id: String,
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: i32,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container's state after it exits.
    #[arg(long)]
    pub keep: bool,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    pub id: String,
    /// Command and arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
    /// Path to a process.json.
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    #[arg(short, long)]
    pub tty: bool,
    #[arg(short, long)]
    pub detach: bool,
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    #[arg(short, long)]
    pub env: Vec<String>,
    /// UID[:GID]
    #[arg(short, long)]
    pub user: Option<String>,
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    #[arg(short, long)]
    pub cap: Vec<String>,
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: i32,
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    #[arg(long)]
    pub apparmor: Option<String>,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    pub id: String,
    /// Resources as OCI JSON from a file ("-" for stdin).
    #[arg(short, long)]
    pub resources: Option<PathBuf>,
    #[arg(long)]
    pub memory: Option<String>,
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    #[arg(long = "memory-swap")]
    pub memory_swap: Option<String>,
    #[arg(long = "cpu-shares")]
    pub cpu_shares: Option<u64>,
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    #[arg(long = "cpu-quota")]
    pub cpu_quota: Option<i64>,
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
}

pub fn main(args: RuntimeArgs) -> i32 {
    log::init(&args);
    main_with(args)
}
