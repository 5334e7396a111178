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

/// The paths in the top layer of `image` (through `docker save`).
fn top_layer_paths(d: &Daemon, image: &str) -> Vec<String> {
    let o = d.docker(&["save", image]);
    assert!(o.status.success(), "save: {}", stderr(&o));
    let mut files = std::collections::BTreeMap::new();
    let mut ar = tar::Archive::new(&o.stdout[..]);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut b = Vec::new();
        e.read_to_end(&mut b).unwrap();
        files.insert(name, b);
    }
    let manifest: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    let layers = manifest[0]["Layers"].as_array().unwrap();
    let top = &files[layers.last().unwrap().as_str().unwrap()];
    let raw: Box<dyn Read> = if top.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(&top[..]))
    } else {
        Box::new(&top[..])
    };
    let mut ar = tar::Archive::new(raw);
    let mut out: Vec<String> = ar
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
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
            "FROM busybox\nRUN true\nRUN --mount=type=bogus,target=/x true\n",
            "Dockerfile:3: RUN --mount: unsupported mount type \"bogus\"",
        ),
        (
            "FROM busybox\nRUN --mount=type=cache,target=/x,colour=red true\n",
            "Dockerfile:2: RUN --mount: unexpected key 'colour' in 'colour=red'",
        ),
        (
            "FROM busybox\n\nRUN --mount=type=bind,source=nope,target=/x true\n",
            "Dockerfile:3: RUN --mount=type=bind,target=/x: source \"nope\" not found in the build context",
        ),
        (
            "FROM busybox AS a\nFROM busybox\nRUN --mount=type=cache,from=a,source=/bin/sh,target=/x true\n",
            "Dockerfile:3: RUN --mount=type=cache,target=/x: source \"/bin/sh\" is not a directory in \"a\"",
        ),
        (
            "FROM busybox\nRUN --mount=type=secret,id=tok,required=true true\n",
            "Dockerfile:2: RUN --mount=type=secret,target=/run/secrets/tok: required",
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

/// `docker-compose build` (Debian's v1, through docker-py's `/build`) builds a service's
/// image from its Dockerfile with build args and a target stage; the image runs, and a
/// second build is all cache hits.
#[test]
fn compose_build() {
    let d = Daemon::start_on_host();
    let proj = context(
        &d,
        "composeproj",
        &[
            (
                "docker-compose.yml",
                "version: \"3\"\nservices:\n  app:\n    build:\n      context: ./app\n      target: final\n      args:\n        GREETING: hello-compose\n    image: skt-compose/app:1\n",
            ),
            (
                "app/Dockerfile",
                "FROM busybox AS base\nARG GREETING=unset\nRUN echo \"$GREETING\" > /greeting\nFROM base AS final\nCOPY msg.txt /msg.txt\nCMD [\"cat\", \"/greeting\", \"/msg.txt\"]\nFROM busybox AS unused\nRUN exit 1\n",
            ),
            ("app/msg.txt", "from-context\n"),
        ],
    );
    let compose = |args: &[&str]| {
        let o = Command::new("docker-compose")
            .args(["-p", "sktb", "--no-ansi"])
            .args(args)
            .current_dir(&proj)
            .env("DOCKER_HOST", d.host())
            .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
            .stdin(Stdio::null())
            .output()
            .expect("docker-compose (apt install docker-compose)");
        ok(o, &d, &format!("docker-compose {args:?}"))
    };
    let out = compose(&["build"]);
    assert!(out.contains("Successfully built"), "{out}");
    assert_eq!(
        run_out(&d, "skt-compose/app:1", &[]),
        "hello-compose\nfrom-context"
    );
    let again = compose(&["build"]);
    assert!(cache_hits(&again) >= 3, "second build not cached:\n{again}");
}

/// `RUN --mount=type=cache|bind|tmpfs` through the docker CLI and skiff's CLI: a cache
/// persists across builds and is pruned, binds read the context (or a stage) and key the
/// step on the bound files, rw binds and tmpfs leave nothing behind, nothing of a mount
/// reaches the layer.
#[test]
fn run_mounts_cache_bind_tmpfs() {
    let d = Daemon::start_on_host();
    let cache_df = "FROM busybox
RUN --mount=type=cache,target=/cachedir,id=counter,mode=0700,uid=7 \
    sh -c 'cat /cachedir/count > /before 2>/dev/null; echo x >> /cachedir/count; \
           wc -l < /cachedir/count > /after; stat -c \"%a %u\" /cachedir > /cache-stat'
RUN --mount=type=cache,id=counter,target=/a,sharing=locked \
    --mount=type=cache,id=counter,target=/b,sharing=locked cmp /a/count /b/count
";
    let dir = context(&d, "cachectx", &[("Dockerfile", cache_df)]);
    let look = "cat /before /after /cache-stat; test -e /cachedir && echo LEAK; true";
    ok(docker_build(&d, &dir, &["-t", "c1"]), &d, "cache build 1");
    assert_eq!(run_out(&d, "c1", &["sh", "-c", look]), "1\n700 7");
    // The second build (no cache: the RUN runs again) sees what the first left.
    ok(
        skiff(
            &d,
            &["build", "--no-cache", "-t", "c2", dir.to_str().unwrap()],
        ),
        &d,
        "cache build 2",
    );
    assert_eq!(run_out(&d, "c2", &["sh", "-c", look]), "x\n2\n700 7");
    // Counted in system df; the cache's files are not in any layer.
    let df = d.ok(&["system", "df", "-v", "--format", "{{json .}}"]);
    assert!(df.contains("exec.cachemount"), "{df}");
    let layers = d.inspect("c2")["RootFS"]["Layers"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(
        layers,
        d.inspect("busybox")["RootFS"]["Layers"]
            .as_array()
            .unwrap()
            .len()
            + 2
    );
    // The layer of the RUN that only read the cache (twice, locked) is empty.
    assert!(top_layer_paths(&d, "c2").is_empty());
    let caches = d.data_root().join("builder/cache-mounts/v1");
    assert_eq!(std::fs::read_dir(&caches).unwrap().count(), 1);
    // builder prune removes it: the next build starts empty.
    d.ok(&["builder", "prune", "-f"]);
    assert_eq!(std::fs::read_dir(&caches).unwrap().count(), 0);
    ok(
        docker_build(&d, &dir, &["--no-cache", "-t", "c3"]),
        &d,
        "cache build 3",
    );
    assert_eq!(run_out(&d, "c3", &["sh", "-c", look]), "1\n700 7");
    // A cache seeded from a stage (`from=`, `source=`): a new cache starts as a copy of that
    // directory (its owner too); a cache that exists keeps what it has.
    let seed_df = "FROM busybox AS seedsrc
RUN mkdir -p /seed/sub && echo seeded > /seed/sub/f && chown -R 5:6 /seed
FROM busybox
RUN --mount=type=cache,id=seeded,target=/c,from=seedsrc,source=/seed \
    sh -c 'cat /c/sub/f > /out; stat -c \"%u %g\" /c > /own; echo more > /c/sub/g'
RUN --mount=type=cache,id=seeded,target=/c,from=seedsrc,source=/seed cat /c/sub/g > /second
";
    let dir = context(&d, "seedctx", &[("Dockerfile", seed_df)]);
    ok(
        docker_build(&d, &dir, &["-t", "seeded"]),
        &d,
        "seeded cache build",
    );
    assert_eq!(
        run_out(
            &d,
            "seeded",
            &[
                "sh",
                "-c",
                "cat /out /own /second; test -e /c && echo LEAK; true"
            ]
        ),
        "seeded\n5 6\nmore"
    );

    // Bind mounts and tmpfs.
    let bind_df = "FROM busybox AS stage
RUN echo made-in-stage > /made
FROM busybox
RUN --mount=type=tmpfs,target=/scratch,size=1m \
    sh -c 'ls -A /scratch | wc -l > /tmpfs-count; echo big > /scratch/f; grep \" /scratch tmpfs\" /proc/mounts | grep -c size=1024k > /tmpfs-size'
WORKDIR /w
RUN --mount=type=bind,source=link,target=mnt/data \
    sh -c 'cat mnt/data/a.txt > /out-a; ls mnt/data > /out-ls; touch mnt/data/x 2>/dev/null || echo ro > /out-ro'
RUN --mount=type=bind,target=/ctx,rw --mount=type=bind,from=stage,source=/made,target=/m/made \
    sh -c 'touch /ctx/written && ls /ctx > /ctx-ls; cat /m/made > /out-stage'
";
    let dir = context(
        &d,
        "bindctx",
        &[
            ("Dockerfile", bind_df),
            ("data/a.txt", "alpha\n"),
            ("data/b.txt", "beta\n"),
            ("other.txt", "other\n"),
        ],
    );
    // An absolute link is resolved inside the context (as the bind source `link`).
    std::os::unix::fs::symlink("/data", dir.join("link")).unwrap();
    let look = "cat /tmpfs-count /tmpfs-size /out-a /out-ls /out-ro /ctx-ls /out-stage; \
                for p in /scratch /w/mnt /ctx /m; do test -e $p && echo LEAK $p; done; true";
    let want =
        "0\n1\nalpha\na.txt\nb.txt\nro\nDockerfile\ndata\nlink\nother.txt\nwritten\nmade-in-stage";
    let out = ok(docker_build(&d, &dir, &["-t", "b1"]), &d, "bind build");
    assert_eq!(cache_hits(&out), 0, "{out}");
    assert_eq!(run_out(&d, "b1", &["sh", "-c", look]), want);
    // The last RUN's layer has its two files and nothing of its mounts, mount points or
    // the /etc/hosts, /etc/hostname and /etc/resolv.conf stubs (busybox has no /etc/hosts).
    assert_eq!(top_layer_paths(&d, "b1"), ["ctx-ls", "out-stage"]);
    // Unchanged: all cache hits.
    let out = ok(docker_build(&d, &dir, &["-t", "b1"]), &d, "bind rebuild");
    assert_eq!(cache_hits(&out), 5, "{out}");
    // A file outside the first bind: only the step binding the whole context runs again.
    std::fs::write(dir.join("other.txt"), "changed\n").unwrap();
    let out = ok(docker_build(&d, &dir, &["-t", "b2"]), &d, "other changed");
    assert_eq!(cache_hits(&out), 4, "{out}");
    // A bound file: that step and the next run again.
    std::fs::write(dir.join("data/b.txt"), "beta2\n").unwrap();
    let out = ok(
        skiff(&d, &["build", "-t", "b3", dir.to_str().unwrap()]),
        &d,
        "bound file changed",
    );
    assert_eq!(cache_hits(&out), 3, "{out}");
    assert_eq!(run_out(&d, "b3", &["sh", "-c", look]), want);
    // A bind source may not leave the context through a symlink.
    std::os::unix::fs::symlink("/etc", dir.join("esc")).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM busybox\nRUN --mount=type=bind,source=esc/hostname,target=/h cat /h\n",
    )
    .unwrap();
    let o = docker_build(&d, &dir, &[]);
    let text = format!("{}{}", stdout(&o), stderr(&o));
    assert!(!o.status.success(), "{text}");
    assert!(
        text.contains("Dockerfile:2: RUN --mount=type=bind,target=/h: source \"esc/hostname\" not found in the build context"),
        "{text}"
    );
    // Nothing left mounted or lying around.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(d.data_root().to_str().unwrap()),
        "{mounts}"
    );
    let builds = d.data_root().join("builds");
    assert!(std::fs::read_dir(&builds).map_or(true, |mut r| r.next().is_none()));
}

