//! The syscall boundary: every `unsafe` block of the runtime lives here, each
//! wrapping one system call that `nix` does not cover the way we need it.
//! One module per concern: `process`, `fd`, `task`, `tty`, `newmount` (the
//! mount API), `selfexe` (the runtime's own image); `closer`, `fdpass`,
//! `procfs` and `safepath` are built on them.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

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
mod fd;
pub(crate) mod fdpass;
mod newmount;
mod process;
pub(crate) mod procfs;
pub(crate) mod safepath;
mod selfexe;
mod task;
mod tty;
pub use fd::*;
pub use newmount::*;
pub use process::*;
pub use selfexe::*;
pub use task::*;
pub use tty::*;

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
