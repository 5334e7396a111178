//! RUN: the command in a real container on the step's mounted layer.
//!
//! The container is skiff's runtime library driven by a child `skiff runtime run` (the
//! runc-compatible foreground mode: its exit code is the container's, its stdout and stderr
//! the container's), so the daemon never forks itself. The spec is the engine's
//! ([`crate::containers::spec::build`]: Docker's default capabilities, seccomp profile,
//! masked paths), with the stage's ENV, USER and WORKDIR, the `RUN --mount`s
//! ([`super::run_mounts`]), and a network: a namespace on a network (`bridge`, the default
//! when the daemon has networking, or a user-defined one) brought up and down by the
//! container service's own code ([`crate::containers::network`]: veth, address, DNS), a
//! private namespace with only loopback (`none`, the default without networking), or the
//! host's (`host`). `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf` (the network's, as a
//! container on it gets them) are bound in only where the image has them, so the layer gets
//! no mount-point files. Mount points the runtime had to create (`/proc`, `/dev`, `/sys`,
//! mount targets) are taken out of the layer afterwards, as Docker's init layer keeps them
//! out of its commits.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use skiff_build::RunScript;

use super::layer::StepLayer;
use super::rootfs::Stubs;
use super::run_mounts::RunMounts;
use super::{io_err, BuildError, BuildNetwork, BuildOutput, Builder};
use crate::containers::model::{Config, Container, HostConfig, NetAttach};
use crate::containers::spec::{self, SpecOptions};
use crate::containers::Containers;

/// What to run.
pub(crate) struct RunSpec<'a> {
    pub argv: &'a [String],
    pub env: &'a [String],
    pub user: Option<&'a str>,
    pub workdir: Option<&'a str>,
    pub script: &'a RunScript,
    pub network: BuildNetwork,
    /// The `--mount`s, ready.
    pub mounts: Option<&'a RunMounts>,
}

/// A build container's endpoint on a network, taken down (in the background: the veth
/// deletion costs tens of milliseconds the build need not wait for) when dropped.
struct NetGuard {
    containers: std::sync::Arc<Containers>,
    id: String,
    netns: std::path::PathBuf,
}

impl NetGuard {
    /// Puts the container `id` on `network`; writes `hosts` and `resolv.conf` into `dir`.
    fn up(b: &Builder, network: &str, id: &str, dir: &Path) -> Result<NetGuard, BuildError> {
        let name = check_network(b, network)?;
        let Some(containers) = b.containers.clone() else {
            return Err(not_found(network));
        };
        let c = Container {
            id: id.to_string(),
            created: chrono::Utc::now(),
            path: String::new(),
            args: Vec::new(),
            config: Config {
                hostname: id[..12].to_string(),
                ..Default::default()
            },
            host_config: HostConfig {
                network_mode: name.clone(),
                ..Default::default()
            },
            state: Default::default(),
            image: String::new(),
            name: format!("/build-{}", &id[..12]),
            restart_count: 0,
            log_path: String::new(),
            log_driver: "none".into(),
            log_opts: Default::default(),
            manually_stopped: false,
            has_been_started: true,
            mount_points: Vec::new(),
            networks: [(name, NetAttach::default())].into(),
            sandbox_key: String::new(),
        };
        let (netns, _) = containers
            .net_up(dir, &c)
            .map_err(|e| BuildError::Network(format!("build container network: {e}")))?;
        let Some(netns) = netns else {
            return Err(not_found(network));
        };
        Ok(NetGuard {
            containers,
            id: id.to_string(),
            netns,
        })
    }
}

impl Drop for NetGuard {
    fn drop(&mut self) {
        let (c, id) = (self.containers.clone(), self.id.clone());
        std::thread::spawn(move || c.net_down(&id));
    }
}

fn not_found(network: &str) -> BuildError {
    BuildError::Network(format!(
        "network {network} not found: networking is off in this daemon (\"bridge\": \"none\")"
    ))
}

/// Checks that RUN can join `network` (by name or id); returns its name.
pub(crate) fn check_network(b: &Builder, network: &str) -> Result<String, BuildError> {
    let Some(net) = b.containers.as_ref().and_then(|c| c.net()) else {
        return Err(not_found(network));
    };
    let res = net
        .networks
        .inspect(network)
        .map_err(|e| BuildError::Network(e.to_string()))?;
    Ok(res.name)
}

const MOUNT_POINTS: [&str; 3] = ["/proc", "/dev", "/sys"];

