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
mod rootless;
mod text;
/// The device programs attached to a v2 cgroup directory.
pub use devfilter::attached as attached_device_programs;
/// The statistics types `Cgroup::stats` returns (libcgroups').
pub use libcgroups::stats;
pub use text::read_text;
pub mod hierarchy;
mod sys;
pub mod systemd;

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use hierarchy::Hierarchy;
use oci_spec::runtime::LinuxResources;

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

/// The cgroup path a container gets from `linux.cgroupsPath`: with the
/// systemd driver its `slice:prefix:name` form, else [`container_path`].
pub fn cgroup_path(cgroups_path: Option<&Path>, id: &str, systemd: bool) -> Result<PathBuf> {
    if systemd {
        let raw = match cgroups_path.map(|p| p.to_str()) {
            Some(None) => {
                return Err(Error::InvalidPath {
                    path: cgroups_path.map(Path::to_path_buf).unwrap_or_default(),
                    reason: "is not UTF-8",
                })
            }
            Some(Some(s)) => Some(s),
            None => None,
        };
        return systemd::container_path(raw, id);
    }
    container_path(cgroups_path, id)
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
    if raw.is_absolute() {
        return Ok(raw);
    }
    // Relative (and the default): under the runtime's own cgroup, as runc
    // does; on v2 under its parent (the runtime's own cgroup holds
    // processes, so it cannot delegate controllers to a child).
    let own = crate::read_text("/proc/self/cgroup").unwrap_or_default();
    Ok(Path::new("/").join(own_base(&own)).join(raw))
}

