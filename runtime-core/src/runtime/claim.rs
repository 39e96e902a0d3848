//! What making a container starts with, shared by create and restore: the
//! id claimed (a locked state dir), the first state and the config copy
//! written, the cgroup planned; and the cleanup that undoes a create that
//! fails or is killed part-way.

use std::os::fd::OwnedFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::Hook;

use crate::config::bundle::Bundle;
use crate::error::{Error, Result};
use crate::runtime::state::{self, Saved};
use crate::{runtime::hooks, sys};

/// Undoes a half-made container when create (or restore) fails.
pub(crate) struct Cleanup {
    dir: PathBuf,
    pub(crate) cgroup: Option<estiba_cgroups::Cgroup>,
    pub(crate) cgroup_parents_made: Vec<PathBuf>,
    pub(crate) pid: Option<i32>,
    pub(crate) armed: bool,
    /// Set once create-time hooks may have run: a failure from then on
    /// continues the lifecycle at "destroy", then poststop (runtime.md).
    pub(crate) poststop: Option<(Vec<oci_spec::runtime::Hook>, Vec<u8>)>,
}

impl Cleanup {
    pub(crate) fn new(dir: &Path) -> Cleanup {
        Cleanup {
            dir: dir.to_path_buf(),
            cgroup: None,
            cgroup_parents_made: vec![],
            pid: None,
            armed: true,
            poststop: None,
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(pid) = self.pid {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = waitpid(Pid::from_raw(pid), None);
        }
        if let Some(cg) = &self.cgroup {
            let _ = cg.remove_if_unused(&self.cgroup_parents_made);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some((poststop, state)) = &self.poststop {
            hooks::run_each_warn("poststop", poststop, state);
        }
    }
}

/// What making a container starts with, shared by create and restore: its
/// cgroup planned, opened and checked against the config's resources, its
/// id claimed (a locked state dir), its first state written. The config
/// ([`config_text`]) is the caller's to put in a later save, before it
/// records the container. The cleanup undoes it all unless disarmed.
pub(crate) struct Claimed {
    pub(crate) dir: PathBuf,
    pub(crate) dir_fd: OwnedFd,
    pub(crate) cleanup: Cleanup,
    pub(crate) saved: Saved,
    pub(crate) cgroup: estiba_cgroups::Cgroup,
    pub(crate) may_go_without_cgroup: bool,
}

pub(crate) fn claim(
    root: &Path,
    id: &str,
    bundle: &Bundle,
    rootless: Option<bool>,
    systemd: bool,
    own_pid_ns: bool,
) -> Result<Claimed> {
    let spec = &bundle.spec;
    let (cgroup_path, may_go_without_cgroup) = cgroup_plan(spec, id, rootless, systemd)?;
    let cgroup = estiba_cgroups::Cgroup::open(&cgroup_path, systemd)?;
    cgroup.check(crate::config::bundle::resources_of(spec))?;
    let (dir, dir_fd) = claim_id(root, id)?;
    let cleanup = Cleanup::new(&dir);
    let saved = first_state(id, bundle, &cgroup_path, systemd, own_pid_ns);
    saved.save(&dir)?;
    Ok(Claimed {
        dir,
        dir_fd,
        cleanup,
        saved,
        cgroup,
        may_go_without_cgroup,
    })
}

/// The cgroup a container of `spec` gets, and whether it may go without
/// one: runc's rootless cgroup manager does without a cgroup the user
/// cannot make, but only at the default path (one asked for by
/// cgroupsPath must be there). That default is the container's id under
/// the runtime's own cgroup (its parent on v2), where a user's delegated
/// subtree is.
fn cgroup_plan(
    spec: &oci_spec::runtime::Spec,
    id: &str,
    rootless: Option<bool>,
    systemd: bool,
) -> Result<(PathBuf, bool)> {
    let asked = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_deref())
        .filter(|p| !p.as_os_str().is_empty());
    let may_go_without =
        rootless.unwrap_or_else(crate::runtime::rootless::detect) && !systemd && asked.is_none();
    let path = estiba_cgroups::cgroup_path(
        asked.or(may_go_without.then_some(Path::new(id))),
        id,
        systemd,
    )?;
    Ok((path, may_go_without))
}

/// Takes the id (mkdir is the atomic claim) and locks its state dir.
fn claim_id(root: &Path, id: &str) -> Result<(PathBuf, OwnedFd)> {
    state::ensure_root(root)?;
    let dir = state::container_dir(root, id);
    match std::fs::DirBuilder::new().mode(0o711).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Error::Exists(id.to_string()))
        }
        Err(e) => return Err(Error::path("create state dir", &dir, &e)),
    }
    let opened = nix::fcntl::open(
        &dir,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    );
    let dir_fd = match opened {
        Ok(fd) => sys::own_fd(fd),
        Err(e) => {
            let _ = std::fs::remove_dir(&dir);
            return Err(Error::path("open state dir", &dir, e));
        }
    };
    if let Err(e) = sys::flock_exclusive(std::os::fd::AsFd::as_fd(&dir_fd)) {
        let _ = std::fs::remove_dir(&dir);
        return Err(Error::path("lock state dir", &dir, e));
    }
    Ok((dir, dir_fd))
}

/// The state of a container of `bundle` before it has an init.
fn first_state(
    id: &str,
    bundle: &Bundle,
    cgroup_path: &Path,
    systemd: bool,
    own_pid_ns: bool,
) -> Saved {
    let spec = &bundle.spec;
    let hooks = |f: fn(&oci_spec::runtime::Hooks) -> &Option<Vec<Hook>>| {
        spec.hooks()
            .as_ref()
            .and_then(|h| f(h).clone())
            .unwrap_or_default()
    };
    #[allow(deprecated)]
    Saved {
        id: id.to_string(),
        pid: 0,
        pid_start: 0,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: state::now_rfc3339(),
        annotations: spec
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        cgroup_path: cgroup_path.to_path_buf(),
        systemd_cgroup: systemd,
        cgroup_parents_made: vec![],
        cgroup_left_out: vec![],
        own_pid_ns,
        poststart: hooks(|h| h.poststart()),
        poststop: hooks(|h| h.poststop()),
        oci_version: spec.version().clone(),
        created_done: false,
        no_process: spec.process().is_none(),
        stdio: vec![],
        config: None,
    }
}

/// The config as created, as [`Saved::config`] keeps it.
pub(crate) fn config_text(spec: &oci_spec::runtime::Spec) -> Result<String> {
    serde_json::to_string(spec).map_err(|e| Error::Sys(format!("encode the config: {e}")))
}
