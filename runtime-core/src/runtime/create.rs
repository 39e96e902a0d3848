//! `create`, parent side: validate, take the id, clone the init into its
//! namespaces, map ids, put it in its cgroup, run the runtime-namespace
//! hooks, and record the state once the init waits for `start`.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::sys::signal::{kill, Signal};
use nix::sys::socket::{bind, listen, Backlog};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::Hook;

use crate::config::bundle::Bundle;
use crate::config::namespaces::{self, Plan};
use crate::error::{Error, Result};
use crate::init::process::CapSets;
use crate::runtime::channel::{self, Msg};
use crate::runtime::state::{self, Saved, EXEC_SOCKET};
use crate::{config::id, runtime::hooks, sys};

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

#[derive(Default)]
pub(crate) struct StageHooks {
    pub prestart: Vec<Hook>,
    pub create_runtime: Vec<Hook>,
    pub create_container: Vec<Hook>,
    pub start_container: Vec<Hook>,
}

/// Everything the init needs, prepared before clone so that the child
/// parses and allocates as little as possible.
pub(crate) struct Prepared {
    pub bundle: Bundle,
    /// Personality and memory policy: the container's, for every process.
    pub attrs: crate::init::taskattr::ContainerAttrs,
    /// The caller's descriptors that become the init's 0, 1 and 2.
    pub stdio: [Option<std::os::fd::RawFd>; 3],
    pub plan: Plan,
    pub caps: CapSets,
    pub env: Vec<String>,
    pub saved: Saved,
    pub hooks: StageHooks,
    /// Whether the parent runs prestart/createRuntime hooks mid-way.
    pub parent_hooks: bool,
    pub console: Option<UnixStream>,
    /// The pty's size when the spec gives none (the caller's terminal's).
    pub console_size: Option<(u16, u16)>,
    /// The exec socket `start` connects to; none when create starts the
    /// process itself (`run`).
    pub exec_listener: Option<OwnedFd>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserved_fds: u32,
    pub setgroups_allowed: bool,
    pub seccomp: Option<crate::init::process::SeccompPlan>,
    /// Id-mapped mounts, made by the runtime for the init to attach.
    pub idmapped: crate::runtime::idmap::Prepared,
    /// The v1 `tasks` files the init writes "0" to, first thing after
    /// `Go`: it moves itself into its cgroup (see `make_before_clone`).
    pub cgroup_tasks: Vec<PathBuf>,
    /// The host's cgroup hierarchies as the runtime read them: the init's
    /// mount table is a copy of the runtime's, so it need not read it again.
    pub cgroup_hierarchies: Vec<estiba_cgroups::hierarchy::Hierarchy>,
}

/// The container's seccomp filter, compiled (and its listener connected)
/// before any process exists, so a bad profile fails create cleanly.
pub(crate) fn compile_seccomp(
    spec: &oci_spec::runtime::Spec,
) -> Result<Option<crate::init::process::SeccompPlan>> {
    let Some(s) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) else {
        return Ok(None);
    };
    let filter = estiba_seccomp::compile(s).map_err(|e| Error::Config(e.to_string()))?;
    for arch in &filter.foreign {
        crate::log::debug!(
            "linux.seccomp: {arch:?} programs cannot run on this machine; no rules for them"
        );
    }
    for (arch, name) in &filter.skipped {
        crate::log::debug!("linux.seccomp: {arch:?} has no syscall {name:?}; skipped");
    }
    let listener = match s.listener_path() {
        Some(path) if filter.notify => Some(
            UnixStream::connect(path)
                .map_err(|e| Error::path("connect seccomp listener", path, &e))?,
        ),
        _ => None,
    };
    Ok(Some(crate::init::process::SeccompPlan {
        filter,
        listener,
        metadata: s.listener_metadata().clone().unwrap_or_default(),
        state: serde_json::Value::Null,
    }))
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
}

fn stage_hooks(spec: &oci_spec::runtime::Spec) -> StageHooks {
    let Some(h) = spec.hooks() else {
        return StageHooks::default();
    };
    let v = |x: &Option<Vec<Hook>>| x.clone().unwrap_or_default();
    #[allow(deprecated)]
    let prestart = v(h.prestart());
    StageHooks {
        prestart,
        create_runtime: v(h.create_runtime()),
        create_container: v(h.create_container()),
        start_container: v(h.start_container()),
    }
}