/// RUN on the bridge network by default when the daemon has networking (reaching a server
/// in another container by IP), on a user network by name (by DNS name), and `--network
/// none` with only loopback.
#[test]
fn run_on_networks() {
    let d = Daemon::start();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "busybox",
        "sh",
        "-c",
        "mkdir /w && echo via-bridge > /w/index.html && httpd -f -p 80 -h /w",
    ]);
    let ip = d.inspect("web")["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    let df = "FROM busybox
ARG URL
RUN for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O /got $URL && break; sleep 0.3; done; \
    ls /sys/class/net > /nets; grep \"$(hostname)\" /etc/hosts > /hosts-line
RUN --network=none ls /sys/class/net > /nets-none
";
    let dir = context(&d, "netctx", &[("Dockerfile", df)]);
    let url = format!("URL=http://{ip}/index.html");
    ok(
        docker_build(&d, &dir, &["-t", "n1", "--build-arg", &url]),
        &d,
        "bridge build",
    );
    let got = run_out(
        &d,
        "n1",
        &["cat", "/got", "/nets", "/nets-none", "/hosts-line"],
    );
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines[..4], ["via-bridge", "eth0", "lo", "lo"], "{got}");
    let subnet = ip.rsplit_once('.').unwrap().0;
    assert!(lines[4].starts_with(&format!("{subnet}.")), "{got}");

    // --network none on the command line: only loopback, and the server is out of reach.
    let df = "FROM busybox\nRUN ls /sys/class/net > /nets; wget -q -T 2 -O - http://$IP/ > /got 2>&1 || echo unreachable > /got\n";
    let dir = context(&d, "nonectx", &[("Dockerfile", &df.replace("$IP", &ip))]);
    ok(
        skiff(
            &d,
            &[
                "build",
                "--network",
                "none",
                "-t",
                "n2",
                dir.to_str().unwrap(),
            ],
        ),
        &d,
        "none build",
    );
    assert_eq!(
        run_out(&d, "n2", &["cat", "/nets", "/got"]),
        "lo\nunreachable"
    );

    // A user-defined network by name: its embedded DNS finds the server's name.
    d.ok(&["network", "create", "bnet"]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "named-web",
        "--network",
        "bnet",
        "busybox",
        "sh",
        "-c",
        "mkdir /w && echo via-dns > /w/index.html && httpd -f -p 80 -h /w",
    ]);
    let dir = context(&d, "userctx", &[("Dockerfile", "FROM busybox\nRUN for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O /got http://named-web/index.html && break; sleep 0.3; done\n")]);
    ok(
        docker_build(&d, &dir, &["--network", "bnet", "-t", "n3"]),
        &d,
        "user network build",
    );
    assert_eq!(run_out(&d, "n3", &["cat", "/got"]), "via-dns");
    let o = docker_build(&d, &dir, &["--network", "nosuchnet"]);
    let text = format!("{}{}", stdout(&o), stderr(&o));
    assert!(!o.status.success() && text.contains("nosuchnet"), "{text}");

    // With the servers gone, nothing is left of the build containers' endpoints: no veth,
    // no namespace file (the teardowns finish in the background).
    d.ok(&["rm", "-f", "web", "named-web"]);
    d.until("build endpoints removed", || {
        let o = d
            .netns
            .command("ip")
            .args(["-br", "link"])
            .output()
            .unwrap();
        let files = std::fs::read_dir(d.exec_root().join("netns")).map_or(0, |r| r.count());
        !stdout(&o).contains("skv") && files == 0
    });
}

