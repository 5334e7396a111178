//! Good Dockerfiles: what each instruction parses to, end to end through a plan and steps.

use skiff_build::instructions::{Copy, From, Healthcheck, Instr};
use skiff_build::mounts::{MountType, NetworkMode};
use skiff_build::{Action, BuildOptions, BuildPlan, Dockerfile, ImageConfig, StageState};

fn parse(src: &str) -> Dockerfile {
    Dockerfile::parse("Dockerfile", src.as_bytes()).unwrap_or_else(|e| panic!("{e}"))
}

const FULL: &str = r#"# syntax=docker/dockerfile:1.7
ARG VERSION=1.2 \
    DISTRO="debian bookworm"
FROM --platform=$BUILDPLATFORM golang:${VERSION} as Builder
from builder AS test
ENV GOFLAGS=-mod=vendor CGO_ENABLED=0
env OLD style value
LABEL org.opencontainers.image.title="My App" version=$VERSION \
      "quoted key"=v
WORKDIR /src
COPY --chown=1000:1000 --chmod=0644 --link go.mod go.sum ./
COPY ["with space.txt", "/dst/"]
ADD --keep-git-dir=true --checksum=sha256:abc https://example.com/x.tgz /opt/
RUN --mount=type=cache,target=/root/.cache/go-build \
    --mount=type=secret,id=netrc,target=/root/.netrc \
    --network=none \
    go build -o /out/app ./cmd/app
RUN ["/bin/echo", "exec form"]
EXPOSE 8080 9000-9001/udp
VOLUME ["/data", "/logs"]
VOLUME /cache /tmp/x
USER app:app
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=30s --timeout=3s --start-period=1m --start-interval=2s --retries=3 \
  CMD curl -f http://localhost/ || exit 1
ONBUILD COPY . /app/src
ONBUILD RUN <<END
make
END
MAINTAINER someone@example.com
ENTRYPOINT ["/out/app"]
CMD ["--help"]
"#;

#[test]
fn every_instruction() {
    let df = parse(FULL);
    assert_eq!(df.syntax.as_deref(), Some("docker/dockerfile:1.7"));
    let globals: Vec<&str> = df.global_arg_decls().map(|a| a.name.as_str()).collect();
    assert_eq!(globals, ["VERSION", "DISTRO"]);
    assert_eq!(df.stages.len(), 2);
    assert_eq!(
        df.stages[0].from,
        From {
            image: "golang:${VERSION}".into(),
            stage_name: Some("builder".into()),
            platform: Some("$BUILDPLATFORM".into())
        }
    );
    assert_eq!(df.stages[1].from.image, "builder");
    let s = &df.stages[1];
    let names: Vec<&str> = s.instructions.iter().map(|i| i.name()).collect();
    assert_eq!(
        names,
        [
            "ENV",
            "ENV",
            "LABEL",
            "WORKDIR",
            "COPY",
            "COPY",
            "ADD",
            "RUN",
            "RUN",
            "EXPOSE",
            "VOLUME",
            "VOLUME",
            "USER",
            "SHELL",
            "STOPSIGNAL",
            "HEALTHCHECK",
            "ONBUILD",
            "ONBUILD",
            "MAINTAINER",
            "ENTRYPOINT",
            "CMD"
        ]
    );
    let Instr::Copy(Copy {
        sources,
        dest,
        chown,
        chmod,
        link,
        ..
    }) = &s.instructions[4].kind
    else {
        panic!()
    };
    assert_eq!(sources, &["go.mod", "go.sum"]);
    assert_eq!(dest, "./");
    assert_eq!(
        (chown.as_deref(), chmod.as_deref(), *link),
        (Some("1000:1000"), Some("0644"), true)
    );
    let Instr::Copy(c) = &s.instructions[5].kind else {
        panic!()
    };
    assert!(c.json);
    assert_eq!(c.sources, ["with space.txt"]);
    let Instr::Add(a) = &s.instructions[6].kind else {
        panic!()
    };
    assert!(a.keep_git_dir);
    assert_eq!(a.checksum.as_deref(), Some("sha256:abc"));
    let Instr::Run(r) = &s.instructions[7].kind else {
        panic!()
    };
    assert_eq!(r.network, NetworkMode::None);
    let kinds: Vec<MountType> = r.mounts.iter().map(|m| m.kind).collect();
    assert_eq!(kinds, [MountType::Cache, MountType::Secret]);
    assert_eq!(r.cmd.args, ["go build -o /out/app ./cmd/app"]);
    assert_eq!(
        (s.instructions[7].start_line, s.instructions[7].end_line),
        (14, 17)
    );
    let Instr::Expose(p) = &s.instructions[9].kind else {
        panic!()
    };
    assert_eq!(p, &["8080", "9000-9001/udp"]);
    let Instr::Healthcheck(Healthcheck::Check {
        test,
        interval,
        timeout,
        start_period,
        start_interval,
        retries,
    }) = &s.instructions[15].kind
    else {
        panic!()
    };
    assert_eq!(test, &["CMD-SHELL", "curl -f http://localhost/ || exit 1"]);
    assert_eq!(
        (
            *interval,
            *timeout,
            *start_period,
            *start_interval,
            *retries
        ),
        (
            30_000_000_000,
            3_000_000_000,
            60_000_000_000,
            2_000_000_000,
            3
        )
    );
    assert_eq!(
        s.instructions[16].kind,
        Instr::Onbuild("COPY . /app/src".into())
    );
    assert_eq!(
        s.instructions[17].kind,
        Instr::Onbuild("RUN <<END\nmake\nEND".into())
    );
    assert_eq!(df.step_count(), 2 + 21);
    let (n, first_run) = df.steps().find(|(_, i)| i.name() == "RUN").unwrap();
    assert_eq!(n, 10);
    assert_eq!(
        first_run.original,
        "RUN --mount=type=cache,target=/root/.cache/go-build     --mount=type=secret,id=netrc,target=/root/.netrc     --network=none     go build -o /out/app ./cmd/app"
    );
}

