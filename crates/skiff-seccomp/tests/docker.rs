//! Docker profile → OCI conversion (no kernel involvement).

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator, LinuxSyscall,
};
use skiff_seccomp::{
    docker_default_profile, docker_default_profile_json, docker_profile_to_oci,
    docker_profile_to_oci_for, Host, SeccompError,
};

/// Docker's default capability set (moby oci/caps/defaults.go).
fn docker_caps() -> Vec<String> {
    [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FSETID",
        "CAP_FOWNER",
        "CAP_MKNOD",
        "CAP_NET_RAW",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETFCAP",
        "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
        "CAP_KILL",
        "CAP_AUDIT_WRITE",
    ]
    .map(String::from)
    .to_vec()
}

fn with(caps: &[&str]) -> Vec<String> {
    let mut c = docker_caps();
    c.extend(caps.iter().map(|s| s.to_string()));
    c
}

fn rules_for<'a>(p: &'a LinuxSeccomp, name: &str) -> Vec<&'a LinuxSyscall> {
    p.syscalls()
        .as_ref()
        .unwrap()
        .iter()
        .filter(|s| s.names().iter().any(|n| n == name))
        .collect()
}

fn amd64(kernel: (u32, u32)) -> Host {
    Host {
        arch: "amd64".into(),
        seccomp_arch: Some(Arch::ScmpArchX86_64),
        kernel: Some(kernel),
    }
}

fn convert(caps: &[String], host: &mut Host) -> LinuxSeccomp {
    docker_profile_to_oci_for(docker_default_profile_json(), caps, host)
        .unwrap()
        .unwrap()
}

#[test]
fn default_profile_without_sys_admin() {
    let p = convert(&docker_caps(), &mut amd64((6, 18)));
    assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActErrno);
    assert_eq!(p.default_errno_ret(), Some(1));
    assert_eq!(
        p.architectures().as_deref(),
        Some(&[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32][..])
    );
    for denied in [
        "mount",
        "unshare",
        "setns",
        "umount2",
        "bpf",
        "reboot",
        "ptrace_no_such",
    ] {
        assert!(
            rules_for(&p, denied).is_empty(),
            "{denied} must not be allowed"
        );
    }
    // clone only without namespace flags: (flags & 0x7E020000) == 0 on arg 0.
    let clone = rules_for(&p, "clone");
    assert_eq!(clone.len(), 1);
    let arg = clone[0].args().as_ref().unwrap()[0];
    assert_eq!(
        (arg.index(), arg.value(), arg.value_two(), arg.op()),
        (0, 0x7E02_0000, None, LinuxSeccompOperator::ScmpCmpMaskedEq)
    );
    // clone3 → ENOSYS so glibc falls back to clone.
    let clone3 = rules_for(&p, "clone3");
    assert_eq!(clone3.len(), 1);
    assert_eq!(
        (clone3[0].action(), clone3[0].errno_ret()),
        (LinuxSeccompAction::ScmpActErrno, Some(38))
    );
    // arch-specific rules: amd64 gets arch_prctl and modify_ldt, not arm/s390 ones.
    assert_eq!(rules_for(&p, "arch_prctl").len(), 1);
    assert_eq!(rules_for(&p, "modify_ldt").len(), 1);
    assert!(rules_for(&p, "s390_runtime_instr").is_empty());
    assert!(rules_for(&p, "set_tls").is_empty());
    // chroot comes with CAP_SYS_CHROOT, which docker grants.
    assert_eq!(rules_for(&p, "chroot").len(), 1);
}

#[test]
fn default_profile_with_sys_admin() {
    let p = convert(&with(&["CAP_SYS_ADMIN"]), &mut amd64((6, 18)));
    for allowed in ["mount", "unshare", "setns", "umount2", "clone", "clone3"] {
        let r = rules_for(&p, allowed);
        assert!(
            r.iter()
                .any(|s| s.action() == LinuxSeccompAction::ScmpActAllow && s.args().is_none()),
            "{allowed}"
        );
    }
    // The masked clone rule and the clone3 ENOSYS rule are excluded with CAP_SYS_ADMIN.
    assert!(rules_for(&p, "clone").iter().all(|s| s.args().is_none()));
    assert!(rules_for(&p, "clone3")
        .iter()
        .all(|s| s.action() == LinuxSeccompAction::ScmpActAllow));
}

#[test]
fn caps_without_prefix_and_lowercase_match() {
    let p = convert(&["sys_admin".to_string()], &mut amd64((6, 18)));
    assert!(!rules_for(&p, "mount").is_empty());
}

#[test]
fn personality_args() {
    let p = convert(&docker_caps(), &mut amd64((6, 18)));
    let vals: Vec<u64> = rules_for(&p, "personality")
        .iter()
        .map(|s| {
            let a = s.args().as_ref().unwrap();
            assert_eq!(
                (a.len(), a[0].index(), a[0].op()),
                (1, 0, LinuxSeccompOperator::ScmpCmpEq)
            );
            a[0].value()
        })
        .collect();
    assert_eq!(vals, [0, 8, 0x20000, 0x20008, 0xffff_ffff]);
}

