//! The container's init: what the forked child does between clone and execve.
//!
//! ```text
//! parent (create/run)                      child (this module)
//!   clone(new namespaces) ───────────────▶ undumpable, pdeathsig
//!   uid/gid maps, cgroup, rlimits, oom
//!   Go ──────────────────────────────────▶ cgroup ns, hostname, mounts, /dev
//!                         ◀─────────────── RunHooks (only with prestart/createRuntime hooks)
//!   prestart + createRuntime hooks
//!   HooksDone ───────────────────────────▶ createContainer hooks, pivot_root, console,
//!                                          sysctl, read-only root, masked/ro paths, labels,
//!                                          user, capabilities, cwd, executable resolved
//!                         ◀─────────────── Ready
//!   create: state.json, exit               child: blocks opening exec.fifo until `start`
//!   run:    Start ───────────────────────▶ startContainer hooks, seccomp, close fds, execve
//! ```
//! Any failure before Ready is sent to the parent as `Error` and the child exits.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use crate::error::{Result, RuntimeError};
use crate::hooks::{self, HookState};
use crate::process::{self, ExecImage, ProcessPlan};
use crate::rootfs::{self, paths::Root, RootfsContext};
use crate::sync::{Channel, Msg};

/// Where the pty master goes when the process has a terminal.
#[derive(Debug)]
pub enum Console {
    None,
    /// A connected `--console-socket` (or an internal socket of a foreground `run`).
    Socket(UnixStream),
}

/// How the init learns that `start` happened.
#[derive(Debug)]
pub enum StartSignal {
    /// `create`: an O_PATH descriptor of `exec.fifo`, opened for writing after setup.
    Fifo(OwnedFd),
    /// `run`: a `Start` message on the channel.
    Channel,
}

/// Everything the init needs, prepared by the parent before clone.
pub struct InitPlan<'a> {
    pub id: &'a str,
    pub spec: &'a Spec,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub cgroup_paths: HashMap<String, PathBuf>,
    /// The cgroup the init moves itself into (None: the parent moved it, as with a user
    /// namespace, where the child cannot write the host's cgroup files).
    pub join_cgroup: Option<&'a dyn skiff_cgroups::CgroupManager>,
    pub process: ProcessPlan,
    pub new_cgroupns: bool,
    pub new_userns: bool,
    pub new_utsns: bool,
    pub no_pivot: bool,
    pub console: Console,
    pub start: StartSignal,
}

/// The child's entry point. Returns the exit code when something fails.
pub fn main(plan: InitPlan, chan: Channel) -> i32 {
    match setup(&plan, &chan) {
        Ok((image, pid)) => {
            let err = finish(&plan, &chan, &image, pid);
            // The parent may be gone (create): stderr is the container's stderr, as with runc.
            eprintln!("skiff init: {err}");
            127
        }
        Err(e) => {
            let _ = chan.send(&Msg::Error(e.to_string()));
            1
        }
    }
}