/// Where relative cgroup paths start, from /proc/self/cgroup: on v2 the
/// parent of our cgroup, on v1 (and hybrid) our memory/pids cgroup.
fn own_base(proc_self_cgroup: &str) -> PathBuf {
    let lines: Vec<(&str, &str)> = proc_self_cgroup
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
            Some((ctrls, path))
        })
        .collect();
    let v1 = lines
        .iter()
        .find(|(c, _)| c.split(',').any(|c| c == "memory" || c == "pids"));
    let rel = |p: &str| PathBuf::from(p.trim_start_matches('/'));
    match v1 {
        Some((_, p)) => rel(p),
        None => lines
            .iter()
            .find(|(c, _)| c.is_empty())
            .map(|(_, p)| rel(p).parent().map(Path::to_path_buf).unwrap_or_default())
            .unwrap_or_default(),
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

    /// Kills what is left inside and removes the cgroup (sub-cgroups
    /// first) from every hierarchy, then the `parents_made` by its create
    /// that are empty. Already gone is not an error.
    pub fn remove(&self, parents_made: &[PathBuf]) -> Result<()> {
        self.remove_with(true, parents_made).map(|_| ())
    }

    /// Removes the cgroup once the container's own processes are gone (a
    /// failed `create`; `delete` of a container whose processes died with
    /// its pid namespace). A cgroup that other processes still use (a
    /// `cgroupsPath` shared with a running container) is left to them,
    /// never emptied by force, and so are its parents. Returns the
    /// directories left so.
    pub fn remove_if_unused(&self, parents_made: &[PathBuf]) -> Result<Vec<PathBuf>> {
        self.remove_with(false, parents_made)
    }

    fn remove_with(&self, kill: bool, parents_made: &[PathBuf]) -> Result<Vec<PathBuf>> {
        if let Some(unit) = &self.unit {
            // systemd removes the cgroup it made (in every hierarchy it
            // manages); the rest are ours.
            let systemd_dir = self
                .dirs
                .iter()
                .find(|(h, _)| (h.v2 && self.unified) || h.has("name=systemd"))
                .map(|(_, d)| d.as_path());
            systemd::stop(unit, systemd_dir)?;
        }
        let mut in_use = vec![];
        for (_, dir) in &self.dirs {
            if !remove_tree(dir, kill)? {
                in_use.push(dir.clone());
            }
        }
        if in_use.is_empty() {
            // Deepest first; one that holds another container's cgroup is
            // not empty and stays.
            for d in parents_made {
                let _ = std::fs::remove_dir(d);
            }
        }
        Ok(in_use)
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

/// mkdir -p; returns the levels above `dir` it made (top first). On v1
/// cpuset every level from the mount point down gets its parent's cpus and
/// mems when it has none, or no task could join it. That includes levels
/// another process made: a concurrent create may have made a shared parent
/// and not filled it yet (ENOSPC on join otherwise). A parent that a
/// concurrent delete removes under us (ENOENT) is made again.
fn create_dir(h: &Hierarchy, dir: &Path) -> Result<Vec<PathBuf>> {
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
fn enable_controllers(root: &Path, dir: &Path) -> Result<Vec<PathBuf>> {
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

fn collect_pids(dir: &Path, out: &mut Vec<i32>) -> Result<()> {
    let procs = match crate::read_text(dir.join("cgroup.procs")) {
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

/// Removes `dir` and its sub-cgroups, retrying while the kernel finishes
/// tearing tasks down (EBUSY); with `kill`, killing what still runs there,
/// else leaving a cgroup that is still in use (then false).
fn remove_tree(dir: &Path, kill: bool) -> Result<bool> {
    // Most cgroups have no child: one rmdir, no directory read.
    match std::fs::remove_dir(dir) {
        Ok(()) => return Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
        Err(_) => {}
    }
    let mut children_gone = true;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) && !remove_tree(&e.path(), kill)?
            {
                children_gone = false;
            }
        }
    }
    if !children_gone {
        return Ok(false);
    }
    let deadline = Instant::now() + Duration::from_secs(if kill { 5 } else { 1 });
    let mut pause = Duration::from_micros(200);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
            Err(e) if e.raw_os_error() == Some(libc_ebusy()) && Instant::now() < deadline => {
                let mut pids = vec![];
                let _ = collect_pids(dir, &mut pids);
                // A process already killed (a create's init whose runtime
                // died before recording it: its death signal is pending)
                // is waited for, not taken for another user's.
                if !kill && !pids.iter().all(|&p| dying(p)) {
                    return Ok(false);
                }
                if kill {
                    for pid in pids {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pid),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                    }
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

/// Whether `pid` is gone, exiting, or has SIGKILL pending.
fn dying(pid: i32) -> bool {
    crate::read_text(format!("/proc/{pid}/status")).map_or(true, |s| dying_from_status(&s))
        || crate::read_text(format!("/proc/{pid}/stat")).map_or(true, |s| exiting_from_stat(&s))
}

/// Whether /proc/PID/stat's flags (field 9) have PF_EXITING: a process
/// that took its SIGKILL and is in its exit (undoing its namespaces can
/// take a while) has no signal pending any more and is not a zombie yet.
fn exiting_from_stat(stat: &str) -> bool {
    const PF_EXITING: u64 = 0x4;
    // The command name (field 2) may hold spaces and parentheses: count
    // from the last ')'. After it: state (3), ppid, pgrp, session,
    // tty_nr, tpgid, flags (9).
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(6))
        .and_then(|f| f.parse::<u64>().ok())
        .is_some_and(|flags| flags & PF_EXITING != 0)
}

fn dying_from_status(status: &str) -> bool {
    let kill_bit = 1u64 << (libc::SIGKILL - 1);
    status.lines().any(|l| match l.split_once(':') {
        Some(("State", v)) => matches!(v.trim().chars().next(), Some('Z' | 'X')),
        Some(("SigPnd" | "ShdPnd", v)) => {
            u64::from_str_radix(v.trim(), 16).is_ok_and(|m| m & kill_bit != 0)
        }
        _ => false,
    })
}

fn libc_ebusy() -> i32 {
    nix::errno::Errno::EBUSY as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_sigkill_or_an_exit_reads_as_dying() {
        let live = "Name:\tsleep\nState:\tS (sleeping)\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000000\n";
        assert!(!dying_from_status(live));
        assert!(dying_from_status(&live.replace(
            "ShdPnd:\t0000000000000000",
            "ShdPnd:\t0000000000000100"
        )));
        assert!(dying_from_status(&live.replace(
            "SigPnd:\t0000000000000000",
            "SigPnd:\t0000000000000100"
        )));
        // SIGTERM (bit 14) pending is not a death.
        assert!(!dying_from_status(&live.replace(
            "ShdPnd:\t0000000000000000",
            "ShdPnd:\t0000000000004000"
        )));
        assert!(dying_from_status(
            &live.replace("S (sleeping)", "Z (zombie)")
        ));
        assert!(!dying(std::process::id() as i32));
    }

    #[test]
    fn an_exit_under_way_reads_as_dying() {
        // PF_EXITING (0x4) in the flags; a name with ") " in it.
        let stat = |flags: u32| format!("42 (a) b) R 1 42 42 0 -1 {flags} 0 0 0 0 5 6");
        assert!(exiting_from_stat(&stat(0x404044)));
        assert!(!exiting_from_stat(&stat(0x404040)));
        let own = std::fs::read_to_string("/proc/self/stat").unwrap();
        assert!(!exiting_from_stat(&own));
    }

    #[test]
    fn default_and_relative_paths_start_at_our_own_cgroup() {
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let base = Path::new("/").join(own_base(&own));
        assert_eq!(container_path(None, "abc").unwrap(), base.join("abc"));
        assert_eq!(
            container_path(Some(Path::new("")), "abc").unwrap(),
            base.join("abc")
        );
        assert_eq!(
            container_path(Some(Path::new("a/b")), "x").unwrap(),
            base.join("a/b")
        );
        assert_eq!(
            container_path(Some(Path::new("/a/b")), "x").unwrap(),
            PathBuf::from("/a/b")
        );
    }

    #[test]
    fn own_base_v1_hybrid_and_v2() {
        let v1 = "12:pids:/user.slice/s1\n4:memory:/user.slice/s1\n0::/user.slice/s1\n";
        assert_eq!(own_base(v1), PathBuf::from("user.slice/s1"));
        let v2 = "0::/system.slice/containerd.service\n";
        assert_eq!(own_base(v2), PathBuf::from("system.slice"));
        assert_eq!(own_base("0::/\n"), PathBuf::from(""));
        assert_eq!(own_base(""), PathBuf::from(""));
    }

    #[test]
    fn dotdot_is_refused() {
        assert!(container_path(Some(Path::new("/a/../../etc")), "x").is_err());
    }
}
