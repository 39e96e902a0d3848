//! Paths inside the container's rootfs, resolved so that no symlink can lead
//! outside it: every lookup goes through openat2(RESOLVE_IN_ROOT) from a
//! descriptor of the rootfs, and mounts target the resulting descriptor
//! (`/proc/self/fd/N`), never a path string the container could swap.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::error::{Error, Result};
use crate::sys;

/// A directory that acts as `/` for every lookup made through it.
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

/// Relative form of a container path (`/a/b` → `a/b`, `/` → `.`).
fn relative(path: &Path) -> PathBuf {
    let rel: PathBuf = path
        .components()
        .filter(|c| matches!(c, Component::Normal(_) | Component::ParentDir))
        .collect();
    if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    }
}

fn cstr(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::Config(format!("path {path:?} contains a NUL byte")))
}

/// `/proc/self/fd/N`: a path the kernel resolves to exactly this descriptor.
pub fn fd_path(fd: &impl AsRawFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

impl Root {
    pub fn open(path: &Path) -> Result<Self> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::path("open rootfs", path, e))?;
        let fd = sys::own_fd(fd);
        Ok(Root {
            fd,
            path: path.to_path_buf(),
        })
    }

    pub fn host_path(&self, inside: &Path) -> PathBuf {
        self.path.join(relative(inside))
    }

    /// Opens `inside` (a container path) with `flags`, symlinks resolved
    /// within the root.
    pub fn open_in(&self, inside: &Path, flags: i32) -> std::result::Result<OwnedFd, Errno> {
        let c = CString::new(relative(inside).as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
        sys::openat2(self.fd.as_fd(), &c, flags, 0, sys::RESOLVE_IN_ROOT)
    }

    /// An O_PATH descriptor of an existing `inside`.
    pub fn lookup(&self, inside: &Path) -> std::result::Result<OwnedFd, Errno> {
        self.open_in(inside, libc::O_PATH)
    }

    /// Makes every missing directory of `inside` (mode 0755) and returns an
    /// O_PATH descriptor of the last one.
    pub fn mkdir_all(&self, inside: &Path) -> Result<OwnedFd> {
        let rel = relative(inside);
        let mut done = PathBuf::new();
        let mut cur = self
            .lookup(Path::new("."))
            .map_err(|e| Error::path("open rootfs", &self.path, e))?;
        for comp in rel.components() {
            done.push(comp);
            match self.open_in(&done, libc::O_PATH | libc::O_DIRECTORY) {
                Ok(fd) => cur = fd,
                Err(Errno::ENOENT) => {
                    let name = cstr(Path::new(comp.as_os_str()))?;
                    match nix::sys::stat::mkdirat(
                        Some(cur.as_raw_fd()),
                        name.as_c_str(),
                        Mode::from_bits_truncate(0o755),
                    ) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(Error::path("mkdir", self.host_path(&done), e)),
                    }
                    cur = self
                        .open_in(&done, libc::O_PATH | libc::O_DIRECTORY)
                        .map_err(|e| Error::path("open", self.host_path(&done), e))?;
                }
                Err(e) => return Err(Error::path("open", self.host_path(&done), e)),
            }
        }
        Ok(cur)
    }

    /// Makes sure `inside` exists, as a directory or (for `file`) an empty
    /// regular file, and returns an O_PATH descriptor of it.
    pub fn ensure(&self, inside: &Path, file: bool) -> Result<OwnedFd> {
        if let Ok(fd) = self.lookup(inside) {
            return Ok(fd);
        }
        if !file {
            return self.mkdir_all(inside);
        }
        if let Some(parent) = inside.parent() {
            self.mkdir_all(parent)?;
        }
        let created = self
            .open_in(inside, libc::O_CREAT | libc::O_RDONLY | libc::O_NOCTTY)
            .or_else(|e| {
                if e == Errno::EEXIST {
                    self.lookup(inside)
                } else {
                    Err(e)
                }
            })
            .map_err(|e| Error::path("create", self.host_path(inside), e))?;
        drop(created);
        self.lookup(inside)
            .map_err(|e| Error::path("open", self.host_path(inside), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("estiba-safepath-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn relative_strips_root() {
        assert_eq!(relative(Path::new("/a/b")), PathBuf::from("a/b"));
        assert_eq!(relative(Path::new("/")), PathBuf::from("."));
    }

    #[test]
    fn symlink_escape_stays_inside_root() {
        let d = tmpdir("escape");
        let root_dir = d.join("root");
        let outside = d.join("outside");
        std::fs::create_dir_all(&root_dir).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        // root/evil -> ../outside (and an absolute one too)
        std::os::unix::fs::symlink("../outside", root_dir.join("evil")).unwrap();
        std::os::unix::fs::symlink(&outside, root_dir.join("evil2")).unwrap();
        let root = Root::open(&root_dir).unwrap();
        root.mkdir_all(Path::new("/evil/x")).unwrap();
        root.mkdir_all(Path::new("/evil2/y")).unwrap();
        assert!(
            !outside.join("x").exists(),
            "mkdir escaped through a relative symlink"
        );
        assert!(
            !outside.join("y").exists(),
            "mkdir escaped through an absolute symlink"
        );
        assert!(
            root_dir.join("outside/x").is_dir()
                || root_dir.join("x").is_dir()
                || root_dir.join("evil").exists()
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn ensure_file_creates_parents() {
        let d = tmpdir("file");
        let root = Root::open(&d).unwrap();
        root.ensure(Path::new("/etc/deep/hosts"), true).unwrap();
        assert!(d.join("etc/deep/hosts").is_file());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
