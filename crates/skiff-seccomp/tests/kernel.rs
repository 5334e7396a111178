//! Real kernel tests: fork a child, set no_new_privs, install a compiled filter, try syscalls,
//! report through the exit status. The child only makes raw syscalls (the parent test harness
//! is multi-threaded, so nothing that could take a lock or allocate runs after fork).

use std::time::Instant;

use oci_spec::runtime::LinuxSeccomp;
use serde_json::json;
use skiff_seccomp::{
    compile, docker_default_profile, set_no_new_privs, CompiledFilter, FilterCache,
};

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Exited(i32),
    Signaled(i32),
}

/// Run `body` in a forked child after installing `filter`; exit code 0 means every check in
/// `body` passed, 100/101 mean installing failed.
fn run_child(filter: &CompiledFilter, body: fn(Option<i32>) -> i32) -> Outcome {
    // SAFETY: the child only calls async-signal-safe code (raw syscalls, no allocation) and
    // leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = if set_no_new_privs().is_err() {
            100
        } else {
            match filter.install() {
                Ok(fd) => body(fd.as_ref().map(std::os::fd::AsRawFd::as_raw_fd)),
                Err(_) => 101,
            }
        };
        // SAFETY: terminate the child without running the parent's atexit handlers.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid);
    if libc::WIFEXITED(status) {
        Outcome::Exited(libc::WEXITSTATUS(status))
    } else {
        Outcome::Signaled(libc::WTERMSIG(status))
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Result of a raw syscall as -errno or the value.
fn sys(nr: libc::c_long, a: libc::c_long, b: libc::c_long) -> i64 {
    // SAFETY: test syscalls with integer arguments or NULL pointers only.
    let r = unsafe {
        libc::syscall(
            nr,
            a,
            b,
            0 as libc::c_long,
            0 as libc::c_long,
            0 as libc::c_long,
        )
    };
    if r < 0 {
        -i64::from(errno())
    } else {
        r
    }
}

fn profile(v: serde_json::Value) -> LinuxSeccomp {
    serde_json::from_value(v).unwrap()
}

fn filter(v: serde_json::Value) -> CompiledFilter {
    compile(&profile(v)).unwrap()
}

#[test]
fn errno_with_custom_errno_ret() {
    let f = filter(json!({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
        {"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}));
    let out = run_child(&f, |_| {
        let path = c"/tmp/skiff-seccomp-test-dir-must-not-exist";
        // SAFETY: valid C string.
        let r = unsafe { libc::mkdirat(libc::AT_FDCWD, path.as_ptr(), 0o700) };
        if r != -1 || errno() != libc::EACCES {
            return 1;
        }
        // Unlisted syscalls keep working.
        if sys(libc::SYS_getpid, 0, 0) <= 0 {
            return 2;
        }
        0
    });
    assert_eq!(out, Outcome::Exited(0));
}

#[test]
fn errno_defaults_to_eperm_and_default_errno_ret() {
    let f = filter(
        json!({"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":71,"syscalls":[
        {"names":["exit_group","exit","getpid","getppid"],"action":"SCMP_ACT_ALLOW"},
        {"names":["getuid"],"action":"SCMP_ACT_ERRNO"}]}),
    );
    let out = run_child(&f, |_| {
        if sys(libc::SYS_getuid, 0, 0) != -i64::from(libc::EPERM) {
            return 1;
        }
        // Not listed, below the largest listed number: default ERRNO(71 = EPROTO).
        if sys(libc::SYS_getgid, 0, 0) != -71 {
            return 2;
        }
        // Above the largest listed number (getppid = 110): -ENOSYS stub.
        if sys(libc::SYS_getrandom, 0, 0) != -i64::from(libc::ENOSYS) {
            return 3;
        }
        // clone3 unnamed: -ENOSYS.
        if sys(libc::SYS_clone3, 0, 0) != -i64::from(libc::ENOSYS) {
            return 4;
        }
        0
    });
    assert_eq!(out, Outcome::Exited(0));
}

#[test]
fn clone3_enosys_even_below_the_largest_named_syscall() {
    // faccessat2 (439) is above clone3 (435): runc's stub alone would give EPERM here.
    let f = filter(json!({"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
        {"names":["exit_group","exit","faccessat2"],"action":"SCMP_ACT_ALLOW"}]}));
    let out = run_child(&f, |_| {
        if sys(libc::SYS_clone3, 0, 0) != -i64::from(libc::ENOSYS) {
            return 1;
        }
        if sys(libc::SYS_getppid, 0, 0) != -i64::from(libc::EPERM) {
            return 2;
        }
        0
    });
    assert_eq!(out, Outcome::Exited(0));
}

fn one_rule(action: &str) -> CompiledFilter {
    filter(
        json!({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getppid"],"action":action}]}),
    )
}

fn call_getppid(_: Option<i32>) -> i32 {
    let r = sys(libc::SYS_getppid, 0, 0);
    if r > 0 {
        0
    } else {
        (-r) as i32
    }
}

#[test]
fn kill_actions_and_trap_deliver_sigsys() {
    for action in [
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_KILL",
        "SCMP_ACT_TRAP",
    ] {
        assert_eq!(
            run_child(&one_rule(action), call_getppid),
            Outcome::Signaled(libc::SIGSYS),
            "{action}"
        );
    }
}

#[test]
fn log_allows_and_trace_without_tracer_is_enosys() {
    assert_eq!(
        run_child(&one_rule("SCMP_ACT_LOG"), call_getppid),
        Outcome::Exited(0)
    );
    assert_eq!(
        run_child(&one_rule("SCMP_ACT_TRACE"), call_getppid),
        Outcome::Exited(libc::ENOSYS)
    );
}

#[test]
fn notify_returns_a_listener_fd() {
    let f = one_rule("SCMP_ACT_NOTIFY");
    assert!(f.needs_notify());
    let out = run_child(&f, |fd| {
        let Some(fd) = fd else { return 1 };
        // SECCOMP_IOCTL_NOTIF_ID_VALID = _IOW('!', 2, __u64): ENOENT for an unknown id proves
        // this is a seccomp listener (any other fd gives ENOTTY/EINVAL).
        const ID_VALID: libc::c_ulong = 0x4008_2102;
        let id: u64 = 12345;
        // SAFETY: the ioctl reads a u64 from a valid pointer.
        let r = unsafe { libc::ioctl(fd, ID_VALID as _, &id) };
        if r == -1 && errno() == libc::ENOENT {
            0
        } else {
            2
        }
    });
    assert_eq!(out, Outcome::Exited(0));
}

#[test]
fn flags_tsync_log_spec_allow_install() {
    let f = filter(json!({"defaultAction":"SCMP_ACT_ALLOW",
        "flags":["SECCOMP_FILTER_FLAG_TSYNC","SECCOMP_FILTER_FLAG_LOG","SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
        "syscalls":[{"names":["getppid"],"action":"SCMP_ACT_ERRNO","errnoRet":5}]}));
    assert_eq!(f.flags(), 0b111);
    assert_eq!(run_child(&f, call_getppid), Outcome::Exited(libc::EIO));
}

#[test]
fn argument_filters() {
    // socket(AF_INET) denied, AF_UNIX allowed; unshare denied when CLONE_NEWUSER is in the mask;
    // personality: two conditions on arg 0 are OR-ed (runc splits them into two rules).
    let f = filter(json!({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
        {"names":["socket"],"action":"SCMP_ACT_ERRNO","errnoRet":97,"args":[{"index":0,"value":2,"op":"SCMP_CMP_EQ"}]},
        {"names":["unshare"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":0x1000_0000u64,"valueTwo":0x1000_0000u64,"op":"SCMP_CMP_MASKED_EQ"}]},
        {"names":["personality"],"action":"SCMP_ACT_ERRNO","errnoRet":22,"args":[
            {"index":0,"value":8,"op":"SCMP_CMP_EQ"},{"index":0,"value":0x20000,"op":"SCMP_CMP_EQ"}]},
        {"names":["setpgid"],"action":"SCMP_ACT_ERRNO","errnoRet":33,"args":[
            {"index":0,"value":0,"op":"SCMP_CMP_NE"},{"index":1,"value":7,"op":"SCMP_CMP_GT"}]}]}));
    let out = run_child(&f, |_| {
        if sys(
            libc::SYS_socket,
            libc::AF_INET.into(),
            libc::SOCK_STREAM.into(),
        ) != -97
        {
            return 1;
        }
        if sys(
            libc::SYS_socket,
            libc::AF_UNIX.into(),
            libc::SOCK_STREAM.into(),
        ) < 0
        {
            return 2;
        }
        if sys(
            libc::SYS_unshare,
            (libc::CLONE_NEWUSER | libc::CLONE_NEWNS).into(),
            0,
        ) != -i64::from(libc::EPERM)
        {
            return 3;
        }
        if sys(libc::SYS_unshare, 0, 0) != 0 {
            return 4;
        }
        if sys(libc::SYS_personality, 8, 0) != -22 || sys(libc::SYS_personality, 0x20000, 0) != -22
        {
            return 5;
        }
        if sys(libc::SYS_personality, 0xffff_ffff, 0) < 0 {
            return 6;
        }
        // Conditions on different args are AND-ed: setpgid(1, 8) denied, setpgid(1, 7) reaches
        // the kernel (ESRCH/EPERM, never 33).
        if sys(libc::SYS_setpgid, 1, 8) != -33 || sys(libc::SYS_setpgid, 1, 7) == -33 {
            return 7;
        }
        0
    });
    assert_eq!(out, Outcome::Exited(0));
}

fn docker_caps() -> Vec<String> {
    [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FOWNER",
        "CAP_SETUID",
        "CAP_SETGID",
        "CAP_NET_RAW",
        "CAP_SYS_CHROOT",
    ]
    .map(String::from)
    .to_vec()
}

#[test]
fn docker_default_profile_in_a_child() {
    let t = Instant::now();
    let oci = docker_default_profile(&docker_caps()).unwrap();
    let convert = t.elapsed();
    let t = Instant::now();
    let f = compile(&oci).unwrap();
    let compiled = t.elapsed();
    println!(
        "docker default profile: convert {convert:?}, compile {compiled:?}, {} insns",
        f.len()
    );
    let out = run_child(&f, |_| {
        if sys(libc::SYS_getpid, 0, 0) <= 0 {
            return 1;
        }
        if sys(libc::SYS_unshare, libc::CLONE_NEWNS.into(), 0) != -i64::from(libc::EPERM) {
            return 2;
        }
        let (src, dst, ty) = (c"none", c"/mnt", c"tmpfs");
        // SAFETY: valid C strings, NULL data.
        let r =
            unsafe { libc::mount(src.as_ptr(), dst.as_ptr(), ty.as_ptr(), 0, std::ptr::null()) };
        if r != -1 || errno() != libc::EPERM {
            return 3;
        }
        if sys(libc::SYS_clone3, 0, 0) != -i64::from(libc::ENOSYS) {
            return 4;
        }
        // clone with a namespace flag is denied by the masked rule.
        if sys(
            libc::SYS_clone,
            (libc::CLONE_NEWNET | libc::SIGCHLD).into(),
            0,
        ) != -i64::from(libc::EPERM)
        {
            return 5;
        }
        // A syscall newer than libseccomp 2.5.4 knows (mseal = 462) gets -ENOSYS, not EPERM.
        if sys(462, 0, 0) != -i64::from(libc::ENOSYS) {
            return 6;
        }
        if sys(
            libc::SYS_socket,
            libc::AF_INET.into(),
            libc::SOCK_DGRAM.into(),
        ) < 0
        {
            return 7;
        }
        0
    });
    assert_eq!(out, Outcome::Exited(0));
}

#[test]
fn docker_default_profile_with_sys_admin_allows_unshare() {
    let mut caps = docker_caps();
    caps.push("CAP_SYS_ADMIN".into());
    let f = compile(&docker_default_profile(&caps).unwrap()).unwrap();
    let out = run_child(&f, |_| {
        // We are root with all capabilities, so unshare(CLONE_NEWNS) succeeds once seccomp allows it.
        if sys(libc::SYS_unshare, libc::CLONE_NEWNS.into(), 0) != 0 {
            return 1;
        }
        0
    });
    assert_eq!(out, Outcome::Exited(0));
}

#[test]
fn cached_filter_installs_like_a_fresh_one() {
    let dir = tempfile::tempdir().unwrap();
    let oci = docker_default_profile(&docker_caps()).unwrap();
    let t = Instant::now();
    let fresh = FilterCache::new(Some(dir.path().into()))
        .get_or_compile(&oci)
        .unwrap();
    let cold = t.elapsed();
    let cache = FilterCache::new(Some(dir.path().into()));
    let t = Instant::now();
    let from_disk = cache.get_or_compile(&oci).unwrap();
    let disk = t.elapsed();
    let t = Instant::now();
    let from_mem = cache.get_or_compile(&oci).unwrap();
    let mem = t.elapsed();
    println!("docker default profile via FilterCache: compile+store {cold:?}, disk hit {disk:?}, memory hit {mem:?}");
    assert_eq!(*fresh, *from_disk);
    assert!(std::sync::Arc::ptr_eq(&from_disk, &from_mem));
    assert_eq!(cache.stats().compiled, 0);
    let out = run_child(&from_mem, |_| {
        if sys(libc::SYS_unshare, libc::CLONE_NEWNS.into(), 0) != -i64::from(libc::EPERM) {
            return 1;
        }
        0
    });
    assert_eq!(out, Outcome::Exited(0));
}
