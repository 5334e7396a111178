//! Test support for the runtime end-to-end tests: a busybox OCI bundle built
//! locally from Debian's busybox-static, a typed editor for `config.json`, a
//! driver for a runc-compatible runtime CLI and a guard that cleans up every
//! container, cgroup and temp dir a test made, on every path.
//!
//! The runtime under test is `skiff runtime` (the `skiff` binary of this
//! package), or whatever `SKIFF_TEST_RUNTIME` names (e.g. `/usr/sbin/runc`),
//! called with no prefix arguments.

#![allow(dead_code)]

pub mod console;
pub mod seccomp;
pub mod spec;

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

pub use spec::Spec;

/// Host busybox-static used for every rootfs.
pub const BUSYBOX: &str = "/bin/busybox";

/// cgroup v1 controllers and the cgroup2 mount of a hybrid host (or the
/// unified root on a pure v2 host) where a runtime may create a cgroup.
pub const CGROUP_ROOTS: &[&str] = &[
    "/sys/fs/cgroup/blkio",
    "/sys/fs/cgroup/cpu",
    "/sys/fs/cgroup/cpuacct",
    "/sys/fs/cgroup/cpu,cpuacct",
    "/sys/fs/cgroup/cpuset",
    "/sys/fs/cgroup/devices",
    "/sys/fs/cgroup/freezer",
    "/sys/fs/cgroup/hugetlb",
    "/sys/fs/cgroup/memory",
    "/sys/fs/cgroup/net_cls",
    "/sys/fs/cgroup/net_prio",
    "/sys/fs/cgroup/net_cls,net_prio",
    "/sys/fs/cgroup/perf_event",
    "/sys/fs/cgroup/pids",
    "/sys/fs/cgroup/rdma",
    "/sys/fs/cgroup/misc",
    "/sys/fs/cgroup/systemd",
    "/sys/fs/cgroup/unified",
    "/sys/fs/cgroup",
];

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A name unique within this machine for this test run: `e2e-<tag>-<pid>-<n>`.
pub fn unique(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    format!("e2e-{tag}-{}-{n}", std::process::id())
}

/// The runtime binary and the arguments that come before `--root`.
#[derive(Clone, Debug)]
pub struct Runtime {
    pub bin: PathBuf,
    pub prefix: Vec<String>,
}

impl Runtime {
    pub fn from_env() -> Runtime {
        match std::env::var_os("SKIFF_TEST_RUNTIME") {
            Some(bin) if !bin.is_empty() => Runtime {
                bin: PathBuf::from(bin),
                prefix: Vec::new(),
            },
            _ => Runtime {
                bin: PathBuf::from(env!("CARGO_BIN_EXE_skiff")),
                prefix: vec!["runtime".to_string()],
            },
        }
    }

    /// True when the runtime under test is runc (used only to label known
    /// runc deviations from the OCI spec in failure messages).
    pub fn is_runc(&self) -> bool {
        self.bin
            .file_name()
            .is_some_and(|n| n.to_string_lossy().contains("runc"))
    }
}

/// What one runtime invocation produced.
#[derive(Debug)]
pub struct Out {
    pub cmd: String,
    /// Exit code; -1 when killed by a signal or timed out.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

impl Out {
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert!(
            self.code == 0 && !self.timed_out,
            "`{}` failed with {} (timed out: {})\nstdout:\n{}\nstderr:\n{}",
            self.cmd,
            self.code,
            self.timed_out,
            self.stdout,
            self.stderr
        );
        self
    }

    /// stdout split in trimmed lines.
    pub fn lines(&self) -> Vec<String> {
        self.stdout
            .lines()
            .map(|l| l.trim_end().to_string())
            .collect()
    }