fn setup(plan: &InitPlan, chan: &Channel) -> Result<(ExecImage, i32)> {
    process::harden_child()?;
    let host_pid = match chan.recv()? {
        Some(Msg::GoInit(pid)) => pid,
        Some(m) => {
            return Err(RuntimeError::Init(format!(
                "waiting for the runtime: unexpected message {m:?}"
            )))
        }
        None => return Err(RuntimeError::Init("the runtime exited during setup".into())),
    };
    if let Some(cg) = plan.join_cgroup {
        cg.join_self()?;
    }
    if plan.new_userns {
        // Become the namespace's root (the maps are written now), so files we create belong
        // to the container's root. A mapping without 0 leaves us as we are.
        // SAFETY: integer arguments only.
        unsafe {
            libc::syscall(libc::SYS_setresgid, 0, 0, 0);
            libc::syscall(libc::SYS_setresuid, 0, 0, 0);
        }
    }
    if plan.new_cgroupns {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
            .map_err(|e| RuntimeError::sys("unshare cgroup namespace", crate::error::errno(e)))?;
    }
    if let Some(h) = plan.spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        if !plan.new_utsns {
            return Err(RuntimeError::Init(
                "hostname is set but the container has no new uts namespace".into(),
            ));
        }
        nix::unistd::sethostname(h)
            .map_err(|e| RuntimeError::sys(format!("sethostname {h:?}"), crate::error::errno(e)))?;
    }
    if let Some(d) = plan.spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        if !plan.new_utsns {
            return Err(RuntimeError::Init(
                "domainname is set but the container has no new uts namespace".into(),
            ));
        }
        // SAFETY: pointer and length of a live byte string.
        if unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) } < 0 {
            return Err(RuntimeError::sys(
                format!("setdomainname {d:?}"),
                std::io::Error::last_os_error(),
            ));
        }
    }
    let ctx = RootfsContext {
        spec: plan.spec,
        rootfs: plan.rootfs,
        bundle: plan.bundle,
        cgroup_paths: &plan.cgroup_paths,
        userns: plan.new_userns,
        cgroupns: plan.new_cgroupns,
    };
    let _root = rootfs::prepare(&ctx)?;
    let hooks = plan.spec.hooks().as_ref();
    #[allow(deprecated)]
    let parent_hooks = hooks.is_some_and(|h| {
        h.prestart().as_ref().is_some_and(|v| !v.is_empty())
            || h.create_runtime().as_ref().is_some_and(|v| !v.is_empty())
    });
    if parent_hooks {
        chan.send(&Msg::RunHooks)?;
        chan.expect(&Msg::HooksDone, "waiting for prestart hooks")?;
    }
    if let Some(cc) = hooks.and_then(|h| h.create_container().as_ref()) {
        let state = hook_state(plan, "created", host_pid);
        hooks::run("createContainer", cc, &state)?;
    }
    rootfs::enter(plan.rootfs, plan.no_pivot, plan.spec)?;
    if plan.process.terminal {
        setup_console(plan)?;
    }
    let linux = plan.spec.linux().as_ref();
    if let Some(sysctl) = linux.and_then(|l| l.sysctl().as_ref()) {
        for (k, v) in sysctl {
            let path = format!("/proc/sys/{}", k.replace('.', "/"));
            std::fs::write(&path, v).map_err(|e| RuntimeError::io("write sysctl", &path, e))?;
        }
    }
    if plan
        .spec
        .root()
        .as_ref()
        .is_some_and(|r| r.readonly() == Some(true))
    {
        rootfs::readonly_root()?;
    }
    if let Some(ro) = linux.and_then(|l| l.readonly_paths().as_ref()) {
        rootfs::readonly_paths(ro)?;
    }
    if let Some(masked) = linux.and_then(|l| l.masked_paths().as_ref()) {
        rootfs::mask_paths(masked)?;
    }
    process::apply_labels(&plan.process)?;
    // The cwd is created (as root, before the uid change) if missing, as runc does.
    if std::fs::metadata(&plan.process.cwd).is_err() {
        let root = Root::open(Path::new("/")).map_err(|e| RuntimeError::io("open", "/", e))?;
        root.mkdir_all(&plan.process.cwd, 0o755)
            .map_err(|e| RuntimeError::io("create cwd", &plan.process.cwd, e))?;
    }
    let mut env = plan.process.env.clone();
    process::add_home(&mut env, plan.process.user.uid());
    if let Some(fd) = process::finalize(&plan.process, true)? {
        chan.send_with_fd(&Msg::SeccompFd, Some(fd.as_raw_fd()))?;
    }
    process::enter_cwd(&plan.process.cwd)?;
    let exe = process::find_executable(&plan.process.args[0], &env)?;
    let image = ExecImage::new(&exe, &plan.process.args, &env)?;
    process::clear_pdeathsig()?;
    chan.send(&Msg::Ready)?;
    Ok((image, host_pid))
}

fn hook_state<'a>(plan: &'a InitPlan, status: &'a str, pid: i32) -> HookState<'a> {
    HookState {
        oci_version: plan.spec.version(),
        id: plan.id,
        status,
        pid: Some(pid),
        bundle: plan.bundle.to_str().unwrap_or(""),
        annotations: plan.spec.annotations().as_ref(),
    }
}

fn setup_console(plan: &InitPlan) -> Result<()> {
    let Console::Socket(sock) = &plan.console else {
        return Err(RuntimeError::Init(
            "process.terminal is true but no --console-socket was given".into(),
        ));
    };
    let (master, slave) = crate::tty::open_pty()?;
    if let Some(b) = plan.spec.process().as_ref().and_then(|p| p.console_size()) {
        crate::tty::set_size(&master, b.height() as u16, b.width() as u16)?;
    }
    crate::tty::send_master(sock, &master, &slave)?;
    drop(master);
    // /dev/console is the pty, as runc makes it.
    let root = Root::open(Path::new("/")).map_err(|e| RuntimeError::io("open", "/", e))?;
    if let Ok(target) = root.mkfile(Path::new("/dev/console")) {
        let _ = nix::mount::mount(
            Some(slave.as_str()),
            rootfs::paths::fd_path(&target).as_str(),
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        );
    }
    crate::tty::attach_slave(&slave)
}

/// After Ready: wait for start, run startContainer hooks, exec. Returns only on failure.
fn finish(plan: &InitPlan, chan: &Channel, image: &ExecImage, host_pid: i32) -> RuntimeError {
    let mut fifo_writer = None;
    match &plan.start {
        StartSignal::Fifo(fd) => {
            let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
            // Blocks until `start` opens the fifo for reading. The descriptor stays open
            // (close-on-exec) until execve, so `start` sees end-of-file exactly when the
            // user's process is executing, and runs poststart hooks only then.
            match std::fs::OpenOptions::new().write(true).open(&path) {
                Ok(mut f) => {
                    use std::io::Write;
                    if let Err(e) = f.write_all(b"0") {
                        return RuntimeError::io("write exec fifo", path, e);
                    }
                    fifo_writer = Some(f);
                }
                Err(e) => return RuntimeError::io("open exec fifo", path, e),
            }
        }
        StartSignal::Channel => {
            if let Err(e) = chan.expect(&Msg::Start, "waiting for start") {
                return e;
            }
        }
    }
    if let Some(sc) = plan
        .spec
        .hooks()
        .as_ref()
        .and_then(|h| h.start_container().as_ref())
    {
        let state = hook_state(plan, "created", host_pid);
        if let Err(e) = hooks::run("startContainer", sc, &state) {
            return e;
        }
    }
    let err = process::exec(&plan.process, image);
    drop(fifo_writer);
    err
}
