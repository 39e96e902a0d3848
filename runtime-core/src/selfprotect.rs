//! CVE-2019-5736: a container process that can ptrace-access a runtime
//! process inside the container may open `/proc/<pid>/exe`, keep the fd,
//! and write the runtime binary once the runtime has exited. The kernel
//! stops containers without `CAP_SYS_PTRACE` (the runtime's clone has more
//! capabilities and is non-dumpable); for containers that have it, the
//! runtime must run from a sealed in-memory copy of itself. That costs a
//! copy and an exec, so it is done only where it is needed.

use std::ffi::CString;
use std::os::fd::AsFd;

use oci_spec::runtime::{Capability, LinuxNamespaceType, Process, Spec};

use crate::error::{Error, Result};
use crate::sys;

/// Whether processes of this container could reach the runtime's exe.
pub fn container_needs_sealed_runtime(spec: &Spec) -> bool {
    let own_userns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|nss| nss.iter().any(|n| n.typ() == LinuxNamespaceType::User));
    // CAP_SYS_PTRACE inside a user namespace does not reach the runtime.
    !own_userns && spec.process().as_ref().is_some_and(has_ptrace)
}

/// Whether `process` may hold CAP_SYS_PTRACE.
pub fn has_ptrace(p: &Process) -> bool {
    p.capabilities().as_ref().is_some_and(|c| {
        [c.bounding(), c.permitted(), c.effective(), c.ambient()]
            .into_iter()
            .flatten()
            .any(|set| set.contains(&Capability::SysPtrace))
    })
}

/// Whether this process already runs from a sealed memfd.
pub fn running_sealed() -> bool {
    std::fs::read_link("/proc/self/exe")
        .is_ok_and(|p| p.to_string_lossy().starts_with("/memfd:estiba"))
}

/// Replaces this process with the same program and arguments run from a
/// sealed in-memory copy. For the command line only: a library user's
/// process is not ours to replace.
pub fn reexec_sealed() -> Result<std::convert::Infallible> {
    let memfd = sys::sealed_copy_of_self()
        .map_err(|e| Error::sys("copy the runtime into a sealed memfd", e))?;
    let to_c =
        |s: std::ffi::OsString| CString::new(std::os::unix::ffi::OsStringExt::into_vec(s)).ok();
    let argv: Vec<CString> = std::env::args_os().filter_map(to_c).collect();
    let envp: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            to_c(kv)
        })
        .collect();
    let argv_ref: Vec<&std::ffi::CStr> = argv.iter().map(|c| c.as_c_str()).collect();
    let envp_ref: Vec<&std::ffi::CStr> = envp.iter().map(|c| c.as_c_str()).collect();
    let err = sys::fexecve(memfd.as_fd(), &argv_ref, &envp_ref);
    Err(Error::sys("exec the sealed runtime copy", err))
}
