//! The daemon end to end, driven by the real docker CLI: run (exit codes, stdout/stderr,
//! stdin), the detached lifecycle, logs, exec, wait, restart policies, bad requests, and
//! containers that outlive a `kill -9` of the daemon. Needs root.

mod daemon_support;

use std::time::{Duration, Instant};

use daemon_support::{stderr, stdout, Daemon};

#[test]
fn run_output_exit_codes_and_stdin() {
    let d = Daemon::start();
    let o = d.docker(&["run", "--rm", "busybox", "echo", "hello"]);
    assert_eq!(stdout(&o), "hello\n", "{}", stderr(&o));
    assert_eq!(o.status.code(), Some(0));

    let o = d.docker(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(stdout(&o), "out\n");
    assert!(stderr(&o).contains("err"), "{}", stderr(&o));

    let o = d.docker(&["run", "--rm", "busybox", "/no/such/binary"]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));

    let o = d.docker_input(
        &["run", "--rm", "-i", "busybox", "cat"],
        Some(b"through stdin\n"),
    );
    assert_eq!(stdout(&o), "through stdin\n", "{}", stderr(&o));

    let o = d.docker(&[
        "run",
        "--rm",
        "--name",
        "named",
        "-e",
        "A=1",
        "-w",
        "/tmp",
        "-u",
        "1000",
        "-h",
        "box",
        "busybox",
        "sh",
        "-c",
        "echo $A $(pwd) $(id -u) $(hostname)",
    ]);
    assert_eq!(stdout(&o), "1 /tmp 1000 box\n", "{}", stderr(&o));
    // --rm removed them all.
    assert_eq!(d.ok(&["ps", "-aq"]), "");
}

#[test]
fn detached_lifecycle_ps_inspect_stop_start_rm() {
    let d = Daemon::start();
    let id = d.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--label",
        "tier=front",
        "busybox",
        "sleep",
        "1000",
    ]);
    assert_eq!(id.len(), 64, "{id}");
    let ps = d.ok(&["ps", "--format", "{{.Names}} {{.Status}} {{.Command}}"]);
    assert!(ps.starts_with("web Up "), "{ps}");
    assert!(ps.contains("\"sleep 1000\""), "{ps}");
    let v = d.inspect("web");
    assert_eq!(v["State"]["Running"], true);
    assert_eq!(v["Name"], "/web");
    assert_eq!(v["Config"]["Labels"]["tier"], "front");
    let pid = v["State"]["Pid"].as_i64().unwrap();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    assert_eq!(
        d.ok(&["ps", "-q", "--filter", "label=tier=front"]),
        &id[..12]
    );
    assert_eq!(d.ok(&["ps", "-q", "--filter", "label=tier=back"]), "");

    // A second container with the same name is a conflict.
    let o = d.docker(&["run", "-d", "--name", "web", "busybox", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("is already in use"), "{}", stderr(&o));

    d.ok(&["pause", "web"]);
    assert_eq!(d.inspect("web")["State"]["Status"], "paused");
    d.ok(&["unpause", "web"]);

    // sleep as PID 1 ignores SIGTERM: stop kills it after the timeout.
    let t = Instant::now();
    d.ok(&["stop", "-t", "1", "web"]);
    assert!(t.elapsed() < Duration::from_secs(8));
    let v = d.inspect("web");
    assert_eq!(v["State"]["Running"], false);
    assert_eq!(v["State"]["ExitCode"], 137);
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    let ps = d.ok(&["ps", "-a", "--format", "{{.Status}}"]);
    assert!(ps.starts_with("Exited (137)"), "{ps}");

    d.ok(&["start", "web"]);
    assert_eq!(d.inspect("web")["State"]["Running"], true);
    d.ok(&["rename", "web", "web2"]);
    assert_eq!(d.inspect(&id)["Name"], "/web2");
    let o = d.docker(&["rm", "web2"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("container is running"),
        "{}",
        stderr(&o)
    );
    d.ok(&["rm", "-f", "web2"]);
    let o = d.docker(&["inspect", "web2"]);
    assert!(stderr(&o).contains("No such"), "{}", stderr(&o));
    // Nothing left mounted under the container directory.
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mi.contains(&id), "{mi}");
}

