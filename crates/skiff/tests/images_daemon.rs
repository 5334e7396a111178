//! The daemon's image endpoints beyond pull, driven by the real docker CLI and docker-py:
//! push (open and htpasswd registries, Debian's docker-registry on 127.0.0.1), save/load
//! round trips between two daemons and into the same one, import with `--change` from stdin
//! and from a loopback URL, image prune with filters, and the image events all of these
//! emit. Needs root.

mod daemon_support;
mod images_support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Duration;

use daemon_support::{stderr, stdout, tail, Daemon};
use images_support::Registry;

fn now() -> String {
    chrono::Utc::now().timestamp().to_string()
}

/// `docker events` between `since` and now: `Action Actor.ID` lines of image events.
fn image_events(d: &Daemon, since: &str) -> Vec<String> {
    let until = (chrono::Utc::now().timestamp() + 1).to_string();
    let out = d.ok(&[
        "events",
        "--since",
        since,
        "--until",
        &until,
        "--filter",
        "type=image",
        "--format",
        "{{.Action}} {{.Actor.ID}}",
    ]);
    out.lines().map(str::to_string).collect()
}

fn has_event(evs: &[String], action: &str, id_part: &str) -> bool {
    evs.iter().any(|e| {
        e.split_once(' ')
            .is_some_and(|(a, id)| a == action && id.contains(id_part))
    })
}

/// A tarball of a tiny rootfs: `/hello.txt` and `/bin/` (so it is a plausible image).
fn rootfs_tar(text: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_size(0);
    b.append_data(&mut h, "bin/", std::io::empty()).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(text.len() as u64);
    b.append_data(&mut h, "hello.txt", text.as_bytes()).unwrap();
    b.into_inner().unwrap()
}

fn image_count(d: &Daemon) -> usize {
    d.ok(&["images", "-aq", "--no-trunc"]).lines().count()
}

