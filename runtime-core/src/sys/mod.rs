//! The syscall boundary: every `unsafe` block of the runtime lives here, each
//! wrapping one system call that `nix` does not cover the way we need it.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

/// `clone(2)` without a new stack: the child continues like after `fork`,
/// but is born directly inside the namespaces named by `flags`.
///
/// Returns `0` in the child and the child's pid in the parent.
///
/// The caller must be single-threaded (estiba is, until this point).
pub fn clone_fork(flags: libc::c_int) -> Result<libc::pid_t, Errno> {
    for_the_caller(flags, clone_here)
}

/// Runs `clone` with `flags` made for whoever the library's caller is: in
/// a helper (see helper.rs) the caller is the parent (CLONE_PARENT), and
/// the helper reports the child it made.
fn for_the_caller(
    flags: libc::c_int,
    clone: impl FnOnce(libc::c_int) -> Result<libc::pid_t, Errno>,
) -> Result<libc::pid_t, Errno> {
    let flags = match crate::runtime::helper::in_helper() {
        true => flags | libc::CLONE_PARENT,
        false => flags,
    };
    let pid = clone(flags)?;
    if pid > 0 {
        crate::runtime::helper::cloned(pid);
    }
    Ok(pid)
}

/// struct clone_args (linux/sched.h), up to `cgroup` (CLONE_ARGS_SIZE_VER2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// [`clone_fork`] with the child born in the cgroup v2 directory `cgroup`
/// (clone3's CLONE_INTO_CGROUP, Linux 5.7). Errors leave no child; the
/// caller may then clone without it and move the child in.
pub fn clone_into_cgroup(flags: libc::c_int, cgroup: BorrowedFd<'_>) -> Result<libc::pid_t, Errno> {
    for_the_caller(flags, |flags| {
        let args = CloneArgs {
            flags: flags as u32 as u64 | CLONE_INTO_CGROUP,
            exit_signal: libc::SIGCHLD as u64,
            cgroup: cgroup.as_raw_fd() as u64,
            ..Default::default()
        };
        // SAFETY: as clone_here: no stack given, so the child goes on like
        // a fork's on a copy of this stack; the process is single-threaded.
        // The args struct lives across the call and its size is passed.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_clone3,
                &args as *const CloneArgs,
                std::mem::size_of::<CloneArgs>(),
            )
        };
        Errno::result(ret).map(|r| r as libc::pid_t)
    })
}

/// [`clone_fork`] as asked, whoever the caller is: the child is this
/// process's (or, with CLONE_PARENT, its parent's).
pub fn clone_here(flags: libc::c_int) -> Result<libc::pid_t, Errno> {
    // SAFETY: a NULL stack makes the kernel reuse the caller's stack in the
    // child (copy-on-write), exactly as fork does; the process is
    // single-threaded (a multi-threaded caller's work runs in a helper) so
    // no lock can be held by a thread that vanishes.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_int>(),
            std::ptr::null_mut::<libc::c_int>(),
            0 as libc::c_ulong,
        )
    };
    Errno::result(ret).map(|r| r as libc::pid_t)
}

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

pub const RESOLVE_NO_XDEV: u64 = 0x01;
pub const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
pub const RESOLVE_NO_SYMLINKS: u64 = 0x04;
pub const RESOLVE_BENEATH: u64 = 0x08;
pub const RESOLVE_IN_ROOT: u64 = 0x10;

