//! Making a cgroup's directories: the missing levels above it, cpuset's
//! cpus and mems copied down on v1, controllers delegated down on v2.

use std::path::{Component, Path, PathBuf};

use crate::hierarchy::Hierarchy;
use crate::{io_err, write, Result};

/// mkdir -p; returns the levels above `dir` it made (top first). On v1
/// cpuset every level from the mount point down gets its parent's cpus and
/// mems when it has none, or no task could join it. That includes levels
/// another process made: a concurrent create may have made a shared parent
/// and not filled it yet (ENOSPC on join otherwise). A parent that a
/// concurrent delete removes under us (ENOENT) is made again.
pub(crate) fn create_dir(h: &Hierarchy, dir: &Path) -> Result<Vec<PathBuf>> {
    let cpuset = !h.v2 && h.has("cpuset");
    if !cpuset {
        // Most often the parent is there: one mkdir answers, without a
        // stat first; only a missing level above takes the walk.
        match std::fs::create_dir(dir) {
            Ok(()) => return Ok(vec![]),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(vec![]),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(dir, e)),
        }
    } else if dir.is_dir() && !CPUSET_FILES.iter().any(|f| is_unset(&dir.join(f))) {
        return Ok(vec![]);
    }
    let mut levels: Vec<&Path> = dir
        .ancestors()
        .take_while(|p| p.starts_with(&h.mount_point) && *p != h.mount_point)
        .collect();
    levels.reverse();
    let mut made: Vec<PathBuf> = vec![];
    let mut attempts = 0;
    'again: loop {
        attempts += 1;
        for d in &levels {
            match std::fs::create_dir(d) {
                Ok(()) if *d != dir && !made.iter().any(|m| m == d) => made.push(d.to_path_buf()),
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempts < 5 => {
                    continue 'again
                }
                Err(e) => return Err(io_err(d, e)),
            }
            if !cpuset {
                continue;
            }
            for f in CPUSET_FILES {
                let mine = d.join(f);
                if let (true, Some(parent)) = (is_unset(&mine), d.parent()) {
                    let value =
                        crate::read_text(parent.join(f)).map_err(|e| io_err(&parent.join(f), e))?;
                    write(&mine, value.trim())?;
                }
            }
        }
        return Ok(made);
    }
}

const CPUSET_FILES: [&str; 2] = ["cpuset.cpus", "cpuset.mems"];

/// A cpuset file that reads empty (a read error is left to the join to
/// report).
fn is_unset(file: &Path) -> bool {
    crate::read_text(file)
        .map(|s| s.trim().is_empty())
        .unwrap_or(false)
}

/// v2: a cgroup only gets controller files for what its parent delegates;
/// delegate every available controller down to `dir`'s parent, making the
/// levels above `dir` that are missing (returned, top first).
pub(crate) fn enable_controllers(root: &Path, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut made = vec![];
    let Ok(rel) = dir.strip_prefix(root) else {
        return Ok(made);
    };
    let mut cur = root.to_path_buf();
    let comps: Vec<_> = rel.components().collect();
    for comp in comps
        .iter()
        .take(comps.len().saturating_sub(1))
        .chain(std::iter::once(&Component::CurDir))
    {
        let avail = crate::read_text(cur.join("cgroup.controllers")).unwrap_or_default();
        let enabled = crate::read_text(cur.join("cgroup.subtree_control")).unwrap_or_default();
        let want: Vec<String> = avail
            .split_whitespace()
            .filter(|c| !enabled.split_whitespace().any(|e| e == *c))
            .map(|c| format!("+{c}"))
            .collect();
        if !want.is_empty() {
            // Best effort per controller: one a parent cannot give is
            // reported when a limit on it is applied.
            for w in want {
                let _ = write(&cur.join("cgroup.subtree_control"), &w);
            }
        }
        match comp {
            Component::CurDir => break,
            c => {
                cur.push(c);
                if !cur.is_dir() {
                    match std::fs::create_dir(&cur) {
                        Ok(()) => made.push(cur.clone()),
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                        Err(e) => return Err(io_err(&cur, e)),
                    }
                }
            }
        }
    }
    Ok(made)
}
