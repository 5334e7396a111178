//! Dockerfile builds end to end (root, real containers): the docker CLI's classic builder
//! (`DOCKER_BUILDKIT=0`), skiff's CLI and docker-py against a skiff daemon with a busybox
//! image made from the host's busybox-static. The built images are run and looked at.

mod daemon_support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use daemon_support::{stderr, stdout, tail, Daemon, SKIFF};

/// A build context directory with `files` (path → content).
fn context(d: &Daemon, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = d.dir.path().join(name);
    for (p, c) in files {
        let f = dir.join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, c).unwrap();
    }
    dir
}

fn docker_build(d: &Daemon, dir: &Path, args: &[&str]) -> Output {
    let mut c = d.docker_cmd(&["build"]);
    c.env("DOCKER_BUILDKIT", "0")
        .args(args)
        .arg(dir)
        .stdin(Stdio::null());
    c.output().unwrap()
}

fn skiff(d: &Daemon, args: &[&str]) -> Output {
    Command::new(SKIFF)
        .arg("-H")
        .arg(d.host())
        .arg("--data-root")
        .arg(d.data_root())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(o: Output, d: &Daemon, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what} failed ({:?}):\n{}\n{}\n--- daemon log:\n{}",
        o.status,
        stdout(&o),
        stderr(&o),
        tail(&d.log(), 30)
    );
    stdout(&o)
}

fn run_out(d: &Daemon, image: &str, cmd: &[&str]) -> String {
    let mut args = vec!["run", "--rm", image];
    args.extend_from_slice(cmd);
    d.ok(&args)
}

fn cache_hits(out: &str) -> usize {
    out.matches(" ---> Using cache").count()
}

/// A gzip tar with one file `inner/file.txt`.
fn tar_gz(content: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    let mut h = tar::Header::new_gnu();
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    h.set_uid(7);
    h.set_gid(8);
    h.set_cksum();
    b.append_data(&mut h, "inner/file.txt", content.as_bytes())
        .unwrap();
    b.into_inner().unwrap().finish().unwrap()
}

const APP: &str = r#"FROM busybox
ARG VERSION=1
ENV APP_HOME=/srv/app GREETING="hello world"
WORKDIR $APP_HOME
COPY conf/ ./conf/
COPY --chown=1000:1000 --chmod=600 secret.txt /secret.txt
ADD bundle.tar.gz /opt/
RUN echo "v$VERSION" > version && adduser -D -u 1000 app 2>/dev/null || true
RUN ls conf > listing
USER 1000
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo $GREETING from $(pwd) as $(id -u)"]
"#;

