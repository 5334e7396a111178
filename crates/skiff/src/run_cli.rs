//! `skiff run`: a container from an image, in the foreground, in-process on skiff's runtime.
//! Until the daemon exists the container is always removed when it exits (as with `--rm`).

use clap::Args;
use skiff_engine::containers::spec::SpecOptions;
use skiff_engine::containers::{run_foreground, RunOptions};
use skiff_engine::ImagesError;
use skiff_registry::Platform;

use crate::images_cli::{pull_image, service, EngineArgs};
use crate::runtime_cli::console;

#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Print help (`-h` is --hostname, as in docker).
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Image to run.
    pub image: String,
    /// Command and arguments (replace the image's CMD).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
    /// Remove the container when it exits (always the case for now).
    #[arg(long)]
    pub rm: bool,
    #[arg(short, long)]
    pub tty: bool,
    #[arg(short, long)]
    pub interactive: bool,
    #[arg(short, long)]
    pub detach: bool,
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    #[arg(short, long)]
    pub workdir: Option<String>,
    #[arg(short, long)]
    pub user: Option<String>,
    #[arg(long)]
    pub entrypoint: Option<String>,
    #[arg(long)]
    pub name: Option<String>,
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    #[arg(long = "read-only")]
    pub read_only: bool,
    #[arg(long)]
    pub privileged: bool,
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    /// none or host (bridge networking comes with the network issue).
    #[arg(long, default_value = "none")]
    pub network: String,
    #[arg(short, long)]
    pub memory: Option<String>,
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<u64>,
    #[arg(long)]
    pub platform: Option<String>,
    /// missing, always or never.
    #[arg(long, default_value = "missing")]
    pub pull: String,
}

pub fn run(e: &EngineArgs, a: RunArgs) -> anyhow::Result<i32> {
    if a.detach {
        anyhow::bail!("run -d needs the skiff daemon, which is not there yet");
    }
    let svc = service(e)?;
    let platform = match &a.platform {
        Some(p) => p.parse::<Platform>().map_err(|e| anyhow::anyhow!("{e}"))?,
        None => Platform::host(),
    };
    let missing = matches!(svc.resolve(&a.image), Err(ImagesError::NotFound(_)));
    match a.pull.as_str() {
        "always" => pull_image(&svc, &a.image, &platform, false, true)?,
        "missing" if missing => {
            let shown = skiff_registry::Reference::parse(&a.image)
                .map(|r| r.familiar())
                .unwrap_or(a.image.clone());
            eprintln!("Unable to find image '{shown}' locally");
            pull_image(&svc, &a.image, &platform, false, true)?;
        }
        "missing" | "never" => {}
        other => anyhow::bail!("invalid pull option: {other:?}: must be missing, always or never"),
    }
    let mut seccomp_unconfined = false;
    let mut no_new_privileges = false;
    for o in &a.security_opt {
        match o.as_str() {
            "seccomp=unconfined" | "seccomp:unconfined" => seccomp_unconfined = true,
            "no-new-privileges" | "no-new-privileges=true" | "no-new-privileges:true" => {
                no_new_privileges = true
            }
            other => anyhow::bail!("unsupported --security-opt {other:?}"),
        }
    }
    let host_network = match a.network.as_str() {
        "none" => false,
        "host" => true,
        other => anyhow::bail!(
            "network {other:?}: only none and host exist until bridge networking lands"
        ),
    };
    let memory = a
        .memory
        .as_deref()
        .map(crate::runtime_cli::commands::parse_size)
        .transpose()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let opts = RunOptions {
        spec: SpecOptions {
            cmd: a.command.clone(),
            entrypoint: a.entrypoint.clone(),
            env: a.env.clone(),
            workdir: a.workdir.clone(),
            user: a.user.clone(),
            tty: a.tty,
            hostname: a.hostname.clone().unwrap_or_default(),
            read_only: a.read_only,
            privileged: a.privileged,
            cap_add: a.cap_add.clone(),
            cap_drop: a.cap_drop.clone(),
            seccomp_unconfined,
            no_new_privileges,
            host_network,
            memory,
            pids_limit: a.pids_limit,
            cpu_shares: a.cpu_shares,
            ..Default::default()
        },
        name: a.name.clone(),
    };
    let (ours, theirs) = if a.tty {
        let (o, t) = console::pair()?;
        (Some(o), Some(t))
    } else {
        (None, None)
    };
    let running =
        run_foreground(&svc, &a.image, opts, theirs).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut raw = None;
    let mut out_thread = None;
    if let Some(sock) = &ours {
        let master = console::recv_master(sock)?;
        if a.interactive {
            raw = Some(console::RawMode::enter());
        }
        out_thread = Some(console::proxy(master));
    }
    let code = running.wait();
    if let Some(t) = out_thread {
        let _ = t.join();
    }
    drop(raw);
    Ok(code)
}
