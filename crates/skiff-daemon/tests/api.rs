//! End-to-end tests of skiffd: the real daemon binary on a temp socket and data root, driven
//! by raw HTTP and by the real docker CLI (28.x, /usr/local/bin/docker), pulling from Debian's
//! docker-registry on 127.0.0.1 an image built here from busybox-static and pushed by skopeo.

mod support;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::time::Duration;

use serde_json::json;
use support::*;

fn assert_contains(hay: &str, needle: &str) {
    assert!(hay.contains(needle), "expected {needle:?} in:\n{hay}");
}

fn test_image(tag_seed: &str, labels: serde_json::Value) -> Image {
    let top = layer(
        &[
            ("etc", 0o755, None),
            ("etc/motd", 0o644, Some(tag_seed.as_bytes())),
        ],
        &[],
    );
    image(vec![busybox_layer(), top], "2024-01-02T03:04:05Z", labels)
}

#[test]
fn ping_versions_errors_raw_http() {
    let d = Daemon::start();

    let st = std::fs::metadata(&d.sock).unwrap();
    assert!(st.file_type().is_socket());
    assert_eq!(st.permissions().mode() & 0o777, 0o660);

    for path in ["/_ping", "/v1.24/_ping", "/v1.44/_ping"] {
        let r = d.http("GET", path, b"");
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.text(), "OK");
        assert_eq!(r.header("api-version"), Some("1.44"));
        assert_eq!(r.header("docker-experimental"), Some("false"));
        assert_eq!(r.header("ostype"), Some("linux"));
        assert_eq!(
            r.header("cache-control"),
            Some("no-cache, no-store, must-revalidate")
        );
        assert_eq!(r.header("pragma"), Some("no-cache"));
        assert!(r.header("server").unwrap().starts_with("skiff/"));
    }
    // Networking off (the harness's "bridge": "none"): `none` and `host` exist, as with
    // `dockerd --bridge=none`, with IDs that stay put; `bridge` does not.
    let r = d.http("GET", "/networks", b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let list = r.json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["host", "none"]);
    let none_id = list[1]["Id"].as_str().unwrap().to_string();
    assert_eq!(none_id.len(), 64);
    assert_eq!(list[1]["Driver"], "null");
    let r = d.http("GET", &format!("/networks/{}", &none_id[..12]), b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["Name"], "none");
    assert_eq!(
        d.http("GET", "/networks/host", b"").json()["Driver"],
        "host"
    );
    assert_eq!(d.http("GET", "/networks/bridge", b"").status, 404);

    let r = d.http("HEAD", "/_ping", b"");
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    assert_eq!(r.header("api-version"), Some("1.44"));

    let r = d.http("GET", "/v1.45/version", b"");
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json(),
        json!({"message": "client version 1.45 is too new. Maximum supported API version is 1.44"})
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    let r = d.http("GET", "/v1.23/info", b"");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["message"], "client version 1.23 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version");

    for (m, p) in [
        ("GET", "/nope"),
        ("POST", "/_ping"),
        ("GET", "/v1.44/containers/x/nothing"),
        ("PUT", "/images/busybox"),
    ] {
        let r = d.http(m, p, b"");
        assert_eq!(r.status, 404, "{m} {p}");
        assert_eq!(r.json(), json!({"message": "page not found"}), "{m} {p}");
    }

    let v = d.http("GET", "/v1.44/version", b"").json();
    assert_eq!(v["ApiVersion"], "1.44");
    assert_eq!(v["MinAPIVersion"], "1.24");
    assert_eq!(v["Os"], "linux");
    assert_eq!(v["Arch"], "amd64");
    assert_eq!(v["Version"], env!("CARGO_PKG_VERSION"));
    assert!(v["GoVersion"].as_str().unwrap().starts_with("rustc "));
    assert!(!v["KernelVersion"].as_str().unwrap().is_empty());
    assert_eq!(v["Components"][0]["Name"], "Engine");
    assert_eq!(v["Components"][0]["Details"]["ApiVersion"], "1.44");
    assert_eq!(v["Components"][0]["Details"]["MinAPIVersion"], "1.24");

    let i = d.http("GET", "/info", b"").json();
    assert_eq!(i["Driver"], "overlay2");
    assert_eq!(i["CgroupDriver"], "cgroupfs");
    assert_eq!(i["OSType"], "linux");
    assert_eq!(i["Images"], 0);
    assert_eq!(i["Containers"], 0);
    assert_eq!(i["DefaultRuntime"], "skiff");
    assert_eq!(
        i["SecurityOptions"],
        json!(["name=seccomp,profile=builtin"])
    );
    assert_eq!(
        i["DockerRootDir"],
        d.dir.path().join("root").display().to_string()
    );
    assert!(i["NCPU"].as_u64().unwrap() >= 1);
    assert!(i["MemTotal"].as_u64().unwrap() > 0);
    assert!(i["RegistryConfig"]["IndexConfigs"]["docker.io"].is_object());
    assert_eq!(
        i["RegistryConfig"]["InsecureRegistryCIDRs"],
        json!(["::1/128", "127.0.0.0/8"])
    );
    let id = i["ID"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 36, "{id}");

    // Errors: Docker's messages and codes.
    let r = d.http("GET", "/images/nope:latest/json", b"");
    assert_eq!(r.status, 404);
    assert_eq!(r.json(), json!({"message": "No such image: nope:latest"}));
    let r = d.http("DELETE", "/images/nope", b"");
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["message"], "No such image: nope");
    let r = d.http("POST", "/images/nope/tag?repo=x&tag=y", b"");
    assert_eq!(r.status, 404);
    let r = d.http("GET", "/images/json?filters=%7Bnot-json", b"");
    assert_eq!(r.status, 400);
    let r = d.http(
        "GET",
        "/images/json?filters=%7B%22colour%22%3A%5B%22red%22%5D%7D",
        b"",
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["message"], "invalid filter 'colour'");
    let r = d.http("POST", "/images/create?fromImage=Bad%2F%2Fname", b"");
    assert_eq!(r.status, 400, "{}", r.text());
    let r = d.http("POST", "/auth", b"{not json");
    assert_eq!(r.status, 400);
    assert_eq!(d.http("GET", "/images/json", b"").json(), json!([]));

    // The ID survives a restart (kept in the data root), and SIGTERM stops cleanly.
    let mut d = d;
    let st = d.stop().unwrap();
    assert!(st.success(), "{st:?}");
    assert!(!d.sock.exists(), "socket removed on stop");
    assert_contains(&d.log(), "SIGTERM: stopping");
}

