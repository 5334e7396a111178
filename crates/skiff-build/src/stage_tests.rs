use super::*;
use crate::args::BuildOptions;

/// Steps through the last stage of `src` on an empty base, returning the steps and state.
fn run_stage(
    src: &str,
    args: &[(&str, &str)],
    base: ImageConfig,
) -> Result<(Vec<Step>, StageState), DockerfileError> {
    let df = Dockerfile::parse("Dockerfile", src.as_bytes()).unwrap();
    let mut opts = BuildOptions::default();
    for (k, v) in args {
        opts.build_args.insert(k.to_string(), v.to_string());
    }
    let global = GlobalArgs::resolve(&df, &opts)?;
    let (mut st, triggers) = StageState::new(&df, &global, &opts.build_args, base)?;
    let mut steps = Vec::new();
    for i in triggers
        .iter()
        .chain(&df.stages.last().unwrap().instructions)
    {
        steps.push(st.step(i)?);
    }
    Ok((steps, st))
}

fn stage(src: &str, args: &[(&str, &str)]) -> (Vec<Step>, StageState) {
    run_stage(src, args, ImageConfig::default()).unwrap()
}

use crate::args::GlobalArgs;

#[test]
fn arg_scoping() {
    let src = "ARG V=global\nARG ONLY_GLOBAL=g\nFROM x\nARG V\nARG OTHER=$V-$ONLY_GLOBAL\nENV E=$V\nWORKDIR /$OTHER\n";
    let (_, st) = stage(src, &[]);
    assert_eq!(st.image.config.env_value("E").as_deref(), Some("global"));
    assert_eq!(
        st.image.config.working_dir.as_deref(),
        Some("/global-"),
        "global ARGs need redeclaring"
    );
    let (_, st) = stage(src, &[("V", "cli")]);
    assert_eq!(st.image.config.env_value("E").as_deref(), Some("cli"));
    // Undeclared build args are invisible.
    let (_, st) = stage("FROM x\nENV E=${SECRET:-none}\n", &[("SECRET", "s")]);
    assert_eq!(st.image.config.env_value("E").as_deref(), Some("none"));
}

#[test]
fn env_overrides_arg_whatever_the_order() {
    let (steps, st) = stage(
        "FROM x\nENV A=env\nARG A=arg\nLABEL l=$A\nRUN echo\n",
        &[("A", "cli")],
    );
    assert_eq!(st.image.config.labels.as_ref().unwrap()["l"], "env");
    let Action::Run {
        env, cache_args, ..
    } = &steps[3].action
    else {
        panic!()
    };
    assert_eq!(env, &["A=env"]);
    assert!(cache_args.is_empty());
}

#[test]
fn env_pairs_see_values_from_before_the_line() {
    let (_, st) = stage(
        "FROM x\nENV abc=hello\nENV abc=bye def=$abc\nENV ghi=$abc\n",
        &[],
    );
    assert_eq!(st.image.config.env_value("def").as_deref(), Some("hello"));
    assert_eq!(st.image.config.env_value("ghi").as_deref(), Some("bye"));
}

#[test]
fn base_image_env_is_visible() {
    let base = ImageConfig {
        env: Some(vec!["GOPATH=/go".into()]),
        ..Default::default()
    };
    let (_, st) = run_stage("FROM golang\nWORKDIR $GOPATH/src\n", &[], base).unwrap();
    assert_eq!(st.image.config.working_dir.as_deref(), Some("/go/src"));
}

#[test]
fn run_is_not_expanded_but_gets_args() {
    let src = "FROM x\nARG B=1\nARG A\nRUN echo $A $B\nRUN [\"echo\", \"$A\"]\n";
    let (steps, _) = stage(
        src,
        &[("A", "a"), ("HTTP_PROXY", "http://p"), ("UNUSED", "u")],
    );
    let Action::Run {
        argv,
        env,
        cache_args,
        script,
    } = &steps[2].action
    else {
        panic!()
    };
    assert_eq!(argv, &["/bin/sh", "-c", "echo $A $B"]);
    assert_eq!(script, &RunScript::Shell("echo $A $B".into()));
    assert_eq!(env, &["A=a", "B=1", "HTTP_PROXY=http://p"]);
    assert_eq!(
        cache_args,
        &["A=a", "B=1"],
        "undeclared proxies stay out of the cache key"
    );
    let Action::Run { argv, .. } = &steps[3].action else {
        panic!()
    };
    assert_eq!(argv, &["echo", "$A"]);
    // Platform args: declared bare, they take the automatic value.
    let (steps, _) = stage("FROM x\nARG TARGETOS\nRUN x\n", &[]);
    let Action::Run { env, .. } = &steps[1].action else {
        panic!()
    };
    assert_eq!(env, &["TARGETOS=linux"]);
}

