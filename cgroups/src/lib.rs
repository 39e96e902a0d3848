#![deny(missing_docs)]
// Every type a public item exposes can be named by users (issue 15).
#![deny(unnameable_types)]
//! estiba's cgroup layer.
//!
//! Placement — creating the container's cgroup in every hierarchy, moving
//! the init in, listing, signalling, freezing and removing — is done here
//! from one read of mountinfo: it is on the path of every `create` and
//! `delete`, and libcgroups' managers cost ~2 ms each to build (a procfs
//! handle and a mountinfo parse per controller). Resource limits are applied
//! through youki's `libcgroups`, except the v1 device rules, which every
//! container needs and which are a handful of writes.

mod dbus;
mod devfilter;
mod devices;
mod files;
mod freezer;
mod gaps;
mod limits;
mod make;
mod paths;
mod remove;
mod rootless;
mod text;
/// The device programs attached to a v2 cgroup directory.
pub use devfilter::attached as attached_device_programs;
/// The statistics types `Cgroup::stats` returns (libcgroups').
pub use libcgroups::stats;
pub use paths::{cgroup_path, container_path};
pub use text::read_text;
pub mod hierarchy;
mod sys;
pub mod systemd;

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use hierarchy::Hierarchy;
use make::{create_dir, enable_controllers};
use oci_spec::runtime::LinuxResources;
use remove::collect_pids;

/// What went wrong with a cgroup.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `cgroupsPath` is not one this runtime takes.
    #[error("cgroup path {path:?}: {reason}")]
    InvalidPath {
        /// The path given.
        path: PathBuf,
        /// Why not.
        reason: &'static str,
    },
    /// No cgroup filesystem is mounted at all.
    #[error("no cgroup hierarchy is mounted")]
    NoHierarchy,
    /// Reading or writing a cgroup file failed.
    #[error("cgroup {path:?}: {msg}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What failed, with the errno.
        msg: String,
    },
    /// A limit could not be applied (the field named in `msg`).
    #[error("cannot apply linux.resources to cgroup {path:?}: {msg}")]
    Apply {
        /// The container's cgroup.
        path: PathBuf,
        /// What failed.
        msg: String,
    },
    /// The cgroup could not be removed.
    #[error("cannot remove cgroup {path:?}: {msg}")]
    Remove {
        /// The container's cgroup.
        path: PathBuf,
        /// What failed.
        msg: String,
    },
    /// systemd refused or did not answer.
    #[error("systemd cgroup driver: {0}")]
    Systemd(String),
    /// The kernel refused access to a cgroup file or directory (EACCES,
    /// EPERM, EROFS): what a runtime without root meets where it owns no
    /// cgroup.
    #[error("cgroup {path:?}: {msg}")]
    Denied {
        /// The file or directory.
        path: PathBuf,
        /// What failed, with the errno.
        msg: String,
    },
}

/// A result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

fn io_err(path: &Path, e: std::io::Error) -> Error {
    let (path, msg) = (path.to_path_buf(), errno_text(&e));
    if is_denial(&e) {
        Error::Denied { path, msg }
    } else {
        Error::Io { path, msg }
    }
}

fn is_denial(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EACCES | libc::EPERM | libc::EROFS)
    )
}

/// "no such file or directory", as runc words errnos.
pub(crate) fn errno_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    let s = s.split(" (os error").next().unwrap_or(&s).to_string();
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => s,
    }
}

/// One container's cgroup, across every hierarchy the host has.
#[derive(Debug, Clone)]
pub struct Cgroup {
    path: PathBuf,
    dirs: Vec<(Hierarchy, PathBuf)>,
    unified: bool,
    /// With the systemd driver: the unit that owns the cgroup.
    unit: Option<systemd::Unit>,
    /// Made by a runtime without root: device rules it cannot apply are
    /// left out (see `rootless.rs`).
    rootless: bool,
}

/// Moves the calling thread into the v1 cgroups whose `tasks` files are
/// given (a [`Placement`]'s): "0" names the writer, which the kernel moves
/// without the global thread-group lock a move by pid takes. For a
/// single-threaded process that moves the process.
pub fn join_as_current_thread(tasks: &[PathBuf]) -> Result<()> {
    tasks.iter().try_for_each(|t| write(t, "0"))
}

/// The cgroup made before its first process, and how that process gets in
/// (see [`Cgroup::make_before_clone`]).
pub struct Placement {
    /// The v2 directory to clone the process into.
    pub clone_into: Option<std::fs::File>,
    /// The v1 `tasks` files the process writes "0" to.
    pub tasks: Vec<PathBuf>,
    /// The parents made, as [`Cgroup::create`] returns them.
    pub parents_made: Vec<PathBuf>,
}