/// `openat2(2)`: open `path` relative to `dirfd` with `resolve` restrictions.
pub fn openat2(
    dirfd: BorrowedFd<'_>,
    path: &CStr,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> Result<OwnedFd, Errno> {
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: mode as u64,
        resolve,
    };
    loop {
        // SAFETY: `how` is a valid open_how of the size we pass, `path` is
        // NUL-terminated and outlives the call.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dirfd.as_raw_fd(),
                path.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        match Errno::result(ret) {
            // SAFETY: the kernel just returned this new descriptor to us.
            Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }),
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Marks every descriptor from `first` upward close-on-exec, so nothing of
/// the runtime survives into the container's program.
pub fn cloexec_from(first: RawFd) -> Result<(), Errno> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range only changes descriptor flags; no memory is touched.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    };
    if Errno::result(ret).is_ok() {
        return Ok(());
    }
    // Kernels before 5.11: walk /proc/self/fd instead.
    for entry in std::fs::read_dir("/proc/self/fd").map_err(|_| Errno::EBADF)? {
        let Ok(entry) = entry else { continue };
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<RawFd>().ok())
        else {
            continue;
        };
        if fd >= first {
            set_cloexec(fd, true).ok();
        }
    }
    Ok(())
}

pub fn set_cloexec(fd: RawFd, on: bool) -> Result<(), Errno> {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    let flags = if on {
        FdFlag::FD_CLOEXEC
    } else {
        FdFlag::empty()
    };
    fcntl(fd, FcntlArg::F_SETFD(flags)).map(|_| ())
}

/// kill(2) with any signal number: 0 (does it exist?) and the real-time
/// signals, which nix's `Signal` cannot name.
pub fn kill(pid: i32, sig: i32) -> Result<(), Errno> {
    // SAFETY: kill takes two integers and touches no memory of ours.
    let ret = unsafe { libc::kill(pid, sig) };
    Errno::result(ret).map(|_| ())
}

