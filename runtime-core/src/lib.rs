#![deny(missing_docs)]
// Every type a public item exposes can be named by users (issue 15).
#![deny(unnameable_types)]
//! estiba-core: run OCI bundles as Linux containers.
//!
//! The lifecycle is a handful of calls, each taking plain options and
//! [`oci_spec`] types and returning [`Result`]; nothing here prints or
//! exits, and nothing changes the calling process behind its back (signal
//! forwarding, subreaping and reaping are [`ForegroundOptions`] the caller
//! asks for). Callers may be multi-threaded. Root is needed.
//!
//! A program that starts containers must run from an executable no
//! container process can write to (CVE-2019-5736): call
//! [`selfprotect::ensure_protected`] first thing in `main`.
//!
//! ```no_run
//! use std::time::Duration;
//! use estiba_core::{create, Container, CreateOptions, ExecOptions, ExecOutcome, Signal};
//!
//! estiba_core::selfprotect::ensure_protected()?;
//! // A bundle's config.json, or CreateOptions::spec for one in memory.
//! let mut opts = CreateOptions::new("demo", "/path/to/bundle");
//! opts.root = "/run/estiba".into();
//! let (out, out_w) = nix::unistd::pipe()?;   // the container's stdout
//! opts.stdio.stdout = Some(out_w);
//! create(&opts)?;                           // the init waits for start
//! let c = Container::load(&opts.root, "demo")?;
//! c.start()?;                               // the program runs
//!
//! let mut process = c.process()?.expect("a process");
//! process.set_args(Some(vec!["ps".into()]));
//! let mut exec = ExecOptions::new(process);
//! exec.detach = true;
//! if let ExecOutcome::Detached(p) = c.exec(&exec)? {
//!     println!("ps ended {:?}", p.wait(Some(Duration::from_secs(5)))?);
//! }
//! println!("{} pids", c.stats()?.pids.current);
//! c.kill(Signal::TERM, false)?;
//! println!("ended {:?}", c.wait(Some(Duration::from_secs(10)))?);
//! c.delete(false)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Or, in one call that waits for the exit code: [`run_foreground`]. The
//! programs in `examples/` run each step for real.

// By stage: input checks, the runtime's side, the init's side, the
// syscall layer (ARCHITECTURE.md).
mod config;
mod criu;
mod error;
mod init;
pub mod log;
mod net;
mod runtime;
mod sys;
pub use init::userdb::{ExecUser, Id as UserId};
pub use runtime::{events, selfprotect, signal};

/// The cgroup layer, whose error [`Error::Cgroup`] carries.
pub use estiba_cgroups as cgroups;
/// The runtime-spec types this API takes and returns, re-exported so that a
/// user's crate needs no matching `oci-spec` version of its own.
pub use oci_spec;
/// JSON values: [`default_spec`], [`features`] and [`event`] return them.
pub use serde_json;

pub use config::bundle::{parse_process, parse_spec, Bundle};
pub use config::guard::read_input;
pub use config::id::validate as validate_id;
pub use config::spec::{default_spec, features, OCI_VERSION};
pub use criu::restore::{restore, restore_foreground, RestoreOptions};
pub use criu::{CheckpointOptions, CriuOptions};
pub use error::{Error, Os, Result};
pub use runtime::container::{list, Container};
pub use runtime::create::{create, write_pid_file, CreateOptions, Created};
pub use runtime::events::event;
pub use runtime::exec::{process_from_flags, ExecOptions, ExecOutcome, ProcessFlags};
pub use runtime::foreground::ForegroundOptions;
pub use runtime::rootless::{default_root, in_user_namespace};
pub use runtime::run::{run_foreground, AfterRun};
pub use runtime::signal::Signal;
pub use runtime::state::{now_rfc3339, OciState, Status};
pub use runtime::stdio::{prefault_stack, program_start, Stdio};
pub use runtime::wait::{ExitStatus, ProcessHandle};

/// Where state lives unless `--root` says otherwise.
pub const DEFAULT_ROOT: &str = "/run/estiba";