impl Cgroup {
    /// A handle on the cgroup at `path`; touches nothing.
    pub fn open(path: &Path, systemd: bool) -> Result<Self> {
        let unit = if systemd {
            Some(systemd::Unit::of_path(path)?)
        } else {
            None
        };
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
            unit,
            rootless: false,
        })
    }

    /// The hierarchies this handle was opened on (the mount table read
    /// once, by `open`).
    pub fn hierarchies(&self) -> Vec<Hierarchy> {
        self.dirs.iter().map(|(h, _)| h.clone()).collect()
    }

    /// Makes the container's cgroup and moves `pid` in: with the systemd
    /// driver systemd makes it (a transient unit holding `pid`, with the
    /// limits systemd knows), then, as without it, it is created in every
    /// hierarchy that lacks it. `apply` writes the limits after. Returns
    /// the parent directories it made, deepest first: the `parents_made`
    /// that [`Cgroup::remove`] and [`Cgroup::remove_if_unused`] take.
    pub fn create(&self, pid: i32, resources: Option<&LinuxResources>) -> Result<Vec<PathBuf>> {
        if let Some(unit) = &self.unit {
            systemd::start(unit, pid, resources, self.unified)?;
            return self.enter_making(pid).inspect_err(|_| {
                let _ = self.remove(&[]);
            });
        }
        self.enter_making(pid)
    }

    /// With the cgroupfs driver: plans how the container's first process
    /// gets into the cgroup without being moved by pid, and makes what
    /// must exist before that process does (the v2 directory; the v1 ones
    /// are [`Cgroup::make_v1`]'s, which may run while the process starts).
    /// Moving a process by pid (`cgroup.procs`, or `tasks` with a pid)
    /// takes the kernel's thread-group lock for writing, which
    /// waits for an RCU grace period unless another migration took it
    /// within the last one: ~8-15 ms on this machine for a create not
    /// preceded by another. Instead the v2 hierarchy (pure v2, or a hybrid
    /// host's unified one) gets the process at birth (clone3's
    /// CLONE_INTO_CGROUP into [`Placement::clone_into`]), and in each v1
    /// hierarchy the process, single-threaded, writes "0" to
    /// [`Placement::tasks`] itself: a thread moving itself needs no lock
    /// beyond the cgroup mutex.
    ///
    /// `None` where a process must be moved in by pid afterwards anyway:
    /// systemd (it places the process), rootless, and v1 hierarchies when
    /// `self_join` is false (a process in a user namespace may not write
    /// the host's cgroup files).
    pub fn make_before_clone(&self, self_join: bool) -> Result<Option<Placement>> {
        if self.unit.is_some() || self.rootless || (!self.unified && !self_join) {
            return Ok(None);
        }
        self.check_not_frozen()?;
        let mut placement = Placement {
            clone_into: None,
            tasks: vec![],
            parents_made: vec![],
        };
        for (h, dir) in &self.dirs {
            if !h.v2 {
                placement.tasks.push(dir.join("tasks"));
                continue;
            }
            placement.parents_made.extend(self.make_one(h, dir)?);
            let opened = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
                .open(dir)
                .map_err(|e| Error::Io {
                    path: dir.clone(),
                    msg: format!("open: {e}"),
                })?;
            placement.clone_into = Some(opened);
        }
        Ok(Some(placement))
    }

    /// Makes the cgroup in every v1 hierarchy that lacks it (the rest of a
    /// [`Placement`]: before its process writes to the `tasks` files);
    /// returns the parents made, as [`Cgroup::create`].
    pub fn make_v1(&self) -> Result<Vec<PathBuf>> {
        let mut made = vec![];
        for (h, dir) in self.dirs.iter().filter(|(h, _)| !h.v2) {
            made.extend(self.make_one(h, dir)?);
        }
        Ok(made)
    }

    /// The cgroup path (relative to each hierarchy's root).
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

    /// Moves `pid` into the cgroup, creating it in every hierarchy that
    /// lacks it (the init through [`Cgroup::create`]; exec'd processes).
    pub fn enter(&self, pid: i32) -> Result<()> {
        self.enter_making(pid).map(|_| ())
    }

    fn enter_making(&self, pid: i32) -> Result<Vec<PathBuf>> {
        self.check_not_frozen()?;
        let mut made = vec![];
        for (h, dir) in &self.dirs {
            made.extend(self.enter_one(h, dir, pid)?);
        }
        Ok(made)
    }

    /// Makes the cgroup in one hierarchy and moves `pid` in; returns the
    /// parents made, deepest first.
    fn enter_one(&self, h: &Hierarchy, dir: &Path, pid: i32) -> Result<Vec<PathBuf>> {
        let parents = self.make_one(h, dir)?;
        write(&dir.join("cgroup.procs"), &pid.to_string())?;
        Ok(parents)
    }

    /// Makes the cgroup in one hierarchy (on v2 with its controllers
    /// enabled down the path); returns the parents made, deepest first.
    fn make_one(&self, h: &Hierarchy, dir: &Path) -> Result<Vec<PathBuf>> {
        let mut parents = vec![];
        if h.v2 && self.unified {
            parents = enable_controllers(&h.mount_point, dir)?;
        }
        parents.extend(create_dir(h, dir)?);
        parents.reverse();
        Ok(parents)
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
            // Exec into an existing container: nothing new to track.
            let _ = create_dir(h, dir)?;
            write(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// Moves `pid` into existing sub-cgroups of this one (`exec --cgroup`):
    /// `subs` pairs a v1 controller (None: every hierarchy) with a path
    /// below the container's cgroup, which the caller has checked holds
    /// only normal components. With `unfrozen` the freezer hierarchy is
    /// left out (a process that must run in a paused container, v1).
    pub fn enter_sub(
        &self,
        pid: i32,
        subs: &[(Option<String>, String)],
        unfrozen: bool,
    ) -> Result<()> {
        if self.unified && subs.iter().any(|(c, _)| c.is_some()) {
            return Err(Error::InvalidPath {
                path: self.path.clone(),
                reason: "on cgroup v2 a sub-cgroup is a path, without a controller",
            });
        }
        for (ctrl, _) in subs {
            if let Some(c) = ctrl {
                if !self.dirs.iter().any(|(h, _)| h.has(c)) {
                    return Err(Error::Io {
                        path: self.path.clone(),
                        msg: format!("unknown controller {c} in --cgroup"),
                    });
                }
            }
        }
        if unfrozen && self.unified {
            return Err(Error::Io {
                path: self.path.clone(),
                msg: "a process cannot run unfrozen in a frozen cgroup v2".into(),
            });
        }
        for (h, dir) in &self.dirs {
            if unfrozen && h.has("freezer") {
                continue;
            }
            let sub = subs.iter().find(|(c, _)| match c {
                None => true,
                Some(c) => h.has(c),
            });
            let target = match sub {
                Some((_, p)) => dir.join(p),
                None => dir.clone(),
            };
            if !target.is_dir() {
                return Err(Error::Io {
                    path: target,
                    msg: "no such sub-cgroup (exec --cgroup takes an existing one)".into(),
                });
            }
            write(&target.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
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

    /// Freezes or thaws; returns once the kernel reports it done (bounded).
    pub fn freeze(&self, frozen: bool) -> Result<()> {
        let dir = self.freezer_dir().ok_or_else(|| Error::Io {
            path: self.path.clone(),
            msg: "the container has no freezer cgroup (made without root where the user owns none)"
                .into(),
        })?;
        freezer::set(dir, self.unified, frozen)
    }

    /// The directory whose freezer pauses the container (v2: the cgroup
    /// itself; v1: its freezer hierarchy's), if it has one.
    pub fn freezer_dir(&self) -> Option<&Path> {
        self.dir_of(if self.unified { "" } else { "freezer" })
    }

    /// A cgroup that is already frozen would hold a process put into it
    /// forever: refused, as runc refuses it.
    fn check_not_frozen(&self) -> Result<()> {
        match self.freezer_dir() {
            Some(dir) if freezer::frozen_at(dir, self.unified) => Err(Error::Io {
                path: self.path.clone(),
                msg: "container's cgroup unexpectedly frozen".into(),
            }),
            _ => Ok(()),
        }
    }
}

/// Whether the container's freezer says it is frozen. A read error counts
/// as "not frozen".
pub fn is_frozen(path: &Path) -> bool {
    let rel = path.strip_prefix("/").unwrap_or(path);
    let v1 = Path::new("/sys/fs/cgroup/freezer")
        .join(rel)
        .join("freezer.state");
    if let Ok(s) = crate::read_text(&v1) {
        return s.trim() == "FROZEN";
    }
    let v2 = Path::new("/sys/fs/cgroup").join(rel).join("cgroup.freeze");
    matches!(crate::read_text(v2), Ok(s) if s.trim() == "1")
}

fn write(path: &Path, value: &str) -> Result<()> {
    let mut f = open_for_writes(path)?;
    write_to(&mut f, path, value)
}

/// A control file opened for writing, for a caller with several values
/// for it (each write(2) is one value to the kernel).
fn open_for_writes(path: &Path) -> Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| io_err(path, e))
}

fn write_to(f: &mut std::fs::File, path: &Path, value: &str) -> Result<()> {
    f.write_all(value.as_bytes()).map_err(|e| {
        let (path, msg) = (
            path.to_path_buf(),
            format!("write {value:?}: {}", errno_text(&e)),
        );
        if is_denial(&e) {
            Error::Denied { path, msg }
        } else {
            Error::Io { path, msg }
        }
    })
}
