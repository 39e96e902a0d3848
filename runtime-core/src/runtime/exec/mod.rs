//! `exec`: a new process in a running container. The runtime joins the
//! container's pid (and time) namespace for its children, clones the
//! process, puts it in the container's cgroup, and the process joins the
//! other namespaces (user first), sets itself up like the init does, and
//! execs. An exec failure is this call's error; with `detach` the call
//! returns once the program runs, else it waits and returns its exit code.
//!
//! `flags` turns runc's flags into the process; `enter` is the clone and
//! what it does inside.

mod enter;
mod flags;

use std::borrow::Cow;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use oci_spec::runtime::Process;

use crate::error::{Error, Result};
use crate::init::process::CapSets;
use crate::init::userdb::ExecUser;
use crate::runtime::channel::{self, Channel, Msg};
use crate::runtime::container::Container;
use crate::runtime::foreground::Foreground;
use crate::runtime::state::Status;
use crate::sys;

pub use flags::{process_from_flags, ProcessFlags};

/// How to exec (runc's `exec` flags, once resolved into a process).
#[derive(Debug)]
#[non_exhaustive]
pub struct ExecOptions {
    /// The process to run (args, env, user, capabilities, ...).
    pub process: Process,
    /// A unix socket to send the pty master to, when the process has a
    /// terminal (runc's protocol).
    pub console_socket: Option<PathBuf>,
    /// Return once the program runs ([`ExecOutcome::Detached`]) instead
    /// of waiting for it to exit.
    pub detach: bool,
    /// With `detach`, a terminal and no console socket: the pty master is
    /// returned in the handle ([`crate::ProcessHandle::take_pty`]).
    pub return_pty: bool,
    /// The process's standard input, output and error (default: the
    /// caller's).
    pub stdio: crate::runtime::stdio::Stdio,
    /// A file to write the process's pid to.
    pub pid_file: Option<PathBuf>,
    /// Pass descriptors 3 .. 3+N on to the process.
    pub preserve_fds: u32,
    /// Run it in a paused container (v1: outside the freezer).
    pub ignore_paused: bool,
    /// runc's `--cgroup` arguments: an existing sub-cgroup of the
    /// container's to run in, `PATH` (every hierarchy) or
    /// `CONTROLLER[,CONTROLLER]:PATH` (v1, one per controller).
    pub sub_cgroups: Vec<String>,
    /// Who to run as instead of the process's user: numbers, or names
    /// looked up in the container's /etc/passwd and /etc/group (from
    /// inside its root); parse `"USER[:GROUP]"` into one.
    pub user: Option<crate::init::userdb::ExecUser>,
    /// A unix socket to send a pidfd of the process to (runc's
    /// `--pidfd-socket`), once it runs.
    pub pidfd_socket: Option<PathBuf>,
    /// What waiting in the foreground may do to the calling process
    /// (nothing by default; the CLI asks for runc's `exec`).
    pub foreground: crate::runtime::foreground::ForegroundOptions,
}

impl ExecOptions {
    /// Options to run `process`, in the foreground, with the caller's stdio.
    pub fn new(process: Process) -> Self {
        ExecOptions {
            process,
            console_socket: None,
            detach: false,
            return_pty: false,
            stdio: Default::default(),
            pid_file: None,
            preserve_fds: 0,
            ignore_paused: false,
            sub_cgroups: vec![],
            user: None,
            pidfd_socket: None,
            foreground: Default::default(),
        }
    }
}

/// What `exec` ended with.
#[derive(Debug)]
#[non_exhaustive]
pub enum ExecOutcome {
    /// `detach`: the program runs; a handle to signal and wait for it.
    Detached(crate::runtime::wait::ProcessHandle),
    /// Foreground: its exit code (128+n for signal n).
    Exited(i32),
}

impl Container {
    /// Runs a new process in this container.
    pub fn exec(&self, opts: &ExecOptions) -> Result<ExecOutcome> {
        // Before the process exists, so no signal meant for it is lost.
        let fg = if opts.detach {
            None
        } else {
            Some(Foreground::begin(opts.foreground)?)
        };
        let (pid, pty) = crate::runtime::helper::run(
            || self.spawn(opts),
            |(pid, pty)| crate::runtime::helper::Wire {
                body: serde_json::json!({"pid": pid, "pty": pty.is_some()}),
                fds: pty.into_iter().collect(),
            },
            |mut w| {
                let pty = match w.body["pty"].as_bool() {
                    Some(true) => w.fds.pop(),
                    _ => None,
                };
                Ok((w.body["pid"].as_i64().unwrap_or(0) as i32, pty))
            },
        )?;
        let Some(fg) = fg else {
            let handle = crate::runtime::wait::ProcessHandle::open(pid)?.with_pty(pty);
            return Ok(ExecOutcome::Detached(handle));
        };
        fg.wait(pid, pty).map(ExecOutcome::Exited)
    }

