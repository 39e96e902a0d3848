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

/// A small kernel-made text file (/proc, /sys) read whole. Such files say
/// their size is 0, so `fs::read_to_string` starts at 32 bytes and doubles:
/// 7-9 reads for a mountinfo, each one more trip through its generator.
/// Reads of a page take most of them at once (and, unlike `read_to_end`
/// on a File, no stat or seek is spent on a size the file does not know).
pub(crate) fn read_text(path: impl AsRef<Path>) -> std::io::Result<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 4096];
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize(len * 2, 0);
        }
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(len);
    String::from_utf8(buf).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::read_text;

    /// Past the first page and across the doubling, every byte comes back
    /// once and in order; an empty file is an empty string.
    #[test]
    fn read_text_reads_whole_files() {
        let dir = std::env::temp_dir().join(format!("estiba-readtext-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for len in [0usize, 1, 4095, 4096, 4097, 10_000, 70_001] {
            let text: String = (0..len)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            let path = dir.join(format!("f{len}"));
            std::fs::write(&path, &text).unwrap();
            assert_eq!(read_text(&path).unwrap(), text, "length {len}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
        // A kernel file that reports size 0 but has text.
        assert!(read_text("/proc/self/status").unwrap().contains("\nPid:\t"));
    }
}
