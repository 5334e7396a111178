//! Container lifecycle on the runtime side: create, start, run, state, kill, delete, pause,
//! resume, update, ps. These run in the runtime process (the CLI, or later the per-container
//! monitor) and talk to the container's init through [`crate::sync`].

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxIdMapping, LinuxResources, Spec};
use serde::Serialize;
use skiff_cgroups::CgroupManager;
use skiff_seccomp::{CompiledFilter, FilterCache};

use crate::error::{errno, Result, RuntimeError};
use crate::hooks::{self, HookState};
use crate::init::{self, Console, InitPlan, StartSignal};
use crate::namespaces::NsPlan;
use crate::process::{self, ProcessPlan};
use crate::spec::{validate_id, Bundle};
use crate::state::{pid_start_time, ContainerState, StateRoot, Status, STATE_VERSION};
use crate::sync::{Channel, Msg};

/// Options of `create` / `run`.
#[derive(Debug, Default, Clone)]
pub struct CreateOptions {
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub preserve_fds: i32,
}

/// The runtime: a state root and the caches shared by every container it manages.
#[derive(Debug)]
pub struct Runtime {
    pub root: StateRoot,
    seccomp: FilterCache,
}

/// runc's `state` output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateView {
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: String,
    pub bundle: String,
    pub rootfs: String,
    pub created: String,
    pub owner: String,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
}

/// Devices every container may use whatever its rules say, as runc appends them.
fn default_device_rules() -> Vec<LinuxDeviceCgroup> {
    let rule = |typ: &str, major: Option<i64>, minor: Option<i64>, access: &str| {
        serde_json::from_value::<LinuxDeviceCgroup>(serde_json::json!({
            "allow": true, "type": typ, "major": major, "minor": minor, "access": access
        }))
        .expect("static device rule")
    };
    vec![
        rule("c", None, None, "m"),
        rule("b", None, None, "m"),
        rule("c", Some(1), Some(3), "rwm"),
        rule("c", Some(1), Some(8), "rwm"),
        rule("c", Some(1), Some(7), "rwm"),
        rule("c", Some(5), Some(0), "rwm"),
        rule("c", Some(1), Some(5), "rwm"),
        rule("c", Some(1), Some(9), "rwm"),
        rule("c", Some(136), None, "rwm"),
        rule("c", Some(5), Some(2), "rwm"),
        rule("c", Some(10), Some(200), "rwm"),
    ]
}

/// The resources to write for a spec: the config's, plus the default device rules.
fn effective_resources(spec: &Spec) -> LinuxResources {
    let mut res = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().clone())
        .unwrap_or_default();
    let mut devs = res.devices().clone().unwrap_or_default();
    devs.extend(default_device_rules());
    res.set_devices(Some(devs));
    res
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Undo guard of a create that failed half-way: kills the init, removes cgroup and state.
struct CreateGuard<'a> {
    rt: &'a Runtime,
    id: String,
    pid: Option<Pid>,
    cgroup: Option<&'a dyn CgroupManager>,
    armed: bool,
}

impl Drop for CreateGuard<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(pid) = self.pid {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
        if let Some(cg) = self.cgroup {
            let _ = cg.kill_all(libc::SIGKILL);
            let deadline = Instant::now() + Duration::from_secs(2);
            while cg.destroy().is_err() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let _ = self.rt.root.remove(&self.id);
    }
}

fn write_id_map(pid: Pid, file: &str, maps: &[LinuxIdMapping]) -> Result<()> {
    let text: String = maps
        .iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect();
    let path = format!("/proc/{pid}/{file}");
    std::fs::write(&path, text).map_err(|e| RuntimeError::io("write id mapping", path, e))
}