#[test]
fn docker_cli_build_run_cache_and_prune() {
    let d = Daemon::start_on_host();
    let dir = context(
        &d,
        "app",
        &[
            ("Dockerfile", APP),
            ("conf/a.conf", "a=1\n"),
            ("conf/b.conf", "b=2\n"),
            ("secret.txt", "s3cret\n"),
        ],
    );
    std::fs::write(dir.join("bundle.tar.gz"), tar_gz("from the tar\n")).unwrap();
    let out = ok(docker_build(&d, &dir, &["-t", "app:1"]), &d, "build");
    assert!(out.contains("Step 1/12 : FROM busybox"), "{out}");
    assert!(out.contains(" ---> Running in "), "{out}");
    assert!(out.contains("Successfully tagged app:1"), "{out}");
    assert_eq!(cache_hits(&out), 0);
    // Every instruction's effect is visible in the image.
    assert_eq!(
        run_out(&d, "app:1", &[]),
        "hello world from /srv/app as 1000"
    );
    let check = "cat version listing /opt/inner/file.txt; stat -c '%u:%g %a' /secret.txt /opt/inner/file.txt";
    assert_eq!(
        run_out(&d, "app:1", &[check]),
        "v1\na.conf\nb.conf\nfrom the tar\n1000:1000 600\n7:8 644"
    );
    let img = d.inspect("app:1");
    assert_eq!(img["Config"]["User"], "1000");
    assert_eq!(img["Config"]["WorkingDir"], "/srv/app");
    let hist = d.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "app:1",
    ]);
    assert!(
        hist.contains("|1 VERSION=1 /bin/sh -c ls conf > listing"),
        "{hist}"
    );
    assert!(hist.contains("/bin/sh -c #(nop)  USER 1000"), "{hist}");

    // Unchanged: all cache hits, same image.
    let id1 = d.inspect("app:1")["Id"].as_str().unwrap().to_string();
    let out = ok(docker_build(&d, &dir, &["-t", "app:1"]), &d, "rebuild");
    assert_eq!(cache_hits(&out), 11, "{out}");
    assert_eq!(d.inspect("app:1")["Id"], id1.as_str());

    // A changed file misses from the step that reads it.
    std::fs::write(dir.join("conf/b.conf"), "b=3\n").unwrap();
    let out = ok(docker_build(&d, &dir, &["-t", "app:2"]), &d, "changed file");
    assert_eq!(cache_hits(&out), 3, "{out}");
    // A build arg changes RUN's key (and only from the first RUN on).
    let out = ok(
        docker_build(&d, &dir, &["-t", "app:3", "--build-arg", "VERSION=2"]),
        &d,
        "build arg",
    );
    assert_eq!(cache_hits(&out), 6, "{out}");
    assert_eq!(run_out(&d, "app:3", &["cat version"]), "v2");

    // system df counts the cache; builder prune empties it; images stay.
    let df = d.ok(&["system", "df", "--format", "{{.Type}} {{.TotalCount}}"]);
    assert!(!df.contains("Build Cache 0"), "{df}");
    d.ok(&["builder", "prune", "-f"]);
    let df = d.ok(&["system", "df", "--format", "{{.Type}} {{.TotalCount}}"]);
    assert!(df.contains("Build Cache 0"), "{df}");
    assert_eq!(run_out(&d, "app:3", &["cat version"]), "v2");
    let out = ok(docker_build(&d, &dir, &["-t", "app:3"]), &d, "after prune");
    assert_eq!(cache_hits(&out), 0, "{out}");
}

