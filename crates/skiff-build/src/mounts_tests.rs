use super::*;

fn id(s: &str) -> Result<String, String> {
    Ok(s.to_string())
}

fn p(spec: &str) -> Result<Mount, String> {
    parse_mount(spec, Some(&id), 0).map(|m| m.expect("a mount"))
}

#[test]
fn typed_mounts() {
    let m = p("type=cache,target=/root/.cache,sharing=locked,id=go,mode=0700,uid=1,gid=2").unwrap();
    assert_eq!(m.kind, MountType::Cache);
    assert_eq!(
        (m.target.as_str(), m.id.as_deref(), m.sharing),
        ("/root/.cache", Some("go"), Some(Sharing::Locked))
    );
    assert_eq!(
        (m.mode, m.uid, m.gid, m.readonly),
        (Some(0o700), Some(1), Some(2), false)
    );
    let m = p("type=cache,target=/c").unwrap();
    assert_eq!(
        (m.id.as_deref(), m.sharing, m.mode),
        (Some("/c"), Some(Sharing::Shared), Some(0o755))
    );

    let m = p("target=/src,from=build,source=/out").unwrap();
    assert_eq!((m.kind, m.readonly), (MountType::Bind, true));
    assert_eq!(
        (m.from.as_deref(), m.source.as_deref()),
        (Some("build"), Some("/out"))
    );
    assert!(!p("type=bind,target=/x,rw").unwrap().readonly);
    assert!(!p("type=bind,target=/x,readwrite=true").unwrap().readonly);
    assert!(p("type=tmpfs,dst=/t,ro").unwrap().readonly);
    assert_eq!(
        p("type=tmpfs,target=/t,size=64m").unwrap().size,
        Some(64 << 20)
    );

    let m = p("type=secret,id=aws").unwrap();
    assert_eq!((m.target.as_str(), m.readonly), ("/run/secrets/aws", true));
    let m = p("type=secret,target=/etc/token,required").unwrap();
    assert_eq!((m.id.as_deref(), m.required), (Some("token"), true));
    let m = parse_mount("type=ssh", Some(&id), 2).unwrap().unwrap();
    assert_eq!(
        (m.id.as_deref(), m.target.as_str()),
        (Some("default"), "/run/buildkit/ssh_agent.2")
    );
    let m = p("\"type=bind\",\"target=/a,b\"").unwrap();
    assert_eq!(m.target, "/a,b");
}

#[test]
fn bad_mounts() {
    let cases = [
        ("type=foo,target=/x", "unsupported mount type \"foo\""),
        (
            "type=bind,target=/x,mode=0700",
            "mode not allowed for \"bind\" type mounts",
        ),
        (
            "type=tmpfs,target=/x,uid=1",
            "uid not allowed for \"tmpfs\" type mounts",
        ),
        (
            "type=bind,target=/x,sharing=shared",
            "invalid cache sharing set for bind mount",
        ),
        (
            "type=cache,target=/x,sharing=nope",
            "unsupported sharing value \"nope\"",
        ),
        (
            "type=secret,from=x,id=a",
            "secret mount should not have a from",
        ),
        (
            "type=secret",
            "invalid secret mount. one of source, target required",
        ),
        (
            "type=secret,source=a,id=b",
            "both source and id can't be set",
        ),
        (
            "type=bind,target=/x,required",
            "unexpected key 'required' for mount type 'bind'",
        ),
        (
            "type=cache,target=/x,size=1m",
            "unexpected key 'size' for mount type 'cache'",
        ),
        (
            "type=bind,target=/x,bogus=1",
            "unexpected key 'bogus' in 'bogus=1'",
        ),
        (
            "type=bind,target=/x,novalue",
            "invalid field 'novalue' must be a key=value pair",
        ),
        (
            "type=cache,target=/x,mode=999",
            "invalid value 999 for mode",
        ),
        (
            "type=bind,target=/x,ro=maybe",
            "invalid value for ro: maybe",
        ),
        ("type=bind", "mount type bind requires a target"),
        (
            "type=bind,target=\"/x",
            "failed to parse csv mounts: bare \" in non-quoted-field",
        ),
        (
            "type=bind,\"target=/x",
            "failed to parse csv mounts: extraneous or missing \" in quoted-field",
        ),
    ];
    for (spec, want) in cases {
        assert_eq!(p(spec).unwrap_err(), want, "{spec}");
    }
}

#[test]
fn variables_wait_for_expansion() {
    assert_eq!(parse_mount("type=cache,target=$DIR", None, 0), Ok(None));
    assert!(parse_mount("type=bind,from=$STAGE,target=/x", None, 0)
        .unwrap_err()
        .contains("define alias stage instead"));
    let exp = |s: &str| Ok(s.replace("$DIR", "/cache"));
    let m = parse_mount("type=cache,target=$DIR", Some(&exp), 0)
        .unwrap()
        .unwrap();
    assert_eq!(m.target, "/cache");
    assert_eq!(
        mount_from("type=bind,FROM=build,target=/x").as_deref(),
        Some("build")
    );
}

#[test]
fn network_and_security() {
    assert_eq!(parse_network("none"), Ok(NetworkMode::None));
    assert_eq!(parse_network("host"), Ok(NetworkMode::Host));
    assert_eq!(
        parse_network("bridge"),
        Err("unsupported network mode \"bridge\"".into())
    );
    assert_eq!(parse_security("insecure"), Ok(SecurityMode::Insecure));
}