/// Runs `sh -c script` in `dir`, panicking on failure.
fn sh_in(dir: &Path, script: &str) {
    let o = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{script}: {}", stderr(&o));
}

/// A python HTTPS server on 127.0.0.1 serving `root`, killed on drop.
struct HttpsServer(std::process::Child, u16);

impl HttpsServer {
    fn start(root: &Path, cert: &Path, key: &Path) -> HttpsServer {
        let script = "import functools, http.server, ssl, sys\n\
h = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])\n\
srv = http.server.HTTPServer(('127.0.0.1', 0), h)\n\
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
ctx.load_cert_chain(sys.argv[2], sys.argv[3])\n\
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)\n\
print(srv.server_address[1], flush=True)\n\
srv.serve_forever()\n";
        let mut c = Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(root)
            .arg(cert)
            .arg(key)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(c.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let port = line.trim().parse().unwrap();
        HttpsServer(c, port)
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `ADD https://…` through the registry client's TLS stack: a local server whose CA the
/// daemon trusts via SSL_CERT_FILE; a daemon without that CA refuses the certificate.
#[test]
fn add_https_url() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    sh_in(
        t,
        "set -e
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key \
  -out ca.pem -days 2 -subj /CN=skiff-test-ca 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout srv.key \
  -out srv.csr -subj /CN=127.0.0.1 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > ext
openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 \
  -extfile ext 2>/dev/null
mkdir -p www/dl && echo fetched over tls > www/dl/secure.txt",
    );
    let srv = HttpsServer::start(&t.join("www"), &t.join("srv.pem"), &t.join("srv.key"));
    let ca = t.join("ca.pem");
    let d = Daemon::start_on_host_env(&[("SSL_CERT_FILE", ca.to_str().unwrap())]);
    let df = format!(
        "FROM busybox\nADD https://127.0.0.1:{}/dl/secure.txt /got/\n",
        srv.1
    );
    let dir = context(&d, "https", &[("Dockerfile", &df)]);
    ok(docker_build(&d, &dir, &["-t", "tls"]), &d, "https build");
    assert_eq!(
        run_out(&d, "tls", &["cat", "/got/secure.txt"]),
        "fetched over tls"
    );
    // A missing file is an error naming the URL and the status.
    std::fs::write(
        dir.join("Dockerfile"),
        df.replace("secure.txt", "missing.txt"),
    )
    .unwrap();
    let o = docker_build(&d, &dir, &[]);
    let text = format!("{}{}", stdout(&o), stderr(&o));
    assert!(
        !o.status.success() && text.contains("missing.txt") && text.contains("404"),
        "{text}"
    );
    drop(d);
    // Without the CA: the certificate is refused.
    let d = Daemon::start_on_host();
    let dir = context(&d, "https", &[("Dockerfile", &df)]);
    let o = docker_build(&d, &dir, &[]);
    let text = format!("{}{}", stdout(&o), stderr(&o));
    assert!(!o.status.success() && text.contains("secure.txt"), "{text}");
    assert!(text.to_lowercase().contains("certificate"), "{text}");
}
