//! `create` and the daemon-backed `run`: create (pulling through the API when the image is
//! missing, as docker does) → attach before start unless `-d` → wait registered → start →
//! stream until the container's output ends → exit with its code. 125 for daemon/CLI
//! errors, 126/127 when the command cannot be invoked / is not found (docker maps these from
//! the start error's message).

use std::io::IsTerminal;

use clap::Args;
use hyper::Method;
use serde_json::Value;

use super::create_body::{self, Attach};
use super::flags::ContainerFlags;
use super::{attach, pull, report, CliError, Res};
use crate::client::{Body, Client, ConnectOptions, Query};

#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub struct CreateArgs {
    /// Print help (`-h` is --hostname, as in docker).
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    #[command(flatten)]
    pub flags: ContainerFlags,
    /// Image to create the container from.
    pub image: String,
    /// Command and arguments (replace the image's CMD).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Print help (`-h` is --hostname, as in docker).
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Run container in background and print container ID.
    #[arg(short, long)]
    pub detach: bool,
    /// Proxy received signals to the process (not with -t).
    #[arg(long = "sig-proxy", default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub sig_proxy: bool,
    /// Override the key sequence for detaching a container.
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    #[command(flatten)]
    pub flags: ContainerFlags,
    /// Image to run.
    pub image: String,
    /// Command and arguments (replace the image's CMD).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// `skiff run` through the daemon: the exit code (the container's, or 125/126/127).
pub fn run_verb(opts: &ConnectOptions, a: RunArgs) -> i32 {
    let res = Client::connect(opts)
        .map_err(CliError::from)
        .and_then(|c| run(&c, a));
    match res {
        Ok(code) => code,
        Err(CliError::Reported(code)) => code,
        Err(e) => {
            eprintln!("skiff: {e}\n\nRun 'skiff run --help' for more information");
            start_error_code(&e)
        }
    }
}

/// docker's `runStartContainerErr`: 127 when the command was not found, 126 when it could
/// not be invoked, 125 otherwise.
pub fn start_error_code(e: &CliError) -> i32 {
    let m = e.to_string();
    if m.contains("executable file not found")
        || m.contains("no such file or directory")
        || m.contains("system cannot find the file specified")
    {
        127
    } else if m.contains("permission denied") || m.contains("is a directory") {
        126
    } else {
        125
    }
}

pub fn create(c: &Client, a: CreateArgs) -> Res<i32> {
    let attach = Attach {
        stdin: a.flags.interactive,
        stdout: true,
        stderr: true,
    };
    let id = create_container(c, &a.flags, &a.image, &a.command, attach)?;
    println!("{id}");
    Ok(0)
}

fn run(c: &Client, a: RunArgs) -> Res<i32> {
    let f = &a.flags;
    if a.detach && f.rm && f.restart.is_some() {
        return Err(CliError::Usage(
            "conflicting options: cannot specify both --restart and --rm".into(),
        ));
    }
    if !a.detach && f.tty && f.interactive && !std::io::stdin().is_terminal() {
        eprintln!("the input device is not a TTY");
        return Err(CliError::Reported(1));
    }
    let att = Attach {
        stdin: !a.detach && f.interactive,
        stdout: !a.detach,
        stderr: !a.detach,
    };
    let id = create_container(c, f, &a.image, &a.command, att)?;
    if a.detach {
        start_or_cleanup(c, &id, f.rm)?;
        println!("{id}");
        return Ok(0);
    }
    let detach = attach::detach_keys(a.detach_keys.as_deref())?;
    let q = Query::new()
        .add("stream", "1")
        .add_if(att.stdin, "stdin", "1")
        .add("stdout", "1")
        .add("stderr", "1");
    let q = match a.detach_keys.as_deref() {
        Some(k) => q.add("detachKeys", k),
        None => q,
    };
    let stream = c.hijack(&q.to(&format!("/containers/{id}/attach")), Body::Empty)?;
    // Registered before start, so a quick exit is not missed (the daemon answers the
    // headers at once and the body when the condition is met).
    let condition = if f.rm { "removed" } else { "next-exit" };
    let (_, wait_body) = c.stream(
        Method::POST,
        &format!("/containers/{id}/wait?condition={condition}"),
        Body::Empty,
    )?;
    let session = attach::Session::new(c, &id, f.tty, att.stdin && f.tty, a.sig_proxy && !f.tty)?;
    start_or_cleanup(c, &id, f.rm)?;
    session.started();
    let pumped = attach::pump(stream, att.stdin, f.tty, Some(detach));
    drop(session);
    if pumped? {
        return Ok(0);
    }
    wait_code(wait_body)
}

/// Start; on failure remove an `--rm` container (the daemon may not have) and give the
/// error back.
fn start_or_cleanup(c: &Client, id: &str, rm: bool) -> Res<()> {
    if let Err(e) = c.post(&format!("/containers/{id}/start"), Body::Empty) {
        if rm {
            let _ = c.bytes(
                Method::DELETE,
                &format!("/containers/{id}?force=1&v=1"),
                Body::Empty,
            );
        }
        return Err(e.into());
    }
    Ok(())
}

/// The `StatusCode` of a `/wait` answer (its `Error.Message` is an error).
pub fn wait_code(body: impl std::io::Read) -> Res<i32> {
    let v: Value = serde_json::from_reader(body).map_err(|e| {
        CliError::Usage(format!("waiting for the container: unexpected answer: {e}"))
    })?;
    if let Some(m) = v["Error"]["Message"].as_str().filter(|m| !m.is_empty()) {
        return Err(CliError::Usage(format!("waiting for the container: {m}")));
    }
    Ok(v["StatusCode"].as_i64().unwrap_or(0) as i32)
}

/// POST /containers/create, pulling per `--pull` (missing: on "No such image"). Warnings
/// are printed; the full ID is returned. Errors exit 125.
fn create_container(
    c: &Client,
    f: &ContainerFlags,
    image: &str,
    command: &[String],
    att: Attach,
) -> Res<String> {
    let body = create_body::build(f, image, command, att).map_err(CliError::Usage)?;
    let q = Query::new()
        .opt("name", f.name.as_deref())
        .opt("platform", f.platform.as_deref());
    let path = q.to("/containers/create");
    match f.pull.as_str() {
        "always" => pull::pull(c, image, f.platform.as_deref(), f.quiet, true)?,
        "missing" | "never" => {}
        other => {
            return Err(CliError::Usage(format!(
            "invalid pull option: '{other}': must be one of \"always\", \"missing\" or \"never\""
        )))
        }
    }
    let resp: Value = match c.json(Method::POST, &path, Body::Json(body.clone())) {
        Err(e)
            if f.pull == "missing"
                && e.is_not_found()
                && e.daemon_message()
                    .is_some_and(|m| m.contains("No such image")) =>
        {
            eprintln!("Unable to find image '{}' locally", pull::with_tag(image));
            pull::pull(c, image, f.platform.as_deref(), f.quiet, true)?;
            c.json(Method::POST, &path, Body::Json(body))?
        }
        r => r?,
    };
    for w in resp["Warnings"].as_array().into_iter().flatten() {
        if let Some(w) = w.as_str() {
            eprintln!("WARNING: {w}");
        }
    }
    resp["Id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| CliError::Usage(format!("create: the daemon gave no container ID: {resp}")))
}

/// Report a run error with docker's exit-code mapping (for `start -a`).
pub fn report_start(e: &CliError) -> i32 {
    report(e, start_error_code(e))
}