#[test]
fn push_open_and_authenticated_registries() {
    let d = Daemon::start_on_host();
    let reg = Registry::start();
    let since = now();
    let repo = format!("{}/team/bb", reg.addr());
    d.ok(&["tag", "busybox", &repo]);
    let out = d.ok(&["push", &repo]);
    assert!(
        out.contains(&format!("The push refers to repository [{repo}]")),
        "{out}"
    );
    assert!(out.contains(": Pushed"), "{out}");
    assert!(out.contains("latest: digest: sha256:"), "{out}");
    let digest = out
        .split("digest: ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
        .to_string();
    // The registry has the manifest under that digest.
    let r = images_support::http(
        &reg.addr(),
        "HEAD",
        &format!("/v2/team/bb/manifests/{digest}"),
        &[(
            "Accept",
            "application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json",
        )],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", reg.log());
    // Again: every layer exists; to another repository: mounted from the first.
    let again = d.ok(&["push", &repo]);
    assert!(again.contains("Layer already exists"), "{again}");
    let other = format!("{}/other/bb:v2", reg.addr());
    d.ok(&["tag", "busybox", &other]);
    let mounted = d.ok(&["push", &other]);
    assert!(mounted.contains("Mounted from team/bb"), "{mounted}");
    assert!(mounted.contains("v2: digest: "), "{mounted}");
    // The pushed image pulls back (after removing the local name).
    d.ok(&["rmi", &repo]);
    let pulled = d.ok(&["pull", &repo]);
    assert!(pulled.contains(&digest), "{pulled}");
    // A missing image is a plain error.
    let o = d.docker(&["push", &format!("{}/nosuch/x", reg.addr())]);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("An image does not exist locally with the tag"),
        "{}",
        stderr(&o)
    );

    // htpasswd registry: refused without credentials, fine after `docker login`.
    let auth = Registry::start_with(Some(("pushy", "s3cret")));
    let arepo = format!("{}/priv/bb:v1", auth.addr());
    d.ok(&["tag", "busybox", &arepo]);
    let o = d.docker(&["push", &arepo]);
    assert_ne!(o.status.code(), Some(0), "{}", stdout(&o));
    let msg = format!("{}{}", stdout(&o), stderr(&o)).to_lowercase();
    assert!(
        msg.contains("unauthorized") || msg.contains("authentication required"),
        "{msg}"
    );
    let o = d.docker_input(
        &["login", "-u", "pushy", "--password-stdin", &auth.addr()],
        Some(b"s3cret\n"),
    );
    assert!(o.status.success(), "login: {}", stderr(&o));
    let out = d.ok(&["push", &arepo]);
    assert!(out.contains("v1: digest: sha256:"), "{out}");

    let evs = image_events(&d, &since);
    for (action, id) in [
        ("tag", "sha256:"),
        ("push", "team/bb:latest"),
        ("push", "other/bb:v2"),
        ("push", "priv/bb:v1"),
        ("untag", "sha256:"),
        ("pull", "team/bb:latest"),
    ] {
        assert!(has_event(&evs, action, id), "{action} {id} in {evs:?}");
    }
}

#[test]
fn save_and_load_round_trips() {
    let d1 = Daemon::start_on_host();
    let d2 = Daemon::start_on_host();
    let since = now();
    d1.ok(&["tag", "busybox", "me/bb:v1"]);
    let id = d1.ok(&["image", "inspect", "-f", "{{.Id}}", "busybox"]);
    let tarball = d1.dir.path().join("bb.tar");
    d1.ok(&[
        "save",
        "-o",
        tarball.to_str().unwrap(),
        "busybox",
        "me/bb:v1",
    ]);

    // Into a second daemon that has no busybox.
    let id2 = d2.ok(&["image", "inspect", "-f", "{{.Id}}", "busybox"]);
    d2.ok(&["rmi", "busybox"]);
    assert_eq!(image_count(&d2), 0);
    let out = d2.ok(&["load", "-i", tarball.to_str().unwrap()]);
    assert!(out.contains("Loaded image: busybox:latest"), "{out}");
    assert!(out.contains("Loaded image: me/bb:v1"), "{out}");
    assert_eq!(
        d2.ok(&["image", "inspect", "-f", "{{.Id}}", "me/bb:v1"]),
        id
    );
    assert_eq!(
        d2.ok(&["run", "--rm", "me/bb:v1", "echo", "loaded"]),
        "loaded"
    );

    // Into itself through a pipe: `docker save busybox | docker load`.
    d1.ok(&["rmi", "me/bb:v1"]);
    let saved = d1.docker(&["save", "busybox"]);
    assert!(saved.status.success(), "{}", stderr(&saved));
    assert!(saved.stdout.len() > 100_000, "{}", saved.stdout.len());
    let o = d1.docker_input(&["load"], Some(&saved.stdout));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("Loaded image: busybox:latest"),
        "{}",
        stdout(&o)
    );

    // Bad input: a 400 with a message, nothing stored.
    let before = image_count(&d1);
    let o = d1.docker_input(&["load"], Some(b"this is not a tarball at all"));
    assert_ne!(o.status.code(), Some(0));
    let r = d1.http_raw(
        "POST",
        "/v1.44/images/load",
        "application/x-tar",
        &rootfs_tar("no manifest.json here"),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("load"), "{}", r.text());
    assert_eq!(image_count(&d1), before);
    let o = d1.docker(&["save", "-o", "/tmp/never.tar", "nosuch:img"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("No such image"), "{}", stderr(&o));
    assert!(!std::path::Path::new("/tmp/never.tar").exists());
    let r = d1.http_raw("GET", "/v1.44/images/search?term=x", "text/plain", b"");
    assert_eq!(r.status, 501, "{}", r.text());

    let evs = image_events(&d1, &since);
    assert!(has_event(&evs, "save", &id), "{evs:?}");
    assert!(has_event(&evs, "load", &id), "{evs:?}");
    let evs2 = image_events(&d2, &since);
    assert!(has_event(&evs2, "load", &id), "{evs2:?}");
    assert!(has_event(&evs2, "delete", &id2), "{evs2:?}");
}

/// Serves `body` once over HTTP on a loopback port; returns the URL.
fn serve_once(body: Vec<u8>) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = l.accept() {
            s.set_read_timeout(Some(Duration::from_secs(10))).ok();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        }
    });
    format!("http://127.0.0.1:{port}/rootfs.tar")
}

