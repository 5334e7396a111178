//! Volumes end to end through the real docker CLI (and the skiff CLI): named and anonymous
//! volumes, copy-up from the image, read-only, `--mount`, `--volumes-from`, option (tmpfs)
//! volumes, in-use refusals, prune, data surviving containers and a daemon `kill -9`, and a
//! symlink in the image that must not redirect a volume out of the rootfs. Needs root.

mod daemon_support;

use std::process::{Command, Stdio};

use daemon_support::{stderr, stdout, Daemon, SKIFF};

/// Adds `vbox`: busybox with `VOLUME /data` holding `/data/seed`, and `/esc` a symlink
/// climbing out of the root towards the host's /etc (imported with the daemon stopped).
fn with_volume_image(d: &mut Daemon) {
    d.kill9();
    let root = d.dir.path().join("vrootfs");
    std::fs::create_dir_all(root.join("data")).unwrap();
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    for l in [
        "sh", "cat", "echo", "ls", "grep", "sleep", "touch", "stat", "true",
    ] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(l)).unwrap();
    }
    std::fs::write(root.join("data/seed"), b"from-image\n").unwrap();
    std::os::unix::fs::symlink("../../../../../../etc", root.join("esc")).unwrap();
    let mut tar = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .args(["-c", "."])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let st = Command::new(SKIFF)
        .arg("--data-root")
        .arg(d.data_root())
        .args([
            "import",
            "--change",
            "CMD [\"sh\"]",
            "--change",
            "VOLUME /data",
            "-",
            "vbox:latest",
        ])
        .stdin(tar.stdout.take().unwrap())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(tar.wait().unwrap().success() && st.success(), "import vbox");
    std::fs::remove_dir_all(&root).unwrap();
    d.spawn();
}

