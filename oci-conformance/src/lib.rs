//! OCI runtime conformance: our spec-derived suite (`checks`), run against
//! any runtime binary through its command line (`harness`), and a runner
//! for the runtime-tools validation programs (`validation`).

pub mod cgroup;
pub mod checks;
pub mod fdpass;
pub mod harness;
pub mod report;
pub mod validation;