pub fn prctl(option: libc::c_int, arg: libc::c_ulong) -> Result<(), Errno> {
    // SAFETY: the prctl options we use take integer arguments only.
    let ret = unsafe {
        libc::prctl(
            option,
            arg,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    Errno::result(ret).map(|_| ())
}

pub fn setrlimit(resource: libc::c_int, soft: u64, hard: u64) -> Result<(), Errno> {
    let lim = libc::rlimit64 {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: `lim` is a valid rlimit64 for the duration of the call; pid 0
    // is the calling process.
    let ret = unsafe { libc::prlimit64(0, resource as _, &lim, std::ptr::null_mut()) };
    Errno::result(ret).map(|_| ())
}

pub fn setdomainname(name: &str) -> Result<(), Errno> {
    // SAFETY: the pointer and length describe `name`'s bytes, which outlive
    // the call; the kernel copies them.
    let ret = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    Errno::result(ret).map(|_| ())
}

/// `umask(2)` cannot fail; nix's wrapper needs a feature we do not use.
pub fn umask(mask: u32) {
    // SAFETY: umask only swaps an integer in the process's fs struct.
    unsafe { libc::umask(mask as libc::mode_t) };
}

/// chmod of `name` in `dir` without following a symlink there. fchmodat2
/// (Linux 6.6) does it in one call; where the kernel (or a seccomp filter
/// around us) refuses it, glibc's emulation: an O_PATH open, a stat and a
/// chmod through /proc/self/fd, four calls.
pub fn fchmodat_nofollow(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> Result<(), Errno> {
    // The same number on every architecture since Linux 5.1's unified
    // table (libc names it on a few only).
    const SYS_FCHMODAT2: libc::c_long = 452;
    // SAFETY: `name` is a NUL-terminated string that outlives the call;
    // the other arguments are plain integers.
    let ret = unsafe {
        libc::syscall(
            SYS_FCHMODAT2,
            dir.as_raw_fd(),
            name.as_ptr(),
            mode as libc::c_uint,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    match Errno::result(ret) {
        Err(Errno::ENOSYS | Errno::EPERM) => nix::sys::stat::fchmodat(
            Some(dir.as_raw_fd()),
            name,
            nix::sys::stat::Mode::from_bits_truncate(mode),
            nix::sys::stat::FchmodatFlags::NoFollowSymlink,
        ),
        r => r.map(|_| ()),
    }
}

/// `setsid(2)` without failing when we already lead a session.
pub fn setsid() {
    // SAFETY: no arguments, no memory; EPERM (already leader) is harmless.
    unsafe { libc::setsid() };
}

/// Makes the tty on fd 0 our controlling terminal.
pub fn set_controlling_tty(fd: RawFd) -> Result<(), Errno> {
    // SAFETY: TIOCSCTTY takes an integer argument.
    let ret = unsafe { libc::ioctl(fd, libc::TIOCSCTTY, 0) };
    Errno::result(ret).map(|_| ())
}

pub fn set_winsize(fd: RawFd, rows: u16, cols: u16) -> Result<(), Errno> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: `ws` is a valid winsize that outlives the call.
    let ret = unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) };
    Errno::result(ret).map(|_| ())
}

/// `execve(2)`; returns only on failure.
pub fn execve(path: &CStr, argv: &[&CStr], envp: &[&CStr]) -> Errno {
    nix::unistd::execve(path, argv, envp)
        .err()
        .unwrap_or(Errno::UnknownErrno)
}

/// Leaves the process at once, without unwinding or running atexit handlers
/// that belong to the parent's copy of the address space.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no Rust state.
    unsafe { libc::_exit(code) }
}

/// fork(3), even in a multi-threaded process: the child runs `child` and
/// leaves with the code it returns ([`exit_now`]), so it never comes back
/// into the caller's code with another thread's state half-copied. The
/// parent gets the child's pid.
pub fn fork_then(child: impl FnOnce() -> i32) -> Result<libc::pid_t, Errno> {
    // SAFETY: glibc's fork makes the heap consistent in the child; the
    // child only runs `child` and then _exits.
    let pid = unsafe { libc::fork() };
    match pid {
        p if p < 0 => Err(Errno::last()),
        0 => exit_now(child()),
        p => Ok(p),
    }
}

/// `ioctl(TIOCGPTN)` + unlock: the slave's number of a pty master.
pub fn unlock_pty(master: RawFd) -> Result<u32, Errno> {
    let mut unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads an int through the pointer we give.
    Errno::result(unsafe { libc::ioctl(master, libc::TIOCSPTLCK, &mut unlock) })?;
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes an unsigned int through the pointer we give.
    Errno::result(unsafe { libc::ioctl(master, libc::TIOCGPTN, &mut n) })?;
    Ok(n)
}

/// Own a raw descriptor that a successful nix call just returned.
pub fn own_fd(fd: RawFd) -> OwnedFd {
    // SAFETY: callers pass a descriptor freshly returned by a successful
    // syscall and owned by nothing else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// The id of the mount `fd` is on (statx STATX_MNT_ID), as mountinfo's
/// first field names it.
pub fn mount_id(fd: BorrowedFd<'_>) -> Result<u64, Errno> {
    // SAFETY: zeroed statx is a valid buffer the kernel fills.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: an empty NUL-terminated path with AT_EMPTY_PATH names `fd`
    // itself; `st` lives for the call.
    let ret = unsafe {
        libc::statx(
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_MNT_ID,
            &mut st,
        )
    };
    Errno::result(ret)?;
    if st.stx_mask & libc::STATX_MNT_ID == 0 {
        return Err(Errno::ENOSYS);
    }
    Ok(st.stx_mnt_id)
}

/// `pidfd_open(2)`: a descriptor that polls readable once `pid` exits.
pub fn pidfd_open(pid: libc::pid_t) -> Result<OwnedFd, Errno> {
    // SAFETY: plain integer arguments; the kernel returns a new descriptor.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    Errno::result(ret).map(|fd| own_fd(fd as RawFd))
}

/// Joins a new session keyring named `name` (what runc does unless
/// `--no-new-keyring`), so containers do not share the host's keys.
pub fn join_session_keyring(name: &CStr) -> Result<(), Errno> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: `name` is NUL-terminated and outlives the call.
    let ret =
        unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    Errno::result(ret).map(|_| ())
}

/// `flock(LOCK_EX)` on a descriptor we keep owning (nix's wrapper would take
/// ownership of it).
pub fn flock_exclusive(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    loop {
        // SAFETY: flock takes a descriptor and an integer; `fd` is valid
        // for the duration of the call.
        let ret = unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX) };
        match Errno::result(ret) {
            Err(Errno::EINTR) => continue,
            r => return r.map(|_| ()),
        }
    }
}