fn volumes(d: &Daemon) -> Vec<String> {
    let mut v: Vec<String> = d
        .ok(&["volume", "ls", "-q"])
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

#[test]
fn named_volumes_keep_data_and_refuse_misuse() {
    let mut d = Daemon::start();
    with_volume_image(&mut d);
    assert_eq!(
        d.ok(&["volume", "create", "--label", "team=a", "data1"]),
        "data1"
    );
    let v = &serde_json::from_str::<serde_json::Value>(&d.ok(&["volume", "inspect", "data1"]))
        .unwrap()[0];
    assert_eq!(v["Driver"], "local");
    assert_eq!(v["Scope"], "local");
    assert_eq!(v["Labels"]["team"], "a");
    let mp = v["Mountpoint"].as_str().unwrap().to_string();
    assert!(mp.starts_with(d.data_root().to_str().unwrap()), "{mp}");

    // A new volume is filled from the image (copy-up), then written through.
    let out = d.ok(&[
        "run",
        "--rm",
        "-v",
        "data1:/data",
        "vbox",
        "sh",
        "-c",
        "cat /data/seed; echo written > /data/mine",
    ]);
    assert_eq!(out, "from-image");
    assert_eq!(
        std::fs::read_to_string(format!("{mp}/mine")).unwrap(),
        "written\n"
    );
    // nocopy: an empty new volume stays empty.
    let out = d.ok(&[
        "run",
        "--rm",
        "-v",
        "fresh:/data:nocopy",
        "vbox",
        "ls",
        "-A",
        "/data",
    ]);
    assert_eq!(out, "");
    // Read-only refuses writes.
    let o = d.docker(&[
        "run",
        "--rm",
        "-v",
        "data1:/data:ro",
        "vbox",
        "sh",
        "-c",
        "cat /data/mine && echo x > /data/nope",
    ]);
    assert_ne!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("written"), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("Read-only file system"),
        "{}",
        stderr(&o)
    );
    // --mount type=volume, readonly.
    let o = d.docker(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,source=data1,target=/m,readonly",
        "vbox",
        "touch",
        "/m/x",
    ]);
    assert_ne!(o.status.code(), Some(0));

    // In use: rm refused (also with -f), naming the container.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "holder",
        "-v",
        "data1:/data",
        "vbox",
        "sleep",
        "1000",
    ]);
    let o = d.docker(&["volume", "rm", "-f", "data1"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("volume is in use"), "{}", stderr(&o));
    // --volumes-from sees the same data.
    let out = d.ok(&[
        "run",
        "--rm",
        "--volumes-from",
        "holder:ro",
        "vbox",
        "cat",
        "/data/mine",
    ]);
    assert_eq!(out, "written");
    // Filters.
    assert_eq!(
        d.ok(&["volume", "ls", "-q", "--filter", "label=team=a"]),
        "data1"
    );
    assert_eq!(
        d.ok(&["volume", "ls", "-q", "--filter", "dangling=false"]),
        "data1"
    );

    // Data survives the daemon's kill -9 and the container's removal.
    d.kill9();
    d.spawn();
    d.ok(&["rm", "-f", "holder"]);
    let out = d.ok(&[
        "run",
        "--rm",
        "-v",
        "data1:/data",
        "vbox",
        "cat",
        "/data/mine",
    ]);
    assert_eq!(out, "written");

    // A symlink in the image cannot send a volume (or its copy-up) to the host's /etc.
    d.ok(&[
        "run",
        "--rm",
        "-v",
        "esc:/esc",
        "vbox",
        "sh",
        "-c",
        "echo m > /esc/skiff-esc-marker",
    ]);
    assert!(!std::path::Path::new("/etc/skiff-esc-marker").exists());

    // `cp` into and out of a stopped container's volume goes to the volume, not its layer;
    // a read-only volume refuses it.
    d.ok(&[
        "create",
        "--name",
        "stopped",
        "-v",
        "data1:/data",
        "-v",
        "fresh:/ro:ro",
        "vbox",
    ]);
    let f = d.dir.path().join("cp-in.txt");
    std::fs::write(&f, b"copied-in\n").unwrap();
    d.ok(&["cp", f.to_str().unwrap(), "stopped:/data/cp-in.txt"]);
    assert_eq!(
        std::fs::read_to_string(format!("{mp}/cp-in.txt")).unwrap(),
        "copied-in\n"
    );
    let out_dir = d.dir.path().join("cp-out");
    std::fs::create_dir(&out_dir).unwrap();
    d.ok(&["cp", "stopped:/data/mine", out_dir.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(out_dir.join("mine")).unwrap(),
        "written\n"
    );
    let o = d.docker(&["cp", f.to_str().unwrap(), "stopped:/ro/x"]);
    assert_ne!(
        o.status.code(),
        Some(0),
        "cp into a read-only volume succeeded"
    );
    d.ok(&["rm", "stopped"]);

    // Bad names and unknown drivers: clear errors.
    let o = d.docker(&["volume", "create", "../up"]);
    assert!(
        stderr(&o).contains("includes invalid characters"),
        "{}",
        stderr(&o)
    );
    let o = d.docker(&["volume", "create", "-d", "nfs", "x1"]);
    assert!(
        stderr(&o).contains("plugin \"nfs\" not found"),
        "{}",
        stderr(&o)
    );
    let o = d.docker(&["volume", "inspect", "nope"]);
    assert!(stderr(&o).contains("no such volume"), "{}", stderr(&o));

    // prune: only anonymous by default, everything unused with --all.
    d.ok(&["volume", "prune", "-f"]);
    assert_eq!(volumes(&d), ["data1", "esc", "fresh"]);
    d.ok(&["volume", "prune", "-f", "--all"]);
    assert!(volumes(&d).is_empty(), "{:?}", volumes(&d));
    assert!(!std::path::Path::new(&mp).exists());
}

#[test]
fn anonymous_volumes_and_option_volumes() {
    let mut d = Daemon::start();
    with_volume_image(&mut d);
    // The image's VOLUME: an anonymous volume, filled from the image, kept by `rm`.
    d.ok(&["run", "-d", "--name", "a1", "vbox", "sleep", "1000"]);
    let m = &d.inspect("a1")["Mounts"][0];
    assert_eq!(m["Type"], "volume");
    assert_eq!(m["Destination"], "/data");
    assert_eq!(m["Driver"], "local");
    let name = m["Name"].as_str().unwrap().to_string();
    assert_eq!(name.len(), 64);
    assert_eq!(d.ok(&["exec", "a1", "cat", "/data/seed"]), "from-image");
    d.ok(&["rm", "-f", "a1"]);
    assert_eq!(volumes(&d), std::slice::from_ref(&name));
    // `rm -v` takes the anonymous one along; `-v /path` makes one too.
    d.ok(&[
        "run", "-d", "--name", "a2", "-v", "/scratch", "vbox", "sleep", "1000",
    ]);
    assert_eq!(volumes(&d).len(), 3);
    d.ok(&["rm", "-fv", "a2"]);
    assert_eq!(volumes(&d), std::slice::from_ref(&name));
    // `--rm` removes them too.
    d.ok(&["run", "--rm", "vbox", "true"]);
    assert_eq!(volumes(&d), std::slice::from_ref(&name));
    // The daemon's JSON shapes: the volume list and system df.
    let (code, body) = d.http("GET", "/volumes", None);
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["Volumes"][0]["Name"], name.as_str());
    let (_, df) = d.http("GET", "/system/df", None);
    let df: serde_json::Value = serde_json::from_str(&df).unwrap();
    assert_eq!(df["Volumes"][0]["UsageData"]["RefCount"], 0);

    // A tmpfs volume (local driver options) is mounted while used, gone after.
    d.ok(&[
        "volume",
        "create",
        "--opt",
        "type=tmpfs",
        "--opt",
        "device=tmpfs",
        "--opt",
        "o=size=2m",
        "tv",
    ]);
    let out = d.ok(&[
        "run",
        "--rm",
        "-v",
        "tv:/t",
        "vbox",
        "sh",
        "-c",
        "grep ' /t ' /proc/mounts; echo x > /t/f",
    ]);
    assert!(out.starts_with("tmpfs /t tmpfs"), "{out}");
    assert!(out.contains("size=2048k"), "{out}");
    let data = d.data_root().join("volumes/tv/_data");
    assert_eq!(std::fs::read_dir(&data).unwrap().count(), 0);
    // A bad option is refused at create.
    let o = d.docker(&["volume", "create", "--opt", "bogus=1", "bad1"]);
    assert!(stderr(&o).contains("invalid option key"), "{}", stderr(&o));

    // The skiff CLI drives the same endpoints.
    let skiff = |args: &[&str]| {
        let o = Command::new(SKIFF)
            .args(["-H", &d.host()])
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        stdout(&o)
    };
    assert_eq!(skiff(&["volume", "create", "sv"]).trim(), "sv");
    assert!(skiff(&["volume", "ls"]).starts_with("DRIVER    VOLUME NAME\n"));
    assert_eq!(
        skiff(&["volume", "inspect", "-f", "{{.Name}}", "sv"]).trim(),
        "sv"
    );
    assert_eq!(skiff(&["volume", "rm", "sv", "tv"]).trim(), "sv\ntv");
    skiff(&["volume", "create", "pv"]);
    let out = skiff(&["volume", "prune", "-f", "--all"]);
    assert!(out.starts_with("Deleted Volumes:\n"), "{out}");
    assert!(out.lines().any(|l| l == "pv"), "{out}");
    assert!(out.contains("Total reclaimed space: "), "{out}");
}

