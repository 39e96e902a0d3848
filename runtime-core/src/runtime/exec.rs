//! `exec`: a new process in a running container. The runtime joins the
//! container's pid (and time) namespace for its children, clones the
//! process, puts it in the container's cgroup, and the process joins the
//! other namespaces (user first), sets itself up like the init does, and
//! execs. An exec failure is this call's error; with `detach` the call
//! returns once the program runs, else it waits and returns its exit code.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxCapabilities, Process};

use crate::error::{Error, Result};
use crate::init::process::{self, CapSets};
use crate::runtime::channel::{self, Channel, Msg};
use crate::runtime::container::Container;
use crate::runtime::foreground::Foreground;
use crate::runtime::state::Status;
use crate::sys;

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

/// runc's `exec` flags on top of the container's own `process`.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ProcessFlags {
    /// The program and its arguments.
    pub args: Vec<String>,
    /// `KEY=VALUE` entries added to (or replacing) the process's.
    pub env: Vec<String>,
    /// The working directory.
    pub cwd: Option<PathBuf>,
    /// Supplementary groups.
    pub additional_gids: Vec<u32>,
    /// Capabilities added to the bounding, effective and permitted sets.
    pub caps: Vec<String>,
    /// Set no_new_privs.
    pub no_new_privs: bool,
    /// Give the process a terminal.
    pub tty: bool,
    /// An AppArmor profile.
    pub apparmor: Option<String>,
    /// An SELinux label.
    pub process_label: Option<String>,
}

/// Builds the process to exec from the container's `process` and flags,
/// as runc does without `--process`.
pub fn process_from_flags(base: Option<&Process>, f: &ProcessFlags) -> Result<Process> {
    let mut p = base.cloned().unwrap_or_default();
    if f.args.is_empty() {
        return Err(Error::Config("exec: no command given".into()));
    }
    p.set_args(Some(f.args.clone()));
    let mut env = p.env().clone().unwrap_or_default();
    for kv in &f.env {
        let key = kv.split('=').next().unwrap_or("");
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(kv.clone());
    }
    p.set_env(Some(env));
    if let Some(cwd) = &f.cwd {
        p.set_cwd(cwd.clone());
    }
    if !f.additional_gids.is_empty() {
        let mut user = p.user().clone();
        user.set_additional_gids(Some(f.additional_gids.clone()));
        p.set_user(user);
    }
    // As runc since CVE-2022-29162: the inheritable and ambient sets stay
    // as the process gives them, so a file-capability program exec'd
    // inside gains nothing from --cap.
    if !f.caps.is_empty() {
        let mut caps: LinuxCapabilities = p.capabilities().clone().unwrap_or_default();
        let extra: oci_spec::runtime::Capabilities =
            serde_json::from_value(serde_json::json!(f.caps))
                .map_err(|e| Error::Config(format!("--cap: {e}")))?;
        let add = |set: &Option<oci_spec::runtime::Capabilities>| {
            let mut s = set.clone().unwrap_or_default();
            s.extend(extra.iter().copied());
            Some(s)
        };
        let (b, e, pm) = (
            add(caps.bounding()),
            add(caps.effective()),
            add(caps.permitted()),
        );
        caps.set_bounding(b);
        caps.set_effective(e);
        caps.set_permitted(pm);
        p.set_capabilities(Some(caps));
    }
    if f.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    p.set_terminal(Some(f.tty));
    if let Some(profile) = &f.apparmor {
        p.set_apparmor_profile(Some(profile.clone()));
    }
    if let Some(label) = &f.process_label {
        p.set_selinux_label(Some(label.clone()));
    }
    Ok(p)
}