#[test]
fn full_build_config() {
    let df = parse(FULL);
    let opts = BuildOptions::default();
    let plan = BuildPlan::new(&df, &opts).unwrap();
    assert_eq!(plan.needed, [0, 1]);
    let base = ImageConfig {
        cmd: Some(vec!["bash".into()]),
        env: Some(vec!["PATH=/usr/local/go/bin:/usr/bin".into()]),
        ..Default::default()
    };
    let (mut st, triggers) = StageState::new(&df, &plan.global, &opts.build_args, base).unwrap();
    assert!(triggers.is_empty());
    let mut runs = 0;
    for i in &df.stages[1].instructions {
        if let Action::Run { .. } = st.step(i).unwrap().action {
            runs += 1;
        }
    }
    assert_eq!(runs, 2);
    let json = serde_json::to_value(&st.image.config).unwrap();
    assert_eq!(
        json["Env"],
        serde_json::json!([
            "PATH=/usr/local/go/bin:/usr/bin",
            "GOFLAGS=-mod=vendor",
            "CGO_ENABLED=0",
            "OLD=style value"
        ])
    );
    assert_eq!(json["Labels"]["org.opencontainers.image.title"], "My App");
    assert_eq!(
        json["Labels"]["version"], "",
        "global ARGs are not visible in the stage"
    );
    assert_eq!(json["Labels"]["quoted key"], "v");
    assert_eq!(
        json["ExposedPorts"],
        serde_json::json!({"8080/tcp": {}, "9000/udp": {}, "9001/udp": {}})
    );
    assert_eq!(
        json["Volumes"],
        serde_json::json!({"/data": {}, "/logs": {}, "/cache": {}, "/tmp/x": {}})
    );
    assert_eq!(json["WorkingDir"], "/src");
    assert_eq!(json["User"], "app:app");
    assert_eq!(json["StopSignal"], "SIGQUIT");
    assert_eq!(json["Entrypoint"], serde_json::json!(["/out/app"]));
    assert_eq!(json["Cmd"], serde_json::json!(["--help"]));
    assert_eq!(
        json["Shell"],
        serde_json::json!(["/bin/bash", "-o", "pipefail", "-c"])
    );
    assert_eq!(
        json["OnBuild"],
        serde_json::json!(["COPY . /app/src", "RUN <<END\nmake\nEND"])
    );
    assert_eq!(
        json["Healthcheck"]["Test"],
        serde_json::json!(["CMD-SHELL", "curl -f http://localhost/ || exit 1"])
    );
    assert_eq!(st.image.author.as_deref(), Some("someone@example.com"));
}

