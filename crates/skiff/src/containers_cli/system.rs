//! `version`, `info`, `events`: the daemon's view of itself, printed as docker does.

use std::io::BufReader;

use clap::Args;
use hyper::Method;
use serde_json::{json, Value};

use super::logs::api_timestamp;
use super::output::{bytes_size, rfc3339_nano_fixed};
use super::{ps, report, CliError, Res};
use crate::client::{Body, Client, ConnectOptions, Query};
use crate::images_cli::render_template;

#[derive(Args, Debug)]
pub struct VersionArgs {
    /// Format output using a custom template.
    #[arg(short, long)]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Format output using a custom template.
    #[arg(short, long)]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Show all events created since timestamp.
    #[arg(long)]
    pub since: Option<String>,
    /// Stream events until this timestamp.
    #[arg(long)]
    pub until: Option<String>,
    /// Filter output based on conditions provided (type=container, event=start, ...).
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Format output using a custom template.
    #[arg(long)]
    pub format: Option<String>,
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Printed even when the daemon does not answer (then exit 1 after the client part).
pub fn version(opts: &ConnectOptions, a: VersionArgs) -> i32 {
    let client = json!({
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": format!("{}.{}", crate::client::API_VERSION.0, crate::client::API_VERSION.1),
        "Os": "linux",
        "Arch": arch(),
    });
    let server = Client::connect(opts).map_err(CliError::from).and_then(|c| {
        let mut v: Value = c.get("/version")?;
        v["NegotiatedApiVersion"] = json!(c.api_version());
        Ok(v)
    });
    if let Some(f) = &a.format {
        let data = json!({"Client": client, "Server": server.as_ref().ok()});
        println!("{}", render_template(f, &data));
        return server.map(|_| 0).unwrap_or_else(|e| report(&e, 1));
    }
    println!("Client:");
    println!(
        " Version:           {}",
        client["Version"].as_str().unwrap_or_default()
    );
    println!(
        " API version:       {}",
        client["ApiVersion"].as_str().unwrap_or_default()
    );
    println!(" OS/Arch:           linux/{}", arch());
    let s = match server {
        Ok(s) => s,
        Err(e) => {
            println!();
            return report(&e, 1);
        }
    };
    let f = |k: &str| s[k].as_str().unwrap_or_default().to_string();
    println!();
    println!("Server:");
    println!(" Engine:");
    println!("  Version:          {}", f("Version"));
    println!(
        "  API version:      {} (minimum version {})",
        f("ApiVersion"),
        f("MinAPIVersion")
    );
    println!("  Go version:       {}", f("GoVersion"));
    println!("  Git commit:       {}", f("GitCommit"));
    println!("  Built:            {}", f("BuildTime"));
    println!("  OS/Arch:          {}/{}", f("Os"), f("Arch"));
    println!(
        "  Experimental:     {}",
        s["Experimental"].as_bool().unwrap_or(false)
    );
    for comp in s["Components"].as_array().into_iter().flatten() {
        let name = comp["Name"].as_str().unwrap_or_default();
        if name == "Engine" {
            continue;
        }
        println!(" {name}:");
        println!(
            "  Version:          {}",
            comp["Version"].as_str().unwrap_or_default()
        );
    }
    0
}

pub fn info(c: &Client, a: InfoArgs) -> Res<i32> {
    let v: Value = c.get("/info")?;
    if let Some(f) = &a.format {
        println!("{}", render_template(f, &v));
        return Ok(0);
    }
    let s = |k: &str| match &v[k] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    println!("Client:");
    println!(" Version:    {}", env!("CARGO_PKG_VERSION"));
    println!(" Context:    default");
    println!(" Debug Mode: false");
    println!();
    println!("Server:");
    println!(" Containers: {}", s("Containers"));
    println!("  Running: {}", s("ContainersRunning"));
    println!("  Paused: {}", s("ContainersPaused"));
    println!("  Stopped: {}", s("ContainersStopped"));
    println!(" Images: {}", s("Images"));
    println!(" Server Version: {}", s("ServerVersion"));
    println!(" Storage Driver: {}", s("Driver"));
    println!(" Logging Driver: {}", s("LoggingDriver"));
    println!(" Cgroup Driver: {}", s("CgroupDriver"));
    println!(" Cgroup Version: {}", s("CgroupVersion"));
    if let Some(r) = v["Runtimes"].as_object() {
        let names: Vec<&str> = r.keys().map(String::as_str).collect();
        println!(" Runtimes: {}", names.join(" "));
    }
    println!(" Default Runtime: {}", s("DefaultRuntime"));
    let sec: Vec<&str> = v["SecurityOptions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !sec.is_empty() {
        println!(" Security Options:");
        for o in sec {
            println!("  {}", o.trim_start_matches("name="));
        }
    }
    println!(" Kernel Version: {}", s("KernelVersion"));
    println!(" Operating System: {}", s("OperatingSystem"));
    println!(" OSType: {}", s("OSType"));
    println!(" Architecture: {}", s("Architecture"));
    println!(" CPUs: {}", s("NCPU"));
    println!(
        " Total Memory: {}",
        bytes_size(v["MemTotal"].as_f64().unwrap_or(0.0))
    );
    println!(" Name: {}", s("Name"));
    println!(" ID: {}", s("ID"));
    println!(" Docker Root Dir: {}", s("DockerRootDir"));
    println!(" Debug Mode: {}", s("Debug"));
    println!(" Experimental: {}", s("ExperimentalBuild"));
    let insecure: Vec<&str> = v["RegistryConfig"]["InsecureRegistryCIDRs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !insecure.is_empty() {
        println!(" Insecure Registries:");
        for r in insecure {
            println!("  {r}");
        }
    }
    let mirrors: Vec<&str> = v["RegistryConfig"]["Mirrors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !mirrors.is_empty() {
        println!(" Registry Mirrors:");
        for m in mirrors {
            println!("  {m}");
        }
    }
    println!(" Live Restore Enabled: {}", s("LiveRestoreEnabled"));
    for w in v["Warnings"].as_array().into_iter().flatten() {
        eprintln!("{}", w.as_str().unwrap_or_default());
    }
    Ok(0)
}

/// docker's default event line: `TIME TYPE ACTION ID (k=v, ...)`, attributes sorted.
pub fn event_line(e: &Value) -> String {
    let nanos = e["timeNano"]
        .as_i64()
        .unwrap_or_else(|| e["time"].as_i64().unwrap_or(0) * 1_000_000_000);
    let mut line = format!(
        "{} {} {} {}",
        rfc3339_nano_fixed(nanos),
        e["Type"].as_str().unwrap_or_default(),
        e["Action"].as_str().unwrap_or_default(),
        e["Actor"]["ID"].as_str().unwrap_or_default()
    );
    if let Some(attrs) = e["Actor"]["Attributes"]
        .as_object()
        .filter(|m| !m.is_empty())
    {
        let mut kv: Vec<String> = attrs
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect();
        kv.sort();
        line.push_str(&format!(" ({})", kv.join(", ")));
    }
    line
}

pub fn events(c: &Client, a: EventsArgs) -> Res<i32> {
    let now = chrono::Utc::now();
    let ts = |v: &Option<String>| -> Res<Option<String>> {
        v.as_deref()
            .map(|s| api_timestamp(s, now).map_err(CliError::Usage))
            .transpose()
    };
    let q = Query::new()
        .opt("since", ts(&a.since)?)
        .opt("until", ts(&a.until)?)
        .opt(
            "filters",
            (!a.filter.is_empty())
                .then(|| ps::filters_json(&a.filter))
                .transpose()?,
        );
    let (_, body) = c.stream(Method::GET, &q.to("/events"), Body::Empty)?;
    let de = serde_json::Deserializer::from_reader(BufReader::new(body));
    for e in de.into_iter::<Value>() {
        let e =
            e.map_err(|e| CliError::Usage(format!("events: bad message from the daemon: {e}")))?;
        match a.format.as_deref() {
            Some(f) => println!("{}", render_template(f, &e)),
            None => println!("{}", event_line(&e)),
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_lines_like_docker() {
        std::env::set_var("TZ", "UTC");
        let e = json!({"Type": "container", "Action": "start", "time": 1_700_000_000,
            "timeNano": 1_700_000_000_123_000_000i64,
            "Actor": {"ID": "abc", "Attributes": {"name": "web", "image": "busybox"}}});
        assert_eq!(
            event_line(&e),
            "2023-11-14T22:13:20.123000000Z container start abc (image=busybox, name=web)"
        );
    }
}
