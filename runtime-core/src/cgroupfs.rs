//! The `cgroup` mount inside the container: on cgroup v1, a tmpfs holding
//! one directory per hierarchy; on v2, the unified hierarchy. With a cgroup
//! namespace the filesystems are mounted fresh (the container sees its own
//! cgroup as `/`); without one, the container's own cgroup directories are
//! bind-mounted, as runc does.

use std::path::Path;

use nix::mount::{mount, MsFlags};

use crate::error::{Error, Result};
use crate::mounts::{remount, MountContext, MountOptions};
use crate::safepath::fd_path;

pub fn mount_cgroup_fs(ctx: &MountContext, dest: &Path, opts: &MountOptions) -> Result<()> {
    let hierarchies = ctx.hierarchies;
    let flags = crate::mounts::without(
        opts.flags,
        MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT,
    );
    let pure_v2 = estiba_cgroups::hierarchy::is_unified(hierarchies);
    let rel = ctx.cgroup_path.strip_prefix("/").unwrap_or(ctx.cgroup_path);
    if pure_v2 {
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
            Ok(()) => {}
            // Without a cgroup namespace, or where a user namespace may not
            // mount cgroup2 (runc falls back the same way): the container's
            // own cgroup bound, or, for a rootless container that has
            // none, the whole hierarchy (runc binds that).
            Err(nix::errno::Errno::EPERM | nix::errno::Errno::EBUSY) => {
                let top = Path::new(&hierarchies[0].mount_point);
                let own = top.join(rel);
                let src = if own.is_dir() { own } else { top.to_path_buf() };
                bind(ctx, &src, &t, flags, dest)?;
            }
            Err(e) => return Err(Error::sys(format!("mount cgroup2 on {dest:?}"), e)),
        }
        return Ok(());
    }
    // v1 (or hybrid): a tmpfs with one entry per hierarchy.
    let target = ctx.root.ensure(dest, false)?;
    let t = fd_path(&target);
    mount(
        Some("tmpfs"),
        t.as_str(),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV,
        Some("mode=755"),
    )
    .map_err(|e| Error::sys(format!("mount tmpfs on {dest:?}"), e))?;
    drop(target);
    for h in hierarchies.iter().filter(|h| !h.v2) {
        let name = entry_name(h);
        let subsystems = h.controllers.join(",");
        let sub_dest = dest.join(&name);
        let sub = ctx.root.ensure(&sub_dest, false)?;
        let st = fd_path(&sub);
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
            let src = Path::new(&h.mount_point).join(rel);
            if src.exists() {
                bind(ctx, &src, &st, flags, &sub_dest)?;
            }
        }
        // Co-mounted controllers ("cpu,cpuacct") get one link per name.
        if subsystems.contains(',') {
            for s in h
                .controllers
                .iter()
                .filter(|s| !s.starts_with("name=") && **s != name)
            {
                let link = ctx.root.host_path(&dest.join(s));
                let _ = std::os::unix::fs::symlink(&name, link);
            }
        }
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        let target = ctx
            .root
            .lookup(dest)
            .map_err(|e| Error::path("open", ctx.root.host_path(dest), e))?;
        remount(&fd_path(&target), flags, ctx.in_userns)
            .map_err(|e| Error::sys(format!("remount {dest:?} read-only"), e))?;
    }
    Ok(())
}

/// The name of a v1 hierarchy's entry in the container's cgroup tmpfs:
/// the host's ("cpu,cpuacct", "systemd").
pub fn entry_name(h: &estiba_cgroups::hierarchy::Hierarchy) -> String {
    Path::new(&h.mount_point)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| h.controllers.join(","))
}

fn bind(ctx: &MountContext, src: &Path, target: &str, flags: MsFlags, dest: &Path) -> Result<()> {
    mount(
        Some(src),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| Error::sys(format!("bind cgroup {src:?} on {dest:?}"), e))?;
    if !flags.is_empty() {
        let top = crate::mounts::mount_on(ctx, dest)?;
        remount(&fd_path(&top), flags, ctx.in_userns)
            .map_err(|e| Error::sys(format!("remount cgroup {dest:?}"), e))?;
    }
    Ok(())
}
