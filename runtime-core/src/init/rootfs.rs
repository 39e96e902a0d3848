//! The container's filesystem view: root propagation, the rootfs bind, the
//! spec's mounts, /dev, pivot_root, then masked and read-only paths.

use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use oci_spec::runtime::Spec;

use crate::error::{Error, Result};
use crate::init::devices;
use crate::init::mounts::{self, MountContext};
use crate::sys::safepath::{fd_path, Root};

/// Propagation of `/` in the container's mount namespace (rslave unless the
/// spec says otherwise, so nothing the container mounts leaks to the host).
fn root_propagation(spec: &Spec) -> MsFlags {
    spec.linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref())
        .and_then(mounts::propagation_flag)
        .unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC)
}

/// The mount point holding `path`, from mountinfo (longest prefix wins).
fn mount_point_of(path: &Path) -> Option<String> {
    let info = crate::sys::procfs::read_text("/proc/self/mountinfo").ok()?;
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|mp| path.starts_with(mp))
        .max_by_key(|mp| mp.len())
        .map(str::to_string)
}

/// Everything up to (not including) pivot_root.
pub fn prepare(spec: &Spec, rootfs: &Path) -> Result<()> {
    // An unbindable tree cannot be bind-mounted: stay private until
    // `finalize` applies it to the new root.
    let prop = match root_propagation(spec) {
        p if p.contains(MsFlags::MS_UNBINDABLE) => MsFlags::MS_PRIVATE | (p & MsFlags::MS_REC),
        p => p,
    };
    mount(None::<&str>, "/", None::<&str>, prop, None::<&str>)
        .map_err(|e| Error::sys("set propagation of /", e))?;
    // pivot_root refuses a new root whose parent mount is shared.
    if prop.contains(MsFlags::MS_SHARED) {
        if let Some(mp) = mount_point_of(rootfs) {
            mount(
                None::<&str>,
                mp.as_str(),
                None::<&str>,
                MsFlags::MS_PRIVATE,
                None::<&str>,
            )
            .map_err(|e| Error::sys(format!("make {mp} private"), e))?;
        }
    }
    mount(
        Some(rootfs),
        rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| Error::path("bind rootfs", rootfs, e))?;
    Ok(())
}

pub fn mount_all(ctx: &MountContext, spec: &Spec) -> Result<()> {
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        mounts::mount_entry(ctx, i, m)?;
    }
    Ok(())
}

/// Default devices, `linux.devices`, /dev links. Only when /dev is a mount
/// of the spec (a tmpfs, normally): a bundle that ships its own /dev keeps it.
pub fn populate_dev(ctx: &MountContext, spec: &Spec) -> Result<()> {
    // As runc: the default nodes and links go into whatever /dev is there
    // (a tmpfs, or the image's own), unless the host's /dev is bound in.
    let dev_bound = spec.mounts().iter().flatten().any(|m| {
        m.destination() == Path::new("/dev")
            && (m.typ().as_deref() == Some("bind")
                || m.options()
                    .iter()
                    .flatten()
                    .any(|o| o == "bind" || o == "rbind"))
    });
    let setup_dev = !dev_bound;
    let mut nodes = if setup_dev {
        devices::default_nodes()
    } else {
        vec![]
    };
    for d in spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_ref())
        .into_iter()
        .flatten()
    {
        let node = devices::from_spec(d)?;
        nodes.retain(|n| n.path != node.path);
        nodes.push(node);
    }
    let mut dirs = devices::Dirs::new(ctx.root);
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    let res = nodes
        .iter()
        .try_for_each(|n| devices::create(&mut dirs, n, ctx.in_userns));
    nix::sys::stat::umask(old);
    res?;
    if setup_dev {
        devices::create_symlinks(&mut dirs)?;
    }
    Ok(())
}

/// Makes `rootfs` the new `/` and detaches the old one.
pub fn pivot(rootfs: &Path) -> Result<()> {
    use nix::fcntl::{open, OFlag};
    use nix::sys::stat::Mode;
    let old = crate::sys::own_fd(
        open(
            "/",
            OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::sys("open /", e))?,
    );
    let new = crate::sys::own_fd(
        open(
            rootfs,
            OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::path("open", rootfs, e))?,
    );
    nix::unistd::fchdir(std::os::fd::AsRawFd::as_raw_fd(&new))
        .map_err(|e| Error::path("chdir", rootfs, e))?;
    // pivot_root(".", ".") stacks the old root under the new one; no
    // directory in the rootfs is needed for it.
    nix::unistd::pivot_root(".", ".").map_err(|e| Error::path("pivot_root", rootfs, e))?;
    nix::unistd::fchdir(std::os::fd::AsRawFd::as_raw_fd(&old))
        .map_err(|e| Error::sys("chdir to old root", e))?;
    // Keep the unmount from propagating to the host.
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| Error::sys("make old root rslave", e))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| Error::sys("unmount old root", e))?;
    nix::unistd::chdir("/").map_err(|e| Error::sys("chdir /", e))?;
    Ok(())
}

