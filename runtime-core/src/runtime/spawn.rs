//! The init's making, in the runtime: what it is cloned with, the clone,
//! its place in its cgroup, the wait until it is ready (hooks on the way),
//! and the final record.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::sys::signal::Signal;
use nix::sys::socket::{bind, listen, Backlog};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::Hook;

use crate::config::bundle::resources_of;
use crate::config::bundle::Bundle;
use crate::config::namespaces::{self, Plan};
use crate::error::{Error, Result};
use crate::init::process::CapSets;
use crate::runtime::channel::{self, Msg};
use crate::runtime::claim::Cleanup;
use crate::runtime::create::{write_pid_file, CreateOptions, StartedNow};
use crate::runtime::state::{self, Saved, EXEC_SOCKET};
use crate::{runtime::hooks, sys};

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

/// The checked parts that go into the init's [`Prepared`].
pub(crate) struct ForInit {
    pub(crate) bundle: Bundle,
    pub(crate) plan: Plan,
    pub(crate) caps: CapSets,
    pub(crate) seccomp: Option<crate::init::process::SeccompPlan>,
    pub(crate) attrs: crate::init::taskattr::ContainerAttrs,
    /// The init's end of the pty socket pair.
    pub(crate) console: Option<UnixStream>,
    pub(crate) preserved: u32,
    pub(crate) env: Vec<String>,
}

/// What the init is cloned with, and where in its cgroup it is born.
pub(crate) struct Staged {
    pub(crate) prepared: Prepared,
    pub(crate) placement: Option<estiba_cgroups::Placement>,
}

impl Staged {
    /// Whether the init writes itself into its v1 cgroups after `Go`.
    fn joins_v1_itself(&self) -> bool {
        self.placement.as_ref().is_some_and(|p| !p.tasks.is_empty())
    }
}

/// What a create has made so far, and the cleanup that undoes it unless
/// disarmed: the state dir and its state, the cgroup.
pub(crate) struct Made {
    pub(crate) dir: PathBuf,
    pub(crate) cleanup: Cleanup,
    pub(crate) saved: Saved,
    pub(crate) cgroup: estiba_cgroups::Cgroup,
    pub(crate) may_go_without_cgroup: bool,
}

impl Made {
    /// Once the id is ours: the descriptors, hooks, id-mapped trees and
    /// cgroup placement the init is cloned with.
    pub(crate) fn stage(
        &mut self,
        opts: &CreateOptions,
        init: ForInit,
        dir_fd: &OwnedFd,
        start_now: bool,
        console_size: Option<(u16, u16)>,
        net_devices: bool,
    ) -> Result<Staged> {
        let spec = &init.bundle.spec;
        let exec_listener = match start_now {
            true => None,
            false => Some(listen_socket(dir_fd, &self.dir)?),
        };
        let console = match (&opts.console_socket, init.console) {
            (Some(path), _) => Some(crate::sys::fdpass::connect_console_socket(path)?),
            (None, internal) => internal,
        };
        let hooks = stage_hooks(spec);
        // Also with only createContainer hooks: the init's MountsDone tells
        // the parent that hooks are about to run (see Cleanup::poststop).
        // Also to move network devices: the init's network namespace exists
        // by then (with a joined user namespace it makes it after clone).
        let parent_hooks = !hooks.prestart.is_empty()
            || !hooks.create_runtime.is_empty()
            || !hooks.create_container.is_empty()
            || net_devices;
        // Before clone: only the runtime (root on the host) may id-map.
        let idmapped = crate::runtime::idmap::prepare(spec, &init.bundle.dir)?;
        // Made before the init exists, so it gets in without being moved by
        // pid (see `make_before_clone`); elsewhere it is moved in after clone.
        let placement = match self.may_go_without_cgroup {
            true => None,
            false => self.cgroup.make_before_clone(!init.plan.in_userns)?,
        };
        if let Some(placement) = &placement {
            self.cleanup.cgroup_parents_made = placement.parents_made.clone();
            self.saved.cgroup_parents_made = placement.parents_made.clone();
        }
        let prepared = Prepared {
            cgroup_hierarchies: self.cgroup.hierarchies(),
            cgroup_tasks: placement
                .as_ref()
                .map(|p| p.tasks.clone())
                .unwrap_or_default(),
            idmapped,
            seccomp: init.seccomp,
            attrs: init.attrs,
            stdio: opts.stdio.raw(),
            setgroups_allowed: crate::runtime::rootless::setgroups_allowed(spec),
            plan: init.plan,
            caps: init.caps,
            env: init.env,
            saved: self.saved.clone(),
            hooks,
            parent_hooks,
            console,
            console_size,
            exec_listener,
            no_pivot: opts.no_pivot,
            no_new_keyring: opts.no_new_keyring,
            preserved_fds: init.preserved,
            bundle: init.bundle,
        };
        Ok(Staged {
            prepared,
            placement,
        })
    }

