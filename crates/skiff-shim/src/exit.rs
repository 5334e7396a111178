//! The container's end: its exit status as Docker reports it, whether it was OOM-killed, the
//! runtime state released, and the exit record written where the daemon finds it.

use std::io::Write;
use std::path::{Path, PathBuf};

use nix::sys::wait::WaitStatus;
use skiff_runtime::{ContainerState, Runtime};

use crate::proto::ExitRecord;

/// A reaped process: pid, exit code (128 + signal when killed), the signal.
pub fn decode(ws: WaitStatus) -> Option<(i32, i32, Option<i32>)> {
    match ws {
        WaitStatus::Exited(pid, code) => Some((pid.as_raw(), code, None)),
        WaitStatus::Signaled(pid, sig, _) => {
            Some((pid.as_raw(), 128 + sig as i32, Some(sig as i32)))
        }
        _ => None,
    }
}

/// Now, as RFC 3339 with nanoseconds (Docker's `FinishedAt`).
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Whether the kernel's OOM killer killed a process of the container's cgroup
/// (v1 `memory.oom_control`, v2 `memory.events`: `oom_kill N`).
pub fn oom_killed(st: &ContainerState) -> bool {
    let file = match (st.cgroup_paths.get("memory"), st.cgroup_paths.get("")) {
        (Some(dir), _) => dir.join("memory.oom_control"),
        (None, Some(dir)) => dir.join("memory.events"),
        (None, None) => return false,
    };
    std::fs::read_to_string(file)
        .map(|s| oom_kill_count(&s) > 0)
        .unwrap_or(false)
}

fn oom_kill_count(text: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// Release the container in the runtime (cgroup, poststop hooks, state directory). Returns
/// whether it was OOM-killed (read before the cgroup goes), and what failed, if anything.
pub fn release(root: &Path, id: &str) -> (bool, Option<String>) {
    let rt = Runtime::new(root);
    match rt.load(id) {
        Ok(st) => {
            let oom = oom_killed(&st);
            let err = rt
                .destroy(&st)
                .err()
                .map(|e| format!("delete container {id} in the runtime: {e}"));
            (oom, err)
        }
        Err(skiff_runtime::RuntimeError::NotFound(_)) => (false, None),
        Err(e) => (false, Some(format!("load container {id}: {e}"))),
    }
}

/// Write the exit record: a temporary file, fsync, rename, fsync of the directory.
pub fn write_record(path: &Path, rec: &ExitRecord) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let tmp = dir.join(name);
    let mut f = std::fs::File::create(&tmp)?;
    let mut line = serde_json::to_vec(rec).map_err(std::io::Error::other)?;
    line.push(b'\n');
    f.write_all(&line)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(&dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;
    use nix::unistd::Pid;

    #[test]
    fn codes_as_docker_reports_them() {
        let p = Pid::from_raw(5);
        assert_eq!(decode(WaitStatus::Exited(p, 3)), Some((5, 3, None)));
        assert_eq!(
            decode(WaitStatus::Signaled(p, Signal::SIGKILL, false)),
            Some((5, 137, Some(9)))
        );
        assert_eq!(decode(WaitStatus::StillAlive), None);
    }

    #[test]
    fn oom_counts() {
        assert_eq!(
            oom_kill_count("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"),
            2
        );
        assert_eq!(
            oom_kill_count("low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n"),
            0
        );
        assert_eq!(oom_kill_count(""), 0);
    }

    #[test]
    fn record_is_replaced_atomically() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("exit.json");
        std::fs::write(&p, "old").unwrap();
        let rec = ExitRecord {
            exit_code: 3,
            signal: None,
            oom_killed: false,
            finished_at: now_rfc3339(),
        };
        write_record(&p, &rec).unwrap();
        let back: ExitRecord = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!(back, rec);
        assert!(!d.path().join("exit.json.tmp").exists());
        assert!(rec.finished_at.ends_with('Z'));
    }
}
