//! `create`, parent side: the options, the checks made while nothing
//! exists, and the sequence of stages: the id claimed (`claim`), the init
//! staged, cloned, placed in its cgroup, waited for and recorded (`spawn`).

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use crate::config::bundle::Bundle;
use crate::config::id;
use crate::config::namespaces::Plan;
use crate::error::{Error, Result};
use crate::init::process::CapSets;
use crate::runtime::channel::{self, Msg};
use crate::runtime::claim::{claim, Claimed};
use crate::runtime::run::HeldMounts;
use crate::runtime::spawn::{compile_seccomp, ForInit, Made};
use crate::runtime::state::Saved;

/// How to create a container: runc's `create` flags, and what a program
/// embedding the library may give instead of files (the config, stdio).
#[derive(Debug)]
#[non_exhaustive]
pub struct CreateOptions {
    /// The container's id: letters, digits, `_`, `-`, `.`; unique in `root`.
    pub id: String,
    /// The bundle directory; the rootfs path of the config is relative to
    /// it. Its `config.json` is read unless [`CreateOptions::spec`] is set.
    pub bundle: PathBuf,
    /// The config itself, instead of the bundle's `config.json`.
    pub spec: Option<oci_spec::runtime::Spec>,
    /// The state root (`--root`).
    pub root: PathBuf,
    /// A file to write the init's pid to (runc's `--pid-file`).
    pub pid_file: Option<PathBuf>,
    /// A unix socket to send the pty master to (runc's protocol), when the
    /// process has a terminal.
    pub console_socket: Option<PathBuf>,
    /// When the process has a terminal and there is no console socket:
    /// the pty master is returned in [`Created::pty`] instead.
    pub return_pty: bool,
    /// The init's standard input, output and error (default: the caller's).
    pub stdio: crate::runtime::stdio::Stdio,
    /// Do not use pivot_root (a rootfs on ramfs).
    pub no_pivot: bool,
    /// Do not give the container a new session keyring.
    pub no_new_keyring: bool,
    /// Pass descriptors 3 .. 3+N on to the container.
    pub preserve_fds: u32,
    /// Place the container through systemd (`cgroupsPath` is
    /// `slice:prefix:name`).
    pub systemd_cgroup: bool,
    /// A unix socket to send a pidfd of the init to (runc's
    /// `--pidfd-socket`), before `create` returns.
    pub pidfd_socket: Option<PathBuf>,
    /// What [`crate::run_foreground`] may do to the calling process while
    /// it waits (nothing by default; the CLI asks for runc's `run`).
    pub foreground: crate::runtime::foreground::ForegroundOptions,
    /// Whether the container may go without a cgroup the runtime cannot
    /// make (no limits asked, no `cgroupsPath` given): `None` decides as
    /// runc's `--rootless auto` (not root, or root only in a user
    /// namespace).
    pub rootless: Option<bool>,
}

impl CreateOptions {
    /// Options for container `id` from the bundle at `bundle`, everything
    /// else as runc's defaults (state in [`crate::default_root`]).
    pub fn new(id: impl Into<String>, bundle: impl Into<PathBuf>) -> Self {
        CreateOptions {
            id: id.into(),
            bundle: bundle.into(),
            spec: None,
            root: crate::default_root(),
            pid_file: None,
            console_socket: None,
            return_pty: false,
            stdio: Default::default(),
            no_pivot: false,
            no_new_keyring: false,
            preserve_fds: 0,
            systemd_cgroup: false,
            pidfd_socket: None,
            foreground: Default::default(),
            rootless: None,
        }
    }
}

/// The result of a successful create.
#[derive(Debug)]
#[non_exhaustive]
pub struct Created {
    /// The container's id.
    pub id: String,
    /// The init's pid (in the caller's pid namespace).
    pub pid: i32,
    /// Where its state lives.
    pub state_dir: PathBuf,
    /// The pty master, with [`CreateOptions::return_pty`].
    pub pty: Option<OwnedFd>,
    /// `run`'s hold on the container's mount namespace (see `HeldMounts`).
    pub(crate) mounts: HeldMounts,
    /// What `run` goes on with: the final state and the cgroup handle, as
    /// create made them here (none from the helper: `run` loads them).
    pub(crate) made: Option<(Saved, estiba_cgroups::Cgroup)>,
}