#[test]
fn docker_cli_version_and_info() {
    let d = Daemon::start();
    let out = d.docker_ok(&[
        "version",
        "--format",
        "{{.Server.APIVersion}} {{.Server.MinAPIVersion}} {{.Server.Os}}/{{.Server.Arch}} {{.Client.APIVersion}}",
    ]);
    assert_eq!(out.trim(), "1.44 1.24 linux/amd64 1.44");
    let out = d.docker_ok(&["version"]);
    assert_contains(&out, "Engine:");
    assert_contains(&out, "API version:      1.44 (minimum version 1.24)");
    let out = d.docker_ok(&[
        "info",
        "--format",
        "{{.Driver}}|{{.CgroupDriver}}|{{.OSType}}|{{.Images}}|{{.DockerRootDir}}|{{.DefaultRuntime}}|{{.ServerVersion}}",
    ]);
    assert_eq!(
        out.trim(),
        format!(
            "overlay2|cgroupfs|linux|0|{}|skiff|{}",
            d.dir.path().join("root").display(),
            env!("CARGO_PKG_VERSION")
        )
    );
    let out = d.docker_ok(&["info"]);
    assert_contains(&out, "Storage Driver: overlay2");
    assert_contains(&out, "Security Options:\n  seccomp\n   Profile: builtin");
    assert_contains(&out, "127.0.0.0/8");
}

