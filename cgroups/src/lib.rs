//! estiba's cgroup layer.
//!
//! Placement — creating the container's cgroup in every hierarchy, moving
//! the init in, listing, signalling, freezing and removing — is done here
//! from one read of mountinfo: it is on the path of every `create` and
//! `delete`, and libcgroups' managers cost ~2 ms each to build (a procfs
//! handle and a mountinfo parse per controller). Resource limits are applied
//! through youki's `libcgroups`, except the v1 device rules, which every
//! container needs and which are a handful of writes.

mod devices;
/// The statistics types `Cgroup::stats` returns (libcgroups').
pub use libcgroups::stats;
pub mod hierarchy;

use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use hierarchy::Hierarchy;
use oci_spec::runtime::LinuxResources;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cgroup path {path:?}: {reason}")]
    InvalidPath { path: PathBuf, reason: &'static str },
    #[error("no cgroup hierarchy is mounted")]
    NoHierarchy,
    #[error("cgroup {path:?}: {msg}")]
    Io { path: PathBuf, msg: String },
    #[error("cannot apply linux.resources to cgroup {path:?}: {msg}")]
    Apply { path: PathBuf, msg: String },
    #[error("cannot remove cgroup {path:?}: {msg}")]
    Remove { path: PathBuf, msg: String },
    #[error("the systemd cgroup driver is not supported yet; drop --systemd-cgroup")]
    SystemdUnsupported,
}

pub type Result<T> = std::result::Result<T, Error>;

fn io_err(path: &Path, e: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        msg: errno_text(&e),
    }
}

/// "no such file or directory", as runc words errnos.
fn errno_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    let s = s.split(" (os error").next().unwrap_or(&s).to_string();
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => s,
    }
}

/// The cgroup path a container gets: `linux.cgroupsPath` when given, else
/// `/<id>`. A path that climbs out with `..` is refused.
pub fn container_path(cgroups_path: Option<&Path>, id: &str) -> Result<PathBuf> {
    let raw = match cgroups_path {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("/").join(id),
    };
    if raw.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(Error::InvalidPath {
            path: raw,
            reason: "must not contain '..'",
        });
    }
    // Relative paths are taken from the hierarchy roots, as absolute ones.
    Ok(if raw.is_absolute() {
        raw
    } else {
        Path::new("/").join(raw)
    })
}

/// One container's cgroup, across every hierarchy the host has.
pub struct Cgroup {
    path: PathBuf,
    dirs: Vec<(Hierarchy, PathBuf)>,
    unified: bool,
}