/// Serves `body` for one or more GETs on a loopback port.
fn serve(body: &'static str) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let mut s = s;
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let _ = write!(
                s,
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[test]
fn skiff_cli_multistage_heredoc_ignore_and_url() {
    let d = Daemon::start_on_host();
    let port = serve("fetched over http\n");
    let df = format!(
        r#"# syntax=docker/dockerfile:1
FROM busybox AS base
RUN <<EOF
echo one > /one
echo two >> /one
EOF

FROM base AS builder
COPY . /src
RUN ls /src | sort > /src-list

FROM busybox AS unused
RUN exit 3

FROM busybox
ENV WHO=heredoc
COPY --from=builder /src-list /one /out/
COPY <<EOF /out/inline.txt
inline $WHO
EOF
ADD http://127.0.0.1:{port}/files/remote.txt /out/
LABEL stage=final
"#
    );
    let dir = context(
        &d,
        "multi",
        &[
            ("Dockerfile", &df),
            (".dockerignore", "*.log\nsecret/\n!keep.log\n"),
            ("a.txt", "a"),
            ("x.log", "no"),
            ("keep.log", "yes"),
            ("secret/key", "no"),
        ],
    );
    let iid = d.dir.path().join("iid");
    let out = ok(
        skiff(
            &d,
            &[
                "build",
                "-t",
                "multi",
                "--label",
                "by=test",
                "--iidfile",
                iid.to_str().unwrap(),
                dir.to_str().unwrap(),
            ],
        ),
        &d,
        "skiff build",
    );
    assert!(
        !out.contains("exit 3"),
        "unused stage must be skipped: {out}"
    );
    assert!(out.contains("Successfully tagged multi:latest"), "{out}");
    let got = run_out(
        &d,
        "multi",
        &[
            "sh",
            "-c",
            "cat /out/src-list /out/one /out/inline.txt /out/remote.txt",
        ],
    );
    assert_eq!(
        got,
        "Dockerfile\na.txt\nkeep.log\none\ntwo\ninline heredoc\nfetched over http"
    );
    let img = d.inspect("multi");
    assert_eq!(img["Id"], std::fs::read_to_string(&iid).unwrap().as_str());
    assert_eq!(img["Config"]["Labels"]["by"], "test");
    assert_eq!(img["Config"]["Labels"]["stage"], "final");
    // --target stops at a stage; -q prints only the ID.
    let o = ok(
        skiff(
            &d,
            &[
                "build",
                "-q",
                "--target",
                "base",
                "-t",
                "base-only",
                dir.to_str().unwrap(),
            ],
        ),
        &d,
        "target",
    );
    assert!(
        o.trim().starts_with("sha256:") && o.trim().lines().count() == 1,
        "{o}"
    );
    assert_eq!(run_out(&d, "base-only", &["cat", "/one"]), "one\ntwo");
    let hist = ok(
        skiff(&d, &["history", "--no-trunc", "multi"]),
        &d,
        "history",
    );
    assert!(hist.contains("LABEL stage=final"), "{hist}");
    // No build leftovers.
    let builds = d.data_root().join("builds");
    let left: Vec<_> = std::fs::read_dir(&builds)
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn bad_dockerfiles_and_failing_run() {
    let d = Daemon::start_on_host();
    let images_before = d.ok(&["images", "-q"]);
    for (df, want) in [
        (
            "FROM busybox\nRUN true\nRUNN nope\n",
            "Dockerfile:3: unknown instruction: RUNN",
        ),
        ("RUN echo no stage\n", "Dockerfile:1:"),
        ("FROM busybox\nCOPY missing.txt /\n", "missing.txt"),
        (
            "FROM busybox\nRUN echo out; exit 3\n",
            "The command '/bin/sh -c echo out; exit 3' returned a non-zero code: 3",
        ),
        (
            "FROM busybox\nRUN [\"false\"]\n",
            "The command 'false' returned a non-zero code: 1",
        ),
        (
            "FROM busybox\nRUN --mount=type=cache,target=/c true\n",
            "Dockerfile:2: RUN --mount is not supported by skiff yet",
        ),
        ("FROM busybox AS a\nFROM busybox\n", "Successfully built"),
    ] {
        let dir = context(&d, "bad", &[("Dockerfile", df)]);
        let o = docker_build(&d, &dir, &[]);
        let text = format!("{}{}", stdout(&o), stderr(&o));
        assert!(text.contains(want), "{df:?}: want {want:?} in:\n{text}");
        assert_eq!(
            o.status.success(),
            want == "Successfully built",
            "{df:?}: {text}"
        );
        let o = skiff(&d, &["build", dir.to_str().unwrap()]);
        let text = format!("{}{}", stdout(&o), stderr(&o));
        assert!(
            text.contains(want),
            "skiff {df:?}: want {want:?} in:\n{text}"
        );
    }
    // A failed step leaves nothing: no mounts, no build dirs, no new images.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(d.data_root().join("builds").to_str().unwrap()));
    let builds = d.data_root().join("builds");
    assert!(std::fs::read_dir(&builds).map_or(true, |mut r| r.next().is_none()));
    let after = d.ok(&["images", "-q"]);
    assert!(
        after.lines().count() <= images_before.lines().count() + 1,
        "{after}"
    );
    // The image built from scratch stages still runs, and the daemon still answers.
    d.ok(&["version"]);
}

#[test]
fn docker_py_build() {
    let d = Daemon::start_on_host();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/build.py");
    let o = Command::new("python3")
        .arg(&script)
        .arg(d.host())
        .arg(d.dir.path().join("pyctx"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "build.py failed:\n{}\n{}\n--- daemon log:\n{}",
        stdout(&o),
        stderr(&o),
        tail(&d.log(), 30)
    );
}
