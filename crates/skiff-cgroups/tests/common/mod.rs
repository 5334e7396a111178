//! Helpers of the root integration tests: unique cgroup names, a guard that
//! always kills the test's children and removes its cgroups, and children
//! that wait for a line on stdin before doing their work.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use skiff_cgroups::CgroupManager;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// "/skiff-test-<pid>-<n>": absolute, so directly under each mount point.
pub fn unique_path(tag: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    PathBuf::from(format!("/skiff-test-{}-{tag}-{n}", std::process::id()))
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Owns the manager, the children and the directories; cleans up on drop
/// even when the test panics.
pub struct Guard {
    pub mgr: Box<dyn CgroupManager>,
    pub children: Vec<Child>,
    dirs: HashMap<String, PathBuf>,
}

impl Guard {
    pub fn new(mgr: Box<dyn CgroupManager>) -> Self {
        let dirs = mgr.paths();
        Guard {
            mgr,
            children: Vec::new(),
            dirs,
        }
    }

    /// A `sleep 300` child moved into the cgroup.
    pub fn spawn_sleeper(&mut self) -> i32 {
        let child = Command::new("sleep")
            .arg("300")
            .spawn()
            .expect("spawn sleep");
        let pid = child.id() as i32;
        self.children.push(child);
        self.mgr.apply(pid).expect("apply pid");
        pid
    }

    /// `sh -c script` that first waits for a line on stdin; returns its index.
    pub fn spawn_gated(&mut self, script: &str) -> usize {
        let child = Command::new("sh")
            .arg("-c")
            .arg(format!("read _go; {script}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sh");
        self.children.push(child);
        self.children.len() - 1
    }

    /// Let a gated child go on, without waiting for it.
    pub fn go(&mut self, idx: usize) {
        if let Some(mut stdin) = self.children[idx].stdin.take() {
            stdin.write_all(b"go\n").expect("write stdin");
        }
    }

    /// Release a gated child and collect (success, stdout, stderr).
    pub fn release(&mut self, idx: usize) -> (bool, String, String) {
        let mut child = self.children.remove(idx);
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(b"go\n").expect("write stdin");
        }
        let out = child.wait_with_output().expect("wait");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub fn dir(&self, controller: &str) -> &Path {
        &self.dirs[controller]
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.mgr.thaw();
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = self.mgr.kill_all(libc::SIGKILL);
        let _ = self.mgr.destroy();
        // belt and braces: leave no test cgroup behind
        for dir in self.dirs.values() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

pub fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.join(file).display()))
        .trim()
        .to_string()
}

/// The cgroup2 mount to test the v2 manager on: /sys/fs/cgroup on v2 hosts,
/// /sys/fs/cgroup/unified on hybrid ones.
pub fn v2_root() -> Option<PathBuf> {
    for p in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
        if skiff_cgroups::detect_at(Path::new(p)) == skiff_cgroups::CgroupVersion::V2 {
            return Some(PathBuf::from(p));
        }
    }
    None
}
