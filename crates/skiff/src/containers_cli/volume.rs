//! `skiff volume create | ls | inspect | rm | prune` over the daemon's `/volumes` API, with
//! docker's flags and output.

use clap::{Args, Subcommand};
use hyper::Method;
use serde_json::{json, Value};

use super::output::print_rows;
use super::{ps, Res};
use crate::client::{Body, Client, Query};

#[derive(Subcommand, Debug)]
pub enum VolumeCmd {
    /// Create a volume.
    Create(CreateArgs),
    /// List volumes.
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more volumes.
    Inspect(InspectArgs),
    /// Remove one or more volumes.
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove unused local volumes.
    Prune(PruneArgs),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Specify volume driver name.
    #[arg(short, long, default_value = "local")]
    pub driver: String,
    /// Set metadata for a volume.
    #[arg(long)]
    pub label: Vec<String>,
    /// Set driver specific options.
    #[arg(short, long = "opt")]
    pub opt: Vec<String>,
    /// The volume's name (random when absent).
    pub name: Option<String>,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Provide filter values (e.g. "dangling=true").
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Format output using a custom template.
    #[arg(long)]
    pub format: Option<String>,
    /// Only display volume names.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format output using a custom template.
    #[arg(short, long)]
    pub format: Option<String>,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Force the removal of one or more volumes.
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones.
    #[arg(short, long)]
    pub all: bool,
    /// Provide filter values (e.g. "label=<label>").
    #[arg(long)]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

fn kv(items: &[String]) -> serde_json::Map<String, Value> {
    items
        .iter()
        .map(|s| match s.split_once('=') {
            Some((k, v)) => (k.to_string(), json!(v)),
            None => (s.clone(), json!("")),
        })
        .collect()
}

pub fn volume(c: &Client, cmd: VolumeCmd) -> Res<i32> {
    match cmd {
        VolumeCmd::Create(a) => {
            let body = json!({"Name": a.name.unwrap_or_default(), "Driver": a.driver,
                "DriverOpts": kv(&a.opt), "Labels": kv(&a.label)});
            let v: Value = c.json(Method::POST, "/volumes/create", Body::Json(body))?;
            println!("{}", v["Name"].as_str().unwrap_or_default());
            Ok(0)
        }
        VolumeCmd::Ls(a) => {
            let q = Query::new().opt(
                "filters",
                (!a.filter.is_empty())
                    .then(|| ps::filters_json(&a.filter))
                    .transpose()?,
            );
            let r: Value = c.get(&q.to("/volumes"))?;
            let mut rows: Vec<Value> = r["Volumes"].as_array().cloned().unwrap_or_default();
            rows.sort_by(|x, y| x["Name"].as_str().cmp(&y["Name"].as_str()));
            if a.quiet {
                for v in &rows {
                    println!("{}", v["Name"].as_str().unwrap_or_default());
                }
                return Ok(0);
            }
            let headers = json!({"Driver": "DRIVER", "Name": "VOLUME NAME", "Mountpoint": "MOUNTPOINT", "Scope": "SCOPE", "Labels": "LABELS"});
            print_rows(
                a.format.as_deref(),
                "table {{.Driver}}\t{{.Name}}",
                &headers,
                &rows,
            );
            Ok(0)
        }
        VolumeCmd::Inspect(a) => Ok(super::output::inspect_each(
            c,
            "/volumes",
            &a.names,
            a.format.as_deref(),
        )),
        VolumeCmd::Rm(a) => {
            let mut failed = false;
            for n in &a.names {
                let q = Query::new().add_if(a.force, "force", "1");
                match c.json::<Value>(Method::DELETE, &q.to(&format!("/volumes/{n}")), Body::Empty)
                {
                    Ok(_) => println!("{n}"),
                    Err(e) => {
                        eprintln!("{e}");
                        failed = true;
                    }
                }
            }
            Ok(i32::from(failed))
        }
        VolumeCmd::Prune(a) => {
            if !a.force {
                let what = if a.all {
                    "all local volumes not used by at least one container"
                } else {
                    "all anonymous local volumes not used by at least one container"
                };
                if !super::output::confirm_removal(what) {
                    return Ok(0);
                }
            }
            let mut filters = a.filter.clone();
            if a.all {
                filters.push("all=true".into());
            }
            let q = Query::new().opt(
                "filters",
                (!filters.is_empty())
                    .then(|| ps::filters_json(&filters))
                    .transpose()?,
            );
            let r: Value = c.json(Method::POST, &q.to("/volumes/prune"), Body::Empty)?;
            super::output::print_pruned(&r, "VolumesDeleted", "Volumes");
            Ok(0)
        }
    }
}
