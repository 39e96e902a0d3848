//! Operations on an existing container: state, start, kill, delete, list.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::socket::connect;
use nix::unistd::Pid;

use crate::error::{Error, Result};
use crate::runtime::state::{self, OciState, Saved, Status, EXEC_SOCKET};
use crate::{config::id, log, runtime::hooks, sys};

/// How long an operation waits for another one on the same container
/// (a create running its hooks holds the lock) before it gives up.
const LOCK_WAIT: Duration = Duration::from_secs(60);

/// A container known to the state root.
pub struct Container {
    pub(crate) dir: PathBuf,
    pub(crate) saved: Saved,
    /// Held for mutating operations so two of them never interleave.
    lock: Option<OwnedFd>,
    /// The config, parsed once: `exec` needs its process and its
    /// container-wide settings.
    spec: std::sync::OnceLock<oci_spec::runtime::Spec>,
    /// The cgroup handle create used, kept by `run` for its delete: opening
    /// one reads mountinfo again.
    cgroup: Option<estiba_cgroups::Cgroup>,
}

impl Container {
    /// Loads `<root>/<id>`.
    pub fn load(root: &Path, id: &str) -> Result<Self> {
        id::validate(id)?;
        let dir = state::container_dir(root, id);
        // Not there, or not ours to look at (another user's state root):
        // the second is said as it is, as runc says it.
        match std::fs::metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(Error::NotFound(id.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound(id.to_string()))
            }
            Err(e) => return Err(Error::path("stat", &dir, &e)),
        }
        let saved = match Saved::load(&dir) {
            Ok(s) => s,
            // A create killed before its first write: nothing but the dir.
            Err(_) if matches!(dir.join(state::STATE_FILE).try_exists(), Ok(false)) => {
                return Err(Error::NotFound(id.to_string()))
            }
            Err(e) => return Err(e),
        };
        Ok(Container {
            dir,
            saved,
            lock: None,
            spec: std::sync::OnceLock::new(),
            cgroup: None,
        })
    }

    /// The container as the create that made it in this process left it:
    /// its final state and its cgroup handle (`run` goes on with it
    /// without reading either again).
    pub(crate) fn as_made(dir: PathBuf, saved: Saved, cgroup: estiba_cgroups::Cgroup) -> Self {
        Container {
            dir,
            saved,
            lock: None,
            spec: std::sync::OnceLock::new(),
            cgroup: Some(cgroup),
        }
    }

    /// `delete --force` of an id whose create was killed before its first
    /// state write: the directory holds nothing but a partial temporary
    /// file. Removed unless a create still holds it (its lock).
    pub fn remove_incomplete(root: &Path, id: &str) -> Result<()> {
        id::validate(id)?;
        let dir = state::container_dir(root, id);
        let Ok(fd) = nix::fcntl::open(
            &dir,
            nix::fcntl::OFlag::O_RDONLY
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        ) else {
            return Ok(());
        };
        let fd = sys::own_fd(fd);
        if sys::flock_exclusive_now(std::os::fd::AsFd::as_fd(&fd)).is_err() {
            return Err(Error::State {
                id: id.to_string(),
                status: "creating".into(),
                msg: "a create of this id is still running",
            });
        }
        if dir.join(state::STATE_FILE).exists() {
            return Ok(());
        }
        std::fs::remove_dir_all(&dir).map_err(|e| Error::path("remove", &dir, &e))
    }

    /// This container under its lock, reloaded: what another operation
    /// changed while we waited is seen. The wait is bounded.
    fn locked(&self) -> Result<Container> {
        let fd = sys::own_fd(
            nix::fcntl::open(
                &self.dir,
                nix::fcntl::OFlag::O_RDONLY
                    | nix::fcntl::OFlag::O_DIRECTORY
                    | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(|e| Error::path("open state dir", &self.dir, e))?,
        );
        let deadline = Instant::now() + LOCK_WAIT;
        let mut pause = Duration::from_millis(1);
        loop {
            match sys::flock_exclusive_now(fd.as_fd()) {
                Ok(()) => break,
                Err(nix::errno::Errno::EWOULDBLOCK) if Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(nix::errno::Errno::EWOULDBLOCK) => {
                    return Err(Error::Sys(format!(
                        "container {} is busy: another operation has held its lock for {} s",
                        self.saved.id,
                        LOCK_WAIT.as_secs()
                    )))
                }
                Err(e) => return Err(Error::path("lock state dir", &self.dir, e)),
            }
        }
        Ok(Container {
            dir: self.dir.clone(),
            saved: Saved::load(&self.dir)?,
            lock: Some(fd),
            // The config copy is written once, at create.
            spec: self.spec.clone(),
            cgroup: self.cgroup.clone(),
        })
    }

    /// The container's id.
    pub fn id(&self) -> &str {
        &self.saved.id
    }

    /// Its status now (derived each time: never stored).
    pub fn status(&self) -> Status {
        self.saved.status(&self.dir)
    }

    /// Its OCI state (runc's `state` document).
    pub fn state(&self) -> OciState {
        self.saved.oci(self.status())
    }

    pub(crate) fn state_error(&self, status: Status, msg: &'static str) -> Error {
        Error::State {
            id: self.saved.id.clone(),
            status: status.to_string(),
            msg,
        }
    }

    /// Lets the init exec the user's program; returns once it has (an exec
    /// failure is this call's error), then runs poststart hooks.
    pub fn start(&self) -> Result<()> {
        let c = self.locked()?;
        let status = c.status();
        // runc's words for each refusal.
        let refusal = match status {
            Status::Created => None,
            Status::Stopped => Some("cannot start a container that has stopped"),
            Status::Running => Some("cannot start an already running container"),
            _ => Some("cannot start a container in this state"),
        };
        if let Some(msg) = refusal {
            return Err(c.state_error(status, msg));
        }
        if c.saved.no_process {
            return Err(c.state_error(status, "config.json has no process to start"));
        }
        let lock = c.lock.as_ref().map(|l| l.as_raw_fd()).unwrap_or(-1);
        let (sock, addr) = state::exec_socket(lock)?;
        connect(sock.as_raw_fd(), &addr)
            .map_err(|e| Error::path("connect", c.dir.join(EXEC_SOCKET), e))?;
        // Only one start may ever get through.
        let _ = std::fs::remove_file(c.dir.join(EXEC_SOCKET));
        let mut buf = vec![0u8; 4096];
        let n = loop {
            match nix::sys::socket::recv(
                sock.as_raw_fd(),
                &mut buf,
                nix::sys::socket::MsgFlags::empty(),
            ) {
                Ok(n) => break n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("wait for container exec", e)),
            }
        };
        match n {
            0 => c.started(Ok(())),
            n => c.started(Err(String::from_utf8_lossy(&buf[..n]).into_owned())),
        }
    }

    /// What follows the init's exec, however it was started: an exec that
    /// failed (`Err`, in the init's words) or the poststart hooks.
    pub(crate) fn started(&self, exec: std::result::Result<(), String>) -> Result<()> {
        // Hooks and the state change under the lock, as in `start`.
        if self.lock.is_none() && (exec.is_err() || !self.saved.poststart.is_empty()) {
            return self.locked()?.started(exec);
        }
        let c = self;
        if let Err(msg) = exec {
            // The lifecycle goes on at "destroy": the init is exiting; the
            // poststop hooks run now (once: they are dropped from the
            // state) and `delete` removes what is left.
            c.poststop_now();
            return Err(Error::Init(msg));
        }
        let poststart = &c.saved.poststart;
        if !poststart.is_empty() {
            let json = serde_json::to_vec(&c.saved.oci(Status::Running)).unwrap_or_default();
            // Spec 1.3 (and runc): a failing poststart hook is an error;
            // the container is stopped and the lifecycle goes on at
            // "destroy": the poststop hooks run now (once), and `delete`
            // removes what is left.
            if let Err(e) = hooks::run_all("poststart", poststart, &json) {
                c.stop_everything(Status::Running, None);
                c.poststop_now();
                return Err(e);
            }
        }
        Ok(())
    }

    /// Sends `signal` to the init, or with `all` to every process of the
    /// container's cgroup.
    pub fn kill(&self, signal: crate::runtime::signal::Signal, all: bool) -> Result<()> {
        let status = self.status();
        if matches!(status, Status::Stopped) {
            return Err(self.state_error(status, "container not running"));
        }
        let signal = signal.number();
        if all {
            let cg = self.cgroup()?;
            for pid in self.pids_in(&cg)? {
                let _ = crate::sys::kill(pid, signal);
            }
            if status == Status::Paused && signal == libc::SIGKILL {
                let _ = cg.freeze(false);
            }
            return Ok(());
        }
        crate::sys::kill(self.saved.pid, signal)
            .map_err(|e| Error::sys(format!("kill {} {signal}", self.saved.pid), e))
    }

    /// Waits until the container's init exits, at most `timeout` (None: no
    /// limit; [`Error::Timeout`] when it runs on). The exit status is known
    /// to the init's parent (the process that created the container);
    /// any other caller gets [`ExitStatus::Unknown`](crate::ExitStatus::Unknown) once it is gone.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<crate::runtime::wait::ExitStatus> {
        let pid = self.saved.pid;
        // A zombie still has its status for its parent to collect.
        if pid <= 0 || !self.saved.init_exists() {
            return Ok(crate::runtime::wait::ExitStatus::Unknown);
        }
        let handle = crate::runtime::wait::ProcessHandle::open(pid)?;
        // The pid could have been recycled between the check and the open.
        if !self.saved.init_exists() {
            return Ok(crate::runtime::wait::ExitStatus::Unknown);
        }
        handle.wait(timeout)
    }

    /// Freezes every process of the container (v1 freezer, v2 cgroup.freeze).
    pub fn pause(&self) -> Result<()> {
        let status = self.status();
        if !matches!(status, Status::Running | Status::Created) {
            return Err(self.state_error(status, "container not running"));
        }
        self.cgroup()?.freeze(true)?;
        Ok(())
    }

    /// Thaws a paused container.
    pub fn resume(&self) -> Result<()> {
        let status = self.status();
        if status != Status::Paused {
            return Err(self.state_error(status, "container not paused"));
        }
        self.cgroup()?.freeze(false)?;
        Ok(())
    }

    /// Host pids of every process in the container's cgroup.
    pub fn pids(&self) -> Result<Vec<i32>> {
        // Stopped is no error (runc): what the cgroup still holds, if anything.
        let mut pids = if self.status() == Status::Stopped {
            self.cgroup()
                .ok()
                .and_then(|c| self.pids_in(&c).ok())
                .unwrap_or_default()
        } else {
            self.pids_in(&self.cgroup()?)?
        };
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// Changes the container's resource limits; fields left out stay as
    /// they are.
    pub fn update(&self, resources: &oci_spec::runtime::LinuxResources) -> Result<()> {
        let status = self.status();
        if matches!(status, Status::Stopped | Status::Creating) {
            return Err(self.state_error(status, "cannot update a container that is not running"));
        }
        self.cgroup()?.update(resources)?;
        Ok(())
    }

    /// The container's processes: its cgroup's, or, where a runtime
    /// without root could make it none, those of its pid namespace (or
    /// the init's descendants, without one).
    fn pids_in(&self, cg: &estiba_cgroups::Cgroup) -> Result<Vec<i32>> {
        if !cg.is_absent() {
            return Ok(cg.pids()?);
        }
        Ok(if self.saved.init_alive() {
            crate::runtime::rootless::processes_of(self.saved.pid, self.saved.own_pid_ns)
        } else {
            vec![]
        })
    }

    pub(crate) fn cgroup_handle(&self) -> Result<estiba_cgroups::Cgroup> {
        self.cgroup()
    }

    fn cgroup(&self) -> Result<estiba_cgroups::Cgroup> {
        if let Some(cg) = &self.cgroup {
            return Ok(cg.clone());
        }
        Ok(
            estiba_cgroups::Cgroup::open(&self.saved.cgroup_path, self.saved.systemd_cgroup)?
                .leave_out(&self.saved.cgroup_left_out),
        )
    }

    /// The container's config as it was created (kept in its state; one
    /// whose create died before keeping it falls back to its bundle's).
    pub fn spec(&self) -> Result<oci_spec::runtime::Spec> {
        self.spec_ref().cloned()
    }

    pub(crate) fn spec_ref(&self) -> Result<&oci_spec::runtime::Spec> {
        if let Some(spec) = self.spec.get() {
            return Ok(spec);
        }
        let spec = match &self.saved.config {
            Some(text) => crate::config::bundle::parse_spec(text.as_bytes())?,
            None => {
                // An older estiba kept it beside the state.
                let copy = self.dir.join(state::CONFIG_COPY);
                let path = if copy.exists() {
                    copy
                } else {
                    self.saved.bundle.join("config.json")
                };
                crate::config::bundle::parse_spec(&crate::config::guard::read_input(&path)?)?
            }
        };
        Ok(self.spec.get_or_init(|| spec))
    }

    /// The container's config.json `process`, the base of `exec`.
    pub fn process(&self) -> Result<Option<oci_spec::runtime::Process>> {
        Ok(self.spec_ref()?.process().clone())
    }

    /// Removes a stopped container (with `force`, stops it first): its
    /// processes, cgroup and state dir; then runs poststop hooks.
    pub fn delete(&self, force: bool) -> Result<()> {
        let c = self.locked()?;
        let status = c.status();
        if status != Status::Stopped && !force {
            return Err(c.state_error(
                status,
                "cannot delete a container that is not stopped (use --force to kill it first)",
            ));
        }
        let cg = c.cgroup();
        if status != Status::Stopped {
            c.stop_everything(status, cg.as_ref().ok());
        }
        // With its own pid namespace, the container's processes died with
        // its init: whatever is still in the cgroup belongs to another user
        // of a shared cgroupsPath and keeps it. Without one, the container's
        // processes are found by cgroup and killed as it is removed (runc).
        if let Ok(cg) = &cg {
            let parents = &c.saved.cgroup_parents_made;
            if c.saved.own_pid_ns {
                for dir in cg.remove_if_unused(parents)? {
                    log::warn!("cgroup {dir:?} is left in place: other processes still use it");
                }
            } else {
                cg.remove(parents)?;
            }
        }
        if !c.saved.poststop.is_empty() {
            let json = serde_json::to_vec(&c.saved.oci(Status::Stopped)).unwrap_or_default();
            hooks::run_each_warn("poststop", &c.saved.poststop, &json);
        }
        state::remove_dir(&c.dir).map_err(|e| Error::path("remove state dir", &c.dir, &e))
    }

    /// After a failed start: waits for the init to go, runs the poststop
    /// hooks and records that they ran.
    fn poststop_now(&self) {
        if self.saved.poststop.is_empty() {
            return;
        }
        self.stop_everything(Status::Running, None);
        let json = serde_json::to_vec(&self.saved.oci(Status::Stopped)).unwrap_or_default();
        hooks::run_each_warn("poststop", &self.saved.poststop, &json);
        let mut saved = self.saved.clone();
        saved.poststop.clear();
        if let Err(e) = saved.save(&self.dir) {
            log::warn!("record that poststop hooks ran: {e}");
        }
    }

    /// SIGKILL the init (thawing it first if frozen) and wait until it is gone.
    fn stop_everything(&self, status: Status, cg: Option<&estiba_cgroups::Cgroup>) {
        if self.saved.pid > 0 && self.saved.init_alive() {
            let pidfd = sys::pidfd_open(self.saved.pid).ok();
            let _ = kill(Pid::from_raw(self.saved.pid), Signal::SIGKILL);
            if status == Status::Paused {
                if let Some(cg) = cg {
                    let _ = cg.freeze(false);
                }
            }
            wait_gone(self, pidfd);
        }
    }
}

