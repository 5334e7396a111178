//! More of the daemon end to end, driven by the real docker CLI (and raw HTTP where the CLI
//! hides the answer): `cp` both ways and through hostile symlinks, `diff`, `export`,
//! `update`, `stats`, `events`, `top`, 50 concurrent runs, healthchecks, `--restart always`,
//! resource and security flags landing in the cgroup and the process, volumes, tmpfs, log
//! drivers and rotation, `run -t` under a pty, and the JSON shapes of the main answers
//! checked against the v1.44 spec. Needs root.

mod daemon_support;

use std::collections::BTreeSet;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use daemon_support::{stderr, stdout, tail, Daemon};
use serde_json::Value;

fn host_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("skiff-more-")
        .tempdir_in("/tmp")
        .unwrap()
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn read(p: impl AsRef<Path>) -> String {
    std::fs::read_to_string(p.as_ref())
        .unwrap_or_else(|e| panic!("read {}: {e}", p.as_ref().display()))
}

/// The host directory of `pid`'s cgroup for a v1 controller (`memory`, `pids`, `cpu`).
fn cgroup_dir(pid: i64, controller: &str) -> PathBuf {
    let cg = read(format!("/proc/{pid}/cgroup"));
    for l in cg.lines() {
        let mut it = l.splitn(3, ':');
        let (_, ctrls, path) = (it.next(), it.next().unwrap_or(""), it.next().unwrap_or(""));
        if ctrls.split(',').any(|c| c == controller) {
            return PathBuf::from(format!("/sys/fs/cgroup/{controller}{path}"));
        }
    }
    panic!("no {controller} cgroup for {pid}: {cg}");
}

fn cg_value(pid: i64, controller: &str, file: &str) -> String {
    read(cgroup_dir(pid, controller).join(file))
        .trim()
        .to_string()
}

fn pid_of(d: &Daemon, c: &str) -> i64 {
    let v = d.inspect(c);
    v["State"]["Pid"]
        .as_i64()
        .filter(|p| *p > 0)
        .unwrap_or_else(|| panic!("no pid: {v}"))
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Mount points under `dir` in this (the host's) mount namespace.
fn mounts_under(dir: &Path) -> Vec<String> {
    let needle = s(dir);
    read("/proc/self/mountinfo")
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .nth(4)
                .is_some_and(|m| m.starts_with(&needle))
        })
        .map(str::to_string)
        .collect()
}

/// Entry names of a tar (without a leading `./`) → contents of the regular files.
fn tar_entries(bytes: &[u8]) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut a = tar::Archive::new(bytes);
    let mut out = std::collections::BTreeMap::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e
            .path()
            .unwrap()
            .display()
            .to_string()
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_string();
        let mut data = Vec::new();
        if e.header().entry_type().is_file() {
            e.read_to_end(&mut data).unwrap();
        }
        out.insert(name, data);
    }
    out
}

// ---------------------------------------------------------------------------------------
// docker cp
// ---------------------------------------------------------------------------------------

