//! `skiff network create | ls | inspect | rm | prune | connect | disconnect` over the
//! daemon's `/networks` API, with docker's flags and output.

use clap::{Args, Subcommand};
use hyper::Method;
use serde_json::{json, Value};

use super::output::{print_rows, short_id};
use super::{ps, Res};
use crate::client::{Body, Client, Query};

#[derive(Subcommand, Debug)]
pub enum NetworkCmd {
    /// Create a network.
    Create(CreateArgs),
    /// List networks.
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more networks.
    Inspect(InspectArgs),
    /// Remove one or more networks.
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove all unused networks.
    Prune(PruneArgs),
    /// Connect a container to a network.
    Connect(ConnectArgs),
    /// Disconnect a container from a network.
    Disconnect(DisconnectArgs),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Driver to manage the Network.
    #[arg(short, long, default_value = "bridge")]
    pub driver: String,
    /// Subnet in CIDR format that represents a network segment.
    #[arg(long)]
    pub subnet: Option<String>,
    /// IPv4 Gateway for the master subnet.
    #[arg(long)]
    pub gateway: Option<String>,
    /// Allocate container ip from a sub-range.
    #[arg(long = "ip-range")]
    pub ip_range: Option<String>,
    /// Restrict external access to the network.
    #[arg(long)]
    pub internal: bool,
    /// Enable manual container attachment.
    #[arg(long)]
    pub attachable: bool,
    /// Set metadata on a network.
    #[arg(long)]
    pub label: Vec<String>,
    /// Set driver specific options.
    #[arg(short, long = "opt")]
    pub opt: Vec<String>,
    pub name: String,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Provide filter values (e.g. "driver=bridge").
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Format output using a custom template.
    #[arg(long)]
    pub format: Option<String>,
    /// Only display network IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not truncate the output.
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
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
    /// Do not error if the network does not exist.
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Provide filter values (e.g. "until=<timestamp>").
    #[arg(long)]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct ConnectArgs {
    /// Add network-scoped alias for the container.
    #[arg(long)]
    pub alias: Vec<String>,
    /// IPv4 address (e.g., "172.30.100.104").
    #[arg(long)]
    pub ip: Option<String>,
    pub network: String,
    pub container: String,
}

#[derive(Args, Debug)]
pub struct DisconnectArgs {
    /// Force the container to disconnect from a network.
    #[arg(short, long)]
    pub force: bool,
    pub network: String,
    pub container: String,
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

fn filters(items: &[String]) -> Res<Query> {
    Ok(Query::new().opt(
        "filters",
        (!items.is_empty())
            .then(|| ps::filters_json(items))
            .transpose()?,
    ))
}

pub fn network(c: &Client, cmd: NetworkCmd) -> Res<i32> {
    match cmd {
        NetworkCmd::Create(a) => {
            let mut ipam = json!({"Driver": "default", "Config": []});
            if a.subnet.is_some() || a.gateway.is_some() || a.ip_range.is_some() {
                ipam["Config"] = json!([{"Subnet": a.subnet.unwrap_or_default(),
                    "Gateway": a.gateway.unwrap_or_default(), "IPRange": a.ip_range.unwrap_or_default()}]);
            }
            let body = json!({"Name": a.name, "Driver": a.driver, "IPAM": ipam,
                "Internal": a.internal, "Attachable": a.attachable,
                "Options": kv(&a.opt), "Labels": kv(&a.label)});
            let v: Value = c.json(Method::POST, "/networks/create", Body::Json(body))?;
            println!("{}", v["Id"].as_str().unwrap_or_default());
            Ok(0)
        }
        NetworkCmd::Ls(a) => {
            let q = filters(&a.filter)?;
            let v: Value = c.get(&q.to("/networks"))?;
            let mut rows: Vec<Value> = v.as_array().cloned().unwrap_or_default();
            rows.sort_by(|x, y| x["Name"].as_str().cmp(&y["Name"].as_str()));
            for r in &mut rows {
                let id = r["Id"].as_str().unwrap_or_default().to_string();
                r["ID"] = json!(if a.no_trunc { id } else { short_id(&id) });
            }
            if a.quiet {
                for r in &rows {
                    println!("{}", r["ID"].as_str().unwrap_or_default());
                }
                return Ok(0);
            }
            let headers = json!({"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER",
                "Scope": "SCOPE", "Internal": "INTERNAL", "Labels": "LABELS"});
            print_rows(
                a.format.as_deref(),
                "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}",
                &headers,
                &rows,
            );
            Ok(0)
        }
        NetworkCmd::Inspect(a) => Ok(super::output::inspect_each(
            c,
            "/networks",
            &a.names,
            a.format.as_deref(),
        )),
        NetworkCmd::Rm(a) => {
            let mut failed = false;
            for n in &a.names {
                match c.json::<Value>(Method::DELETE, &format!("/networks/{n}"), Body::Empty) {
                    Ok(_) => println!("{n}"),
                    Err(e) if a.force && e.to_string().contains("not found") => {}
                    Err(e) => {
                        eprintln!("{e}");
                        failed = true;
                    }
                }
            }
            Ok(i32::from(failed))
        }
        NetworkCmd::Prune(a) => {
            if !a.force
                && !super::output::confirm_removal(
                    "all custom networks not used by at least one container",
                )
            {
                return Ok(0);
            }
            let q = filters(&a.filter)?;
            let r: Value = c.json(Method::POST, &q.to("/networks/prune"), Body::Empty)?;
            super::output::print_pruned(&r, "NetworksDeleted", "Networks");
            Ok(0)
        }
        NetworkCmd::Connect(a) => {
            let mut ep = json!({"Aliases": a.alias});
            if let Some(ip) = &a.ip {
                ep["IPAMConfig"] = json!({"IPv4Address": ip});
            }
            let body = json!({"Container": a.container, "EndpointConfig": ep});
            c.post(
                &format!("/networks/{}/connect", a.network),
                Body::Json(body),
            )?;
            Ok(0)
        }
        NetworkCmd::Disconnect(a) => {
            let body = json!({"Container": a.container, "Force": a.force});
            c.post(
                &format!("/networks/{}/disconnect", a.network),
                Body::Json(body),
            )?;
            Ok(0)
        }
    }
}
