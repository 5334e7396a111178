//! `exec`: create the exec, start it on a hijacked connection (or detached with `-d`),
//! stream, then exit with the exec's own exit code (`GET /exec/{id}/json`).

use std::io::IsTerminal;

use clap::Args;
use hyper::Method;
use serde_json::{json, Value};

use super::attach::{pump, Session, Target};
use super::{parse, CliError, Res};
use crate::client::{Body, Client};

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Detached mode: run command in the background.
    #[arg(short, long)]
    pub detach: bool,
    /// Keep STDIN open even if not attached.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    pub tty: bool,
    /// Set environment variables.
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Read in a file of environment variables.
    #[arg(long = "env-file")]
    pub env_file: Vec<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Username or UID (format: "<name|uid>[:<group|gid>]").
    #[arg(short, long)]
    pub user: Option<String>,
    /// Give extended privileges to the command.
    #[arg(long)]
    pub privileged: bool,
    /// Override the key sequence for detaching a container.
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    pub container: String,
    /// Command and arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

pub fn exec(c: &Client, a: ExecArgs) -> Res<i32> {
    let mut env = Vec::new();
    for f in &a.env_file {
        env.extend(parse::env_file(f).map_err(CliError::Usage)?);
    }
    for e in &a.env {
        env.extend(parse::env_var(e).map_err(CliError::Usage)?);
    }
    let stdin = a.interactive && !a.detach;
    if stdin && a.tty && !std::io::stdin().is_terminal() {
        return Err(CliError::Usage("the input device is not a TTY".into()));
    }
    let detach = super::attach::detach_keys(a.detach_keys.as_deref())?;
    let body = json!({
        "DetachKeys": a.detach_keys.clone().unwrap_or_default(),
        "User": a.user.clone().unwrap_or_default(),
        "Privileged": a.privileged,
        "Tty": a.tty,
        "AttachStdin": stdin,
        "AttachStdout": !a.detach,
        "AttachStderr": !a.detach,
        "Detach": a.detach,
        "Env": env,
        "WorkingDir": a.workdir.clone().unwrap_or_default(),
        "Cmd": a.command,
    });
    let created: Value = c.json(
        Method::POST,
        &format!("/containers/{}/exec", a.container),
        Body::Json(body),
    )?;
    let id = created["Id"]
        .as_str()
        .ok_or_else(|| CliError::Usage(format!("exec: the daemon gave no exec ID: {created}")))?
        .to_string();
    let start = json!({"Detach": a.detach, "Tty": a.tty});
    if a.detach {
        c.post(&format!("/exec/{id}/start"), Body::Json(start))?;
        return Ok(0);
    }
    let stream = c.hijack(&format!("/exec/{id}/start"), Body::Json(start))?;
    let session = Session::for_target(c, Target::Exec(id.clone()), a.tty, stdin && a.tty, false)?;
    session.started();
    let res = pump(stream, stdin, a.tty, Some(detach));
    drop(session);
    if res? {
        // As the docker CLI: a detached exec is an error exit.
        eprintln!("read escape sequence");
        return Ok(1);
    }
    let info: Value = c.get(&format!("/exec/{id}/json"))?;
    Ok(info["ExitCode"].as_i64().unwrap_or(0) as i32)
}
