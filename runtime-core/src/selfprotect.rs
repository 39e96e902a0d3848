//! CVE-2019-5736: a process in a container that reaches `/proc/<pid>/exe`
//! of a runtime process (by ptrace access, or by executing a script whose
//! interpreter is `#!/proc/self/exe` while the runtime's clone execs it,
//! which needs no capability at all) holds a handle on the runtime binary
//! and can reopen it for writing once the runtime has exited.
//!
//! The protection is always on: a process that puts anything into a
//! container must run from an executable that cannot be opened for
//! writing, whoever holds it. The cheap way is a private, detached,
//! read-only bind mount of the binary (open_tree + mount_setattr: no copy,
//! the page cache is shared), executed through its descriptor; the
//! fallback, where the mount API is not allowed, is a sealed memfd copy.
//! Either way `/proc/self/exe` then names a file whose every reopen for
//! writing fails (EROFS, or EPERM on the seals).

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd};

use crate::error::{Error, Result};
use crate::sys;

/// Set across the re-exec, so a kernel that does not give the protection
/// it was asked for fails loudly instead of re-executing forever.
const REEXEC_MARK: &str = "_ESTIBA_PROTECTED_EXEC";

/// Whether this process's executable can never be opened for writing:
/// a fully sealed memfd, or a file on a read-only mount.
pub fn exe_is_protected() -> bool {
    let Ok(exe) = std::fs::File::open("/proc/self/exe") else {
        return false;
    };
    // F_GET_SEALS fails on anything but a memfd.
    if let Ok(seals) = nix::fcntl::fcntl(exe.as_raw_fd(), nix::fcntl::FcntlArg::F_GET_SEALS) {
        let need = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
        return seals & need == need;
    }
    sys::on_readonly_mount(exe.as_fd())
}

/// Re-executes this program (same arguments and environment) from a
/// protected executable unless it already runs from one. For a program's
/// `main`, before it has threads or state: the process is replaced.
pub fn ensure_protected() -> Result<()> {
    if exe_is_protected() {
        return Ok(());
    }
    if std::env::var_os(REEXEC_MARK).is_some() {
        return Err(Error::Sys(
            "CVE-2019-5736 protection: the re-executed runtime is still writable".into(),
        ));
    }
    match reexec_protected() {
        Ok(never) => match never {},
        Err(e) => Err(e),
    }
}

fn reexec_protected() -> Result<std::convert::Infallible> {
    let to_c =
        |s: std::ffi::OsString| CString::new(std::os::unix::ffi::OsStringExt::into_vec(s)).ok();
    let argv: Vec<CString> = std::env::args_os().filter_map(to_c).collect();
    let mut envp: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            to_c(kv)
        })
        .collect();
    envp.extend(CString::new(format!("{REEXEC_MARK}=1")));
    let argv_ref: Vec<&std::ffi::CStr> = argv.iter().map(|c| c.as_c_str()).collect();
    let envp_ref: Vec<&std::ffi::CStr> = envp.iter().map(|c| c.as_c_str()).collect();
    // The read-only clone first: it costs a few syscalls, the copy ~1 ms.
    if let Ok(ro) = readonly_clone_of_self() {
        let err = sys::execveat_fd(ro.as_fd(), &argv_ref, &envp_ref);
        crate::log::debug!("exec of the read-only runtime clone failed: {err}; copying instead");
    }
    let memfd = sys::sealed_copy_of_self()
        .map_err(|e| Error::sys("copy the runtime into a sealed memfd", e))?;
    let err = sys::fexecve(memfd.as_fd(), &argv_ref, &envp_ref);
    Err(Error::sys("exec the sealed runtime copy", err))
}

/// A descriptor of this program's executable through a private, detached,
/// read-only bind mount of it.
fn readonly_clone_of_self() -> std::result::Result<std::os::fd::OwnedFd, nix::errno::Errno> {
    let tree = sys::open_tree_clone(libc::AT_FDCWD, c"/proc/self/exe", 0)?;
    sys::mount_setattr_one(tree.as_fd(), sys::MOUNT_ATTR_RDONLY, 0)?;
    Ok(tree)
}

/// The error create and exec return when the caller runs from a writable
/// executable.
pub(crate) fn require_protected() -> Result<()> {
    if exe_is_protected() {
        Ok(())
    } else {
        Err(Error::NeedsSealedRuntime)
    }
}
