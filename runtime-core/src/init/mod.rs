//! The container's init, from clone to exec. It runs in the cloned child:
//! a copy of the runtime's memory, single-threaded, inside the new
//! namespaces. It never returns: it execs the user's program or exits.

pub(crate) mod cgroupfs;
pub(crate) mod console;
pub(crate) mod copyup;
pub(crate) mod devices;
pub(crate) mod lsm;
pub(crate) mod mounts;
pub(crate) mod process;
pub(crate) mod rootfs;
pub(crate) mod taskattr;
pub(crate) mod userdb;

use std::os::fd::AsRawFd;

use nix::sys::socket::{accept4, SockFlag};

use crate::error::{Error, Result};
use crate::runtime::channel::{Channel, Msg};
use crate::runtime::spawn::Prepared;
use crate::sys::safepath::Root;
use crate::{config::namespaces, runtime::hooks, sys};
use mounts::MountContext;

/// Entry point in the child. Errors before `Ready` go to the parent over
/// the channel; errors after `start` go to the `start` caller.
pub(crate) fn run(p: &Prepared, chan: Channel) -> ! {
    // The descriptors the caller gave for stdio become 0, 1 and 2.
    if let Err(e) = crate::runtime::stdio::install(p.stdio, 3 + p.preserved_fds as i32) {
        let _ = chan.send(&Msg::Fail(e.to_string()));
        sys::exit_now(1);
    }
    // Whatever the caller of create had open stays with the caller: the
    // init keeps stdio, the preserved fds and its own channels only.
    let mut keep: Vec<i32> = (0..3 + p.preserved_fds as i32).collect();
    keep.push(chan.raw());
    keep.extend(p.exec_listener.as_ref().map(|l| l.as_raw_fd()));
    keep.extend(p.plan.joins.iter().map(|j| j.fd.as_raw_fd()));
    keep.extend(p.console.as_ref().map(|c| c.as_raw_fd()));
    keep.extend(crate::log::kept_fd());
    keep.extend(p.idmapped.iter().map(|(_, fd)| fd.as_raw_fd()));
    keep.extend(
        p.seccomp
            .as_ref()
            .and_then(|s| s.listener.as_ref())
            .map(|l| l.as_raw_fd()),
    );
    if let Err(e) = sys::close_all_but(keep) {
        let _ = chan.send(&Msg::Fail(format!("close inherited descriptors: {e}")));
        sys::exit_now(1);
    }
    // Until create has recorded it, the init dies with create: a create
    // killed midway leaves no init behind (delete --force removes the rest).
    let _ = sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
    // Reported after `Go`, when the parent listens again.
    let early = match p.plan.early_flags.is_empty() {
        true => Ok(()),
        false => {
            nix::sched::unshare(p.plan.early_flags).map_err(|e| Error::sys("unshare namespaces", e))
        }
    };
    match until_ready(p, &chan, early) {
        Ok(Some((exec, host_pid))) => {
            let now = match chan.recv() {
                Ok(Some(Msg::Recorded)) => false,
                Ok(Some(Msg::RecordedStart)) => true,
                _ => sys::exit_now(1),
            };
            let _ = sys::prctl(libc::PR_SET_PDEATHSIG, 0);
            if now {
                // The exec closes the channel (close-on-exec): that is the
                // parent's word that it ran.
                let err = start_and_exec(p, exec, host_pid);
                let _ = chan.send(&Msg::Fail(err.to_string()));
                sys::exit_now(1)
            }
            // Closing the channel tells create it may exit.
            drop(chan);
            wait_start_and_exec(p, exec, host_pid)
        }
        Ok(None) => sys::exit_now(1),
        Err(e) => {
            let _ = chan.send(&Msg::Fail(e.to_string()));
            sys::exit_now(1)
        }
    }
}

