//! estiba's cgroup layer, on top of youki's `libcgroups`.
//!
//! This crate decides *where* a container's cgroup lives and wraps the
//! libcgroups managers behind one small type, [`Cgroup`], so the runtime never
//! cares whether the host runs cgroup v1, hybrid or v2.

use std::path::{Component, Path, PathBuf};

use libcgroups::common::{
    create_cgroup_manager, AnyCgroupManager, CgroupConfig, CgroupManager, ControllerOpt,
    FreezerState,
};
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;

pub use libcgroups::common::CgroupSetup;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cgroup path {path:?}: {reason}")]
    InvalidPath { path: PathBuf, reason: &'static str },
    #[error("cannot set up cgroup {path:?}: {msg}")]
    Setup { path: PathBuf, msg: String },
    #[error("cannot apply linux.resources to cgroup {path:?}: {msg}")]
    Apply { path: PathBuf, msg: String },
    #[error("cannot add pid {pid} to cgroup {path:?}: {msg}")]
    AddTask {
        path: PathBuf,
        pid: i32,
        msg: String,
    },
    #[error("cannot remove cgroup {path:?}: {msg}")]
    Remove { path: PathBuf, msg: String },
    #[error("cgroup {path:?}: {msg}")]
    Other { path: PathBuf, msg: String },
    #[error("the systemd cgroup driver is not supported yet; drop --systemd-cgroup")]
    SystemdUnsupported,
}

pub type Result<T> = std::result::Result<T, Error>;

/// Which cgroup layout the host has (v1, hybrid or pure v2).
pub fn setup() -> Option<CgroupSetup> {
    libcgroups::common::get_cgroup_setup().ok()
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
    // libcgroups joins relative paths to each hierarchy's mount point,
    // which is what an absolute path means too: normalise to absolute.
    Ok(if raw.is_absolute() {
        raw
    } else {
        Path::new("/").join(raw)
    })
}

/// One container's cgroup, across every hierarchy the host has.
pub struct Cgroup {
    path: PathBuf,
    manager: AnyCgroupManager,
}

impl Cgroup {
    /// A handle on the cgroup at `path` (see [`container_path`]); creates
    /// nothing until a task is added.
    pub fn open(path: &Path, systemd: bool) -> Result<Self> {
        if systemd {
            return Err(Error::SystemdUnsupported);
        }
        let manager = create_cgroup_manager(CgroupConfig {
            cgroup_path: path.to_path_buf(),
            systemd_cgroup: false,
            container_name: String::new(),
        })
        .map_err(|e| Error::Setup {
            path: path.to_path_buf(),
            msg: e.to_string(),
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            manager,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates the cgroup (where missing), moves `pid` into it, then applies
    /// the limits, so the process is limited before it runs user code.
    pub fn enter_and_apply(
        &self,
        pid: i32,
        resources: Option<&LinuxResources>,
        oom_score_adj: Option<i32>,
    ) -> Result<()> {
        self.manager
            .add_task(Pid::from_raw(pid))
            .map_err(|e| Error::AddTask {
                path: self.path.clone(),
                pid,
                msg: e.to_string(),
            })?;
        let default_resources = LinuxResources::default();
        let resources = resources.unwrap_or(&default_resources);
        let opt = ControllerOpt {
            resources,
            disable_oom_killer: resources
                .memory()
                .as_ref()
                .and_then(|m| m.disable_oom_killer())
                .unwrap_or(false),
            oom_score_adj,
            freezer_state: None,
        };
        self.manager.apply(&opt).map_err(|e| Error::Apply {
            path: self.path.clone(),
            msg: e.to_string(),
        })
    }

    /// Every pid in the cgroup (all hierarchies agree; libcgroups reads one).
    pub fn pids(&self) -> Result<Vec<i32>> {
        self.manager
            .get_all_pids()
            .map(|v| v.into_iter().map(|p| p.as_raw()).collect())
            .map_err(|e| Error::Other {
                path: self.path.clone(),
                msg: e.to_string(),
            })
    }

    pub fn freeze(&self, frozen: bool) -> Result<()> {
        let state = if frozen {
            FreezerState::Frozen
        } else {
            FreezerState::Thawed
        };
        self.manager.freeze(state).map_err(|e| Error::Other {
            path: self.path.clone(),
            msg: e.to_string(),
        })
    }

    /// Kills whatever is left in the cgroup and removes it from every
    /// hierarchy. Removing a cgroup that is already gone is not an error.
    pub fn remove(&self) -> Result<()> {
        self.manager.remove().map_err(|e| Error::Remove {
            path: self.path.clone(),
            msg: e.to_string(),
        })
    }
}

/// Whether the container's freezer says it is frozen (v1 `freezer.state`,
/// v2 `cgroup.freeze`). Any read error counts as "not frozen".
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
}