#[test]
fn pull_images_tag_inspect_history_rmi_with_docker_cli() {
    let reg = Registry::start(None);
    let img = test_image("one", json!({"org.skiff.test": "yes"}));
    reg.push(&img, "team/bb", "v1");
    let d = Daemon::start();
    let name = format!("{}/team/bb:v1", reg.addr());

    let out = d.docker_ok(&["pull", &name]);
    assert_contains(&out, "v1: Pulling from team/bb");
    assert_contains(&out, ": Pull complete");
    assert_contains(&out, &format!("Digest: {}", img.manifest_digest));
    assert_contains(&out, &format!("Status: Downloaded newer image for {name}"));
    let short = &hex(&img.config_digest)[..12];

    let rows = d.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    assert_eq!(rows.trim(), format!("{}/team/bb:v1 {short}", reg.addr()));

    // Pulling again: nothing new.
    let out = d.docker_ok(&["pull", &name]);
    assert_contains(&out, &format!("Status: Image is up to date for {name}"));

    d.docker_ok(&["tag", &name, "local/app:2"]);
    d.docker_ok(&["tag", short, "other"]);
    let mut rows: Vec<String> = d
        .docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"])
        .lines()
        .map(str::to_string)
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        vec![
            format!("{}/team/bb:v1 {short}", reg.addr()),
            format!("local/app:2 {short}"),
            format!("other:latest {short}"),
        ]
    );
    let out = d.docker_ok(&[
        "images",
        "--digests",
        "--format",
        "{{.Repository}} {{.Digest}}",
        "local/app",
    ]);
    assert_eq!(out.trim(), "local/app <none>");

    // The API's summary, field by field.
    let list = d.http("GET", "/v1.44/images/json", b"").json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let s = &list[0];
    assert_eq!(s["Id"], img.config_digest);
    assert_eq!(s["ParentId"], "");
    let mut tags: Vec<String> = serde_json::from_value(s["RepoTags"].clone()).unwrap();
    tags.sort();
    assert_eq!(
        tags,
        vec![name.clone(), "local/app:2".into(), "other:latest".into()]
    );
    assert_eq!(
        s["RepoDigests"],
        json!([format!("{}/team/bb@{}", reg.addr(), img.manifest_digest)])
    );
    assert_eq!(s["Created"], 1704164645);
    assert!(s["Size"].as_u64().unwrap() > 500_000, "{s}");
    assert_eq!(s["SharedSize"], -1);
    assert_eq!(s["Containers"], -1);
    assert_eq!(s["Labels"], json!({"org.skiff.test": "yes"}));
    assert!(s.get("VirtualSize").is_none());
    let old = d.http("GET", "/v1.41/images/json", b"").json();
    assert_eq!(old[0]["VirtualSize"], s["Size"]);

    // Filters: reference (a glob over familiar names), label, dangling.
    let q = |f: serde_json::Value| {
        let enc: String = url::form_urlencoded::byte_serialize(f.to_string().as_bytes()).collect();
        d.http("GET", &format!("/images/json?filters={enc}"), b"")
            .json()
    };
    assert_eq!(
        q(json!({"reference": ["local/*"]}))[0]["RepoTags"],
        json!(["local/app:2"])
    );
    assert_eq!(q(json!({"reference": ["nothing*"]})), json!([]));
    assert_eq!(
        q(json!({"label": ["org.skiff.test=yes"]}))
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(q(json!({"label": ["org.skiff.test=no"]})), json!([]));
    assert_eq!(q(json!({"dangling": {"true": true}})), json!([]));
    assert_eq!(
        q(json!({"dangling": ["false"]})).as_array().unwrap().len(),
        1
    );
    let out = d.docker_ok(&[
        "images",
        "--filter",
        "reference=other",
        "--format",
        "{{.Repository}}:{{.Tag}}",
    ]);
    assert_eq!(out.trim(), "other:latest");

    let out = d.docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{.Id}} {{.Os}} {{.Architecture}} {{index .Config.Labels \"org.skiff.test\"}}",
        "local/app:2",
    ]);
    assert_eq!(out.trim(), format!("{} linux amd64 yes", img.config_digest));
    let h = d.http("GET", "/images/local/app:2/history", b"").json();
    assert_eq!(h.as_array().unwrap().len(), 2, "{h}");
    assert_eq!(h[0]["Id"], img.config_digest);
    assert_eq!(h[0]["CreatedBy"], "skiffd test");
    let out = d.docker_ok(&["history", "--format", "{{.CreatedBy}}", "other"]);
    assert_eq!(out.lines().count(), 2, "{out}");

    // rmi: untag, then delete with the last name.
    let out = d.docker_ok(&["rmi", "other"]);
    assert_eq!(out.trim(), "Untagged: other:latest");
    let err = d.docker_fails(&["rmi", short]);
    assert_contains(&err, "must be forced");
    let r = d.http("DELETE", "/images/local/app:2", b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!([{"Untagged": "local/app:2"}]));
    let out = d.docker_ok(&["rmi", &name]);
    assert_contains(&out, &format!("Untagged: {name}"));
    assert_contains(&out, &format!("Deleted: {}", img.config_digest));
    assert_eq!(d.docker_ok(&["images", "-q"]).trim(), "");
    let err = d.docker_fails(&["rmi", "other"]);
    assert_contains(&err, "No such image: other");
}

