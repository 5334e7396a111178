//! The runtime's on-disk state: one directory per container under the root
//! (`--root`, default `/run/skiff/runtime`).
//!
//! Layout (version 1):
//! ```text
//! <root>/<id>/state.json   the record below, written write-temp + rename
//! <root>/<id>/exec.fifo    exists while the container is "created": `start` opens it
//! ```
//! The record holds everything a later command (start, kill, exec, delete, update...) needs,
//! so those commands never re-read the bundle: the spec as it was at create time, the init's
//! pid and its start time (to tell a live init from a reused pid), and the cgroup paths.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use crate::error::{Result, RuntimeError};

/// Current version of the state record.
pub const STATE_VERSION: u32 = 1;

/// The persistent record of one container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerState {
    pub version: u32,
    pub id: String,
    /// Init's pid in the runtime's pid namespace; 0 before it exists.
    pub pid: i32,
    /// Init's start time in clock ticks since boot (field 22 of /proc/<pid>/stat).
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339 creation time.
    pub created: String,
    pub owner: String,
    pub annotations: HashMap<String, String>,
    /// The configuration the container was created with (updated by `update`).
    pub spec: Spec,
    /// cgroup controller → directory.
    pub cgroup_paths: HashMap<String, PathBuf>,
    /// Set once `start` ran (the exec fifo is gone).
    pub started: bool,
}

/// The status a container is in, as the OCI runtime spec names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The runtime's root directory of container states.
#[derive(Debug, Clone)]
pub struct StateRoot {
    pub dir: PathBuf,
}

impl StateRoot {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        StateRoot { dir: dir.into() }
    }

    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Create the container's directory; fails if it exists.
    pub fn create_dir(&self, id: &str) -> Result<PathBuf> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| RuntimeError::io("create state root", &self.dir, e))?;
        let dir = self.container_dir(id);
        match std::fs::create_dir(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(RuntimeError::Exists(id.to_string()))
            }
            Err(e) => Err(RuntimeError::io("create state dir", &dir, e)),
        }
    }

    pub fn load(&self, id: &str) -> Result<ContainerState> {
        crate::spec::validate_id(id)?;
        let path = self.container_dir(id).join("state.json");
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RuntimeError::NotFound(id.to_string()))
            }
            Err(e) => return Err(RuntimeError::io("read", &path, e)),
        };
        let st: ContainerState =
            serde_json::from_slice(&bytes).map_err(|e| RuntimeError::CorruptState {
                id: id.to_string(),
                path: path.clone(),
                msg: e.to_string(),
            })?;
        if st.version != STATE_VERSION {
            return Err(RuntimeError::CorruptState {
                id: id.to_string(),
                path,
                msg: format!("unknown state version {}", st.version),
            });
        }
        Ok(st)
    }

    /// Write the record atomically: temp file, then rename over the old one. No fsync: the
    /// state root lives in /run (tmpfs), which does not outlive the machine, and a crashed
    /// runtime process cannot leave a torn file behind a rename.
    pub fn save(&self, st: &ContainerState) -> Result<()> {
        let dir = self.container_dir(&st.id);
        let path = dir.join("state.json");
        let tmp = dir.join(".state.json.tmp");
        let data = serde_json::to_vec(st).map_err(|e| RuntimeError::CorruptState {
            id: st.id.clone(),
            path: path.clone(),
            msg: e.to_string(),
        })?;
        let mut f = std::fs::File::create(&tmp).map_err(|e| RuntimeError::io("create", &tmp, e))?;
        f.write_all(&data)
            .map_err(|e| RuntimeError::io("write", &tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| RuntimeError::io("rename", &path, e))?;
        Ok(())
    }

    pub fn remove(&self, id: &str) -> Result<()> {
        let dir = self.container_dir(id);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(RuntimeError::io("remove state dir", &dir, e)),
        }
    }

    /// Ids of every container with a state directory, sorted.
    pub fn list(&self) -> Result<Vec<String>> {
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(RuntimeError::io("read state root", &self.dir, e)),
        };
        let mut ids: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("state.json").exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        Ok(ids)
    }

    pub fn fifo_path(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("exec.fifo")
    }
}

/// Start time of a process (clock ticks since boot), or None if it does not exist.
pub fn pid_start_time(pid: i32) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // rest starts at field 3 (state); starttime is field 22.
    let state = fields.first()?;
    if *state == "Z" || *state == "X" {
        return None;
    }
    fields.get(19)?.parse().ok()
}

impl ContainerState {
    /// Whether the init process recorded here is still the same live process.
    pub fn init_alive(&self) -> bool {
        self.pid > 0 && pid_start_time(self.pid) == Some(self.pid_start)
    }
}

/// Path of a pid file write: temp + rename so readers never see a partial pid.
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let path = std::path::absolute(path).map_err(|e| RuntimeError::io("resolve", path, e))?;
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("pid")
    ));
    std::fs::write(&tmp, pid.to_string())
        .map_err(|e| RuntimeError::io("write pid file", &tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| RuntimeError::io("write pid file", &path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_start_time() {
        let me = std::process::id() as i32;
        assert!(pid_start_time(me).is_some());
        assert!(pid_start_time(0).is_none());
        assert!(pid_start_time(i32::MAX).is_none());
    }
}
