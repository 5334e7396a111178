//! `commit` end to end: through the real docker CLI and skiff's CLI, a container's writable
//! layer becomes an image that runs with the file written, keeps a deleted file deleted
//! (whiteout) and a replaced directory replaced (opaque), takes `--change` CMD/ENV, shows the
//! message and author in `history` and `image inspect`, and leaves volume content out; a
//! running container is frozen for the copy and runs on; bad changes are a 400 naming them,
//! a missing container a 404. Needs root.

mod daemon_support;

use std::process::{Command, Output, Stdio};

use daemon_support::{stderr, stdout, Daemon, SKIFF};

fn skiff(d: &Daemon, args: &[&str]) -> Output {
    Command::new(SKIFF)
        .arg("-H")
        .arg(d.host())
        .arg("--no-autostart")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn skiff_ok(d: &Daemon, args: &[&str]) -> String {
    let o = skiff(d, args);
    assert!(
        o.status.success(),
        "skiff {args:?} failed ({:?}): {}{}",
        o.status,
        stdout(&o),
        stderr(&o)
    );
    stdout(&o).trim().to_string()
}

fn image(d: &Daemon, name: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&d.ok(&["image", "inspect", name])).unwrap();
    v[0].clone()
}

fn now() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    format!("{}.{:09}", t.as_secs(), t.subsec_nanos())
}

const WRITER: &str = "echo hello > /x && rm /etc/group && rm -rf /usr/sbin && mkdir /usr/sbin \
                      && touch /usr/sbin/only && echo secret > /vol/s && echo kept > /bound/b";

/// The actions of `container`'s events from `since` until now, one a line.
fn actions_since(d: &Daemon, since: &str, container: &str) -> String {
    d.ok(&[
        "events",
        "--since",
        since,
        "--until",
        &now(),
        "--filter",
        &format!("container={container}"),
        "--format",
        "{{.Action}}",
    ])
}

