//! The remaining image verbs (`push`, `save`, `load`, `import`, `image inspect`, `history`,
//! `image prune`, `system df`), in-process on the store until the daemon exists. Flags and
//! output follow the docker CLI.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::{Args, Subcommand};
use skiff_engine::images::{short_id, ImportRequest, Loaded, PushEvent};

use crate::human;
use crate::images_cli::{render_template, service, EngineArgs};

#[derive(Args, Debug)]
pub struct PushArgs {
    /// NAME[:TAG]
    pub name: String,
    /// Push all tags of the repository.
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// Suppress verbose output.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct SaveArgs {
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Write to a file, instead of STDOUT.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN.
    #[arg(short, long)]
    pub input: Option<PathBuf>,
    /// Suppress the load output.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// A rootfs tarball, or `-` for STDIN.
    pub file: String,
    /// REPOSITORY[:TAG]
    pub reference: Option<String>,
    /// Apply Dockerfile instruction to the created image.
    #[arg(short, long = "change")]
    pub change: Vec<String>,
    /// Set commit message for imported image.
    #[arg(short, long)]
    pub message: Option<String>,
    /// Set platform if server is multi-platform capable.
    #[arg(long)]
    pub platform: Option<String>,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Format output using a custom template.
    #[arg(short, long)]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    pub image: String,
    /// Don't truncate output.
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only show image IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Print sizes and dates in human readable format.
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set)]
    pub human: bool,
    /// Format output using a custom template.
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones.
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Subcommand, Debug)]
pub enum SystemCmd {
    /// Show docker disk usage.
    Df(DfArgs),
}

#[derive(Args, Debug)]
pub struct DfArgs {
    /// Format output using a custom template.
    #[arg(long)]
    pub format: Option<String>,
}

fn fail(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// go-units `HumanSize` (four significant digits), as `system df` and `prune` print.
fn human_size4(bytes: u64) -> String {
    crate::human::size4(bytes)
}

pub fn push(e: &EngineArgs, a: PushArgs) -> anyhow::Result<i32> {
    let svc = service(e)?;
    let quiet = a.quiet;
    let untagged = skiff_registry::Reference::parse_normalized_named(&a.name)
        .map(|r| r.tag().is_none() && r.digest().is_none())
        .unwrap_or(false);
    if !quiet && !a.all_tags && untagged {
        println!("Using default tag: latest");
    }
    let tty = std::io::stdout().is_terminal();
    let printer = move |ev: PushEvent| {
        if quiet {
            return;
        }
        let mut out = std::io::stdout().lock();
        let _ = match ev {
            PushEvent::Start { repository } => {
                writeln!(out, "The push refers to repository [{repository}]")
            }
            PushEvent::Preparing { id } => writeln!(out, "{id}: Preparing"),
            PushEvent::Pushing { id, current, total } if tty => writeln!(
                out,
                "{id}: Pushing {}/{}",
                human::size(current),
                human::size(total)
            ),
            PushEvent::Pushing { .. } => Ok(()),
            PushEvent::Pushed { id } => writeln!(out, "{id}: Pushed"),
            PushEvent::Mounted { id, from } => writeln!(out, "{id}: Mounted from {from}"),
            PushEvent::AlreadyExists { id } => writeln!(out, "{id}: Layer already exists"),
            PushEvent::Done { tag, digest, size } => {
                writeln!(out, "{tag}: digest: {digest} size: {size}")
            }
        };
    };
    let res = runtime()
        .block_on(svc.push(&a.name, a.all_tags, &printer))
        .map_err(fail)?;
    if quiet {
        for r in res {
            println!("{}", r.reference);
        }
    }
    Ok(0)
}

pub fn save(e: &EngineArgs, a: SaveArgs) -> anyhow::Result<i32> {
    let svc = service(e)?;
    match &a.output {
        Some(p) => {
            // Write beside the target and rename, so a failed save leaves no half file.
            let dir = p
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let mut tmp = tempfile::NamedTempFile::new_in(dir)
                .map_err(|err| anyhow::anyhow!("failed to save image: {}: {err}", p.display()))?;
            {
                let mut w = std::io::BufWriter::new(tmp.as_file_mut());
                svc.save(&a.images, &mut w).map_err(fail)?;
                w.flush()?;
            }
            tmp.as_file().sync_all()?;
            tmp.persist(p)
                .map_err(|err| anyhow::anyhow!("failed to save image: {}: {err}", p.display()))?;
        }
        None => {
            let stdout = std::io::stdout();
            if stdout.is_terminal() {
                anyhow::bail!(
                    "cowardly refusing to save to a terminal. Use the -o flag or redirect"
                );
            }
            let mut w = std::io::BufWriter::new(stdout.lock());
            svc.save(&a.images, &mut w).map_err(fail)?;
            w.flush()?;
        }
    }
    Ok(0)
}

pub fn load(e: &EngineArgs, a: LoadArgs) -> anyhow::Result<i32> {
    let svc = service(e)?;
    let loaded = match &a.input {
        Some(p) => {
            let f = std::fs::File::open(p)
                .map_err(|err| anyhow::anyhow!("open {}: {err}", p.display()))?;
            svc.load(std::io::BufReader::new(f))
                .map_err(|err| anyhow::anyhow!("{}: {err}", p.display()))?
        }
        None => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                anyhow::bail!("requested load from stdin, but stdin is empty");
            }
            svc.load(std::io::BufReader::new(stdin.lock()))
                .map_err(fail)?
        }
    };
    // `-q` hides progress only; docker prints what was loaded either way.
    let _ = a.quiet;
    for l in loaded {
        match l {
            Loaded::Name(n) => println!("Loaded image: {n}"),
            Loaded::Id(id) => println!("Loaded image ID: {id}"),
        }
    }
    Ok(0)
}