/// Whether capability `index` is in this thread's bounding set
/// (PR_CAPBSET_READ); EINVAL for one the running kernel does not know.
pub fn in_bounding_set(index: u8) -> Result<bool, Errno> {
    // SAFETY: PR_CAPBSET_READ takes an integer and reads nothing else.
    let ret = unsafe { libc::prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(index), 0, 0, 0) };
    Errno::result(ret).map(|r| r == 1)
}

/// `flock(LOCK_EX | LOCK_NB)`: EWOULDBLOCK when another holds the lock.
pub fn flock_exclusive_now(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    // SAFETY: flock takes a descriptor and an integer; `fd` is valid.
    let ret = unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    Errno::result(ret).map(drop)
}

/// Default dispositions and an empty mask for every signal: what the
/// runtime ignores or blocks (Rust ignores SIGPIPE) must not leak into the
/// container's program, since exec keeps both.
pub fn reset_signals() {
    for sig in 1..libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: SIG_DFL is a valid disposition for every catchable signal;
        // out-of-range numbers just fail with EINVAL.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    let _ = nix::sys::signal::SigSet::empty().thread_set_mask();
}

/// Whether fd is a terminal.
pub fn isatty(fd: RawFd) -> bool {
    // SAFETY: isatty only queries the descriptor.
    unsafe { libc::isatty(fd) == 1 }
}

pub fn get_winsize(fd: RawFd) -> Option<libc::winsize> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize through the pointer we give.
    let ret = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) };
    (ret == 0).then_some(ws)
}

/// Borrows one of the process's standard descriptors (or another that
/// lives as long as the process).
pub fn borrow_fd(fd: RawFd) -> BorrowedFd<'static> {
    // SAFETY: callers pass 0, 1, 2 or a descriptor they keep open for the
    // rest of the process's life.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// `fexecve(2)`: replaces the process with the program in `fd`.
pub fn fexecve(fd: BorrowedFd<'_>, argv: &[&CStr], envp: &[&CStr]) -> Errno {
    nix::unistd::fexecve(fd.as_raw_fd(), argv, envp)
        .err()
        .unwrap_or(Errno::UnknownErrno)
}

/// `personality(2)` with a persona value.
pub fn personality(persona: libc::c_ulong) -> Result<(), Errno> {
    // SAFETY: personality takes a plain integer; -1 is the error value.
    let r = unsafe { libc::personality(persona) };
    Errno::result(r).map(drop)
}

/// `pidfd_send_signal(fd, sig, NULL, 0)`.
pub fn pidfd_send_signal(fd: BorrowedFd<'_>, sig: i32) -> Result<(), Errno> {
    // SAFETY: a valid pidfd, a signal number, no siginfo, no flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    Errno::result(r).map(drop)
}

/// `waitid(P_PIDFD, fd, WEXITED | WNOHANG)`: the exit of the process
/// behind `fd` once it has exited (reaping it), else None. ECHILD when it
/// is not a child of the caller.
pub fn waitid_pidfd(fd: BorrowedFd<'_>) -> Result<Option<(bool, i32)>, Errno> {
    // SAFETY: siginfo_t is plain data, zeroed so that si_pid reads 0 when
    // nothing has exited yet (WNOHANG).
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `info` is valid for writes; `fd` is a valid descriptor.
        let r = unsafe {
            libc::waitid(
                libc::P_PIDFD,
                fd.as_raw_fd() as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG,
            )
        };
        match Errno::result(r) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(_) => break,
        }
    }
    // SAFETY: after a successful waitid the pid and status fields are set
    // (si_pid 0: nothing exited).
    let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
    if pid == 0 {
        return Ok(None);
    }
    // CLD_EXITED is 1; CLD_KILLED and CLD_DUMPED are signals.
    Ok(Some((info.si_code != 1, status)))
}

