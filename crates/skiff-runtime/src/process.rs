//! The last steps of every container process (init and exec): identity, capabilities,
//! no_new_privs, seccomp, descriptors, and execve. Runs in the forked child.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use oci_spec::runtime::{PosixRlimitType, Process, User};
use skiff_seccomp::CompiledFilter;

use crate::caps::CapPlan;
use crate::error::{Result, RuntimeError};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What the child needs to become the container's process, resolved before fork.
#[derive(Debug, Clone)]
pub struct ProcessPlan {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: PathBuf,
    pub user: User,
    pub caps: CapPlan,
    pub no_new_privileges: bool,
    pub seccomp: Option<Arc<CompiledFilter>>,
    pub apparmor: Option<String>,
    pub selinux: Option<String>,
    pub terminal: bool,
    /// Descriptors 3..3+n stay open across exec (`--preserve-fds`).
    pub preserve_fds: i32,
}

impl ProcessPlan {
    pub fn new(
        p: &Process,
        seccomp: Option<Arc<CompiledFilter>>,
        preserve_fds: i32,
    ) -> ProcessPlan {
        ProcessPlan {
            args: p.args().clone().unwrap_or_default(),
            env: p.env().clone().unwrap_or_default(),
            cwd: p.cwd().clone(),
            user: p.user().clone(),
            caps: CapPlan::new(p.capabilities().as_ref()),
            no_new_privileges: p.no_new_privileges().unwrap_or(false),
            seccomp,
            apparmor: p.apparmor_profile().clone().filter(|s| !s.is_empty()),
            selinux: p.selinux_label().clone().filter(|s| !s.is_empty()),
            terminal: p.terminal().unwrap_or(false),
            preserve_fds,
        }
    }
}

fn last_err(op: &str) -> RuntimeError {
    RuntimeError::sys(op.to_string(), std::io::Error::last_os_error())
}

fn prctl(op: libc::c_int, arg: libc::c_ulong) -> std::io::Result<()> {
    // SAFETY: prctl with integer arguments only; no memory is passed.
    let r = unsafe {
        libc::prctl(
            op,
            arg,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Make the process undumpable (so a container cannot open /proc/<pid>/exe of the runtime
/// while it is inside: CVE-2019-5736) and kill it if its parent dies during setup.
pub fn harden_child() -> Result<()> {
    prctl(libc::PR_SET_DUMPABLE, 0).map_err(|e| RuntimeError::sys("prctl(PR_SET_DUMPABLE)", e))?;
    prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong)
        .map_err(|e| RuntimeError::sys("prctl(PR_SET_PDEATHSIG)", e))
}

/// Setup is over: the process no longer dies with the runtime.
pub fn clear_pdeathsig() -> Result<()> {
    prctl(libc::PR_SET_PDEATHSIG, 0).map_err(|e| RuntimeError::sys("prctl(PR_SET_PDEATHSIG)", e))
}

/// Apply the AppArmor profile / SELinux label for the next exec, where the host has them.
pub fn apply_labels(plan: &ProcessPlan) -> Result<()> {
    if let Some(profile) = &plan.apparmor {
        if apparmor_enabled() {
            let attr = if Path::new("/proc/self/attr/apparmor/exec").exists() {
                "/proc/self/attr/apparmor/exec"
            } else {
                "/proc/self/attr/exec"
            };
            std::fs::write(attr, format!("exec {profile}"))
                .map_err(|e| RuntimeError::io("apply apparmor profile", attr, e))?;
        }
    }
    if let Some(label) = &plan.selinux {
        if selinux_enabled() {
            std::fs::write("/proc/self/attr/exec", label)
                .map_err(|e| RuntimeError::io("apply selinux label", "/proc/self/attr/exec", e))?;
        }
    }
    Ok(())
}

pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .map(|s| s.trim() == "Y")
        .unwrap_or(false)
}

pub fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

/// Switch to the configured user, keeping the permitted capabilities for `apply_sets`.
pub fn switch_user(user: &User, allow_setgroups: bool) -> Result<()> {
    prctl(libc::PR_SET_KEEPCAPS, 1).map_err(|e| RuntimeError::sys("prctl(PR_SET_KEEPCAPS)", e))?;
    let gid = user.gid();
    let uid = user.uid();
    if allow_setgroups {
        let groups: Vec<libc::gid_t> = user.additional_gids().clone().unwrap_or_default();
        // SAFETY: the pointer and length describe a live Vec of gid_t.
        let r = unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) };
        if r < 0 {
            return Err(last_err("setgroups"));
        }
    }
    // Raw syscalls: the thread-broadcasting libc wrappers are pointless in a single-threaded
    // child, and these cannot fail half-way.
    // SAFETY: integer arguments only.
    if unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) } < 0 {
        return Err(RuntimeError::Init(format!(
            "setresgid({gid}): {} (is the gid mapped in the user namespace?)",
            std::io::Error::last_os_error()
        )));
    }
    // SAFETY: integer arguments only.
    if unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) } < 0 {
        return Err(RuntimeError::Init(format!(
            "setresuid({uid}): {} (is the uid mapped in the user namespace?)",
            std::io::Error::last_os_error()
        )));
    }
    prctl(libc::PR_SET_KEEPCAPS, 0).map_err(|e| RuntimeError::sys("prctl(PR_SET_KEEPCAPS)", e))?;
    if let Some(mask) = user.umask() {
        // SAFETY: umask cannot fail.
        unsafe { libc::umask(mask as libc::mode_t) };
    } else {
        // SAFETY: umask cannot fail.
        unsafe { libc::umask(0o022) };
    }
    Ok(())
}