pub fn import(e: &EngineArgs, a: ImportArgs) -> anyhow::Result<i32> {
    let svc = service(e)?;
    let req = ImportRequest {
        reference: a.reference.clone(),
        changes: a.change.clone(),
        message: a.message.clone(),
        platform: a.platform.clone(),
        source: a.file.clone(),
    };
    let id = if a.file == "-" {
        svc.import(std::io::BufReader::new(std::io::stdin().lock()), &req)
            .map_err(fail)?
    } else {
        let f = std::fs::File::open(&a.file)
            .map_err(|err| anyhow::anyhow!("open {}: {err}", a.file))?;
        svc.import(std::io::BufReader::new(f), &req).map_err(fail)?
    };
    println!("{id}");
    Ok(0)
}

pub fn inspect(e: &EngineArgs, a: InspectArgs) -> anyhow::Result<i32> {
    let svc = service(e)?;
    let mut found = Vec::new();
    let mut code = 0;
    let mut errors = Vec::new();
    for name in &a.images {
        match svc.inspect(name) {
            Ok(v) => found.push(v),
            Err(err) => {
                errors.push(format!("Error: {err}"));
                code = 1;
            }
        }
    }
    match &a.format {
        Some(f) => {
            for v in &found {
                println!("{}", render_template(f, v));
            }
        }
        None => {
            let mut out = String::new();
            pretty(
                &serde_json::Value::Array(found),
                0,
                Some(TOP_ORDER),
                &mut out,
            );
            println!("{out}");
        }
    }
    for err in errors {
        eprintln!("{err}");
    }
    Ok(code)
}

/// Field order of Docker's ImageInspect (Go struct order), and of its Config.
const TOP_ORDER: &[&str] = &[
    "Id",
    "RepoTags",
    "RepoDigests",
    "Parent",
    "Comment",
    "Created",
    "DockerVersion",
    "Author",
    "Config",
    "Architecture",
    "Variant",
    "Os",
    "OsVersion",
    "Size",
    "GraphDriver",
    "RootFS",
    "Metadata",
];
const CONFIG_ORDER: &[&str] = &[
    "Hostname",
    "Domainname",
    "User",
    "AttachStdin",
    "AttachStdout",
    "AttachStderr",
    "ExposedPorts",
    "Tty",
    "OpenStdin",
    "StdinOnce",
    "Env",
    "Cmd",
    "Healthcheck",
    "ArgsEscaped",
    "Image",
    "Volumes",
    "WorkingDir",
    "Entrypoint",
    "NetworkDisabled",
    "MacAddress",
    "OnBuild",
    "Labels",
    "StopSignal",
    "StopTimeout",
    "Shell",
];