impl Cgroup {
    /// A handle on the cgroup at `path`; touches nothing.
    pub fn open(path: &Path, systemd: bool) -> Result<Self> {
        if systemd {
            return Err(Error::SystemdUnsupported);
        }
        let hs = hierarchy::host();
        if hs.is_empty() {
            return Err(Error::NoHierarchy);
        }
        let unified = hierarchy::is_unified(&hs);
        let dirs = hs
            .into_iter()
            .map(|h| {
                let d = hierarchy::join(&h, path);
                (h, d)
            })
            .collect();
        Ok(Cgroup {
            path: path.to_path_buf(),
            dirs,
            unified,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The container's directory in the hierarchy holding `controller`
    /// (v1), or in the unified hierarchy.
    pub fn dir_of(&self, controller: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|(h, _)| {
                if self.unified {
                    h.v2
                } else {
                    h.has(controller)
                }
            })
            .map(|(_, d)| d.as_path())
    }

    /// Creates the cgroup in every hierarchy and moves `pid` into it.
    pub fn enter(&self, pid: i32) -> Result<()> {
        for (h, dir) in &self.dirs {
            if h.v2 && self.unified {
                enable_controllers(&h.mount_point, dir)?;
            }
            create_dir(h, dir)?;
            write(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// Like [`Cgroup::enter`], but outside the freezer: for a process that
    /// must run while the rest of the container is paused (v1 only; on v2
    /// the freezer is the cgroup itself).
    pub fn enter_unfrozen(&self, pid: i32) -> Result<()> {
        if self.unified {
            return Err(Error::Io {
                path: self.path.clone(),
                msg: "a process cannot run unfrozen in a frozen cgroup v2".into(),
            });
        }
        for (h, dir) in self.dirs.iter().filter(|(h, _)| !h.has("freezer")) {
            create_dir(h, dir)?;
            write(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// Applies `linux.resources`. Device rules on v1 are written here;
    /// everything else goes through libcgroups.
    pub fn apply(&self, resources: Option<&LinuxResources>) -> Result<()> {
        if resources.is_some_and(needs_libcgroups) {
            return self.apply_with_libcgroups(resources.unwrap_or(&LinuxResources::default()));
        }
        if !self.unified {
            if let Some(dir) = self.dir_of("devices") {
                devices::apply_v1(
                    dir,
                    resources
                        .and_then(|r| r.devices().as_deref())
                        .unwrap_or_default(),
                )?;
            }
        }
        Ok(())
    }

    /// `update`: applies only what `resources` holds.
    pub fn update(&self, resources: &LinuxResources) -> Result<()> {
        if needs_libcgroups(resources) {
            self.apply_with_libcgroups(resources)?;
        }
        if let (false, Some(rules), Some(dir)) = (
            self.unified,
            resources.devices().as_deref(),
            self.dir_of("devices"),
        ) {
            devices::apply_v1(dir, rules)?;
        }
        Ok(())
    }

    /// A libcgroups manager for this cgroup (built only where limits or
    /// statistics need it: building one costs ~2 ms). Its errors are
    /// turned into ours by `wrap`.
    fn libcgroups_manager(
        &self,
        wrap: impl Fn(String) -> Error,
    ) -> Result<libcgroups::common::AnyCgroupManager> {
        use libcgroups::common::{create_cgroup_manager, CgroupConfig};
        create_cgroup_manager(CgroupConfig {
            cgroup_path: self.path.clone(),
            systemd_cgroup: false,
            container_name: String::new(),
        })
        .map_err(|e| wrap(e.to_string()))
    }

    fn apply_with_libcgroups(&self, resources: &LinuxResources) -> Result<()> {
        use libcgroups::common::{CgroupManager, ControllerOpt};
        let apply_err = |msg: String| Error::Apply {
            path: self.path.clone(),
            msg,
        };
        let manager = self.libcgroups_manager(apply_err)?;
        let opt = ControllerOpt {
            resources,
            disable_oom_killer: resources
                .memory()
                .as_ref()
                .and_then(|m| m.disable_oom_killer())
                .unwrap_or(false),
            oom_score_adj: None,
            freezer_state: None,
        };
        manager.apply(&opt).map_err(|e| apply_err(e.to_string()))
    }

    /// Usage and limits, as libcgroups reads them.
    pub fn stats(&self) -> Result<libcgroups::stats::Stats> {
        use libcgroups::common::CgroupManager;
        let err = |msg: String| Error::Io {
            path: self.path.clone(),
            msg,
        };
        self.libcgroups_manager(err)?
            .stats()
            .map_err(|e| err(e.to_string()))
    }

    /// How many times the kernel's OOM killer killed in this cgroup (v1
    /// memory.oom_control, v2 memory.events).
    pub fn oom_kills(&self) -> u64 {
        let (file, dir) = if self.unified {
            ("memory.events", self.dir_of(""))
        } else {
            ("memory.oom_control", self.dir_of("memory"))
        };
        dir.and_then(|d| std::fs::read_to_string(d.join(file)).ok())
            .and_then(|text| {
                text.lines().find_map(|l| {
                    l.strip_prefix("oom_kill ")
                        .and_then(|v| v.trim().parse().ok())
                })
            })
            .unwrap_or(0)
    }

    /// Every pid in the cgroup (and its sub-cgroups).
    pub fn pids(&self) -> Result<Vec<i32>> {
        let Some(dir) = self
            .dir_of("pids")
            .or_else(|| self.dirs.first().map(|(_, d)| d.as_path()))
        else {
            return Ok(vec![]);
        };
        let mut out = vec![];
        collect_pids(dir, &mut out)?;
        Ok(out)
    }

    pub fn freeze(&self, frozen: bool) -> Result<()> {
        if self.unified {
            let dir = self.dir_of("").ok_or(Error::NoHierarchy)?;
            return write(&dir.join("cgroup.freeze"), if frozen { "1" } else { "0" });
        }
        let dir = self.dir_of("freezer").ok_or(Error::NoHierarchy)?;
        write(
            &dir.join("freezer.state"),
            if frozen { "FROZEN" } else { "THAWED" },
        )
    }

    /// Kills what is left inside and removes the cgroup (sub-cgroups
    /// first) from every hierarchy. Already gone is not an error.
    pub fn remove(&self) -> Result<()> {
        for (_, dir) in &self.dirs {
            remove_tree(dir)?;
        }
        Ok(())
    }
}

/// Whether the container's freezer says it is frozen. A read error counts
/// as "not frozen".
pub fn is_frozen(path: &Path) -> bool {
    let rel = path.strip_prefix("/").unwrap_or(path);
    let v1 = Path::new("/sys/fs/cgroup/freezer")
        .join(rel)
        .join("freezer.state");
    if let Ok(s) = std::fs::read_to_string(&v1) {
        return s.trim() == "FROZEN";
    }
    let v2 = Path::new("/sys/fs/cgroup").join(rel).join("cgroup.freeze");
    matches!(std::fs::read_to_string(v2), Ok(s) if s.trim() == "1")
}

/// Anything in `linux.resources` besides device rules.
fn needs_libcgroups(r: &LinuxResources) -> bool {
    r.memory().is_some()
        || r.cpu().is_some()
        || r.pids().is_some()
        || r.block_io().is_some()
        || r.hugepage_limits().as_ref().is_some_and(|v| !v.is_empty())
        || r.network().is_some()
        || r.rdma().as_ref().is_some_and(|v| !v.is_empty())
        || r.unified().as_ref().is_some_and(|v| !v.is_empty())
}

fn write(path: &Path, value: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| io_err(path, e))?;
    f.write_all(value.as_bytes()).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        msg: format!("write {value:?}: {}", errno_text(&e)),
    })
}

/// mkdir -p; a new v1 cpuset level copies its parent's cpus and mems, or no
/// task could join it.
fn create_dir(h: &Hierarchy, dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut missing = vec![];
    let mut cur = dir;
    while !cur.is_dir() && cur.starts_with(&h.mount_point) && cur != h.mount_point {
        missing.push(cur);
        cur = match cur.parent() {
            Some(p) => p,
            None => break,
        };
    }
    for d in missing.into_iter().rev() {
        match std::fs::create_dir(d) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err(d, e)),
        }
        if !h.v2 && h.has("cpuset") {
            for f in ["cpuset.cpus", "cpuset.mems"] {
                let mine = d.join(f);
                if std::fs::read_to_string(&mine)
                    .map(|s| s.trim().is_empty())
                    .unwrap_or(false)
                {
                    if let Some(parent) = d.parent() {
                        let value = std::fs::read_to_string(parent.join(f))
                            .map_err(|e| io_err(&parent.join(f), e))?;
                        write(&mine, value.trim())?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// v2: a cgroup only gets controller files for what its parent delegates;
/// delegate every available controller down to `dir`'s parent.
fn enable_controllers(root: &Path, dir: &Path) -> Result<()> {
    let Ok(rel) = dir.strip_prefix(root) else {
        return Ok(());
    };
    let mut cur = root.to_path_buf();
    let comps: Vec<_> = rel.components().collect();
    for comp in comps
        .iter()
        .take(comps.len().saturating_sub(1))
        .chain(std::iter::once(&Component::CurDir))
    {
        let avail = std::fs::read_to_string(cur.join("cgroup.controllers")).unwrap_or_default();
        let enabled =
            std::fs::read_to_string(cur.join("cgroup.subtree_control")).unwrap_or_default();
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
                    std::fs::create_dir(&cur)
                        .or_else(|e| {
                            if e.kind() == std::io::ErrorKind::AlreadyExists {
                                Ok(())
                            } else {
                                Err(e)
                            }
                        })
                        .map_err(|e| io_err(&cur, e))?;
                }
            }
        }
    }
    Ok(())
}

fn collect_pids(dir: &Path, out: &mut Vec<i32>) -> Result<()> {
    let procs = match std::fs::read_to_string(dir.join("cgroup.procs")) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(&dir.join("cgroup.procs"), e)),
    };
    out.extend(procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                collect_pids(&e.path(), out)?;
            }
        }
    }
    Ok(())
}

/// Removes `dir` and its sub-cgroups, killing what still runs there and
/// retrying while the kernel finishes tearing tasks down (EBUSY).
fn remove_tree(dir: &Path) -> Result<()> {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_tree(&e.path())?;
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut pause = Duration::from_micros(200);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc_ebusy()) && Instant::now() < deadline => {
                let mut pids = vec![];
                let _ = collect_pids(dir, &mut pids);
                for pid in pids {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(e) => {
                return Err(Error::Remove {
                    path: dir.to_path_buf(),
                    msg: errno_text(&e),
                })
            }
        }
    }
}

fn libc_ebusy() -> i32 {
    nix::errno::Errno::EBUSY as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_path_is_id_under_root() {
        assert_eq!(container_path(None, "abc").unwrap(), PathBuf::from("/abc"));
        assert_eq!(
            container_path(Some(Path::new("")), "abc").unwrap(),
            PathBuf::from("/abc")
        );
    }

    #[test]
    fn relative_path_becomes_absolute() {
        assert_eq!(
            container_path(Some(Path::new("a/b")), "x").unwrap(),
            PathBuf::from("/a/b")
        );
    }

    #[test]
    fn dotdot_is_refused() {
        assert!(container_path(Some(Path::new("/a/../../etc")), "x").is_err());
    }

    #[test]
    fn only_device_rules_skip_libcgroups() {
        let r: LinuxResources = serde_json_like(r#"{"devices":[{"allow":false,"access":"rwm"}]}"#);
        assert!(!needs_libcgroups(&r));
        let r: LinuxResources = serde_json_like(r#"{"pids":{"limit":5}}"#);
        assert!(needs_libcgroups(&r));
    }

    fn serde_json_like(s: &str) -> LinuxResources {
        serde_json::from_str(s).unwrap()
    }
}
