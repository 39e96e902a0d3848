//! How an exec'd process gets into the container: the namespaces that
//! differ from the runtime's, the clone (through the user namespace for a
//! rootless runtime), and what the clone does before it execs.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

use nix::sched::CloneFlags;
use oci_spec::runtime::Process;

use crate::error::{Error, Result};
use crate::init::process::{self, CapSets};
use crate::runtime::channel::{Channel, Msg};
use crate::sys;

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
pub(super) fn open_namespaces(pid: i32) -> Result<Vec<(&'static str, CloneFlags, OwnedFd)>> {
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

/// Enters the pid and time namespaces for children, clones, and returns
/// to the runtime's own. `child` runs in the clone and never returns.
pub(super) fn clone_into(
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
pub(super) fn child(
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
