//! Writes under `/proc` (sysctls, oom_score_adj, attr/*, id maps, time
//! offsets) through a handle verified to be the root of a real procfs, each
//! path resolved without leaving that mount (RESOLVE_NO_XDEV: no bind mount
//! over part of it), without magic links, and for sysctls without any
//! symlink: a rootfs or a config cannot redirect such a write to a host
//! file (the CVE-2025-52881 class).

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;

use crate::error::{Error, Result};
use crate::sys;

pub(crate) const PROC_SUPER_MAGIC: i64 = 0x9fa0;
/// The inode number of every procfs root.
const PROC_ROOT_INO: u64 = 1;

pub struct ProcFs {
    fd: OwnedFd,
}

impl ProcFs {
    /// Opens `path` (normally `/proc`) and checks that it is the root of a
    /// procfs mount, reached without following a symlink.
    pub fn open(path: &Path) -> Result<Self> {
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| Error::Config(format!("{path:?}: NUL in path")))?;
        let fd = sys::openat2(
            sys::borrow_fd(libc::AT_FDCWD),
            &c,
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            0,
            sys::RESOLVE_NO_SYMLINKS,
        )
        .map_err(|e| Error::path("open procfs", path, e))?;
        let st = nix::sys::stat::fstat(std::os::fd::AsRawFd::as_raw_fd(&fd))
            .map_err(|e| Error::path("stat", path, e))?;
        if sys::fs_magic(fd.as_fd()) != Ok(PROC_SUPER_MAGIC) || st.st_ino != PROC_ROOT_INO {
            return Err(Error::Sys(format!(
                "{path:?} is not the root of a procfs mount: refusing to write through it"
            )));
        }
        Ok(ProcFs { fd })
    }

    /// Writes `data` to `rel` below the procfs root, in one write(2).
    /// `no_symlinks` refuses every symlink on the way (sysctls); without
    /// it only procfs's own `self`/`thread-self` links can be met, since
    /// the path never leaves this mount.
    pub fn write(
        &self,
        rel: &str,
        data: &[u8],
        no_symlinks: bool,
    ) -> std::result::Result<(), Errno> {
        let c = std::ffi::CString::new(rel).map_err(|_| Errno::EINVAL)?;
        let mut how = sys::RESOLVE_BENEATH | sys::RESOLVE_NO_MAGICLINKS | sys::RESOLVE_NO_XDEV;
        if no_symlinks {
            how |= sys::RESOLVE_NO_SYMLINKS;
        }
        let fd = sys::openat2(
            self.fd.as_fd(),
            &c,
            libc::O_WRONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_NOCTTY,
            0,
            how,
        )?;
        if sys::fs_magic(fd.as_fd()) != Ok(PROC_SUPER_MAGIC) {
            return Err(Errno::EXDEV);
        }
        let mut f = std::fs::File::from(fd);
        f.write_all(data)
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
    }

    /// [`ProcFs::write`] with the error naming what was written.
    pub fn write_named(&self, what: &str, rel: &str, data: &[u8], no_symlinks: bool) -> Result<()> {
        self.write(rel, data, no_symlinks)
            .map_err(|e| Error::sys(format!("{what}: write /proc/{rel}"), e))
    }
}

pub(crate) use estiba_cgroups::read_text;