/// `LISTEN_FDS` from systemd socket activation is passed on, as runc does.
fn listen_fds() -> u32 {
    std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Undoes a half-made container when create (or restore) fails.
pub(crate) struct Cleanup {
    dir: PathBuf,
    pub(crate) cgroup: Option<estiba_cgroups::Cgroup>,
    pub(crate) cgroup_parents_made: Vec<PathBuf>,
    pub(crate) pid: Option<i32>,
    pub(crate) armed: bool,
    /// Set once create-time hooks may have run: a failure from then on
    /// continues the lifecycle at "destroy", then poststop (runtime.md).
    poststop: Option<(Vec<oci_spec::runtime::Hook>, Vec<u8>)>,
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
/// caller has read it already.
pub(crate) fn create_with_console(
    opts: &CreateOptions,
    loaded: Option<Bundle>,
    console_size: Option<(u16, u16)>,
    return_pty: bool,
    start_now: bool,
) -> Result<(Created, StartedNow)> {
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
    let memory = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.memory().as_ref());
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
    for fd in 3..3 + preserved as i32 {
        nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD)
            .map_err(|_| Error::Config(format!("--preserve-fds: fd {fd} is not open")))?;
    }
    let mut env = process.and_then(|p| p.env().clone()).unwrap_or_default();
    if listen > 0 {
        env.retain(|e| !e.starts_with("LISTEN_FDS=") && !e.starts_with("LISTEN_PID="));
        env.push(format!("LISTEN_FDS={listen}"));
        env.push("LISTEN_PID=1".into());
    }
    crate::log::debug!("create {}: bundle loaded and checked", opts.id);
    let Claimed {
        dir,
        dir_fd,
        mut cleanup,
        mut saved,
        mut cgroup,
        may_go_without_cgroup,
    } = claim(
        &opts.root,
        &opts.id,
        &bundle,
        opts.rootless,
        opts.systemd_cgroup,
        plan.new_pid,
    )?;
    // A systemd unit is ours to stop only once we started it (a unit of
    // that name may belong to another container).
    if !opts.systemd_cgroup {
        cleanup.cgroup = Some(cgroup.clone());
    }
    crate::log::debug!("create {}: id claimed, first state written", opts.id);

    // Without a process there is nothing to start now; `start` says so.
    let start_now = start_now && spec.process().is_some();
    let exec_listener = match start_now {
        true => None,
        false => Some(listen_socket(&dir_fd, &dir)?),
    };
    let console = match (&opts.console_socket, console) {
        (Some(path), _) => Some(crate::sys::fdpass::connect_console_socket(path)?),
        (None, internal) => internal,
    };
    let pidfd_socket = match &opts.pidfd_socket {
        Some(path) => Some(crate::sys::fdpass::connect_pidfd_socket(path)?),
        None => None,
    };
    let (parent_chan, child_chan) = channel::pair()?;
    let hooks = stage_hooks(spec);
    // Also with only createContainer hooks: the init's MountsDone tells
    // the parent that hooks are about to run (see Cleanup::poststop).
    // Also to move network devices: the init's network namespace exists
    // by then (with a joined user namespace it makes it after clone).
    let parent_hooks = !hooks.prestart.is_empty()
        || !hooks.create_runtime.is_empty()
        || !hooks.create_container.is_empty()
        || !net_devices.is_empty();
    // Before clone: only the runtime (root on the host) may id-map.
    let idmapped = crate::runtime::idmap::prepare(spec, &bundle.dir)?;
    // Made before the init exists, so it gets in without being moved by
    // pid (see `make_before_clone`); elsewhere it is moved in after clone.
    let placement = match may_go_without_cgroup {
        true => None,
        false => cgroup.make_before_clone(!plan.in_userns)?,
    };
    if let Some(placement) = &placement {
        cleanup.cgroup_parents_made = placement.parents_made.clone();
        saved.cgroup_parents_made = placement.parents_made.clone();
    }
    let prepared = Prepared {
        cgroup_hierarchies: cgroup.hierarchies(),
        cgroup_tasks: placement
            .as_ref()
            .map(|p| p.tasks.clone())
            .unwrap_or_default(),
        idmapped,
        seccomp,
        attrs,
        stdio: opts.stdio.raw(),
        setgroups_allowed: crate::runtime::rootless::setgroups_allowed(spec),
        bundle,
        plan,
        caps,
        env,
        saved: saved.clone(),
        hooks,
        parent_hooks,
        console,
        console_size,
        exec_listener,
        no_pivot: opts.no_pivot,
        no_new_keyring: opts.no_new_keyring,
        preserved_fds: preserved,
    };

    let resources = prepared
        .bundle
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref());
    // Pure v2: born in its cgroup, limited already.
    let v1_after_clone = placement.as_ref().is_some_and(|p| !p.tasks.is_empty());
    if placement.is_some() && !v1_after_clone {
        cgroup.apply(resources)?;
    }
    crate::log::debug!("create {}: cloning the init", opts.id);
    let (pid, in_cgroup) = clone_init(
        &prepared,
        dir_fd,
        parent_chan.raw(),
        child_chan,
        placement
            .as_ref()
            .and_then(|p| p.clone_into.as_ref())
            .map(std::os::fd::AsFd::as_fd),
    )?;
    cleanup.pid = Some(pid);
    crate::log::debug!(
        "create {}: init {pid} cloned{}",
        opts.id,
        if in_cgroup { " into its cgroup" } else { "" }
    );
    // Recorded before the init is moved into its cgroup (or, born in it,
    // with the parents made): a create killed from here on leaves a pid
    // that `delete --force` kills and waits for, so the cgroup is empty
    // when it is removed.
    saved.pid = pid;
    saved.pid_start = state::proc_start_time(pid).map(|s| s.0).unwrap_or(0);
    saved.save(&dir)?;
    // The init holds its own copies now.
    drop(prepared.console);
    drop(prepared.exec_listener);
    drop(prepared.idmapped);
    let spec = &prepared.bundle.spec;

    if prepared.plan.new_user {
        crate::runtime::rootless::write_id_maps(pid, spec)?;
    }
    crate::init::taskattr::reset_affinity(pid, None)?;
    if v1_after_clone {
        // While the init makes its namespaces; it joins these after `Go`.
        let made = cgroup.make_v1()?;
        if !made.is_empty() {
            cleanup.cgroup_parents_made.extend(made.iter().cloned());
            saved.cgroup_parents_made.extend(made);
            saved.save(&dir)?;
        }
        cgroup.apply(resources)?;
    }
    let clone3_refused = placement
        .as_ref()
        .is_some_and(|p| p.clone_into.is_some() && !in_cgroup);
    if clone3_refused {
        // Made and limited already; the init's own writes to `tasks`
        // then find it in place.
        cgroup.enter(pid)?;
    } else if placement.is_none() {
        let recorded = (
            saved.cgroup_parents_made.clone(),
            saved.cgroup_left_out.clone(),
        );
        cleanup.cgroup_parents_made = if may_go_without_cgroup {
            let made = cgroup.create_rootless(pid, resources)?;
            saved.cgroup_left_out = cgroup.left_out();
            made
        } else {
            let mut made = cgroup.create(pid, resources)?;
            // Made before a clone3 the kernel refused.
            made.extend(saved.cgroup_parents_made.iter().cloned());
            made
        };
        saved.cgroup_parents_made = cleanup.cgroup_parents_made.clone();
        // What a killed create leaves is found from this: the cgroup and the
        // parents it made (the init dies with create until it is recorded).
        // Unchanged (no parent made, nothing left out: the usual case), the
        // state written with the pid says it already.
        if saved.cgroup_parents_made != recorded.0 || saved.cgroup_left_out != recorded.1 {
            saved.save(&dir)?;
        }
        if opts.systemd_cgroup {
            cleanup.cgroup = Some(cgroup.clone());
        }
        cgroup.apply(resources)?;
    }
    crate::log::debug!("create {}: init {pid} in its cgroup or joining it", opts.id);
    parent_chan.send(&Msg::Go(pid))?;
    loop {
        match parent_chan.recv()? {
            Some(Msg::MountsDone) => {
                crate::log::debug!("create {}: init's mounts done, hooks next", opts.id);
                // Before the hooks: a CNI prestart hook sees the devices.
                crate::net::netdev::move_all(&net_devices, pid)?;
                if !saved.poststop.is_empty() {
                    let stopped = saved.oci(state::Status::Stopped);
                    cleanup.poststop = Some((
                        saved.poststop.clone(),
                        serde_json::to_vec(&stopped).unwrap_or_default(),
                    ));
                }
                // Lifecycle step 2 (the environment) is done: hooks see `created`.
                let json =
                    serde_json::to_vec(&saved.oci(state::Status::Created)).unwrap_or_default();
                #[allow(deprecated)]
                hooks::run_all("prestart", &prepared.hooks.prestart, &json)?;
                hooks::run_all("createRuntime", &prepared.hooks.create_runtime, &json)?;
                parent_chan.send(&Msg::HooksDone)?;
            }
            Some(Msg::Ready) => break,
            Some(Msg::Fail(msg)) => return Err(Error::Init(msg)),
            Some(other) => {
                return Err(Error::Init(format!(
                    "unexpected message {other:?} from init"
                )))
            }
            None => return Err(Error::Init(init_died(pid, &cgroup))),
        }
    }
    crate::log::debug!("create {}: init ready", opts.id);
    if let Some(sock) = &pidfd_socket {
        crate::sys::fdpass::send_pidfd(sock, pid, "standard")?;
    }
    if !terminal {
        saved.stdio = crate::runtime::stdio::names(opts.stdio.raw());
    }
    saved.created_done = true;
    let dir = state::container_dir(&opts.root, &opts.id);
    saved.save(&dir)?;
    // The init stops dying with us, then closes the channel: wait for that
    // (bounded by the init's own progress: it only disarms and closes).
    // Started now, the channel closes at its exec (or says what failed).
    let started = if start_now {
        if let Some(pid_file) = &opts.pid_file {
            write_pid_file(pid_file, pid)?;
        }
        parent_chan.send(&Msg::RecordedStart)?;
        match parent_chan.recv()? {
            None => Some(Ok(())),
            Some(Msg::Fail(msg)) => Some(Err(msg)),
            Some(other) => {
                return Err(Error::Init(format!(
                    "unexpected message {other:?} from init"
                )))
            }
        }
    } else {
        parent_chan.send(&Msg::Recorded)?;
        if let Some(other) = parent_chan.recv()? {
            return Err(Error::Init(format!(
                "unexpected message {other:?} from init"
            )));
        }
        if let Some(pid_file) = &opts.pid_file {
            write_pid_file(pid_file, pid)?;
        }
        None
    };
    crate::log::debug!("create {}: recorded", opts.id);
    let pty = match &pty_ours {
        Some(sock) => Some(crate::sys::fdpass::recv_fd(sock, "the pty master")?),
        None => None,
    };
    cleanup.armed = false;
    Ok((
        Created {
            id: opts.id.clone(),
            pid,
            state_dir: dir,
            pty,
        },
        started,
    ))
}

