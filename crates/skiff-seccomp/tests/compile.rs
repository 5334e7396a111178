//! compile(): every action, operator and flag; skipping rules; bad input.

use oci_spec::runtime::LinuxSeccomp;
use serde_json::json;
use skiff_seccomp::{
    compile, CompiledFilter, SeccompError, FLAG_LOG, FLAG_NEW_LISTENER, FLAG_SPEC_ALLOW,
    FLAG_TSYNC, FLAG_TSYNC_ESRCH, FLAG_WAIT_KILLABLE_RECV,
};

fn profile(v: serde_json::Value) -> LinuxSeccomp {
    serde_json::from_value(v).unwrap()
}

fn try_compile(v: serde_json::Value) -> Result<CompiledFilter, SeccompError> {
    compile(&profile(v))
}

const RET_ERRNO_ENOSYS: u32 = 0x0005_0000 | 38;

fn returns(f: &CompiledFilter) -> Vec<u32> {
    f.instructions()
        .iter()
        .filter(|i| i.code == 0x06)
        .map(|i| i.k)
        .collect()
}

#[test]
fn every_action_compiles_to_its_return_value() {
    for (action, errno, ret) in [
        ("SCMP_ACT_KILL", None, 0x0000_0000),
        ("SCMP_ACT_KILL_THREAD", None, 0x0000_0000),
        ("SCMP_ACT_KILL_PROCESS", None, 0x8000_0000),
        ("SCMP_ACT_TRAP", None, 0x0003_0000),
        ("SCMP_ACT_ERRNO", None, 0x0005_0001),
        ("SCMP_ACT_ERRNO", Some(13), 0x0005_000d),
        ("SCMP_ACT_TRACE", None, 0x7ff0_0001),
        ("SCMP_ACT_TRACE", Some(7), 0x7ff0_0007),
        ("SCMP_ACT_LOG", None, 0x7ffc_0000),
        ("SCMP_ACT_NOTIFY", None, 0x7fc0_0000),
    ] {
        let mut rule = json!({"names":["getppid"],"action":action});
        if let Some(e) = errno {
            rule["errnoRet"] = json!(e);
        }
        let f = try_compile(json!({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[rule]})).unwrap();
        assert!(returns(&f).contains(&ret), "{action}: {:x?}", returns(&f));
        assert_eq!(f.needs_notify(), action == "SCMP_ACT_NOTIFY", "{action}");
        assert_eq!(
            f.flags() & FLAG_NEW_LISTENER != 0,
            action == "SCMP_ACT_NOTIFY",
            "{action}"
        );
    }
}

#[test]
fn every_default_action_compiles() {
    for (action, ret) in [
        ("SCMP_ACT_KILL", 0x0000_0000),
        ("SCMP_ACT_KILL_PROCESS", 0x8000_0000),
        ("SCMP_ACT_TRAP", 0x0003_0000),
        ("SCMP_ACT_ERRNO", 0x0005_0001),
        ("SCMP_ACT_TRACE", 0x7ff0_0001),
        ("SCMP_ACT_LOG", 0x7ffc_0000),
    ] {
        let f = try_compile(json!({"defaultAction":action,"syscalls":[
            {"names":["read","write","exit_group"],"action":"SCMP_ACT_ALLOW"}]}))
        .unwrap();
        assert!(returns(&f).contains(&ret), "{action}: {:x?}", returns(&f));
        // Non-permissive defaults get the -ENOSYS stub (and clone3 → ENOSYS).
        let permissive = matches!(action, "SCMP_ACT_TRACE" | "SCMP_ACT_LOG");
        assert_eq!(
            returns(&f).contains(&RET_ERRNO_ENOSYS),
            !permissive,
            "{action}"
        );
    }
    let f = try_compile(
        json!({"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,"syscalls":[
        {"names":["read"],"action":"SCMP_ACT_ALLOW"}]}),
    )
    .unwrap();
    assert_eq!(
        f.instructions()[0].k,
        4,
        "libseccomp's program starts with ld [4]"
    );
    assert_eq!(
        returns(&f)
            .iter()
            .filter(|&&r| r == RET_ERRNO_ENOSYS)
            .count(),
        1,
        "no stub when default is ENOSYS"
    );
}

#[test]
fn every_operator_compiles() {
    for op in [
        "SCMP_CMP_NE",
        "SCMP_CMP_LT",
        "SCMP_CMP_LE",
        "SCMP_CMP_EQ",
        "SCMP_CMP_GE",
        "SCMP_CMP_GT",
    ] {
        let f = try_compile(
            json!({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["socket"],
            "action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":0x1_0000_0002u64,"op":op}]}]}),
        );
        assert!(f.is_ok(), "{op}: {f:?}");
    }
    // MASKED_EQ: value is the mask, valueTwo the datum; libseccomp emits an AND with the mask.
    let f = try_compile(json!({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["clone"],
        "action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":0x7E02_0000u64,"valueTwo":0x2_0000u64,"op":"SCMP_CMP_MASKED_EQ"}]}]}))
    .unwrap();
    let and_k = f
        .instructions()
        .iter()
        .any(|i| i.code == 0x54 && i.k == 0x7E02_0000);
    let cmp_k = f
        .instructions()
        .iter()
        .any(|i| i.code == 0x15 && i.k == 0x2_0000);
    assert!(and_k && cmp_k, "mask and datum in the program");
}