    /// Clones the init (into its v2 cgroup where it was made before).
    /// Returns the pid, and whether it was born in its cgroup. The pid is
    /// recorded after `Go`; a create killed before then takes its init
    /// with it, and `delete --force` waits for a cgroup holding only dying
    /// processes before removing it.
    pub(crate) fn clone_staged(
        &mut self,
        opts: &CreateOptions,
        staged: &mut Staged,
        dir_fd: OwnedFd,
        parent_chan: &channel::Channel,
        child_chan: channel::Channel,
    ) -> Result<(i32, bool)> {
        let placement = &staged.placement;
        // Pure v2: born in its cgroup, limited already.
        if placement.as_ref().is_some_and(|p| p.tasks.is_empty()) {
            self.cgroup
                .apply(resources_of(&staged.prepared.bundle.spec))?;
        }
        crate::log::debug!("create {}: cloning the init", opts.id);
        let (pid, in_cgroup) = clone_init(
            &staged.prepared,
            dir_fd,
            parent_chan.raw(),
            child_chan,
            placement
                .as_ref()
                .and_then(|p| p.clone_into.as_ref())
                .map(std::os::fd::AsFd::as_fd),
        )?;
        self.cleanup.pid = Some(pid);
        crate::init::taskattr::start_elsewhere(pid);
        crate::log::debug!(
            "create {}: init {pid} cloned{}",
            opts.id,
            if in_cgroup { " into its cgroup" } else { "" }
        );
        // Recorded after `Go` (`after_go`), off the path to it: until then
        // the init dies with this process (its parent-death signal, or
        // the channel's end) and the state names the cgroup already.
        // The init holds its own copies now.
        staged.prepared.console = None;
        staged.prepared.exec_listener = None;
        staged.prepared.idmapped = Vec::new();
        Ok((pid, in_cgroup))
    }

