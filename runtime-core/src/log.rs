//! The library never prints. Warnings and debug lines go to a sink the
//! embedding program installs (the CLI writes them to `--log`).

use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug,
    Warn,
}

pub type Sink = fn(Level, &str);

static SINK: OnceLock<Sink> = OnceLock::new();

/// Installs the sink for library messages; the first call wins.
pub fn set_sink(sink: Sink) {
    let _ = SINK.set(sink);
}

static SINK_FD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// Names the descriptor the sink writes to (a `--log` file), so that the
/// container's init keeps it (close-on-exec) where it closes everything
/// else it inherited: its messages still reach the log, and the number is
/// never reused for another file under the sink.
pub fn set_sink_fd(fd: std::os::fd::RawFd) {
    SINK_FD.store(fd, std::sync::atomic::Ordering::Relaxed);
}

pub(crate) fn sink_fd() -> Option<std::os::fd::RawFd> {
    let fd = SINK_FD.load(std::sync::atomic::Ordering::Relaxed);
    (fd >= 0).then_some(fd)
}

pub(crate) fn emit(level: Level, msg: &str) {
    if let Some(sink) = SINK.get() {
        sink(level, msg);
    }
}

macro_rules! log_warn {
    ($($t:tt)*) => { $crate::log::emit($crate::log::Level::Warn, &format!($($t)*)) };
}
macro_rules! log_debug {
    ($($t:tt)*) => { $crate::log::emit($crate::log::Level::Debug, &format!($($t)*)) };
}
pub(crate) use {log_debug as debug, log_warn as warn};
