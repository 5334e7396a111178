//! The runtime subcommands.

use std::io::Write;
use std::str::FromStr;

use nix::sys::signal::Signal;
use oci_spec::runtime::{LinuxResources, Process};
use skiff_runtime::{CreateOptions, ExecOptions, Runtime, RuntimeError};

use super::{console, log, CreateArgs, ExecArgs, RuntimeArgs, RuntimeCmd, UpdateArgs};

type Res<T> = Result<T, RuntimeError>;

pub fn main_with(args: RuntimeArgs) -> i32 {
    let rt = Runtime::new(&args.root);
    match dispatch(&rt, args.cmd) {
        Ok(code) => code,
        Err(e) => {
            log::error(&e.to_string());
            1
        }
    }
}

fn usage(msg: impl Into<String>) -> RuntimeError {
    RuntimeError::Usage(msg.into())
}

fn create_opts(a: &CreateArgs) -> CreateOptions {
    CreateOptions {
        bundle: a.bundle.clone(),
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        no_pivot: a.no_pivot,
        preserve_fds: a.preserve_fds,
    }
}

fn dispatch(rt: &Runtime, cmd: RuntimeCmd) -> Res<i32> {
    match cmd {
        RuntimeCmd::Spec { bundle } => {
            let dir = bundle.unwrap_or_else(|| ".".into());
            let path = dir.join("config.json");
            if path.exists() {
                return Err(usage(format!("{} exists: remove it first", path.display())));
            }
            std::fs::write(&path, skiff_runtime::spec::DEFAULT_CONFIG)
                .map_err(|e| RuntimeError::io("write", &path, e))?;
            Ok(0)
        }
        RuntimeCmd::Create(a) => {
            rt.create(&a.id, &create_opts(&a))?;
            Ok(0)
        }
        RuntimeCmd::Start { id } => {
            rt.start(&id)?;
            Ok(0)
        }
        RuntimeCmd::Run(a) => run(rt, a),
        RuntimeCmd::State { id } => {
            let v = rt.state(&id)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&v).expect("state serializes")
            );
            Ok(0)
        }
        RuntimeCmd::Kill { id, signal, all } => {
            rt.kill(&id, parse_signal(&signal)?, all)?;
            Ok(0)
        }
        RuntimeCmd::Delete { id, force } => {
            rt.delete(&id, force)?;
            Ok(0)
        }
        RuntimeCmd::Exec(a) => exec(rt, a),
        RuntimeCmd::Ps {
            id,
            format,
            ps_args,
        } => ps(rt, &id, &format, &ps_args),
        RuntimeCmd::List { format, quiet } => list(rt, &format, quiet),
        RuntimeCmd::Pause { id } => {
            rt.pause(&id)?;
            Ok(0)
        }
        RuntimeCmd::Resume { id } => {
            rt.resume(&id)?;
            Ok(0)
        }
        RuntimeCmd::Update(a) => {
            let res = update_resources(&a)?;
            rt.update(&a.id, &res)?;
            Ok(0)
        }
        RuntimeCmd::Events { id, stats, .. } => {
            if !stats {
                return Err(usage("events: only --stats is supported"));
            }
            let s = rt.stats(&id)?;
            let ev = serde_json::json!({"type": "stats", "id": id, "data": s});
            println!("{ev}");
            Ok(0)
        }
    }
}

/// "9", "KILL", "SIGKILL" → SIGKILL.
pub fn parse_signal(s: &str) -> Res<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| usage(format!("unknown signal {s:?}")));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    Signal::from_str(&name).map_err(|_| usage(format!("unknown signal {s:?}")))
}

fn run(rt: &Runtime, a: super::RunArgs) -> Res<i32> {
    let opts = create_opts(&a.create);
    let id = a.create.id.clone();
    // A foreground container with a terminal and no console socket: we hold the pty.
    let bundle = skiff_runtime::spec::Bundle::load(&opts.bundle)?;
    let terminal = bundle
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    let local = if terminal && opts.console_socket.is_none() && !a.detach {
        Some(console::pair().map_err(|e| RuntimeError::sys("socketpair", e))?)
    } else {
        None
    };
    let (ours, theirs) = match local {
        Some((o, t)) => (Some(o), Some(t)),
        None => (None, None),
    };
    let (_st, pid) = rt.run_bundle(&id, bundle, &opts, theirs)?;
    if a.detach {
        return Ok(0);
    }
    let mut raw = None;
    let mut out_thread = None;
    if let Some(sock) = &ours {
        let master =
            console::recv_master(sock).map_err(|e| RuntimeError::sys("receive pty master", e))?;
        raw = Some(console::RawMode::enter());
        out_thread = Some(console::proxy(master));
    }
    let code = skiff_runtime::wait_forwarding(pid);
    if let Some(t) = out_thread {
        let _ = t.join();
    }
    drop(raw);
    let _ = std::io::stdout().flush();
    if !a.keep {
        if let Ok(st) = rt.load(&id) {
            rt.destroy(&st)?;
        }
    }
    Ok(code)
}