/// `LISTEN_FDS` from systemd socket activation is passed on, as runc does.
fn listen_fds() -> u32 {
    std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Creates the container: everything is checked first (bad input leaves
/// nothing behind), then the init is made in its namespaces and cgroup and
/// set up; it waits for [`crate::Container::start`].
pub fn create(opts: &CreateOptions) -> Result<Created> {
    create_anywhere(opts, None, None, opts.return_pty, false).map(|(c, _)| c)
}

/// Whether create started the process too (`run`): `None` when it was not
/// asked to (or there is no process), else the exec's outcome, the error
/// in the init's words. A failed start leaves a created container.
pub(crate) type StartedNow = Option<std::result::Result<(), String>>;

/// The bundle of `opts`: its config.json, or the config given instead.
pub(crate) fn load_bundle(opts: &CreateOptions) -> Result<Bundle> {
    match &opts.spec {
        Some(spec) => {
            let dir = std::fs::canonicalize(&opts.bundle)
                .map_err(|e| Error::path("bundle", &opts.bundle, &e))?;
            Bundle::from_spec(dir, spec.clone())
        }
        None => Bundle::load(&opts.bundle),
    }
}

/// `create_with_console`, in a helper when the caller is multi-threaded
/// (see helper.rs).
pub(crate) fn create_anywhere(
    opts: &CreateOptions,
    loaded: Option<Bundle>,
    console_size: Option<(u16, u16)>,
    return_pty: bool,
    start_now: bool,
) -> Result<(Created, StartedNow)> {
    crate::runtime::helper::run(
        || create_with_console(opts, loaded, console_size, return_pty, start_now),
        |(c, started)| crate::runtime::helper::Wire {
            body: serde_json::json!({"id": c.id, "pid": c.pid, "dir": c.state_dir, "pty": c.pty.is_some(), "started": started}),
            fds: c.pty.into_iter().collect(),
        },
        |mut w| {
            let pty = match w.body["pty"].as_bool() {
                Some(true) => w.fds.pop(),
                _ => None,
            };
            let started = serde_json::from_value(w.body["started"].take()).unwrap_or(None);
            Ok((
                Created {
                    id: w.body["id"].as_str().unwrap_or_default().to_string(),
                    pid: w.body["pid"].as_i64().unwrap_or(0) as i32,
                    state_dir: PathBuf::from(w.body["dir"].as_str().unwrap_or_default()),
                    pty,
                    // (Not passed back: the helper's exit lets go of it.)
                    mounts: HeldMounts::default(),
                    made: None,
                },
                started,
            ))
        },
    )
}

/// runc's rule: a terminal needs somewhere for its master to go (a
/// console socket, or the caller itself), and a console socket a terminal.
pub(crate) fn check_console(terminal: bool, has_console: bool) -> Result<()> {
    match (terminal, has_console) {
        (true, false) => Err(Error::Config(
            "process.terminal is true but no --console-socket was given".into(),
        )),
        (false, true) => Err(Error::Config(
            "--console-socket given but process.terminal is false".into(),
        )),
        _ => Ok(()),
    }
}

/// `create` where the pty gets `console_size` (rows, columns) before the
/// program runs (the caller's terminal's, for a foreground `run -t`), and
/// is returned when `return_pty`. `loaded`: the bundle of `opts`, when the
/// caller has read it already. The stages, each its own function: check
/// (nothing exists yet), claim the id, stage what the init is cloned with,
/// clone it, place it in its cgroup, wait until it is ready (the hooks on
/// the way), record.
pub(crate) fn create_with_console(
    opts: &CreateOptions,
    loaded: Option<Bundle>,
    console_size: Option<(u16, u16)>,
    return_pty: bool,
    start_now: bool,
) -> Result<(Created, StartedNow)> {
    let Checked {
        for_init,
        terminal,
        pty_ours,
        net_devices,
    } = check(opts, loaded, return_pty)?;
    crate::log::debug!("create {}: bundle loaded and checked", opts.id);
    let Claimed {
        dir,
        dir_fd,
        mut cleanup,
        saved,
        cgroup,
        may_go_without_cgroup,
    } = claim(
        &opts.root,
        &opts.id,
        &for_init.bundle,
        opts.rootless,
        opts.systemd_cgroup,
        for_init.plan.new_pid,
    )?;
    // A systemd unit is ours to stop only once we started it (a unit of
    // that name may belong to another container).
    if !opts.systemd_cgroup {
        cleanup.cgroup = Some(cgroup.clone());
    }
    crate::log::debug!("create {}: id claimed, first state written", opts.id);
    // Without a process there is nothing to start now; `start` says so.
    let start_now = start_now && for_init.bundle.spec.process().is_some();
    let pidfd_socket = match &opts.pidfd_socket {
        Some(path) => Some(crate::sys::fdpass::connect_pidfd_socket(path)?),
        None => None,
    };
    let mut made = Made {
        dir,
        cleanup,
        saved,
        cgroup,
        may_go_without_cgroup,
    };
    let mut staged = made.stage(
        opts,
        for_init,
        &dir_fd,
        start_now,
        console_size,
        !net_devices.is_empty(),
    )?;
    let (parent_chan, child_chan) = channel::pair()?;
    let (pid, in_cgroup) =
        made.clone_staged(opts, &mut staged, dir_fd, &parent_chan, child_chan)?;
    made.place(opts, &staged, pid, in_cgroup)?;
    crate::log::debug!("create {}: init {pid} in its cgroup or joining it", opts.id);
    parent_chan.send(&Msg::Go(pid))?;
    made.after_go(&staged, pid)?;
    made.until_ready(opts, &parent_chan, pid, &staged.prepared, &net_devices)?;
    crate::log::debug!("create {}: init ready", opts.id);
    if let Some(sock) = &pidfd_socket {
        crate::sys::fdpass::send_pidfd(sock, pid, "standard")?;
    }
    // While the init waits for its start, so surely in its mount namespace.
    let mounts = if start_now {
        HeldMounts::of(pid)
    } else {
        HeldMounts::default()
    };
    let started = made.record(opts, &parent_chan, pid, terminal, start_now)?;
    crate::log::debug!("create {}: recorded", opts.id);
    let pty = match &pty_ours {
        Some(sock) => Some(crate::sys::fdpass::recv_fd(sock, "the pty master")?),
        None => None,
    };
    made.cleanup.armed = false;
    Ok((
        Created {
            id: opts.id.clone(),
            pid,
            state_dir: made.dir,
            pty,
            mounts,
            made: Some((made.saved, made.cgroup)),
        },
        started,
    ))
}

/// What create knows once the bundle is checked, before anything exists.
struct Checked {
    for_init: ForInit,
    terminal: bool,
    /// Our end of the socket pair the pty master comes back over.
    pty_ours: Option<UnixStream>,
    net_devices: Vec<crate::net::netdev::NetDev>,
}

/// Everything that can be refused is refused here, while nothing exists.
fn check(opts: &CreateOptions, loaded: Option<Bundle>, return_pty: bool) -> Result<Checked> {
    id::validate(&opts.id)?;
    let bundle = match loaded {
        Some(b) => b,
        None => load_bundle(opts)?,
    };
    let spec = &bundle.spec;
    crate::runtime::selfprotect::require_protected()?;
    let plan = Plan::from_spec(spec)?;
    let process = spec.process().as_ref();
    let caps = CapSets::from_spec(process.and_then(|p| p.capabilities().as_ref()))?;
    if let Some(p) = process {
        crate::init::lsm::validate(p)?;
    }
    let seccomp = compile_seccomp(spec)?;
    let attrs = crate::init::taskattr::ContainerAttrs::from_spec(spec)?;
    let own_netns = plan.new_net
        || plan
            .joins
            .iter()
            .any(|j| j.typ == oci_spec::runtime::LinuxNamespaceType::Network);
    let net_devices = crate::net::netdev::plan(spec, own_netns)?;
    let memory = crate::config::bundle::resources_of(spec).and_then(|r| r.memory().as_ref());
    if memory.is_some_and(|m| m.kernel().is_some()) {
        // Said, not silently dropped: Linux 6.x takes the write and ignores
        // it (runc ignores the field too).
        crate::log::warn!(
            "linux.resources.memory.kernel: has no effect: the kernel no longer enforces kernel memory limits"
        );
    }
    let terminal = process.and_then(|p| p.terminal()).unwrap_or(false);
    // The pty master comes back over a socket pair of our own.
    let (pty_ours, console) = match (terminal, return_pty, &opts.console_socket) {
        (true, true, None) => {
            let (a, b) = UnixStream::pair().map_err(|e| Error::sys("socketpair", &e))?;
            (Some(a), Some(b))
        }
        _ => (None, None),
    };
    check_console(terminal, opts.console_socket.is_some() || console.is_some())?;
    let listen = listen_fds();
    let preserved = opts.preserve_fds + listen;
    crate::runtime::stdio::require_preserved_open(listen, opts.preserve_fds)?;
    let mut env = process.and_then(|p| p.env().clone()).unwrap_or_default();
    if listen > 0 {
        env.retain(|e| !e.starts_with("LISTEN_FDS=") && !e.starts_with("LISTEN_PID="));
        env.push(format!("LISTEN_FDS={listen}"));
        env.push("LISTEN_PID=1".into());
    }
    Ok(Checked {
        for_init: ForInit {
            bundle,
            plan,
            caps,
            seccomp,
            attrs,
            console,
            preserved,
            env,
        },
        terminal,
        pty_ours,
        net_devices,
    })
}

/// The pid file: written to a temporary name, then renamed (engines poll
/// for it, so it must never be seen half-written).
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    std::fs::write(&tmp, pid.to_string()).map_err(|e| Error::path("write pid file", &tmp, &e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::path("write pid file", path, &e))
}