#[test]
fn pull_stream_json_messages_and_errors() {
    let reg = Registry::start(None);
    let img = test_image("stream", json!({}));
    reg.push(&img, "bb", "latest");
    let d = Daemon::start();

    let r = d.http(
        "POST",
        &format!(
            "/v1.44/images/create?fromImage={}/bb&tag=latest",
            reg.addr()
        ),
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let msgs = r.json_lines();
    assert_eq!(
        msgs[0],
        json!({"status": "Pulling from bb", "id": "latest"})
    );
    for l in &img.layers {
        let id = &hex(&l.digest)[..12];
        assert!(
            msgs.contains(&json!({"status": "Pulling fs layer", "progressDetail": {}, "id": id})),
            "{msgs:?}"
        );
        assert!(
            msgs.contains(&json!({"status": "Pull complete", "progressDetail": {}, "id": id})),
            "{msgs:?}"
        );
    }
    // Progress messages come as the engine reports them (a fast local pull may skip them).
    for dl in msgs.iter().filter(|m| m["status"] == "Downloading") {
        assert!(dl["progressDetail"]["total"].as_u64().unwrap() > 0, "{dl}");
        assert!(dl["progress"].as_str().unwrap().starts_with('['), "{dl}");
    }
    assert!(
        msgs.iter().any(|m| m["status"] == "Download complete"),
        "{msgs:?}"
    );
    let n = msgs.len();
    assert_eq!(
        msgs[n - 2],
        json!({"status": format!("Digest: {}", img.manifest_digest)})
    );
    assert_eq!(
        msgs[n - 1],
        json!({"status": format!("Status: Downloaded newer image for {}/bb:latest", reg.addr())})
    );

    // An unknown tag: an error status before anything streamed.
    let r = d.http(
        "POST",
        &format!("/images/create?fromImage={}/bb&tag=nope", reg.addr()),
        b"",
    );
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(
        r.json()["message"].as_str().unwrap().contains("nope"),
        "{}",
        r.text()
    );
    let err = d.docker_fails(&["pull", &format!("{}/bb:nope", reg.addr())]);
    assert_contains(&err, "Error response from daemon");

    // A registry that goes away: connection refused → 500 with a message.
    let port = free_port();
    let r = d.http(
        "POST",
        &format!("/images/create?fromImage=127.0.0.1:{port}/x&tag=1"),
        b"",
    );
    assert!(r.status >= 500, "{} {}", r.status, r.text());
    assert!(!r.json()["message"].as_str().unwrap().is_empty());
    // The daemon is still fine.
    assert_eq!(d.http("GET", "/_ping", b"").status, 200);
}

#[test]
fn login_and_pull_with_credentials() {
    let reg = Registry::start(Some(("alice", "s3cret")));
    let img = test_image("auth", json!({}));
    reg.push(&img, "private/bb", "v2");
    let d = Daemon::start();
    let name = format!("{}/private/bb:v2", reg.addr());

    // No credentials: refused as dockerd does ("pull access denied", 404), so the CLI
    // reports it instead of prompting for a login.
    let err = d.docker_fails(&["pull", &name]);
    assert_contains(
        &err,
        &format!(
            "Error response from daemon: pull access denied for {}/private/bb",
            reg.addr()
        ),
    );
    let r = d.http(
        "POST",
        &format!("/images/create?fromImage={}/private/bb&tag=v2", reg.addr()),
        b"",
    );
    assert_eq!(r.status, 404, "{}", r.text());

    // /auth checks credentials without storing them on the daemon side.
    let r = d.http(
        "POST",
        "/auth",
        json!({"username": "alice", "password": "wrong", "serveraddress": reg.addr()})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(r.status, 401, "{}", r.text());
    let r = d.http(
        "POST",
        "/auth",
        json!({"username": "alice", "password": "s3cret", "serveraddress": reg.addr()})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["Status"], "Login Succeeded");

    let mut login = d.docker_cmd(&["login", "-u", "alice", "--password-stdin", &reg.addr()]);
    login
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = login.spawn().unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"s3cret\n").unwrap();
    }
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_contains(&String::from_utf8_lossy(&o.stdout), "Login Succeeded");

    // The CLI now sends X-Registry-Auth.
    let out = d.docker_ok(&["pull", &name]);
    assert_contains(&out, &format!("Status: Downloaded newer image for {name}"));
    let auth = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE.encode(
            json!({"username": "alice", "password": "s3cret", "serveraddress": reg.addr()})
                .to_string(),
        )
    };
    let r = d.http_with(
        "POST",
        &format!("/images/create?fromImage={}/private/bb&tag=v2", reg.addr()),
        &[("X-Registry-Auth", &auth)],
        b"",
    );
    assert_eq!(r.status, 200);
    let last = r.json_lines().pop().unwrap();
    assert_eq!(
        last["status"],
        format!("Status: Image is up to date for {name}")
    );
    // Credentials of one request are not kept for the next.
    d.docker_ok(&["rmi", &name]);
    let r = d.http(
        "POST",
        &format!("/images/create?fromImage={}/private/bb&tag=v2", reg.addr()),
        b"",
    );
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .contains("pull access denied"));
}

