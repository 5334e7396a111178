//! The shim with real containers (root): start, output to the log and to attached clients,
//! stdin, tty, waits and the exit record, a bad start. Exec and robustness are in the other
//! test targets.

mod common;

use std::io::Write;
use std::net::Shutdown;

use common::*;
use nix::sys::signal::Signal;
use serde_json::{json, Value};

#[test]
fn exit_code_record_and_cleanup() {
    let (mut shim, pid) = Spec::new("exit", &["sh", "-c", "read x; exit 3"])
        .stdin(false)
        .run();
    assert!(pid > 0);
    let sock = shim.sock();
    let mut w = waiter(&sock);
    // A client that has not sent its request yet keeps the shim serving after the exit.
    let mut late = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    late.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let (mut s, _) = request(&sock, b"{\"op\":\"attach\",\"stdin\":true}\ngo\n");
    let w = wait_reply(&mut w);
    assert_eq!(w["exit_code"], 3, "{w}");
    assert_eq!(w["signal"], Value::Null);
    assert_eq!(w["oom_killed"], false);
    assert_eq!(read_to_end(&mut s), b"");
    // After the exit: wait answers at once, status says stopped.
    late.write_all(b"{\"op\":\"wait\"}\n").unwrap();
    assert_eq!(wait_reply(&mut late), w);
    assert_eq!(shim.wait_exit(), 0, "{}", shim.stderr());
    let rec: Value =
        serde_json::from_slice(&std::fs::read(shim.spec.path().join("exit.json")).unwrap())
            .unwrap();
    assert_eq!(rec, w);
    let at = rec["finished_at"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(at).is_ok(), "{at}");
    assert!(!shim.spec.rt_root().join(&shim.spec.id).exists());
    assert!(
        cgroup_dirs(&shim.spec.id).is_empty(),
        "{:?}",
        cgroup_dirs(&shim.spec.id)
    );
    assert!(!sock.exists());
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    // The container directory is the daemon's: still there.
    assert!(shim.spec.path().join("config.json").exists());
}

#[test]
fn output_is_framed_to_attach_and_logged() {
    let spec = Spec::new(
        "out",
        &[
            "sh",
            "-c",
            "read x; echo out; echo err >&2; echo \"got $x\"",
        ],
    )
    .stdin(false);
    let (mut shim, _) = spec.run();
    let (mut s, r) = request(
        &shim.sock(),
        b"{\"op\":\"attach\",\"stdin\":true,\"stdout\":true,\"stderr\":true}\n",
    );
    assert_eq!(r, json!({"ok": true}));
    // A second client that only wants stderr.
    let (mut e, _) = request(&shim.sock(), b"{\"op\":\"attach\",\"stderr\":true}\n");
    let mut w = waiter(&shim.sock());
    s.write_all(b"go\n").unwrap();
    let (out, err) = read_frames(&mut s);
    assert_eq!(String::from_utf8_lossy(&out), "out\ngot go\n");
    assert_eq!(String::from_utf8_lossy(&err), "err\n");
    assert_eq!(read_frames(&mut e), (vec![], b"err\n".to_vec()));
    assert_eq!(wait_reply(&mut w)["exit_code"], 0);
    assert_eq!(shim.wait_exit(), 0);
    let log = std::fs::read_to_string(shim.spec.path().join("container.log")).unwrap();
    let entries: Vec<(String, String)> = log
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["stream"].as_str().unwrap().into(),
                v["log"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        entries.contains(&("stdout".into(), "out\n".into())),
        "{log}"
    );
    assert!(
        entries.contains(&("stderr".into(), "err\n".into())),
        "{log}"
    );
    assert!(
        entries.contains(&("stdout".into(), "got go\n".into())),
        "{log}"
    );
}

#[test]
fn stdin_once_closes_stdin_after_the_client() {
    let (mut shim, _) = Spec::new("cat", &["cat"]).stdin(true).run();
    let (mut s, _) = request(
        &shim.sock(),
        b"{\"op\":\"attach\",\"stdin\":true,\"stdout\":true}\nhello ",
    );
    let mut w = waiter(&shim.sock());
    s.write_all(b"world\n").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let (out, _) = read_frames(&mut s);
    assert_eq!(out, b"hello world\n");
    assert_eq!(wait_reply(&mut w)["exit_code"], 0);
    assert_eq!(shim.wait_exit(), 0);
}