/// runc's `--cgroup` arguments as (controller, path) pairs: one plain
/// `PATH`, or any number of `CONTROLLER[,CONTROLLER]:PATH`, each controller
/// once. A path must stay below the container's cgroup: relative, normal
/// components only (cgroupfs holds no symlinks).
fn sub_cgroup_paths(args: &[String]) -> Result<Vec<(Option<String>, String)>> {
    let bad =
        |arg: &str, why: &str| Error::Config(format!("invalid --cgroup argument {arg:?}: {why}"));
    let mut out: Vec<(Option<String>, String)> = vec![];
    for arg in args {
        let (ctrls, path) = match arg.split_once(':') {
            Some((c, p)) => (Some(c), p),
            None if args.len() == 1 => (None, arg.as_str()),
            None => return Err(bad(arg, "missing <controller>: prefix")),
        };
        let plain = !path.is_empty()
            && std::path::Path::new(path)
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !plain {
            return Err(bad(
                arg,
                "must be a relative path below the container's cgroup, without \"..\"",
            ));
        }
        let Some(ctrls) = ctrls else {
            out.push((None, path.to_string()));
            continue;
        };
        for c in ctrls.split(',') {
            if c.is_empty() {
                return Err(bad(arg, "empty <controller> prefix"));
            }
            if out.iter().any(|(have, _)| have.as_deref() == Some(c)) {
                return Err(bad(
                    arg,
                    &format!("controller {c} specified multiple times"),
                ));
            }
            out.push((Some(c.to_string()), path.to_string()));
        }
    }
    Ok(out)
}

const NAMESPACES: [(&str, libc::c_int); 8] = [
    ("user", libc::CLONE_NEWUSER),
    ("ipc", libc::CLONE_NEWIPC),
    ("uts", libc::CLONE_NEWUTS),
    ("net", libc::CLONE_NEWNET),
    ("cgroup", libc::CLONE_NEWCGROUP),
    ("mnt", libc::CLONE_NEWNS),
    ("pid", libc::CLONE_NEWPID),
    ("time", libc::CLONE_NEWTIME),
];

/// The container's namespaces that differ from the runtime's, opened.
/// Compared by the inodes of the opened files: a lookup that fails is an
/// error, never "the same namespace" (that would run the process outside
/// the container).
fn open_namespaces(pid: i32) -> Result<Vec<(&'static str, CloneFlags, OwnedFd)>> {
    let mut out = vec![];
    for (name, flag) in NAMESPACES {
        let theirs = format!("/proc/{pid}/ns/{name}");
        let fd = match nix::fcntl::open(
            theirs.as_str(),
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        ) {
            Ok(fd) => sys::own_fd(fd),
            // A kernel without this namespace type (time before 5.6).
            Err(nix::errno::Errno::ENOENT) => continue,
            Err(e) => return Err(Error::sys(format!("open {theirs}"), e)),
        };
        if is_own_namespace(name, &fd)? {
            continue;
        }
        out.push((name, CloneFlags::from_bits_retain(flag), fd));
    }
    Ok(out)
}