#[test]
fn import_prune_and_events() {
    let d = Daemon::start_on_host();
    let since = now();
    let o = d.docker_input(
        &[
            "import",
            "--change",
            "ENV A=1",
            "--change",
            "CMD [\"cat\", \"/hello.txt\"]",
            "--change",
            "LABEL tier=a",
            "-m",
            "from stdin",
            "-",
            "imp/a:v1",
        ],
        Some(&rootfs_tar("one")),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let id_a = stdout(&o).trim().to_string();
    assert!(id_a.starts_with("sha256:"), "{id_a}");
    let v = d.ok(&["image", "inspect", "imp/a:v1"]);
    let v: serde_json::Value = serde_json::from_str(&v).unwrap();
    assert_eq!(v[0]["Id"], id_a.as_str());
    assert!(v[0]["Config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e == "A=1"));
    assert_eq!(
        v[0]["Config"]["Cmd"],
        serde_json::json!(["cat", "/hello.txt"])
    );
    assert_eq!(v[0]["Comment"], "from stdin");

    // From a loopback URL; other URLs are refused without any traffic.
    let url = serve_once(rootfs_tar("two"));
    let o = d.docker(&["import", "--change", "LABEL tier=b", &url, "imp/b"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = d.docker(&["import", "http://192.0.2.1/x.tar", "imp/far"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("only loopback"), "{}", stderr(&o));

    // A malformed tarball or a bad name: 400, nothing stored.
    let before = image_count(&d);
    let r = d.http_raw(
        "POST",
        "/v1.44/images/create?fromSrc=-&repo=imp/bad",
        "application/x-tar",
        &[0x1f, 0x8b, 0x08, 0x00, 1, 2, 3],
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let r = d.http_raw(
        "POST",
        "/v1.44/images/create?fromSrc=-&repo=Bad//Name",
        "application/x-tar",
        // Large enough that the answer only arrives if the daemon reads the body first.
        &rootfs_tar(&"x".repeat(4 << 20)),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(image_count(&d), before);

    // Re-importing to imp/a:v1 leaves the first image dangling; prune takes only it.
    let o = d.docker_input(
        &["import", "--change", "LABEL tier=a", "-", "imp/a:v1"],
        Some(&rootfs_tar("three")),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = d.ok(&["image", "prune", "-f"]);
    assert!(out.contains(&format!("deleted: {id_a}")), "{out}");
    assert!(out.contains("Total reclaimed space:"), "{out}");
    assert!(d.docker(&["image", "inspect", &id_a]).status.code() != Some(0));

    // -a with filters: busybox is kept by a container; label and until choose the rest.
    d.ok(&["create", "--name", "keeper", "busybox", "true"]);
    let id_b = d.ok(&["image", "inspect", "-f", "{{.Id}}", "imp/b"]);
    let out = d.ok(&["image", "prune", "-a", "-f", "--filter", "until=1h"]);
    assert!(!out.contains("deleted:"), "{out}");
    let out = d.ok(&["image", "prune", "-a", "-f", "--filter", "label=tier=b"]);
    assert!(out.contains("untagged: imp/b:latest"), "{out}");
    assert!(!out.contains("imp/a"), "{out}");
    let out = d.ok(&["image", "prune", "-a", "-f", "--filter", "label!=tier"]);
    assert!(!out.contains("deleted:"), "busybox is in use: {out}");
    let left = d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(left.lines().count(), 2, "{left}");
    assert!(
        left.contains("busybox:latest") && left.contains("imp/a:v1"),
        "{left}"
    );
    let r = d.http_raw(
        "POST",
        "/v1.44/images/prune?filters=%7B%22bogus%22%3A%7B%22x%22%3Atrue%7D%7D",
        "application/json",
        b"",
    );
    assert_eq!(r.status, 400, "{}", r.text());
    d.ok(&["rm", "keeper"]);

    let evs = image_events(&d, &since);
    for (action, id) in [
        ("import", id_a.as_str()),
        ("delete", id_a.as_str()),
        ("untag", id_b.as_str()),
        ("delete", id_b.as_str()),
        ("prune", ""),
    ] {
        assert!(has_event(&evs, action, id), "{action} {id} in {evs:?}");
    }
    assert!(!has_event(&evs, "import", "far"), "{evs:?}");
}

#[test]
fn docker_py_push_save_load() {
    let d = Daemon::start_on_host();
    let reg = Registry::start();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/images_io.py");
    let o = Command::new("python3")
        .arg(&script)
        .arg(d.host())
        .arg(reg.addr())
        .current_dir(script.parent().unwrap())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "images_io.py: {}{}\n--- daemon log:\n{}",
        stdout(&o),
        stderr(&o),
        tail(&d.log(), 30)
    );
    assert!(stdout(&o).contains("ok"), "{}", stdout(&o));
}