#[test]
fn cp_file_and_dir_both_ways_running_and_stopped() {
    let d = Daemon::start();
    let h = host_dir();
    std::fs::write(h.path().join("f.txt"), "file from host\n").unwrap();
    std::fs::create_dir_all(h.path().join("d/sub")).unwrap();
    std::fs::write(h.path().join("d/a"), "A\n").unwrap();
    std::fs::write(h.path().join("d/sub/b"), "B\n").unwrap();
    std::fs::set_permissions(h.path().join("d/a"), std::fs::Permissions::from_mode(0o751)).unwrap();

    // Into and out of a running container.
    d.ok(&["run", "-d", "--name", "cpr", "busybox", "sleep", "1000"]);
    d.ok(&["cp", &s(&h.path().join("f.txt")), "cpr:/tmp/"]);
    d.ok(&["cp", &s(&h.path().join("d")), "cpr:/tmp/d"]);
    d.ok(&["cp", &s(&h.path().join("f.txt")), "cpr:/tmp/renamed.txt"]);
    assert_eq!(
        d.ok(&["exec", "cpr", "cat", "/tmp/f.txt"]),
        "file from host"
    );
    assert_eq!(
        d.ok(&["exec", "cpr", "cat", "/tmp/renamed.txt"]),
        "file from host"
    );
    assert_eq!(
        d.ok(&["exec", "cpr", "cat", "/tmp/d/a", "/tmp/d/sub/b"]),
        "A\nB"
    );
    assert_eq!(
        d.ok(&["exec", "cpr", "stat", "-c", "%a", "/tmp/d/a"]),
        "751"
    );
    d.ok(&[
        "exec",
        "cpr",
        "sh",
        "-c",
        "echo made inside > /tmp/out.txt; mkdir -p /tmp/outdir/deep; echo x > /tmp/outdir/deep/x",
    ]);
    let back = h.path().join("back");
    std::fs::create_dir(&back).unwrap();
    d.ok(&["cp", "cpr:/tmp/out.txt", &s(&back)]);
    d.ok(&["cp", "cpr:/tmp/outdir", &s(&back.join("outdir"))]);
    assert_eq!(read(back.join("out.txt")), "made inside\n");
    assert_eq!(read(back.join("outdir/deep/x")), "x\n");
    // To stdout: a tar with the file.
    let o = d.docker(&["cp", "cpr:/tmp/out.txt", "-"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let t = tar_entries(&o.stdout);
    assert_eq!(
        t.get("out.txt").map(|v| v.as_slice()),
        Some(&b"made inside\n"[..]),
        "{:?}",
        t.keys()
    );
    // A missing source is an error (the exact message is checked in
    // `cp_missing_path_message_names_the_container`).
    let o = d.docker(&["cp", "cpr:/no/such/file", &s(&back)]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("Could not find the file /no/such/file in container"),
        "{}",
        stderr(&o)
    );

    // Into and out of a stopped (never started) container, then started.
    let id = d.ok(&[
        "create",
        "--name",
        "cps",
        "busybox",
        "sh",
        "-c",
        "cat /tmp/f.txt /tmp/d/sub/b; echo written > /tmp/after",
    ]);
    d.ok(&["cp", &s(&h.path().join("f.txt")), "cps:/tmp/"]);
    d.ok(&["cp", &s(&h.path().join("d")), "cps:/tmp/d"]);
    assert!(
        mounts_under(&d.data_root())
            .iter()
            .all(|m| !m.contains(&id)),
        "cp into a stopped container left its rootfs mounted"
    );
    let o = d.docker(&["start", "-a", "cps"]);
    assert_eq!(stdout(&o), "file from host\nB\n", "{}", stderr(&o));
    d.ok(&["cp", "cps:/tmp/after", &s(&back)]);
    assert_eq!(read(back.join("after")), "written\n");
    d.ok(&["cp", "cps:/tmp/d", &s(&back.join("d-again"))]);
    assert_eq!(read(back.join("d-again/sub/b")), "B\n");
    assert!(
        mounts_under(&d.data_root())
            .iter()
            .all(|m| !m.contains(&id)),
        "cp out of a stopped container left its rootfs mounted"
    );
}

#[test]
fn cp_missing_path_message_names_the_container() {
    let d = Daemon::start();
    d.ok(&["run", "-d", "--name", "cpm", "busybox", "sleep", "1000"]);
    let o = d.docker(&["cp", "cpm:/no/such/file", "-"]);
    assert!(
        stderr(&o).contains(
            "Error response from daemon: Could not find the file /no/such/file in container cpm"
        ),
        "{}",
        stderr(&o)
    );
}

/// A tar with raw entry names (so `..` and absolute names can be written, which the tar
/// crate refuses): (name, kind, link target or data).
fn raw_tar(entries: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, payload) in entries {
        let mut h = tar::Header::new_gnu();
        {
            let g = h.as_gnu_mut().unwrap();
            g.name[..name.len()].copy_from_slice(name.as_bytes());
        }
        h.set_entry_type(*kind);
        h.set_mode(0o644);
        h.set_mtime(0);
        let data: &[u8] = if kind.is_file() {
            h.set_size(payload.len() as u64);
            payload.as_bytes()
        } else {
            h.set_size(0);
            if !payload.is_empty() {
                let g = h.as_gnu_mut().unwrap();
                g.linkname[..payload.len()].copy_from_slice(payload.as_bytes());
            }
            &[]
        };
        if kind.is_dir() {
            h.set_mode(0o755);
        }
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn cp_through_symlinks_stays_inside_the_container() {
    let d = Daemon::start();
    let marker_dir = host_dir();
    let md = s(marker_dir.path());
    let secret = marker_dir.path().join("secret");
    std::fs::write(&secret, "HOST SECRET\n").unwrap();
    let h = host_dir();
    std::fs::write(h.path().join("evil"), "PWNED\n").unwrap();
    let unchanged = |what: &str| {
        assert_eq!(
            read(&secret),
            "HOST SECRET\n",
            "{what}: host file overwritten"
        );
        let names: Vec<_> = std::fs::read_dir(marker_dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names.len(),
            1,
            "{what}: files written on the host: {names:?}"
        );
    };

    d.ok(&[
        "run",
        "-d",
        "--name",
        "hostile",
        "busybox",
        "sh",
        "-c",
        &format!(
            "ln -s / /rootlink; ln -s ../../.. /tmp/up; mkdir -p /tmp/a/b; \
             ln -s ../../../../../../.. /tmp/a/b/deep; ln -s {md}/secret /leak; \
             ln -s {md} /leakdir; touch /ready; sleep 1000"
        ),
    ]);
    d.until("symlinks made", || {
        d.docker(&["exec", "hostile", "test", "-f", "/ready"])
            .status
            .success()
    });
    let out = h.path().join("out");
    std::fs::create_dir(&out).unwrap();

    // Reads through in-container symlinks resolve inside the container: not found there.
    for src in [
        format!("hostile:/rootlink{md}/secret"),
        format!("hostile:/tmp/up{md}/secret"),
        format!("hostile:/tmp/a/b/deep{md}/secret"),
        "hostile:/leakdir/secret".to_string(),
        format!("hostile:/rootlink/../../..{md}/secret"),
    ] {
        let o = d.docker(&["cp", &src, &s(&out)]);
        assert!(
            !o.status.success(),
            "docker cp {src} read a host file: {}",
            stdout(&o)
        );
        assert!(
            stderr(&o).contains("Could not find the file"),
            "{src}: {}",
            stderr(&o)
        );
        let o = d.docker(&["cp", &src, "-"]);
        assert!(
            !String::from_utf8_lossy(&o.stdout).contains("HOST SECRET"),
            "{src} leaked the host file"
        );
    }
    // -L follows /leak inside the container, where its target does not exist.
    let o = d.docker(&["cp", "-L", "hostile:/leak", &s(&out.join("l"))]);
    assert!(!o.status.success(), "cp -L read the host file");
    assert!(!out.join("l").exists());
    // Without -L the link is copied as a link.
    d.ok(&["cp", "hostile:/leak", &s(&out.join("link"))]);
    assert!(std::fs::symlink_metadata(out.join("link"))
        .unwrap()
        .file_type()
        .is_symlink());
    // Raw API: stat and get through the links are 404s.
    for p in [
        format!("/rootlink{md}/secret"),
        format!("/tmp/up{md}/secret"),
    ] {
        let r = d.http_raw(
            "GET",
            &format!("/containers/hostile/archive?path={p}"),
            "text/plain",
            b"",
        );
        assert_eq!(r.status, 404, "{p}: {}", r.text());
        assert!(!r.text().contains("HOST SECRET"));
    }

    // Writes: with no such directory in the container they fail...
    let evil = s(&h.path().join("evil"));
    for dst in [
        format!("hostile:/rootlink{md}/secret"),
        format!("hostile:/tmp/up{md}/"),
        "hostile:/leakdir/".to_string(),
        "hostile:/leak".to_string(),
    ] {
        let _ = d.docker(&["cp", &evil, &dst]);
        unchanged(&dst);
    }
    // ... (or create a file of that name inside the container, as Docker does when the link
    // target's parent exists) and once the path exists inside the container they land there.
    d.ok(&[
        "exec",
        "hostile",
        "sh",
        "-c",
        &format!("rm -rf {md}; mkdir -p {md}"),
    ]);
    for (dst, inside) in [
        (
            format!("hostile:/rootlink{md}/secret"),
            format!("{md}/secret"),
        ),
        (format!("hostile:/tmp/up{md}/"), format!("{md}/evil")),
        ("hostile:/leakdir/x".to_string(), format!("{md}/x")),
    ] {
        d.ok(&["cp", &evil, &dst]);
        unchanged(&dst);
        assert_eq!(d.ok(&["exec", "hostile", "cat", &inside]), "PWNED", "{dst}");
    }
    d.ok(&["exec", "hostile", "rm", "-f", &format!("{md}/secret")]);
    d.ok(&["cp", &evil, "hostile:/leak"]);
    unchanged("cp onto /leak");
    assert_eq!(
        d.ok(&["exec", "hostile", "cat", &format!("{md}/secret")]),
        "PWNED"
    );

    // Crafted archives through the raw API: a symlink then a file through it, `..` names,
    // absolute names, and a hard link to a host path.
    let tars = [
        raw_tar(&[
            ("esc", tar::EntryType::Symlink, md.as_str()),
            ("esc/secret", tar::EntryType::Regular, "PWNED\n"),
        ]),
        raw_tar(&[("up", tar::EntryType::Symlink, "../../../../../..")]),
        raw_tar(&[(
            &format!("up{md}/secret"),
            tar::EntryType::Regular,
            "PWNED\n",
        )]),
        raw_tar(&[(
            &format!("../../../../../..{md}/secret"),
            tar::EntryType::Regular,
            "PWNED\n",
        )]),
        raw_tar(&[(&format!("{md}/abs"), tar::EntryType::Regular, "PWNED\n")]),
        raw_tar(&[(
            "hardlink",
            tar::EntryType::Link,
            &format!("../../../../../..{md}/secret"),
        )]),
        raw_tar(&[(
            "hardlink2",
            tar::EntryType::Link,
            format!("{md}/secret").trim_start_matches('/'),
        )]),
    ];
    for (i, t) in tars.iter().enumerate() {
        let r = d.http_raw(
            "PUT",
            "/containers/hostile/archive?path=/tmp",
            "application/x-tar",
            t,
        );
        assert!(r.status < 500, "tar {i}: {} {}", r.status, r.text());
        unchanged(&format!("crafted tar {i}"));
    }
    for f in ["/tmp/hardlink", "/tmp/hardlink2"] {
        let o = d.docker(&["exec", "hostile", "cat", f]);
        assert!(
            !stdout(&o).contains("HOST SECRET"),
            "{f} is a hard link to the host file"
        );
    }
    // The same against a stopped container (its rootfs is mounted for the copy).
    d.ok(&["stop", "-t", "0", "hostile"]);
    for p in [format!("/rootlink{md}/secret"), "/leakdir/secret".into()] {
        let o = d.docker(&["cp", &format!("hostile:{p}"), "-"]);
        assert!(
            !String::from_utf8_lossy(&o.stdout).contains("HOST SECRET"),
            "{p} leaked from a stopped container"
        );
    }
    let r = d.http_raw(
        "PUT",
        "/containers/hostile/archive?path=/",
        "application/x-tar",
        &tars[0],
    );
    assert!(r.status < 500, "{}", r.text());
    unchanged("crafted tar into a stopped container");
}

#[test]
fn cp_into_and_out_of_a_bind_mount() {
    let d = Daemon::start();
    let vol = host_dir();
    std::fs::write(vol.path().join("h.txt"), "in the volume\n").unwrap();
    let h = host_dir();
    std::fs::write(h.path().join("in.txt"), "copied in\n").unwrap();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "vol",
        "-v",
        &format!("{}:/data", s(vol.path())),
        "busybox",
        "sleep",
        "1000",
    ]);
    // Docker copies from and to the volume, as the container sees /data.
    let o = d.docker(&["cp", "vol:/data/h.txt", "-"]);
    assert!(o.status.success(), "cp out of a bind mount: {}", stderr(&o));
    assert!(tar_entries(&o.stdout).contains_key("h.txt"));
    d.ok(&["cp", &s(&h.path().join("in.txt")), "vol:/data/"]);
    assert_eq!(read(vol.path().join("in.txt")), "copied in\n");
    assert_eq!(d.ok(&["exec", "vol", "cat", "/data/in.txt"]), "copied in");
}

// ---------------------------------------------------------------------------------------
// diff, export, update, stats, top, events
// ---------------------------------------------------------------------------------------

#[test]
fn diff_and_export() {
    let d = Daemon::start();
    let id = d.ok(&["run", "-d", "--name", "fresh", "busybox", "sleep", "1000"]);

    d.ok(&[
        "exec",
        "fresh",
        "sh",
        "-c",
        "echo new > /added; echo x >> /etc/passwd; rm /etc/group; mkdir /newdir; touch /newdir/f",
    ]);
    let diff = d.ok(&["diff", "fresh"]);
    let got: BTreeSet<&str> = diff.lines().collect();
    let want: BTreeSet<&str> = [
        "A /added",
        "C /etc",
        "C /etc/passwd",
        "D /etc/group",
        "A /newdir",
        "A /newdir/f",
    ]
    .into_iter()
    .collect();
    // (Exact equality, with nothing else listed, is `diff_of_an_untouched_container_is_empty`.)
    assert!(got.is_superset(&want), "docker diff:\n{diff}");
    let changes = d.http_raw("GET", "/containers/fresh/changes", "text/plain", b"");
    assert_eq!(changes.status, 200);
    let v = changes.json();
    let added = v
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["Path"] == "/added")
        .cloned()
        .unwrap_or_default();
    assert_eq!(added["Kind"], 1, "{v}");

    // Export of the running container.
    let h = host_dir();
    let tarp = h.path().join("e.tar");
    d.ok(&["export", "-o", &s(&tarp), "fresh"]);
    let t = tar_entries(&std::fs::read(&tarp).unwrap());
    assert!(t.contains_key("bin/busybox"), "{:?}", t.keys());
    assert!(t["bin/busybox"].len() > 100_000);
    assert_eq!(t.get("added").map(|v| v.as_slice()), Some(&b"new\n"[..]));
    assert!(t.contains_key("newdir/f"));
    assert!(!t.contains_key("etc/group"), "a deleted file was exported");
    assert!(String::from_utf8_lossy(&t["etc/passwd"]).ends_with("x\n"));
    // Export of the stopped container, to stdout; its rootfs is unmounted afterwards.
    d.ok(&["stop", "-t", "0", "fresh"]);
    let o = d.docker(&["export", "fresh"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let t = tar_entries(&o.stdout);
    assert_eq!(t.get("added").map(|v| v.as_slice()), Some(&b"new\n"[..]));
    assert!(
        mounts_under(&d.data_root())
            .iter()
            .all(|m| !m.contains(&id)),
        "export left the rootfs mounted"
    );
    // A diff of the stopped container still works.
    assert!(d.ok(&["diff", "fresh"]).contains("A /added"));
}

#[test]
fn diff_of_an_untouched_container_is_empty() {
    let d = Daemon::start();
    d.ok(&["run", "-d", "--name", "fresh", "busybox", "sleep", "1000"]);
    // Docker: the init layer holds /etc/hosts, /etc/resolv.conf, /etc/hostname, /dev/...,
    // so a container that wrote nothing shows no change.
    assert_eq!(
        d.ok(&["diff", "fresh"]),
        "",
        "diff of an untouched container"
    );
}

#[test]
fn update_memory_and_pids_of_a_running_container() {
    let d = Daemon::start();
    d.ok(&["run", "-d", "--name", "upd", "busybox", "sleep", "1000"]);
    let pid = pid_of(&d, "upd");
    let cg = cgroup_dir(pid, "memory");
    assert!(cg.exists(), "{}", cg.display());
    d.ok(&["update", "--memory", "64m", "upd"]);
    assert_eq!(cg_value(pid, "memory", "memory.limit_in_bytes"), "67108864");
    assert_eq!(d.inspect("upd")["HostConfig"]["Memory"], 67108864);
    // Down, then up again (past the swap limit set with the first update).
    d.ok(&["update", "--memory", "48m", "upd"]);
    assert_eq!(cg_value(pid, "memory", "memory.limit_in_bytes"), "50331648");
    d.ok(&["update", "--memory", "256m", "--memory-swap", "512m", "upd"]);
    assert_eq!(
        cg_value(pid, "memory", "memory.limit_in_bytes"),
        "268435456"
    );
    if cgroup_dir(pid, "memory")
        .join("memory.memsw.limit_in_bytes")
        .exists()
    {
        assert_eq!(
            cg_value(pid, "memory", "memory.memsw.limit_in_bytes"),
            "536870912"
        );
    }
    // What the container sees, when its cgroup is mounted at /sys/fs/cgroup/memory.
    let o = d.docker(&[
        "exec",
        "upd",
        "cat",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]);
    if o.status.success() {
        assert_eq!(stdout(&o).trim(), "268435456");
    }
    d.ok(&["update", "--pids-limit", "33", "--cpus", "0.25", "upd"]);
    assert_eq!(cg_value(pid, "pids", "pids.max"), "33");
    assert_eq!(cg_value(pid, "cpu", "cpu.cfs_quota_us"), "25000");
    let v = d.inspect("upd");
    assert_eq!(v["HostConfig"]["PidsLimit"], 33);
    assert_eq!(v["HostConfig"]["NanoCpus"], 250000000);
    assert_eq!(v["HostConfig"]["Memory"], 268435456);
    // Still running, and the limits survive a restart.
    assert_eq!(v["State"]["Running"], true);
    d.ok(&["restart", "-t", "0", "upd"]);
    let pid = pid_of(&d, "upd");
    assert_eq!(
        cg_value(pid, "memory", "memory.limit_in_bytes"),
        "268435456"
    );
    assert_eq!(cg_value(pid, "pids", "pids.max"), "33");
}

/// "12.5MiB" → bytes.
fn parse_size(s: &str) -> f64 {
    let s = s.trim();
    let i = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let n: f64 = s[..i].parse().unwrap_or(0.0);
    let mul = match &s[i..] {
        "B" => 1.0,
        "KiB" | "kB" => 1024.0,
        "MiB" | "MB" => 1024.0 * 1024.0,
        "GiB" | "GB" => 1024.0 * 1024.0 * 1024.0,
        _ => 0.0,
    };
    n * mul
}

#[test]
fn stats_top_and_events() {
    let d = Daemon::start();
    let t0 = now_secs();
    d.ok(&["run", "--rm", "--name", "ev", "busybox", "true"]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "st",
        "busybox",
        "sh",
        "-c",
        "x=$(yes | head -c 4000000); sleep 1000",
    ]);
    // stats --no-stream: one line, non-zero memory.
    let line = d.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}|{{.MemUsage}}|{{.PIDs}}",
        "st",
    ]);
    let f: Vec<&str> = line.split('|').collect();
    assert_eq!(f.len(), 3, "{line}");
    assert_eq!(f[0], "st");
    let usage = f[1].split('/').next().unwrap();
    assert!(parse_size(usage) > 0.0, "memory usage {line}");
    assert_ne!(f[2].trim(), "0", "{line}");
    let r = d.http_raw(
        "GET",
        "/containers/st/stats?stream=false",
        "text/plain",
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert!(v["memory_stats"]["usage"].as_u64().unwrap_or(0) > 0, "{v}");
    assert!(
        v["cpu_stats"]["cpu_usage"]["total_usage"]
            .as_u64()
            .is_some(),
        "{v}"
    );
    assert_eq!(v["name"], "/st");

    // top: Docker's default columns, and ps options.
    let top = d.ok(&["top", "st"]);
    let header: Vec<&str> = top.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
        "{top}"
    );
    assert!(top.contains("sleep 1000"), "{top}");
    let top = d.ok(&["top", "st", "-o", "pid,comm"]);
    let mut lines = top.lines();
    assert_eq!(
        lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
        ["PID", "COMMAND"],
        "{top}"
    );
    let comms: Vec<&str> = lines.filter_map(|l| l.split_whitespace().nth(1)).collect();
    // busybox sh execs the last command of -c: one process, sleep.
    assert_eq!(comms, ["sleep"], "{top}");
    let o = d.docker(&["top", "ev"]);
    assert!(!o.status.success());

    // events between t0 and now: the --rm container's life, in order.
    d.ok(&["stop", "-t", "0", "st"]);
    let t1 = now_secs() + 1;
    let out = d.ok(&[
        "events",
        "--since",
        &t0.to_string(),
        "--until",
        &t1.to_string(),
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
    ]);
    let ev: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("container ") && l.ends_with(" ev"))
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    let mut want = ["create", "start", "die", "destroy"].iter().peekable();
    for a in &ev {
        if want.peek() == Some(&a) {
            want.next();
        }
    }
    assert!(want.peek().is_none(), "events of ev: {ev:?}\n{out}");
    let st: Vec<&str> = out
        .lines()
        .filter(|l| l.ends_with(" st"))
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    for a in ["create", "start", "kill", "die", "stop"] {
        assert!(st.contains(&a), "{a} missing from {st:?}");
    }
    // `until` in the past: the command returns at once with the past events only.
    let t = Instant::now();
    let o = d.ok(&[
        "events",
        "--since",
        &t0.to_string(),
        "--until",
        &t0.to_string(),
    ]);
    assert!(t.elapsed() < Duration::from_secs(5), "{o}");
    // A filter by container name.
    let out = d.ok(&[
        "events",
        "--since",
        &t0.to_string(),
        "--until",
        &t1.to_string(),
        "--filter",
        "container=ev",
        "--filter",
        "event=die",
        "--format",
        "{{.Action}} {{.Actor.Attributes.exitCode}}",
    ]);
    assert_eq!(out, "die 0");
}