#[test]
fn config_file_reload_and_bad_keys() {
    let d = Daemon::start_with(r#"{"max-concurrent-downloads": 2}"#, &[]);
    assert_eq!(d.http("GET", "/_ping", b"").status, 200);

    // SIGHUP with a good file: reloaded.
    std::fs::write(
        d.dir.path().join("daemon.json"),
        r#"{"registry-mirrors": ["http://127.0.0.1:1"], "insecure-registries": ["10.0.0.0/8"]}"#,
    )
    .unwrap();
    d.signal(libc::SIGHUP);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !d.log().contains("configuration reloaded") {
        assert!(std::time::Instant::now() < deadline, "{}", d.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    let i = d.http("GET", "/info", b"").json();
    assert_eq!(
        i["RegistryConfig"]["Mirrors"],
        json!(["http://127.0.0.1:1"])
    );
    assert_eq!(
        i["RegistryConfig"]["InsecureRegistryCIDRs"],
        json!(["::1/128", "127.0.0.0/8", "10.0.0.0/8"])
    );

    // SIGHUP with a bad file: kept the old configuration, still serving.
    std::fs::write(d.dir.path().join("daemon.json"), r#"{"no-such-key": 1}"#).unwrap();
    d.signal(libc::SIGHUP);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !d.log().contains("reload failed") {
        assert!(std::time::Instant::now() < deadline, "{}", d.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_contains(&d.log(), "no-such-key");
    assert_eq!(d.http("GET", "/_ping", b"").status, 200);
    let i = d.http("GET", "/info", b"").json();
    assert_eq!(
        i["RegistryConfig"]["Mirrors"],
        json!(["http://127.0.0.1:1"])
    );

    // Every request is logged with its id and status.
    assert_contains(&d.log(), "request{id=");
    assert_contains(&d.log(), "status=200");

    // Unknown key at start: the daemon refuses to start, naming it.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("daemon.json"), r#"{"data-rot": "/x"}"#).unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_skiffd"))
        .args(["-H", &format!("unix://{}/s.sock", dir.path().display())])
        .arg("--config-file")
        .arg(dir.path().join("daemon.json"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert_contains(
        &String::from_utf8_lossy(&o.stderr),
        "unknown field `data-rot`",
    );

    // A second daemon on a live socket is refused; the first keeps serving.
    // Networking off: this daemon must not make a bridge or firewall table on the host.
    std::fs::write(dir.path().join("none.json"), r#"{"bridge": "none"}"#).unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_skiffd"))
        .args(["-H", &d.host()])
        .arg("--data-root")
        .arg(dir.path().join("root"))
        .arg("--config-file")
        .arg(dir.path().join("none.json"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert_contains(
        &String::from_utf8_lossy(&o.stderr),
        "another daemon is already listening",
    );
    assert_eq!(d.http("GET", "/_ping", b"").status, 200);
}

#[test]
fn tcp_only_when_asked() {
    let port = free_port();
    let d = Daemon::start_with("{}", &["-H", &format!("tcp://127.0.0.1:{port}")]);
    let o = std::process::Command::new("docker")
        .env("DOCKER_HOST", format!("tcp://127.0.0.1:{port}"))
        .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
        .args(["version", "--format", "{{.Server.APIVersion}}"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "1.44");
    // The unix socket serves too.
    assert_eq!(
        d.docker_ok(&["version", "--format", "{{.Server.Os}}"])
            .trim(),
        "linux"
    );
}
