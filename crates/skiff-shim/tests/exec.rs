//! `exec` through the shim (root, real containers): output, stdin, exit codes, a terminal.

mod common;

use std::io::Write;
use std::net::Shutdown;

use common::*;
use nix::sys::signal::Signal;
use serde_json::json;

fn exec_line(id: &str, proc_: serde_json::Value, stdin: bool) -> Vec<u8> {
    let mut l = json!({"op": "exec", "exec_id": id, "process": proc_,
        "stdin": stdin, "stdout": true, "stderr": true})
    .to_string()
    .into_bytes();
    l.push(b'\n');
    l
}

#[test]
fn exec_output_stdin_exit_codes_and_tty() {
    let (mut shim, _) = Spec::new("exec", &["sleep", "1000"]).run();
    let sock = shim.sock();

    // Output on both streams and an exit code.
    let p = process(&["sh", "-c", "echo eout; echo eerr >&2; exit 5"], false);
    let (mut s, r) = request(&sock, &exec_line("e1", p, false));
    assert!(r["pid"].as_i64().unwrap() > 0, "{r}");
    let (out, err) = read_frames(&mut s);
    assert_eq!(
        (out.as_slice(), err.as_slice()),
        (&b"eout\n"[..], &b"eerr\n"[..])
    );
    assert_eq!(
        call(&sock, json!({"op": "exec-wait", "exec_id": "e1"})),
        json!({"exit_code": 5})
    );

    // Stdin, closed when the client shuts down its write side.
    let p = process(&["cat"], false);
    let (mut s, _) = request(&sock, &exec_line("e2", p, true));
    s.write_all(b"to cat\n").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_frames(&mut s).0, b"to cat\n");
    assert_eq!(
        call(&sock, json!({"op": "exec-wait", "exec_id": "e2"}))["exit_code"],
        0
    );

    // A terminal, resized while the process waits for input.
    let p = process(&["sh", "-c", "read x; stty size; tty; exit 7"], true);
    let (mut s, r) = request(&sock, &exec_line("e3", p, true));
    assert!(r["pid"].as_i64().is_some(), "{r}");
    // exec-wait before the exit: answered when it exits.
    let mut exec_waiter = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    exec_waiter
        .write_all(b"{\"op\":\"exec-wait\",\"exec_id\":\"e3\"}\n")
        .unwrap();
    let r = call(
        &sock,
        json!({"op": "exec-resize", "exec_id": "e3", "height": 40, "width": 120}),
    );
    assert_eq!(r, json!({"ok": true}));
    s.write_all(b"go\n").unwrap();
    let out = String::from_utf8_lossy(&read_to_end(&mut s)).into_owned();
    assert!(out.contains("40 120\r\n"), "{out:?}");
    assert!(out.contains("/dev/pts/"), "{out:?}");
    let w: serde_json::Value = serde_json::from_slice(&reply_line(&mut exec_waiter)).unwrap();
    assert_eq!(w, json!({"exit_code": 7}));

    // A process that cannot start is an error; the shim goes on.
    let p = process(&["/no/such/exec"], false);
    let (_, r) = request(&sock, &exec_line("e4", p, false));
    assert!(
        r["error"].as_str().unwrap().contains("/no/such/exec"),
        "{r}"
    );
    let r = call(&sock, json!({"op": "exec-wait", "exec_id": "e4"}));
    assert!(r["error"].as_str().unwrap().contains("not found"), "{r}");

    // Exec output is not the container's log.
    let log = std::fs::read_to_string(shim.spec.path().join("container.log")).unwrap_or_default();
    assert!(!log.contains("eout"), "{log}");

    // A killed exec: 137, and no zombie left.
    let p = process(&["sleep", "1000"], false);
    let (mut s, r) = request(&sock, &exec_line("e5", p, false));
    let epid = r["pid"].as_i64().unwrap() as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(epid), Signal::SIGKILL).unwrap();
    assert_eq!(read_frames(&mut s), (vec![], vec![]));
    assert_eq!(
        call(&sock, json!({"op": "exec-wait", "exec_id": "e5"}))["exit_code"],
        137
    );
    assert!(!std::path::Path::new(&format!("/proc/{epid}")).exists());
    let pid = shim.child.as_ref().unwrap().id();
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
    assert_eq!(
        children.split_whitespace().count(),
        1,
        "only the init: {children}"
    );

    let mut w = waiter(&sock);
    shim.kill_container(Signal::SIGKILL);
    assert_eq!(wait_reply(&mut w)["exit_code"], 137);
    assert_eq!(shim.wait_exit(), 0);
}