// ---------------------------------------------------------------------------------------
// Many at once; healthchecks; restart always
// ---------------------------------------------------------------------------------------

#[test]
fn fifty_concurrent_runs_leave_nothing_behind() {
    // Named, and the command lives a little: see `fifty_concurrent_echoes` for unnamed
    // containers whose process exits at once.
    fifty_concurrent("sleep 0.3; echo", true);
}

#[test]
fn fifty_concurrent_echoes() {
    fifty_concurrent("echo", false);
}

fn fifty_concurrent(cmd: &'static str, named: bool) {
    let d = std::sync::Arc::new(Daemon::start());
    let cids = host_dir();
    let handles: Vec<_> = (0..50)
        .map(|i| {
            let d = d.clone();
            let cid = s(&cids.path().join(format!("{i}.cid")));
            std::thread::spawn(move || {
                let script = format!("{cmd} {i}");
                let name = format!("run-{i}");
                let mut args = vec!["run", "--rm", "--cidfile", &cid];
                if named {
                    args.extend_from_slice(&["--name", &name]);
                }
                args.extend_from_slice(&["busybox", "sh", "-c", &script]);
                let o = d.docker(&args);
                (i, o)
            })
        })
        .collect();
    let mut failed = Vec::new();
    for h in handles {
        let (i, o) = h.join().unwrap();
        if stdout(&o) != format!("{i}\n") || !o.status.success() {
            failed.push(format!(
                "{i}: {:?} out={:?} err={:?}",
                o.status.code(),
                stdout(&o),
                stderr(&o)
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of 50 failed:\n{}\n--- daemon log:\n{}",
        failed.len(),
        failed.join("\n"),
        tail(&d.log(), 40)
    );
    // `run --rm` returns once the container is removed.
    assert_eq!(d.ok(&["ps", "-aq"]), "");
    let ids: Vec<String> = (0..50)
        .map(|i| {
            read(cids.path().join(format!("{i}.cid")))
                .trim()
                .to_string()
        })
        .collect();
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 50);
    // The namespace directory's own bind mount is the daemon's (as /run/docker/netns), and
    // so are the pool of prepared namespaces (`netns-pool/`, the dir and its entries, kept
    // while the daemon runs); a container's namespace file or rootfs left mounted is a leak.
    // Network teardowns finish in the background: give them a moment.
    let netns_dir = d.exec_root().join("netns");
    let pool_dir = d.exec_root().join("netns-pool");
    let left_mounts = || -> Vec<String> {
        mounts_under(d.dir.path())
            .into_iter()
            .filter(|l| {
                let Some(p) = l.split_whitespace().nth(4).map(Path::new) else {
                    return true;
                };
                p != netns_dir.as_path() && !p.starts_with(&pool_dir)
            })
            .collect()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !left_mounts().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let m = left_mounts();
    assert!(m.is_empty(), "mounts left: {m:#?}");
    let left: Vec<_> = std::fs::read_dir(d.data_root().join("containers"))
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "container dirs left: {left:?}");
    assert!(d.live_shims().is_empty(), "monitors left");
    for ctrl in ["memory", "pids", "cpu", "freezer"] {
        let base = PathBuf::from(format!("/sys/fs/cgroup/{ctrl}/skiff"));
        for id in &ids {
            assert!(
                !base.join(id).exists(),
                "cgroup {ctrl}/skiff/{id} left behind"
            );
        }
    }
    let rt = d.exec_root().join("runtime");
    // (Dot files are the runtime's caches.)
    let states: Vec<_> = std::fs::read_dir(&rt)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name())
                .filter(|n| !n.to_string_lossy().starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    assert!(states.is_empty(), "runtime states left: {states:?}");
}

#[test]
fn healthcheck_starting_unhealthy_healthy() {
    let d = Daemon::start();
    let t0 = now_secs();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "hc",
        "--health-cmd",
        "test -f /tmp/ok && echo fine",
        "--health-interval",
        "1s",
        "--health-retries",
        "2",
        "busybox",
        "sleep",
        "1000",
    ]);
    let health = |d: &Daemon| d.inspect("hc")["State"]["Health"].clone();
    assert_eq!(health(&d)["Status"], "starting");
    let ps = d.ok(&["ps", "--format", "{{.Status}}"]);
    assert!(ps.contains("(health: starting)"), "{ps}");
    d.until("unhealthy", || health(&d)["Status"] == "unhealthy");
    let h = health(&d);
    assert!(h["FailingStreak"].as_i64().unwrap() >= 2, "{h}");
    let ps = d.ok(&["ps", "--format", "{{.Status}}"]);
    assert!(ps.contains("(unhealthy)"), "{ps}");
    assert_eq!(
        d.ok(&["ps", "-q", "--filter", "health=unhealthy"]).len(),
        12
    );
    d.ok(&["exec", "hc", "touch", "/tmp/ok"]);
    d.until("healthy", || health(&d)["Status"] == "healthy");
    let h = health(&d);
    assert_eq!(h["FailingStreak"], 0, "{h}");
    let log = h["Log"].as_array().unwrap();
    assert!(!log.is_empty() && log.len() <= 5, "{h}");
    let last = log.last().unwrap();
    assert_eq!(last["ExitCode"], 0, "{h}");
    assert_eq!(last["Output"], "fine\n", "{h}");
    assert!(last["Start"].as_str().unwrap().starts_with("20"), "{h}");
    assert!(last["End"].as_str().unwrap().starts_with("20"), "{h}");
    assert!(log.iter().any(|l| l["ExitCode"] == 1), "{h}");
    let ps = d.ok(&["ps", "--format", "{{.Status}}"]);
    assert!(ps.contains("(healthy)"), "{ps}");
    assert_eq!(d.ok(&["ps", "-q", "--filter", "health=healthy"]).len(), 12);
    let cfg = d.inspect("hc")["Config"]["Healthcheck"].clone();
    assert_eq!(cfg["Test"][0], "CMD-SHELL", "{cfg}");
    assert_eq!(cfg["Interval"], 1_000_000_000u64, "{cfg}");
    assert_eq!(cfg["Retries"], 2, "{cfg}");
    let t1 = now_secs() + 1;
    let ev = d.ok(&[
        "events",
        "--since",
        &t0.to_string(),
        "--until",
        &t1.to_string(),
        "--filter",
        "container=hc",
        "--format",
        "{{.Action}}",
    ]);
    assert!(ev.contains("health_status: unhealthy"), "{ev}");
    assert!(ev.contains("health_status: healthy"), "{ev}");
    // Stopped: no more probes; the status is kept as Docker does (unhealthy/healthy) but
    // the container is not running.
    d.ok(&["stop", "-t", "0", "hc"]);
    assert_eq!(d.inspect("hc")["State"]["Running"], false);
}