    pub fn both(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` -> {}\nstdout:\n{}\nstderr:\n{}",
            self.cmd, self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `cmd` with stdin from /dev/null and stdout/stderr to files (never
/// pipes: a detached container inherits them and would hold a pipe open),
/// killing it after `timeout`.
pub fn run_cmd(mut cmd: Command, io_dir: &Path, timeout: Duration) -> Out {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let out_path = io_dir.join(format!("out-{n}"));
    let err_path = io_dir.join(format!("err-{n}"));
    let out_f = fs::File::create(&out_path).expect("create stdout file");
    let err_f = fs::File::create(&err_path).expect("create stderr file");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(out_f))
        .stderr(Stdio::from(err_f));
    let desc = format!("{cmd:?}");
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {desc}: {e}"));
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break Some(st);
        }
        if Instant::now() > deadline {
            timed_out = true;
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let read = |p: &Path| {
        let mut s = String::new();
        if let Ok(mut f) = fs::File::open(p) {
            let mut b = Vec::new();
            let _ = f.read_to_end(&mut b);
            s = String::from_utf8_lossy(&b).into_owned();
        }
        s
    };
    Out {
        cmd: desc,
        code: status.and_then(|s| s.code()).unwrap_or(-1),
        stdout: read(&out_path),
        stderr: read(&err_path),
        timed_out,
    }
}

/// Copies busybox and makes one symlink per applet plus /etc/passwd and
/// /etc/group, like scripts/make-busybox-bundle.sh.
pub fn make_rootfs(rootfs: &Path) {
    assert!(
        Path::new(BUSYBOX).exists(),
        "{BUSYBOX} is missing: install busybox-static"
    );
    for d in [
        "bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "root", "tmp",
    ] {
        fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    fs::set_permissions(rootfs, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::copy(BUSYBOX, rootfs.join("bin/busybox")).unwrap();
    fs::set_permissions(
        rootfs.join("bin/busybox"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    for applet in applets() {
        if applet == "bin/busybox" {
            continue;
        }
        let dst = rootfs.join(&applet);
        if let Some(parent) = dst.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        let _ = fs::remove_file(&dst);
        std::os::unix::fs::symlink("/bin/busybox", &dst).unwrap();
    }
    fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\n\
         daemon:x:1:1:daemon:/usr/sbin:/bin/false\n\
         nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n\
         skiff:x:1000:1000:skiff:/tmp:/bin/sh\n",
    )
    .unwrap();
    fs::write(
        rootfs.join("etc/group"),
        "root:x:0:\ndaemon:x:1:\nskiff:x:1000:\nextra:x:1001:skiff\nnogroup:x:65534:\n",
    )
    .unwrap();
    fs::write(rootfs.join("etc/hostname"), "skiff\n").unwrap();
}

fn applets() -> Vec<String> {
    static LIST: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    LIST.get_or_init(|| {
        let out = Command::new(BUSYBOX)
            .arg("--list-full")
            .output()
            .expect("busybox --list-full");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect()
    })
    .clone()
}

/// One test's world: its own `--root`, bundle, container id and cgroup path.
/// Dropping it kills and force-deletes every container it named, removes the
/// cgroups, namespaces and directories it made.
pub struct Env {
    pub rt: Runtime,
    pub id: String,
    /// The container ids to clean up (`id` plus any added with `new_id`).
    ids: std::cell::RefCell<Vec<String>>,
    /// cgroupsPath set in the spec (`/e2e-...`), removed on drop.
    pub cgroups_path: String,
    extra_cgroups: std::cell::RefCell<Vec<String>>,
    netns: std::cell::RefCell<Vec<String>>,
    pub spec: Spec,
    pub timeout: Duration,
    // Declared last so they are dropped after the containers are gone.
    root: tempfile::TempDir,
    bundle: tempfile::TempDir,
    io: tempfile::TempDir,
}

impl Env {
    pub fn new(tag: &str) -> Env {
        let id = unique(tag);
        let bundle = tempfile::Builder::new()
            .prefix("skiff-e2e-bundle-")
            .tempdir()
            .unwrap();
        // A user-namespaced init must be able to reach the rootfs.
        fs::set_permissions(bundle.path(), fs::Permissions::from_mode(0o755)).unwrap();
        make_rootfs(&bundle.path().join("rootfs"));
        let root = tempfile::Builder::new()
            .prefix("skiff-e2e-root-")
            .tempdir()
            .unwrap();
        let io = tempfile::Builder::new()
            .prefix("skiff-e2e-io-")
            .tempdir()
            .unwrap();
        let cgroups_path = format!("/{id}");
        let mut spec = Spec::default_runc();
        spec.cgroups_path(&cgroups_path);
        Env {
            rt: Runtime::from_env(),
            ids: std::cell::RefCell::new(vec![id.clone()]),
            id,
            cgroups_path,
            extra_cgroups: Default::default(),
            netns: Default::default(),
            spec,
            timeout: Duration::from_secs(30),
            root,
            bundle,
            io,
        }
    }

    pub fn bundle(&self) -> &Path {
        self.bundle.path()
    }
    pub fn rootfs(&self) -> PathBuf {
        self.bundle.path().join("rootfs")
    }
    pub fn root(&self) -> &Path {
        self.root.path()
    }
    /// A scratch directory (not in the bundle) for files the test shares.
    pub fn scratch(&self) -> &Path {
        self.io.path()
    }

    /// Another container id cleaned up with this Env.
    pub fn new_id(&self, tag: &str) -> String {
        let id = unique(tag);
        self.ids.borrow_mut().push(id.clone());
        id
    }
    pub fn track_cgroup(&self, path: &str) {
        self.extra_cgroups.borrow_mut().push(path.to_string());
    }
    /// Creates a named network namespace (`ip netns add`), deleted on drop.
    pub fn add_netns(&self) -> PathBuf {
        let name = unique("ns");
        let st = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .expect("ip netns add");
        assert!(st.success(), "ip netns add {name} failed");
        self.netns.borrow_mut().push(name.clone());
        PathBuf::from("/run/netns").join(name)
    }

    pub fn write_spec(&self) {
        self.spec.write(&self.bundle().join("config.json"));
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.rt.bin);
        c.args(&self.rt.prefix)
            .arg("--root")
            .arg(self.root.path())
            .args(args);
        c
    }

    /// Runs the runtime with `args` (after `--root`).
    pub fn rt(&self, args: &[&str]) -> Out {
        run_cmd(self.command(args), self.io.path(), self.timeout)
    }

    /// Writes the spec and runs the container in the foreground:
    /// `run --bundle B ID`; the container's stdio is the runtime's.
    pub fn run(&self) -> Out {
        self.write_spec();
        let b = self.bundle().to_string_lossy().into_owned();
        self.rt(&["run", "--bundle", &b, &self.id])
    }

    /// Sets args to `sh -c SCRIPT` and runs it in the foreground.
    pub fn sh(&mut self, script: &str) -> Out {
        self.spec.args(&["sh", "-c", script]);
        self.run()
    }

    /// `create --bundle B [--pid-file F] ID`.
    pub fn create(&self, extra: &[&str]) -> Out {
        self.write_spec();
        let b = self.bundle().to_string_lossy().into_owned();
        let mut args = vec!["create", "--bundle", &b];
        args.extend_from_slice(extra);
        args.push(&self.id);
        self.rt(&args)
    }

    pub fn state(&self, id: &str) -> Value {
        let out = self.rt(&["state", id]);
        out.ok();
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("state {id}: not JSON ({e}): {}", out.stdout))
    }

    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"].as_str().unwrap_or("").to_string()
    }

    /// Polls `state` until status is `want` (panics after the timeout).
    pub fn wait_status(&self, id: &str, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let st = self.status(id);
            if st == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "container {id}: status {st:?}, waited for {want:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Host paths of this test's cgroup under every mounted hierarchy.
    pub fn cgroup_dirs(&self, path: &str) -> Vec<PathBuf> {
        let rel = path.trim_start_matches('/');
        CGROUP_ROOTS
            .iter()
            .map(|r| Path::new(r).join(rel))
            .filter(|p| p.is_dir())
            .collect()
    }

    /// Asserts that no trace of container `id` is left: no state under
    /// --root, no cgroup directory, no process in the cgroup or rooted in
    /// the bundle.
    #[track_caller]
    pub fn assert_no_leftovers(&self, id: &str) {
        let st = self.root.path().join(id);
        assert!(!st.exists(), "state dir {} left behind", st.display());
        let leftovers: Vec<_> = fs::read_dir(self.root.path())
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(
            leftovers.iter().all(|n| n.to_string_lossy() != id),
            "state for {id} left in --root: {leftovers:?}"
        );
        let dirs = self.cgroup_dirs(&self.cgroups_path);
        assert!(dirs.is_empty(), "cgroup dirs left behind: {dirs:?}");
        let procs = self.procs_of_test();
        assert!(procs.is_empty(), "processes left behind: {procs:?}");
    }

    /// Host pids whose cgroup is this test's or whose root/cwd is in the bundle.
    pub fn procs_of_test(&self) -> Vec<(i32, String)> {
        let bundle = fs::canonicalize(self.bundle()).unwrap_or_else(|_| self.bundle().into());
        let mut found = Vec::new();
        let Ok(dir) = fs::read_dir("/proc") else {
            return found;
        };
        for e in dir.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let p = e.path();
            let cg = fs::read_to_string(p.join("cgroup")).unwrap_or_default();
            let in_cg = cg
                .lines()
                .any(|l| l.ends_with(&format!(":{}", self.cgroups_path)));
            let rooted = ["root", "cwd"]
                .iter()
                .any(|l| fs::read_link(p.join(l)).is_ok_and(|t| t.starts_with(&bundle)));
            if in_cg || rooted {
                let cmd = fs::read_to_string(p.join("cmdline"))
                    .unwrap_or_default()
                    .replace('\0', " ");
                found.push((pid, cmd));
            }
        }
        found
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let quick = Duration::from_secs(10);
        for id in self.ids.borrow().iter() {
            let _ = run_cmd(self.command(&["kill", id, "KILL"]), self.io.path(), quick);
            let _ = run_cmd(
                self.command(&["delete", "--force", id]),
                self.io.path(),
                quick,
            );
        }
        // Kill anything still in our cgroup or rooted in our bundle (a
        // runtime that failed half-way), then remove the cgroups.
        // Only processes that are surely the container's: rooted in the
        // bundle, or in our cgroup and in another pid namespace (never a
        // host task a buggy runtime moved into the cgroup).
        let host_pidns = fs::read_link("/proc/self/ns/pid").ok();
        let bundle = fs::canonicalize(self.bundle()).unwrap_or_else(|_| self.bundle().into());
        for (pid, _) in self.procs_of_test() {
            let p = PathBuf::from(format!("/proc/{pid}"));
            let rooted = fs::read_link(p.join("root")).is_ok_and(|t| t.starts_with(&bundle));
            let foreign = fs::read_link(p.join("ns/pid")).ok() != host_pidns;
            if !(rooted || foreign) {
                continue;
            }
            // SAFETY: kill(2) with a pid we just read from /proc; worst case
            // the pid is gone (ESRCH) and nothing happens.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        let mut paths = vec![self.cgroups_path.clone()];
        paths.extend(self.extra_cgroups.borrow().iter().cloned());
        for path in paths {
            let rel = path.trim_start_matches('/').to_string();
            for root in CGROUP_ROOTS {
                let dir = Path::new(root).join(&rel);
                if !rel.is_empty() && dir.is_dir() {
                    remove_cgroup_tree(Path::new(root), &dir);
                }
            }
        }
        for ns in self.netns.borrow().iter() {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        // Unmount anything a failed runtime left mounted inside the bundle
        // so the TempDir removal does not cross into a mount.
        let mut mounts: Vec<String> = fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
            .filter(|m| Path::new(m).starts_with(&bundle))
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            if let Ok(c) = std::ffi::CString::new(m) {
                // SAFETY: umount2 with a valid NUL-terminated path.
                unsafe {
                    libc::umount2(c.as_ptr(), libc::MNT_DETACH);
                }
            }
        }
    }
}

/// rmdir a cgroup directory bottom-up (cgroup dirs hold only pseudo
/// files). Tasks still inside (a process the runtime failed to kill, or a
/// host task a buggy runtime moved in) are moved back to the hierarchy
/// root `root` so the directory can go.
fn remove_cgroup_tree(root: &Path, dir: &Path) {
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(root, &e.path());
            }
        }
    }
    for _ in 0..50 {
        match fs::remove_dir(dir) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(_) => {
                let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
                for pid in procs.split_whitespace() {
                    let _ = fs::write(root.join("cgroup.procs"), pid);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// Normalises whitespace runs to one space (for /proc tables).
pub fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Capability numbers from linux/capability.h.
pub fn cap_number(name: &str) -> u32 {
    const CAPS: &[&str] = &[
        "CHOWN",
        "DAC_OVERRIDE",
        "DAC_READ_SEARCH",
        "FOWNER",
        "FSETID",
        "KILL",
        "SETGID",
        "SETUID",
        "SETPCAP",
        "LINUX_IMMUTABLE",
        "NET_BIND_SERVICE",
        "NET_BROADCAST",
        "NET_ADMIN",
        "NET_RAW",
        "IPC_LOCK",
        "IPC_OWNER",
        "SYS_MODULE",
        "SYS_RAWIO",
        "SYS_CHROOT",
        "SYS_PTRACE",
        "SYS_PACCT",
        "SYS_ADMIN",
        "SYS_BOOT",
        "SYS_NICE",
        "SYS_RESOURCE",
        "SYS_TIME",
        "SYS_TTY_CONFIG",
        "MKNOD",
        "LEASE",
        "AUDIT_WRITE",
        "AUDIT_CONTROL",
        "SETFCAP",
        "MAC_OVERRIDE",
        "MAC_ADMIN",
        "SYSLOG",
        "WAKE_ALARM",
        "BLOCK_SUSPEND",
        "AUDIT_READ",
        "PERFMON",
        "BPF",
        "CHECKPOINT_RESTORE",
    ];
    let short = name.trim_start_matches("CAP_");
    CAPS.iter()
        .position(|c| *c == short)
        .unwrap_or_else(|| panic!("unknown capability {name}")) as u32
}

/// The /proc/PID/status hex mask (16 digits) of a capability set.
pub fn cap_mask(names: &[&str]) -> String {
    let m = names.iter().fold(0u64, |m, n| m | (1u64 << cap_number(n)));
    format!("{m:016x}")
}

/// Docker's default capability set (moby oci/caps/defaults.go).
pub const DOCKER_DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

impl Env {
    /// Writes the spec and runs it in the foreground under another id.
    pub fn run_as(&self, id: &str) -> Out {
        self.write_spec();
        let b = self.bundle().to_string_lossy().into_owned();
        self.rt(&["run", "--bundle", &b, id])
    }

    /// Reads a cgroup file of this test's cgroup: `v1` is (controller, file)
    /// on a v1/hybrid host, `v2` the file name on a unified host.
    pub fn cgroup_file(&self, v1: (&str, &str), v2: &str) -> String {
        let rel = self.cgroups_path.trim_start_matches('/');
        let p1 = Path::new("/sys/fs/cgroup").join(v1.0).join(rel).join(v1.1);
        let p = if Path::new("/sys/fs/cgroup").join(v1.0).is_dir() {
            p1
        } else {
            Path::new("/sys/fs/cgroup").join(rel).join(v2)
        };
        fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
            .trim()
            .to_string()
    }
}

/// True on a host with cgroup v1 controllers (hybrid or legacy).
pub fn cgroup_v1() -> bool {
    Path::new("/sys/fs/cgroup/memory").is_dir()
}
