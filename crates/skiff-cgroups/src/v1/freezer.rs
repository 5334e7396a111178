//! v1 freezer: freezer.state THAWED / FREEZING / FROZEN.

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{CgroupError, Result};
use crate::fs;
use crate::FreezerState;

const STATE: &str = "freezer.state";
const TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) fn state(dir: &Path) -> Result<FreezerState> {
    let s = fs::read(dir, STATE)?;
    match s.trim() {
        "THAWED" => Ok(FreezerState::Thawed),
        "FROZEN" => Ok(FreezerState::Frozen),
        "FREEZING" => Ok(FreezerState::Freezing),
        other => Err(CgroupError::Parse {
            path: dir.join(STATE),
            content: other.to_string(),
        }),
    }
}

/// Freeze and wait until the kernel reports FROZEN. Like runc, a cgroup
/// stuck in FREEZING is thawed and re-frozen now and then (a task in an
/// uninterruptible sleep can block freezing forever otherwise).
pub(crate) fn freeze(dir: &Path) -> Result<()> {
    let deadline = Instant::now() + TIMEOUT;
    let mut i: u32 = 0;
    loop {
        if i % 50 == 49 {
            fs::write(dir, STATE, "THAWED")?;
            thread::sleep(Duration::from_millis(10));
        }
        fs::write(dir, STATE, "FROZEN")?;
        if i % 25 == 24 {
            thread::sleep(Duration::from_millis(10));
        }
        match state(dir)? {
            FreezerState::Frozen => return Ok(()),
            _ if Instant::now() >= deadline => {
                // leave it thawed rather than half frozen
                fs::write(dir, STATE, "THAWED")?;
                return Err(CgroupError::FreezeTimeout {
                    path: dir.to_path_buf(),
                    wanted: "FROZEN",
                });
            }
            _ => thread::sleep(Duration::from_micros(100)),
        }
        i += 1;
    }
}

pub(crate) fn thaw(dir: &Path) -> Result<()> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        fs::write(dir, STATE, "THAWED")?;
        if state(dir)? == FreezerState::Thawed {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(CgroupError::FreezeTimeout {
                path: dir.to_path_buf(),
                wanted: "THAWED",
            });
        }
        thread::sleep(Duration::from_millis(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs as stdfs;

    #[test]
    fn state_roundtrip_on_fake_file() {
        let t = tempfile::tempdir().unwrap();
        stdfs::write(t.path().join(STATE), "THAWED\n").unwrap();
        freeze(t.path()).unwrap();
        assert_eq!(state(t.path()).unwrap(), FreezerState::Frozen);
        thaw(t.path()).unwrap();
        assert_eq!(state(t.path()).unwrap(), FreezerState::Thawed);
        stdfs::write(t.path().join(STATE), "BOGUS\n").unwrap();
        assert!(state(t.path())
            .unwrap_err()
            .to_string()
            .ends_with("freezer.state: unexpected content \"BOGUS\""));
    }
}
