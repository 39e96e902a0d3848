//! Device nodes in the container's /dev: the default set every container
//! gets, `linux.devices`, and the /dev symlinks.

use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use nix::sys::stat::{makedev, mknodat, Mode, SFlag};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use crate::error::{Error, Result};
use crate::safepath::{fd_path, Root};

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

/// Creates `node` in the rootfs. In a user namespace mknod is not allowed,
/// so the host's node is bind-mounted instead (as runc does).
pub fn create(root: &Root, node: &Node, in_userns: bool) -> Result<()> {
    let parent = node.path.parent().unwrap_or(Path::new("/dev"));
    let name = node
        .path
        .file_name()
        .ok_or_else(|| Error::Config(format!("linux.devices: {:?} has no file name", node.path)))?;
    let dir = root.mkdir_all(parent)?;
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
    // O_PATH dirs cannot be used with mknodat directly on older kernels; the
    // magic link gives us a real directory handle.
    let dir_rw = nix::fcntl::open(
        fd_path(&dir).as_str(),
        nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::path("open", &host, e))?;
    let dir_rw = crate::sys::own_fd(dir_rw);
    let res = mknodat(
        Some(std::os::fd::AsRawFd::as_raw_fd(&dir_rw)),
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
                Some(std::os::fd::AsRawFd::as_raw_fd(&dir_rw)),
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
    nix::sys::stat::fchmodat(
        Some(std::os::fd::AsRawFd::as_raw_fd(&dir_rw)),
        name,
        Mode::from_bits_truncate(node.mode),
        nix::sys::stat::FchmodatFlags::NoFollowSymlink,
    )
    .or_else(|e| {
        if e == nix::errno::Errno::EOPNOTSUPP {
            Ok(())
        } else {
            Err(e)
        }
    })
    .map_err(|e| Error::path("chmod", &host, e))?;
    nix::unistd::fchownat(
        Some(std::os::fd::AsRawFd::as_raw_fd(&dir_rw)),
        name,
        Some(nix::unistd::Uid::from_raw(node.uid)),
        Some(nix::unistd::Gid::from_raw(node.gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| Error::path("chown", host, e))
}

/// /dev/fd, /dev/std{in,out,err}, /dev/core and /dev/ptmx → pts/ptmx.
pub fn create_symlinks(root: &Root) -> Result<()> {
    let mut links = vec![
        ("/proc/self/fd", "/dev/fd"),
        ("/proc/self/fd/0", "/dev/stdin"),
        ("/proc/self/fd/1", "/dev/stdout"),
        ("/proc/self/fd/2", "/dev/stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "/dev/core"));
    }
    let dev = root.mkdir_all(Path::new("/dev"))?;
    let dev_rw = crate::sys::own_fd(
        nix::fcntl::open(
            fd_path(&dev).as_str(),
            nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::path("open", root.host_path(Path::new("/dev")), e))?,
    );
    let dfd = std::os::fd::AsRawFd::as_raw_fd(&dev_rw);
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
