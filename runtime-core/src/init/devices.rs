//! Device nodes in the container's /dev: the default set every container
//! gets, `linux.devices`, and the /dev symlinks.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use nix::sys::stat::{makedev, mknodat, Mode, SFlag};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use crate::error::{Error, Result};
use crate::sys::safepath::{fd_path, Root};

/// A device to create: path inside the container, kind, numbers, mode, owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub path: PathBuf,
    pub kind: SFlag,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// What every container gets, whatever the spec says.
pub fn default_nodes() -> Vec<Node> {
    [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ]
    .into_iter()
    .map(|(name, major, minor)| Node {
        path: Path::new("/dev").join(name),
        kind: SFlag::S_IFCHR,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

pub fn from_spec(d: &LinuxDevice) -> Result<Node> {
    let kind = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        LinuxDeviceType::A => {
            return Err(Error::Config(format!(
                "linux.devices {:?}: type 'a' is not a device",
                d.path()
            )))
        }
    };
    let (major, minor) = (d.major(), d.minor());
    if kind != SFlag::S_IFIFO && (major < 0 || minor < 0) {
        return Err(Error::Config(format!(
            "linux.devices {:?}: negative major/minor",
            d.path()
        )));
    }
    Ok(Node {
        path: d.path().clone(),
        kind,
        major: major.max(0) as u64,
        minor: minor.max(0) as u64,
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
    })
}

/// The directories nodes and links go into, each made and opened once for
/// the whole set (the default nodes and links all go into /dev: one
/// descriptor instead of a lookup, a reopen and two closes per entry).
pub struct Dirs<'a> {
    root: &'a Root,
    open: Vec<(PathBuf, OwnedFd)>,
}

impl<'a> Dirs<'a> {
    pub fn new(root: &'a Root) -> Self {
        Dirs { root, open: vec![] }
    }

    /// A read-write descriptor of the container directory `dir`, made if
    /// missing (symlinks resolved inside the rootfs).
    fn get(&mut self, dir: &Path) -> Result<BorrowedFd<'_>> {
        let i = match self.open.iter().position(|(p, _)| p == dir) {
            Some(i) => i,
            None => {
                let fd = self.root.mkdir_all(dir)?;
                // O_PATH dirs cannot be used with mknodat directly on older
                // kernels; the magic link gives us a real directory handle.
                let rw = nix::fcntl::open(
                    fd_path(&fd).as_str(),
                    nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| Error::path("open", self.root.host_path(dir), e))?;
                self.open.push((dir.to_path_buf(), crate::sys::own_fd(rw)));
                self.open.len() - 1
            }
        };
        Ok(self.open[i].1.as_fd())
    }
}

/// Creates `node` in the rootfs. In a user namespace mknod is not allowed,
/// so the host's node is bind-mounted instead (as runc does).
pub fn create(dirs: &mut Dirs<'_>, node: &Node, in_userns: bool) -> Result<()> {
    let root = dirs.root;
    let parent = node.path.parent().unwrap_or(Path::new("/dev"));
    let name = node
        .path
        .file_name()
        .ok_or_else(|| Error::Config(format!("linux.devices: {:?} has no file name", node.path)))?;
    let host = root.host_path(&node.path);
    if in_userns {
        let target = root.ensure(&node.path, true)?;
        return mount(
            Some(&node.path),
            fd_path(&target).as_str(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| Error::path("bind device", host, e));
    }
    let dev = makedev(node.major, node.minor);
    let dir = dirs.get(parent)?;
    let res = mknodat(
        Some(dir.as_raw_fd()),
        name,
        node.kind,
        Mode::from_bits_truncate(node.mode),
        dev,
    );
    match res {
        Ok(()) => {}
        // What is there already must be this very device (spec: else an error).
        Err(nix::errno::Errno::EEXIST) => {
            let st = nix::sys::stat::fstatat(
                Some(dir.as_raw_fd()),
                name,
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(|e| Error::path("stat", &host, e))?;
            let same = st.st_mode & libc::S_IFMT == node.kind.bits() && st.st_rdev == dev;
            return if same {
                Ok(())
            } else {
                Err(Error::Config(format!(
                    "device {:?}: the file already there in the rootfs is not that device",
                    node.path
                )))
            };
        }
        Err(e) => return Err(Error::path("mknod", host, e)),
    }
    let cname = std::ffi::CString::new(name.as_bytes())
        .map_err(|_| Error::Config(format!("device {:?}: a NUL in its name", node.path)))?;
    crate::sys::fchmodat_nofollow(dir, &cname, node.mode)
        .or_else(|e| match e {
            nix::errno::Errno::EOPNOTSUPP => Ok(()),
            e => Err(e),
        })
        .map_err(|e| Error::path("chmod", &host, e))?;
    nix::unistd::fchownat(
        Some(dir.as_raw_fd()),
        name,
        Some(nix::unistd::Uid::from_raw(node.uid)),
        Some(nix::unistd::Gid::from_raw(node.gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| Error::path("chown", host, e))
}

/// /dev/fd, /dev/std{in,out,err}, /dev/core and /dev/ptmx → pts/ptmx.
pub fn create_symlinks(dirs: &mut Dirs<'_>) -> Result<()> {
    let mut links = vec![
        ("/proc/self/fd", "/dev/fd"),
        ("/proc/self/fd/0", "/dev/stdin"),
        ("/proc/self/fd/1", "/dev/stdout"),
        ("/proc/self/fd/2", "/dev/stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "/dev/core"));
    }
    let root = dirs.root;
    let dfd = dirs.get(Path::new("/dev"))?.as_raw_fd();
    for (target, link) in links {
        let name = Path::new(link).file_name().unwrap_or_default();
        match nix::unistd::symlinkat(target, Some(dfd), name) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(Error::path("symlink", root.host_path(Path::new(link)), e)),
        }
    }
    // /dev/ptmx must reach the container's own devpts instance.
    match nix::unistd::unlinkat(Some(dfd), "ptmx", nix::unistd::UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => {
            return Err(Error::path(
                "unlink",
                root.host_path(Path::new("/dev/ptmx")),
                e,
            ))
        }
    }
    nix::unistd::symlinkat("pts/ptmx", Some(dfd), "ptmx")
        .map_err(|e| Error::path("symlink", root.host_path(Path::new("/dev/ptmx")), e))
}