/// Everything `create` does inside the container. `Ok(None)` when the
/// parent went away (nothing to report to).
fn until_ready(
    p: &Prepared,
    chan: &Channel,
    early: Result<()>,
) -> Result<Option<(Option<process::ExecArgs>, i32)>> {
    let host_pid = match chan.recv()? {
        Some(Msg::Go(pid)) => pid,
        None => return Ok(None),
        Some(other) => return Err(Error::Init(format!("unexpected message {other:?}"))),
    };
    early?;
    crate::log::debug!("init: go");
    enter_namespaces(p)?;
    make_mounts(p)?;
    crate::log::debug!("init: mounts done");
    // Hooks run after the environment exists (lifecycle step 2 is done).
    let mut state = p.saved.oci(crate::runtime::state::Status::Created);
    state.pid = host_pid;
    let state_json = serde_json::to_vec(&state).unwrap_or_default();
    if p.parent_hooks {
        chan.send(&Msg::MountsDone)?;
        match chan.recv()? {
            Some(Msg::HooksDone) => {}
            None => return Ok(None),
            Some(other) => return Err(Error::Init(format!("unexpected message {other:?}"))),
        }
    }
    hooks::run_all_in(
        "createContainer",
        &p.hooks.create_container,
        &state_json,
        &p.env,
    )?;
    switch_root(p)?;
    crate::log::debug!("init: system set up");
    // The spec lets `create` go without a process; `start` then refuses.
    let Some(process) = p.bundle.spec.process() else {
        chan.send(&Msg::Ready)?;
        return Ok(Some((None, host_pid)));
    };
    let exec = prepare_process(p, process, &state)?;
    chan.send(&Msg::Ready)?;
    Ok(Some((Some(exec), host_pid)))
}

/// Into the container's namespaces: its cgroup first (the root of a new
/// cgroup namespace is the cgroup the init is in), then the namespaces
/// to join and the new ones; root in a new user namespace, the loopback up
/// in a new network namespace, a session and a session keyring of its own.
fn enter_namespaces(p: &Prepared) -> Result<()> {
    estiba_cgroups::join_as_current_thread(&p.cgroup_tasks)?;
    let plan = &p.plan;
    for j in &plan.joins {
        namespaces::setns(j)?;
    }
    if !plan.unshare_flags.is_empty() {
        nix::sched::unshare(plan.unshare_flags).map_err(|e| Error::sys("unshare namespaces", e))?;
    }
    if plan.in_userns {
        // Become root of the user namespace; the parent mapped it.
        nix::unistd::setresgid(0.into(), 0.into(), 0.into())
            .map_err(|e| Error::sys("setgid 0 in user namespace", e))?;
        nix::unistd::setresuid(0.into(), 0.into(), 0.into())
            .map_err(|e| Error::sys("setuid 0 in user namespace", e))?;
        // A change of credentials clears the parent-death signal.
        let _ = sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
    }
    if plan.new_net {
        sys::loopback_up().map_err(|e| Error::sys("bring the loopback interface up", e))?;
    }
    sys::setsid();
    if !p.no_new_keyring {
        if let Ok(name) = std::ffi::CString::new(format!("_ses.{}", p.saved.id)) {
            // Kernels without keyrings (or with keyctl filtered) run without.
            let _ = sys::join_session_keyring(&name);
        }
    }
    Ok(())
}

/// The config's mounts and /dev, below the rootfs, in a mount namespace
/// of the container's own (without one there is nothing to mount; the
/// rootfs must still open).
fn make_mounts(p: &Prepared) -> Result<()> {
    let spec = &p.bundle.spec;
    let rootfs_path = &p.bundle.rootfs;
    // Either way the rootfs must open: an error names it here.
    let opened = Root::open(rootfs_path)?;
    if !p.plan.new_mount {
        return Ok(());
    }
    rootfs::prepare(spec, rootfs_path)?;
    // The bind changed what the rootfs path names: reopen it.
    drop(opened);
    let root = Root::open(rootfs_path)?;
    let ctx = MountContext {
        root: &root,
        bundle: &p.bundle.dir,
        in_userns: p.plan.in_userns,
        cgroup_path: &p.saved.cgroup_path,
        hierarchies: &p.cgroup_hierarchies,
        new_cgroupns: p.plan.new_cgroup,
        new_netns: p.plan.new_net,
        mount_label: spec
            .linux()
            .as_ref()
            .and_then(|l| l.mount_label().as_deref())
            .filter(|l| !l.is_empty() && crate::init::lsm::selinux_enabled()),
        idmapped: &p.idmapped,
    };
    rootfs::mount_all(&ctx, spec)?;
    rootfs::populate_dev(&ctx, spec)?;
    if let Some(process) = spec.process() {
        root.mkdir_all(process.cwd())?;
    }
    Ok(())
}

/// Into the rootfs (pivot_root, a move for `--no-pivot`, a chroot without
/// a mount namespace), then the system settings and, with a mount
/// namespace, the masked and read-only paths.
fn switch_root(p: &Prepared) -> Result<()> {
    let spec = &p.bundle.spec;
    let rootfs_path = &p.bundle.rootfs;
    if !p.plan.new_mount {
        nix::unistd::chroot(rootfs_path.as_path())
            .map_err(|e| Error::path("chroot", rootfs_path, e))?;
        nix::unistd::chdir("/").map_err(|e| Error::sys("chdir /", e))?;
        return rootfs::apply_system(spec);
    }
    let null = rootfs::HostNull::open(spec)?;
    if p.no_pivot {
        rootfs::move_root(rootfs_path)?;
    } else {
        rootfs::pivot(rootfs_path)?;
    }
    crate::log::debug!("init: pivoted");
    rootfs::reopen_dev_null()?;
    // Sysctls before readonlyPaths turns /proc/sys read-only.
    rootfs::apply_system(spec)?;
    rootfs::finalize(spec, p.plan.in_userns, null)
}

