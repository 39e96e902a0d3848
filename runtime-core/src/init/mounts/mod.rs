//! `mounts[]` of the spec: each entry mounted inside the rootfs, in order,
//! where runc's rules let it land; `options` is what the options mean.

use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use oci_spec::runtime::Mount;

use crate::error::{Error, Result};
use crate::sys::safepath::{fd_path, Root};

mod options;
pub(crate) use options::setattr_of;
pub use options::{propagation_flag, without, MountOptions, KNOWN_OPTIONS};

/// Flags a remount must keep, because a bind mount inherits them locked from
/// its source (in a user namespace, dropping them fails with EPERM).
pub fn locked_flags(path: &str) -> MsFlags {
    use nix::sys::statvfs::{statvfs, FsFlags};
    let Ok(st) = statvfs(path) else {
        return MsFlags::empty();
    };
    let f = st.flags();
    let mut out = MsFlags::empty();
    for (fs, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(fs) {
            out |= ms;
        }
    }
    out
}

/// What the mount code needs besides the entry itself.
pub struct MountContext<'a> {
    pub root: &'a Root,
    pub bundle: &'a Path,
    pub in_userns: bool,
    pub cgroup_path: &'a Path,
    /// The host's cgroup hierarchies, as the runtime found them.
    pub hierarchies: &'a [estiba_cgroups::hierarchy::Hierarchy],
    pub new_cgroupns: bool,
    pub new_netns: bool,
    /// `linux.mountLabel`, where the host has SELinux (without it the
    /// label has nothing to apply to, as with runc).
    pub mount_label: Option<&'a str>,
    /// The id-mapped mounts the runtime prepared, by index in `mounts[]`.
    pub idmapped: &'a [(usize, std::os::fd::OwnedFd)],
}

/// Mounts entry `index` of `mounts[]` inside the rootfs.
pub fn mount_entry(ctx: &MountContext, index: usize, m: &Mount) -> Result<()> {
    let opts = MountOptions::parse(m.options().as_deref().unwrap_or_default())?;
    let typ = m.typ().as_deref().unwrap_or("");
    let dest = m.destination();
    let bind = opts.is_bind() || typ == "bind";
    if typ == "cgroup" || typ == "cgroup2" {
        return crate::init::cgroupfs::mount_cgroup_fs(ctx, dest, &opts);
    }
    if bind {
        opts.check_bind(dest)?;
        let prepared = ctx.idmapped.iter().find(|(i, _)| *i == index);
        return bind_mount(ctx, m, &opts, prepared.map(|(_, fd)| fd));
    }
    let (target, plain) = ctx.root.ensure_at(dest, false)?;
    check_target(ctx, typ, dest, (&target, plain), m.source().as_deref())?;
    let target_path = fd_path(&target);
    // What the tmpfs is to start with, opened before it is covered.
    let lower = match opts.copyup {
        true => Some(
            ctx.root
                .open_in(dest, libc::O_RDONLY | libc::O_DIRECTORY)
                .map_err(|e| Error::path("open for tmpcopyup", ctx.root.host_path(dest), e))?,
        ),
        false => None,
    };
    let source = m.source().clone().unwrap_or_else(|| PathBuf::from(typ));
    let mut data = opts.data.join(",");
    // The mount's files get the container's SELinux context (runc's
    // FormatMountLabel); proc and sysfs keep their own.
    if let (Some(label), false) = (ctx.mount_label, matches!(typ, "proc" | "sysfs")) {
        let context = format!("context=\"{label}\"");
        data = if data.is_empty() {
            context
        } else {
            format!("{data},{context}")
        };
    }
    let mut flags = without(opts.flags, MsFlags::MS_REMOUNT);
    if ro_later(typ, dest) {
        flags = without(flags, MsFlags::MS_RDONLY);
    }
    let res = mount(
        Some(source.as_path()),
        target_path.as_str(),
        Some(typ),
        flags,
        (!data.is_empty()).then_some(data.as_str()),
    );
    match res {
        Ok(()) => {
            drop(target);
            if let Some(lower) = lower {
                let upper = ctx
                    .root
                    .open_in(dest, libc::O_RDONLY | libc::O_DIRECTORY)
                    .map_err(|e| Error::path("open tmpfs", ctx.root.host_path(dest), e))?;
                crate::init::copyup::copy_up(&lower, &upper, dest)?;
            }
            return apply_propagation(ctx, &opts, dest);
        }
        // sysfs needs a network namespace of our own; without one, runc
        // binds the host's /sys read-only instead.
        Err(nix::errno::Errno::EPERM) if typ == "sysfs" && !ctx.new_netns => {
            mount(
                Some("/sys"),
                target_path.as_str(),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(|e| Error::path("mount sysfs (bind)", ctx.root.host_path(dest), e))?;
            let top = mount_on(ctx, dest)?;
            remount(
                &fd_path(&top),
                opts.flags | MsFlags::MS_RDONLY,
                ctx.in_userns,
            )
            .map_err(|e| Error::path("remount sysfs", ctx.root.host_path(dest), e))?;
        }
        Err(e) => return Err(Error::sys(format!("mount {typ} {source:?} on {dest:?}"), e)),
    }
    apply_propagation(ctx, &opts, dest)
}

/// A tmpfs, or whatever is at /dev, is mounted writable and made read-only
/// at the end (`remount_ro_later`): nodes, links and sub-mounts go in
/// first (runc does the same).
fn ro_later(typ: &str, dest: &Path) -> bool {
    // Path equality ignores repeated and trailing slashes and "." parts.
    typ == "tmpfs" || dest == Path::new("/dev")
}

/// The read-only remounts `ro_later` put off, once the container's root is `/`.
pub fn remount_ro_later(
    spec: &oci_spec::runtime::Spec,
    root: &Root,
    in_userns: bool,
) -> Result<()> {
    for m in spec.mounts().iter().flatten() {
        let typ = m.typ().as_deref().unwrap_or("");
        let opts = MountOptions::parse(m.options().as_deref().unwrap_or_default())?;
        if opts.is_bind()
            || !ro_later(typ, m.destination())
            || !opts.flags.contains(MsFlags::MS_RDONLY)
        {
            continue;
        }
        let dest = m.destination();
        // Resolved as the mount's own target was (`Root::ensure`: symlinks
        // followed inside the root), so it names the mount made there.
        let top = root
            .lookup(dest)
            .map_err(|e| Error::path("open", dest, e))?;
        let flags = without(
            opts.flags,
            MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT,
        );
        remount(&fd_path(&top), flags, in_userns)
            .map_err(|e| Error::path("remount read-only", dest, e))?;
    }
    Ok(())
}

/// Files lxcfs binds over /proc: the only mounts allowed inside it.
const PROC_FILES_ALLOWED: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
];

