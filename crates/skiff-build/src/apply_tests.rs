use super::*;
use crate::instructions::{Instr, KeyValue};

fn cmd(args: &[&str], shell: bool) -> CommandLine {
    CommandLine {
        args: args.iter().map(|s| s.to_string()).collect(),
        shell_form: shell,
        heredocs: vec![],
    }
}

fn base_with_cmd() -> ImageState {
    let c = ImageConfig {
        cmd: Some(vec!["sh".into()]),
        on_build: Some(vec!["RUN echo trigger".into()]),
        ..Default::default()
    };
    let (st, triggers) = ImageState::from_base(c);
    assert_eq!(triggers, ["RUN echo trigger"]);
    assert!(st.config.on_build.is_none(), "triggers are not inherited");
    st
}

#[test]
fn entrypoint_resets_inherited_cmd() {
    let mut st = base_with_cmd();
    st.apply(&Instr::Entrypoint(cmd(&["/bin/app"], false)))
        .unwrap();
    assert_eq!(st.config.entrypoint.as_deref().unwrap(), ["/bin/app"]);
    assert!(st.config.cmd.is_none(), "the base image's CMD is dropped");
}

#[test]
fn entrypoint_keeps_cmd_set_in_this_stage() {
    let mut st = base_with_cmd();
    st.apply(&Instr::Cmd(cmd(&["--help"], false))).unwrap();
    st.apply(&Instr::Entrypoint(cmd(&["app serve"], true)))
        .unwrap();
    assert_eq!(st.config.cmd.as_deref().unwrap(), ["--help"]);
    assert_eq!(
        st.config.entrypoint.as_deref().unwrap(),
        ["/bin/sh", "-c", "app serve"]
    );
    // ENTRYPOINT [] clears it; an empty CMD does not count as set.
    let mut st = base_with_cmd();
    st.apply(&Instr::Cmd(cmd(&[], false))).unwrap();
    st.apply(&Instr::Entrypoint(cmd(&[], false))).unwrap();
    assert_eq!(st.config.entrypoint.as_deref(), Some(&[][..]));
    assert!(st.config.cmd.is_none());
}

#[test]
fn shell_is_used_for_shell_forms() {
    let mut st = ImageState::default();
    st.apply(&Instr::Shell(vec!["/bin/bash".into(), "-ec".into()]))
        .unwrap();
    st.apply(&Instr::Cmd(cmd(&["echo $HOME"], true))).unwrap();
    assert_eq!(
        st.config.cmd.as_deref().unwrap(),
        ["/bin/bash", "-ec", "echo $HOME"]
    );
}

#[test]
fn metadata() {
    let mut st = ImageState::default();
    let kv = |k: &str, v: &str| KeyValue {
        key: k.into(),
        value: v.into(),
    };
    st.apply(&Instr::Env(vec![kv("A", "1"), kv("B", "2")]))
        .unwrap();
    st.apply(&Instr::Env(vec![kv("A", "3")])).unwrap();
    assert_eq!(st.config.env.as_deref().unwrap(), ["A=3", "B=2"]);
    st.apply(&Instr::Label(vec![kv("x", "y")])).unwrap();
    st.apply(&Instr::Expose(vec![
        "80".into(),
        "53/udp".into(),
        "8000-8001".into(),
    ]))
    .unwrap();
    let ports: Vec<_> = st
        .config
        .exposed_ports
        .as_ref()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(ports, ["53/udp", "80/tcp", "8000/tcp", "8001/tcp"]);
    st.apply(&Instr::Workdir("/app".into())).unwrap();
    st.apply(&Instr::Workdir("src/../lib".into())).unwrap();
    assert_eq!(st.config.working_dir.as_deref(), Some("/app/lib"));
    st.apply(&Instr::User("1000:1000".into())).unwrap();
    st.apply(&Instr::Volume(vec!["/data".into(), "/logs".into()]))
        .unwrap();
    st.apply(&Instr::StopSignal("SIGINT".into())).unwrap();
    assert_eq!(
        st.apply(&Instr::StopSignal("SIGNOPE".into())),
        Err("Invalid signal: SIGNOPE".into())
    );
    st.apply(&Instr::Healthcheck(
        crate::instructions::Healthcheck::Disable,
    ))
    .unwrap();
    assert_eq!(st.config.healthcheck.as_ref().unwrap().test, ["NONE"]);
    st.apply(&Instr::Onbuild("RUN make".into())).unwrap();
    st.apply(&Instr::Maintainer("me".into())).unwrap();
    let json = serde_json::to_value(&st.config).unwrap();
    assert_eq!(
        json["Volumes"],
        serde_json::json!({"/data": {}, "/logs": {}})
    );
    assert_eq!(json["User"], "1000:1000");
    assert_eq!(json["StopSignal"], "SIGINT");
    assert_eq!(json["OnBuild"], serde_json::json!(["RUN make"]));
    assert_eq!(st.author.as_deref(), Some("me"));
    assert_eq!(
        st.apply(&Instr::Expose(vec!["http".into()])),
        Err("invalid containerPort: http".into())
    );
}

#[test]
fn workdir_rules() {
    assert_eq!(normalize_workdir("", "a"), Ok("/a".into()));
    assert_eq!(normalize_workdir("/x/y", "../z/"), Ok("/x/z".into()));
    assert_eq!(normalize_workdir("/x", "/abs/"), Ok("/abs/".into()));
    assert!(normalize_workdir("/x", "").is_err());
}
