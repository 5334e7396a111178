//! Verbs that change a container's state: `stop`, `restart`, `kill`, `rm`, `wait`, `pause`,
//! `unpause`, `rename`, `update`, `container prune`. Each acts on every name given, prints
//! it on success (as docker) and reports failures one per line, exiting 1 if any failed.

use clap::Args;
use hyper::Method;
use serde_json::Value;

use super::flags::ContainerFlags;
use super::{create_body, output, parse, ps, CliError, Res};
use crate::client::{Body, Client, ClientError, Query};

#[derive(Args, Debug)]
pub struct NamesArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct StopArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
    /// Seconds to wait before killing the container.
    #[arg(
        short = 't',
        long = "time",
        alias = "timeout",
        allow_hyphen_values = true
    )]
    pub time: Option<i64>,
    /// Signal to send to the container.
    #[arg(short, long)]
    pub signal: Option<String>,
}

#[derive(Args, Debug)]
pub struct KillArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
    /// Signal to send to the container.
    #[arg(short, long)]
    pub signal: Option<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
    /// Force the removal of a running container (uses SIGKILL).
    #[arg(short, long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container.
    #[arg(short, long)]
    pub volumes: bool,
    /// Remove the specified link.
    #[arg(short, long)]
    pub link: bool,
}

#[derive(Args, Debug)]
pub struct RenameArgs {
    pub container: String,
    pub new_name: String,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
    #[arg(long)]
    pub cpus: Option<String>,
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<String>,
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<i64>,
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    #[arg(short, long)]
    pub memory: Option<String>,
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<String>,
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    /// Restart policy to apply when a container exits.
    #[arg(long)]
    pub restart: Option<String>,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
    /// Provide filter values (e.g. "until=<timestamp>", "label=<key>=<value>").
    #[arg(long)]
    pub filter: Vec<String>,
}

/// Run `f` on each container; print the name on success, the error otherwise.
fn for_each(names: &[String], mut f: impl FnMut(&str) -> Result<(), ClientError>) -> Res<i32> {
    let mut code = 0;
    for n in names {
        match f(n) {
            Ok(()) => println!("{n}"),
            Err(e) => {
                eprintln!("{e}");
                code = 1;
            }
        }
    }
    if code != 0 {
        return Err(CliError::Reported(code));
    }
    Ok(0)
}

pub fn stop(c: &Client, a: StopArgs, restart: bool) -> Res<i32> {
    let verb = if restart { "restart" } else { "stop" };
    let q = Query::new()
        .opt("t", a.time.map(|t| t.to_string()))
        .opt("signal", a.signal.as_deref());
    for_each(&a.containers, |n| {
        c.post(&q.to(&format!("/containers/{n}/{verb}")), Body::Empty)
    })
}

pub fn kill(c: &Client, a: KillArgs) -> Res<i32> {
    let q = Query::new().opt("signal", a.signal.as_deref());
    for_each(&a.containers, |n| {
        c.post(&q.to(&format!("/containers/{n}/kill")), Body::Empty)
    })
}

pub fn rm(c: &Client, a: RmArgs) -> Res<i32> {
    let q = Query::new()
        .add_if(a.force, "force", "1")
        .add_if(a.volumes, "v", "1")
        .add_if(a.link, "link", "1");
    for_each(&a.containers, |n| {
        c.bytes(
            Method::DELETE,
            &q.to(&format!("/containers/{n}")),
            Body::Empty,
        )
        .map(|_| ())
    })
}

/// `pause` / `unpause`.
pub fn each(c: &Client, a: NamesArgs, verb: &str) -> Res<i32> {
    for_each(&a.containers, |n| {
        c.post(&format!("/containers/{n}/{verb}"), Body::Empty)
    })
}

pub fn wait(c: &Client, a: NamesArgs) -> Res<i32> {
    let mut code = 0;
    for n in &a.containers {
        let r = c
            .stream(Method::POST, &format!("/containers/{n}/wait"), Body::Empty)
            .map_err(CliError::from)
            .and_then(|(_, body)| super::run::wait_code(body));
        match r {
            Ok(status) => println!("{status}"),
            Err(e) => {
                eprintln!("{e}");
                code = 1;
            }
        }
    }
    if code != 0 {
        return Err(CliError::Reported(code));
    }
    Ok(0)
}

pub fn rename(c: &Client, a: RenameArgs) -> Res<i32> {
    if a.new_name.trim().is_empty() {
        return Err(CliError::Usage(
            "Error: Neither old nor new names may be empty".into(),
        ));
    }
    let q = Query::new().add("name", &a.new_name);
    c.post(
        &q.to(&format!("/containers/{}/rename", a.container)),
        Body::Empty,
    )?;
    Ok(0)
}

pub fn update(c: &Client, a: UpdateArgs) -> Res<i32> {
    let f = ContainerFlags {
        cpus: a.cpus.clone(),
        cpu_shares: a.cpu_shares.clone(),
        cpuset_cpus: a.cpuset_cpus.clone(),
        cpuset_mems: a.cpuset_mems.clone(),
        memory: a.memory.clone(),
        memory_swap: a.memory_swap.clone(),
        memory_reservation: a.memory_reservation.clone(),
        pids_limit: a.pids_limit.clone(),
        ..Default::default()
    };
    let mut body = create_body::resources(&f).map_err(CliError::Usage)?;
    if let Some(p) = a.cpu_period {
        body.insert("CpuPeriod".into(), p.into());
    }
    if let Some(q) = a.cpu_quota {
        body.insert("CpuQuota".into(), q.into());
    }
    if let Some(w) = a.blkio_weight {
        body.insert("BlkioWeight".into(), w.into());
    }
    if let Some(r) = &a.restart {
        let (name, count) = parse::restart_policy(r).map_err(CliError::Usage)?;
        body.insert(
            "RestartPolicy".into(),
            serde_json::json!({"Name": name, "MaximumRetryCount": count}),
        );
    }
    if body.is_empty() {
        return Err(CliError::Usage(
            "you must provide one or more flags when using this command".into(),
        ));
    }
    let body = Value::Object(body);
    for_each(&a.containers, |n| {
        let r: Value = c.json(
            Method::POST,
            &format!("/containers/{n}/update"),
            Body::Json(body.clone()),
        )?;
        for w in r["Warnings"].as_array().into_iter().flatten() {
            eprintln!("WARNING: {}", w.as_str().unwrap_or_default());
        }
        Ok(())
    })
}

pub fn prune(c: &Client, a: PruneArgs) -> Res<i32> {
    if !a.force && !output::confirm_removal("all stopped containers") {
        return Ok(0);
    }
    let q = Query::new().opt(
        "filters",
        (!a.filter.is_empty())
            .then(|| ps::filters_json(&a.filter))
            .transpose()?,
    );
    let r: Value = c.json(Method::POST, &q.to("/containers/prune"), Body::Empty)?;
    output::print_pruned(&r, "ContainersDeleted", "Containers");
    Ok(0)
}