#[test]
fn commit_through_the_docker_cli() {
    let d = Daemon::start();
    let bound = tempfile::tempdir().unwrap();
    let bind = format!("{}:/bound", bound.path().display());
    d.ok(&[
        "run",
        "--name",
        "src",
        "-v",
        "vol1:/vol",
        "-v",
        &bind,
        "busybox",
        "sh",
        "-c",
        WRITER,
    ]);
    let since = now();
    let id = d.ok(&[
        "commit",
        "--change",
        r#"CMD ["cat","/x"]"#,
        "--change",
        "ENV FOO=bar",
        "-m",
        "first commit",
        "-a",
        "Me <me@example.com>",
        "src",
        "snap:1",
    ]);
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    // The new CMD runs and sees the file written in the container.
    assert_eq!(d.ok(&["run", "--rm", "snap:1"]), "hello");
    // Deleted stays deleted, a replaced directory is replaced, ENV applies; the volume's
    // and the bind's content are not in the image (their mount points are, empty).
    let out = d.ok(&[
        "run",
        "--rm",
        "snap:1",
        "sh",
        "-c",
        "test -e /etc/group && echo group-back; echo FOO=$FOO; ls /usr/sbin; ls -A /vol /bound",
    ]);
    assert_eq!(out, "FOO=bar\nonly\n/bound:\n\n/vol:", "{out}");
    assert_eq!(
        std::fs::read_to_string(bound.path().join("b")).unwrap(),
        "kept\n"
    );

    let img = image(&d, "snap:1");
    assert_eq!(img["Id"], id.as_str());
    assert_eq!(img["Author"], "Me <me@example.com>");
    assert_eq!(img["Comment"], "first commit");
    assert_eq!(img["Config"]["Cmd"], serde_json::json!(["cat", "/x"]));
    let env = img["Config"]["Env"].as_array().unwrap();
    assert!(env.iter().any(|e| e == "FOO=bar"), "{env:?}");
    let cid = d.ok(&["inspect", "-f", "{{.Id}}", "src"]);
    assert_eq!(img["Container"], cid.as_str());
    assert_eq!(img["ContainerConfig"]["Cmd"][2], WRITER);
    // The new layer as unpacked: the container's files, not the mount points of the files
    // skiff bind-mounts in (/etc/hosts, ...), not the volume's data.
    let upper = std::path::PathBuf::from(img["GraphDriver"]["Data"]["UpperDir"].as_str().unwrap());
    assert_eq!(std::fs::read_to_string(upper.join("x")).unwrap(), "hello\n");
    for stub in [
        "etc/hosts",
        "etc/hostname",
        "etc/resolv.conf",
        "vol/s",
        "bound/b",
    ] {
        assert!(!upper.join(stub).exists(), "{stub} is in the layer");
    }
    // One layer more than busybox.
    let base = image(&d, "busybox");
    assert_eq!(
        img["RootFS"]["Layers"].as_array().unwrap().len(),
        base["RootFS"]["Layers"].as_array().unwrap().len() + 1
    );
    let hist = d.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}|{{.Comment}}",
        "snap:1",
    ]);
    let top = hist.lines().next().unwrap();
    assert_eq!(top, format!("sh -c {WRITER}|first commit"), "{hist}");

    // The container gets a `commit` event; the image a `tag`.
    let ev = d.ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &now(),
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.Attributes.imageID}}",
    ]);
    assert!(ev.contains(&format!("container commit {id}")), "{ev}");
    assert!(ev.contains("image tag"), "{ev}");

    // A running container: frozen for the copy (pause, unpause), still running after.
    d.ok(&["run", "-d", "--name", "live", "busybox", "sleep", "1000"]);
    d.ok(&["exec", "live", "sh", "-c", "echo live > /l"]);
    let since = now();
    let id2 = d.ok(&["commit", "live"]);
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Status}}", "live"]),
        "running"
    );
    assert_eq!(d.ok(&["run", "--rm", &id2, "cat", "/l"]), "live");
    let ev = actions_since(&d, &since, "live");
    assert_eq!(ev, "pause\nunpause\ncommit", "{ev}");
    // --pause=false: no freeze.
    let since = now();
    d.ok(&["commit", "--pause=false", "live", "snap:nopause"]);
    let ev = actions_since(&d, &since, "live");
    assert_eq!(ev, "commit", "{ev}");
    // An unnamed commit is a dangling image; CMD stays the container's.
    assert_eq!(image(&d, &id2)["RepoTags"], serde_json::json!([]));
    assert_eq!(
        image(&d, &id2)["Config"]["Cmd"],
        serde_json::json!(["sleep", "1000"])
    );

    // A bad change is a 400 naming it; nothing is frozen or stored.
    let o = d.docker(&["commit", "--change", "RUN rm -rf /", "src", "bad:1"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("run is not a valid change command"),
        "{}",
        stderr(&o)
    );
    let (st, body) = d.http("POST", "/commit?container=src&changes=EXPOSE%20http", None);
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("EXPOSE http"), "{body}");
    assert!(!d.docker(&["image", "inspect", "bad:1"]).status.success());
    // A missing container is a 404.
    let o = d.docker(&["commit", "nope"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("No such container: nope"),
        "{}",
        stderr(&o)
    );
    let (st, body) = d.http("POST", "/commit?container=nope", None);
    assert_eq!(st, 404, "{body}");
    d.ok(&["rm", "-f", "live", "src"]);
}

#[test]
fn commit_through_the_skiff_cli() {
    let d = Daemon::start();
    d.ok(&[
        "run",
        "--name",
        "s2",
        "busybox",
        "sh",
        "-c",
        "echo from-skiff > /y && rm /etc/passwd",
    ]);
    let id = skiff_ok(
        &d,
        &[
            "commit",
            "-c",
            r#"CMD ["cat","/y"]"#,
            "--change",
            "WORKDIR /tmp",
            "-m",
            "by skiff",
            "-a",
            "skiff author",
            "s2",
            "snap:2",
        ],
    );
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    assert_eq!(d.ok(&["run", "--rm", "snap:2"]), "from-skiff");
    assert_eq!(d.ok(&["run", "--rm", "snap:2", "pwd"]), "/tmp");
    let o = d.docker(&["run", "--rm", "snap:2", "cat", "/etc/passwd"]);
    assert!(!o.status.success(), "whiteout lost: {}", stdout(&o));
    let img = image(&d, "snap:2");
    assert_eq!(img["Author"], "skiff author");
    assert_eq!(img["Comment"], "by skiff");
    // `skiff container commit`, without a name, --pause=false.
    let id2 = skiff_ok(&d, &["container", "commit", "--pause=false", "s2"]);
    assert!(id2.starts_with("sha256:") && id2 != id, "{id2}");
    // Errors read as docker's.
    let o = skiff(&d, &["commit", "-c", "FROM x", "s2"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("from is not a valid change command"),
        "{}",
        stderr(&o)
    );
    let o = skiff(&d, &["commit", "nope"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("No such container: nope"),
        "{}",
        stderr(&o)
    );
    d.ok(&["rm", "-f", "s2"]);
}
