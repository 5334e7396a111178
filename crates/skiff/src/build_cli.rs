//! `skiff build` and `skiff builder prune`: the docker CLI's classic builder (`DOCKER_BUILDKIT=0`)
//! against the daemon's `POST /build`. The context directory is sent as a tar with its
//! .dockerignore applied (the Dockerfile and .dockerignore always go); a Dockerfile outside
//! the context is added to the tar under a private name, as docker does. The daemon's JSON
//! stream is printed as docker prints it; an error ends the build with exit code 1.

use std::collections::BTreeMap;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use hyper::Method;
use serde_json::Value;

use crate::client::{Body, Client, Query};
use crate::containers_cli::{io_err, report, CliError, Res};

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Name of the Dockerfile (default: PATH/Dockerfile).
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// Name and optionally a tag in the name:tag format (repeatable).
    #[arg(short = 't', long = "tag")]
    pub tags: Vec<String>,
    /// Set build-time variables (NAME=VALUE, or NAME to take it from the environment).
    #[arg(long = "build-arg")]
    pub build_args: Vec<String>,
    /// Set the target build stage to build.
    #[arg(long)]
    pub target: Option<String>,
    /// Do not use cache when building the image.
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Always attempt to pull a newer version of the image.
    #[arg(long)]
    pub pull: bool,
    /// Set metadata for an image (KEY=VALUE, repeatable).
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Write the image ID to the file.
    #[arg(long)]
    pub iidfile: Option<PathBuf>,
    /// Suppress the build output and print image ID on success.
    #[arg(short, long)]
    pub quiet: bool,
    /// Networking mode for the RUN instructions during build (default, bridge, none, host or a network name).
    #[arg(long, default_value = "default")]
    pub network: String,
    /// Accepted for compatibility (intermediate containers are always removed).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub rm: Option<String>,
    /// Accepted for compatibility.
    #[arg(long = "force-rm")]
    pub force_rm: bool,
    /// The build context directory.
    pub path: PathBuf,
}

#[derive(Subcommand, Debug)]
pub enum BuilderCmd {
    /// Remove build cache.
    Prune(PruneArgs),
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Remove all unused build cache (all of skiff's cache is unused between builds).
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

fn kv(list: &[String], from_env: bool) -> BTreeMap<String, Option<String>> {
    list.iter()
        .map(|a| match a.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None if from_env => (a.clone(), std::env::var(a).ok()),
            None => (a.clone(), Some(String::new())),
        })
        .collect()
}

/// The context as a tar and the Dockerfile's name inside it.
fn context_tar(a: &BuildArgs) -> Res<(Vec<u8>, String)> {
    let root = &a.path;
    if !root.is_dir() {
        return Err(CliError::Usage(format!(
            "unable to prepare context: path {:?} not found",
            root.display().to_string()
        )));
    }
    let df_path = a.file.clone().unwrap_or_else(|| root.join("Dockerfile"));
    let abs = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let (root_abs, df_abs) = (abs(root), abs(&df_path));
    let inside = df_abs
        .strip_prefix(&root_abs)
        .ok()
        .map(|r| r.to_string_lossy().into_owned());
    let df_name = inside
        .clone()
        .unwrap_or_else(|| ".dockerfile.skiff".to_string());
    let ignore_bytes = std::fs::read(root.join(".dockerignore")).unwrap_or_default();
    let ignore = skiff_build::DockerIgnore::for_context(&ignore_bytes, &df_name)
        .map_err(|e| CliError::Usage(format!("error checking context: {e}")))?;
    let buf = skiff_build::ignore::walk::write_context_tar(root, &ignore, Vec::new())
        .map_err(io_err("error checking context"))?;
    let buf = if inside.is_none() {
        let data = std::fs::read(&df_path).map_err(io_err(format!(
            "unable to prepare context: {}",
            df_path.display()
        )))?;
        append_file(buf, &df_name, &data).map_err(io_err("build context"))?
    } else {
        buf
    };
    Ok((buf, df_name))
}

/// Appends one file to a finished tar (whose two zero blocks end it).
fn append_file(mut tar_bytes: Vec<u8>, name: &str, data: &[u8]) -> std::io::Result<Vec<u8>> {
    while tar_bytes.len() >= 512 && tar_bytes[tar_bytes.len() - 512..].iter().all(|b| *b == 0) {
        tar_bytes.truncate(tar_bytes.len() - 512);
    }
    let mut b = tar::Builder::new(tar_bytes);
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, name, data)?;
    b.into_inner()
}

