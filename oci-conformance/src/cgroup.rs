//! Reading a container's cgroup from the host: v1 (one hierarchy per
//! controller) or v2 (one tree).

use std::path::{Path, PathBuf};

const ROOT: &str = "/sys/fs/cgroup";

pub fn v2() -> bool {
    Path::new(ROOT).join("cgroup.controllers").exists()
}

/// The directory holding `controller`'s files for `path`, if the host has
/// that controller.
pub fn dir(controller: &str, path: &str) -> Option<PathBuf> {
    let rel = path.trim_start_matches('/');
    if v2() {
        let ctrls = std::fs::read_to_string(Path::new(ROOT).join("cgroup.controllers")).ok()?;
        let known = controller.is_empty() || ctrls.split_whitespace().any(|c| c == controller);
        return known.then(|| Path::new(ROOT).join(rel));
    }
    let base = Path::new(ROOT).join(if controller.is_empty() {
        "pids"
    } else {
        controller
    });
    base.join("cgroup.procs").exists().then(|| base.join(rel))
}

/// One file of the container's cgroup, trimmed.
pub fn read(controller: &str, path: &str, file: &str) -> Option<String> {
    let d = dir(controller, path)?;
    std::fs::read_to_string(d.join(file))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Every directory that exists for `path`, across hierarchies.
pub fn existing(path: &str) -> Vec<PathBuf> {
    let rel = path.trim_start_matches('/');
    if rel.is_empty() {
        return vec![];
    }
    if v2() {
        let d = Path::new(ROOT).join(rel);
        return if d.is_dir() { vec![d] } else { vec![] };
    }
    std::fs::read_dir(ROOT)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join(rel))
        .filter(|d| d.is_dir())
        .collect()
}

/// Best-effort cleanup after a check (a runtime that failed to remove it).
pub fn remove(path: &str) {
    for d in existing(path) {
        let _ = std::fs::remove_dir(&d);
    }
}
