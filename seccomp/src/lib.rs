#![deny(missing_docs)]
// Every type a public item exposes can be named by users (issue 15).
#![deny(unnameable_types)]
//! `linux.seccomp` → a classic BPF program, installed with seccomp(2).
//!
//! The program checks the architecture, then finds the syscall by binary
//! search over intervals of syscall numbers that share a treatment, so a
//! lookup costs O(log n) instructions instead of libseccomp's linear scan.
//! Each rule has its own action and errno, several architectures share one
//! program, and installing does not force no_new_privs.

mod arch;
mod bpf;
mod compile;

use std::os::fd::{FromRawFd, OwnedFd};

pub use arch::Table;
pub use compile::compile;

/// Why a profile did not compile or install.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An architecture the compiler has no table for.
    #[error("linux.seccomp: architecture {0} is not supported")]
    Arch(String),
    /// The profile is not valid (an unknown action, a bad argument rule).
    #[error("linux.seccomp: {0}")]
    Invalid(String),
    /// The program would be longer than the kernel takes.
    #[error("linux.seccomp: the program has {0} instructions, over the kernel's limit of 4096")]
    TooLong(usize),
    /// seccomp(2) refused the program.
    #[error("install seccomp filter: {source}")]
    Install {
        /// The kernel's error.
        #[source]
        source: std::io::Error,
    },
}

/// A result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// A compiled filter, ready to install.
#[derive(Debug, Clone)]
pub struct Filter {
    /// The classic BPF instructions.
    pub program: Vec<libc::sock_filter>,
    /// SECCOMP_FILTER_FLAG_* to install with.
    pub flags: u32,
    /// Some rule notifies: install with a listener and pass its fd on.
    pub notify: bool,
    /// Syscall names an architecture of the filter does not have, skipped
    /// there (as runc skips them), for the caller to log.
    pub skipped: Vec<(Table, String)>,
    /// Architectures of the profile this machine's kernel cannot run: no
    /// syscall of theirs ever reaches the filter, so it has no branch for
    /// them (and the binary no table). For the caller to log.
    pub foreign: Vec<Table>,
    /// WAIT_KILLABLE_RECV was asked for by the profile: never dropped.
    pub wait_killable_asked: bool,
}

/// SECCOMP_FILTER_FLAG_TSYNC: the filter goes on every thread.
pub const FLAG_TSYNC: u32 = 1;
/// SECCOMP_FILTER_FLAG_LOG: actions other than allow are logged.
pub const FLAG_LOG: u32 = 2;
/// SECCOMP_FILTER_FLAG_SPEC_ALLOW: no speculative store bypass mitigation.
pub const FLAG_SPEC_ALLOW: u32 = 4;
/// SECCOMP_FILTER_FLAG_NEW_LISTENER: a notify descriptor is returned.
pub const FLAG_NEW_LISTENER: u32 = 8;
/// SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: a notified task waits killably.
pub const FLAG_WAIT_KILLABLE_RECV: u32 = 32;

/// The seccomp flags the runtime-spec names, as `features` lists them.
pub const KNOWN_FLAGS: &[&str] = &[
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
];

/// Of [`KNOWN_FLAGS`], the ones this kernel takes: seccomp(2) with a flag
/// it knows and no program fails with EFAULT, with one it does not with
/// EINVAL (the probe libseccomp uses). WAIT_KILLABLE_RECV is only valid
/// with a listener, so it is probed with NEW_LISTENER.
pub fn supported_flags() -> Vec<&'static str> {
    let probe = |flags: u32| {
        // SAFETY: a null program pointer: the kernel checks the flags,
        // then fails to read the program (EFAULT); nothing is installed.
        let r = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                1,
                flags,
                std::ptr::null::<libc::sock_fprog>(),
            )
        };
        r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EFAULT)
    };
    [
        (KNOWN_FLAGS[0], FLAG_TSYNC),
        (KNOWN_FLAGS[1], FLAG_LOG),
        (KNOWN_FLAGS[2], FLAG_SPEC_ALLOW),
        (KNOWN_FLAGS[3], FLAG_WAIT_KILLABLE_RECV | FLAG_NEW_LISTENER),
    ]
    .into_iter()
    .filter(|(_, f)| probe(*f))
    .map(|(n, _)| n)
    .collect()
}

impl Filter {
    /// Installs the filter on the calling thread. Without no_new_privs this
    /// needs CAP_SYS_ADMIN. Returns the notify listener when one was asked.
    pub fn install(&self) -> Result<Option<OwnedFd>> {
        let prog = libc::sock_fprog {
            len: self.program.len() as u16,
            filter: self.program.as_ptr() as *mut libc::sock_filter,
        };
        let mut flags = self.flags;
        if self.notify {
            flags |= FLAG_NEW_LISTENER;
        }
        loop {
            // SAFETY: `prog` points at `self.program`, which outlives the
            // call; the kernel copies the program.
            let ret = unsafe {
                libc::syscall(
                    libc::SYS_seccomp,
                    1, /* SECCOMP_SET_MODE_FILTER */
                    flags,
                    &prog as *const libc::sock_fprog,
                )
            };
            if ret >= 0 {
                // SAFETY: with NEW_LISTENER the kernel returns a new fd.
                return Ok(self
                    .notify
                    .then(|| unsafe { OwnedFd::from_raw_fd(ret as i32) }));
            }
            let err = std::io::Error::last_os_error();
            // Older kernels lack WAIT_KILLABLE_RECV: use it where it exists.
            if err.raw_os_error() == Some(libc::EINVAL)
                && flags & FLAG_WAIT_KILLABLE_RECV != 0
                && !self.wait_killable_asked
            {
                flags &= !FLAG_WAIT_KILLABLE_RECV;
                continue;
            }
            return Err(Error::Install { source: err });
        }
    }
}

/// SECCOMP_RET_* values: what a filter returns for a syscall.
pub mod ret {
    /// Kill the whole process.
    pub const KILL_PROCESS: u32 = 0x8000_0000;
    /// Kill the thread.
    pub const KILL_THREAD: u32 = 0x0000_0000;
    /// Send SIGSYS.
    pub const TRAP: u32 = 0x0003_0000;
    /// Fail with the errno in the low 16 bits.
    pub const ERRNO: u32 = 0x0005_0000;
    /// Ask the listener.
    pub const USER_NOTIF: u32 = 0x7fc0_0000;
    /// Tell a ptrace tracer.
    pub const TRACE: u32 = 0x7ff0_0000;
    /// Allow, and log.
    pub const LOG: u32 = 0x7ffc_0000;
    /// Allow.
    pub const ALLOW: u32 = 0x7fff_0000;
}
