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
