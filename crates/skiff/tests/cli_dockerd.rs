//! The skiff CLI's container verbs as a Docker Engine API client, driven against a real
//! peer that serves the same API: Debian's dockerd (one for the whole binary, see
//! `cli_dockerd_support`), side by side with the real docker CLI on the same socket.
//! Containers run with `--network none` only; dockerd runs with `--bridge=none
//! --iptables=false`, so nothing touches the host's network or firewall.

mod cli_dockerd_support;
mod images_support;

use std::time::Duration;

use cli_dockerd_support::{dockerd, eventually, text, IMAGE};

/// `run` flags every test container gets.
const RUN: [&str; 4] = ["container", "run", "--network", "none"];

fn run_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    [&RUN[..], extra].concat()
}

/// Compare skiff's and docker's stdout for the same arguments; columns with times may tick
/// between the two calls, so a mismatch is retried a few times.
fn same_output(args: &[&str]) -> String {
    let d = dockerd();
    let mut last = (String::new(), String::new());
    for _ in 0..4 {
        let s = d.skiff_ok(args);
        let k = d.docker_ok(args);
        if s == k {
            return s;
        }
        last = (s, k);
        std::thread::sleep(Duration::from_millis(300));
    }
    panic!(
        "skiff and docker differ for {args:?}:\nskiff:\n{}\ndocker:\n{}",
        last.0, last.1
    );
}

#[test]
fn ps_and_inspect_match_docker() {
    let d = dockerd();
    d.remove(&["ps-a", "ps-b"]);
    let id = d.skiff_ok(&run_args(&[
        "-d", "--name", "ps-a", "-l", "suite=ps", "-l", "x=1", IMAGE, "sleep", "300",
    ]));
    let id = id.trim();
    assert_eq!(id.len(), 64, "run -d prints the full ID: {id:?}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    let o = d.skiff(&run_args(&[
        "--name", "ps-b", "-l", "suite=ps", IMAGE, "sh", "-c", "exit 2",
    ]));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));

    let table = same_output(&["ps", "--filter", "label=suite=ps"]);
    assert!(table.starts_with("CONTAINER ID   IMAGE"), "{table}");
    assert!(
        table.contains("\"sleep 300\"") && table.contains("ps-a"),
        "{table}"
    );
    assert!(!table.contains("ps-b"), "only running containers: {table}");
    let all = same_output(&["ps", "-a", "--filter", "label=suite=ps"]);
    assert!(all.contains("Exited (2)"), "{all}");
    same_output(&["ps", "-a", "--no-trunc", "--filter", "label=suite=ps"]);
    same_output(&["ps", "-aq", "--filter", "label=suite=ps"]);
    let f = same_output(&[
        "ps",
        "-a",
        "--filter",
        "label=suite=ps",
        "--format",
        "table {{.ID}}\t{{.Names}}\t{{.State}}\t{{.Labels}}",
    ]);
    assert!(f.starts_with("CONTAINER ID   NAMES"), "{f}");
    same_output(&[
        "ps",
        "-a",
        "--filter",
        "name=ps-b",
        "--format",
        "{{.Names}} {{.Command}} {{.Status}}",
    ]);

    // inspect: the daemon's JSON re-indented in its own key order, as docker prints it.
    let s = same_output(&["inspect", "ps-b"]);
    let v: serde_json::Value = serde_json::from_str(&s).unwrap();
    assert_eq!(v[0]["State"]["ExitCode"], 2);
    same_output(&["inspect", IMAGE]);
    same_output(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.Name}} {{json .Config.Labels}} {{.State.Pid}}",
        "ps-a",
    ]);
    assert_eq!(d.skiff_ok(&["inspect", "-f", "{{.Id}}", "ps-a"]).trim(), id);
    for args in [
        &["inspect", "no-such-thing"][..],
        &["inspect", "--type", "container", IMAGE],
    ] {
        let (s, k) = (d.skiff(args), d.docker(args));
        assert_eq!(s.status.code(), Some(1), "{args:?}");
        assert_eq!(s.status.code(), k.status.code(), "{args:?}");
        assert_eq!(text(&s.stdout), text(&k.stdout), "{args:?}");
        assert_eq!(text(&s.stderr), text(&k.stderr), "{args:?}");
    }
    d.skiff_ok(&["rm", "-f", "ps-a", "ps-b"]);
}

