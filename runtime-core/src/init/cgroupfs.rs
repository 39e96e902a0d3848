//! The `cgroup` mount inside the container: on cgroup v1, a tmpfs holding
//! one directory per hierarchy; on v2, the unified hierarchy. With a cgroup
//! namespace the filesystems are mounted fresh (the container sees its own
//! cgroup as `/`); without one, the container's own cgroup directories are
//! bind-mounted, as runc does.

use std::os::fd::AsRawFd;
use std::path::Path;

use nix::mount::{mount, MsFlags};

use crate::error::{Error, Result};
use crate::init::mounts::{remount, MountContext, MountOptions};
use crate::sys;
use crate::sys::safepath::fd_path;

pub fn mount_cgroup_fs(ctx: &MountContext, dest: &Path, opts: &MountOptions) -> Result<()> {
    let flags = crate::init::mounts::without(
        opts.flags,
        MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT,
    );
    if estiba_cgroups::hierarchy::is_unified(ctx.hierarchies) {
        return mount_v2(ctx, dest, flags);
    }
    // v1 (or hybrid): a tmpfs with one entry per hierarchy.
    let target = ctx.root.ensure(dest, false)?;
    mount(
        Some("tmpfs"),
        fd_path(&target).as_str(),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV,
        Some("mode=755"),
    )
    .map_err(|e| Error::sys(format!("mount tmpfs on {dest:?}"), e))?;
    drop(target);
    // The tmpfs is new, empty and seen by nothing but this init: its entries
    // are made and mounted on through one descriptor of it, with no lookup
    // from the rootfs per entry.
    let tmpfs = crate::init::mounts::mount_on(ctx, dest)?;
    // The binds, for their flags at the end.
    let mut bound: Vec<(String, std::path::PathBuf)> = vec![];
    for h in ctx.hierarchies.iter().filter(|h| !h.v2) {
        bound.extend(mount_v1_entry(ctx, &tmpfs, dest, h, flags)?);
    }
    if flags.is_empty() {
        return Ok(());
    }
    // One mount_setattr gives the tmpfs and every entry on it the flags
    // (runc remounts each bind, then the tmpfs: ten mount calls on a v1
    // host); a kernel or flag it cannot take goes that way.
    let attrs = crate::init::mounts::setattr_of(flags);
    if attrs.is_some_and(|(set, clr)| sys::mount_setattr_recursive(&tmpfs, set, clr).is_ok()) {
        return Ok(());
    }
    for (st, sub_dest) in &bound {
        remount(st, flags, ctx.in_userns)
            .map_err(|e| Error::sys(format!("remount cgroup {sub_dest:?}"), e))?;
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        remount(&fd_path(&tmpfs), flags, ctx.in_userns)
            .map_err(|e| Error::sys(format!("remount {dest:?} read-only"), e))?;
    }
    Ok(())
}

/// The container's path below a hierarchy's root.
fn own_rel<'a>(ctx: &MountContext<'a>) -> &'a Path {
    ctx.cgroup_path.strip_prefix("/").unwrap_or(ctx.cgroup_path)
}

/// cgroup v2 only: a cgroup2 mount in the container's cgroup namespace.
fn mount_v2(ctx: &MountContext, dest: &Path, flags: MsFlags) -> Result<()> {
    let target = ctx.root.ensure(dest, false)?;
    let t = fd_path(&target);
    let mounted = match ctx.new_cgroupns {
        true => mount(
            Some("cgroup2"),
            t.as_str(),
            Some("cgroup2"),
            flags,
            None::<&str>,
        ),
        false => Err(nix::errno::Errno::EPERM),
    };
    match mounted {
        Ok(()) => Ok(()),
        // Without a cgroup namespace, or where a user namespace may not
        // mount cgroup2 (runc falls back the same way): the container's
        // own cgroup bound, or, for a rootless container that has
        // none, the whole hierarchy (runc binds that).
        Err(nix::errno::Errno::EPERM | nix::errno::Errno::EBUSY) => {
            let top = Path::new(&ctx.hierarchies[0].mount_point);
            let own = top.join(own_rel(ctx));
            let src = if own.is_dir() { own } else { top.to_path_buf() };
            bind(ctx, &src, &t, flags, dest)
        }
        Err(e) => Err(Error::sys(format!("mount cgroup2 on {dest:?}"), e)),
    }
}

/// One v1 hierarchy's entry on the container's cgroup tmpfs: a cgroup
/// mount of its controllers in the container's cgroup namespace, else a
/// bind of the container's cgroup (returned, for its flags); a link per
/// co-mounted controller name.
fn mount_v1_entry(
    ctx: &MountContext,
    tmpfs: &std::os::fd::OwnedFd,
    dest: &Path,
    h: &estiba_cgroups::hierarchy::Hierarchy,
    flags: MsFlags,
) -> Result<Option<(String, std::path::PathBuf)>> {
    let name = entry_name(h);
    let subsystems = h.controllers.join(",");
    let sub_dest = dest.join(&name);
    match nix::sys::stat::mkdirat(
        Some(tmpfs.as_raw_fd()),
        name.as_str(),
        nix::sys::stat::Mode::from_bits_truncate(0o755),
    ) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
        Err(e) => return Err(Error::path("mkdir", ctx.root.host_path(&sub_dest), e)),
    }
    let st = format!("{}/{name}", fd_path(tmpfs));
    let mut bound = None;
    if ctx.new_cgroupns {
        mount(
            Some("cgroup"),
            st.as_str(),
            Some("cgroup"),
            flags,
            Some(subsystems.as_str()),
        )
        .map_err(|e| Error::sys(format!("mount cgroup {} on {sub_dest:?}", subsystems), e))?;
    } else {
        let src = Path::new(&h.mount_point).join(own_rel(ctx));
        match bind_source(&src, &st) {
            // No cgroup of the container in this hierarchy (a rootless
            // one where its user owns none): the entry stays empty.
            Err(nix::errno::Errno::ENOENT) => {}
            Err(e) => {
                return Err(Error::sys(
                    format!("bind cgroup {src:?} on {sub_dest:?}"),
                    e,
                ))
            }
            Ok(()) => bound = Some((st, sub_dest)),
        }
    }
    // Co-mounted controllers ("cpu,cpuacct") get one link per name.
    if subsystems.contains(',') {
        for s in h
            .controllers
            .iter()
            .filter(|s| !s.starts_with("name=") && **s != name)
        {
            let _ = nix::unistd::symlinkat(name.as_str(), Some(tmpfs.as_raw_fd()), s.as_str());
        }
    }
    Ok(bound)
}

/// The name of a v1 hierarchy's entry in the container's cgroup tmpfs:
/// the host's ("cpu,cpuacct", "systemd").
pub fn entry_name(h: &estiba_cgroups::hierarchy::Hierarchy) -> String {
    Path::new(&h.mount_point)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| h.controllers.join(","))
}

/// Binds the container's own cgroup `src` (with what is mounted below it)
/// on `target`.
fn bind_source(src: &Path, target: &str) -> nix::Result<()> {
    mount(
        Some(src),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
}

fn bind(ctx: &MountContext, src: &Path, target: &str, flags: MsFlags, dest: &Path) -> Result<()> {
    bind_source(src, target)
        .map_err(|e| Error::sys(format!("bind cgroup {src:?} on {dest:?}"), e))?;
    if !flags.is_empty() {
        let top = crate::init::mounts::mount_on(ctx, dest)?;
        remount(&fd_path(&top), flags, ctx.in_userns)
            .map_err(|e| Error::sys(format!("remount cgroup {dest:?}"), e))?;
    }
    Ok(())
}