/// `--no-pivot`: move the rootfs over `/` and chroot into it (for ramfs
/// roots where pivot_root is impossible).
pub fn move_root(rootfs: &Path) -> Result<()> {
    nix::unistd::chdir(rootfs).map_err(|e| Error::path("chdir", rootfs, e))?;
    mount(
        Some(rootfs),
        "/",
        None::<&str>,
        MsFlags::MS_MOVE,
        None::<&str>,
    )
    .map_err(|e| Error::path("move mount", rootfs, e))?;
    nix::unistd::chroot(".").map_err(|e| Error::path("chroot", rootfs, e))?;
    nix::unistd::chdir("/").map_err(|e| Error::sys("chdir /", e))?;
    Ok(())
}

/// The host's `/dev/null` (checked to be the character device 1:3) for
/// masks, made before pivot_root while that mount is still in reach: masks
/// bind it, never the image's `/dev/null` (which could be a symlink to a
/// host file: CVE-2025-31133).
///
/// One detached clone is made; the first file masked gets it, and every
/// later one gets a clone of that mount (the same handle, attached by then:
/// older kernels clone only attached mounts). Closing a detached clone
/// unused costs the closer an RCU grace period (tens of µs to ~1 ms here),
/// so none is made that is not needed.
pub struct HostNull {
    tree: Option<std::os::fd::OwnedFd>,
    placed: bool,
}

impl HostNull {
    pub fn open(spec: &Spec) -> Result<HostNull> {
        let masks = spec
            .linux()
            .as_ref()
            .and_then(|l| l.masked_paths().as_ref())
            .is_some_and(|m| !m.is_empty());
        let tree = match masks {
            false => None,
            true => {
                let null = open_host_null()?;
                let tree = crate::sys::open_tree_clone(
                    std::os::fd::AsRawFd::as_raw_fd(&null),
                    c"",
                    libc::AT_EMPTY_PATH as libc::c_uint,
                )
                .map_err(|e| Error::sys("clone the /dev/null mount", e))?;
                Some(tree)
            }
        };
        Ok(HostNull {
            tree,
            placed: false,
        })
    }

    /// Binds the host's `/dev/null` on `target`.
    fn bind_on(&mut self, target: std::os::fd::BorrowedFd<'_>) -> nix::Result<()> {
        use std::os::fd::{AsFd, AsRawFd};
        let Some(tree) = &self.tree else {
            return Err(nix::errno::Errno::ENODEV);
        };
        if !self.placed {
            crate::sys::move_mount_fd(tree.as_fd(), target)?;
            self.placed = true;
            return Ok(());
        }
        let copy = crate::sys::open_tree_clone(
            tree.as_raw_fd(),
            c"",
            libc::AT_EMPTY_PATH as libc::c_uint,
        )?;
        crate::sys::move_mount_fd(copy.as_fd(), target)
    }
}

fn open_host_null() -> Result<std::os::fd::OwnedFd> {
    let fd = nix::fcntl::open(
        "/dev/null",
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NOFOLLOW,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| Error::sys("open /dev/null", e))?;
    let fd = crate::sys::own_fd(fd);
    let st = nix::sys::stat::fstat(std::os::fd::AsRawFd::as_raw_fd(&fd))
        .map_err(|e| Error::sys("stat /dev/null", e))?;
    let is_chr = st.st_mode & libc::S_IFMT == libc::S_IFCHR;
    if !is_chr || st.st_rdev != libc::makedev(1, 3) {
        return Err(Error::Sys(
            "/dev/null is not the character device 1:3: refusing to mask with it".into(),
        ));
    }
    Ok(fd)
}

/// After pivot: masked paths, read-only paths, then a read-only `/`.
pub fn finalize(spec: &Spec, in_userns: bool, mut null: HostNull) -> Result<()> {
    let root = Root::open(Path::new("/"))?;
    let linux = spec.linux().as_ref();
    for p in linux
        .and_then(|l| l.masked_paths().as_ref())
        .into_iter()
        .flatten()
    {
        mask(&root, Path::new(p), &mut null)?;
    }
    for p in linux
        .and_then(|l| l.readonly_paths().as_ref())
        .into_iter()
        .flatten()
    {
        readonly(&root, Path::new(p), in_userns)?;
    }
    mounts::remount_ro_later(spec, &root, in_userns)?;
    if let Some(prop) = linux
        .and_then(|l| l.rootfs_propagation().as_deref())
        .and_then(mounts::propagation_flag)
    {
        mount(None::<&str>, "/", None::<&str>, prop, None::<&str>)
            .map_err(|e| Error::sys("set rootfsPropagation on /", e))?;
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        // mount_setattr where the kernel has it (see `readonly_clone`).
        let set = root.lookup(Path::new("/")).and_then(|fd| {
            crate::sys::mount_setattr_one(
                std::os::fd::AsFd::as_fd(&fd),
                crate::sys::MOUNT_ATTR_RDONLY,
                0,
            )
        });
        if set.is_err() {
            mounts::remount("/", MsFlags::MS_RDONLY, in_userns)
                .map_err(|e| Error::sys("remount / read-only", e))?;
        }
    }
    Ok(())
}

