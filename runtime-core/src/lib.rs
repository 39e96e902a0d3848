//! estiba-core: run OCI bundles as Linux containers.
//!
//! The lifecycle is a handful of calls, each taking plain options and
//! `oci_spec` types and returning [`Result`]; nothing here prints or exits.
//!
//! ```no_run
//! use estiba_core::{create, Container, CreateOptions};
//!
//! let mut opts = CreateOptions::new("demo", "/path/to/bundle");
//! opts.root = "/run/estiba".into();
//! let created = create(&opts)?;                 // init waits for start
//! Container::load(&opts.root, "demo")?.start()?; // user program runs
//! Container::load(&opts.root, "demo")?.kill(estiba_core::signal::Signal::KILL, false)?;
//! Container::load(&opts.root, "demo")?.delete(true)?;
//! # Ok::<(), estiba_core::Error>(())
//! ```
//!
//! Or, in one call that waits for the exit code: [`run_foreground`].

mod bundle;
mod cgroupfs;
mod channel;
mod console;
mod container;
mod copyup;
mod create;
mod devices;
mod error;
pub mod events;
mod exec;
mod fdpass;
mod foreground;
mod guard;
mod helper;
mod hooks;
mod id;
mod init;
pub mod log;
mod lsm;
mod mounts;
mod namespaces;
mod netdev;
mod netlink;
mod process;
mod procfs;
mod rootfs;
mod run;
mod safepath;
pub mod selfprotect;
pub mod signal;
mod spec;
mod state;
mod stdio;
mod sys;
mod taskattr;
mod userdb;
mod wait;

/// The runtime-spec types this API takes and returns, re-exported so that a
/// user's crate needs no matching `oci-spec` version of its own.
pub use oci_spec;

pub use bundle::{parse_process, parse_spec, Bundle};
pub use container::{list, Container};
pub use create::{create, write_pid_file, CreateOptions, Created};
pub use error::{Error, Result};
pub use events::event;
pub use exec::{process_from_flags, ExecOptions, ExecOutcome, ProcessFlags};
pub use foreground::ForegroundOptions;
pub use guard::read_input;
pub use id::validate as validate_id;
pub use run::{run_foreground, AfterRun};
pub use signal::Signal;
pub use spec::{default_spec, features, OCI_VERSION};
pub use state::{now_rfc3339, OciState, Status};
pub use stdio::Stdio;
pub use wait::{ExitStatus, ProcessHandle};

/// Where state lives unless `--root` says otherwise.
pub const DEFAULT_ROOT: &str = "/run/estiba";
