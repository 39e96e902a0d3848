//! `mounts[]` of the spec: option parsing and mounting each entry inside the
//! rootfs, in order.

use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use oci_spec::runtime::Mount;

use crate::error::{Error, Result};
use crate::sys::safepath::{fd_path, Root};

/// Every mount option the parser understands (not passed on as
/// filesystem data): the features document's `mountOptions`.
pub const KNOWN_OPTIONS: &[&str] = &[
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "idmap",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "private",
    "ratime",
    "rbind",
    "rdev",
    "rdiratime",
    "relatime",
    "remount",
    "rexec",
    "ridmap",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnorelatime",
    "rnostrictatime",
    "rnosuid",
    "rnosymfollow",
    "ro",
    "rprivate",
    "rrelatime",
    "rro",
    "rrw",
    "rshared",
    "rslave",
    "rstrictatime",
    "rsuid",
    "rsymfollow",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "symfollow",
    "sync",
    "tmpcopyup",
    "unbindable",
];

/// What the options of one mount entry mean for mount(2).
#[derive(Debug, PartialEq, Eq)]
pub struct MountOptions {
    pub flags: MsFlags,
    /// Flags the options explicitly clear (e.g. `rw`, `suid`), which matter
    /// when a bind mount is remounted.
    pub cleared: MsFlags,
    pub propagation: Vec<MsFlags>,
    pub data: Vec<String>,
    /// mount_setattr(AT_RECURSIVE) attributes from `rro`, `rnosuid`, ...
    pub rec_set: u64,
    pub rec_clr: u64,
    /// `tmpcopyup`: the tmpfs starts with the content it covers.
    pub copyup: bool,
    /// `idmap` (Some(false)) or `ridmap` (Some(true)): an id-mapped bind.
    pub idmap: Option<bool>,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            flags: MsFlags::empty(),
            cleared: MsFlags::empty(),
            propagation: vec![],
            data: vec![],
            rec_set: 0,
            rec_clr: 0,
            copyup: false,
            idmap: None,
        }
    }
}

impl MountOptions {
    pub fn parse<S: AsRef<str>>(options: &[S]) -> Result<Self> {
        let mut o = MountOptions::default();
        for opt in options {
            let opt = opt.as_ref();
            let (set, clear) = match opt {
                "defaults" => (MsFlags::empty(), MsFlags::empty()),
                "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
                "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
                "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
                "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
                "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
                "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
                "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
                "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
                "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
                "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
                "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
                "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
                "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
                "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
                "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
                "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
                "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
                "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
                "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
                "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
                "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
                "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
                "lazytime" => (MsFlags::MS_LAZYTIME, MsFlags::empty()),
                "nolazytime" => (MsFlags::empty(), MsFlags::MS_LAZYTIME),
                "nosymfollow" => (MsFlags::from_bits_retain(MS_NOSYMFOLLOW), MsFlags::empty()),
                "symfollow" => (MsFlags::empty(), MsFlags::from_bits_retain(MS_NOSYMFOLLOW)),
                "silent" => (MsFlags::MS_SILENT, MsFlags::empty()),
                "loud" => (MsFlags::empty(), MsFlags::MS_SILENT),
                "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
                "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
                "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave"
                | "unbindable" | "runbindable" => {
                    o.propagation
                        .push(propagation_flag(opt).unwrap_or(MsFlags::MS_PRIVATE));
                    continue;
                }
                r if recursive_attr(r).is_some() => {
                    let (set, clr) = recursive_attr(r).unwrap_or_default();
                    o.rec_set = (o.rec_set & !clr) | set;
                    o.rec_clr = (o.rec_clr & !set) | clr;
                    continue;
                }
                // runc's extension: copy what the tmpfs covers into it.
                "tmpcopyup" => {
                    o.copyup = true;
                    continue;
                }
                "iversion" => (MsFlags::MS_I_VERSION, MsFlags::empty()),
                "noiversion" => (MsFlags::empty(), MsFlags::MS_I_VERSION),
                // Id-mapped (idmap.rs); ridmap maps every mount of an rbind.
                "idmap" => {
                    o.idmap = Some(o.idmap.unwrap_or(false));
                    continue;
                }
                "ridmap" => {
                    o.idmap = Some(true);
                    continue;
                }
                _ => {
                    o.data.push(opt.to_string());
                    continue;
                }
            };
            o.flags |= set;
            o.flags = without(o.flags, clear);
            o.cleared |= clear;
        }
        Ok(o)
    }

    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }

    /// A bind mount takes no filesystem data: what would go there is an
    /// option nobody knows, refused rather than dropped.
    pub fn check_bind(&self, dest: &Path) -> Result<()> {
        if self.data.is_empty() {
            return Ok(());
        }
        Err(Error::Config(format!(
            "mounts: bind mount on {dest:?}: unknown option(s) {:?}; a bind mount takes only mount flags",
            self.data
        )))
    }
}