/// The process as create leaves it for `start`: its OOM score, terminal,
/// program found, and the init become it (user, capabilities, ...).
fn prepare_process(
    p: &Prepared,
    process: &oci_spec::runtime::Process,
    state: &crate::runtime::state::OciState,
) -> Result<process::ExecArgs> {
    if let Some(adj) = process.oom_score_adj() {
        crate::sys::procfs::ProcFs::open(std::path::Path::new("/proc"))?.write_named(
            &format!("process.oomScoreAdj {adj}"),
            "self/oom_score_adj",
            adj.to_string().as_bytes(),
            false,
        )?;
    }
    if let Some(sock) = &p.console {
        let size = process
            .console_size()
            .map(|b| (b.height() as u16, b.width() as u16))
            .or(p.console_size);
        crate::init::console::setup(sock, size, true)?;
    }
    let args = process.args().as_deref().unwrap_or_default();
    let env = crate::init::userdb::with_home(&p.env, process.user().uid());
    let program = process::look_path(&args[0], &env)?;
    let exec = process::ExecArgs::new(&program, args, &env)?;
    crate::log::debug!("init: program found");
    become_the_process(p, process, state)?;
    // The user switch cleared the parent-death signal; create has not
    // recorded the init yet.
    let _ = sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
    Ok(exec)
}

/// The process's own attributes, as runc sets them during create: the
/// init waits for `start` already as the user, with its capabilities and
/// its seccomp filter, so a notify listener has its fd before create
/// returns, and errors in any of it are create's errors.
fn become_the_process(
    p: &Prepared,
    process: &oci_spec::runtime::Process,
    state: &crate::runtime::state::OciState,
) -> Result<()> {
    p.attrs.apply()?;
    let seccomp = p.seccomp.as_ref().map(|plan| process::SeccompPlan {
        filter: plan.filter.clone(),
        listener: plan.listener.as_ref().and_then(|l| l.try_clone().ok()),
        metadata: plan.metadata.clone(),
        state: serde_json::to_value(state).unwrap_or_default(),
    });
    process::finalize(
        process,
        &p.caps,
        p.setgroups_allowed,
        p.preserved_fds,
        seccomp.as_ref(),
    )
}

/// Blocks until `start` connects, then finishes the process setup and execs.
fn wait_start_and_exec(p: &Prepared, exec: Option<process::ExecArgs>, host_pid: i32) -> ! {
    let Some(listener) = &p.exec_listener else {
        sys::exit_now(1)
    };
    let conn = loop {
        match accept4(listener.as_raw_fd(), SockFlag::SOCK_CLOEXEC) {
            Ok(fd) => break sys::own_fd(fd),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => sys::exit_now(1),
        }
    };
    let msg = start_and_exec(p, exec, host_pid).to_string();
    let _ = nix::sys::socket::send(
        conn.as_raw_fd(),
        msg.as_bytes(),
        nix::sys::socket::MsgFlags::MSG_NOSIGNAL,
    );
    sys::exit_now(1)
}

/// The startContainer hooks, then the exec; returns only what failed.
fn start_and_exec(p: &Prepared, exec: Option<process::ExecArgs>, host_pid: i32) -> Error {
    crate::log::debug!("init: started");
    match (finish(p, host_pid), exec) {
        (Ok(()), Some(exec)) => exec.exec(),
        (Ok(()), None) => Error::Config("process: not set, nothing to start".into()),
        (Err(e), _) => e,
    }
}

/// What is left for `start`: the startContainer hooks, which run as the
/// container's process already is (user, capabilities, seccomp), as in runc.
fn finish(p: &Prepared, host_pid: i32) -> Result<()> {
    if p.bundle.spec.process().is_none() {
        return Err(Error::Config(
            "process: required to start the container".into(),
        ));
    }
    let mut state = p.saved.oci(crate::runtime::state::Status::Created);
    state.pid = host_pid;
    let state_json = serde_json::to_vec(&state).unwrap_or_default();
    hooks::run_all_in(
        "startContainer",
        &p.hooks.start_container,
        &state_json,
        &p.env,
    )
}