#[test]
fn restart_always_until_stopped() {
    let d = Daemon::start();
    let id = d.ok(&[
        "run",
        "-d",
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        "echo run; sleep 0.3; exit 3",
    ]);
    d.until("two restarts", || {
        d.inspect(&id)["RestartCount"].as_i64().unwrap_or(0) >= 2
    });
    let logs = d.ok(&["logs", &id]);
    assert!(logs.matches("run").count() >= 2, "{logs}");
    assert_eq!(
        d.inspect(&id)["HostConfig"]["RestartPolicy"]["Name"],
        "always"
    );
    d.ok(&["stop", "-t", "1", &id]);
    let v = d.inspect(&id);
    let count = v["RestartCount"].clone();
    assert_eq!(v["State"]["Running"], false, "{v}");
    assert_eq!(v["State"]["Restarting"], false, "{v}");
    std::thread::sleep(Duration::from_secs(3));
    let v = d.inspect(&id);
    assert_eq!(v["State"]["Status"], "exited", "{v}");
    assert_eq!(v["RestartCount"], count, "restarted after docker stop");
    let ps = d.ok(&["ps", "-q"]);
    assert_eq!(ps, "");
    // A container that exits 0 is restarted too.
    let id = d.ok(&["run", "-d", "--restart", "always", "busybox", "true"]);
    d.until("restart after exit 0", || {
        d.inspect(&id)["RestartCount"].as_i64().unwrap_or(0) >= 1
    });
    d.ok(&["rm", "-f", &id]);
}

// ---------------------------------------------------------------------------------------
// Flags that land in the cgroup and in the process
// ---------------------------------------------------------------------------------------

