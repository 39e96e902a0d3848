//! CVE-2019-5736: a process in a container that reaches `/proc/<pid>/exe`
//! of a runtime process (by ptrace access, or by executing a script whose
//! interpreter is `#!/proc/self/exe` while the runtime's clone execs it,
//! which needs no capability at all) holds a handle on the runtime binary
//! and can reopen it for writing once the runtime has exited.
//!
//! The protection is always on: a process that puts anything into a
//! container must run from an executable that cannot be opened for
//! writing, whoever holds it. That executable is a private, detached,
//! read-only bind mount of the binary (open_tree + mount_setattr: no copy,
//! the page cache is shared). The running image moves onto it in place
//! (`sys::remap_from` + `sys::set_exe_file`: the same bytes at the same
//! addresses, `/proc/self/exe` switched), which costs a few syscalls;
//! where the kernel refuses that (no CAP_SYS_ADMIN, as for a rootless
//! runtime), the program is executed again through the mount; where the
//! mount API is refused too, from a sealed memfd copy. Either way
//! `/proc/self/exe` then names a file whose every reopen for writing fails
//! (EROFS, or EPERM on the seals).

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
    // Once protected, always: nothing makes the executable writable again.
    static PROTECTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if PROTECTED.load(std::sync::atomic::Ordering::Relaxed) {
        return true;
    }
    let yes = exe_is_protected_now();
    PROTECTED.store(yes, std::sync::atomic::Ordering::Relaxed);
    yes
}

fn exe_is_protected_now() -> bool {
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

/// Makes this process run from a protected executable unless it already
/// does: moved onto one in place, or else re-executed (same arguments and
/// environment) from one. For a program's `main`, before it has threads.
pub fn ensure_protected() -> Result<()> {
    if exe_is_protected() {
        return Ok(());
    }
    match move_onto_readonly_clone() {
        Ok(()) if exe_is_protected() => return Ok(()),
        Ok(()) => crate::log::debug!("moved onto the read-only clone, yet still writable"),
        Err(e) => crate::log::debug!("cannot move onto the read-only runtime clone: {e}"),
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

/// Moves the running image onto the read-only clone of its binary: every
/// mapping of the binary replaced by the clone's same bytes, then the
/// clone made the process's executable. The kernel itself checks that no
/// mapping of the writable path is left.
fn move_onto_readonly_clone() -> std::result::Result<(), nix::errno::Errno> {
    use nix::errno::Errno;
    let io = |e: std::io::Error| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
    let tree = readonly_clone_of_self()?;
    // A readable descriptor through the clone (the tree's is O_PATH).
    let file = std::fs::File::open(format!("/proc/self/fd/{}", tree.as_raw_fd())).map_err(io)?;
    drop(tree);
    let meta = file.metadata().map_err(io)?;
    let maps = crate::sys::procfs::read_text("/proc/self/maps").map_err(io)?;
    let mine = sys::mappings_of(
        &maps,
        std::os::unix::fs::MetadataExt::dev(&meta),
        std::os::unix::fs::MetadataExt::ino(&meta),
    );
    if mine.is_empty() {
        return Err(Errno::ENOENT);
    }
    let stat = crate::sys::procfs::read_text("/proc/self/stat").map_err(io)?;
    let layout = sys::parse_stat_layout(&stat).ok_or(Errno::EINVAL)?;
    let written = sys::writable_segments();
    // From here to the prctl nothing allocates (see remap_from).
    sys::remap_from(file.as_fd(), &mine, &written)?;
    sys::set_exe_file(file.as_fd(), &layout)
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
