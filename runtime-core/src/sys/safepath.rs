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

    /// Where `fd` (opened below this root) really is, as a container path;
    /// `None` when the kernel's name for it is not below the root.
    pub fn inside_path(&self, fd: &impl AsRawFd) -> Option<PathBuf> {
        let real = std::fs::read_link(fd_path(fd)).ok()?;
        let rest = real.strip_prefix(&self.path).ok()?;
        Some(Path::new("/").join(rest))
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

    /// An O_PATH descriptor of an existing `inside`, reached without any
    /// symlink (ELOOP if one is met, the last component included).
    pub fn lookup_nofollow(&self, inside: &Path) -> std::result::Result<OwnedFd, Errno> {
        let c = CString::new(relative(inside).as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
        // No O_NOFOLLOW: with it openat2 hands back a last-component
        // symlink itself instead of refusing it.
        sys::openat2(
            self.fd.as_fd(),
            &c,
            libc::O_PATH,
            0,
            sys::RESOLVE_IN_ROOT | sys::RESOLVE_NO_SYMLINKS,
        )
    }

    /// An O_PATH descriptor of an existing `inside`.
    pub fn lookup(&self, inside: &Path) -> std::result::Result<OwnedFd, Errno> {
        self.open_in(inside, libc::O_PATH)
    }

    /// Makes every missing directory of `inside` (mode 0755) and returns an
    /// O_PATH descriptor of the last one. Symlinks met on the way are
    /// followed as if the rootfs were `/` (a dangling one gets its target
    /// created inside the rootfs, as runc's securejoin does); each step opens
    /// one component below an already-checked descriptor, without following
    /// symlinks, so nothing swapped in meanwhile can lead outside.
    pub fn mkdir_all(&self, inside: &Path) -> Result<OwnedFd> {
        self.mkdir_walk(inside).map(|(fd, _)| fd)
    }

    /// [`Root::mkdir_all`], and whether the walk met any symlink or `..`.
    fn mkdir_walk(&self, inside: &Path) -> Result<(OwnedFd, bool)> {
        let all = components(inside);
        let mut detour = all.iter().any(|c| c == "..");
        // Most often only the last component is missing and nothing above
        // it is a symlink: one openat2 that refuses symlinks and `..` takes
        // the walk straight to it (the same directory the walk would reach).
        let prefix = all.len().saturating_sub(1);
        let (mut done, mut cur) = match all[..prefix].iter().any(|c| c == "..") {
            false => match self.reopen(&all[..prefix]) {
                Ok(fd) => (all[..prefix].to_vec(), fd),
                Err(_) => (vec![], self.reopen(&[])?),
            },
            true => (vec![], self.reopen(&[])?),
        };
        let mut todo: std::collections::VecDeque<std::ffi::OsString> =
            all[done.len()..].iter().cloned().collect();
        let mut links = 0;
        while let Some(comp) = todo.pop_front() {
            if comp == ".." {
                done.pop();
                cur = self.reopen(&done)?;
                continue;
            }
            let name = cstr(Path::new(&comp))?;
            match nix::fcntl::readlinkat(Some(cur.as_raw_fd()), name.as_c_str()) {
                Ok(target) => {
                    detour = true;
                    links += 1;
                    if links > 40 {
                        return Err(Error::path("resolve", self.host_path(inside), Errno::ELOOP));
                    }
                    let target = PathBuf::from(target);
                    if target.is_absolute() {
                        done.clear();
                        cur = self.reopen(&done)?;
                    }
                    for c in components(&target).into_iter().rev() {
                        todo.push_front(c);
                    }
                    continue;
                }
                Err(Errno::EINVAL) => {}
                Err(Errno::ENOENT) => match nix::sys::stat::mkdirat(
                    Some(cur.as_raw_fd()),
                    name.as_c_str(),
                    Mode::from_bits_truncate(0o755),
                ) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(Error::path("mkdir", self.host_path(inside), e)),
                },
                Err(e) => return Err(Error::path("readlink", self.host_path(inside), e)),
            }
            cur = sys::openat2(
                cur.as_fd(),
                &name,
                libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                0,
                sys::RESOLVE_BENEATH | sys::RESOLVE_NO_SYMLINKS,
            )
            .map_err(|e| Error::path("open", self.host_path(inside), e))?;
            done.push(comp);
        }
        Ok((cur, detour))
    }

    /// The directory at already-resolved components `done`.
    fn reopen(&self, done: &[std::ffi::OsString]) -> Result<OwnedFd> {
        let rel: PathBuf = done.iter().collect();
        let rel = if rel.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            rel
        };
        let c = cstr(&rel)?;
        sys::openat2(
            self.fd.as_fd(),
            &c,
            libc::O_PATH | libc::O_DIRECTORY,
            0,
            sys::RESOLVE_BENEATH | sys::RESOLVE_NO_SYMLINKS,
        )
        .map_err(|e| Error::path("open", self.host_path(&rel), e))
    }

    /// [`Root::ensure`], and whether `inside` was reached as written: no
    /// symlink and no `..` on the way, so the descriptor is at the lexical
    /// path, and a caller checking where it landed need not ask the kernel
    /// (a readlink of `/proc/self/fd/N` per mount).
    pub fn ensure_at(&self, inside: &Path, file: bool) -> Result<(OwnedFd, bool)> {
        if inside.components().any(|c| c == Component::ParentDir) {
            return self.ensure(inside, file).map(|fd| (fd, false));
        }
        match self.lookup_nofollow(inside) {
            Ok(fd) => Ok((fd, true)),
            // ENOENT without RESOLVE_NO_SYMLINKS's ELOOP: no symlink comes
            // before the missing part, so a lookup that followed them would
            // fail the same way; straight to making it.
            Err(Errno::ENOENT) if !file => self.mkdir_walk(inside).map(|(fd, d)| (fd, !d)),
            Err(_) => self.ensure(inside, file).map(|fd| (fd, false)),
        }
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
        let parent = self.mkdir_all(inside.parent().unwrap_or(Path::new("/")))?;
        let Some(name) = inside.file_name() else {
            return self.mkdir_all(inside);
        };
        let name = cstr(Path::new(name))?;
        match nix::fcntl::readlinkat(Some(parent.as_raw_fd()), name.as_c_str()) {
            // A dangling symlink: create what it points to, inside the root.
            Ok(target) => {
                let target = PathBuf::from(target);
                let full = if target.is_absolute() {
                    target
                } else {
                    inside.parent().unwrap_or(Path::new("/")).join(target)
                };
                if full == inside {
                    return Err(Error::path("create", self.host_path(inside), Errno::ELOOP));
                }
                return self.ensure(&full, true);
            }
            Err(Errno::ENOENT) => {}
            Err(Errno::EINVAL) => {}
            Err(e) => return Err(Error::path("readlink", self.host_path(inside), e)),
        }
        let created = sys::openat2(
            parent.as_fd(),
            &name,
            libc::O_CREAT | libc::O_RDONLY | libc::O_NOCTTY | libc::O_NOFOLLOW,
            0o644,
            sys::RESOLVE_BENEATH | sys::RESOLVE_NO_SYMLINKS,
        )
        .map_err(|e| Error::path("create", self.host_path(inside), e))?;
        drop(created);
        sys::openat2(
            parent.as_fd(),
            &name,
            libc::O_PATH | libc::O_NOFOLLOW,
            0,
            sys::RESOLVE_BENEATH | sys::RESOLVE_NO_SYMLINKS,
        )
        .map_err(|e| Error::path("open", self.host_path(inside), e))
    }
}