#[test]
fn tty_output_is_raw_and_resize_reaches_the_terminal() {
    let spec = Spec::new("tty", &["sh", "-c", "read x; stty size; tty"])
        .stdin(false)
        .tty();
    let (mut shim, _) = spec.run();
    let (mut s, _) = request(
        &shim.sock(),
        b"{\"op\":\"attach\",\"stdin\":true,\"stdout\":true}\n",
    );
    let r = call(
        &shim.sock(),
        json!({"op": "resize", "height": 31, "width": 101}),
    );
    assert_eq!(r, json!({"ok": true}));
    let mut w = waiter(&shim.sock());
    s.write_all(b"go\n").unwrap();
    let out = String::from_utf8_lossy(&read_to_end(&mut s)).into_owned();
    assert!(out.contains("31 101\r\n"), "{out:?}");
    assert!(out.contains("/dev/pts/"), "{out:?}");
    assert_eq!(wait_reply(&mut w)["exit_code"], 0);
    assert_eq!(shim.wait_exit(), 0);
    let log = std::fs::read_to_string(shim.spec.path().join("container.log")).unwrap();
    assert!(log.contains("31 101"), "{log}");
}

#[test]
fn killed_container_waits_137_and_status() {
    let (mut shim, pid) = Spec::new("kill", &["sleep", "1000"]).run();
    let st = call(&shim.sock(), json!({"op": "status"}));
    assert_eq!(st, json!({"pid": pid, "running": true}));
    // Two waiters before the exit, one after.
    let (mut w1, _) = {
        let mut s = std::os::unix::net::UnixStream::connect(shim.sock()).unwrap();
        s.write_all(b"{\"op\":\"wait\"}\n").unwrap();
        (s, ())
    };
    let (mut w2, _) = {
        let mut s = std::os::unix::net::UnixStream::connect(shim.sock()).unwrap();
        s.write_all(b"{\"op\":\"wait\"}").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        (s, ())
    };
    std::thread::sleep(std::time::Duration::from_millis(100));
    shim.kill_container(Signal::SIGKILL);
    for w in [&mut w1, &mut w2] {
        let v: Value = serde_json::from_slice(&reply_line(w)).unwrap();
        assert_eq!(v["exit_code"], 137);
        assert_eq!(v["signal"], 9);
    }
    assert_eq!(shim.wait_exit(), 0);
}

#[test]
fn bad_start_reports_and_leaves_nothing() {
    let spec = Spec::new("bad", &["/no/such/binary"]);
    let id = spec.id.clone();
    let (mut shim, r) = spec.start();
    let err = r.unwrap_err();
    assert!(err.contains("/no/such/binary"), "{err}");
    assert_eq!(shim.wait_exit(), 1);
    assert!(!shim.sock().exists());
    assert!(!shim.spec.rt_root().join(&id).exists());
    assert!(cgroup_dirs(&id).is_empty());
    assert!(!shim.spec.path().join("exit.json").exists());

    // A broken shim.json is an error line too.
    let spec = Spec::new("badcfg", &["true"]);
    let mut cmd = spec.command();
    std::fs::write(spec.path().join("shim.json"), "{").unwrap();
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let e = parse_start(&String::from_utf8_lossy(&out.stdout)).unwrap_err();
    assert!(e.contains("shim.json"), "{e}");
}

#[test]
fn output_is_drained_with_nobody_attached() {
    // Far more than a pipe holds: the container must never block on its output.
    let spec = Spec::new(
        "drain",
        &[
            "sh",
            "-c",
            "read x; yes 0123456789 | head -c 2000000; echo done >&2",
        ],
    )
    .stdin(false);
    let (mut shim, _) = spec.run();
    let mut w = waiter(&shim.sock());
    let (mut s, _) = request(&shim.sock(), b"{\"op\":\"attach\",\"stdin\":true}\ngo\n");
    assert_eq!(wait_reply(&mut w)["exit_code"], 0);
    assert_eq!(read_to_end(&mut s), b"");
    assert_eq!(shim.wait_exit(), 0);
    let log = std::fs::read_to_string(shim.spec.path().join("container.log")).unwrap();
    let mut bytes = 0;
    for l in log.lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        if v["stream"] == "stdout" {
            bytes += v["log"].as_str().unwrap().len();
        }
    }
    assert_eq!(bytes, 2_000_000);
    assert!(log.contains("\"done\\n\""), "no stderr entry");
}
