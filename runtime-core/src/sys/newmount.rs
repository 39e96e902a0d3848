//! The new mount API (open_tree, move_mount, mount_setattr), fstatfs,
//! execveat and close_range: the calls the hardened paths are built on.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
/// mount_setattr's attribute bits (linux/mount.h).
pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;
/// The access-time mode: one of RELATIME (0), NOATIME, STRICTATIME.
pub const MOUNT_ATTR__ATIME: u64 = 0x70;
pub const MOUNT_ATTR_RELATIME: u64 = 0x0;
pub const MOUNT_ATTR_NOATIME: u64 = 0x10;
pub const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
pub const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
pub const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x20_0000;

/// `open_tree(dirfd, path, OPEN_TREE_CLONE | flags)`: a detached copy of
/// the mount at `path` (a file or a directory), visible to nobody else.
pub fn open_tree_clone(dirfd: RawFd, path: &CStr, flags: libc::c_uint) -> Result<OwnedFd, Errno> {
    // SAFETY: path is NUL-terminated; the kernel returns a new descriptor.
    let r = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            dirfd,
            path.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | flags,
        )
    };
    // SAFETY: a non-negative return is a descriptor we now own.
    Errno::result(r).map(|fd| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `move_mount(from, "", to, "", F_EMPTY_PATH | T_EMPTY_PATH)`: attaches
/// the detached mount `from` on the file or directory `to` refers to.
pub fn move_mount_fd(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> Result<(), Errno> {
    // SAFETY: both descriptors are open; the paths are empty C strings.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            c"".as_ptr(),
            to.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    Errno::result(r).map(drop)
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// `mount_setattr(fd, "", AT_EMPTY_PATH | flags, ...)`.
pub(super) fn mount_setattr(
    fd: BorrowedFd<'_>,
    flags: libc::c_uint,
    set: u64,
    clr: u64,
) -> Result<(), Errno> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clr,
        propagation: 0,
        userns_fd: 0,
    };
    setattr(fd, flags, attr)
}

fn setattr(fd: BorrowedFd<'_>, flags: libc::c_uint, mut attr: MountAttr) -> Result<(), Errno> {
    // SAFETY: fd is open; the path is an empty C string; attr is a valid
    // mount_attr of the size passed (a userns_fd in it is open).
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH as libc::c_uint | flags,
            &mut attr as *mut MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(r).map(drop)
}

/// mount_setattr's MOUNT_ATTR_IDMAP.
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// Id-maps the detached mount `fd` (with `recursive`, every mount below it
/// too) on the user namespace `userns`.
pub fn mount_setattr_idmap(
    fd: BorrowedFd<'_>,
    recursive: bool,
    userns: BorrowedFd<'_>,
) -> Result<(), Errno> {
    let flags = if recursive {
        libc::AT_RECURSIVE as libc::c_uint
    } else {
        0
    };
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    setattr(fd, flags, attr)
}

/// `mount_setattr` on one mount.
pub fn mount_setattr_one(fd: BorrowedFd<'_>, set: u64, clr: u64) -> Result<(), Errno> {
    mount_setattr(fd, 0, set, clr)
}

/// The filesystem's magic number (`fstatfs(2)`'s f_type).
pub fn fs_magic(fd: BorrowedFd<'_>) -> Result<i64, Errno> {
    // SAFETY: statfs is plain data the kernel fills.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: fd is open; st is valid for writing.
    let r = unsafe { libc::fstatfs(fd.as_raw_fd(), &mut st) };
    Errno::result(r).map(|_| st.f_type as i64)
}

/// Whether the mount (or filesystem) holding `fd` is read-only.
pub fn on_readonly_mount(fd: BorrowedFd<'_>) -> bool {
    nix::sys::statvfs::fstatvfs(fd)
        .is_ok_and(|st| st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
}

/// `execveat(fd, "", argv, envp, AT_EMPTY_PATH)`; returns only on failure.
pub fn execveat_fd(fd: BorrowedFd<'_>, argv: &[&CStr], envp: &[&CStr]) -> Errno {
    let mut a: Vec<*const libc::c_char> = argv.iter().map(|s| s.as_ptr()).collect();
    a.push(std::ptr::null());
    let mut e: Vec<*const libc::c_char> = envp.iter().map(|s| s.as_ptr()).collect();
    e.push(std::ptr::null());
    // SAFETY: both arrays are NULL-terminated and point to C strings that
    // outlive the call; the path is an empty C string.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd.as_raw_fd(),
            c"".as_ptr(),
            a.as_ptr(),
            e.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    Errno::last()
}

/// Closes every descriptor but `keep` (close_range over the gaps). For a
/// freshly cloned child: nothing it owns may be outside `keep`.
pub fn close_all_but(mut keep: Vec<RawFd>) -> Result<(), Errno> {
    keep.sort_unstable();
    keep.dedup();
    let mut next: u32 = 0;
    for fd in keep.into_iter().filter(|&fd| fd >= 0).map(|fd| fd as u32) {
        if fd > next {
            close_range(next, fd - 1)?;
        }
        next = fd + 1;
    }
    close_range(next, u32::MAX)
}

fn close_range(first: u32, last: u32) -> Result<(), Errno> {
    // SAFETY: closes descriptors only; close_all_but's callers own none of
    // those in the range.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) };
    Errno::result(r).map(drop)
}
