//! The shim against hostile or absent clients (root, real containers): malformed requests,
//! clients that vanish, the daemon dying; and its idle memory.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use nix::sys::signal::Signal;
use serde_json::json;

fn error_of(sock: &std::path::Path, req: &[u8]) -> String {
    let (_, r) = request(sock, req);
    r["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error for {:?}: {r}", String::from_utf8_lossy(req)))
        .to_string()
}

#[test]
fn malformed_requests_get_errors_and_the_shim_serves_on() {
    let (mut shim, pid) = Spec::new("bad-req", &["sleep", "1000"]).run();
    let sock = shim.sock();
    assert!(error_of(&sock, b"garbage\n").contains("invalid request"));
    assert!(error_of(&sock, b"{\"op\":\"nope\"}\n").contains("invalid request"));
    assert!(error_of(&sock, b"{\"op\":\"resize\"}\n").contains("invalid request"));
    assert!(error_of(&sock, b"[1,2]\n").contains("invalid request"));
    assert!(error_of(&sock, b"\xff\xfe\x00\n").contains("invalid request"));
    assert!(
        error_of(&sock, b"{\"op\":\"resize\",\"height\":99999,\"width\":1}\n")
            .contains("invalid request")
    );
    assert!(
        error_of(&sock, b"{\"op\":\"resize\",\"height\":1,\"width\":1}\n").contains("no terminal")
    );
    assert!(error_of(
        &sock,
        b"{\"op\":\"exec-resize\",\"exec_id\":\"x\",\"height\":1,\"width\":1}\n"
    )
    .contains("not found"));
    let empty_id = json!({"op": "exec", "exec_id": "", "process": process(&["true"], false)});
    assert!(error_of(&sock, format!("{empty_id}\n").as_bytes()).contains("exec_id"));
    let no_args = json!({"op": "exec", "exec_id": "a", "process": process(&[], false)});
    assert!(!error_of(&sock, format!("{no_args}\n").as_bytes()).is_empty());

    // A line longer than the limit.
    let mut s = UnixStream::connect(&sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let big = vec![b'x'; 2 * 1024 * 1024];
    let _ = s.write_all(&big);
    let line = reply_line(&mut s);
    assert!(
        String::from_utf8_lossy(&line).contains("longer than"),
        "{line:?}"
    );

    // Clients that vanish: before the request, mid-request, mid-stream.
    drop(UnixStream::connect(&sock).unwrap());
    let mut s = UnixStream::connect(&sock).unwrap();
    s.write_all(b"{\"op\":\"wa").unwrap();
    drop(s);
    let (s, _) = request(
        &sock,
        b"{\"op\":\"attach\",\"stdout\":true,\"stdin\":true}\n",
    );
    drop(s);
    drop(waiter(&sock));

    // Still serving, container untouched.
    assert_eq!(
        call(&sock, json!({"op": "status"})),
        json!({"pid": pid, "running": true})
    );
    let mut w = waiter(&sock);
    shim.kill_container(Signal::SIGKILL);
    assert_eq!(wait_reply(&mut w)["exit_code"], 137);
    assert_eq!(shim.wait_exit(), 0);
}

#[test]
fn container_and_shim_survive_the_daemon() {
    // The test process adopts orphans, as init would, so it can reap the shim at the end.
    // SAFETY: prctl with integer arguments.
    let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(r, 0);
    let spec = Spec::new("orphan", &["sh", "-c", "read x; echo \"after $x\"; exit 4"]).stdin(true);
    let pidfile = spec.path().join("shim.pid");
    spec.write();
    // A short-lived "daemon": starts the shim in the background, then is killed.
    let mut daemon = Command::new("/bin/sh")
        .arg("-c")
        .arg("\"$0\" \"$1\" & echo $! > \"$2\"; exec sleep 1000")
        .arg(BIN)
        .arg(spec.path())
        .arg(&pidfile)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let line = read_line(daemon.stdout.take().unwrap());
    let pid = parse_start(&line).unwrap();
    let mut shim_pid = 0;
    eventually("shim pid file", || {
        shim_pid = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        shim_pid > 0
    });
    let shim = Shim { spec, child: None };
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        call(&shim.sock(), json!({"op": "status"})),
        json!({"pid": pid, "running": true})
    );
    let (mut s, _) = request(
        &shim.sock(),
        b"{\"op\":\"attach\",\"stdin\":true,\"stdout\":true}\n",
    );
    let mut w = waiter(&shim.sock());
    s.write_all(b"restart\n").unwrap();
    assert_eq!(read_frames(&mut s).0, b"after restart\n");
    assert_eq!(wait_reply(&mut w)["exit_code"], 4);
    let st = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(shim_pid), None).unwrap();
    assert_eq!(
        st,
        nix::sys::wait::WaitStatus::Exited(nix::unistd::Pid::from_raw(shim_pid), 0)
    );
}

fn smaps_rollup(pid: u32) -> Vec<(String, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap();
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            let kb = v.trim().strip_suffix(" kB")?.trim().parse().ok()?;
            Some((k.to_string(), kb))
        })
        .collect()
}

#[test]
fn idle_memory() {
    // A freshly linked binary's page-cache pages are dirty until written back, and smaps
    // counts them as the process's Private_Dirty: write them back first.
    std::fs::File::open(BIN).unwrap().sync_all().unwrap();
    let (mut shim, _) = Spec::new("mem", &["sleep", "1000"]).run();
    // One exec and one attach, then idle again.
    let p = process(&["true"], false);
    let mut l = json!({"op":"exec","exec_id":"m","process":p,"stdout":true}).to_string();
    l.push('\n');
    let (mut s, _) = request(&shim.sock(), l.as_bytes());
    let mut sink = Vec::new();
    s.read_to_end(&mut sink).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let pid = shim.child.as_ref().unwrap().id();
    let m = smaps_rollup(pid);
    let get = |k: &str| m.iter().find(|(n, _)| n == k).map(|(_, v)| *v).unwrap_or(0);
    eprintln!(
        "idle shim ({}): Rss {} kB, Pss {} kB, Private_Dirty {} kB, Private_Clean {} kB, Anonymous {} kB",
        BIN,
        get("Rss"),
        get("Pss"),
        get("Private_Dirty"),
        get("Private_Clean"),
        get("Anonymous")
    );
    assert!(get("Private_Dirty") < 1024, "{m:?}");
    let mut w = waiter(&shim.sock());
    shim.kill_container(Signal::SIGKILL);
    assert_eq!(wait_reply(&mut w)["exit_code"], 137);
    assert_eq!(shim.wait_exit(), 0);
}