#[test]
fn same_arg_conditions_are_ored_and_different_args_anded() {
    let or = try_compile(json!({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["personality"],
        "action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":8,"op":"SCMP_CMP_EQ"},{"index":0,"value":9,"op":"SCMP_CMP_EQ"}]}]}))
    .unwrap();
    let and = try_compile(json!({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["personality"],
        "action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":8,"op":"SCMP_CMP_EQ"},{"index":1,"value":9,"op":"SCMP_CMP_EQ"}]}]}))
    .unwrap();
    // Both compile (libseccomp would refuse two conditions on one argument in a single rule).
    assert_ne!(or, and);
}

#[test]
fn default_action_rules_and_unknown_names_are_skipped() {
    let base = try_compile(json!({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
        {"names":["getppid"],"action":"SCMP_ACT_ERRNO"}]}))
    .unwrap();
    let extra = try_compile(json!({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
        {"names":["no_such_syscall","getppid"],"action":"SCMP_ACT_ERRNO"},
        {"names":["read","write"],"action":"SCMP_ACT_ALLOW"}]}))
    .unwrap();
    assert_eq!(base, extra);
    // ERRNO without errnoRet equals ERRNO(EPERM): skipped under an ERRNO(EPERM) default.
    let f = try_compile(json!({"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
        {"names":["read"],"action":"SCMP_ACT_ALLOW"},{"names":["getppid"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}));
    assert!(f.is_ok(), "{f:?}");
}

#[test]
fn flags() {
    let f = try_compile(json!({"defaultAction":"SCMP_ACT_ALLOW","flags":[
        "SECCOMP_FILTER_FLAG_TSYNC","SECCOMP_FILTER_FLAG_LOG","SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}))
    .unwrap();
    assert_eq!(
        f.flags(),
        FLAG_TSYNC | FLAG_LOG | FLAG_SPEC_ALLOW,
        "WAIT_KILLABLE_RECV needs NOTIFY"
    );
    let f = try_compile(json!({"defaultAction":"SCMP_ACT_ALLOW",
        "flags":["SECCOMP_FILTER_FLAG_TSYNC","SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "syscalls":[{"names":["getppid"],"action":"SCMP_ACT_NOTIFY"}]}))
    .unwrap();
    assert_eq!(
        f.flags(),
        FLAG_TSYNC | FLAG_NEW_LISTENER | FLAG_TSYNC_ESRCH | FLAG_WAIT_KILLABLE_RECV
    );
    assert_eq!(
        try_compile(json!({"defaultAction":"SCMP_ACT_ALLOW"}))
            .unwrap()
            .flags(),
        0
    );
}

#[test]
fn architectures() {
    let native = try_compile(json!({"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}))
        .unwrap();
    let multi = try_compile(json!({"defaultAction":"SCMP_ACT_ERRNO",
        "architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32","SCMP_ARCH_AARCH64","SCMP_ARCH_ARM","SCMP_ARCH_NATIVE"],
        "syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}))
    .unwrap();
    assert!(multi.len() > native.len());
    for audit in [0xc000_003eu32, 0x4000_0003, 0xc000_00b7, 0x4000_0028] {
        assert!(
            multi
                .instructions()
                .iter()
                .any(|i| i.code == 0x15 && i.k == audit),
            "{audit:#x}"
        );
    }
    let e = serde_json::from_value::<LinuxSeccomp>(
        json!({"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_VAX"]}),
    );
    assert!(e.is_err(), "oci-spec rejects unknown arches at parse time");
}

#[test]
fn bad_input_errors() {
    let e = try_compile(json!({"defaultAction":"SCMP_ACT_NOTIFY"})).unwrap_err();
    assert_eq!(
        e.to_string(),
        "seccomp: SCMP_ACT_NOTIFY cannot be used as default action"
    );
    let e = try_compile(json!({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["write"],"action":"SCMP_ACT_NOTIFY"}]}))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "seccomp: SCMP_ACT_NOTIFY cannot be used for the write syscall"
    );
    let e = try_compile(
        json!({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["socket"],
        "action":"SCMP_ACT_ERRNO","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "seccomp: syscall \"socket\": argument index 6 out of range 0-5"
    );
    let e = try_compile(
        json!({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],
        "action":"SCMP_ACT_ERRNO","errnoRet":70000}]}),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "seccomp: syscall \"mkdir\": errno/trace value 70000 out of range 0-65535"
    );
    let e =
        try_compile(json!({"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":65536})).unwrap_err();
    assert!(
        e.to_string().starts_with("seccomp: default action: errno"),
        "{e}"
    );
}

#[test]
fn compile_is_deterministic_and_round_trips() {
    let p = skiff_seccomp::docker_default_profile(&[]).unwrap();
    let a = compile(&p).unwrap();
    let b = compile(&p).unwrap();
    assert_eq!(a.to_bytes(), b.to_bytes());
    assert_eq!(CompiledFilter::from_bytes(&a.to_bytes()).unwrap(), a);
    assert!(a.len() <= skiff_seccomp::MAX_INSNS);
}