/// `flags` minus `remove`, keeping bits nix has no name for (`!` on
/// bitflags would drop them, MS_NOSYMFOLLOW among them).
pub fn without(flags: MsFlags, remove: MsFlags) -> MsFlags {
    MsFlags::from_bits_retain(flags.bits() & !remove.bits())
}

/// mount(2)'s MS_NOSYMFOLLOW (Linux 5.10), not in every libc yet.
const MS_NOSYMFOLLOW: libc::c_ulong = 256;

/// `private`, `rshared`, ... as mount(2) propagation flags.
pub fn propagation_flag(name: &str) -> Option<MsFlags> {
    let (rec, base) = match name.strip_prefix('r') {
        Some(b) if !b.is_empty() => (true, b),
        _ => (false, name),
    };
    let flag = match base {
        "private" => MsFlags::MS_PRIVATE,
        "shared" => MsFlags::MS_SHARED,
        "slave" => MsFlags::MS_SLAVE,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        _ => return None,
    };
    Some(if rec { flag | MsFlags::MS_REC } else { flag })
}

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
    let target = ctx.root.ensure(dest, false)?;
    check_target(ctx, typ, dest, &target, m.source().as_deref())?;
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
        let top = root
            .lookup_nofollow(dest)
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
fn check_target(
    ctx: &MountContext,
    typ: &str,
    dest: &Path,
    target: &std::os::fd::OwnedFd,
    source: Option<&Path>,
) -> Result<()> {
    let Some(real) = ctx.root.inside_path(target) else {
        return Err(Error::Config(format!(
            "mounts: destination {dest:?} resolves outside the rootfs"
        )));
    };
    let lexical: PathBuf = Path::new("/").join(
        dest.components()
            .filter(|c| matches!(c, std::path::Component::Normal(_)))
            .collect::<PathBuf>(),
    );
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
    let target = ctx.root.ensure(dest, !meta.is_dir())?;
    check_target(ctx, "bind", dest, &target, Some(&source))?;
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

/// Per-mount flags as mount_setattr (set, clear) attribute bits; `None`
/// when `flags` holds one it has no attribute for.
pub(crate) fn setattr_of(flags: MsFlags) -> Option<(u64, u64)> {
    use crate::sys::{
        MOUNT_ATTR_NOATIME, MOUNT_ATTR_NODEV, MOUNT_ATTR_NODIRATIME, MOUNT_ATTR_NOEXEC,
        MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY, MOUNT_ATTR_RELATIME, MOUNT_ATTR_STRICTATIME,
        MOUNT_ATTR__ATIME,
    };
    let mut set = 0;
    let mut clr = 0;
    for (flag, attr) in [
        (MsFlags::MS_RDONLY, MOUNT_ATTR_RDONLY),
        (MsFlags::MS_NOSUID, MOUNT_ATTR_NOSUID),
        (MsFlags::MS_NODEV, MOUNT_ATTR_NODEV),
        (MsFlags::MS_NOEXEC, MOUNT_ATTR_NOEXEC),
        (MsFlags::MS_NODIRATIME, MOUNT_ATTR_NODIRATIME),
    ] {
        if flags.contains(flag) {
            set |= attr;
        }
    }
    // At most one access-time mode (relatime is 0 in the mask).
    for (flag, attr) in [
        (MsFlags::MS_RELATIME, MOUNT_ATTR_RELATIME),
        (MsFlags::MS_NOATIME, MOUNT_ATTR_NOATIME),
        (MsFlags::MS_STRICTATIME, MOUNT_ATTR_STRICTATIME),
    ] {
        if flags.contains(flag) {
            if clr != 0 {
                return None;
            }
            set |= attr;
            clr = MOUNT_ATTR__ATIME;
        }
    }
    let known = MsFlags::MS_RDONLY
        | MsFlags::MS_NOSUID
        | MsFlags::MS_NODEV
        | MsFlags::MS_NOEXEC
        | MsFlags::MS_NODIRATIME
        | MsFlags::MS_RELATIME
        | MsFlags::MS_NOATIME
        | MsFlags::MS_STRICTATIME;
    (known | flags == known).then_some((set, clr))
}

/// The recursive options (`rro`, `rnosuid`, ...) as mount_setattr
/// (set, clear) attribute bits.
fn recursive_attr(opt: &str) -> Option<(u64, u64)> {
    use crate::sys::{
        MOUNT_ATTR_NOATIME as NOATIME, MOUNT_ATTR_NODEV as NODEV,
        MOUNT_ATTR_NODIRATIME as NODIRATIME, MOUNT_ATTR_NOEXEC as NOEXEC,
        MOUNT_ATTR_NOSUID as NOSUID, MOUNT_ATTR_NOSYMFOLLOW as NOSYMFOLLOW,
        MOUNT_ATTR_RDONLY as RDONLY, MOUNT_ATTR_STRICTATIME as STRICTATIME,
        MOUNT_ATTR__ATIME as ATIME_MASK,
    };
    Some(match opt {
        "rro" => (RDONLY, 0),
        "rrw" => (0, RDONLY),
        "rnosuid" => (NOSUID, 0),
        "rsuid" => (0, NOSUID),
        "rnodev" => (NODEV, 0),
        "rdev" => (0, NODEV),
        "rnoexec" => (NOEXEC, 0),
        "rexec" => (0, NOEXEC),
        "rnoatime" => (NOATIME, ATIME_MASK),
        "rstrictatime" => (STRICTATIME, ATIME_MASK),
        "rrelatime" | "ratime" | "rnostrictatime" | "rnorelatime" => (0, ATIME_MASK),
        "rnodiratime" => (NODIRATIME, 0),
        "rdiratime" => (0, NODIRATIME),
        "rnosymfollow" => (NOSYMFOLLOW, 0),
        "rsymfollow" => (0, NOSYMFOLLOW),
        _ => return None,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_spec_options() {
        let o = MountOptions::parse(&["nosuid", "strictatime", "mode=755", "size=65536k"]).unwrap();
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.data, vec!["mode=755", "size=65536k"]);
        let o = MountOptions::parse(&["rbind", "ro", "rprivate"]).unwrap();
        assert!(o.is_bind());
        assert!(o.flags.contains(MsFlags::MS_REC | MsFlags::MS_RDONLY));
        assert_eq!(o.propagation, vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
    }

    #[test]
    fn later_option_wins() {
        let o = MountOptions::parse(&["ro", "rw"]).unwrap();
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
        assert!(o.cleared.contains(MsFlags::MS_RDONLY));
    }

    #[test]
    fn propagation_names() {
        assert_eq!(
            propagation_flag("rslave"),
            Some(MsFlags::MS_SLAVE | MsFlags::MS_REC)
        );
        assert_eq!(propagation_flag("shared"), Some(MsFlags::MS_SHARED));
        assert_eq!(
            propagation_flag("runbindable"),
            Some(MsFlags::MS_UNBINDABLE | MsFlags::MS_REC)
        );
        assert_eq!(propagation_flag("ro"), None);
    }

    #[test]
    fn every_known_option_is_understood() {
        for o in KNOWN_OPTIONS {
            let p = MountOptions::parse(&[o]).unwrap_or_else(|e| panic!("{o}: {e}"));
            assert!(p.data.is_empty(), "{o} would be passed on as data");
        }
        // Data options are not mount options of ours.
        assert!(MountOptions::parse(&["size=1k"]).unwrap().data == ["size=1k"]);
    }

    #[test]
    fn mount_flags_as_setattr_bits() {
        let f = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        assert_eq!(setattr_of(f), Some((0xf, 0)));
        assert_eq!(setattr_of(f | MsFlags::MS_RELATIME), Some((0xf, 0x70)));
        assert_eq!(setattr_of(MsFlags::MS_NOATIME), Some((0x10, 0x70)));
        assert_eq!(
            setattr_of(MsFlags::MS_NOATIME | MsFlags::MS_STRICTATIME),
            None
        );
        assert_eq!(setattr_of(MsFlags::MS_SYNCHRONOUS), None);
    }

    #[test]
    fn ridmap_wins_over_idmap() {
        assert_eq!(MountOptions::parse(&["idmap"]).unwrap().idmap, Some(false));
        assert_eq!(
            MountOptions::parse(&["ridmap", "idmap"]).unwrap().idmap,
            Some(true)
        );
        assert_eq!(
            MountOptions::parse(&["idmap", "ridmap"]).unwrap().idmap,
            Some(true)
        );
        assert_eq!(MountOptions::parse(&["bind"]).unwrap().idmap, None);
    }
}