    /// Everything `exec` does up to the program running: the process's
    /// pid, and its pty master when one is to be proxied or returned.
    fn spawn(&self, opts: &ExecOptions) -> Result<(i32, Option<OwnedFd>)> {
        let status = self.exec_status(opts)?;
        crate::runtime::selfprotect::require_protected()?;
        let subs = flags::sub_cgroup_paths(&opts.sub_cgroups)?;
        let (process, user_names) = process_to_run(opts)?;
        let p: &Process = &process;
        let caps = CapSets::from_spec(p.capabilities().as_ref())?;
        crate::init::lsm::validate(p)?;
        let (seccomp, attrs) = self.container_wide()?;
        crate::runtime::stdio::require_preserved_open(0, opts.preserve_fds)?;
        let term = Terminal::open(opts, p)?;
        let init = self.saved.pid;
        let nss = enter::open_namespaces(init)?;
        // Where the container's user namespace denies setgroups (a
        // rootless container mapping one gid), its processes cannot call it.
        let setgroups_allowed = crate::sys::procfs::read_text(format!("/proc/{init}/setgroups"))
            .map_or(true, |s| s.trim() != "deny");
        let init_root = open_root_of(init)?;
        let pidfd_socket = match &opts.pidfd_socket {
            Some(path) => Some(crate::sys::fdpass::connect_pidfd_socket(path)?),
            None => None,
        };
        let cg = self.cgroup_handle()?;
        // In a frozen cgroup the process could never get to exec.
        let paused = status == Status::Paused;
        let placement = placement_for(&cg, subs.is_empty() && !paused)?;
        let tasks = placement.as_ref().map_or(&[][..], |p| p.tasks.as_slice());
        // runc's exec is no subreaper: in the container's pid namespace
        // orphans go to its init.
        let (parent_chan, child_chan) = channel::pair()?;
        let born_in = placement
            .as_ref()
            .and_then(|p| p.clone_into.as_ref())
            .map(AsFd::as_fd);
        let (pid, in_cgroup) = enter::clone_into(&nss, born_in, || {
            enter::child(
                &nss,
                tasks,
                &init_root,
                p,
                user_names,
                (&caps, setgroups_allowed),
                term.console.as_ref().map(|c| (c, term.size)),
                seccomp.as_ref(),
                &attrs,
                (opts.stdio.raw(), opts.preserve_fds),
                &child_chan,
            )
        })?;
        drop(child_chan);
        drop(term.console);
        let placed = placement
            .as_ref()
            .is_some_and(|p| p.clone_into.is_none() || in_cgroup);
        // Affinity before the cgroup, as for the init: its cpuset narrows it.
        let started = crate::init::taskattr::reset_affinity(pid, Some(p))
            .and_then(|()| {
                match (subs.is_empty(), paused) {
                    _ if placed => Ok(()),
                    (true, true) => cg.enter_unfrozen(pid),
                    (true, false) => cg.enter(pid),
                    (false, _) => cg.enter_sub(pid, &subs, paused),
                }
                .map_err(Into::into)
            })
            .and_then(|()| go(&parent_chan, pid));
        if let Err(e) = started {
            let pid = nix::unistd::Pid::from_raw(pid);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
            return Err(e);
        }
        finish(opts, pid, pidfd_socket.as_ref(), term.proxy_end.as_ref())
    }

    /// The container's status, when it is one an exec may run in.
    fn exec_status(&self, opts: &ExecOptions) -> Result<Status> {
        let status = self.status();
        let why = match status {
            Status::Running | Status::Created => return Ok(status),
            Status::Paused if opts.ignore_paused => return Ok(status),
            Status::Paused => "cannot exec in a paused container (use --ignore-paused to override)",
            Status::Stopped => "cannot exec in a stopped container",
            _ => "cannot exec in a container that is not running",
        };
        Err(self.state_error(status, why))
    }

    /// What applies to every process of the container, exec'd ones too
    /// (runc applies them all): its seccomp profile (a listener is told
    /// the container's state), personality and memory policy.
    fn container_wide(
        &self,
    ) -> Result<(
        Option<crate::init::process::SeccompPlan>,
        crate::init::taskattr::ContainerAttrs,
    )> {
        let spec = self.spec_ref()?;
        let mut seccomp = crate::runtime::spawn::compile_seccomp(spec)?;
        let attrs = crate::init::taskattr::ContainerAttrs::from_spec(spec)?;
        if let Some(plan) = &mut seccomp {
            plan.state = serde_json::to_value(self.state()).unwrap_or_default();
        }
        Ok((seccomp, attrs))
    }
}