/// `json.MarshalIndent(v, "", "    ")`: struct fields in Go's order (`order`), maps sorted.
fn pretty(v: &serde_json::Value, ind: usize, order: Option<&[&str]>, out: &mut String) {
    use serde_json::Value;
    let pad = |n: usize| "    ".repeat(n);
    match v {
        Value::Array(a) if !a.is_empty() => {
            out.push_str("[\n");
            for (i, x) in a.iter().enumerate() {
                out.push_str(&pad(ind + 1));
                pretty(x, ind + 1, order, out);
                out.push_str(if i + 1 < a.len() { ",\n" } else { "\n" });
            }
            out.push_str(&pad(ind));
            out.push(']');
        }
        Value::Object(m) if !m.is_empty() => {
            let mut keys: Vec<&String> = m.keys().collect();
            if let Some(o) = order {
                keys.sort_by_key(|k| o.iter().position(|x| x == k).unwrap_or(o.len()));
            }
            out.push_str("{\n");
            for (i, k) in keys.iter().enumerate() {
                out.push_str(&pad(ind + 1));
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push_str(": ");
                let child = match (order == Some(TOP_ORDER), k.as_str()) {
                    (true, "Config") => Some(CONFIG_ORDER),
                    (true, "RootFS") => Some(&["Type", "Layers"][..]),
                    _ => None,
                };
                pretty(&m[k.as_str()], ind + 1, child, out);
                out.push_str(if i + 1 < keys.len() { ",\n" } else { "\n" });
            }
            out.push_str(&pad(ind));
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// go's `stringutils.Ellipsis`.
fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

pub fn history(e: &EngineArgs, a: HistoryArgs) -> anyhow::Result<i32> {
    let svc = service(e)?;
    let rows = svc.history(&a.image).map_err(fail)?;
    let id = |r: &skiff_engine::images::HistoryEntry| match &r.id {
        Some(i) if a.no_trunc => i.clone(),
        Some(i) => short_id(i),
        None => "<missing>".into(),
    };
    if a.quiet {
        for r in &rows {
            println!("{}", id(r));
        }
        return Ok(0);
    }
    let created = |r: &skiff_engine::images::HistoryEntry| {
        if a.human {
            human::ago(r.created.as_deref())
        } else {
            r.created.clone().unwrap_or_default()
        }
    };
    let size = |s: u64| {
        if a.human {
            human::size(s)
        } else {
            s.to_string()
        }
    };
    let created_by = |r: &skiff_engine::images::HistoryEntry| {
        let c = r.created_by.replace('\t', " ");
        if a.no_trunc {
            c
        } else {
            ellipsis(&c, 45)
        }
    };
    if let Some(f) = &a.format {
        for r in &rows {
            let v = serde_json::json!({
                "ID": id(r), "CreatedSince": human::ago(r.created.as_deref()),
                "CreatedAt": r.created.clone().unwrap_or_default(), "CreatedBy": created_by(r),
                "Size": size(r.size), "Comment": r.comment,
            });
            println!("{}", render_template(f, &v));
        }
        return Ok(0);
    }
    let mut tw = tabwriter::TabWriter::new(std::io::stdout()).padding(3);
    let _ = writeln!(tw, "IMAGE\tCREATED\tCREATED BY\tSIZE\tCOMMENT");
    for r in &rows {
        let _ = writeln!(
            tw,
            "{}\t{}\t{}\t{}\t{}",
            id(r),
            created(r),
            created_by(r),
            size(r.size),
            r.comment
        );
    }
    let _ = tw.flush();
    Ok(0)
}

pub fn prune(e: &EngineArgs, a: PruneArgs) -> anyhow::Result<i32> {
    if !a.force {
        let warning = if a.all {
            "WARNING! This will remove all images without at least one container associated to them."
        } else {
            "WARNING! This will remove all dangling images."
        };
        print!("{warning}\nAre you sure you want to continue? [y/N] ");
        let _ = std::io::stdout().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "Yes") {
            return Ok(0);
        }
    }
    let svc = service(e)?;
    let used = crate::images_cli::images_in_use(&svc);
    let report = svc.prune(a.all, &|id| used.contains(id)).map_err(fail)?;
    if !report.untagged.is_empty() || !report.deleted.is_empty() {
        println!("Deleted Images:");
        for u in &report.untagged {
            println!("untagged: {u}");
        }
        for d in &report.deleted {
            println!("deleted: {d}");
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        human_size4(report.space_reclaimed)
    );
    Ok(0)
}

pub fn system(e: &EngineArgs, cmd: SystemCmd) -> anyhow::Result<i32> {
    match cmd {
        SystemCmd::Df(a) => df(e, a),
    }
}

fn df(e: &EngineArgs, a: DfArgs) -> anyhow::Result<i32> {
    let svc = service(e)?;
    let used = crate::images_cli::images_in_use(&svc);
    let du = svc.disk_usage(&|id| used.contains(id)).map_err(fail)?;
    let cache = skiff_engine::build::BuildCache::new(svc.store.clone()).usage();
    let cache_size: u64 = cache.iter().map(|r| r.size).sum();
    let reclaim = |r: u64, total: u64| match (r * 100).checked_div(total) {
        Some(pct) => format!("{} ({pct}%)", human_size4(r)),
        None => human_size4(r),
    };
    let rows = [
        (
            "Images",
            du.total,
            du.active,
            human_size4(du.size),
            reclaim(du.reclaimable, du.size),
        ),
        ("Containers", 0, 0, "0B".into(), "0B".into()),
        ("Local Volumes", 0, 0, "0B".into(), "0B".into()),
        (
            "Build Cache",
            cache.len(),
            0,
            human_size4(cache_size),
            human_size4(cache_size),
        ),
    ];
    if let Some(f) = &a.format {
        for (t, total, active, size, rec) in &rows {
            let v = serde_json::json!({
                "Type": t, "TotalCount": total.to_string(), "Active": active.to_string(),
                "Size": size, "Reclaimable": rec,
            });
            println!("{}", render_template(f, &v));
        }
        return Ok(0);
    }
    let mut tw = tabwriter::TabWriter::new(std::io::stdout()).padding(3);
    let _ = writeln!(tw, "TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE");
    for (t, total, active, size, rec) in &rows {
        let _ = writeln!(tw, "{t}\t{total}\t{active}\t{size}\t{rec}");
    }
    let _ = tw.flush();
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inspect_prints_in_docker_field_order() {
        let v = serde_json::json!([{"Size": 1, "Id": "x", "Config": {"User": "", "Hostname": "h", "Env": []},
            "RootFS": {"Layers": ["a"], "Type": "layers"}}]);
        let mut out = String::new();
        pretty(&v, 0, Some(TOP_ORDER), &mut out);
        assert_eq!(
            out,
            "[\n    {\n        \"Id\": \"x\",\n        \"Config\": {\n            \"Hostname\": \"h\",\n            \"User\": \"\",\n            \"Env\": []\n        },\n        \"Size\": 1,\n        \"RootFS\": {\n            \"Type\": \"layers\",\n            \"Layers\": [\n                \"a\"\n            ]\n        }\n    }\n]"
        );
        let back: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn sizes_and_ellipsis_like_docker() {
        assert_eq!(human_size4(0), "0B");
        assert_eq!(human_size4(4_261_000), "4.261MB");
        assert_eq!(human_size4(4_260_000), "4.26MB");
        assert_eq!(human_size4(123_456), "123.5kB");
        assert_eq!(ellipsis("abc", 45), "abc");
        let long = "x".repeat(50);
        assert_eq!(ellipsis(&long, 45).chars().count(), 45);
        assert!(ellipsis(&long, 45).ends_with('…'));
    }
}