/// `skiff build`.
pub fn build(c: &Client, a: BuildArgs) -> Res<i32> {
    let (tar_bytes, df_name) = context_tar(&a)?;
    let mut out = std::io::stdout();
    if !a.quiet {
        let _ = writeln!(
            out,
            "Sending build context to Docker daemon  {}",
            crate::human::size4(tar_bytes.len() as u64)
        );
    }
    let json = |m: &BTreeMap<String, Option<String>>| serde_json::to_string(m).unwrap_or_default();
    let mut q = Query::new()
        .add("dockerfile", &df_name)
        .add("buildargs", json(&kv(&a.build_args, true)))
        .add("labels", json(&kv(&a.labels, false)))
        .add_if(a.no_cache, "nocache", "1")
        .add_if(a.pull, "pull", "1")
        .add_if(a.quiet, "q", "1")
        .add("networkmode", &a.network)
        .add_if(a.force_rm, "forcerm", "1")
        .opt("target", a.target.as_deref());
    for t in &a.tags {
        q = q.add("t", t);
    }
    let (_, body) = c.stream(Method::POST, &q.to("/build"), Body::Tar(tar_bytes))?;
    let mut id = None;
    let msgs = serde_json::Deserializer::from_reader(BufReader::new(body)).into_iter::<Value>();
    for m in msgs {
        let m = m.map_err(|e| CliError::Usage(format!("build: bad message from daemon: {e}")))?;
        if let Some(err) = m["errorDetail"]["message"].as_str().or(m["error"].as_str()) {
            let _ = out.flush();
            return Err(CliError::Usage(err.to_string()));
        }
        if let Some(s) = m["stream"].as_str() {
            let _ = out.write_all(s.as_bytes());
            let _ = out.flush();
        }
        if let Some(i) = m["aux"]["ID"].as_str() {
            id = Some(i.to_string());
        }
    }
    if let (Some(f), Some(i)) = (&a.iidfile, &id) {
        std::fs::write(f, i).map_err(io_err(format!("write {}", f.display())))?;
    }
    if id.is_none() {
        return Err(CliError::Usage(
            "build: the daemon ended the stream without a result".into(),
        ));
    }
    Ok(0)
}

/// `skiff builder prune`.
pub fn prune(c: &Client, a: PruneArgs) -> Res<i32> {
    if !a.force {
        eprint!("WARNING! This will remove all dangling build cache.\nAre you sure you want to continue? [y/N] ");
        let mut answer = String::new();
        let _ = std::io::stdin().read_to_string(&mut answer);
        if !answer.trim().eq_ignore_ascii_case("y") {
            return Ok(0);
        }
    }
    let v: Value = c.json(Method::POST, "/build/prune", Body::Empty)?;
    if let Some(ids) = v["CachesDeleted"].as_array().filter(|a| !a.is_empty()) {
        println!("Deleted build cache objects:");
        for i in ids {
            println!("{}", i.as_str().unwrap_or(""));
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        crate::human::size4(v["SpaceReclaimed"].as_u64().unwrap_or(0))
    );
    Ok(0)
}

/// Runs a build verb; the result is the exit code.
pub fn main(opts: &crate::client::ConnectOptions, v: BuildVerb) -> i32 {
    let c = match Client::connect(opts) {
        Ok(c) => c,
        Err(e) => return report(&e.into(), 1),
    };
    let res = match v {
        BuildVerb::Build(a) => build(&c, a),
        BuildVerb::Builder(BuilderCmd::Prune(a)) => prune(&c, a),
    };
    res.unwrap_or_else(|e| report(&e, 1))
}

/// The verbs of this module.
#[allow(clippy::large_enum_variant)] // one per process
pub enum BuildVerb {
    Build(BuildArgs),
    Builder(BuilderCmd),
}