/// Whether `fd` is this process's own namespace of type `name`.
fn is_own_namespace(name: &str, fd: &OwnedFd) -> Result<bool> {
    let their = nix::sys::stat::fstat(std::os::fd::AsRawFd::as_raw_fd(fd))
        .map_err(|e| Error::sys(format!("stat the container's {name} namespace"), e))?;
    let ours = nix::sys::stat::stat(format!("/proc/self/ns/{name}").as_str())
        .map_err(|e| Error::sys(format!("stat /proc/self/ns/{name}"), e))?;
    Ok((their.st_dev, their.st_ino) == (ours.st_dev, ours.st_ino))
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
        let status = self.status();
        match status {
            Status::Running | Status::Created => {}
            Status::Paused if opts.ignore_paused => {}
            Status::Paused => {
                return Err(self.state_error(
                    status,
                    "cannot exec in a paused container (use --ignore-paused to override)",
                ))
            }
            Status::Stopped => {
                return Err(self.state_error(status, "cannot exec in a stopped container"))
            }
            _ => {
                return Err(
                    self.state_error(status, "cannot exec in a container that is not running")
                )
            }
        }
        crate::runtime::selfprotect::require_protected()?;
        let subs = sub_cgroup_paths(&opts.sub_cgroups)?;
        // Numbers are applied here; names are looked up inside the root.
        let mut process = std::borrow::Cow::Borrowed(&opts.process);
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
        let p: &Process = &process;
        let args = p.args().as_deref().unwrap_or_default();
        if args.is_empty() {
            return Err(Error::Config("process.args: must name a program".into()));
        }
        if !p.cwd().is_absolute() {
            return Err(Error::Config(format!(
                "process.cwd {:?}: must be an absolute path",
                p.cwd()
            )));
        }
        let caps = CapSets::from_spec(p.capabilities().as_ref())?;
        crate::init::lsm::validate(p)?;
        // The container's seccomp profile applies to exec'd processes too.
        let spec = self.spec_ref()?;
        let mut seccomp = crate::runtime::spawn::compile_seccomp(spec)?;
        // So are its personality and memory policy (runc applies them to
        // every process).
        let attrs = crate::init::taskattr::ContainerAttrs::from_spec(spec)?;
        if let Some(plan) = &mut seccomp {
            plan.state = serde_json::to_value(self.state()).unwrap_or_default();
        }
        for fd in 3..3 + opts.preserve_fds as i32 {
            nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD)
                .map_err(|_| Error::Config(format!("--preserve-fds: fd {fd} is not open")))?;
        }
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
        let init = self.saved.pid;
        let nss = open_namespaces(init)?;
        // Where the container's user namespace denies setgroups (a
        // rootless container mapping one gid), its processes cannot call it.
        let setgroups_allowed = crate::sys::procfs::read_text(format!("/proc/{init}/setgroups"))
            .map_or(true, |s| s.trim() != "deny");
        // The init's root, taken before joining: after setns(mnt) the kernel
        // puts us at the namespace's original root, which is not the
        // container's pivoted root when the runtime itself runs chrooted.
        let root_path = format!("/proc/{init}/root");
        let init_root = sys::own_fd(
            nix::fcntl::open(
                root_path.as_str(),
                nix::fcntl::OFlag::O_PATH
                    | nix::fcntl::OFlag::O_DIRECTORY
                    | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(|e| Error::sys(format!("open {root_path}"), e))?,
        );
        let pidfd_socket = match &opts.pidfd_socket {
            Some(path) => Some(crate::sys::fdpass::connect_pidfd_socket(path)?),
            None => None,
        };
        let cg = self.cgroup_handle()?;
        // In a frozen cgroup the process could never get to exec.
        let paused = status == Status::Paused;
        // Where it can, the process gets into the container's cgroup
        // without being moved by pid (see `make_before_clone`): born in the
        // v2 one, joining the v1 ones itself. A runtime without root (its
        // process may not be able to) moves it by pid, as into a paused
        // container or a sub-cgroup.
        let placement = match subs.is_empty() && !paused && nix::unistd::geteuid().is_root() {
            true => cg.make_before_clone(true)?,
            false => None,
        };
        if placement.is_some() {
            // There already but for a hierarchy mounted since.
            cg.make_v1()?;
        }
        let tasks = placement.as_ref().map_or(&[][..], |p| p.tasks.as_slice());
        // runc's exec is no subreaper: in the container's pid namespace
        // orphans go to its init.
        let (parent_chan, child_chan) = channel::pair()?;
        let born_in = placement
            .as_ref()
            .and_then(|p| p.clone_into.as_ref())
            .map(AsFd::as_fd);
        let (pid, in_cgroup) = clone_into(&nss, born_in, || {
            child(
                &nss,
                tasks,
                &init_root,
                p,
                user_names,
                (&caps, setgroups_allowed),
                console.as_ref().map(|c| (c, size)),
                seccomp.as_ref(),
                &attrs,
                (opts.stdio.raw(), opts.preserve_fds),
                &child_chan,
            )
        })?;
        drop(child_chan);
        drop(console);
        let placed = placement
            .as_ref()
            .is_some_and(|p| p.clone_into.is_none() || in_cgroup);
        let result = (|| {
            crate::init::taskattr::reset_affinity(pid, Some(p))?;
            match (subs.is_empty(), paused) {
                _ if placed => {}
                (true, true) => cg.enter_unfrozen(pid)?,
                (true, false) => cg.enter(pid)?,
                (false, _) => cg.enter_sub(pid, &subs, paused)?,
            }
            parent_chan.send(&Msg::Go(pid))?;
            match parent_chan.recv()? {
                None => Ok(()),
                Some(Msg::Fail(msg)) => Err(Error::Init(msg)),
                Some(other) => Err(Error::Init(format!(
                    "unexpected message {other:?} from exec'd process"
                ))),
            }
        })();
        if let Err(e) = result {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
            return Err(e);
        }
        if let Some(sock) = &pidfd_socket {
            crate::sys::fdpass::send_pidfd(sock, pid, "setns")?;
        }
        if let Some(pid_file) = &opts.pid_file {
            crate::runtime::create::write_pid_file(pid_file, pid)?;
        }
        let pty = match &proxy_end {
            Some(sock) => Some(crate::sys::fdpass::recv_fd(sock, "the pty master")?),
            None => None,
        };
        Ok((pid, pty))
    }
}