#[test]
fn escape_directive_with_backtick() {
    let df = parse("# escape=`\nFROM mcr.microsoft.com/windows\nRUN dir c:\\ `\n  && echo done\nCOPY a c:\\dest\\\n");
    assert_eq!(df.escape, '`');
    let Instr::Run(r) = &df.stages[0].instructions[0].kind else {
        panic!()
    };
    assert_eq!(r.cmd.args, ["dir c:\\   && echo done"]);
    let Instr::Copy(c) = &df.stages[0].instructions[1].kind else {
        panic!()
    };
    assert_eq!(c.dest, "c:\\dest\\");
}

#[test]
fn case_insensitive_and_odd_spacing() {
    let df = parse("  from\talpine   AS   Base  \n\trun    echo   hi   \ncOpY a b\n");
    assert_eq!(df.stages[0].name(), Some("base"));
    let Instr::Run(r) = &df.stages[0].instructions[0].kind else {
        panic!()
    };
    assert_eq!(r.cmd.args, ["echo   hi"]);
    assert_eq!(df.stage_by_name("BASE").unwrap().index, 0);
}

#[test]
fn shell_and_exec_forms() {
    let df = parse(
        "FROM a\nCMD echo $HOME\nCMD [\"echo\", \"$HOME\"]\nENTRYPOINT [not json\nRUN [\"a\"] trailing ignored\nCMD []\nRUN \"unterminated <<X\n",
    );
    let forms: Vec<(Vec<String>, bool)> = df.stages[0]
        .instructions
        .iter()
        .map(|i| match &i.kind {
            Instr::Cmd(c) | Instr::Entrypoint(c) => (c.args.clone(), c.shell_form),
            Instr::Run(r) => (r.cmd.args.clone(), r.cmd.shell_form),
            _ => panic!(),
        })
        .collect();
    assert_eq!(forms[0], (vec!["echo $HOME".to_string()], true));
    assert_eq!(
        forms[1],
        (vec!["echo".to_string(), "$HOME".to_string()], false)
    );
    assert_eq!(forms[2], (vec!["[not json".to_string()], true));
    assert_eq!(forms[3], (vec!["a".to_string()], false));
    assert_eq!(forms[4], (vec![], false));
    // A line that does not lex as shell words opens no heredoc (as in Docker).
    assert_eq!(forms[5], (vec!["\"unterminated <<X".to_string()], true));
}

#[test]
fn labels_and_env_quoting() {
    let df = parse("FROM a\nLABEL a=\"x y\" b='$NOT' c=plain\\ space d=\"with \\\"quote\\\"\"\n");
    let opts = BuildOptions::default();
    let plan = BuildPlan::new(&df, &opts).unwrap();
    let (mut st, _) =
        StageState::new(&df, &plan.global, &opts.build_args, ImageConfig::default()).unwrap();
    st.step(&df.stages[0].instructions[0]).unwrap();
    let l = st.image.config.labels.clone().unwrap();
    assert_eq!(
        (
            l["a"].as_str(),
            l["b"].as_str(),
            l["c"].as_str(),
            l["d"].as_str()
        ),
        ("x y", "$NOT", "plain space", "with \"quote\"")
    );
}

#[test]
fn warnings_are_kept() {
    let df = parse("FROM a AS x\nRUN a \\\n\n b\nFROM b AS x\n");
    assert_eq!(df.warnings.len(), 2, "{:?}", df.warnings);
}

#[test]
fn copy_heredoc_and_parents_exclude() {
    let df = parse(
        "FROM a\nCOPY --parents --exclude=*.md --exclude=docs <<BODY src/ /dst/\ncontent\nBODY\n",
    );
    let Instr::Copy(c) = &df.stages[0].instructions[0].kind else {
        panic!()
    };
    assert!(c.parents);
    assert_eq!(c.exclude, ["*.md", "docs"]);
    assert_eq!(c.sources, ["src/"]);
    assert_eq!(
        (c.inline[0].name.as_str(), c.inline[0].data.as_str()),
        ("BODY", "content\n")
    );
}