#[test]
fn resource_limits_land_in_the_cgroup() {
    let d = Daemon::start();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "lim",
        "--memory",
        "32m",
        "--pids-limit",
        "20",
        "--cpus",
        "0.5",
        "busybox",
        "sleep",
        "1000",
    ]);
    let pid = pid_of(&d, "lim");
    assert_eq!(cg_value(pid, "memory", "memory.limit_in_bytes"), "33554432");
    if cgroup_dir(pid, "memory")
        .join("memory.memsw.limit_in_bytes")
        .exists()
    {
        // Docker: swap defaults to twice the memory.
        assert_eq!(
            cg_value(pid, "memory", "memory.memsw.limit_in_bytes"),
            "67108864"
        );
    }
    assert_eq!(cg_value(pid, "pids", "pids.max"), "20");
    assert_eq!(cg_value(pid, "cpu", "cpu.cfs_quota_us"), "50000");
    assert_eq!(cg_value(pid, "cpu", "cpu.cfs_period_us"), "100000");
    let v = d.inspect("lim");
    assert_eq!(v["HostConfig"]["Memory"], 33554432);
    assert_eq!(v["HostConfig"]["PidsLimit"], 20);
    assert_eq!(v["HostConfig"]["NanoCpus"], 500000000);
    let o = d.docker(&[
        "exec",
        "lim",
        "cat",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]);
    if o.status.success() {
        assert_eq!(stdout(&o).trim(), "33554432");
    }
    // The pids limit bites.
    let o = d.docker(&[
        "run",
        "--rm",
        "--pids-limit",
        "5",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3 4 5 6 7 8; do sleep 3 & done; wait",
    ]);
    assert!(
        stderr(&o).contains("can't fork") || stderr(&o).contains("Resource temporarily"),
        "pids-limit 5 let 8 processes start: {}",
        stderr(&o)
    );
    // The memory limit bites: 64 MB in a 16 MB container (no swap) is OOM-killed.
    let o = d.docker(&[
        "run",
        "--rm",
        "--memory",
        "16m",
        "--memory-swap",
        "16m",
        "busybox",
        "sh",
        "-c",
        "x=$(head -c 67108864 /dev/zero | tr '\\0' a); echo survived ${#x}",
    ]);
    assert_eq!(o.status.code(), Some(137), "{} {}", stdout(&o), stderr(&o));
}

/// `docker run --rm busybox ARGS...` with flags; asserts success; stdout.
fn run_out(d: &Daemon, flags: &[&str], cmd: &str) -> String {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["busybox", "sh", "-c", cmd]);
    let o = d.docker(&args);
    assert!(
        o.status.success(),
        "docker {args:?}: {:?} {}{}",
        o.status,
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

#[test]
fn process_flags_ulimit_caps_readonly_seccomp_init() {
    let d = Daemon::start();
    assert_eq!(
        run_out(&d, &["--ulimit", "nofile=100:200"], "ulimit -n; ulimit -Hn"),
        "100\n200\n"
    );
    let caps = |flags: &[&str]| run_out(&d, flags, "grep CapEff /proc/self/status");
    assert_eq!(caps(&["--cap-drop", "ALL"]), "CapEff:\t0000000000000000\n");
    // Docker's default set.
    assert_eq!(caps(&[]), "CapEff:\t00000000a80425fb\n");
    assert_eq!(
        caps(&["--cap-drop", "ALL", "--cap-add", "NET_ADMIN"]),
        "CapEff:\t0000000000001000\n"
    );

    let o = d.docker(&["run", "--rm", "--read-only", "busybox", "touch", "/x"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("Read-only file system"),
        "{}",
        stderr(&o)
    );
    // /dev/shm and the network files stay writable / mounted.
    run_out(
        &d,
        &["--read-only"],
        "echo ok > /dev/shm/x && cat /etc/hosts >/dev/null",
    );

    let seccomp = |flags: &[&str]| run_out(&d, flags, "grep '^Seccomp:' /proc/self/status");
    assert_eq!(seccomp(&[]), "Seccomp:\t2\n");
    assert_eq!(
        seccomp(&["--security-opt", "seccomp=unconfined"]),
        "Seccomp:\t0\n"
    );
    // The default profile refuses what Docker's refuses (unshare of a user namespace by a
    // process without CAP_SYS_ADMIN is allowed by the kernel but not by the profile).
    let o = d.docker(&["run", "--rm", "busybox", "unshare", "-U", "true"]);
    assert_ne!(o.status.code(), Some(0), "unshare -U allowed under seccomp");

    assert_eq!(
        run_out(&d, &["--init"], "cat /proc/1/comm"),
        "docker-init\n"
    );
    assert_ne!(run_out(&d, &["--init"], "echo $$"), "1\n");
    // Without --init the command is PID 1.
    assert_eq!(run_out(&d, &[], "echo $$"), "1\n");
    // --init reaps and forwards: a signal reaches the child and the exit code is kept.
    let o = d.docker(&["run", "--rm", "--init", "busybox", "sh", "-c", "exit 9"]);
    assert_eq!(o.status.code(), Some(9));
}

#[test]
fn network_files_sysctl_hosts_dns() {
    let d = Daemon::start();
    let host_fwd = read("/proc/sys/net/ipv4/ip_forward");
    let fwd = if host_fwd.trim() == "1" { "0" } else { "1" };
    assert_eq!(
        run_out(
            &d,
            &["--sysctl", &format!("net.ipv4.ip_forward={fwd}")],
            "cat /proc/sys/net/ipv4/ip_forward"
        ),
        format!("{fwd}\n")
    );
    assert_eq!(read("/proc/sys/net/ipv4/ip_forward"), host_fwd);

    let out = run_out(
        &d,
        &[
            "--add-host",
            "x:1.2.3.4",
            "--add-host",
            "y.example:5.6.7.8",
            "--dns",
            "9.9.9.9",
            "--dns-search",
            "example.com",
            "--dns-option",
            "ndots:2",
            "-h",
            "boxname",
        ],
        "cat /etc/hosts; echo ---; cat /etc/resolv.conf; echo ---; hostname",
    );
    let parts: Vec<&str> = out.split("---\n").collect();
    assert_eq!(parts.len(), 3, "{out}");
    let hosts: Vec<Vec<&str>> = parts[0]
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(hosts.contains(&vec!["1.2.3.4", "x"]), "{}", parts[0]);
    assert!(
        hosts.contains(&vec!["5.6.7.8", "y.example"]),
        "{}",
        parts[0]
    );
    assert!(
        hosts
            .iter()
            .any(|h| h.first() == Some(&"127.0.0.1") && h.contains(&"localhost")),
        "{}",
        parts[0]
    );
    let resolv = parts[1];
    assert!(
        resolv.lines().any(|l| l == "nameserver 9.9.9.9"),
        "{resolv}"
    );
    assert!(
        !resolv
            .lines()
            .any(|l| l.starts_with("nameserver") && l != "nameserver 9.9.9.9"),
        "{resolv}"
    );
    assert!(
        resolv.lines().any(|l| l == "search example.com"),
        "{resolv}"
    );
    assert!(resolv.lines().any(|l| l == "options ndots:2"), "{resolv}");
    assert_eq!(parts[2], "boxname\n");
    let v = {
        let id = d.ok(&[
            "create",
            "--add-host",
            "x:1.2.3.4",
            "--dns",
            "9.9.9.9",
            "busybox",
        ]);
        d.inspect(&id)
    };
    assert_eq!(v["HostConfig"]["ExtraHosts"][0], "x:1.2.3.4");
    assert_eq!(v["HostConfig"]["Dns"][0], "9.9.9.9");
}

/// Restores a host sysctl when dropped (a failing test must not leave the host changed).
struct RestoreSysctl(PathBuf, String);

impl Drop for RestoreSysctl {
    fn drop(&mut self) {
        if std::fs::read_to_string(&self.0).ok().as_deref() != Some(self.1.as_str()) {
            let _ = std::fs::write(&self.0, &self.1);
        }
    }
}

#[test]
fn sysctl_refused_in_a_host_namespace() {
    let d = Daemon::start();
    // A harmless knob (logging of martian packets on lo), put back whatever happens.
    let knob = PathBuf::from("/proc/sys/net/ipv4/conf/lo/log_martians");
    let before = read(&knob);
    let _restore = RestoreSysctl(knob.clone(), before.clone());
    let want = if before.trim() == "1" { "0" } else { "1" };
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        "host",
        "--sysctl",
        &format!("net.ipv4.conf.lo.log_martians={want}"),
        "busybox",
        "true",
    ]);
    let after = read(&knob);
    assert_eq!(after, before, "a container changed the host's sysctl");
    // runc: `sysctl "net.ipv4.conf.lo.log_martians" not allowed in host network namespace`.
    assert_ne!(o.status.code(), Some(0), "accepted: {}", stderr(&o));
    assert!(
        stderr(&o).contains("not allowed in host network namespace"),
        "{}",
        stderr(&o)
    );
    // The same for the IPC and UTS namespaces' sysctls.
    let o = d.docker(&[
        "run",
        "--rm",
        "--ipc",
        "host",
        "--sysctl",
        "kernel.shmmni=4096",
        "busybox",
        "true",
    ]);
    assert_ne!(
        o.status.code(),
        Some(0),
        "kernel.shm* in the host IPC namespace"
    );
}