/// What making a container starts with, shared by create and restore: its
/// cgroup planned, opened and checked against the config's resources, its
/// id claimed (a locked state dir), its first state and config copy
/// written. The cleanup undoes it all unless disarmed.
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
    cgroup.check(spec.linux().as_ref().and_then(|l| l.resources().as_ref()))?;
    let (dir, dir_fd) = claim_id(root, id)?;
    let cleanup = Cleanup::new(&dir);
    let saved = first_state(id, bundle, &cgroup_path, systemd, own_pid_ns);
    saved.save(&dir)?;
    save_config_copy(&dir, spec)?;
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
        owner: owner_name(),
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
    }
}

/// The config as created: exec and `spec()` read this copy, never the
/// bundle again (an edited or removed bundle changes nothing).
fn save_config_copy(dir: &Path, spec: &oci_spec::runtime::Spec) -> Result<()> {
    let copy = dir.join(state::CONFIG_COPY);
    std::fs::write(&copy, serde_json::to_vec(spec).unwrap_or_default())
        .map_err(|e| Error::path("write", &copy, &e))
}

/// The exec socket `start` connects to; bound through the state dir's fd so
/// a long `--root` never hits the 108-byte socket path limit.
fn listen_socket(dir_fd: &OwnedFd, dir: &Path) -> Result<OwnedFd> {
    let (sock, addr) = state::exec_socket(dir_fd.as_raw_fd())?;
    bind(sock.as_raw_fd(), &addr).map_err(|e| Error::path("bind", dir.join(EXEC_SOCKET), e))?;
    listen(&sock, Backlog::new(1).unwrap_or(Backlog::MAXCONN))
        .map_err(|e| Error::path("listen", dir.join(EXEC_SOCKET), e))?;
    Ok(sock)
}