/// Waits (up to 10 s) for the init to exit: on its pidfd when we have one,
/// else by polling /proc.
fn wait_gone(c: &Container, pidfd: Option<OwnedFd>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    if let Some(fd) = pidfd {
        let mut fds = [nix::poll::PollFd::new(
            fd.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(10_000u16));
        return;
    }
    while c.saved.init_alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Every container under `root`, sorted by id; unreadable entries skipped.
pub fn list(root: &Path) -> Result<Vec<OciState>> {
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(Error::path("read", root, &e)),
    };
    let mut out = vec![];
    let mut names = UserNames::default();
    for entry in entries.flatten() {
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if let Ok(c) = Container::load(root, &name) {
            let mut state = c.state();
            if let Ok(m) = entry.metadata() {
                state.owner = names.of(std::os::unix::fs::MetadataExt::uid(&m));
            }
            out.push(state);
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// User names by uid from /etc/passwd, read once (runc's lookup: no NSS),
/// `#<uid>` for a uid it does not name.
#[derive(Default)]
struct UserNames(Option<String>);

impl UserNames {
    fn of(&mut self, uid: u32) -> String {
        let passwd = self
            .0
            .get_or_insert_with(|| std::fs::read_to_string("/etc/passwd").unwrap_or_default());
        crate::init::userdb::name_of(uid, passwd).map_or_else(|| format!("#{uid}"), str::to_string)
    }
}