#[test]
fn volumes_and_tmpfs() {
    let d = Daemon::start();
    let vol = host_dir();
    std::fs::write(vol.path().join("h"), "from host\n").unwrap();
    let vs = s(vol.path());
    assert_eq!(
        run_out(
            &d,
            &["-v", &format!("{vs}:/data")],
            "cat /data/h; echo from container > /data/c"
        ),
        "from host\n"
    );
    assert_eq!(read(vol.path().join("c")), "from container\n");
    let o = d.docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{vs}:/data:ro"),
        "busybox",
        "sh",
        "-c",
        "cat /data/h; echo x > /data/x",
    ]);
    assert_ne!(o.status.code(), Some(0));
    assert_eq!(stdout(&o), "from host\n");
    assert!(
        stderr(&o).contains("Read-only file system"),
        "{}",
        stderr(&o)
    );
    assert!(!vol.path().join("x").exists());
    let id = d.ok(&[
        "create",
        "-v",
        &format!("{vs}:/data:ro"),
        "-v",
        &format!("{vs}:/rw"),
        "busybox",
    ]);
    let m = d.inspect(&id)["Mounts"].clone();
    let ro = m
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["Destination"] == "/data")
        .unwrap_or_else(|| panic!("{m}"));
    assert_eq!(ro["Type"], "bind", "{m}");
    assert_eq!(ro["Source"], vs.as_str(), "{m}");
    assert_eq!(ro["RW"], false, "{m}");
    let rw = m
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["Destination"] == "/rw")
        .unwrap();
    assert_eq!(rw["RW"], true, "{m}");
    // A missing host directory is created, as Docker does for -v.
    let missing = vol.path().join("made/by/docker");
    run_out(&d, &["-v", &format!("{}:/m", s(&missing))], "touch /m/f");
    assert!(missing.join("f").exists());

    let mnt = run_out(
        &d,
        &["--tmpfs", "/run"],
        "grep ' /run ' /proc/mounts; echo hi > /run/x",
    );
    let f: Vec<&str> = mnt.split_whitespace().collect();
    assert_eq!(f.get(2), Some(&"tmpfs"), "{mnt}");
    let opts: BTreeSet<&str> = f[3].split(',').collect();
    for o in ["rw", "nosuid", "nodev", "noexec"] {
        assert!(opts.contains(o), "--tmpfs /run lacks {o}: {mnt}");
    }
    let mnt = run_out(
        &d,
        &["--tmpfs", "/run:rw,size=1m,exec"],
        "grep ' /run ' /proc/mounts",
    );
    assert!(mnt.contains("size=1024k"), "{mnt}");
    assert!(!mnt.contains("noexec"), "{mnt}");
    // Nothing of the volumes is left mounted on the host.
    assert!(mounts_under(vol.path()).is_empty());
}

