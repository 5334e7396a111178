//! The verbs beyond `run` (logs, exec, cp/export/diff, lifecycle, top/stats/port,
//! hosts/events/info/version), each compared with the docker CLI on the same dockerd.

use std::time::Duration;

use super::{dockerd, eventually, path_str, scratch, text, IMAGE};
use crate::{images_support, run_args, same_output};

#[test]
fn detached_run_logs_follow_and_stop() {
    let d = dockerd();
    d.remove(&["logs-a"]);
    let script =
        "echo start; echo warn >&2; i=0; while true; do echo tick$i; i=$((i+1)); sleep 0.2; done";
    d.skiff_ok(&run_args(&[
        "-d", "--name", "logs-a", IMAGE, "sh", "-c", script,
    ]));
    let follow = d
        .skiff_cmd(&["logs", "-f", "logs-a"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let ticked = eventually(Duration::from_secs(10), || {
        let o = d.skiff_ok(&["logs", "logs-a"]);
        o.contains("tick3").then_some(())
    });
    assert!(ticked.is_some(), "no ticks in the logs");
    assert_eq!(d.skiff_ok(&["stop", "-t", "1", "logs-a"]), "logs-a\n");
    let out = follow.wait_with_output().unwrap();
    assert!(out.status.success(), "logs -f: {}", text(&out.stderr));
    let got = text(&out.stdout);
    assert!(got.starts_with("start\ntick0\ntick1\n"), "{got}");
    assert_eq!(text(&out.stderr), "warn\n");

    // Stopped: the same bytes as docker's, stream by stream.
    for args in [
        &["logs", "logs-a"][..],
        &["logs", "--tail", "2", "logs-a"],
        &["logs", "-n", "1", "-t", "logs-a"],
        &[
            "logs",
            "--since",
            "1h",
            "--until",
            "2099-01-01T00:00:00Z",
            "logs-a",
        ],
    ] {
        let (s, k) = (d.skiff(args), d.docker(args));
        assert_eq!(text(&s.stdout), text(&k.stdout), "{args:?}");
        assert_eq!(text(&s.stderr), text(&k.stderr), "{args:?}");
    }
    let tail = d.skiff_ok(&["logs", "--tail", "1", "-t", "logs-a"]);
    assert!(tail.starts_with("20") && tail.contains("Z tick"), "{tail}");
    assert_eq!(d.skiff_ok(&["wait", "logs-a"]).trim(), "137");
    d.skiff_ok(&["rm", "logs-a"]);
}

#[test]
fn exec_output_and_exit_codes() {
    let d = dockerd();
    d.remove(&["ex-a"]);
    d.skiff_ok(&run_args(&["-d", "--name", "ex-a", IMAGE, "sleep", "300"]));
    assert_eq!(d.skiff_ok(&["exec", "ex-a", "echo", "hello"]), "hello\n");
    let o = d.skiff(&[
        "exec",
        "-e",
        "V=42",
        "-w",
        "/tmp",
        "ex-a",
        "sh",
        "-c",
        "echo $V $(pwd); echo e >&2; exit 3",
    ]);
    assert_eq!(text(&o.stdout), "42 /tmp\n");
    assert_eq!(text(&o.stderr), "e\n");
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(
        d.skiff_ok(&["exec", "-u", "nobody", "ex-a", "id", "-u"])
            .trim(),
        "65534"
    );
    for args in [
        &["exec", "ex-a", "/no/such"][..],
        &["exec", "no-such-ctr", "true"],
    ] {
        let (s, k) = (d.skiff(args), d.docker(args));
        assert_ne!(s.status.code(), Some(0), "{args:?}");
        assert_eq!(
            s.status.code(),
            k.status.code(),
            "{args:?}: {}",
            text(&s.stderr)
        );
    }
    assert_eq!(
        d.skiff_ok(&["exec", "-d", "ex-a", "touch", "/tmp/detached"]),
        ""
    );
    let made = eventually(Duration::from_secs(5), || {
        d.skiff(&["exec", "ex-a", "test", "-e", "/tmp/detached"])
            .status
            .success()
            .then_some(())
    });
    assert!(made.is_some(), "exec -d did not run");
    d.skiff_ok(&["rm", "-f", "ex-a"]);
}

#[test]
fn cp_round_trip_and_export() {
    let d = dockerd();
    d.remove(&["cp-a"]);
    d.skiff_ok(&run_args(&["-d", "--name", "cp-a", IMAGE, "sleep", "300"]));
    let tmp = scratch();
    let src = tmp.path().join("payload.bin");
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&src, &data).unwrap();
    d.skiff_ok(&["cp", path_str(&src), "cp-a:/tmp/"]);
    let sum = d.skiff_ok(&["exec", "cp-a", "sha256sum", "/tmp/payload.bin"]);
    assert_eq!(
        sum,
        format!(
            "{}  /tmp/payload.bin\n",
            images_support::hex(&images_support::sha256(&data))
        )
    );
    let back = tmp.path().join("back.bin");
    d.skiff_ok(&["cp", "cp-a:/tmp/payload.bin", path_str(&back)]);
    assert_eq!(std::fs::read(&back).unwrap(), data, "file round trip");
    // A directory to a new name inside the container, and back to a new local name.
    let dir = tmp.path().join("tree");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("sub/a.txt"), "alpha").unwrap();
    d.skiff_ok(&["cp", path_str(&dir), "cp-a:/tmp/copied"]);
    assert_eq!(
        d.skiff_ok(&["exec", "cp-a", "cat", "/tmp/copied/sub/a.txt"]),
        "alpha"
    );
    let local = tmp.path().join("tree-back");
    d.skiff_ok(&["cp", "cp-a:/tmp/copied", path_str(&local)]);
    assert_eq!(
        std::fs::read_to_string(local.join("sub/a.txt")).unwrap(),
        "alpha"
    );
    // To stdout as a tar stream.
    let o = d.skiff(&["cp", "cp-a:/tmp/copied/sub/a.txt", "-"]);
    let mut ar = tar::Archive::new(&o.stdout[..]);
    let names: Vec<String> = ar
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert_eq!(names, ["a.txt"]);
    let o = d.skiff(&["cp", "cp-a:/no/such/file", path_str(&local)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("Error response from daemon"),
        "{}",
        text(&o.stderr)
    );

    // diff and export as docker shows them.
    same_output(&["diff", "cp-a"]);
    let out = tmp.path().join("export.tar");
    d.skiff_ok(&["export", "-o", path_str(&out), "cp-a"]);
    let f = std::fs::File::open(&out).unwrap();
    let names: Vec<String> = tar::Archive::new(f)
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(names.iter().any(|n| n == "bin/busybox"), "{names:?}");
    assert!(names.iter().any(|n| n == "tmp/payload.bin"), "{names:?}");
    d.skiff_ok(&["rm", "-f", "cp-a"]);
}

#[test]
fn lifecycle_verbs() {
    let d = dockerd();
    d.remove(&["lc-a", "lc-b", "lc-renamed", "lc-c"]);
    d.skiff_ok(&run_args(&["-d", "--name", "lc-a", IMAGE, "sleep", "300"]));
    let status = |n: &str| {
        d.docker_ok(&["inspect", "-f", "{{.State.Status}}", n])
            .trim()
            .to_string()
    };
    assert_eq!(d.skiff_ok(&["pause", "lc-a"]), "lc-a\n");
    assert_eq!(status("lc-a"), "paused");
    assert_eq!(d.skiff_ok(&["unpause", "lc-a"]), "lc-a\n");
    assert_eq!(status("lc-a"), "running");
    assert_eq!(d.skiff_ok(&["rename", "lc-a", "lc-renamed"]), "");
    assert_eq!(
        d.docker_ok(&["inspect", "-f", "{{.Name}}", "lc-renamed"])
            .trim(),
        "/lc-renamed"
    );
    d.skiff_ok(&[
        "update",
        "--memory",
        "64m",
        "--memory-swap",
        "128m",
        "lc-renamed",
    ]);
    assert_eq!(
        d.docker_ok(&["inspect", "-f", "{{.HostConfig.Memory}}", "lc-renamed"])
            .trim(),
        "67108864"
    );
    let before = d.docker_ok(&["inspect", "-f", "{{.State.StartedAt}}", "lc-renamed"]);
    assert_eq!(
        d.skiff_ok(&["restart", "-t", "1", "lc-renamed"]),
        "lc-renamed\n"
    );
    assert_ne!(
        d.docker_ok(&["inspect", "-f", "{{.State.StartedAt}}", "lc-renamed"]),
        before
    );
    assert_eq!(
        d.skiff_ok(&["kill", "-s", "KILL", "lc-renamed"]),
        "lc-renamed\n"
    );
    assert_eq!(d.skiff_ok(&["wait", "lc-renamed"]).trim(), "137");

    // create + start -a: the container's exit code; wait on an exited container.
    d.skiff_ok(&[
        "create",
        "--name",
        "lc-b",
        "--network",
        "none",
        "-e",
        "A=7",
        IMAGE,
        "sh",
        "-c",
        "echo a=$A; exit $A",
    ]);
    assert_eq!(status("lc-b"), "created");
    let o = d.skiff(&["start", "-a", "lc-b"]);
    assert_eq!(text(&o.stdout), "a=7\n");
    assert_eq!(o.status.code(), Some(7));
    assert_eq!(d.skiff_ok(&["wait", "lc-b"]).trim(), "7");

    // rm -f of a running container; errors per name, exit 1 as docker's.
    d.skiff_ok(&run_args(&["-d", "--name", "lc-c", IMAGE, "sleep", "300"]));
    let o = d.skiff(&["rm", "lc-c"]);
    assert_eq!(o.status.code(), Some(1));
    let s = d.skiff(&["rm", "-f", "lc-c", "lc-no-such"]);
    let k = d.docker(&["rm", "-f", "lc-no-such"]);
    assert_eq!(text(&s.stdout), "lc-c\n");
    assert_eq!(s.status.code(), Some(1));
    assert_eq!(text(&s.stderr), text(&k.stderr));
    assert!(d
        .docker_ok(&["ps", "-aq", "--filter", "name=lc-c"])
        .trim()
        .is_empty());
    for args in [
        &["stop", "lc-no-such"][..],
        &["pause", "lc-no-such"],
        &["wait", "lc-no-such"],
    ] {
        let (s, k) = (d.skiff(args), d.docker(args));
        assert_eq!(s.status.code(), k.status.code(), "{args:?}");
        assert_eq!(text(&s.stderr), text(&k.stderr), "{args:?}");
    }
    d.skiff_ok(&["rm", "-f", "lc-renamed", "lc-b"]);
}

#[test]
fn top_stats_and_port() {
    let d = dockerd();
    d.remove(&["ts-a"]);
    d.skiff_ok(&run_args(&[
        "-d",
        "--name",
        "ts-a",
        "-p",
        "127.0.0.1:18080:80",
        IMAGE,
        "sleep",
        "300",
    ]));
    let top = same_output(&["top", "ts-a"]);
    assert!(
        top.starts_with("UID ") && top.contains("sleep 300"),
        "{top}"
    );
    same_output(&["top", "ts-a", "-o", "pid,comm"]);
    let s = d.skiff_ok(&["stats", "--no-stream", "ts-a"]);
    let k = d.docker_ok(&["stats", "--no-stream", "ts-a"]);
    let (sh, kh) = (s.lines().next().unwrap(), k.lines().next().unwrap());
    assert_eq!(sh, kh, "stats header");
    let row = s.lines().nth(1).expect("a stats row");
    assert!(row.contains("ts-a") && row.contains("0B / 0B"), "{row}");
    let fmt = [
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.NetIO}} {{.PIDs}}",
        "ts-a",
    ];
    assert_eq!(d.skiff_ok(&fmt), d.docker_ok(&fmt));
    assert_eq!(d.skiff_ok(&fmt), "ts-a 0B / 0B 1\n");
    // --network none publishes nothing: both print nothing, and a named port is an error.
    assert_eq!(
        d.skiff_ok(&["port", "ts-a"]),
        d.docker_ok(&["port", "ts-a"])
    );
    let (s, k) = (
        d.skiff(&["port", "ts-a", "80"]),
        d.docker(&["port", "ts-a", "80"]),
    );
    assert_eq!(s.status.code(), Some(1));
    assert_eq!(s.status.code(), k.status.code());
    d.skiff_ok(&["rm", "-f", "ts-a"]);
}

