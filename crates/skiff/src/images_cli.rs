//! The image verbs (`pull`, `images`, `rmi`, `tag`, `login`, `logout`), in-process on the
//! store until the daemon exists. Flags and output follow the docker CLI.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::Args;
use skiff_engine::images::{LayerStatus, PullEvent};
use skiff_engine::{EngineConfig, ImageService};
use skiff_registry::{Platform, Reference, RegistryConfig};

use crate::human;

/// Where the engine keeps its data and configuration (global flags).
#[derive(Args, Debug, Clone)]
pub struct EngineArgs {
    /// daemon.json to read (Docker's keys).
    #[arg(long = "config-file", global = true, env = "SKIFF_CONFIG", default_value = skiff_engine::config::DEFAULT_CONFIG_PATH)]
    pub config_file: PathBuf,
    /// Override of the data root (daemon.json `data-root`).
    #[arg(long = "data-root", global = true, env = "SKIFF_DATA_ROOT")]
    pub data_root: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct PullArgs {
    pub name: String,
    #[arg(short, long)]
    pub quiet: bool,
    /// os/arch[/variant]
    #[arg(long)]
    pub platform: Option<String>,
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
}

#[derive(Args, Debug)]
pub struct ImagesArgs {
    /// Repository[:tag] to show.
    pub reference: Option<String>,
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(long)]
    pub digests: bool,
    #[arg(short, long)]
    pub all: bool,
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    #[arg(long)]
    pub format: Option<String>,
    /// dangling=true|false, reference=PATTERN, before=IMAGE, since=IMAGE (repeatable).
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmiArgs {
    #[arg(required = true)]
    pub images: Vec<String>,
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct TagArgs {
    pub source: String,
    pub target: String,
}

#[derive(Args, Debug)]
pub struct LoginArgs {
    pub server: Option<String>,
    #[arg(short, long)]
    pub username: Option<String>,
    #[arg(short, long)]
    pub password: Option<String>,
    #[arg(long = "password-stdin")]
    pub password_stdin: bool,
}

fn fail(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

pub fn service(a: &EngineArgs) -> anyhow::Result<ImageService> {
    let mut cfg = EngineConfig::load(&a.config_file).map_err(fail)?;
    if let Some(r) = &a.data_root {
        cfg.data_root = r.clone();
    }
    let mut rc = RegistryConfig::default();
    for m in &cfg.registry_mirrors {
        rc.mirrors.push(m.parse().map_err(|e| {
            anyhow::anyhow!("{}: registry-mirrors: {m:?}: {e}", a.config_file.display())
        })?);
    }
    rc.insecure = cfg.insecure_registries.clone();
    let (svc, report) =
        ImageService::open(&cfg.data_root, rc, cfg.max_concurrent_downloads).map_err(fail)?;
    if !report.is_clean() {
        tracing::warn!(report = ?report, "store check repaired or found problems");
    }
    Ok(svc)
}

/// The image IDs the containers recorded in the data root use (the daemon's records): the
/// in-process rmi/prune/df must not treat those as unused.
pub fn images_in_use(svc: &ImageService) -> std::collections::HashSet<String> {
    let dir = svc.store.root().join("containers");
    std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| skiff_engine::containers::store::load(&e.path()).ok())
        .map(|c| c.image)
        .collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

pub fn pull(e: &EngineArgs, a: PullArgs) -> anyhow::Result<i32> {
    let svc = service(e)?;
    let platform = match &a.platform {
        Some(p) => p.parse::<Platform>().map_err(fail)?,
        None => Platform::host(),
    };
    if a.all_tags {
        // As docker: a bare repository name; every tag it has, one pull each.
        if a.name.contains('@')
            || a.name
                .rsplit('/')
                .next()
                .is_some_and(|last| last.contains(':'))
        {
            anyhow::bail!("tag can't be used with --all-tags/-a");
        }
        let r = Reference::parse(&a.name).map_err(fail)?;
        let rt = runtime();
        let tags = rt.block_on(svc.registry.list_tags(&r));
        rt.shutdown_timeout(std::time::Duration::from_secs(10));
        let tags = tags.map_err(fail)?;
        if tags.is_empty() {
            anyhow::bail!("{}: the repository has no tags", r.familiar_name());
        }
        for t in tags {
            let name = format!("{}:{t}", r.name());
            pull_image(&svc, &name, &platform, a.quiet, false)?;
        }
        return Ok(0);
    }
    pull_image(&svc, &a.name, &platform, a.quiet, false)?;
    Ok(0)
}

/// Pull with docker's output (to stderr when `to_stderr`, as `docker run` prints it). The
/// tokio runtime is shut down before returning: callers may fork next.
pub fn pull_image(
    svc: &ImageService,
    name: &str,
    platform: &Platform,
    quiet: bool,
    to_stderr: bool,
) -> anyhow::Result<()> {
    let r = Reference::parse(name).map_err(fail)?;
    let out = move || -> Box<dyn Write> {
        if to_stderr {
            Box::new(std::io::stderr().lock())
        } else {
            Box::new(std::io::stdout().lock())
        }
    };
    if !quiet && r.tag() == Some("latest") && !name.contains(':') {
        let _ = writeln!(out(), "Using default tag: latest");
    }
    let tty = if to_stderr {
        std::io::stderr().is_terminal()
    } else {
        std::io::stdout().is_terminal()
    };
    let printer = move |ev: PullEvent| {
        if quiet {
            return;
        }
        let mut out = out();
        match ev {
            PullEvent::Start { repository, tag } => {
                let _ = writeln!(out, "{tag}: Pulling from {}", repo_path(&repository));
            }
            PullEvent::Layer { id, status } => {
                let line = match status {
                    LayerStatus::Waiting => "Pulling fs layer".to_string(),
                    LayerStatus::AlreadyExists => "Already exists".to_string(),
                    LayerStatus::Downloading { current, total } if tty => {
                        format!(
                            "Downloading {}/{}",
                            human::size(current),
                            human::size(total)
                        )
                    }
                    LayerStatus::Downloading { .. } => return,
                    LayerStatus::DownloadComplete => "Download complete".to_string(),
                    LayerStatus::Extracting { current, total } if tty => {
                        format!("Extracting {}/{}", human::size(current), human::size(total))
                    }
                    LayerStatus::Extracting { .. } => return,
                    LayerStatus::PullComplete => "Pull complete".to_string(),
                };
                let _ = writeln!(out, "{id}: {line}");
            }
            PullEvent::Done { digest, .. } => {
                let _ = writeln!(out, "Digest: {digest}");
            }
        }
    };
    let rt = runtime();
    let res = rt.block_on(svc.pull(name, platform, &printer));
    rt.shutdown_timeout(std::time::Duration::from_secs(10));
    let res = res.map_err(fail)?;
    let familiar = r.familiar();
    if quiet {
        let _ = writeln!(out(), "{r}");
    } else {
        if res.fresh {
            let _ = writeln!(out(), "Status: Downloaded newer image for {familiar}");
        } else {
            let _ = writeln!(out(), "Status: Image is up to date for {familiar}");
        }
        if !to_stderr {
            let _ = writeln!(out(), "{r}");
        }
    }
    Ok(())
}

/// "library/busybox" for docker.io official images, as docker prints it.
fn repo_path(familiar: &str) -> String {
    if familiar.contains('/') {
        familiar.to_string()
    } else {
        format!("library/{familiar}")
    }
}

pub fn images(e: &EngineArgs, a: ImagesArgs) -> anyhow::Result<i32> {
    let svc = service(e)?;
    let mut rows = svc.list().map_err(fail)?;
    if let Some(want) = &a.reference {
        let (repo, tag) = match want.rsplit_once(':').filter(|(_, t)| !t.contains('/')) {
            Some((r, t)) => (r.to_string(), Some(t.to_string())),
            None => (want.clone(), None),
        };
        rows.retain(|r| r.repository == repo && tag.as_ref().is_none_or(|t| &r.tag == t));
    }
    apply_filters(&svc, &mut rows, &a.filter)?;
    let id = |s: &str| {
        if a.no_trunc {
            s.to_string()
        } else {
            skiff_engine::images::short_id(&s)
        }
    };
    if a.quiet {
        let mut seen = std::collections::BTreeSet::new();
        for r in &rows {
            if seen.insert(r.id.clone()) {
                println!("{}", id(&r.id));
            }
        }
        return Ok(0);
    }
    if let Some(f) = &a.format {
        for r in &rows {
            let v = serde_json::json!({
                "Repository": r.repository, "Tag": r.tag, "ID": id(&r.id),
                "Digest": r.digest.clone().unwrap_or_else(|| "<none>".into()),
                "CreatedSince": human::ago(r.created.as_deref()), "CreatedAt": r.created.clone().unwrap_or_default(),
                "Size": human::size(r.size),
            });
            println!("{}", render_template(f, &v));
        }
        return Ok(0);
    }
    let mut tw = tabwriter::TabWriter::new(std::io::stdout()).padding(3);
    if a.digests {
        let _ = writeln!(tw, "REPOSITORY\tTAG\tDIGEST\tIMAGE ID\tCREATED\tSIZE");
    } else {
        let _ = writeln!(tw, "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE");
    }
    for r in &rows {
        let created = human::ago(r.created.as_deref());
        if a.digests {
            let d = r.digest.clone().unwrap_or_else(|| "<none>".into());
            let _ = writeln!(
                tw,
                "{}\t{}\t{}\t{}\t{}\t{}",
                r.repository,
                r.tag,
                d,
                id(&r.id),
                created,
                human::size(r.size)
            );
        } else {
            let _ = writeln!(
                tw,
                "{}\t{}\t{}\t{}\t{}",
                r.repository,
                r.tag,
                id(&r.id),
                created,
                human::size(r.size)
            );
        }
    }
    let _ = tw.flush();
    Ok(0)
}

/// `images --filter`: keys combine with AND, repeated `reference` values with OR, as docker.
fn apply_filters(
    svc: &ImageService,
    rows: &mut Vec<skiff_engine::images::ImageSummary>,
    filters: &[String],
) -> anyhow::Result<()> {
    let mut references = Vec::new();
    for f in filters {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("bad format of filter (expected name=value): {f}"))?;
        match k {
            "dangling" => {
                let want = match v {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => anyhow::bail!("invalid filter 'dangling={v}'"),
                };
                rows.retain(|r| (r.repository == "<none>") == want);
            }
            "reference" => references.push(v.to_string()),
            "before" | "since" => {
                let img = svc.resolve(v).map_err(fail)?;
                let created = rows
                    .iter()
                    .find(|r| r.id == img.id)
                    .and_then(|r| r.created.clone());
                rows.retain(|r| match (&r.created, &created) {
                    (Some(c), Some(t)) if k == "before" => c < t,
                    (Some(c), Some(t)) => c > t,
                    _ => false,
                });
            }
            other => anyhow::bail!("invalid filter '{other}'"),
        }
    }
    if !references.is_empty() {
        rows.retain(|r| {
            let full = format!("{}:{}", r.repository, r.tag);
            references
                .iter()
                .any(|p| glob_match(p, &full) || glob_match(p, &r.repository))
        });
    }
    Ok(())
}

/// Go's `path.Match` for `*`, `?` and literal characters (`*` does not cross `/`).
fn glob_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some(('*', rest)) => (0..=n.len())
                .take_while(|&i| i == 0 || n[i - 1] != '/')
                .any(|i| go(rest, &n[i..])),
            Some(('?', rest)) => n.first().is_some_and(|c| *c != '/') && go(rest, &n[1..]),
            Some((c, rest)) => n.first() == Some(c) && go(rest, &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

/// `{{.Field}}` templates and `json` (the subset of Go templates docker users use most).
pub fn render_template(tpl: &str, v: &serde_json::Value) -> String {
    if tpl == "json" || tpl == "{{json .}}" {
        return v.to_string();
    }
    let tpl = tpl
        .strip_prefix("table ")
        .unwrap_or(tpl)
        .replace("\\t", "\t");
    let mut out = String::new();
    let mut rest = tpl.as_str();
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let expr = rest[start + 2..start + end].trim();
        let (json, field) = match expr.strip_prefix("json ") {
            Some(f) => (true, f.trim()),
            None => (false, expr),
        };
        let mut cur = v;
        for part in field
            .trim_start_matches('.')
            .split('.')
            .filter(|p| !p.is_empty())
        {
            cur = cur.get(part).unwrap_or(&serde_json::Value::Null);
        }
        match (json, cur) {
            (true, c) => out.push_str(&c.to_string()),
            (false, serde_json::Value::String(s)) => out.push_str(s),
            (false, serde_json::Value::Null) => out.push_str("<no value>"),
            (false, c) => out.push_str(&c.to_string()),
        }
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    out
}

pub fn rmi(e: &EngineArgs, a: RmiArgs) -> anyhow::Result<i32> {
    let svc = service(e)?;
    let mut code = 0;
    for name in &a.images {
        let used = images_in_use(&svc);
        match svc.remove(name, a.force, &|id| used.contains(id)) {
            Ok(o) => {
                for u in o.untagged {
                    println!("Untagged: {u}");
                }
                for d in o.deleted {
                    println!("Deleted: {d}");
                }
            }
            Err(err) => {
                eprintln!("Error response from daemon: {err}");
                code = 1;
            }
        }
    }
    Ok(code)
}

pub fn tag(e: &EngineArgs, a: TagArgs) -> anyhow::Result<i32> {
    let svc = service(e)?;
    svc.tag(&a.source, &a.target).map_err(fail)?;
    Ok(0)
}

pub fn login(e: &EngineArgs, a: LoginArgs) -> anyhow::Result<i32> {
    let svc = service(e)?;
    let server = a.server.unwrap_or_else(|| "docker.io".into());
    let user = match a.username {
        Some(u) => u,
        None => anyhow::bail!(
            "login: --username is required (interactive prompts are not supported yet)"
        ),
    };
    let password = match (a.password, a.password_stdin) {
        (Some(_), true) => anyhow::bail!("--password and --password-stdin are mutually exclusive"),
        (Some(p), false) => {
            eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
            p
        }
        (None, true) => {
            let mut s = String::new();
            std::io::stdin().read_line(&mut s)?;
            s.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => anyhow::bail!("login: a password is required (--password-stdin)"),
    };
    let creds = skiff_registry::Credentials {
        username: user,
        password,
    };
    runtime()
        .block_on(svc.registry.login(&server, creds))
        .map_err(fail)?;
    println!("Login Succeeded");
    Ok(0)
}

pub fn logout(e: &EngineArgs, server: Option<String>) -> anyhow::Result<i32> {
    let svc = service(e)?;
    let server = server.unwrap_or_else(|| "docker.io".into());
    let removed = runtime()
        .block_on(svc.registry.logout(&server))
        .map_err(fail)?;
    if removed {
        println!("Removing login credentials for {server}");
    } else {
        println!("Not logged in to {server}");
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn glob() {
        assert!(super::glob_match("busy*", "busybox:latest"));
        assert!(super::glob_match("*:latest", "busybox:latest"));
        assert!(!super::glob_match("*", "library/busybox"));
        assert!(super::glob_match("*/busybox", "library/busybox"));
        assert!(super::glob_match("b?sybox", "busybox"));
        assert!(!super::glob_match("alpine*", "busybox"));
    }
}