/// Runs `spec` in a container on `layer` (mounted), streaming its output to `out`.
pub(crate) fn run_in(
    b: &Builder,
    layer: &StepLayer,
    spec: &RunSpec<'_>,
    out: &dyn BuildOutput,
) -> Result<(), BuildError> {
    let id = crate::containers::random_id();
    out.stream(&format!(" ---> Running in {}\n", &id[..12]));
    let command = spec.argv.join(" ");
    let root = &layer.rootfs;
    let mut stubs = Stubs::default();
    for p in MOUNT_POINTS {
        stubs
            .add(root, p)
            .map_err(io_err("resolve", root.join(p)))?;
    }
    let network = spec.network.effective(b.net_on());
    let host_net = network == BuildNetwork::Host;
    let net = match &network {
        BuildNetwork::Named(n) => Some(NetGuard::up(b, n, &id, &layer.dir)?),
        _ => None,
    };
    let mut extra = extra_mounts(layer, &id, spec.script, host_net, net.is_some(), &mut stubs)?;
    if let Some(m) = spec.mounts {
        extra.extend(m.specs.iter().cloned());
    }
    let opts = SpecOptions {
        args: Some(spec.argv.to_vec()),
        env: spec.env.to_vec(),
        workdir: spec.workdir.map(str::to_string),
        user: Some(spec.user.unwrap_or("").to_string()),
        hostname: id[..12].to_string(),
        container_id: id.clone(),
        host_network: host_net,
        cgroup_parent: "/skiff-build".into(),
        ..Default::default()
    };
    let mut config = spec::build(root, None, &opts, extra).map_err(|e| BuildError::RunStart {
        command: command.clone(),
        message: e.to_string(),
    })?;
    if let Some(g) = &net {
        spec::join_netns(&mut config, &g.netns);
    }
    let cfg_path = layer.dir.join("config.json");
    std::fs::write(&cfg_path, serde_json::to_vec(&config).unwrap_or_default())
        .map_err(io_err("write", &cfg_path))?;
    std::fs::create_dir_all(&b.runtime_root).map_err(io_err("create", &b.runtime_root))?;
    let (mut reader, writer) = std::io::pipe().map_err(io_err("pipe", &layer.dir))?;
    let writer2 = writer.try_clone().map_err(io_err("pipe", &layer.dir))?;
    let t0 = std::time::Instant::now();
    let mut child = Command::new(&b.skiff_bin)
        .arg("runtime")
        .arg("--root")
        .arg(&b.runtime_root)
        .arg("run")
        .arg("--bundle")
        .arg(&layer.dir)
        .arg(&id)
        .env_remove("SKIFF_LOG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(writer2)
        .spawn()
        .map_err(|e| BuildError::RunStart {
            command: command.clone(),
            message: format!("start {}: {e}", b.skiff_bin.display()),
        })?;
    // Our copies of the write end went into the child: reading ends when it (and the
    // container, whose pid namespace dies with its init) has exited.
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        pending.extend_from_slice(&buf[..n]);
        if let Some(pos) = pending.iter().rposition(|c| *c == b'\n') {
            let rest = pending.split_off(pos + 1);
            out.stream(&String::from_utf8_lossy(&pending));
            pending = rest;
        }
    }
    if !pending.is_empty() {
        pending.push(b'\n');
        out.stream(&String::from_utf8_lossy(&pending));
    }
    let status = child.wait().map_err(|e| BuildError::RunStart {
        command: command.clone(),
        message: e.to_string(),
    })?;
    // The runtime removes the container; make sure, whatever happened to it.
    let rt = skiff_runtime::Runtime::new(&b.runtime_root);
    if let Ok(st) = rt.load(&id) {
        let _ = rt.destroy(&st);
    }
    drop(net);
    let code = status.code().unwrap_or(128 + 9);
    tracing::debug!(container = %id, code, ms = t0.elapsed().as_secs_f64() * 1e3, "build container exited");
    if code != 0 {
        return Err(BuildError::RunFailed { command, code });
    }
    out.stream(&format!("Removing intermediate container {}\n", &id[..12]));
    let upper = layer.upper()?;
    if let Some(m) = spec.mounts {
        m.clean_layer(&upper);
    }
    stubs.remove(&upper);
    Ok(())
}

fn extra_mounts(
    layer: &StepLayer,
    id: &str,
    script: &RunScript,
    host_net: bool,
    on_network: bool,
    stubs: &mut Stubs,
) -> Result<Vec<Value>, BuildError> {
    let dir = &layer.dir;
    let bind = |src: &Path, dest: &str, ro: bool| {
        json!({"destination": dest, "type": "bind", "source": src,
               "options": ["rbind", "rprivate", if ro { "ro" } else { "rw" }]})
    };
    let mut out = Vec::new();
    if let RunScript::ShebangFile { name, data } = script {
        use std::os::unix::fs::PermissionsExt;
        let pipes = dir.join("pipes");
        std::fs::create_dir_all(&pipes).map_err(io_err("create", &pipes))?;
        let f = pipes.join(name.replace('/', "_"));
        std::fs::write(&f, data).map_err(io_err("write", &f))?;
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755))
            .map_err(io_err("chmod", &f))?;
        out.push(bind(&f, &format!("/dev/pipes/{name}"), true));
    }
    // Always there, as Docker's: the network's hosts and resolv.conf (on a network, the
    // container service wrote them already) and the hostname. Stubs the runtime makes for
    // them where the image has none are taken out of the layer afterwards.
    if !on_network {
        let f = dir.join("hosts");
        let text = format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{}\n",
            &id[..12]
        );
        std::fs::write(&f, text).map_err(io_err("write", &f))?;
        let f = dir.join("resolv.conf");
        let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let text: String = host
            .lines()
            .filter(|l| host_net || !l.starts_with("nameserver 127."))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&f, text).map_err(io_err("write", &f))?;
    }
    let f = dir.join("hostname");
    std::fs::write(&f, format!("{}\n", &id[..12])).map_err(io_err("write", &f))?;
    for name in ["hosts", "hostname", "resolv.conf"] {
        let dest = format!("/etc/{name}");
        stubs
            .add(&layer.rootfs, &dest)
            .map_err(io_err("resolve", &dest))?;
        out.push(bind(&dir.join(name), &dest, false));
    }
    Ok(out)
}