fn exec(rt: &Runtime, a: ExecArgs) -> Res<i32> {
    let st = rt.load(&a.id)?;
    let mut process: Process = match &a.process {
        Some(p) => {
            let bytes =
                std::fs::read(p).map_err(|e| RuntimeError::io("read process file", p, e))?;
            serde_json::from_slice(&bytes).map_err(|source| RuntimeError::ParseConfig {
                path: p.clone(),
                source,
            })?
        }
        None => {
            let mut p = st.spec.process().clone().unwrap_or_default();
            if a.args.is_empty() {
                return Err(usage("exec: no command given (use ARGS or --process)"));
            }
            p.set_args(Some(a.args.clone()));
            p.set_terminal(Some(a.tty));
            p
        }
    };
    if a.process.is_none() {
        let mut env = process.env().clone().unwrap_or_default();
        for e in &a.env {
            let key = e.split('=').next().unwrap_or("");
            env.retain(|x| x.split('=').next() != Some(key));
            env.push(e.clone());
        }
        process.set_env(Some(env));
        if let Some(cwd) = &a.cwd {
            process.set_cwd(cwd.clone());
        }
        if let Some(u) = &a.user {
            let (uid, gid) = match u.split_once(':') {
                Some((u, g)) => (u.parse().ok(), g.parse().ok()),
                None => (u.parse().ok(), None),
            };
            let uid: u32 = uid.ok_or_else(|| usage(format!("--user {u:?}: expected UID[:GID]")))?;
            process.user_mut().set_uid(uid);
            if let Some(g) = gid {
                process.user_mut().set_gid(g);
            }
        }
        if !a.additional_gids.is_empty() {
            process
                .user_mut()
                .set_additional_gids(Some(a.additional_gids.clone()));
        }
        if a.no_new_privs {
            process.set_no_new_privileges(Some(true));
        }
        if !a.cap.is_empty() {
            let mut caps = process.capabilities().clone().unwrap_or_default();
            let add = |set: &Option<oci_spec::runtime::Capabilities>| {
                let mut s = set.clone().unwrap_or_default();
                for c in &a.cap {
                    let name = c.trim_start_matches("CAP_");
                    if let Ok(cap) = oci_spec::runtime::Capability::from_str(name) {
                        s.insert(cap);
                    }
                }
                Some(s)
            };
            caps.set_bounding(add(caps.bounding()));
            caps.set_effective(add(caps.effective()));
            caps.set_permitted(add(caps.permitted()));
            process.set_capabilities(Some(caps));
        }
        if let Some(l) = &a.apparmor {
            process.set_apparmor_profile(Some(l.clone()));
        }
        if let Some(l) = &a.process_label {
            process.set_selinux_label(Some(l.clone()));
        }
    }
    let terminal = process.terminal().unwrap_or(false);
    let (ours, theirs) = if terminal && a.console_socket.is_none() && !a.detach {
        let (o, t) = console::pair().map_err(|e| RuntimeError::sys("socketpair", e))?;
        (Some(o), Some(t))
    } else {
        (None, None)
    };
    let opts = ExecOptions {
        process,
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        preserve_fds: a.preserve_fds,
    };
    let pid = rt.exec(&a.id, &opts, theirs)?;
    if a.detach {
        return Ok(0);
    }
    let mut raw = None;
    let mut out_thread = None;
    if let Some(sock) = &ours {
        let master =
            console::recv_master(sock).map_err(|e| RuntimeError::sys("receive pty master", e))?;
        raw = Some(console::RawMode::enter());
        out_thread = Some(console::proxy(master));
    }
    let code = skiff_runtime::wait_forwarding(pid);
    if let Some(t) = out_thread {
        let _ = t.join();
    }
    drop(raw);
    Ok(code)
}