/// Enters the pid and time namespaces for children, clones, and returns
/// to the runtime's own. `child` runs in the clone and never returns.
fn clone_into(
    nss: &[(&'static str, CloneFlags, OwnedFd)],
    cgroup: Option<BorrowedFd<'_>>,
    child: impl FnOnce() -> Result<std::convert::Infallible>,
) -> Result<(i32, bool)> {
    // An unprivileged runtime has no say over the container's pid
    // namespace until it is in the container's user namespace, which a
    // process can enter only single-threaded and never leave.
    if !nix::unistd::geteuid().is_root() && nss.iter().any(|(n, _, _)| *n == "user") {
        return clone_through_userns(nss, child).map(|pid| (pid, false));
    }
    let for_children: Vec<_> = nss
        .iter()
        .filter(|(n, _, _)| matches!(*n, "pid" | "time"))
        .collect();
    let mut restore = vec![];
    for (name, flag, fd) in &for_children {
        let own = nix::fcntl::open(
            format!("/proc/self/ns/{name}").as_str(),
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| Error::sys(format!("open own {name} namespace"), e))?;
        restore.push((sys::own_fd(own), *flag));
        nix::sched::setns(fd.as_fd(), *flag)
            .map_err(|e| Error::sys(format!("join the container's {name} namespace"), e))?;
    }
    // Kernels before 5.7 (or a filtered clone3): moved in after.
    let born_in = cgroup.and_then(|fd| sys::clone_into_cgroup(0, fd).ok());
    let in_cgroup = born_in.is_some();
    let pid = born_in.map_or_else(|| sys::clone_fork(0), Ok);
    if pid == Ok(0) {
        let code = match child() {
            Ok(never) => match never {},
            Err(_) => 1,
        };
        sys::exit_now(code);
    }
    for (fd, flag) in &restore {
        let _ = nix::sched::setns(fd.as_fd(), *flag);
    }
    pid.map(|pid| (pid, in_cgroup))
        .map_err(|e| Error::sys("clone exec process", e))
}

/// How long the intermediate process of a rootless exec may take.
const INTERMEDIATE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The rootless form of [`clone_into`] (as runc's nsexec does it): an
/// intermediate process joins the user namespace, then the pid and time
/// namespaces, and clones the process as a sibling (CLONE_PARENT), so it
/// is still this runtime's child; it sends back its pid and exits.
fn clone_through_userns(
    nss: &[(&'static str, CloneFlags, OwnedFd)],
    child: impl FnOnce() -> Result<std::convert::Infallible>,
) -> Result<i32> {
    let (rx, tx) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Error::sys("pipe", e))?;
    let mid = sys::clone_here(0).map_err(|e| Error::sys("clone exec process", e))?;
    if mid == 0 {
        drop(rx);
        let joined = nss
            .iter()
            .filter(|(n, _, _)| matches!(*n, "user" | "pid" | "time"))
            .try_for_each(|(_, flag, fd)| nix::sched::setns(fd.as_fd(), *flag));
        if joined.is_err() {
            sys::exit_now(1);
        }
        match sys::clone_here(libc::CLONE_PARENT) {
            Ok(0) => {
                drop(tx);
                let code = match child() {
                    Ok(never) => match never {},
                    Err(_) => 1,
                };
                sys::exit_now(code);
            }
            Ok(pid) => {
                let _ = nix::unistd::write(&tx, &pid.to_ne_bytes());
                sys::exit_now(0);
            }
            Err(_) => sys::exit_now(1),
        }
    }
    drop(tx);
    let mut fds = [nix::poll::PollFd::new(
        rx.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    let ready = nix::poll::poll(
        &mut fds,
        nix::poll::PollTimeout::try_from(INTERMEDIATE_TIMEOUT)
            .unwrap_or(nix::poll::PollTimeout::MAX),
    );
    let mut buf = [0u8; 4];
    let got = match ready {
        Ok(n) if n > 0 => {
            nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(&rx), &mut buf).unwrap_or(0)
        }
        _ => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(mid),
                nix::sys::signal::Signal::SIGKILL,
            );
            0
        }
    };
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(mid), None);
    if got != 4 {
        return Err(Error::Init(format!(
            "exec: could not join the container's user and pid namespaces (within {INTERMEDIATE_TIMEOUT:?})"
        )));
    }
    let pid = i32::from_ne_bytes(buf);
    crate::runtime::helper::cloned(pid);
    Ok(pid)
}

/// In the clone: waits for the cgroup, joins the namespaces, sets the
/// process up and execs. Failures go to the parent over `chan`.
#[allow(clippy::too_many_arguments)]
fn child(
    nss: &[(&'static str, CloneFlags, OwnedFd)],
    cgroup_tasks: &[std::path::PathBuf],
    init_root: &OwnedFd,
    p: &Process,
    user_names: Option<&crate::init::userdb::ExecUser>,
    (caps, setgroups_allowed): (&CapSets, bool),
    console: Option<(&UnixStream, Option<(u16, u16)>)>,
    seccomp: Option<&process::SeccompPlan>,
    attrs: &crate::init::taskattr::ContainerAttrs,
    (stdio, preserve_fds): ([Option<std::os::fd::RawFd>; 3], u32),
    chan: &Channel,
) -> Result<std::convert::Infallible> {
    let res = (|| -> Result<Error> {
        crate::runtime::stdio::install(stdio, 3 + preserve_fds as i32)?;
        // The process's memory is the runtime's until exec: keep other
        // container processes from reading it or its /proc/<pid>/exe.
        sys::prctl(libc::PR_SET_DUMPABLE, 0)
            .map_err(|e| Error::sys("prctl(PR_SET_DUMPABLE)", e))?;
        match chan.recv()? {
            Some(Msg::Go(_)) => {}
            _ => sys::exit_now(1),
        }
        // Still the runtime's credentials: the host's cgroup files are
        // its to write.
        estiba_cgroups::join_as_current_thread(cgroup_tasks)?;
        // User first: it decides what the others may do (a rootless exec
        // is in it already).
        for (name, flag, fd) in nss.iter().filter(|(n, _, _)| !matches!(*n, "pid" | "time")) {
            if *name == "user" && is_own_namespace(name, fd)? {
                continue;
            }
            nix::sched::setns(fd.as_fd(), *flag)
                .map_err(|e| Error::sys(format!("join the container's {name} namespace"), e))?;
        }
        nix::unistd::fchdir(std::os::fd::AsRawFd::as_raw_fd(init_root))
            .map_err(|e| Error::sys("enter the container's root", e))?;
        nix::unistd::chroot(".").map_err(|e| Error::sys("chroot to the container's root", e))?;
        nix::unistd::chdir("/").map_err(|e| Error::sys("chdir /", e))?;
        // A session of its own, terminal or not, as runc's: the caller's
        // session leader is outside the container (criu refuses that).
        sys::setsid();
        if let Some((sock, size)) = console {
            crate::init::console::setup(sock, size, false)?;
        }
        let mut p = std::borrow::Cow::Borrowed(p);
        if let Some(spec) = user_names {
            let (uid, gid) = spec.resolve(p.user().gid())?;
            let mut user = p.user().clone();
            user.set_uid(uid);
            user.set_gid(gid);
            p.to_mut().set_user(user);
        }
        let p: &Process = &p;
        let env =
            crate::init::userdb::with_home(&p.env().clone().unwrap_or_default(), p.user().uid());
        let args = p.args().as_deref().unwrap_or_default();
        let program = process::look_path(&args[0], &env)?;
        crate::log::debug!("exec: in the container, about to run {program:?}");
        let exec = process::ExecArgs::new(&program, args, &env)?;
        attrs.apply()?;
        crate::init::taskattr::apply_exec_affinity_final(p)?;
        process::finalize(p, caps, setgroups_allowed, preserve_fds, seccomp)?;
        Ok(exec.exec())
    })();
    let err = match res {
        Ok(exec_error) => exec_error,
        Err(e) => e,
    };
    let _ = chan.send(&Msg::Fail(err.to_string()));
    Err(err)
}