#[test]
fn run_exit_codes_match_docker() {
    let d = dockerd();
    let cases: [(&[&str], i32); 5] = [
        (&["--rm", IMAGE, "true"], 0),
        (&["--rm", IMAGE, "sh", "-c", "exit 3"], 3),
        (&["--rm", "-m", "not-a-size", IMAGE, "true"], 125),
        (&["--rm", IMAGE, "/no/such/binary"], 127),
        (&["--rm", IMAGE, "/etc"], 126),
    ];
    for (extra, want) in cases {
        let args = [&RUN[1..], extra].concat();
        let s = d.skiff(&[&["container"][..], &args].concat());
        let k = d.docker(&args);
        assert_eq!(
            s.status.code(),
            Some(want),
            "skiff {args:?}: {}",
            text(&s.stderr)
        );
        assert_eq!(
            k.status.code(),
            Some(want),
            "docker {args:?}: {}",
            text(&k.stderr)
        );
    }
    // An unknown flag is a usage error: 125 as docker's.
    let s = d.skiff(&run_args(&["--no-such-flag", IMAGE, "true"]));
    assert_eq!(s.status.code(), Some(125), "{}", text(&s.stderr));
    // stdout and stderr stay apart; --rm leaves nothing behind.
    let o = d.skiff(&run_args(&[
        "--rm",
        "--name",
        "rm-me",
        IMAGE,
        "sh",
        "-c",
        "echo out; echo err >&2",
    ]));
    assert_eq!(text(&o.stdout), "out\n");
    assert_eq!(text(&o.stderr), "err\n");
    let left = eventually(Duration::from_secs(10), || {
        let o = d.docker_ok(&["ps", "-aq", "--filter", "name=rm-me"]);
        o.trim().is_empty().then_some(())
    });
    assert!(left.is_some(), "--rm container still there");
    // With a terminal the output is raw (\r\n), exactly as docker's.
    let s = d.skiff_ok(&run_args(&["--rm", "-t", IMAGE, "echo", "tty"]));
    let k = d.docker_ok(&[
        "run",
        "--network",
        "none",
        "--rm",
        "-t",
        IMAGE,
        "echo",
        "tty",
    ]);
    assert_eq!(s, "tty\r\n");
    assert_eq!(s, k);
}

#[test]
fn stdin_reaches_run_and_exec() {
    let d = dockerd();
    let o = d.with_stdin(
        d.skiff_cmd(&run_args(&["-i", "--rm", IMAGE, "cat"])),
        b"data through stdin\n",
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "data through stdin\n");
    let o = d.with_stdin(
        d.skiff_cmd(&run_args(&["-i", "--rm", IMAGE, "wc", "-c"])),
        &vec![b'x'; 200_000],
    );
    assert_eq!(text(&o.stdout).trim(), "200000");

    d.remove(&["in-x"]);
    d.skiff_ok(&run_args(&["-d", "--name", "in-x", IMAGE, "sleep", "300"]));
    let o = d.with_stdin(
        d.skiff_cmd(&["exec", "-i", "in-x", "sh", "-c", "cat; exit 4"]),
        b"to exec\n",
    );
    assert_eq!(text(&o.stdout), "to exec\n");
    assert_eq!(o.status.code(), Some(4));
    d.skiff_ok(&["rm", "-f", "in-x"]);
}

/// `run -it` under a real terminal (util-linux `script` gives the CLI a pty): the window
/// size reaches the container, input is passed raw, output matches docker's.
#[test]
fn tty_size_and_input_through_a_pty() {
    let d = dockerd();
    let inner = "sleep 0.5; stty -a | head -1; echo typed:; read x; echo got=$x";
    let mut outs = Vec::new();
    for cli in [
        format!(
            "{} -H unix://{} --no-autostart container",
            env!("CARGO_BIN_EXE_skiff"),
            d.sock.display()
        ),
        format!("docker -H unix://{}", d.sock.display()),
    ] {
        let cmd = format!(
            "stty rows 33 cols 101; {cli} run --rm -it --network none {IMAGE} sh -c '{inner}'"
        );
        let mut child = std::process::Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("script (util-linux) is installed");
        std::thread::sleep(Duration::from_secs(3));
        let mut stdin = child.stdin.take().unwrap();
        std::io::Write::write_all(&mut stdin, b"hello\n").unwrap();
        let out = child.wait_with_output().unwrap();
        drop(stdin);
        assert!(out.status.success(), "{cmd}: {}", text(&out.stderr));
        outs.push(text(&out.stdout).replace('\0', ""));
    }
    assert!(outs[0].contains("rows 33; columns 101;"), "{}", outs[0]);
    assert!(outs[0].contains("got=hello"), "{}", outs[0]);
    assert_eq!(outs[0], outs[1]);
}

/// Without a terminal, signals sent to `skiff run` reach the container (`--sig-proxy`).
#[test]
fn signals_are_proxied_to_the_container() {
    let d = dockerd();
    d.remove(&["sig-a"]);
    let script = "trap 'echo got TERM; exit 9' TERM; echo ready; sleep 100 & wait";
    let child = d
        .skiff_cmd(&run_args(&[
            "--rm", "--name", "sig-a", IMAGE, "sh", "-c", script,
        ]))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let ready = eventually(Duration::from_secs(10), || {
        let o = d.docker(&["logs", "sig-a"]);
        text(&o.stdout).contains("ready").then_some(())
    });
    assert!(ready.is_some(), "container did not start");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(text(&out.stdout), "ready\ngot TERM\n");
    assert_eq!(out.status.code(), Some(9));
}