/// The CPUs `pid` may run on.
pub fn sched_getaffinity(pid: libc::pid_t) -> Result<Vec<usize>, Errno> {
    // SAFETY: cpu_set_t is plain data, filled by the kernel below.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: set is valid for size_of::<cpu_set_t>() bytes.
    let r =
        unsafe { libc::sched_getaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    Errno::result(r)?;
    // SAFETY: c is below CPU_SETSIZE; CPU_ISSET reads inside `set`.
    Ok((0..libc::CPU_SETSIZE as usize)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect())
}

/// `set_mempolicy(mode | flags, nodemask, maxnode)` for the calling thread
/// (a single-threaded process here): `nodes` are node numbers.
pub fn set_mempolicy(mode: libc::c_int, nodes: &[usize]) -> Result<(), Errno> {
    let words = nodes.iter().max().map(|n| n / 64 + 1).unwrap_or(1);
    let mut mask = vec![0u64; words];
    for &n in nodes {
        mask[n / 64] |= 1u64 << (n % 64);
    }
    // The kernel reads maxnode - 1 bits.
    let maxnode = (words * 64 + 1) as libc::c_ulong;
    let ptr = if nodes.is_empty() {
        std::ptr::null()
    } else {
        mask.as_ptr()
    };
    // SAFETY: `mask` holds `words` u64s, which covers maxnode - 1 bits; a
    // null mask with an empty node list is what the kernel expects for
    // MPOL_DEFAULT / MPOL_LOCAL.
    let r = unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, ptr, maxnode) };
    Errno::result(r).map(drop)
}

/// `ioprio_set(IOPRIO_WHO_PROCESS, 0, class << 13 | level)`.
pub fn ioprio_set(class: u32, level: u32) -> Result<(), Errno> {
    const IOPRIO_WHO_PROCESS: libc::c_long = 1;
    let prio = ((class << 13) | (level & 0x1fff)) as libc::c_long;
    // SAFETY: three integer arguments; affects only the calling process.
    let r = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, prio) };
    Errno::result(r).map(drop)
}

/// The kernel's `struct sched_attr` (version 1, 48 bytes without clamps).
#[repr(C)]
#[derive(Default)]
pub struct SchedAttr {
    pub size: u32,
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
}

/// `sched_setattr(0, attr, 0)` for the calling thread.
pub fn sched_setattr(attr: &mut SchedAttr) -> Result<(), Errno> {
    attr.size = std::mem::size_of::<SchedAttr>() as u32;
    // SAFETY: attr is a valid sched_attr of the size it declares.
    let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, attr as *mut SchedAttr, 0) };
    Errno::result(r).map(drop)
}

/// The CPU the calling thread runs on now (it may move at any time).
pub fn current_cpu() -> Option<usize> {
    // SAFETY: sched_getcpu takes nothing and only reports.
    let c = unsafe { libc::sched_getcpu() };
    usize::try_from(c).ok()
}