fn ps(rt: &Runtime, id: &str, format: &str, ps_args: &[String]) -> Res<i32> {
    let pids = rt.pids(id)?;
    if format == "json" {
        println!("{}", serde_json::to_string(&pids).expect("pids serialize"));
        return Ok(0);
    }
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| RuntimeError::sys("run ps", e))?;
    if !out.status.success() {
        return Err(usage(format!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| usage("ps output has no PID column"))?;
    println!("{header}");
    for l in lines {
        if let Some(p) = l
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok())
        {
            if pids.contains(&p) {
                println!("{l}");
            }
        }
    }
    Ok(0)
}

fn list(rt: &Runtime, format: &str, quiet: bool) -> Res<i32> {
    let all = rt.list()?;
    if quiet {
        for (st, _) in &all {
            println!("{}", st.id);
        }
        return Ok(0);
    }
    if format == "json" {
        let v: Vec<serde_json::Value> = all
            .iter()
            .map(|(st, s)| {
                serde_json::json!({
                    "ociVersion": st.spec.version(),
                    "id": st.id,
                    "pid": if *s == skiff_runtime::Status::Stopped { 0 } else { st.pid },
                    "status": s.as_str(),
                    "bundle": st.bundle,
                    "rootfs": st.rootfs,
                    "created": st.created,
                    "owner": st.owner,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(v));
        return Ok(0);
    }
    let mut tw = tabwriter::TabWriter::new(std::io::stdout()).padding(3);
    let _ = writeln!(tw, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER");
    for (st, s) in &all {
        let pid = if *s == skiff_runtime::Status::Stopped {
            0
        } else {
            st.pid
        };
        let _ = writeln!(
            tw,
            "{}\t{}\t{}\t{}\t{}\t{}",
            st.id,
            pid,
            s,
            st.bundle.display(),
            st.created,
            if st.owner.is_empty() {
                "root"
            } else {
                &st.owner
            }
        );
    }
    let _ = tw.flush();
    Ok(0)
}

/// Sizes as docker/runc accept them: 512, 64k, 100m, 1g (binary units); -1 = unlimited.
pub fn parse_size(s: &str) -> Res<i64> {
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let t = t.trim_end_matches('b');
    let (num, mul) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| usage(format!("invalid size {s:?}")))?;
    Ok((n * mul as f64) as i64)
}

fn update_resources(a: &UpdateArgs) -> Res<LinuxResources> {
    let mut v = match &a.resources {
        Some(p) => {
            let bytes = if p.as_os_str() == "-" {
                let mut b = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut b)
                    .map_err(|e| RuntimeError::sys("read stdin", e))?;
                b
            } else {
                std::fs::read(p).map_err(|e| RuntimeError::io("read resources file", p, e))?
            };
            serde_json::from_slice::<serde_json::Value>(&bytes).map_err(|source| {
                RuntimeError::ParseConfig {
                    path: p.clone(),
                    source,
                }
            })?
        }
        None => serde_json::json!({}),
    };
    let obj = v
        .as_object_mut()
        .ok_or_else(|| usage("resources must be a JSON object"))?;
    let mut set = |section: &str, key: &str, val: serde_json::Value| {
        let s = obj.entry(section).or_insert_with(|| serde_json::json!({}));
        s[key] = val;
    };
    if let Some(m) = &a.memory {
        set("memory", "limit", parse_size(m)?.into());
    }
    if let Some(m) = &a.memory_reservation {
        set("memory", "reservation", parse_size(m)?.into());
    }
    if let Some(m) = &a.memory_swap {
        set("memory", "swap", parse_size(m)?.into());
    }
    if let Some(x) = a.cpu_shares {
        set("cpu", "shares", x.into());
    }
    if let Some(x) = a.cpu_period {
        set("cpu", "period", x.into());
    }
    if let Some(x) = a.cpu_quota {
        set("cpu", "quota", x.into());
    }
    if let Some(x) = &a.cpuset_cpus {
        set("cpu", "cpus", x.clone().into());
    }
    if let Some(x) = &a.cpuset_mems {
        set("cpu", "mems", x.clone().into());
    }
    if let Some(x) = a.pids_limit {
        set("pids", "limit", x.into());
    }
    if let Some(x) = a.blkio_weight {
        set("blockIO", "weight", x.into());
    }
    serde_json::from_value(v).map_err(|e| usage(format!("invalid resources: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("KILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("sigterm").unwrap(), Signal::SIGTERM);
        assert!(parse_signal("NOPE").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64m").unwrap(), 64 << 20);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("512").unwrap(), 512);
        assert_eq!(parse_size("-1").unwrap(), -1);
        assert!(parse_size("x").is_err());
    }
}
