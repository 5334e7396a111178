//! install() must not allocate (it runs between fork and execve of a multi-threaded parent):
//! count allocations around it in a forked child with a counting global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;
use skiff_seccomp::{compile, docker_default_profile, set_no_new_privs, CompiledFilter};

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged, only counting calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Exit code of a child that installs `f` and reports 0 if nothing was allocated, 1 if something
/// was, 2 if install failed.
fn child_allocations(f: &CompiledFilter) -> i32 {
    // SAFETY: the child makes raw syscalls and atomic loads only, then _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let before = ALLOCS.load(Ordering::SeqCst);
        let ok = set_no_new_privs().is_ok() && f.install().is_ok();
        let after = ALLOCS.load(Ordering::SeqCst);
        let code = match (ok, after == before) {
            (false, _) => 2,
            (true, true) => 0,
            (true, false) => 1,
        };
        // SAFETY: leave the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status), "child died: {status:#x}");
    libc::WEXITSTATUS(status)
}

#[test]
fn install_does_not_allocate() {
    let docker = compile(&docker_default_profile(&[]).unwrap()).unwrap();
    assert_eq!(child_allocations(&docker), 0, "prctl path");
    let flagged = compile(
        &serde_json::from_value(json!({"defaultAction":"SCMP_ACT_ALLOW",
            "flags":["SECCOMP_FILTER_FLAG_TSYNC","SECCOMP_FILTER_FLAG_LOG"],
            "syscalls":[{"names":["getppid"],"action":"SCMP_ACT_NOTIFY"}]}))
        .unwrap(),
    )
    .unwrap();
    assert_ne!(flagged.flags(), 0);
    assert_eq!(child_allocations(&flagged), 0, "seccomp(2) + listener path");
    // The counter works: allocating in the child is seen.
    let v = ALLOCS.load(Ordering::SeqCst);
    drop(Box::new(1u64));
    assert!(ALLOCS.load(Ordering::SeqCst) > v);
}
