//! Processes: clone (into namespaces, into a cgroup), fork, exec, exit,
//! signals and pidfds; what the program does at its start.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::errno::Errno;

use super::own_fd;

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

/// kill(2) with any signal number: 0 (does it exist?) and the real-time
/// signals, which nix's `Signal` cannot name.
pub fn kill(pid: i32, sig: i32) -> Result<(), Errno> {
    // SAFETY: kill takes two integers and touches no memory of ours.
    let ret = unsafe { libc::kill(pid, sig) };
    Errno::result(ret).map(|_| ())
}

/// `setsid(2)` without failing when we already lead a session.
pub fn setsid() {
    // SAFETY: no arguments, no memory; EPERM (already leader) is harmless.
    unsafe { libc::setsid() };
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

/// `pidfd_open(2)`: a descriptor that polls readable once `pid` exits.
pub fn pidfd_open(pid: libc::pid_t) -> Result<OwnedFd, Errno> {
    // SAFETY: plain integer arguments; the kernel returns a new descriptor.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    Errno::result(ret).map(|fd| own_fd(fd as RawFd))
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

/// `fexecve(2)`: replaces the process with the program in `fd`.
pub fn fexecve(fd: BorrowedFd<'_>, argv: &[&CStr], envp: &[&CStr]) -> Errno {
    nix::unistd::fexecve(fd.as_raw_fd(), argv, envp)
        .err()
        .unwrap_or(Errno::UnknownErrno)
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