#[test]
fn min_kernel_includes() {
    // process_vm_readv/ptrace are allowed for everyone only from 4.8 on.
    let old = convert(&docker_caps(), &mut amd64((4, 4)));
    assert!(rules_for(&old, "ptrace").is_empty());
    let new = convert(&docker_caps(), &mut amd64((4, 8)));
    assert_eq!(rules_for(&new, "ptrace").len(), 1);
}

#[test]
fn s390x_host_gets_its_clone_rule_and_arches() {
    let mut h = Host {
        arch: "s390x".into(),
        seccomp_arch: Some(Arch::ScmpArchS390x),
        kernel: Some((6, 1)),
    };
    let p = convert(&docker_caps(), &mut h);
    assert_eq!(
        p.architectures().as_deref(),
        Some(&[Arch::ScmpArchS390x, Arch::ScmpArchS390][..])
    );
    let clone = rules_for(&p, "clone");
    assert_eq!(clone.len(), 1);
    assert_eq!(clone[0].args().as_ref().unwrap()[0].index(), 1);
    assert_eq!(rules_for(&p, "s390_runtime_instr").len(), 1);
    assert!(rules_for(&p, "arch_prctl").is_empty());
}

#[test]
fn host_conversion_matches_explicit_amd64() {
    let here = docker_default_profile(&docker_caps()).unwrap();
    if cfg!(target_arch = "x86_64") {
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        let mut it = kernel.split('.');
        let k = (
            it.next().unwrap().parse().unwrap(),
            it.next().unwrap().parse().unwrap(),
        );
        assert_eq!(here, convert(&docker_caps(), &mut amd64(k)));
    }
}

fn err(json: &str) -> SeccompError {
    docker_profile_to_oci(json.as_bytes(), &[]).unwrap_err()
}

#[test]
fn bad_profiles_give_clear_errors() {
    let e = err(r#"{"defaultAction":"SCMP_ACT_FOO","syscalls":[]}"#);
    assert_eq!(e.to_string(), "seccomp: unknown action SCMP_ACT_FOO");
    let e = err(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_BAR"}]}"#,
    );
    assert_eq!(e.to_string(), "seccomp: unknown action SCMP_ACT_BAR");
    let e = err(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","archMap":[{"architecture":"SCMP_ARCH_VAX","subArchitectures":null}]}"#,
    );
    assert_eq!(e.to_string(), "seccomp: unknown architecture SCMP_ARCH_VAX");
    let e = err(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],"archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}"#,
    );
    assert!(
        e.to_string().contains("both 'architectures' and 'archMap'"),
        "{e}"
    );
    let e = err(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["socket"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_LIKE"}]}]}"#,
    );
    assert_eq!(
        e.to_string(),
        "seccomp: syscall \"socket\": unknown operator SCMP_CMP_LIKE"
    );
    let e = err(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"name":"a","names":["b"],"action":"SCMP_ACT_ALLOW"}]}"#,
    );
    assert!(e.to_string().contains("both 'name' and 'names'"), "{e}");
    let e = err(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["a"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"four"}}]}"#,
    );
    assert_eq!(
        e.to_string(),
        "seccomp: docker profile: invalid minKernel \"four\""
    );
    let e = err(r#"{"defaultAction":"SCMP_ACT_ERRNO","flags":["SECCOMP_FILTER_FLAG_NOPE"]}"#);
    assert_eq!(
        e.to_string(),
        "seccomp: unknown filter flag SECCOMP_FILTER_FLAG_NOPE"
    );
    let e = err("{not json");
    assert!(matches!(e, SeccompError::DockerJson { .. }), "{e}");
    assert!(std::error::Error::source(&e).is_some());
    let e = err("{}");
    assert!(e.to_string().contains("unconfined"), "{e}");
    assert_eq!(
        docker_profile_to_oci_for(b"{}", &[], &mut Host::current()).unwrap(),
        None
    );
}

#[test]
fn legacy_name_field_flags_and_listener_pass_through() {
    let p = docker_profile_to_oci(
        br#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_LOG"],"listenerPath":"/run/agent.sock",
            "syscalls":[{"name":"mkdir","action":"SCMP_ACT_ERRNO","errnoRet":13}]}"#,
        &[],
    )
    .unwrap();
    let s = &p.syscalls().as_ref().unwrap()[0];
    assert_eq!(
        (s.names().as_slice(), s.errno_ret()),
        (&["mkdir".to_string()][..], Some(13))
    );
    assert_eq!(p.flags().as_ref().unwrap().len(), 1);
    assert_eq!(
        p.listener_path().as_deref(),
        Some(std::path::Path::new("/run/agent.sock"))
    );
    assert_eq!(p.architectures(), &None);
}

/// Deterministic mutation fuzzing of the Docker JSON parser: never panics.
#[test]
fn mutated_profiles_never_panic() {
    let base = docker_default_profile_json();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let alphabet = b"{}[]\":,0123456789-.aeSCMP_ \\n";
    for _ in 0..3_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut c = base.to_vec();
        for k in 0..4 {
            let pos = ((x >> (k * 8)) % c.len() as u64) as usize;
            c[pos] = alphabet[((x >> (k * 5 + 3)) % alphabet.len() as u64) as usize];
        }
        let _ = docker_profile_to_oci_for(&c, &docker_caps(), &mut amd64((6, 1)));
    }
}
