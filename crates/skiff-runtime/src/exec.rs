//! `exec`: a new process inside a running container's namespaces and cgroup.
//!
//! The runtime forks an intermediate that joins the init's namespaces (user first), which
//! forks the process (as the runtime's child, `CLONE_PARENT`) so that it is inside the pid
//! namespace too. The runtime puts it in the cgroup and sets its rlimits, then lets it go.

use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::Process;

use crate::container::Runtime;
use crate::error::{errno, Result, RuntimeError};
use crate::init::Console;
use crate::namespaces::NsPlan;
use crate::process::{self, ExecImage, ProcessPlan};
use crate::state::Status;
use crate::sync::{Channel, Msg};

/// Options of `exec`.
#[derive(Debug, Default)]
pub struct ExecOptions {
    pub process: Process,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: i32,
}

impl Runtime {
    /// Start a process in a container; returns its pid (the caller waits for it, or not).
    pub fn exec(
        &self,
        id: &str,
        opts: &ExecOptions,
        console_override: Option<UnixStream>,
    ) -> Result<Pid> {
        let st = self.load(id)?;
        let status = self.status(&st);
        if status != Status::Running && status != Status::Created {
            return Err(RuntimeError::BadState {
                id: id.into(),
                status: status.to_string(),
                op: "exec",
                needed: "running",
            });
        }
        let ns = NsPlan::of_process(st.pid, &st.spec)?;
        let seccomp = match st.spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
            Some(p) => Some(self.seccomp_filter(p)?),
            None => None,
        };
        let plan = ProcessPlan::new(&opts.process, seccomp, opts.preserve_fds);
        if plan.args.is_empty() {
            return Err(RuntimeError::Usage("exec: no command given".into()));
        }
        let console = match (console_override, &opts.console_socket) {
            (Some(s), _) => Console::Socket(s),
            (None, Some(p)) => Console::Socket(
                UnixStream::connect(p)
                    .map_err(|e| RuntimeError::io("connect to console socket", p, e))?,
            ),
            (None, None) if plan.terminal => {
                return Err(RuntimeError::Usage(
                    "exec --tty needs --console-socket".into(),
                ))
            }
            (None, None) => Console::None,
        };
        let cg = skiff_cgroups::from_paths(st.cgroup_paths.clone())?;
        // The process moves itself into the cgroup (fast: see CgroupManager::join_self),
        // except inside a user namespace, where it cannot write the host's cgroup files.
        let in_userns = ns
            .join
            .iter()
            .any(|(t, _, _)| *t == oci_spec::runtime::LinuxNamespaceType::User);
        let child_cg = if in_userns {
            None
        } else {
            Some(cg.join_files()?)
        };
        let (parent_chan, child_chan) = Channel::pair()?;
        let parent_fd = parent_chan.raw();
        let report = Channel::from_fd(rustix::io::dup(&child_chan).map_err(|e| {
            RuntimeError::sys("dup", std::io::Error::from_raw_os_error(e.raw_os_error()))
        })?);
        let mid = crate::fork::clone_child(0, move || {
            // SAFETY: see container::close_in_child; this child never returns.
            unsafe { libc::close(parent_fd) };
            if let Err(e) = ns.setns_all() {
                let _ = report.send(&Msg::Error(e.to_string()));
                return 1;
            }
            match crate::fork::clone_child(libc::CLONE_PARENT, move || {
                child(plan, console, child_cg, &child_chan)
            }) {
                Ok(pid) => {
                    // Our clone's return value is the pid in the runtime's pid namespace; the
                    // child only knows its pid inside the container.
                    let _ = report.send(&Msg::Pid(pid.as_raw()));
                    0
                }
                Err(e) => {
                    let _ = report.send(&Msg::Error(e.to_string()));
                    1
                }
            }
        })?;
        let mid_status = waitpid(mid, None).map_err(|e| RuntimeError::sys("wait", errno(e)))?;
        let pid = match parent_chan.recv()? {
            Some(Msg::Pid(p)) => Pid::from_raw(p),
            Some(Msg::Error(e)) => return Err(RuntimeError::Init(e)),
            _ => {
                return Err(RuntimeError::Init(format!(
                    "exec: joining the namespaces of container {id} failed ({mid_status:?})"
                )))
            }
        };
        let fail = |e: RuntimeError| {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = waitpid(pid, None);
            e
        };
        if in_userns {
            cg.apply(pid.as_raw()).map_err(|e| fail(e.into()))?;
        }
        process::apply_rlimits(pid.as_raw(), &opts.process).map_err(fail)?;
        parent_chan.send(&Msg::Go).map_err(fail)?;
        let mut msg = parent_chan.recv_with_fd().map_err(fail)?;
        if let Some((Msg::SeccompFd, Some(fd))) = msg {
            crate::container::send_to_seccomp_agent(&st, pid.as_raw(), fd).map_err(fail)?;
            msg = parent_chan.recv_with_fd().map_err(fail)?;
        }
        match msg.map(|(m, _)| m) {
            Some(Msg::Ready) => {}
            Some(Msg::Error(e)) => return Err(fail(RuntimeError::Init(e))),
            _ => {
                return Err(fail(RuntimeError::Init(
                    "exec: the process died during setup".into(),
                )))
            }
        }
        if let Some(pf) = &opts.pid_file {
            crate::state::write_pid_file(pf, pid.as_raw()).map_err(fail)?;
        }
        parent_chan.send(&Msg::Start).map_err(fail)?;
        Ok(pid)
    }
}

/// The exec'd process, inside the container's namespaces.
fn child(
    plan: ProcessPlan,
    console: Console,
    cgroup: Option<Vec<skiff_cgroups::JoinFile>>,
    chan: &Channel,
) -> i32 {
    let setup = || -> Result<ExecImage> {
        process::harden_child()?;
        chan.expect(&Msg::Go, "waiting for the runtime")?;
        if let Some(files) = &cgroup {
            skiff_cgroups::join_with(files)?;
        }
        if plan.terminal {
            let Console::Socket(sock) = &console else {
                return Err(RuntimeError::Init("terminal without console socket".into()));
            };
            let (master, slave) = crate::tty::open_pty()?;
            crate::tty::send_master(sock, &master, &slave)?;
            drop(master);
            crate::tty::attach_slave(&slave)?;
        }
        process::apply_labels(&plan)?;
        let mut env = plan.env.clone();
        process::add_home(&mut env, plan.user.uid());
        if let Some(fd) = process::finalize(&plan, true)? {
            use std::os::fd::AsRawFd;
            chan.send_with_fd(&Msg::SeccompFd, Some(fd.as_raw_fd()))?;
        }
        process::enter_cwd(&plan.cwd)?;
        let exe = process::find_executable(&plan.args[0], &env)?;
        let image = ExecImage::new(&exe, &plan.args, &env)?;
        process::clear_pdeathsig()?;
        chan.send(&Msg::Ready)?;
        chan.expect(&Msg::Start, "waiting for start")?;
        Ok(image)
    };
    match setup() {
        Ok(image) => {
            let e = process::exec(&plan, &image);
            eprintln!("skiff exec: {e}");
            127
        }
        Err(e) => {
            let _ = chan.send(&Msg::Error(e.to_string()));
            1
        }
    }
}