fn write_time_offsets(spec: &Spec) -> Result<()> {
    let Some(offsets) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().as_ref())
    else {
        return Ok(());
    };
    let mut text = String::new();
    for (clock, off) in offsets {
        text.push_str(&format!(
            "{clock} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        ));
    }
    std::fs::write("/proc/self/timens_offsets", text)
        .map_err(|e| RuntimeError::io("write time offsets", "/proc/self/timens_offsets", e))
}

impl Runtime {
    pub fn new(root: impl Into<PathBuf>) -> Runtime {
        let root = StateRoot::new(root);
        let cache = FilterCache::new(Some(root.dir.join(".seccomp-cache")));
        Runtime {
            root,
            seccomp: cache,
        }
    }

    fn compile_seccomp(&self, spec: &Spec) -> Result<Option<Arc<CompiledFilter>>> {
        match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
            Some(profile) => Ok(Some(self.seccomp_filter(profile)?)),
            None => Ok(None),
        }
    }

    /// A profile compiled to BPF, from the cache when it was compiled before.
    pub(crate) fn seccomp_filter(
        &self,
        profile: &oci_spec::runtime::LinuxSeccomp,
    ) -> Result<Arc<CompiledFilter>> {
        Ok(self.seccomp.get_or_compile(profile)?)
    }

    /// Create a container: its init is set up and waits for `start`.
    pub fn create(&self, id: &str, opts: &CreateOptions) -> Result<ContainerState> {
        self.spawn(id, opts, false).map(|(st, _)| st)
    }

    /// Create and start in one go; returns the state and the init's pid. The caller waits.
    pub fn run(
        &self,
        id: &str,
        opts: &CreateOptions,
        console: Option<UnixStream>,
    ) -> Result<(ContainerState, Pid)> {
        validate_id(id)?;
        let bundle = Bundle::load(&opts.bundle)?;
        self.spawn_with(id, bundle, opts, true, console)
    }

    /// `run` with a bundle the caller has already loaded (and looked at).
    pub fn run_bundle(
        &self,
        id: &str,
        bundle: Bundle,
        opts: &CreateOptions,
        console: Option<UnixStream>,
    ) -> Result<(ContainerState, Pid)> {
        validate_id(id)?;
        self.spawn_with(id, bundle, opts, true, console)
    }

    /// `create` with a bundle the caller has already loaded, and the console channel of
    /// [`Runtime::run_bundle`]: the init waits at the exec fifo until [`Runtime::start`].
    pub fn create_bundle(
        &self,
        id: &str,
        bundle: Bundle,
        opts: &CreateOptions,
        console: Option<UnixStream>,
    ) -> Result<(ContainerState, Pid)> {
        validate_id(id)?;
        self.spawn_with(id, bundle, opts, false, console)
    }

    fn spawn(&self, id: &str, opts: &CreateOptions, run: bool) -> Result<(ContainerState, Pid)> {
        validate_id(id)?;
        let bundle = Bundle::load(&opts.bundle)?;
        self.spawn_with(id, bundle, opts, run, None)
    }

    fn spawn_with(
        &self,
        id: &str,
        bundle: Bundle,
        opts: &CreateOptions,
        run: bool,
        console_override: Option<UnixStream>,
    ) -> Result<(ContainerState, Pid)> {
        let spec = &bundle.spec;
        let proc_cfg = spec.process().as_ref().expect("validated");
        if !bundle.has_namespace(oci_spec::runtime::LinuxNamespaceType::Mount) {
            return Err(RuntimeError::InvalidConfig {
                path: bundle.dir.join("config.json"),
                msg: "a mount namespace is required".into(),
            });
        }
        let ns = NsPlan::from_spec(spec)?;
        let seccomp = self.compile_seccomp(spec)?;
        if proc_cfg
            .apparmor_profile()
            .as_ref()
            .is_some_and(|p| !p.is_empty())
            && !process::apparmor_enabled()
        {
            tracing::warn!(
                container = id,
                "apparmor profile requested but AppArmor is not enabled on this host: not applied"
            );
        }
        if proc_cfg
            .selinux_label()
            .as_ref()
            .is_some_and(|p| !p.is_empty())
            && !process::selinux_enabled()
        {
            tracing::warn!(
                container = id,
                "selinux label requested but SELinux is not enabled on this host: not applied"
            );
        }
        let console = match (&opts.console_socket, console_override) {
            (_, Some(s)) => Console::Socket(s),
            (Some(p), None) => Console::Socket(
                UnixStream::connect(p)
                    .map_err(|e| RuntimeError::io("connect to console socket", p, e))?,
            ),
            (None, None) => Console::None,
        };
        if proc_cfg.terminal() == Some(true) && matches!(console, Console::None) {
            return Err(RuntimeError::Usage(
                "process.terminal is true: use --console-socket (or set terminal to false)".into(),
            ));
        }

        let cgroups_path = spec.linux().as_ref().and_then(|l| l.cgroups_path().clone());
        let cg = skiff_cgroups::manager(cgroups_path.as_deref(), id)?;
        self.root.create_dir(id)?;
        let mut guard = CreateGuard {
            rt: self,
            id: id.to_string(),
            pid: None,
            cgroup: None,
            armed: true,
        };
        let start = if run {
            StartSignal::Channel
        } else {
            let fifo = self.root.fifo_path(id);
            nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o622))
                .map_err(|e| RuntimeError::io("create exec fifo", &fifo, errno(e)))?;
            let fd: OwnedFd = rustix::fs::open(
                &fifo,
                rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )
            .map_err(|e| {
                RuntimeError::io(
                    "open exec fifo",
                    &fifo,
                    std::io::Error::from_raw_os_error(e.raw_os_error()),
                )
            })?;
            StartSignal::Fifo(fd)
        };
        let (parent_chan, child_chan) = Channel::pair()?;
        let plan = InitPlan {
            id,
            spec,
            bundle: &bundle.dir,
            rootfs: &bundle.rootfs,
            cgroup_paths: cg.paths(),
            join_cgroup: (!ns.new_userns
                && ns
                    .join
                    .iter()
                    .all(|(t, _, _)| *t != oci_spec::runtime::LinuxNamespaceType::User))
            .then_some(cg.as_ref()),
            process: ProcessPlan::new(proc_cfg, seccomp, opts.preserve_fds),
            new_cgroupns: ns.new_cgroupns,
            new_userns: ns.new_userns,
            new_utsns: ns.clone_flags & libc::CLONE_NEWUTS != 0,
            no_pivot: opts.no_pivot,
            console,
            start,
        };
        cg.create()?;
        guard.cgroup = Some(cg.as_ref());

        let new_userns = ns.new_userns;
        let child_joins_cgroup = plan.join_cgroup.is_some();
        let parent_fd = parent_chan.raw();
        let pid = if ns.join.is_empty() && !ns.new_timens {
            let flags = ns.clone_flags;
            crate::fork::clone_child(flags, move || {
                close_in_child(parent_fd);
                init::main(plan, child_chan)
            })?
        } else {
            // An intermediate process joins the namespaces given by path (setns of a pid or
            // time namespace only applies to children) and forks the init as our child.
            let (mid_parent, mid_child) = Channel::pair()?;
            let mid_parent_fd = mid_parent.raw();
            let mid = crate::fork::clone_child(0, move || {
                close_in_child(parent_fd);
                close_in_child(mid_parent_fd);
                let r = (|| -> Result<Pid> {
                    ns.setns_all()?;
                    if ns.new_timens {
                        nix::sched::unshare(nix::sched::CloneFlags::from_bits_retain(
                            libc::CLONE_NEWTIME,
                        ))
                        .map_err(|e| RuntimeError::sys("unshare time namespace", errno(e)))?;
                        write_time_offsets(spec)?;
                    }
                    crate::fork::clone_child(ns.clone_flags | libc::CLONE_PARENT, move || {
                        init::main(plan, child_chan)
                    })
                })();
                match r {
                    Ok(p) => {
                        let _ = mid_child.send(&Msg::Pid(p.as_raw()));
                        0
                    }
                    Err(e) => {
                        let _ = mid_child.send(&Msg::Error(e.to_string()));
                        1
                    }
                }
            })?;
            let got = mid_parent.recv();
            let _ = waitpid(mid, None);
            match got? {
                Some(Msg::Pid(p)) => Pid::from_raw(p),
                Some(Msg::Error(e)) => return Err(RuntimeError::Init(e)),
                _ => return Err(RuntimeError::Init("namespace setup process died".into())),
            }
        };
        guard.pid = Some(pid);

        if new_userns {
            let linux = spec.linux().as_ref().expect("user namespace implies linux");
            write_id_map(
                pid,
                "uid_map",
                linux.uid_mappings().as_deref().unwrap_or(&[]),
            )?;
            write_id_map(
                pid,
                "gid_map",
                linux.gid_mappings().as_deref().unwrap_or(&[]),
            )?;
        }
        cg.set(&effective_resources(spec))?;
        if !child_joins_cgroup {
            cg.apply(pid.as_raw())?;
        }
        process::apply_rlimits(pid.as_raw(), proc_cfg)?;
        if let Some(adj) = proc_cfg.oom_score_adj() {
            let p = format!("/proc/{pid}/oom_score_adj");
            std::fs::write(&p, adj.to_string()).map_err(|e| RuntimeError::io("write", p, e))?;
        }
        parent_chan.send(&Msg::GoInit(pid.as_raw()))?;
        let bundle_str = bundle.dir.to_string_lossy().into_owned();
        loop {
            let (msg, fd) = match parent_chan.recv_with_fd()? {
                Some((m, fd)) => (Some(m), fd),
                None => (None, None),
            };
            match msg {
                Some(Msg::SeccompFd) => {
                    let fd = fd.ok_or_else(|| {
                        RuntimeError::Init("seccomp listener descriptor missing".into())
                    })?;
                    let st = self.provisional_state(id, pid, &bundle, spec);
                    send_to_seccomp_agent(&st, pid.as_raw(), fd)?;
                }
                Some(Msg::RunHooks) => {
                    let st = HookState {
                        oci_version: spec.version(),
                        id,
                        status: "creating",
                        pid: Some(pid.as_raw()),
                        bundle: &bundle_str,
                        annotations: spec.annotations().as_ref(),
                    };
                    #[allow(deprecated)]
                    if let Some(h) = spec.hooks() {
                        hooks::run("prestart", h.prestart().as_deref().unwrap_or(&[]), &st)?;
                        hooks::run(
                            "createRuntime",
                            h.create_runtime().as_deref().unwrap_or(&[]),
                            &st,
                        )?;
                    }
                    parent_chan.send(&Msg::HooksDone)?;
                }
                Some(Msg::Ready) => break,
                Some(Msg::Error(e)) => return Err(RuntimeError::Init(e)),
                Some(m) => return Err(RuntimeError::Init(format!("unexpected message {m:?}"))),
                None => {
                    return Err(RuntimeError::Init(
                        "the container's init exited during setup".into(),
                    ))
                }
            }
        }
        let st = ContainerState {
            version: STATE_VERSION,
            id: id.to_string(),
            pid: pid.as_raw(),
            pid_start: pid_start_time(pid.as_raw()).unwrap_or(0),
            bundle: bundle.dir.clone(),
            rootfs: bundle.rootfs.clone(),
            created: now_rfc3339(),
            owner: String::new(),
            annotations: spec.annotations().clone().unwrap_or_default(),
            spec: spec.clone(),
            cgroup_paths: cg.paths(),
            started: run,
        };
        self.root.save(&st)?;
        if let Some(pf) = &opts.pid_file {
            crate::state::write_pid_file(pf, pid.as_raw())?;
        }
        guard.armed = false;
        if run {
            parent_chan.send(&Msg::Start)?;
            // The init's end of the channel closes on execve: poststart hooks run once the
            // user's process is executing, as the runtime spec requires.
            match parent_chan.recv()? {
                None => {}
                Some(Msg::Error(e)) => return Err(RuntimeError::Init(e)),
                Some(m) => return Err(RuntimeError::Init(format!("unexpected message {m:?}"))),
            }
            self.poststart(&st);
        }
        Ok((st, pid))
    }

    /// The record of a container still being created (for the seccomp agent's state).
    fn provisional_state(
        &self,
        id: &str,
        pid: Pid,
        bundle: &Bundle,
        spec: &Spec,
    ) -> ContainerState {
        ContainerState {
            version: STATE_VERSION,
            id: id.to_string(),
            pid: pid.as_raw(),
            pid_start: 0,
            bundle: bundle.dir.clone(),
            rootfs: bundle.rootfs.clone(),
            created: now_rfc3339(),
            owner: String::new(),
            annotations: spec.annotations().clone().unwrap_or_default(),
            spec: spec.clone(),
            cgroup_paths: HashMap::new(),
            started: false,
        }
    }

    fn poststart(&self, st: &ContainerState) {
        if let Some(h) = st
            .spec
            .hooks()
            .as_ref()
            .and_then(|h| h.poststart().as_ref())
        {
            if let Err(e) = hooks::run("poststart", h, &self.hook_state(st, "running")) {
                tracing::warn!(container = %st.id, error = %e, "poststart hook failed");
            }
        }
    }

    fn hook_state<'a>(&self, st: &'a ContainerState, status: &'a str) -> HookState<'a> {
        HookState {
            oci_version: st.spec.version(),
            id: &st.id,
            status,
            pid: (st.pid > 0).then_some(st.pid),
            bundle: st.bundle.to_str().unwrap_or(""),
            annotations: Some(&st.annotations),
        }
    }

    pub fn load(&self, id: &str) -> Result<ContainerState> {
        self.root.load(id)
    }

    fn cgroup(&self, st: &ContainerState) -> Result<Box<dyn CgroupManager>> {
        Ok(skiff_cgroups::from_paths(st.cgroup_paths.clone())?)
    }

    /// The container's status, derived from the live system.
    pub fn status(&self, st: &ContainerState) -> Status {
        if !st.init_alive() {
            return Status::Stopped;
        }
        if let Ok(cg) = self.cgroup(st) {
            if matches!(cg.freezer_state(), Ok(skiff_cgroups::FreezerState::Frozen)) {
                return Status::Paused;
            }
        }
        if !st.started && self.root.fifo_path(&st.id).exists() {
            return Status::Created;
        }
        Status::Running
    }

    pub fn state(&self, id: &str) -> Result<StateView> {
        let st = self.load(id)?;
        let status = self.status(&st);
        Ok(StateView {
            oci_version: st.spec.version().to_string(),
            id: st.id.clone(),
            pid: if status == Status::Stopped { 0 } else { st.pid },
            status: status.to_string(),
            bundle: st.bundle.to_string_lossy().into_owned(),
            rootfs: st.rootfs.to_string_lossy().into_owned(),
            created: st.created.clone(),
            owner: st.owner.clone(),
            annotations: st.annotations.clone(),
        })
    }

    /// Let a created container's init exec its process.
    pub fn start(&self, id: &str) -> Result<()> {
        let mut st = self.load(id)?;
        let status = self.status(&st);
        if status != Status::Created {
            return Err(RuntimeError::BadState {
                id: id.into(),
                status: status.to_string(),
                op: "start",
                needed: "created",
            });
        }
        let fifo = self.root.fifo_path(id);
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags_nonblock()
            .open(&fifo)
            .map_err(|e| RuntimeError::io("open exec fifo", &fifo, e))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            use std::io::Read;
            let mut b = [0u8; 1];
            match f.read(&mut b) {
                Ok(1) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(RuntimeError::io("read exec fifo", &fifo, e)),
            }
            if !st.init_alive() {
                // A process that exits at once may have taken the start signal between our
                // last read and this check: its byte is still in the fifo.
                if matches!(f.read(&mut b), Ok(1)) {
                    break;
                }
                return Err(RuntimeError::Init(format!(
                    "container {id}: init exited before start"
                )));
            }
            if Instant::now() > deadline {
                return Err(RuntimeError::Init(format!(
                    "container {id}: init did not take the start signal"
                )));
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        // End-of-file: the init's writer closed on execve (or the init died).
        loop {
            use std::io::Read;
            let mut b = [0u8; 1];
            match f.read(&mut b) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_micros(100))
                }
                Err(e) => return Err(RuntimeError::io("read exec fifo", &fifo, e)),
            }
        }
        let _ = std::fs::remove_file(&fifo);
        st.started = true;
        self.root.save(&st)?;
        self.poststart(&st);
        Ok(())
    }

    /// Send a signal to the init, or to every process of the container.
    pub fn kill(&self, id: &str, sig: Signal, all: bool) -> Result<()> {
        let st = self.load(id)?;
        let status = self.status(&st);
        if all {
            let cg = self.cgroup(&st)?;
            // A frozen (paused) container acts on the signal once resumed; SIGKILL works anyway.
            cg.kill_all(sig as i32)?;
            return Ok(());
        }
        if status == Status::Stopped {
            return Err(RuntimeError::BadState {
                id: id.into(),
                status: status.to_string(),
                op: "kill",
                needed: "created, running or paused",
            });
        }
        kill(Pid::from_raw(st.pid), sig)
            .map_err(|e| RuntimeError::sys(format!("kill {} of container {id}", sig), errno(e)))
    }

    /// Remove a container; a running one only with `force` (it is killed first).
    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        let st = match self.load(id) {
            Ok(st) => st,
            Err(RuntimeError::NotFound(_)) if force => return Ok(()),
            Err(e) => return Err(e),
        };
        let status = self.status(&st);
        match status {
            Status::Stopped => {}
            Status::Created => self.kill_and_wait(&st)?,
            Status::Running | Status::Paused | Status::Creating if force => {
                self.kill_and_wait(&st)?
            }
            _ => {
                return Err(RuntimeError::BadState {
                    id: id.into(),
                    status: status.to_string(),
                    op: "delete",
                    needed: "stopped (or use --force)",
                })
            }
        }
        self.destroy(&st)
    }

    fn kill_and_wait(&self, st: &ContainerState) -> Result<()> {
        let cg = self.cgroup(st).ok();
        if let Some(cg) = &cg {
            let _ = cg.kill_all(libc::SIGKILL);
            let _ = cg.thaw();
        }
        if st.init_alive() {
            let _ = kill(Pid::from_raw(st.pid), Signal::SIGKILL);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while st.init_alive() {
            // Our own child (run): reap it.
            let _ = waitpid(Pid::from_raw(st.pid), Some(WaitPidFlag::WNOHANG));
            if Instant::now() > deadline {
                return Err(RuntimeError::Init(format!(
                    "container {}: init did not die after SIGKILL",
                    st.id
                )));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    /// Release what a stopped container holds: its cgroup, poststop hooks, its state.
    pub fn destroy(&self, st: &ContainerState) -> Result<()> {
        if let Ok(cg) = self.cgroup(st) {
            let _ = cg.kill_all(libc::SIGKILL);
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                match cg.destroy() {
                    Ok(()) => break,
                    Err(e) if Instant::now() > deadline => return Err(e.into()),
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        }
        if let Some(h) = st.spec.hooks().as_ref().and_then(|h| h.poststop().as_ref()) {
            if let Err(e) = hooks::run("poststop", h, &self.hook_state(st, "stopped")) {
                tracing::warn!(container = %st.id, error = %e, "poststop hook failed");
            }
        }
        self.root.remove(&st.id)
    }

    pub fn pause(&self, id: &str) -> Result<()> {
        let st = self.load(id)?;
        let status = self.status(&st);
        if status != Status::Running && status != Status::Created {
            return Err(RuntimeError::BadState {
                id: id.into(),
                status: status.to_string(),
                op: "pause",
                needed: "running",
            });
        }
        Ok(self.cgroup(&st)?.freeze()?)
    }

    pub fn resume(&self, id: &str) -> Result<()> {
        let st = self.load(id)?;
        let status = self.status(&st);
        if status != Status::Paused {
            return Err(RuntimeError::BadState {
                id: id.into(),
                status: status.to_string(),
                op: "resume",
                needed: "paused",
            });
        }
        Ok(self.cgroup(&st)?.thaw()?)
    }

    /// Change the resources of a live container and record them.
    pub fn update(&self, id: &str, res: &LinuxResources) -> Result<()> {
        let mut st = self.load(id)?;
        let status = self.status(&st);
        if status == Status::Stopped {
            return Err(RuntimeError::BadState {
                id: id.into(),
                status: status.to_string(),
                op: "update",
                needed: "running",
            });
        }
        self.cgroup(&st)?.set(res)?;
        let merged = crate::update::merge(
            st.spec.linux().as_ref().and_then(|l| l.resources().clone()),
            res,
        );
        if let Some(linux) = st.spec.linux_mut() {
            linux.set_resources(Some(merged));
        }
        self.root.save(&st)
    }

    /// The pids of every process in the container.
    pub fn pids(&self, id: &str) -> Result<Vec<i32>> {
        let st = self.load(id)?;
        Ok(self.cgroup(&st)?.pids()?)
    }

    pub fn stats(&self, id: &str) -> Result<skiff_cgroups::Stats> {
        let st = self.load(id)?;
        Ok(self.cgroup(&st)?.stats()?)
    }

    pub fn list(&self) -> Result<Vec<(ContainerState, Status)>> {
        let mut out = Vec::new();
        for id in self.root.list()? {
            if let Ok(st) = self.load(&id) {
                let s = self.status(&st);
                out.push((st, s));
            }
        }
        Ok(out)
    }
}

/// Hand a seccomp notify listener to the agent at the profile's `listenerPath`: one message
/// with the OCI container process state as JSON and the descriptor as SCM_RIGHTS.
pub(crate) fn send_to_seccomp_agent(st: &ContainerState, pid: i32, fd: OwnedFd) -> Result<()> {
    use std::os::fd::AsRawFd;
    let seccomp = st.spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    let path = seccomp
        .and_then(|s| s.listener_path().clone())
        .ok_or_else(|| {
            RuntimeError::Usage("seccomp: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath".into())
        })?;
    let state = serde_json::json!({
        "ociVersion": st.spec.version(),
        "fds": ["seccompFd"],
        "pid": pid,
        "metadata": seccomp.and_then(|s| s.listener_metadata().clone()).unwrap_or_default(),
        "state": {
            "ociVersion": st.spec.version(),
            "id": st.id,
            "status": "creating",
            "pid": pid,
            "bundle": st.bundle,
            "annotations": st.annotations,
        }
    });
    let sock = UnixStream::connect(&path)
        .map_err(|e| RuntimeError::io("connect to seccomp agent", &path, e))?;
    let data = state.to_string();
    let fds = [fd.as_raw_fd()];
    nix::sys::socket::sendmsg::<()>(
        sock.as_raw_fd(),
        &[std::io::IoSlice::new(data.as_bytes())],
        &[nix::sys::socket::ControlMessage::ScmRights(&fds)],
        nix::sys::socket::MsgFlags::empty(),
        None,
    )
    .map_err(|e| RuntimeError::io("send to seccomp agent", &path, errno(e)))?;
    Ok(())
}

/// Block the signals a foreground runtime forwards, and wait for `pid`, forwarding them.
/// Returns the exit code as a shell reports it (128+signal when killed).
pub fn wait_forwarding(pid: Pid) -> i32 {
    use nix::sys::signal::{SigSet, SigmaskHow};
    let mut set = SigSet::all();
    for s in [
        Signal::SIGKILL,
        Signal::SIGSTOP,
        Signal::SIGSEGV,
        Signal::SIGBUS,
        Signal::SIGILL,
        Signal::SIGFPE,
    ] {
        set.remove(s);
    }
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None);
    // The child may have exited before the mask was set.
    if let Some(code) = reap(pid) {
        return code;
    }
    loop {
        let Ok(sig) = set.wait() else { continue };
        if sig == Signal::SIGCHLD {
            if let Some(code) = reap(pid) {
                return code;
            }
        } else {
            let _ = kill(pid, sig);
        }
    }
}

fn reap(pid: Pid) -> Option<i32> {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, code)) if p == pid => return Some(code),
            Ok(WaitStatus::Signaled(p, sig, _)) if p == pid => return Some(128 + sig as i32),
            Ok(WaitStatus::StillAlive) => return None,
            Ok(_) => continue,
            Err(nix::errno::Errno::ECHILD) => return Some(255),
            Err(_) => return None,
        }
    }
}

/// Close, in a forked child, the child's copy of a descriptor the parent keeps (so that the
/// child sees end-of-file when the parent goes away).
fn close_in_child(fd: std::os::fd::RawFd) {
    // SAFETY: the descriptor belongs to the parent's object; in this child, which never returns
    // to the code owning that object (it _exits), closing our copy of it is sound.
    unsafe { libc::close(fd) };
}

trait NonBlock {
    fn custom_flags_nonblock(&mut self) -> &mut Self;
}

impl NonBlock for std::fs::OpenOptions {
    fn custom_flags_nonblock(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_NONBLOCK)
    }
}
