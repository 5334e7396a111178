//! Root tests of the v2 manager on the host's real cgroup2 mount:
//! /sys/fs/cgroup on v2 hosts, /sys/fs/cgroup/unified on hybrid ones (no
//! controllers there, but cgroup.procs/freeze/kill/events and BPF device
//! programs all work).

mod common;

use common::{read, unique_path, Guard};
use oci_spec::runtime::{LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxResourcesBuilder};
use skiff_cgroups::{from_paths, manager_with_roots, FreezerState, Roots};

fn new_guard(tag: &str) -> Option<Guard> {
    if !common::is_root() {
        eprintln!("skipping: needs root");
        return None;
    }
    let Some(root) = common::v2_root() else {
        eprintln!("skipping: no cgroup2 mount");
        return None;
    };
    let path = unique_path(tag);
    let mgr = manager_with_roots(&Roots::V2(root), Some(&path), "unused").expect("manager");
    let g = Guard::new(mgr);
    g.mgr.create().expect("create");
    Some(g)
}

#[test]
fn v2_procs_freeze_kill_destroy() {
    let Some(mut g) = new_guard("v2life") else {
        return;
    };
    let dir = g.dir("").to_path_buf();
    assert!(dir.is_dir());
    let a = g.spawn_sleeper();
    let b = g.spawn_sleeper();
    let mut want = vec![a, b];
    want.sort();
    assert_eq!(g.mgr.pids().unwrap(), want);
    assert!(read(&dir, "cgroup.events").contains("populated 1"));

    g.mgr.freeze().expect("freeze");
    assert_eq!(g.mgr.freezer_state().unwrap(), FreezerState::Frozen);
    assert_eq!(read(&dir, "cgroup.freeze"), "1");
    // a frozen task sleeps in the freezer: its state is S or D, never R
    let status = std::fs::read_to_string(format!("/proc/{a}/status")).unwrap();
    assert!(!status.contains("State:\tR"), "{status}");
    g.mgr.thaw().expect("thaw");
    assert_eq!(g.mgr.freezer_state().unwrap(), FreezerState::Thawed);

    // a later process re-opens the cgroup from the saved paths
    let again = from_paths(g.mgr.paths()).unwrap();
    again.kill_all(libc::SIGKILL).expect("kill_all");
    for c in &mut g.children {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(c.wait().unwrap().signal(), Some(libc::SIGKILL));
    }
    g.children.clear();
    again.destroy().expect("destroy");
    assert!(!dir.exists());
}

#[test]
fn v2_kill_all_with_sigterm_signals_every_pid() {
    let Some(mut g) = new_guard("v2term") else {
        return;
    };
    g.spawn_sleeper();
    g.mgr.kill_all(libc::SIGTERM).expect("kill_all");
    use std::os::unix::process::ExitStatusExt;
    let status = g.children[0].wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGTERM));
    // the freezer was thawed again afterwards
    assert_eq!(g.mgr.freezer_state().unwrap(), FreezerState::Thawed);
}

#[test]
fn v2_bpf_device_filter_denies_dev_zero_and_can_be_replaced() {
    let Some(mut g) = new_guard("v2dev") else {
        return;
    };
    let rule = |allow: bool, minor: Option<i64>, access: &str| {
        let mut b = LinuxDeviceCgroupBuilder::default()
            .allow(allow)
            .access(access);
        if let Some(m) = minor {
            b = b.typ(LinuxDeviceType::C).major(1).minor(m);
        }
        b.build().unwrap()
    };
    // deny all, allow /dev/null rwm and /dev/zero read-only
    let res = LinuxResourcesBuilder::default()
        .devices(vec![
            rule(false, None, "rwm"),
            rule(true, Some(3), "rwm"),
            rule(true, Some(5), "r"),
        ])
        .build()
        .unwrap();
    g.mgr.set(&res).expect("set devices");
    let idx = g.spawn_gated(
        "head -c1 /dev/null && echo null-ok; head -c1 /dev/zero >/dev/null && echo zero-r-ok; \
         echo x >/dev/zero && echo zero-w-ok; head -c1 /dev/urandom >/dev/null && echo urandom-ok",
    );
    let pid = g.children[idx].id() as i32;
    g.mgr.apply(pid).expect("apply");
    let (_ok, out, err) = g.release(idx);
    assert!(out.contains("null-ok"), "{out:?} {err:?}");
    assert!(out.contains("zero-r-ok"), "{out:?} {err:?}");
    assert!(!out.contains("zero-w-ok"), "{out:?} {err:?}");
    assert!(!out.contains("urandom-ok"), "{out:?} {err:?}");
    assert!(err.contains("Operation not permitted"), "{err:?}");

    // update: allow everything; the old program must be gone
    let res = LinuxResourcesBuilder::default()
        .devices(vec![rule(true, None, "rwm")])
        .build()
        .unwrap();
    g.mgr.set(&res).expect("replace devices");
    let idx = g.spawn_gated("head -c1 /dev/urandom >/dev/null && echo urandom-ok");
    let pid = g.children[idx].id() as i32;
    g.mgr.apply(pid).expect("apply");
    let (_ok, out, err) = g.release(idx);
    assert!(out.contains("urandom-ok"), "{out:?} {err:?}");
}