#[test]
fn logs_tail_timestamps_follow_and_wait() {
    let d = Daemon::start();
    let id = d.ok(&[
        "run",
        "-d",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3 4 5; do echo line $i; done; echo oops >&2; sleep 1; echo late; exit 4",
    ]);
    let code = d.ok(&["wait", &id]);
    assert_eq!(code, "4");
    let o = d.docker(&["logs", &id]);
    assert_eq!(stdout(&o), "line 1\nline 2\nline 3\nline 4\nline 5\nlate\n");
    assert_eq!(stderr(&o), "oops\n");
    let o = d.docker(&["logs", "--tail", "2", &id]);
    assert_eq!(stdout(&o), "late\n");
    assert_eq!(stderr(&o), "oops\n");
    let o = d.docker(&["logs", "-t", "--tail", "1", &id]);
    let line = stdout(&o);
    assert!(
        line.ends_with(" late\n") && line.starts_with("20"),
        "{line}"
    );
    // Follow of a running container ends when it exits.
    let id2 = d.ok(&[
        "run",
        "-d",
        "busybox",
        "sh",
        "-c",
        "echo a; sleep 1; echo b",
    ]);
    let t = Instant::now();
    let o = d.docker(&["logs", "-f", &id2]);
    assert_eq!(stdout(&o), "a\nb\n");
    assert!(t.elapsed() < Duration::from_secs(10));
}

#[test]
fn exec_output_exit_code_and_stdin() {
    let d = Daemon::start();
    d.ok(&["run", "-d", "--name", "box", "busybox", "sleep", "1000"]);
    assert_eq!(d.ok(&["exec", "box", "echo", "hi"]), "hi");
    let o = d.docker(&["exec", "box", "sh", "-c", "exit 5"]);
    assert_eq!(o.status.code(), Some(5));
    let o = d.docker_input(&["exec", "-i", "box", "cat"], Some(b"piped\n"));
    assert_eq!(stdout(&o), "piped\n", "{}", stderr(&o));
    let o = d.docker(&[
        "exec",
        "-u",
        "1000",
        "-w",
        "/tmp",
        "-e",
        "X=y",
        "box",
        "sh",
        "-c",
        "echo $(id -u) $(pwd) $X",
    ]);
    assert_eq!(stdout(&o), "1000 /tmp y\n", "{}", stderr(&o));
    let top = d.ok(&["top", "box"]);
    assert!(top.contains("sleep 1000"), "{top}");
}

#[test]
fn restart_policy_on_failure_counts_and_stops() {
    let d = Daemon::start();
    let id = d.ok(&[
        "run",
        "-d",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "exit 1",
    ]);
    d.until("two restarts then exited", || {
        let v = d.inspect(&id);
        v["RestartCount"] == 2 && v["State"]["Status"] == "exited"
    });
    std::thread::sleep(Duration::from_millis(800));
    let v = d.inspect(&id);
    assert_eq!(v["RestartCount"], 2);
    assert_eq!(v["State"]["ExitCode"], 1);
}