#[test]
fn hosts_events_info_and_version() {
    let d = dockerd();
    // A daemon that is not there: docker's wording, exit 1.
    let tmp = scratch();
    let gone = format!("unix://{}/nothing.sock", tmp.path().display());
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_skiff"))
        .args(["-H", &gone, "ps"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        text(&o.stderr),
        format!("Cannot connect to the skiff daemon at {gone}. Is the daemon running?\n")
    );
    // SKIFF_HOST selects the daemon too.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_skiff"))
        .env("SKIFF_HOST", format!("unix://{}", d.sock.display()))
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .unwrap();
    assert_eq!(
        text(&o.stdout),
        d.docker_ok(&["info", "--format", "{{.ServerVersion}}"])
    );
    assert_eq!(
        d.skiff_ok(&["version", "--format", "{{.Server.Version}}"]),
        d.docker_ok(&["version", "--format", "{{.Server.Version}}"])
    );
    let info = d.skiff_ok(&["info"]);
    assert!(info.contains("Server Version: 20.10"), "{info}");

    let t0 = chrono_now();
    d.remove(&["ev-a"]);
    d.skiff_ok(&run_args(&["--name", "ev-a", IMAGE, "true"]));
    let t1 = chrono_now() + 1;
    let args = [
        "events",
        "--since",
        &t0.to_string(),
        "--until",
        &t1.to_string(),
        "--filter",
        "container=ev-a",
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
    ];
    let s = d.skiff_ok(&args);
    assert_eq!(s, d.docker_ok(&args));
    assert!(
        s.contains("container create ev-a") && s.contains("container die ev-a"),
        "{s}"
    );
    let plain = d.skiff_ok(&[
        "events",
        "--since",
        &t0.to_string(),
        "--until",
        &t1.to_string(),
        "--filter",
        "container=ev-a",
    ]);
    let dockers = d.docker_ok(&[
        "events",
        "--since",
        &t0.to_string(),
        "--until",
        &t1.to_string(),
        "--filter",
        "container=ev-a",
    ]);
    assert_eq!(plain, dockers);
    d.skiff_ok(&["rm", "ev-a"]);
}

fn chrono_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
