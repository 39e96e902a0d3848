//! `tmpcopyup` (a runc extension podman puts on its tmpfs mounts): a tmpfs
//! mounted over a directory of the image starts with that directory's
//! content, owners and modes, not empty. Runs in the init, on descriptors
//! only: the lower directory is opened before the tmpfs covers it, and
//! nothing in it is followed (symlinks are copied as links).

use std::ffi::{CStr, CString, OsStr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::dir::Dir;
use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{
    fchmod, fchmodat, fstat, fstatat, mkdirat, mknodat, FchmodatFlags, Mode, SFlag,
};
use nix::unistd::{fchown, fchownat, symlinkat, Gid, Uid};

use crate::error::{Error, Result};

/// Deeper than this is refused: an image cannot make the copy recurse
/// without bound.
const MAX_DEPTH: usize = 64;

/// Copies what `lower` holds into `upper` (a fresh tmpfs root), and gives
/// `upper` the mode and owner of `lower`.
pub fn copy_up(lower: &OwnedFd, upper: &OwnedFd, dest: &std::path::Path) -> Result<()> {
    let err =
        |what: &str, e: nix::errno::Errno| Error::sys(format!("tmpcopyup {dest:?}: {what}"), e);
    let st = fstat(lower.as_raw_fd()).map_err(|e| err("stat", e))?;
    copy_dir(lower.as_fd(), upper.as_fd(), 0).map_err(|(what, e)| err(&what, e))?;
    fchown(
        upper.as_raw_fd(),
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    )
    .map_err(|e| err("chown", e))?;
    fchmod(
        upper.as_raw_fd(),
        Mode::from_bits_truncate(st.st_mode & 0o7777),
    )
    .map_err(|e| err("chmod", e))
}

type CopyResult = std::result::Result<(), (String, nix::errno::Errno)>;

fn copy_dir(src: BorrowedFd, dst: BorrowedFd, depth: usize) -> CopyResult {
    if depth > MAX_DEPTH {
        return Err(("too deep".into(), nix::errno::Errno::ELOOP));
    }
    let dup = nix::unistd::dup(src.as_raw_fd()).map_err(|e| ("dup".to_string(), e))?;
    let mut dir = Dir::from_fd(dup).map_err(|e| ("read directory".to_string(), e))?;
    let names: Vec<CString> = dir
        .iter()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_owned())
        .filter(|n| n.as_bytes() != b"." && n.as_bytes() != b"..")
        .collect();
    for name in names {
        copy_entry(src, dst, &name, depth).map_err(|(what, e)| {
            let n = OsStr::from_bytes(name.as_bytes()).to_string_lossy();
            (format!("{n}: {what}"), e)
        })?;
    }
    Ok(())
}

fn copy_entry(src: BorrowedFd, dst: BorrowedFd, name: &CStr, depth: usize) -> CopyResult {
    let e = |what: &'static str| move |err| (what.to_string(), err);
    let st =
        fstatat(Some(src.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(e("stat"))?;
    let mode = Mode::from_bits_truncate(st.st_mode & 0o7777);
    let (uid, gid) = (
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    );
    let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
    let chown_nofollow = || {
        fchownat(
            Some(dst.as_raw_fd()),
            name,
            uid,
            gid,
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(e("chown"))
    };
    match kind {
        SFlag::S_IFDIR => {
            mkdirat(Some(dst.as_raw_fd()), name, Mode::S_IRWXU).map_err(e("mkdir"))?;
            let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            let from =
                own(openat(Some(src.as_raw_fd()), name, flags, Mode::empty()).map_err(e("open"))?);
            let to = own(openat(Some(dst.as_raw_fd()), name, flags, Mode::empty())
                .map_err(e("open copy"))?);
            copy_dir(from.as_fd(), to.as_fd(), depth + 1)?;
            fchown(to.as_raw_fd(), uid, gid).map_err(e("chown"))?;
            fchmod(to.as_raw_fd(), mode).map_err(e("chmod"))?;
        }
        SFlag::S_IFREG => {
            let ro = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            let from =
                own(openat(Some(src.as_raw_fd()), name, ro, Mode::empty()).map_err(e("open"))?);
            let wo = OFlag::O_WRONLY
                | OFlag::O_CREAT
                | OFlag::O_EXCL
                | OFlag::O_NOFOLLOW
                | OFlag::O_CLOEXEC;
            let to = own(openat(
                Some(dst.as_raw_fd()),
                name,
                wo,
                Mode::S_IRUSR | Mode::S_IWUSR,
            )
            .map_err(e("create"))?);
            let mut r = std::fs::File::from(from);
            let mut w = std::fs::File::from(to);
            std::io::copy(&mut r, &mut w).map_err(|io| {
                (
                    "copy".to_string(),
                    nix::errno::Errno::from_raw(io.raw_os_error().unwrap_or(libc::EIO)),
                )
            })?;
            // chown first: it clears setuid and setgid, which chmod restores.
            fchown(w.as_raw_fd(), uid, gid).map_err(e("chown"))?;
            fchmod(w.as_raw_fd(), mode).map_err(e("chmod"))?;
        }
        SFlag::S_IFLNK => {
            let target = readlinkat(Some(src.as_raw_fd()), name).map_err(e("readlink"))?;
            symlinkat(target.as_os_str(), Some(dst.as_raw_fd()), name).map_err(e("symlink"))?;
            chown_nofollow()?;
        }
        SFlag::S_IFCHR | SFlag::S_IFBLK | SFlag::S_IFIFO => {
            mknodat(Some(dst.as_raw_fd()), name, kind, mode, st.st_rdev).map_err(e("mknod"))?;
            chown_nofollow()?;
            fchmodat(
                Some(dst.as_raw_fd()),
                name,
                mode,
                FchmodatFlags::FollowSymlink,
            )
            .map_err(e("chmod"))?;
        }
        // Sockets mean nothing once copied.
        _ => {}
    }
    Ok(())
}

fn own(fd: std::os::fd::RawFd) -> OwnedFd {
    crate::sys::own_fd(fd)
}
