//! What runs in the runtime's own process: create, exec, run and the other
//! lifecycle operations, the state they keep, hooks, the channel to the
//! init, and the CVE-2019-5736 protection of the runtime itself.

pub(crate) mod channel;
pub(crate) mod claim;
pub(crate) mod container;
pub(crate) mod create;
pub mod events;
pub(crate) mod exec;
pub(crate) mod foreground;
pub(crate) mod helper;
pub(crate) mod hooks;
pub(crate) mod idmap;
pub(crate) mod rootless;
pub(crate) mod run;
pub mod selfprotect;
pub mod signal;
pub(crate) mod spawn;
pub(crate) mod state;
pub(crate) mod stdio;
pub(crate) mod wait;