/// runc's rules for where a mount may land: procfs and sysfs only on a
/// real directory reached without a symlink, and nothing inside /proc (a
/// volume there could turn a later write to /proc into a write to the
/// host) but the files lxcfs provides; /proc itself only for a procfs.
/// `plain`: the target was reached without a symlink or `..`
/// ([`Root::ensure_at`]), so it is where `dest` says.
fn check_target(
    ctx: &MountContext,
    typ: &str,
    dest: &Path,
    (target, plain): (&std::os::fd::OwnedFd, bool),
    source: Option<&Path>,
) -> Result<()> {
    let lexical: PathBuf = Path::new("/").join(
        dest.components()
            .filter(|c| matches!(c, std::path::Component::Normal(_)))
            .collect::<PathBuf>(),
    );
    let real = match plain {
        true => lexical.clone(),
        false => ctx.root.inside_path(target).ok_or_else(|| {
            Error::Config(format!(
                "mounts: destination {dest:?} resolves outside the rootfs"
            ))
        })?,
    };
    if matches!(typ, "proc" | "sysfs") && real != lexical {
        return Err(Error::Config(format!(
            "mounts: {typ} on {dest:?}: must be mounted on ordinary directory (it resolves to {real:?})"
        )));
    }
    if real == Path::new("/proc") {
        let source_is_proc = || {
            source.is_some_and(|s| {
                nix::sys::statfs::statfs(s)
                    .is_ok_and(|st| st.filesystem_type().0 == crate::sys::procfs::PROC_SUPER_MAGIC)
            })
        };
        if typ == "proc" || source_is_proc() {
            return Ok(());
        }
        return Err(Error::Config(format!(
            "mounts: {dest:?} cannot be mounted because it is /proc, and the mount is not a procfs"
        )));
    }
    let on_procfs = || {
        crate::sys::fs_magic(std::os::fd::AsFd::as_fd(target))
            == Ok(crate::sys::procfs::PROC_SUPER_MAGIC)
    };
    if (real.starts_with("/proc") || on_procfs())
        && !PROC_FILES_ALLOWED.iter().any(|p| real == Path::new(p))
    {
        return Err(Error::Config(format!(
            "mounts: {dest:?} cannot be mounted because it is inside /proc (it resolves to {real:?})"
        )));
    }
    Ok(())
}