/// HOME from the container's /etc/passwd when the environment has none (as runc does).
pub fn add_home(env: &mut Vec<String>, uid: u32) {
    if env.iter().any(|e| e.starts_with("HOME=")) {
        return;
    }
    let home = std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 6 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[5].to_string())
            })
        })
        .unwrap_or_else(|| "/".to_string());
    env.push(format!("HOME={home}"));
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(p) {
        Ok(m) => m.is_file() && m.permissions().mode() & 0o111 != 0,
        Err(_) => false,
    }
}

/// An OS error worded as Go prints it ("no such file or directory"): clients such as the
/// docker CLI match these words to pick exit codes 126/127.
fn go_error_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    let s = s.split(" (os error").next().unwrap_or(&s);
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Resolve args[0] like execvp with the container's PATH; errors read like runc's.
pub fn find_executable(arg0: &str, env: &[String]) -> Result<PathBuf> {
    if arg0.contains('/') {
        let p = PathBuf::from(arg0);
        return match std::fs::metadata(&p) {
            Ok(m) if m.is_dir() => Err(RuntimeError::Init(format!(
                "exec: {arg0:?}: is a directory"
            ))),
            Ok(_) if is_executable(&p) => Ok(p),
            Ok(_) => Err(RuntimeError::Init(format!(
                "exec: {arg0:?}: permission denied"
            ))),
            Err(e) => Err(RuntimeError::Init(format!(
                "exec: {arg0:?}: stat {arg0}: {}",
                go_error_text(&e)
            ))),
        };
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let cand = Path::new(dir).join(arg0);
        if is_executable(&cand) {
            return Ok(cand);
        }
    }
    Err(RuntimeError::Init(format!(
        "exec: {arg0:?}: executable file not found in $PATH"
    )))
}

/// Everything the last step needs, as C strings built before the point of no return.
pub struct ExecImage {
    path: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
}

fn cstr(s: &str, what: &str) -> Result<CString> {
    CString::new(s).map_err(|_| RuntimeError::Init(format!("{what} {s:?} contains a NUL byte")))
}

impl ExecImage {
    pub fn new(path: &Path, args: &[String], env: &[String]) -> Result<ExecImage> {
        Ok(ExecImage {
            path: cstr(&path.to_string_lossy(), "executable path")?,
            argv: args
                .iter()
                .map(|a| cstr(a, "argument"))
                .collect::<Result<_>>()?,
            envp: env
                .iter()
                .map(|a| cstr(a, "environment variable"))
                .collect::<Result<_>>()?,
        })
    }
}

/// Set the process's own rlimits (used where the parent cannot prlimit the child).
pub fn resource(t: PosixRlimitType) -> rustix::process::Resource {
    use rustix::process::Resource as R;
    match t {
        PosixRlimitType::RlimitCpu => R::Cpu,
        PosixRlimitType::RlimitFsize => R::Fsize,
        PosixRlimitType::RlimitData => R::Data,
        PosixRlimitType::RlimitStack => R::Stack,
        PosixRlimitType::RlimitCore => R::Core,
        PosixRlimitType::RlimitRss => R::Rss,
        PosixRlimitType::RlimitNproc => R::Nproc,
        PosixRlimitType::RlimitNofile => R::Nofile,
        PosixRlimitType::RlimitMemlock => R::Memlock,
        PosixRlimitType::RlimitAs => R::As,
        PosixRlimitType::RlimitLocks => R::Locks,
        PosixRlimitType::RlimitSigpending => R::Sigpending,
        PosixRlimitType::RlimitMsgqueue => R::Msgqueue,
        PosixRlimitType::RlimitNice => R::Nice,
        PosixRlimitType::RlimitRtprio => R::Rtprio,
        PosixRlimitType::RlimitRttime => R::Rttime,
    }
}