#[test]
fn bad_requests_get_clear_errors() {
    let d = Daemon::start();
    let (s, b) = d.http("POST", "/v1.44/containers/create", Some("{not json"));
    assert_eq!(s, 400, "{b}");
    assert!(b.contains("invalid JSON"), "{b}");
    let (s, b) = d.http(
        "POST",
        "/containers/create",
        Some(r#"{"Image":"busybox","Bogus":1}"#),
    );
    assert_eq!(s, 400, "{b}");
    assert!(b.contains("Bogus"), "{b}");
    let (s, b) = d.http(
        "POST",
        "/containers/create",
        Some(r#"{"Image":"busybox","HostConfig":{"Memroy":1}}"#),
    );
    assert_eq!(s, 400, "{b}");
    assert!(b.contains("Memroy"), "{b}");
    let (s, b) = d.http(
        "POST",
        "/containers/create?name=../../etc",
        Some(r#"{"Image":"busybox"}"#),
    );
    assert_eq!(s, 400, "{b}");
    assert!(b.contains("Invalid container name"), "{b}");
    let (s, b) = d.http(
        "POST",
        "/containers/create",
        Some(r#"{"Image":"nope:latest"}"#),
    );
    assert_eq!(s, 404, "{b}");
    let (s, b) = d.http("GET", "/containers/0000000000000/json", None);
    assert_eq!(s, 404, "{b}");
    assert!(b.contains("No such container: 0000000000000"), "{b}");
    let (s, _) = d.http("POST", "/containers/..%2F..%2Fetc/start", None);
    assert_eq!(s, 404);
    let (s, b) = d.http(
        "POST",
        "/containers/create",
        Some(r#"{"Image":"busybox","HostConfig":{"RestartPolicy":{"Name":"sometimes"}}}"#),
    );
    assert_eq!(s, 400, "{b}");
    // The daemon still serves.
    assert_eq!(d.ok(&["run", "--rm", "busybox", "true"]), "");
}

#[test]
fn containers_outlive_a_daemon_kill_9() {
    let mut d = Daemon::start();
    let long = d.ok(&[
        "run",
        "-d",
        "busybox",
        "sh",
        "-c",
        "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done",
    ]);
    let short = d.ok(&["run", "-d", "busybox", "sh", "-c", "sleep 2; exit 7"]);
    std::thread::sleep(Duration::from_millis(500));
    d.kill9();
    std::thread::sleep(Duration::from_millis(2500));
    d.spawn();
    let v = d.inspect(&long);
    assert_eq!(v["State"]["Running"], true, "{v}");
    d.until("the short one's exit recorded", || {
        let v = d.inspect(&short);
        v["State"]["Running"] == false
    });
    assert_eq!(d.inspect(&short)["State"]["ExitCode"], 7);
    // Logs kept flowing while the daemon was away: ticks are consecutive.
    d.ok(&["stop", "-t", "1", &long]);
    let logs = d.ok(&["logs", &long]);
    let nums: Vec<u64> = logs
        .lines()
        .map(|l| l.trim_start_matches("tick ").parse().unwrap())
        .collect();
    assert!(nums.len() > 20, "{logs}");
    for (i, n) in nums.iter().enumerate() {
        assert_eq!(*n, i as u64, "a log line was lost: {logs}");
    }
}

/// The skiff CLI with no `-H`: when nothing answers on the default socket it starts
/// `skiff daemon` itself (with its `--data-root`), and the command just works.
#[test]
fn cli_starts_the_daemon_when_none_answers() {
    const SOCK: &str = "/run/skiff/skiff.sock";
    assert!(
        std::os::unix::net::UnixStream::connect(SOCK).is_err(),
        "a daemon already serves {SOCK}: stop it to run this test"
    );
    let dir = tempfile::Builder::new()
        .prefix("skiff-auto-")
        .tempdir_in("/tmp")
        .unwrap();
    let root = dir.path().join("root");
    daemon_support::import_busybox(dir.path(), &root);
    // In a namespace of its own: the daemon it starts makes its bridge and firewall there.
    let ns = daemon_support::NetNs::new();
    let out = ns
        .command(daemon_support::SKIFF)
        .arg("--data-root")
        .arg(&root)
        .args(["run", "--rm", "busybox", "echo", "autostarted"])
        .env_remove("SKIFF_HOST")
        .env_remove("SKIFF_NO_AUTOSTART")
        .env("SKIFF_SHIM", daemon_support::SHIM)
        .output()
        .unwrap();
    // Find the daemon it started (by its data root) before asserting, to always stop it.
    let needle = root.display().to_string();
    let daemons: Vec<i32> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            cmd.contains(" daemon") && cmd.contains(&needle)
        })
        .collect();
    for pid in &daemons {
        // SAFETY: kill(2) on the daemon this test's command started.
        unsafe { libc::kill(*pid, libc::SIGTERM) };
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline
        && daemons
            .iter()
            .any(|p| std::path::Path::new(&format!("/proc/{p}")).exists())
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    // The default exec root's namespace directories (containers' and the pool's) are bind
    // mounts of themselves: not left behind.
    for dir in ["/run/skiff/netns", "/run/skiff/netns-pool"] {
        let _ = std::process::Command::new("umount")
            .args(["-l", dir])
            .stderr(std::process::Stdio::null())
            .status();
    }
    assert_eq!(stdout(&out), "autostarted\n", "{}", stderr(&out));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(daemons.len(), 1, "one daemon was started");
    assert!(
        std::os::unix::net::UnixStream::connect(SOCK).is_err(),
        "the daemon stopped and removed its socket"
    );
}