/// A host directory bind-mounted onto itself with a given propagation (`--make-shared`,
/// `--make-private`); it and every mount under it are unmounted on drop.
struct MountedDir {
    dir: tempfile::TempDir,
}

fn sh(cmd: &str) {
    let st = Command::new("sh").args(["-c", cmd]).status().unwrap();
    assert!(st.success(), "{cmd}");
}

impl MountedDir {
    fn new(propagation: &str) -> MountedDir {
        let dir = tempfile::Builder::new()
            .prefix("skiff-prop-")
            .tempdir_in("/tmp")
            .unwrap();
        let p = dir.path().display();
        sh(&format!(
            "mount --bind {p} {p} && mount --make-{propagation} {p}"
        ));
        MountedDir { dir }
    }
    fn path(&self) -> String {
        self.dir.path().display().to_string()
    }
    /// Mount points at or under the directory (host view).
    fn mounts(&self) -> Vec<String> {
        let me = self.path();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
            .filter(|m| m == &me || m.starts_with(&format!("{me}/")))
            .collect()
    }
}

impl Drop for MountedDir {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .args(["--recursive", "--lazy"])
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn bind_propagation_modes_behave() {
    let d = Daemon::start();
    let shared = MountedDir::new("shared");
    let dir = shared.path();
    for (name, mode) in [
        ("p-shared", "rshared"),
        ("p-slave", "rslave"),
        ("p-private", "rprivate"),
    ] {
        let m = format!("type=bind,source={dir},target=/m,bind-propagation={mode}");
        let mut args = vec!["run", "-d", "--name", name, "--mount", &m];
        if mode == "rshared" {
            args.push("--privileged");
        }
        args.extend(["busybox", "sleep", "1000"]);
        d.ok(&args);
        assert_eq!(d.inspect(name)["Mounts"][0]["Propagation"], mode);
    }
    // A mount made on the host after the containers started reaches the rshared and
    // rslave binds, not the rprivate one.
    sh(&format!(
        "mkdir {dir}/sub && mount -t tmpfs -o size=1m skiff-prop {dir}/sub && echo from-host > {dir}/sub/f"
    ));
    for (name, seen) in [("p-shared", true), ("p-slave", true), ("p-private", false)] {
        let o = d.docker(&["exec", name, "cat", "/m/sub/f"]);
        assert_eq!(
            o.status.success(),
            seen,
            "{name}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        if seen {
            assert_eq!(stdout(&o), "from-host\n");
        }
    }
    // A mount made inside the rshared (privileged) container shows on the host, and in the
    // rslave container; not in the rprivate one.
    d.ok(&[
        "exec",
        "p-shared",
        "sh",
        "-c",
        "mkdir /m/inner && mount -t tmpfs -o size=1m inner /m/inner && echo from-container > /m/inner/g",
    ]);
    assert_eq!(
        std::fs::read_to_string(format!("{dir}/inner/g")).unwrap(),
        "from-container\n"
    );
    assert_eq!(
        d.ok(&["exec", "p-slave", "cat", "/m/inner/g"]),
        "from-container"
    );
    assert!(!d
        .docker(&["exec", "p-private", "cat", "/m/inner/g"])
        .status
        .success());

    // Docker's checks: an rshared bind needs a shared source, an rslave one a shared or
    // slave source.
    let private = MountedDir::new("private");
    for mode in ["rshared", "rslave"] {
        let m = format!(
            "type=bind,source={},target=/m,bind-propagation={mode}",
            private.path()
        );
        let o = d.docker(&["run", "--rm", "--mount", &m, "busybox", "true"]);
        assert!(!o.status.success(), "{mode} on a private source ran");
        assert!(
            stderr(&o).contains(&format!("path {} is mounted on", private.path())),
            "{}",
            stderr(&o)
        );
    }

    // Everything goes: containers first (their copies of the mounts), then the host's.
    d.ok(&["rm", "-f", "p-shared", "p-slave", "p-private"]);
    sh(&format!("umount {dir}/inner {dir}/sub"));
    assert_eq!(shared.mounts(), std::slice::from_ref(&dir));
    drop(shared);
    drop(private);
}