/// Joins the pid/time namespaces that only apply to children, clones the
/// init, and returns to the runtime's own namespaces.
/// With `cgroup` (a v2 directory) the init is born in that cgroup where
/// the kernel allows it; the flag says whether it was.
fn clone_init(
    p: &Prepared,
    dir_fd: OwnedFd,
    parent_end: i32,
    child_chan: channel::Channel,
    cgroup: Option<std::os::fd::BorrowedFd<'_>>,
) -> Result<(i32, bool)> {
    let restore: Vec<(OwnedFd, nix::sched::CloneFlags)> =
        if p.plan.parent_joins.is_empty() && !p.plan.new_time {
            vec![]
        } else {
            let mut v = vec![];
            for (name, flag) in [
                ("pid", nix::sched::CloneFlags::CLONE_NEWPID),
                (
                    "time",
                    nix::sched::CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
                ),
            ] {
                if let Ok(fd) = nix::fcntl::open(
                    format!("/proc/self/ns/{name}").as_str(),
                    nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
                    nix::sys::stat::Mode::empty(),
                ) {
                    v.push((sys::own_fd(fd), flag));
                }
            }
            v
        };
    for j in &p.plan.parent_joins {
        namespaces::setns(j)?;
    }
    if p.plan.new_time {
        nix::sched::unshare(nix::sched::CloneFlags::from_bits_retain(
            libc::CLONE_NEWTIME,
        ))
        .map_err(|e| Error::sys("unshare time namespace", e))?;
        namespaces::write_time_offsets(&p.bundle.spec)?;
    }
    let flags = p.plan.clone_flags.bits();
    let into = cgroup.and_then(|fd| match sys::clone_into_cgroup(flags, fd) {
        Ok(pid) => Some(pid),
        Err(e) => {
            // Kernels before 5.7, or a clone3 filtered: moved in after.
            crate::log::debug!("clone3 into the cgroup: {e}; cloning, then moving the init");
            None
        }
    });
    let in_cgroup = into.is_some();
    let pid = match into {
        Some(pid) => pid,
        None => sys::clone_fork(flags).map_err(|e| Error::sys("clone container init", e))?,
    };
    if pid == 0 {
        // In the init. Drop what belongs to the parent: its channel end,
        // and the state-dir lock, which `start` must be able to take.
        let _ = nix::unistd::close(parent_end);
        drop(dir_fd);
        crate::init::run(p, child_chan);
    }
    drop(child_chan);
    for (fd, flag) in &restore {
        let _ = nix::sched::setns(fd, *flag);
    }
    Ok((pid, in_cgroup))
}

fn init_died(pid: i32, cgroup: &estiba_cgroups::Cgroup) -> String {
    match waitpid(Pid::from_raw(pid), None) {
        Ok(nix::sys::wait::WaitStatus::Exited(_, code)) => {
            format!("container init exited with status {code} before it was ready")
        }
        // Killed by the OOM killer: the memory limit is too low to start.
        Ok(nix::sys::wait::WaitStatus::Signaled(_, Signal::SIGKILL, _)) if cgroup.oom_kills().is_ok_and(|n| n > 0) => {
            "container init was OOM-killed before it was ready: linux.resources.memory.limit is too low".into()
        }
        Ok(nix::sys::wait::WaitStatus::Signaled(_, sig, _)) => {
            format!("container init was killed by {sig} before it was ready")
        }
        _ => "container init exited before it was ready".into(),
    }
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

/// The caller's user name from /etc/passwd (no NSS: loading its modules
/// would cost more than the rest of create), else the uid.
fn owner_name() -> String {
    let uid = nix::unistd::geteuid().as_raw();
    let from_passwd = std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?;
                let id: u32 = f.nth(1)?.parse().ok()?;
                (id == uid).then(|| name.to_string())
            })
        });
    from_passwd.unwrap_or_else(|| uid.to_string())
}
