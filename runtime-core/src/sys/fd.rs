//! Descriptors and the paths reached through them: openat2, close-on-exec,
//! locks, mount ids.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

pub const RESOLVE_NO_XDEV: u64 = 0x01;
pub const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
pub const RESOLVE_NO_SYMLINKS: u64 = 0x04;
pub const RESOLVE_BENEATH: u64 = 0x08;
pub const RESOLVE_IN_ROOT: u64 = 0x10;

/// `openat2(2)`: open `path` relative to `dirfd` with `resolve` restrictions.
pub fn openat2(
    dirfd: BorrowedFd<'_>,
    path: &CStr,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> Result<OwnedFd, Errno> {
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: mode as u64,
        resolve,
    };
    loop {
        // SAFETY: `how` is a valid open_how of the size we pass, `path` is
        // NUL-terminated and outlives the call.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dirfd.as_raw_fd(),
                path.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        match Errno::result(ret) {
            // SAFETY: the kernel just returned this new descriptor to us.
            Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }),
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Marks every descriptor from `first` upward close-on-exec, so nothing of
/// the runtime survives into the container's program.
pub fn cloexec_from(first: RawFd) -> Result<(), Errno> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range only changes descriptor flags; no memory is touched.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    };
    if Errno::result(ret).is_ok() {
        return Ok(());
    }
    // Kernels before 5.11: walk /proc/self/fd instead.
    for entry in std::fs::read_dir("/proc/self/fd").map_err(|_| Errno::EBADF)? {
        let Ok(entry) = entry else { continue };
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<RawFd>().ok())
        else {
            continue;
        };
        if fd >= first {
            set_cloexec(fd, true).ok();
        }
    }
    Ok(())
}

pub fn set_cloexec(fd: RawFd, on: bool) -> Result<(), Errno> {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    let flags = if on {
        FdFlag::FD_CLOEXEC
    } else {
        FdFlag::empty()
    };
    fcntl(fd, FcntlArg::F_SETFD(flags)).map(|_| ())
}

/// chmod of `name` in `dir` without following a symlink there. fchmodat2
/// (Linux 6.6) does it in one call; where the kernel (or a seccomp filter
/// around us) refuses it, glibc's emulation: an O_PATH open, a stat and a
/// chmod through /proc/self/fd, four calls.
pub fn fchmodat_nofollow(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> Result<(), Errno> {
    // The same number on every architecture since Linux 5.1's unified
    // table (libc names it on a few only).
    const SYS_FCHMODAT2: libc::c_long = 452;
    // SAFETY: `name` is a NUL-terminated string that outlives the call;
    // the other arguments are plain integers.
    let ret = unsafe {
        libc::syscall(
            SYS_FCHMODAT2,
            dir.as_raw_fd(),
            name.as_ptr(),
            mode as libc::c_uint,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    match Errno::result(ret) {
        Err(Errno::ENOSYS | Errno::EPERM) => nix::sys::stat::fchmodat(
            Some(dir.as_raw_fd()),
            name,
            nix::sys::stat::Mode::from_bits_truncate(mode),
            nix::sys::stat::FchmodatFlags::NoFollowSymlink,
        ),
        r => r.map(|_| ()),
    }
}

/// Own a raw descriptor that a successful nix call just returned.
pub fn own_fd(fd: RawFd) -> OwnedFd {
    // SAFETY: callers pass a descriptor freshly returned by a successful
    // syscall and owned by nothing else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// The id of the mount `fd` is on (statx STATX_MNT_ID), as mountinfo's
/// first field names it.
pub fn mount_id(fd: BorrowedFd<'_>) -> Result<u64, Errno> {
    // SAFETY: zeroed statx is a valid buffer the kernel fills.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: an empty NUL-terminated path with AT_EMPTY_PATH names `fd`
    // itself; `st` lives for the call.
    let ret = unsafe {
        libc::statx(
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_MNT_ID,
            &mut st,
        )
    };
    Errno::result(ret)?;
    if st.stx_mask & libc::STATX_MNT_ID == 0 {
        return Err(Errno::ENOSYS);
    }
    Ok(st.stx_mnt_id)
}

/// `flock(LOCK_EX)` on a descriptor we keep owning (nix's wrapper would take
/// ownership of it).
pub fn flock_exclusive(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    loop {
        // SAFETY: flock takes a descriptor and an integer; `fd` is valid
        // for the duration of the call.
        let ret = unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX) };
        match Errno::result(ret) {
            Err(Errno::EINTR) => continue,
            r => return r.map(|_| ()),
        }
    }
}

/// `flock(LOCK_EX | LOCK_NB)`: EWOULDBLOCK when another holds the lock.
pub fn flock_exclusive_now(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    // SAFETY: flock takes a descriptor and an integer; `fd` is valid.
    let ret = unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    Errno::result(ret).map(drop)
}

/// Borrows one of the process's standard descriptors (or another that
/// lives as long as the process).
pub fn borrow_fd(fd: RawFd) -> BorrowedFd<'static> {
    // SAFETY: callers pass 0, 1, 2 or a descriptor they keep open for the
    // rest of the process's life.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// Reads one byte from `fd`: whether the byte came (not EOF or error).
/// For a forked child waiting for its parent's word; async-signal-safe.
pub fn read_one(fd: RawFd) -> bool {
    let mut b = [0u8; 1];
    // SAFETY: the buffer is valid for one byte for the duration of the call.
    unsafe { libc::read(fd, b.as_mut_ptr().cast(), 1) == 1 }
}

/// `close(2)` of a descriptor this process owns by number (in a forked
/// child, before exec).
pub fn close_raw(fd: RawFd) {
    // SAFETY: closing a number owns nothing in Rust's view; the caller
    // names a descriptor it no longer uses.
    unsafe {
        libc::close(fd);
    }
}