#[test]
fn copy_and_friends_are_expanded() {
    let src = "FROM x\nARG D=/app U=1000\nCOPY --chown=$U:$U --from=$D src/$D ${D}/\nADD --chmod=$U a b\nEXPOSE ${P:-80} 53/udp\nVOLUME $D /v\nUSER $U\nSTOPSIGNAL ${S:-SIGTERM}\n";
    let (steps, st) = stage(src, &[]);
    let Instr::Copy(c) = &steps[1].instruction.kind else {
        panic!()
    };
    assert_eq!(c.chown.as_deref(), Some("1000:1000"));
    assert_eq!(c.from.as_deref(), Some("$D"), "--from is never expanded");
    assert_eq!(
        (c.sources.as_slice(), c.dest.as_str()),
        (&["src//app".to_string()][..], "/app/")
    );
    assert_eq!(steps[1].action, Action::Copy);
    let Instr::Add(a) = &steps[2].instruction.kind else {
        panic!()
    };
    assert_eq!(a.chmod.as_deref(), Some("1000"));
    let c = &st.image.config;
    assert!(c.exposed_ports.as_ref().unwrap().contains_key("80/tcp"));
    assert!(c.volumes.as_ref().unwrap().contains_key("/app"));
    assert_eq!(c.user.as_deref(), Some("1000"));
    assert_eq!(c.stop_signal.as_deref(), Some("SIGTERM"));
}

#[test]
fn heredoc_scripts_and_copy_bodies() {
    let src = "FROM x\nARG NAME=world\nRUN <<EOF\necho hi\nEOF\nRUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF\nRUN cat <<EOF > /f\nx\nEOF\nCOPY <<A <<'B' /dest/\nhello $NAME\nA\nhello $NAME\nB\nRUN <<-EOF\n\techo tab\n\tEOF\n";
    let (steps, _) = stage(src, &[]);
    let Action::Run { argv, .. } = &steps[1].action else {
        panic!()
    };
    assert_eq!(argv, &["/bin/sh", "-c", "echo hi\n"]);
    let Action::Run { script, argv, .. } = &steps[2].action else {
        panic!()
    };
    assert_eq!(
        script,
        &RunScript::ShebangFile {
            name: "EOF".into(),
            data: "#!/usr/bin/env python3\nprint(1)\n".into()
        }
    );
    assert_eq!(argv, &["/dev/pipes/EOF"]);
    let Action::Run { argv, .. } = &steps[3].action else {
        panic!()
    };
    assert_eq!(argv[2], "cat <<EOF > /f\nx\nEOF");
    let Instr::Copy(c) = &steps[4].instruction.kind else {
        panic!()
    };
    assert_eq!(c.inline[0].data, "hello world\n");
    assert_eq!(
        c.inline[1].data, "hello $NAME\n",
        "quoted heredocs are not expanded"
    );
    assert_eq!(c.dest, "/dest/");
    let Action::Run { argv, .. } = &steps[5].action else {
        panic!()
    };
    assert_eq!(argv[2], "echo tab\n");
}

#[test]
fn mounts_are_expanded() {
    let (steps, _) = stage("FROM x\nARG C=/cache\nRUN --mount=type=cache,target=$C --mount=type=ssh --mount=type=ssh,id=b make\n", &[]);
    let Instr::Run(r) = &steps[1].instruction.kind else {
        panic!()
    };
    assert_eq!(r.mounts[0].target, "/cache");
    assert_eq!(r.mounts[2].target, "/run/buildkit/ssh_agent.1");
}

#[test]
fn expansion_errors_name_the_line() {
    let e = run_stage(
        "FROM x\n\nENV A=${B:?is_required}\n",
        &[],
        ImageConfig::default(),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "Dockerfile:3: failed to process \"${B:?is_required}\": B: is_required"
    );
    // An unset variable in EXPOSE just gives no port, as in Docker.
    assert!(run_stage("FROM x\nEXPOSE $P\n", &[], ImageConfig::default()).is_ok());
    let e = run_stage(
        "FROM x\nARG P=http\nEXPOSE $P\n",
        &[],
        ImageConfig::default(),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "Dockerfile:3: EXPOSE: invalid containerPort: http"
    );
}

#[test]
fn onbuild_triggers_run_first() {
    let base = ImageConfig {
        on_build: Some(vec![
            "ENV FROM_TRIGGER=1".into(),
            "RUN <<EOF\necho hi\nEOF".into(),
        ]),
        ..Default::default()
    };
    let (steps, st) = run_stage("FROM x\nRUN make\n", &[], base).unwrap();
    assert_eq!(
        st.image.config.env_value("FROM_TRIGGER").as_deref(),
        Some("1")
    );
    let Action::Run { argv, .. } = &steps[1].action else {
        panic!()
    };
    assert_eq!(argv[2], "echo hi\n");
    assert!(st.image.config.on_build.is_none());
    let bad = ImageConfig {
        on_build: Some(vec!["FROM evil".into()]),
        ..Default::default()
    };
    let e = run_stage("FROM x\n", &[], bad).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Dockerfile (ONBUILD trigger 1):1: ONBUILD: FROM isn't allowed as an ONBUILD trigger"
    );
}

#[test]
fn workdir_action() {
    let (steps, _) = stage("FROM x\nWORKDIR /a\nWORKDIR b\n", &[]);
    assert_eq!(
        steps[1].action,
        Action::Workdir {
            path: "/a/b".into()
        }
    );
}