/// The process to run, checked, with `--user` applied where it is numbers
/// (names are looked up inside the container's root, by the clone).
fn process_to_run(opts: &ExecOptions) -> Result<(Cow<'_, Process>, Option<&ExecUser>)> {
    let mut process = Cow::Borrowed(&opts.process);
    let mut user_names = None;
    if let Some(u) = &opts.user {
        match u.numeric(process.user().gid()) {
            Some((uid, gid)) => {
                let mut user = process.user().clone();
                user.set_uid(uid);
                user.set_gid(gid);
                process.to_mut().set_user(user);
            }
            None => user_names = Some(u),
        }
    }
    if process.args().as_deref().unwrap_or_default().is_empty() {
        return Err(Error::Config("process.args: must name a program".into()));
    }
    if !process.cwd().is_absolute() {
        return Err(Error::Config(format!(
            "process.cwd {:?}: must be an absolute path",
            process.cwd()
        )));
    }
    Ok((process, user_names))
}

/// The exec'd process's terminal, when it has one: the socket the clone
/// sends the pty master over, the end it comes back on when estiba
/// proxies or returns it (no console socket), and the pty's size.
struct Terminal {
    console: Option<UnixStream>,
    proxy_end: Option<UnixStream>,
    size: Option<(u16, u16)>,
}

impl Terminal {
    fn open(opts: &ExecOptions, p: &Process) -> Result<Self> {
        let terminal = p.terminal().unwrap_or(false);
        if !terminal && opts.console_socket.is_some() {
            return Err(Error::Config(
                "--console-socket given but the process has no terminal".into(),
            ));
        }
        if terminal && opts.detach && opts.console_socket.is_none() && !opts.return_pty {
            return Err(Error::Config(
                "a detached process with a terminal needs --console-socket".into(),
            ));
        }
        let (proxy_end, console) = match (&opts.console_socket, terminal) {
            (Some(path), _) => (
                None,
                Some(crate::sys::fdpass::connect_console_socket(path)?),
            ),
            (None, true) => {
                let (a, b) = UnixStream::pair().map_err(|e| Error::sys("socketpair", &e))?;
                (Some(a), Some(b))
            }
            (None, false) => (None, None),
        };
        // The pty gets its size before the program runs: the caller's
        // terminal's when estiba proxies it, else consoleSize.
        let size = p
            .console_size()
            .map(|b| (b.height() as u16, b.width() as u16))
            .or_else(|| {
                proxy_end
                    .as_ref()
                    .and_then(|_| sys::get_winsize(0))
                    .map(|w| (w.ws_row, w.ws_col))
            });
        Ok(Terminal {
            console,
            proxy_end,
            size,
        })
    }
}

/// The init's root, taken before joining: after setns(mnt) the kernel
/// puts us at the namespace's original root, which is not the
/// container's pivoted root when the runtime itself runs chrooted.
fn open_root_of(init: i32) -> Result<OwnedFd> {
    let root_path = format!("/proc/{init}/root");
    let fd = nix::fcntl::open(
        root_path.as_str(),
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| Error::sys(format!("open {root_path}"), e))?;
    Ok(sys::own_fd(fd))
}

/// Where it can, the process gets into the container's cgroup without
/// being moved by pid (see `make_before_clone`): born in the v2 one,
/// joining the v1 ones itself. A runtime without root (its process may
/// not be able to) moves it by pid, as into a paused container or a
/// sub-cgroup (`plain` false).
fn placement_for(
    cg: &estiba_cgroups::Cgroup,
    plain: bool,
) -> Result<Option<estiba_cgroups::Placement>> {
    if !plain || !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    let placement = cg.make_before_clone(true)?;
    if placement.is_some() {
        // There already but for a hierarchy mounted since.
        cg.make_v1()?;
    }
    Ok(placement)
}

/// Once the program runs: its pidfd and pid file, and the pty master
/// when estiba proxies or returns it.
fn finish(
    opts: &ExecOptions,
    pid: i32,
    pidfd_socket: Option<&UnixStream>,
    proxy_end: Option<&UnixStream>,
) -> Result<(i32, Option<OwnedFd>)> {
    if let Some(sock) = pidfd_socket {
        crate::sys::fdpass::send_pidfd(sock, pid, "setns")?;
    }
    if let Some(pid_file) = &opts.pid_file {
        crate::runtime::create::write_pid_file(pid_file, pid)?;
    }
    let pty = match proxy_end {
        Some(sock) => Some(crate::sys::fdpass::recv_fd(sock, "the pty master")?),
        None => None,
    };
    Ok((pid, pty))
}

/// Lets the clone go on to exec, once it is in its cgroup: the channel
/// closes at the exec, or carries what failed.
fn go(chan: &Channel, pid: i32) -> Result<()> {
    chan.send(&Msg::Go(pid))?;
    match chan.recv()? {
        None => Ok(()),
        Some(Msg::Fail(msg)) => Err(Error::Init(msg)),
        Some(other) => Err(Error::Init(format!(
            "unexpected message {other:?} from exec'd process"
        ))),
    }
}