/// `sched_setaffinity(0, ...)` to exactly `cpus`.
pub fn sched_setaffinity(pid: libc::pid_t, cpus: &[usize]) -> Result<(), Errno> {
    // SAFETY: cpu_set_t is plain data; CPU_ZERO/CPU_SET write inside it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cpus {
        if c >= libc::CPU_SETSIZE as usize {
            return Err(Errno::EINVAL);
        }
        // SAFETY: c is below CPU_SETSIZE, checked above.
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    // SAFETY: set is valid for size_of::<cpu_set_t>() bytes.
    let r = unsafe { libc::sched_setaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    Errno::result(r).map(drop)
}

/// `mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, ...)` (Linux 5.12):
/// attributes on a mount and every mount below it.
pub fn mount_setattr_recursive(fd: &OwnedFd, set: u64, clr: u64) -> Result<(), Errno> {
    newmount::mount_setattr(
        std::os::fd::AsFd::as_fd(fd),
        libc::AT_RECURSIVE as libc::c_uint,
        set,
        clr,
    )
}

pub(crate) mod closer;
pub(crate) mod fdpass;
mod newmount;
pub use newmount::*;
pub(crate) mod procfs;
pub(crate) mod safepath;
mod selfexe;
pub use selfexe::*;

/// Reads one byte from `fd`: whether the byte came (not EOF or error).
/// For a forked child waiting for its parent's word; async-signal-safe.
pub fn read_one(fd: RawFd) -> bool {
    let mut b = [0u8; 1];
    // SAFETY: the buffer is valid for one byte for the duration of the call.
    unsafe { libc::read(fd, b.as_mut_ptr().cast(), 1) == 1 }
}

/// `close(2)` of a descriptor this process owns by number (in a forked
/// child, before exec).
pub fn close_raw(fd: RawFd) {
    // SAFETY: closing a number owns nothing in Rust's view; the caller
    // names a descriptor it no longer uses.
    unsafe {
        libc::close(fd);
    }
}

/// Brings `lo` up in the current network namespace (runc does for a
/// network namespace it creates).
pub fn loopback_up() -> Result<(), Errno> {
    // SAFETY: socket takes integers; the fd is owned right away.
    let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    let sock = Errno::result(sock)?;
    // SAFETY: a descriptor socket(2) just returned, owned nowhere else.
    let sock = unsafe { OwnedFd::from_raw_fd(sock) };
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the ifreq we pass.
    Errno::result(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) })?;
    // SAFETY: the kernel filled the flags member of the union above.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: as above.
    Errno::result(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) }).map(|_| ())
}

/// Maps `bytes` of fresh stack below the caller's frame in one call
/// (`MADV_POPULATE_WRITE`, Linux 5.14) instead of a page fault for each
/// page as the call chain first reaches it: create, run and exec go ~150 KiB
/// deep (the parsed config, 3 KB, is moved by value through their frames),
/// ~38 faults each. Best effort: an older kernel, or a range beyond the
/// stack's mapping, leaves the faults as they were.
pub fn prefault_stack(bytes: usize) {
    let here = std::hint::black_box(0u8);
    // SAFETY: sysconf reads a value; no pointers.
    let page = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        n if n > 0 => n as usize,
        _ => return,
    };
    let top = std::ptr::addr_of!(here) as usize & !(page - 1);
    let start = top.saturating_sub(bytes) & !(page - 1);
    // SAFETY: MADV_POPULATE_WRITE only faults in pages of mappings that
    // exist (it fails with ENOMEM otherwise) and changes no contents; the
    // range is below this frame, in the stack no live frame uses yet.
    unsafe {
        libc::madvise(
            start as *mut libc::c_void,
            top - start,
            libc::MADV_POPULATE_WRITE,
        )
    };
}

/// What std's own start-up does that a program with its own C `main` (the
/// CLI) still needs: SIGPIPE ignored, so that a reader that went away is an
/// EPIPE error and not death; and descriptors 0-2 open (on /dev/null when
/// the caller closed them), so that no file this process opens becomes its
/// stdout by accident.
pub fn program_start() {
    // SAFETY: SIG_IGN is a valid disposition for SIGPIPE; no handler runs.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: poll reads and writes the three pollfd entries we pass.
    let polled = unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) };
    if polled <= 0 {
        return;
    }
    for p in fds.iter().filter(|p| p.revents & libc::POLLNVAL != 0) {
        // SAFETY: a constant path; the lowest free number is the closed
        // one, so the descriptor lands where it belongs and stays open.
        let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        if fd != p.fd {
            // Nothing can be done about it this early: std aborts here.
            exit_now(127);
        }
    }
}
