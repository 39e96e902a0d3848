//! A descriptor closed by a task of its own: a close that is the last
//! reference to something the kernel takes long to undo (a mount
//! namespace) runs beside the caller's work. The task is a bare clone
//! sharing this process's memory and descriptor table, on a small stack,
//! that closes the descriptor and exits: std's threads (or glibc's
//! pthread_create, statically linked) would add 80-90 KB to the binary
//! for this one use.

use std::os::fd::{IntoRawFd, OwnedFd};

/// Stack of the closing task: it makes two syscalls.
const STACK: usize = 16 * 1024;

/// A close under way; [`Closer::join`] waits for it.
#[derive(Debug)]
pub struct Closer {
    pid: libc::pid_t,
    /// The task's stack: it must outlive the task.
    _stack: Vec<u128>,
}

extern "C" fn close_it(arg: *mut libc::c_void) -> libc::c_int {
    // Raw syscalls only: this task shares the caller's memory, and must
    // not touch the C library's state (errno aside, which is harmless).
    // SAFETY: arg is the descriptor number `on_task` gave up ownership
    // of; only this task closes it.
    unsafe { libc::syscall(libc::SYS_close, arg as usize as libc::c_long) };
    0
}

/// Closes `fd` in a new task; closes it here if no task can be made.
pub fn on_task(fd: OwnedFd) -> Option<Closer> {
    let mut stack = vec![0u128; STACK / 16];
    let raw = fd.into_raw_fd();
    // SAFETY: the stack is 16-byte aligned, STACK bytes long, and kept
    // alive in the Closer until the task is reaped; close_it touches
    // nothing of this process but the descriptor it is given. CLONE_VM:
    // no copy of the address space; CLONE_FILES: the same descriptor
    // table, so its close is the last reference; SIGCHLD: reaped by
    // `join` like any child.
    let pid = unsafe {
        let top = stack.as_mut_ptr().add(stack.len()).cast::<libc::c_void>();
        libc::clone(
            close_it,
            top,
            libc::CLONE_VM | libc::CLONE_FILES | libc::SIGCHLD,
            raw as usize as *mut libc::c_void,
        )
    };
    if pid <= 0 {
        // SAFETY: the clone failed, so the descriptor is still ours alone.
        unsafe { libc::close(raw) };
        return None;
    }
    Some(Closer { pid, _stack: stack })
}

impl Closer {
    /// Waits until the close is done (bounded by the kernel's own work).
    pub fn join(self) {
        let pid = nix::unistd::Pid::from_raw(self.pid);
        while let Err(nix::errno::Errno::EINTR) = nix::sys::wait::waitpid(pid, None) {}
    }
}