/// A masked or read-only path, never through a symlink: one could point
/// the mount at something else than the path names.
fn lookup_plain(root: &Root, p: &Path, what: &'static str) -> Result<Option<std::os::fd::OwnedFd>> {
    match root.lookup_nofollow(p) {
        Ok(fd) => Ok(Some(fd)),
        Err(nix::errno::Errno::ENOENT) => Ok(None),
        Err(nix::errno::Errno::ELOOP) => Err(Error::Config(format!(
            "{what} {p:?}: is or passes through a symlink: refused"
        ))),
        Err(e) => Err(Error::path(what, p, e)),
    }
}

fn mask(root: &Root, p: &Path, null: &mut HostNull) -> Result<()> {
    let Some(fd) = lookup_plain(root, p, "masked path")? else {
        return Ok(());
    };
    let target = fd_path(&fd);
    // fstat of the O_PATH descriptor itself (never a symlink here): a stat
    // of `target` would look it up through /proc again.
    let is_dir = nix::sys::stat::fstat(std::os::fd::AsRawFd::as_raw_fd(&fd))
        .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR);
    let res = if is_dir {
        mount(
            Some("tmpfs"),
            target.as_str(),
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None::<&str>,
        )
    } else {
        null.bind_on(std::os::fd::AsFd::as_fd(&fd))
    };
    res.map_err(|e| Error::sys(format!("mask {p:?}"), e))
}

fn readonly(root: &Root, p: &Path, in_userns: bool) -> Result<()> {
    let Some(fd) = lookup_plain(root, p, "readonly path")? else {
        return Ok(());
    };
    // A detached clone of what is at `p`, made read-only (the top mount,
    // as the remount below) before it covers `p`: mount_setattr on a mount
    // nobody sees is far cheaper here than a remount. The bind and remount
    // where the kernel lacks the new mount API.
    if readonly_clone(&fd).is_ok() {
        return Ok(());
    }
    let target = fd_path(&fd);
    mount(
        Some(target.as_str()),
        target.as_str(),
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| Error::sys(format!("bind readonly path {p:?}"), e))?;
    // Re-open: the magic link now must name the new mount on top.
    let fd = root
        .lookup_nofollow(p)
        .map_err(|e| Error::path("readonly path", p, e))?;
    let target = fd_path(&fd);
    mounts::remount(&target, MsFlags::MS_RDONLY | MsFlags::MS_REC, in_userns)
        .map_err(|e| Error::sys(format!("remount {p:?} read-only"), e))
}

fn readonly_clone(fd: &std::os::fd::OwnedFd) -> nix::Result<()> {
    use std::os::fd::{AsFd, AsRawFd};
    let tree = crate::sys::open_tree_clone(
        fd.as_raw_fd(),
        c"",
        (libc::AT_EMPTY_PATH | libc::AT_RECURSIVE) as libc::c_uint,
    )?;
    crate::sys::mount_setattr_one(tree.as_fd(), crate::sys::MOUNT_ATTR_RDONLY, 0)?;
    crate::sys::move_mount_fd(tree.as_fd(), fd.as_fd())
}

/// Hostname, domainname and sysctls (the init is in its own uts/ipc/net
/// namespaces and the new /proc by now).
pub fn apply_system(spec: &Spec) -> Result<()> {
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).map_err(|e| Error::sys(format!("sethostname {h:?}"), e))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        crate::sys::setdomainname(d).map_err(|e| Error::sys(format!("setdomainname {d:?}"), e))?;
    }
    let sysctls = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref());
    if let Some(sysctls) = sysctls.filter(|s| !s.is_empty()) {
        let proc = crate::sys::procfs::ProcFs::open(Path::new("/proc"))?;
        for (k, v) in sysctls {
            let rel = format!("sys/{}", k.replace('.', "/"));
            proc.write(&rel, v.as_bytes(), true)
                .map_err(|e| Error::sys(format!("linux.sysctl {k}={v:?}"), e))?;
        }
    }
    Ok(())
}

/// runc's reopening of /dev/null (after pivot): a standard stream that is
/// the host's /dev/null (as engines give a detached container's stdin)
/// becomes the container's own, so nothing of the container points at the
/// host's /dev and criu can checkpoint it. A container without a
/// /dev/null of its own keeps what it was given.
pub fn reopen_dev_null() -> Result<()> {
    use nix::sys::stat::{fstat, stat, SFlag};
    let Ok(ours) = stat("/dev/null") else {
        return Ok(());
    };
    for fd in 0..3 {
        let Ok(st) = fstat(fd) else { continue };
        let chr = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR;
        let same = (st.st_dev, st.st_ino) == (ours.st_dev, ours.st_ino);
        if !chr || st.st_rdev != ours.st_rdev || same {
            continue;
        }
        let null = nix::fcntl::open(
            "/dev/null",
            nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| Error::sys("open the container's /dev/null", e))?;
        let null = crate::sys::own_fd(null);
        nix::unistd::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), fd)
            .map_err(|e| Error::sys(format!("reopen /dev/null as fd {fd}"), e))?;
    }
    Ok(())
}