/// The normal components of a container path, `..` kept for the walker.
fn components(path: &Path) -> Vec<std::ffi::OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
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
    fn an_existing_prefix_through_a_symlink_is_walked_inside_the_root() {
        // The one-step open of an existing prefix must not follow a
        // symlink on it to the host: root/link -> <host dir>, whose "sub"
        // exists on the host, and only the last component is missing.
        let d = tmpdir("prefix");
        let root_dir = d.join("root");
        let outside = d.join("outside");
        std::fs::create_dir_all(root_dir.join("a")).unwrap();
        std::fs::create_dir_all(outside.join("sub")).unwrap();
        std::os::unix::fs::symlink(&outside, root_dir.join("a/link")).unwrap();
        let root = Root::open(&root_dir).unwrap();
        root.mkdir_all(Path::new("/a/link/sub/z")).unwrap();
        assert!(!outside.join("sub/z").exists(), "mkdir escaped to the host");
        let inside = root_dir.join(outside.strip_prefix("/").unwrap());
        assert!(inside.join("sub/z").is_dir(), "not made inside the root");
        // And the plain case: an existing parent, one new directory.
        root.mkdir_all(Path::new("/a/new")).unwrap();
        assert!(root_dir.join("a/new").is_dir());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn ensure_at_tells_a_plain_path_from_a_detour() {
        let d = tmpdir("at");
        std::fs::create_dir_all(d.join("real/sub")).unwrap();
        std::os::unix::fs::symlink("/real", d.join("link")).unwrap();
        let root = Root::open(&d).unwrap();
        let at = |p: &str, file| {
            let (fd, plain) = root.ensure_at(Path::new(p), file).unwrap();
            (root.inside_path(&fd).unwrap(), plain)
        };
        assert_eq!(at("/real/sub", false), ("/real/sub".into(), true));
        assert_eq!(
            at("/real/new/deeper", false),
            ("/real/new/deeper".into(), true)
        );
        assert_eq!(at("/real/f", true), ("/real/f".into(), false));
        assert_eq!(at("/real/f", true), ("/real/f".into(), true));
        // Through a symlink or `..`: somewhere else than the words say.
        assert_eq!(at("/link", false), ("/real".into(), false));
        assert_eq!(at("/link/sub", false), ("/real/sub".into(), false));
        assert_eq!(at("/link/made", false), ("/real/made".into(), false));
        assert_eq!(at("/x/../real", false), ("/real".into(), false));
        assert!(d.join("x").is_dir());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn lookup_nofollow_refuses_a_symlink_at_the_end_too() {
        let d = tmpdir("nofollow");
        std::fs::create_dir_all(d.join("real")).unwrap();
        std::os::unix::fs::symlink("/real", d.join("link")).unwrap();
        let root = Root::open(&d).unwrap();
        assert!(root.lookup_nofollow(Path::new("/real")).is_ok());
        assert_eq!(
            root.lookup_nofollow(Path::new("/link")).unwrap_err(),
            Errno::ELOOP
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