/// A bind mount's source: as given when absolute, else relative to the
/// bundle (runc). (`join` keeps an absolute path as it is.)
pub(crate) fn bind_source(m: &Mount, bundle: &Path) -> Result<PathBuf> {
    match m.source() {
        Some(source) => Ok(bundle.join(source)),
        None => Err(Error::Config(format!(
            "mounts: bind mount on {:?} has no source",
            m.destination()
        ))),
    }
}

/// A bind mount; `idmapped` is the runtime's prepared (detached,
/// id-mapped) copy of the source, attached instead of a bind.
fn bind_mount(
    ctx: &MountContext,
    m: &Mount,
    opts: &MountOptions,
    idmapped: Option<&std::os::fd::OwnedFd>,
) -> Result<()> {
    let dest = m.destination();
    let source = bind_source(m, ctx.bundle)?;
    let meta =
        std::fs::metadata(&source).map_err(|e| Error::path("bind mount source", &source, &e))?;
    let (target, plain) = ctx.root.ensure_at(dest, !meta.is_dir())?;
    check_target(ctx, "bind", dest, (&target, plain), Some(&source))?;
    let target_path = fd_path(&target);
    if let Some(tree) = idmapped {
        use std::os::fd::AsFd;
        crate::sys::move_mount_fd(tree.as_fd(), target.as_fd()).map_err(|e| {
            Error::sys(
                format!("attach id-mapped mount of {source:?} on {dest:?}"),
                e,
            )
        })?;
    } else {
        // Open the source too, so what we bind is what we checked.
        let src_fd = nix::fcntl::open(
            &source,
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| Error::path("open bind source", &source, e))?;
        let src_fd = crate::sys::own_fd(src_fd);
        let rec = opts.flags & MsFlags::MS_REC;
        mount(
            Some(fd_path(&src_fd).as_str()),
            target_path.as_str(),
            None::<&str>,
            MsFlags::MS_BIND | rec,
            None::<&str>,
        )
        .map_err(|e| Error::sys(format!("bind mount {source:?} on {dest:?}"), e))?;
    }
    drop(target);
    let extra = without(
        opts.flags,
        MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT,
    );
    if !extra.is_empty() {
        let top = mount_on(ctx, dest)?;
        remount(&fd_path(&top), extra, ctx.in_userns)
            .map_err(|e| Error::sys(format!("remount {dest:?} with {extra:?}"), e))?;
    }
    apply_propagation(ctx, opts, dest)
}

/// The mount now on top of `dest`: a descriptor opened before mounting
/// names the directory underneath, which remount and propagation changes
/// must not touch.
pub fn mount_on(ctx: &MountContext, dest: &Path) -> Result<std::os::fd::OwnedFd> {
    ctx.root
        .lookup(dest)
        .map_err(|e| Error::path("open", ctx.root.host_path(dest), e))
}

/// Remounts a bind mount with `flags`, keeping locked flags in a user
/// namespace.
pub fn remount(target: &str, flags: MsFlags, in_userns: bool) -> nix::Result<()> {
    let keep = if in_userns {
        locked_flags(target)
    } else {
        MsFlags::empty()
    };
    mount(
        None::<&str>,
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags | keep,
        None::<&str>,
    )
}

/// What follows every mount: recursive attributes, then propagation.
fn apply_propagation(ctx: &MountContext, opts: &MountOptions, dest: &Path) -> Result<()> {
    if opts.rec_set != 0 || opts.rec_clr != 0 {
        let top = mount_on(ctx, dest)?;
        crate::sys::mount_setattr_recursive(&top, opts.rec_set, opts.rec_clr)
            .map_err(|e| Error::sys(format!("set recursive mount options on {dest:?}"), e))?;
    }
    if opts.propagation.is_empty() {
        return Ok(());
    }
    let top = mount_on(ctx, dest)?;
    let target = fd_path(&top);
    for p in &opts.propagation {
        mount(
            None::<&str>,
            target.as_str(),
            None::<&str>,
            *p,
            None::<&str>,
        )
        .map_err(|e| Error::sys(format!("set propagation of {dest:?}"), e))?;
    }
    Ok(())
}
