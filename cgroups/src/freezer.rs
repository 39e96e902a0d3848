//! The freezer, v1 (`freezer.state`) and v2 (`cgroup.freeze`): a change is
//! done only when the kernel reports it done, within a bound. A v1 freeze
//! passes through FREEZING while tasks are caught; runc waits for FROZEN,
//! and so do we, so "paused" is never said of a cgroup still running.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::{write, Error, Result};

/// How long a freeze or thaw may take before it is given up.
const BOUND: Duration = Duration::from_secs(5);

/// The state the kernel reports: v1 THAWED/FREEZING/FROZEN; v2 frozen 0/1.
fn state(dir: &Path, v2: bool) -> Option<String> {
    if v2 {
        let events = crate::read_text(dir.join("cgroup.events")).ok()?;
        let frozen = events.lines().find_map(|l| l.strip_prefix("frozen "))?;
        return Some(
            if frozen.trim() == "1" {
                "FROZEN"
            } else {
                "THAWED"
            }
            .into(),
        );
    }
    let s = crate::read_text(dir.join("freezer.state")).ok()?;
    Some(s.trim().to_string())
}

/// Whether the cgroup at `dir` exists and is frozen or freezing.
pub fn frozen_at(dir: &Path, v2: bool) -> bool {
    let wanted = if v2 {
        crate::read_text(dir.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1")
    } else {
        false
    };
    wanted || state(dir, v2).is_some_and(|s| s != "THAWED")
}

/// Freezes or thaws the cgroup at `dir` and waits until the kernel says so.
/// A freeze that does not complete is undone and reported.
pub fn set(dir: &Path, v2: bool, frozen: bool) -> Result<()> {
    let want = if frozen { "FROZEN" } else { "THAWED" };
    set_once(dir, v2, frozen)?;
    let start = Instant::now();
    let mut pause = Duration::from_micros(50);
    let mut tries = 0u32;
    loop {
        let now = state(dir, v2);
        if now.as_deref() == Some(want) {
            return Ok(());
        }
        if start.elapsed() > BOUND {
            if frozen {
                let _ = set_once(dir, v2, false);
            }
            return Err(Error::Io {
                path: dir.to_path_buf(),
                msg: format!(
                    "unable to {}: still {} after {}s",
                    if frozen { "freeze" } else { "thaw" },
                    now.unwrap_or_else(|| "unreadable".into()),
                    BOUND.as_secs()
                ),
            });
        }
        tries += 1;
        // v1 can stay FREEZING when a task was missed: asking again
        // catches it (runc re-writes FROZEN too).
        if !v2 && tries % 10 == 0 {
            set_once(dir, v2, frozen)?;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

fn set_once(dir: &Path, v2: bool, frozen: bool) -> Result<()> {
    let (file, value) = match (v2, frozen) {
        (true, f) => ("cgroup.freeze", if f { "1" } else { "0" }),
        (false, true) => ("freezer.state", "FROZEN"),
        (false, false) => ("freezer.state", "THAWED"),
    };
    write(&dir.join(file), value)
}