    /// The init's id maps, CPU affinity and cgroup, where clone did not
    /// place it; limits applied, but for the init that joins its v1
    /// cgroups itself: see [`Made::after_go`].
    pub(crate) fn place(
        &mut self,
        opts: &CreateOptions,
        staged: &Staged,
        pid: i32,
        in_cgroup: bool,
    ) -> Result<()> {
        let spec = &staged.prepared.bundle.spec;
        let resources = resources_of(&staged.prepared.bundle.spec);
        let placement = &staged.placement;
        if staged.prepared.plan.new_user {
            crate::runtime::rootless::write_id_maps(pid, spec)?;
        }
        crate::init::taskattr::reset_affinity(pid, None)?;
        let (cgroup, saved, cleanup) = (&mut self.cgroup, &mut self.saved, &mut self.cleanup);
        if staged.joins_v1_itself() {
            // While the init makes its namespaces; it joins these after `Go`.
            let made = cgroup.make_v1()?;
            if !made.is_empty() {
                cleanup.cgroup_parents_made.extend(made.iter().cloned());
                saved.cgroup_parents_made.extend(made);
                saved.save_keeping_spare(&self.dir)?;
            }
            // The dirs (and their cpusets) are what the init's join needs,
            // and complete device rules what its first device (a mknod, a
            // pty) needs: v1's are written one by one, and a /dev/zero
            // made halfway through was refused (1 in ~500 parallel runs).
            return cgroup.apply_device_rules(resources).map_err(Into::into);
        }
        let clone3_refused = placement
            .as_ref()
            .is_some_and(|p| p.clone_into.is_some() && !in_cgroup);
        if clone3_refused {
            // Made and limited already; the init's own writes to `tasks`
            // then find it in place.
            return cgroup.enter(pid).map_err(Into::into);
        }
        if placement.is_some() {
            return Ok(());
        }
        let recorded = (
            saved.cgroup_parents_made.clone(),
            saved.cgroup_left_out.clone(),
        );
        cleanup.cgroup_parents_made = if self.may_go_without_cgroup {
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
        // first state says it already.
        if saved.cgroup_parents_made != recorded.0 || saved.cgroup_left_out != recorded.1 {
            saved.save_keeping_spare(&self.dir)?;
        }
        if opts.systemd_cgroup {
            cleanup.cgroup = Some(cgroup.clone());
        }
        cgroup.apply(resources).map_err(Into::into)
    }

    /// What the parent does after `Go`, while the init makes its mounts
    /// (it would only wait): the config kept in the state, and the limits
    /// `place` left for now (all but the device rules), before anything of
    /// the container's runs (the init waits for the parent after its mounts
    /// when there are hooks, and execs only once recorded). runc too sets
    /// limits once its init is ready; done before `Go` they held it back.
    pub(crate) fn after_go(&mut self, staged: &Staged, pid: i32) -> Result<()> {
        // Before any hook runs: a create killed during one then reads as
        // stopped once its init is gone. (Saved again by `record`, plain.)
        self.saved.pid = pid;
        self.saved.pid_start = state::proc_start_time(pid).map(|s| s.0).unwrap_or(0);
        let spec = &staged.prepared.bundle.spec;
        self.saved.config = Some(crate::runtime::claim::config_text(spec)?);
        self.saved.save_keeping_spare(&self.dir)?;
        if !staged.joins_v1_itself() {
            return Ok(());
        }
        self.cgroup
            .apply_limits(resources_of(spec))
            .map_err(Into::into)
    }

    /// After `Go`: until the init is `Ready`, moving network devices in and
    /// running prestart and createRuntime hooks when its mounts are done.
    pub(crate) fn until_ready(
        &mut self,
        opts: &CreateOptions,
        parent_chan: &channel::Channel,
        pid: i32,
        prepared: &Prepared,
        net_devices: &[crate::net::netdev::NetDev],
    ) -> Result<()> {
        loop {
            match parent_chan.recv()? {
                Some(Msg::MountsDone) => {
                    crate::log::debug!("create {}: init's mounts done, hooks next", opts.id);
                    // Before the hooks: a CNI prestart hook sees the devices.
                    crate::net::netdev::move_all(net_devices, pid)?;
                    let saved = &self.saved;
                    if !saved.poststop.is_empty() {
                        let stopped = saved.oci(state::Status::Stopped);
                        self.cleanup.poststop = Some((
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
                Some(Msg::Ready) => return Ok(()),
                Some(Msg::Fail(msg)) => return Err(Error::Init(msg)),
                Some(other) => {
                    return Err(Error::Init(format!(
                        "unexpected message {other:?} from init"
                    )))
                }
                None => return Err(Error::Init(init_died(pid, &self.cgroup))),
            }
        }
    }

    /// The final state and the pid file; the init stops dying with us,
    /// then closes the channel: wait for that (bounded by the init's own
    /// progress: it only disarms and closes). Started now, the channel
    /// closes at its exec (or says what failed).
    pub(crate) fn record(
        &mut self,
        opts: &CreateOptions,
        parent_chan: &channel::Channel,
        pid: i32,
        terminal: bool,
        start_now: bool,
    ) -> Result<StartedNow> {
        if !terminal {
            self.saved.stdio = crate::runtime::stdio::names(opts.stdio.raw());
        }
        self.saved.created_done = true;
        self.saved.save(&self.dir)?;
        let unexpected = |m: Msg| Error::Init(format!("unexpected message {m:?} from init"));
        if start_now {
            if let Some(pid_file) = &opts.pid_file {
                write_pid_file(pid_file, pid)?;
            }
            parent_chan.send(&Msg::RecordedStart)?;
            return match parent_chan.recv()? {
                None => Ok(Some(Ok(()))),
                Some(Msg::Fail(msg)) => Ok(Some(Err(msg))),
                Some(other) => Err(unexpected(other)),
            };
        }
        parent_chan.send(&Msg::Recorded)?;
        if let Some(other) = parent_chan.recv()? {
            return Err(unexpected(other));
        }
        if let Some(pid_file) = &opts.pid_file {
            write_pid_file(pid_file, pid)?;
        }
        Ok(None)
    }
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