#[test]
fn log_drivers_none_local_and_rotation() {
    let d = Daemon::start();
    // none: docker logs refuses with Docker's message.
    let id = d.ok(&["run", "-d", "--log-driver", "none", "busybox", "echo", "hi"]);
    d.ok(&["wait", &id]);
    let o = d.docker(&["logs", &id]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(
            "Error response from daemon: configured logging driver does not support reading"
        ),
        "{}",
        stderr(&o)
    );
    assert_eq!(d.inspect(&id)["HostConfig"]["LogConfig"]["Type"], "none");
    // Attached output still reaches the client with the none driver.
    let o = d.docker(&[
        "run",
        "--rm",
        "--log-driver",
        "none",
        "busybox",
        "echo",
        "attached",
    ]);
    assert_eq!(stdout(&o), "attached\n", "{}", stderr(&o));

    // local.
    let o = d.docker(&[
        "run",
        "--name",
        "loc",
        "--log-driver",
        "local",
        "busybox",
        "sh",
        "-c",
        // Apart in time: stdout and stderr are separate pipes, read concurrently.
        "echo a; sleep 0.2; echo b >&2; sleep 0.2; echo c",
    ]);
    assert_eq!(stdout(&o), "a\nc\n", "{}", stderr(&o));
    let o = d.docker(&["logs", "loc"]);
    assert_eq!(stdout(&o), "a\nc\n");
    assert_eq!(stderr(&o), "b\n");
    let o = d.docker(&["logs", "--tail", "1", "loc"]);
    assert_eq!(stdout(&o), "c\n", "{}", stderr(&o));
    assert_eq!(d.inspect("loc")["HostConfig"]["LogConfig"]["Type"], "local");

    // json-file rotation: max-size=1k, max-file=2 → the log and one rotated file.
    let id = d.ok(&[
        "run",
        "-d",
        "--log-driver",
        "json-file",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=2",
        "busybox",
        "sh",
        "-c",
        "i=1; while [ $i -le 200 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done",
    ]);
    d.ok(&["wait", &id]);
    let v = d.inspect(&id);
    assert_eq!(
        v["HostConfig"]["LogConfig"]["Config"]["max-size"], "1k",
        "{v}"
    );
    let log = PathBuf::from(v["LogPath"].as_str().unwrap());
    assert!(
        log.starts_with(d.data_root()),
        "log outside the data root: {}",
        log.display()
    );
    let rotated = PathBuf::from(format!("{}.1", log.display()));
    let third = PathBuf::from(format!("{}.2", log.display()));
    assert!(log.exists() && rotated.exists(), "{}", log.display());
    assert!(!third.exists(), "max-file=2 kept a third file");
    for f in [&log, &rotated] {
        let n = std::fs::metadata(f).unwrap().len();
        assert!(n <= 1024 + 200, "{} is {n} bytes", f.display());
        for l in read(f).lines() {
            let e: Value = serde_json::from_str(l).unwrap();
            assert_eq!(e["stream"], "stdout");
        }
    }
    let out = d.ok(&["logs", &id]);
    let nums: Vec<u32> = out
        .lines()
        .map(|l| l.split('-').nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(*nums.last().unwrap(), 200, "{out}");
    assert!(nums[0] > 1, "nothing rotated away: {out}");
    for w in nums.windows(2) {
        assert_eq!(w[1], w[0] + 1, "gap in the rotated logs: {out}");
    }
    // Daemon-wide log-opts from daemon.json don't apply here; an unknown driver is refused.
    let o = d.docker(&["run", "--rm", "--log-driver", "nosuch", "busybox", "true"]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
}

#[test]
fn log_opts_without_log_driver_apply() {
    let d = Daemon::start();
    let id = d.ok(&[
        "run",
        "-d",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=2",
        "busybox",
        "sh",
        "-c",
        "i=1; while [ $i -le 200 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done",
    ]);
    d.ok(&["wait", &id]);
    let v = d.inspect(&id);
    // Docker: Type "" → the daemon's default driver, with the given options.
    assert_eq!(v["HostConfig"]["LogConfig"]["Type"], "json-file", "{v}");
    assert_eq!(
        v["HostConfig"]["LogConfig"]["Config"]["max-size"], "1k",
        "{v}"
    );
    let log = v["LogPath"].as_str().unwrap().to_string();
    assert!(Path::new(&format!("{log}.1")).exists(), "no rotation");
    assert!(std::fs::metadata(&log).unwrap().len() <= 1024 + 200);
}

#[test]
fn exec_of_a_missing_binary() {
    let d = Daemon::start();
    d.ok(&["run", "-d", "--name", "ex", "busybox", "sleep", "1000"]);
    let o = d.docker(&["exec", "ex", "/no/such/binary"]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(all.contains("no such file or directory"), "{all}");
    assert!(!all.contains("unable to upgrade"), "{all}");
}

#[test]
fn run_t_console_size_at_start() {
    let d = Daemon::start();
    let out = Command::new("script")
        .args([
            "-qec",
            "stty rows 40 cols 100; docker run --rm -t busybox stty size",
            "/dev/null",
        ])
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script (util-linux)");
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert_eq!(text.trim(), "40 100");
}

#[test]
fn run_t_gets_a_pty() {
    let d = Daemon::start();
    let mut c = Command::new("script");
    c.args([
        "-qec",
        "stty rows 40 cols 100; docker run --rm -t busybox sh -c 'tty; sleep 1; stty size; test -t 0 && echo stdin-is-tty'",
        "/dev/null",
    ])
    .env("DOCKER_HOST", d.host())
    .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
    .stdin(std::process::Stdio::null());
    let out = c.output().expect("script (util-linux)");
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert!(out.status.success(), "{text} {}", stderr(&out));
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.iter().any(|l| l.starts_with("/dev/pts/")),
        "no pty: {text:?}"
    );
    // The CLI's terminal size reaches the container's pty (by the resize after the start;
    // `run_t_console_size_at_start` checks the size is there from the first instruction).
    assert!(lines.contains(&"40 100"), "stty size: {text:?}");
    assert!(lines.contains(&"stdin-is-tty"), "{text:?}");
    // Without -t: no tty.
    let o = d.docker(&["run", "--rm", "busybox", "sh", "-c", "tty || true"]);
    assert_eq!(stdout(&o), "not a tty\n");
    // An exec -t under a pty, too.
    d.ok(&["run", "-d", "--name", "tt", "busybox", "sleep", "1000"]);
    let out = Command::new("script")
        .args(["-qec", "docker exec -t tt tty", "/dev/null"])
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert!(text.contains("/dev/pts/"), "exec -t: {text:?}");
}

// ---------------------------------------------------------------------------------------
// JSON shapes against the spec
// ---------------------------------------------------------------------------------------

/// Resolves the response schemas we check from the spec YAML (python3-yaml).
const SCHEMAS_PY: &str = r#"
import sys, json, yaml
spec = yaml.safe_load(open(sys.argv[1]))
defs = spec["definitions"]
def res(s, d=0):
    if not isinstance(s, dict) or d > 40:
        return {}
    if "$ref" in s:
        return res(defs[s["$ref"].split("/")[-1]], d + 1)
    o = {}
    if "type" in s:
        o["type"] = s["type"]
    props = {}
    for part in s.get("allOf", []):
        props.update(res(part, d + 1).get("properties", {}))
    for k, v in s.get("properties", {}).items():
        props[k] = res(v, d + 1)
    if props:
        o["properties"] = props
    if isinstance(s.get("additionalProperties"), dict):
        o["additionalProperties"] = res(s["additionalProperties"], d + 1)
    if "items" in s:
        o["items"] = res(s["items"], d + 1)
    return o
want = {
    "list": ("/containers/json", "get"),
    "inspect": ("/containers/{id}/json", "get"),
    "create": ("/containers/create", "post"),
    "wait": ("/containers/{id}/wait", "post"),
    "exec": ("/exec/{id}/json", "get"),
    "events": ("/events", "get"),
}
out = {}
for name, (path, method) in want.items():
    r = spec["paths"][path][method]["responses"]
    code = [c for c in r if str(c).startswith("2")][0]
    out[name] = res(r[code]["schema"])
print(json.dumps(out))
"#;

fn spec_path() -> PathBuf {
    let rel = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/spec/docker-engine-api-v1.44.yaml");
    if rel.exists() {
        rel
    } else {
        PathBuf::from("/work/shared/spec/docker-engine-api-v1.44.yaml")
    }
}

fn schemas() -> Value {
    let o = Command::new("python3")
        .arg("-c")
        .arg(SCHEMAS_PY)
        .arg(spec_path())
        .output()
        .expect("python3 (with python3-yaml) to read the spec");
    assert!(
        o.status.success(),
        "reading the spec (needs python3-yaml): {}",
        stderr(&o)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Fields dockerd itself leaves out (`omitempty` in its Go types, or only sent on request),
/// as `Parent.Field` paths with `[]` for array items and `*` for map values.
const DOCKER_OMITS: &[&str] = &[
    // ContainerSummary: sizes only with ?size=1.
    "[].SizeRw",
    "[].SizeRootFs",
    // ContainerInspectResponse.
    "SizeRw",
    "SizeRootFs",
    "Node",
    "State.Health",
    "Config.ExposedPorts",
    "Config.Healthcheck",
    "Config.ArgsEscaped",
    "Config.NetworkDisabled",
    "Config.MacAddress",
    "Config.StopSignal",
    "Config.StopTimeout",
    "Config.Shell",
    "Config.OnBuild",
    "HostConfig.Annotations",
    "HostConfig.Mounts",
    "HostConfig.MaskedPaths",
    "HostConfig.ReadonlyPaths",
    "HostConfig.Init",
    "HostConfig.ConsoleSize",
    "HostConfig.Isolation",
    "HostConfig.CpuCount",
    "HostConfig.CpuPercent",
    "HostConfig.IOMaximumIOps",
    "HostConfig.IOMaximumBandwidth",
    "HostConfig.Devices",
    "HostConfig.DeviceCgroupRules",
    "HostConfig.DeviceRequests",
    "HostConfig.KernelMemoryTCP",
    "HostConfig.MemorySwappiness",
    "HostConfig.OomKillDisable",
    "HostConfig.Ulimits",
    "HostConfig.PidsLimit",
    "HostConfig.BlkioWeightDevice",
    "HostConfig.BlkioDeviceReadBps",
    "HostConfig.BlkioDeviceWriteBps",
    "HostConfig.BlkioDeviceReadIOps",
    "HostConfig.BlkioDeviceWriteIOps",
    "HostConfig.Sysctls",
    "HostConfig.StorageOpt",
    "HostConfig.Tmpfs",
    "HostConfig.PortBindings.*",
    "Mounts[].Driver",
    "Mounts[].Name",
    "[].Mounts[].Driver",
    "[].Mounts[].Name",
    "NetworkSettings.Networks.*.IPAMConfig",
    // WaitResponse: Error only when the wait failed.
    "Error",
    // ExecInspect: ProcessConfig.user/privileged are omitempty in dockerd.
    "ProcessConfig.user",
    "ProcessConfig.privileged",
];

/// Fields dockerd sends that skiff does not yet (reported; `api_shapes_strict` has none).
const SKIFF_GAPS: &[&str] = &[
    // dockerd: "Runtime": "runc".
    "HostConfig.Runtime",
];

fn type_ok(t: &str, v: &Value) -> bool {
    match t {
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        _ => true,
    }
}

/// Every property the schema lists is present in `v` (recursively; null is allowed where
/// Go sends nil slices and maps), and present values have the schema's type.
fn check_shape(schema: &Value, v: &Value, path: &str, strict: bool, out: &mut Vec<String>) {
    if v.is_null() {
        return;
    }
    if let Some(t) = schema["type"].as_str() {
        if !type_ok(t, v) {
            out.push(format!("{path}: want {t}, got {v}"));
            return;
        }
    }
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else if k == "[]" {
            format!("{path}[]")
        } else {
            format!("{path}.{k}")
        }
    };
    if let (Some(props), Some(obj)) = (schema["properties"].as_object(), v.as_object()) {
        for (k, sub) in props {
            let p = join(k);
            match obj.get(k) {
                Some(x) => check_shape(sub, x, &p, strict, out),
                None if DOCKER_OMITS.contains(&p.as_str()) => {}
                None if !strict && SKIFF_GAPS.contains(&p.as_str()) => {}
                None => out.push(format!("{p}: missing")),
            }
        }
    }
    if let (Some(sub), Some(obj)) = (schema.get("additionalProperties"), v.as_object()) {
        if schema["properties"].is_null() {
            for x in obj.values() {
                check_shape(sub, x, &join("*"), strict, out);
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
        for x in arr {
            check_shape(items, x, &join("[]"), strict, out);
        }
    }
}

fn shape_errors(schema: &Value, v: &Value, strict: bool) -> Vec<String> {
    let mut out = Vec::new();
    check_shape(schema, v, "", strict, &mut out);
    out
}

#[test]
fn api_shapes_match_the_spec() {
    api_shapes(false);
}

#[test]
fn api_shapes_strict() {
    api_shapes(true);
}

fn api_shapes(strict: bool) {
    let sc = schemas();
    let d = Daemon::start();
    let t0 = now_secs();
    let mut errors = Vec::new();
    let mut check = |name: &str, v: &Value| {
        for e in shape_errors(&sc[name], v, strict) {
            errors.push(format!("{name}: {e}"));
        }
    };

    let r = d.http_raw(
        "POST",
        "/v1.44/containers/create?name=shape",
        "application/json",
        br#"{"Image":"busybox","Cmd":["sleep","1000"],"Labels":{"a":"b"},"HostConfig":{"Binds":["/tmp:/hosttmp:ro"]}}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let created = r.json();
    check("create", &created);
    let id = created["Id"].as_str().unwrap().to_string();
    assert!(created["Warnings"].is_array(), "{created}");
    let r = d.http_raw(
        "POST",
        &format!("/v1.44/containers/{id}/start"),
        "application/json",
        b"",
    );
    assert_eq!(r.status, 204, "{}", r.text());

    let r = d.http_raw("GET", "/v1.44/containers/json?all=1", "text/plain", b"");
    assert_eq!(r.status, 200);
    let list = r.json();
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    check("list", &list);
    let r = d.http_raw(
        "GET",
        "/v1.44/containers/json?all=1&size=1",
        "text/plain",
        b"",
    );
    let sized = r.json();
    assert!(sized[0]["SizeRw"].is_i64(), "{sized}");
    assert!(sized[0]["SizeRootFs"].is_i64(), "{sized}");

    let r = d.http_raw(
        "GET",
        &format!("/v1.44/containers/{id}/json"),
        "text/plain",
        b"",
    );
    assert_eq!(r.status, 200);
    let insp = r.json();
    check("inspect", &insp);

    // An exec: create, start detached, inspect after it ends.
    let r = d.http_raw(
        "POST",
        &format!("/v1.44/containers/{id}/exec"),
        "application/json",
        br#"{"Cmd":["sh","-c","exit 4"],"AttachStdout":true}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let exec_id = r.json()["Id"].as_str().unwrap().to_string();
    let r = d.http_raw(
        "POST",
        &format!("/v1.44/exec/{exec_id}/start"),
        "application/json",
        br#"{"Detach":true}"#,
    );
    assert!(r.status == 200 || r.status == 204, "{}", r.text());
    let mut ex = Value::Null;
    d.until("the exec ends", || {
        ex = d
            .http_raw(
                "GET",
                &format!("/v1.44/exec/{exec_id}/json"),
                "text/plain",
                b"",
            )
            .json();
        ex["Running"] == false && ex["ExitCode"] == 4
    });
    check("exec", &ex);
    assert_eq!(ex["ContainerID"], id.as_str(), "{ex}");
    assert_eq!(ex["ProcessConfig"]["entrypoint"], "sh", "{ex}");

    // Wait: kill it, the wait answers with the exit code.
    let r = d.http_raw(
        "POST",
        &format!("/v1.44/containers/{id}/kill"),
        "application/json",
        b"",
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let r = d.http_raw(
        "POST",
        &format!("/v1.44/containers/{id}/wait"),
        "application/json",
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let w = r.json();
    check("wait", &w);
    assert_eq!(w["StatusCode"], 137, "{w}");
    // The stopped container's inspect and summary are still complete.
    let insp = d
        .http_raw(
            "GET",
            &format!("/v1.44/containers/{id}/json"),
            "text/plain",
            b"",
        )
        .json();
    check("inspect", &insp);
    let list = d
        .http_raw("GET", "/v1.44/containers/json?all=1", "text/plain", b"")
        .json();
    check("list", &list);

    // Events.
    let t1 = now_secs() + 1;
    let r = d.http_raw(
        "GET",
        &format!("/v1.44/events?since={t0}&until={t1}"),
        "text/plain",
        b"",
    );
    assert_eq!(r.status, 200);
    let text = r.text();
    let mut n = 0;
    for l in text.lines().filter(|l| !l.trim().is_empty()) {
        let ev: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        check("events", &ev);
        n += 1;
    }
    assert!(n >= 4, "{text}");
    assert!(
        errors.is_empty(),
        "fields of the v1.44 spec missing or mistyped:\n{}",
        errors.join("\n")
    );
}

/// Drives `cmd` on a pty (python3's pty module): types `echo` lines and then the detach
/// keys one at a time, as a person would; prints the output and the exit status.
const DETACH_PY: &str = r#"
import os, pty, sys, time, select
keys = [bytes([int(k)]) for k in sys.argv[1].split(",")]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
out = b""
def read_for(secs, want=None):
    global out
    end = time.time() + secs
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                b = os.read(fd, 4096)
            except OSError:
                return False
            if not b:
                return False
            out += b
            if want and want in out:
                return True
    return None
time.sleep(0.5)
os.write(fd, b"echo mark-$((40+2))\r")
read_for(10, b"mark-42")
for k in keys:
    os.write(fd, k)
    time.sleep(0.3)
read_for(5)
for _ in range(50):
    p, status = os.waitpid(pid, os.WNOHANG)
    if p:
        print("exit", os.waitstatus_to_exitcode(status))
        break
    time.sleep(0.1)
else:
    os.kill(pid, 9)
    print("exit none (still attached)")
sys.stdout.write(out.decode(errors="replace"))
"#;

#[test]
fn detach_keys_leave_the_container_running() {
    let d = Daemon::start();
    let py = d.dir.path().join("detach.py");
    std::fs::write(&py, DETACH_PY).unwrap();
    let drive = |keys: &str, argv: &[&str]| -> String {
        let mut c = Command::new("python3");
        c.arg(&py).arg(keys).args(argv);
        c.env("DOCKER_HOST", d.host())
            .env("SKIFF_HOST", d.host())
            .env("DOCKER_CONFIG", d.dir.path().join("docker-config"));
        let o = c.output().expect("python3");
        String::from_utf8_lossy(&o.stdout).replace('\r', "")
    };
    let skiff = env!("CARGO_BIN_EXE_skiff");
    // docker attach with the default keys (ctrl-p ctrl-q): the CLI says "read escape
    // sequence" and exits 1 (as against dockerd); `run -it` and `start -ai` exit 0.
    d.ok(&["run", "-dit", "--name", "dk", "busybox", "sh"]);
    let out = drive("16,17", &["docker", "attach", "dk"]);
    assert!(out.starts_with("exit 1"), "{out}");
    assert!(out.contains("read escape sequence"), "{out}");
    assert!(out.contains("mark-42"), "{out}");
    assert_eq!(d.inspect("dk")["State"]["Running"], true, "{out}");
    // skiff attach with its own keys: ctrl-x then 'q'; the shell survived the first detach.
    let out = drive(
        "24,113",
        &[skiff, "attach", "--detach-keys", "ctrl-x,q", "dk"],
    );
    assert!(out.starts_with("exit 1"), "{out}");
    assert!(out.contains("read escape sequence"), "{out}");
    assert!(out.contains("mark-42"), "{out}");
    assert_eq!(d.inspect("dk")["State"]["Running"], true, "{out}");
    // The daemon itself detaches an API client that types the keys (docker CLI with
    // custom keys sends them as detachKeys; a wrong sequence does not detach).
    let out = drive(
        "1,2",
        &["docker", "attach", "--detach-keys", "ctrl-b,ctrl-c", "dk"],
    );
    assert!(out.starts_with("exit none"), "{out}");
    assert_eq!(d.inspect("dk")["State"]["Running"], true);
    // skiff run -it, then detach: exit 0 at once, the container runs on.
    let out = drive(
        "16,17",
        &[skiff, "run", "-it", "--name", "dr", "busybox", "sh"],
    );
    assert!(out.starts_with("exit 0"), "{out}");
    assert_eq!(d.inspect("dr")["State"]["Running"], true, "{out}");
    // exec -it detaches too, leaving its process running.
    let out = drive("16,17", &["docker", "exec", "-it", "dk", "sh"]);
    assert!(out.starts_with("exit 1"), "{out}");
    let out = drive("16,17", &[skiff, "exec", "-it", "dk", "sh"]);
    assert!(out.starts_with("exit 1"), "{out}");
    assert!(out.contains("mark-42"), "{out}");
    // The daemon detaches a plain API client (no client-side watching) that types them.
    let raw = r#"
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(b"POST /v1.44/containers/dk/attach?stream=1&stdin=1&stdout=1&detachKeys=ctrl-x,q HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n")
head = b""
while b"\r\n\r\n" not in head:
    head += s.recv(1)
time.sleep(0.3)
for k in (b"\x18", b"q"):
    s.sendall(k); time.sleep(0.3)
s.settimeout(5)
got = b""
try:
    while True:
        b = s.recv(4096)
        if not b:
            print("closed"); break
        got += b
except socket.timeout:
    print("still open")
"#;
    let sock = d.host().trim_start_matches("unix://").to_string();
    let o = Command::new("python3")
        .args(["-c", raw, &sock])
        .output()
        .unwrap();
    assert_eq!(stdout(&o).trim(), "closed", "{}", stderr(&o));
    assert_eq!(d.inspect("dk")["State"]["Running"], true);
    // Invalid keys: a 400 naming them.
    let (code, body) = d.http(
        "POST",
        "/containers/dk/attach?stream=1&stdin=1&stdout=1&detachKeys=ctrl-P",
        None,
    );
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("Invalid detach keys (ctrl-P) provided"),
        "{body}"
    );
    d.ok(&["rm", "-f", "dk", "dr"]);
}

/// The daemonless image verbs (`skiff --data-root R image prune -a`, `rmi`) count the
/// daemon's containers as users: an image a container uses is never pruned.
#[test]
fn daemonless_prune_keeps_images_containers_use() {
    let d = Daemon::start();
    d.ok(&["create", "--name", "user", "busybox", "true"]);
    let o = Command::new(daemon_support::SKIFF)
        .arg("--data-root")
        .arg(d.data_root())
        .args(["image", "prune", "-a", "-f"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stdout(&o).contains("deleted"), "{}", stdout(&o));
    let o = Command::new(daemon_support::SKIFF)
        .arg("--data-root")
        .arg(d.data_root())
        .args(["rmi", "busybox"])
        .output()
        .unwrap();
    assert_ne!(o.status.code(), Some(0), "rmi of an image in use succeeded");
    d.ok(&["rm", "user"]);
    d.ok(&["image", "inspect", "busybox"]);
}
