use std::collections::BTreeSet;

use super::*;
use crate::args::Platform;

fn plan(src: &str, opts: &BuildOptions) -> Result<BuildPlan, PlanError> {
    BuildPlan::new(
        &Dockerfile::parse("Dockerfile", src.as_bytes()).unwrap(),
        opts,
    )
}

const MULTI: &str = "\
ARG BASE=alpine
ARG TAG
FROM ${BASE}:${TAG:-3.19} AS base
RUN echo base
FROM golang AS build
COPY --from=base /etc/os-release /x
FROM node AS web
RUN --mount=type=bind,from=build,target=/b ls /b
FROM scratch AS unused
COPY --from=busybox:latest /bin/busybox /
FROM base
COPY --from=web /app /app
COPY --from=1 /go/bin /bin
";

#[test]
fn graph_and_waves() {
    let p = plan(MULTI, &BuildOptions::default()).unwrap();
    assert_eq!(p.stages[0].base, Base::Image("alpine:3.19".into()));
    assert_eq!(p.stages[3].base, Base::Scratch);
    assert_eq!(p.stages[4].base, Base::Stage(0));
    assert_eq!(p.stages[4].deps, BTreeSet::from([0, 1, 2]));
    assert_eq!(p.stages[2].deps, BTreeSet::from([1]));
    assert_eq!(
        p.stages[3].image_sources,
        BTreeSet::from(["busybox:latest".to_string()])
    );
    assert_eq!(p.target, 4);
    assert_eq!(p.needed, [0, 1, 2, 4], "the unused stage is skipped");
    assert_eq!(p.waves, [vec![0], vec![1], vec![2], vec![4]]);
}

#[test]
fn build_args_and_target() {
    let mut o = BuildOptions::default();
    o.build_args.insert("TAG".into(), "edge".into());
    o.build_args.insert("BASE".into(), "debian".into());
    o.target = Some("WEB".into());
    let p = plan(MULTI, &o).unwrap();
    assert_eq!(p.stages[0].base, Base::Image("debian:edge".into()));
    assert_eq!(p.target, 2);
    assert_eq!(p.needed, [0, 1, 2]);
    o.target = Some("nope".into());
    assert_eq!(
        plan(MULTI, &o).unwrap_err().to_string(),
        "failed to reach build target nope in Dockerfile"
    );
}

#[test]
fn independent_stages_share_a_wave() {
    let src = "FROM a AS one\nFROM b AS two\nFROM c\nCOPY --from=one / /\nCOPY --from=two / /\n";
    let p = plan(src, &BuildOptions::default()).unwrap();
    assert_eq!(p.waves, [vec![0, 1], vec![2]]);
}

#[test]
fn from_resolution_rules() {
    // Only earlier stages count for FROM; a stage named like its image uses the image.
    let p = plan("FROM node AS node\nFROM NODE\n", &BuildOptions::default()).unwrap();
    assert_eq!(p.stages[0].base, Base::Image("node".into()));
    assert_eq!(p.stages[1].base, Base::Stage(0));
    // Platform args are global.
    let o = BuildOptions {
        target_platform: Platform::parse("linux/arm64").unwrap(),
        ..Default::default()
    };
    let p = plan("FROM --platform=$BUILDPLATFORM img:$TARGETARCH\n", &o).unwrap();
    assert_eq!(p.stages[0].base, Base::Image("img:arm64".into()));
    assert_eq!(
        p.stages[0].platform.as_deref(),
        Some(Platform::host().to_string().as_str())
    );
    // Blank base.
    let e = plan("ARG X\nFROM $X\n", &BuildOptions::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Dockerfile:2: FROM: base name ($X) should not be blank"
    );
}

#[test]
fn cycles_and_bad_indexes() {
    let e = plan(
        "FROM a AS x\nCOPY --from=y / /\nFROM b AS y\nCOPY --from=x / /\n",
        &BuildOptions::default(),
    );
    assert!(matches!(e, Err(PlanError::Cycle(_))), "{e:?}");
    let e = plan("FROM a AS x\nCOPY --from=x / /\n", &BuildOptions::default());
    assert_eq!(
        e.unwrap_err().to_string(),
        "circular dependency detected on stage: x"
    );
    let e = plan("FROM a\nCOPY --from=5 / /\n", &BuildOptions::default());
    assert_eq!(
        e.unwrap_err().to_string(),
        "Dockerfile:2: COPY: invalid stage index 5"
    );
    // A forward reference by name is fine when there is no cycle.
    let p = plan(
        "FROM a\nCOPY --from=later / /\nFROM b AS later\n",
        &BuildOptions {
            target: Some("later".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(p.needed, [1]);
}
