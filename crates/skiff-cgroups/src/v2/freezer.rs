//! v2 freezer: cgroup.freeze (0/1) and the "frozen" key of cgroup.events.

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{CgroupError, Result};
use crate::fs;
use crate::FreezerState;

const TIMEOUT: Duration = Duration::from_secs(10);

fn events_frozen(dir: &Path) -> Result<bool> {
    let ev = fs::read(dir, "cgroup.events")?;
    Ok(fs::parse_flat_keyed(&ev)
        .into_iter()
        .any(|(k, v)| k == "frozen" && v == 1))
}

pub(crate) fn state(dir: &Path) -> Result<FreezerState> {
    let Some(want) = fs::read_opt(dir, "cgroup.freeze")? else {
        // root cgroup or a kernel before 5.2: never frozen
        return Ok(FreezerState::Thawed);
    };
    let frozen = events_frozen(dir)?;
    Ok(match (want.trim(), frozen) {
        ("1", true) => FreezerState::Frozen,
        ("1", false) => FreezerState::Freezing,
        // thawing in progress reads as frozen until the kernel is done
        (_, true) => FreezerState::Frozen,
        _ => FreezerState::Thawed,
    })
}

fn set_and_wait(dir: &Path, value: &str, frozen: bool) -> Result<()> {
    fs::write(dir, "cgroup.freeze", value)?;
    let deadline = Instant::now() + TIMEOUT;
    let mut delay = Duration::from_micros(200);
    loop {
        if events_frozen(dir)? == frozen {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(CgroupError::FreezeTimeout {
                path: dir.to_path_buf(),
                wanted: if frozen { "frozen" } else { "thawed" },
            });
        }
        thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(10));
    }
}

pub(crate) fn freeze(dir: &Path) -> Result<()> {
    let res = set_and_wait(dir, "1", true);
    if res.is_err() {
        // do not leave it half frozen
        let _ = fs::write(dir, "cgroup.freeze", "0");
    }
    res
}

pub(crate) fn thaw(dir: &Path) -> Result<()> {
    set_and_wait(dir, "0", false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs as stdfs;

    #[test]
    fn states_from_files() {
        let t = tempfile::tempdir().unwrap();
        assert_eq!(state(t.path()).unwrap(), FreezerState::Thawed);
        stdfs::write(t.path().join("cgroup.freeze"), "1\n").unwrap();
        stdfs::write(t.path().join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
        assert_eq!(state(t.path()).unwrap(), FreezerState::Freezing);
        stdfs::write(t.path().join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
        assert_eq!(state(t.path()).unwrap(), FreezerState::Frozen);
        // thaw on a fake file never sees "frozen 0": times out? No: write it first
        stdfs::write(t.path().join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
        thaw(t.path()).unwrap();
        assert_eq!(fs::read(t.path(), "cgroup.freeze").unwrap(), "0");
        assert_eq!(state(t.path()).unwrap(), FreezerState::Thawed);
    }
}