/// Apply the process's rlimits to `pid` from outside (the parent does this, so the limits
/// never constrain the runtime's own setup work in the child).
pub fn apply_rlimits(pid: i32, p: &Process) -> Result<()> {
    for r in p.rlimits().iter().flatten() {
        let lim = rustix::process::Rlimit {
            current: (r.soft() != u64::MAX).then_some(r.soft()),
            maximum: (r.hard() != u64::MAX).then_some(r.hard()),
        };
        let pid = rustix::process::Pid::from_raw(pid);
        rustix::process::prlimit(pid, resource(r.typ()), lim).map_err(|e| {
            RuntimeError::sys(
                format!(
                    "set rlimit {:?} to soft {} hard {}",
                    r.typ(),
                    r.soft(),
                    r.hard()
                ),
                std::io::Error::from_raw_os_error(e.raw_os_error()),
            )
        })?;
    }
    Ok(())
}

/// Identity, capabilities, no_new_privs and seccomp (seccomp before the capability drop when
/// no_new_privs is off, since installing it then needs CAP_SYS_ADMIN; last otherwise).
///
/// A filter with `SCMP_ACT_NOTIFY` rules is always installed here (not at exec), so its
/// listener descriptor, returned, can be handed to the seccomp agent before the process runs.
pub fn finalize(plan: &ProcessPlan, allow_setgroups: bool) -> Result<Option<OwnedFd>> {
    let mut listener = None;
    if !plan.no_new_privileges {
        if let Some(f) = &plan.seccomp {
            listener = f.install()?;
        }
    }
    plan.caps.apply_bounding()?;
    switch_user(&plan.user, allow_setgroups)?;
    plan.caps.apply_sets()?;
    if plan.no_new_privileges {
        prctl(libc::PR_SET_NO_NEW_PRIVS, 1)
            .map_err(|e| RuntimeError::sys("prctl(PR_SET_NO_NEW_PRIVS)", e))?;
        if let Some(f) = plan.seccomp.as_ref().filter(|f| f.needs_notify()) {
            listener = f.install()?;
        }
    }
    Ok(listener)
}

/// Change into the process's working directory, which must resolve inside the container.
pub fn enter_cwd(cwd: &Path) -> Result<()> {
    nix::unistd::chdir(cwd).map_err(|e| {
        RuntimeError::Init(format!(
            "chdir to cwd {:?} set in config.json: {}",
            cwd,
            crate::error::errno(e)
        ))
    })?;
    // A working directory outside the container's root (a leaked host directory) shows as
    // "(unreachable)" in getcwd: refuse it (CVE-2024-21626).
    let here =
        nix::unistd::getcwd().map_err(|e| RuntimeError::sys("getcwd", crate::error::errno(e)))?;
    if !here.is_absolute() || here.starts_with("(unreachable)") {
        return Err(RuntimeError::Init(format!(
            "cwd {} is outside the container",
            cwd.display()
        )));
    }
    Ok(())
}

/// The point of no return: install a late seccomp filter, close every descriptor above the
/// preserved ones, restore signal state, and execve.
pub fn exec(plan: &ProcessPlan, image: &ExecImage) -> RuntimeError {
    if plan.no_new_privileges {
        if let Some(f) = plan.seccomp.as_ref().filter(|f| !f.needs_notify()) {
            if let Err(e) = f.install() {
                return e.into();
            }
        }
    }
    // Mark every descriptor from 3 + preserve_fds upwards close-on-exec, so nothing of the
    // runtime (state dirs, cgroup dirs, sockets) reaches the container (CVE-2024-21626).
    let first = 3 + plan.preserve_fds.max(0) as libc::c_uint;
    // SAFETY: close_range only changes descriptor flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r < 0 {
        return last_err("close_range");
    }
    for fd in 3..first as i32 {
        // Preserved descriptors are handed over as they are: clear their close-on-exec flag.
        // SAFETY: fcntl on an integer descriptor; failures (EBADF) are harmless here.
        unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    }
    // SAFETY: resetting signal dispositions and the mask before exec, as the new program
    // expects a clean state (Rust ignores SIGPIPE in the runtime).
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let argv: Vec<*const libc::c_char> = image
        .argv
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let envp: Vec<*const libc::c_char> = image
        .envp
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    // SAFETY: path, argv and envp are NUL-terminated C strings in arrays terminated by a null
    // pointer, all alive until execve replaces the process image.
    unsafe { libc::execve(image.path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    RuntimeError::Init(format!(
        "exec {:?}: {}",
        image.path,
        std::io::Error::last_os_error()
    ))
}

/// Keep a borrowed descriptor number valid across the function (helper for fd paths).
pub fn raw(fd: &impl AsRawFd) -> i32 {
    fd.as_raw_fd()
}
