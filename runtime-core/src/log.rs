//! The library never prints. Its warnings and debug lines go through the
//! [`log`](https://docs.rs/log) facade, target `estiba`, to whatever logger
//! the embedding program installs (the CLI's writes runc's `--log` lines).

use std::sync::atomic::{AtomicI32, Ordering};

static KEEP_FD: AtomicI32 = AtomicI32::new(-1);

/// Names a descriptor the logger writes to (a log file), so that a
/// container's init keeps it (close-on-exec) where it closes everything
/// else it inherited: lines logged during its setup still arrive, and the
/// number is never reused for another file under the logger.
pub fn keep_fd_open(fd: std::os::fd::RawFd) {
    KEEP_FD.store(fd, Ordering::Relaxed);
}

pub(crate) fn kept_fd() -> Option<std::os::fd::RawFd> {
    let fd = KEEP_FD.load(Ordering::Relaxed);
    (fd >= 0).then_some(fd)
}

macro_rules! log_warn {
    ($($t:tt)*) => { ::log::warn!(target: "estiba", $($t)*) };
}
macro_rules! log_debug {
    ($($t:tt)*) => { ::log::debug!(target: "estiba", $($t)*) };
}
pub(crate) use {log_debug as debug, log_warn as warn};
