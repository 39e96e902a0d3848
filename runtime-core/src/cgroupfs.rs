//! The `cgroup` mount inside the container: on cgroup v1, a tmpfs holding
//! one directory per hierarchy; on v2, the unified hierarchy. With a cgroup
//! namespace the filesystems are mounted fresh (the container sees its own
//! cgroup as `/`); without one, the container's own cgroup directories are
//! bind-mounted, as runc does.

use std::path::Path;

use nix::mount::{mount, MsFlags};

use crate::error::{Error, Os, Result};
use crate::mounts::{remount, MountContext, MountOptions};
use crate::safepath::fd_path;

/// A cgroup hierarchy mounted on the host.
struct Hierarchy {
    mount_point: String,
    /// v1: "cpu,cpuacct", "name=systemd", ...; v2: empty.
    subsystems: String,
    v2: bool,
}

fn host_hierarchies() -> Vec<Hierarchy> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return vec![];
    };
    let mut out = vec![];
    for line in info.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let fields: Vec<&str> = left.split(' ').collect();
        let rfields: Vec<&str> = right.split(' ').collect();
        let (Some(mp), Some(fstype), Some(super_opts)) =
            (fields.get(4), rfields.first(), rfields.get(2))
        else {
            continue;
        };
        match *fstype {
            "cgroup" => {
                let subs: Vec<&str> = super_opts
                    .split(',')
                    .filter(|o| {
                        !matches!(*o, "rw" | "ro")
                            && !o.starts_with("release_agent")
                            && *o != "clone_children"
                            && *o != "noprefix"
                            && *o != "xattr"
                    })
                    .collect();
                out.push(Hierarchy {
                    mount_point: mp.to_string(),
                    subsystems: subs.join(","),
                    v2: false,
                });
            }
            "cgroup2" => out.push(Hierarchy {
                mount_point: mp.to_string(),
                subsystems: String::new(),
                v2: true,
            }),
            _ => {}
        }
    }
    out
}

pub fn mount_cgroup_fs(ctx: &MountContext, dest: &Path, opts: &MountOptions) -> Result<()> {
    let hierarchies = host_hierarchies();
    let flags = opts.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
    let pure_v2 = hierarchies.iter().all(|h| h.v2) && !hierarchies.is_empty();
    let rel = ctx.cgroup_path.strip_prefix("/").unwrap_or(ctx.cgroup_path);
    if pure_v2 {
        let target = ctx.root.ensure(dest, false)?;
        let t = fd_path(&target);
        if ctx.new_cgroupns {
            mount(
                Some("cgroup2"),
                t.as_str(),
                Some("cgroup2"),
                flags,
                None::<&str>,
            )
            .map_err(|e| Error::sys(format!("mount cgroup2 on {dest:?}"), e))?;
        } else {
            let src = Path::new(&hierarchies[0].mount_point).join(rel);
            bind(ctx, &src, &t, flags, dest)?;
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
        let name = Path::new(&h.mount_point)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| h.subsystems.clone());
        let sub_dest = dest.join(&name);
        let sub = ctx.root.ensure(&sub_dest, false)?;
        let st = fd_path(&sub);
        if ctx.new_cgroupns {
            mount(
                Some("cgroup"),
                st.as_str(),
                Some("cgroup"),
                flags,
                Some(h.subsystems.as_str()),
            )
            .map_err(|e| Error::sys(format!("mount cgroup {} on {sub_dest:?}", h.subsystems), e))?;
        } else {
            let src = Path::new(&h.mount_point).join(rel);
            if src.exists() {
                bind(ctx, &src, &st, flags, &sub_dest)?;
            }
        }
        // Co-mounted controllers ("cpu,cpuacct") get one link per name.
        if h.subsystems.contains(',') {
            for s in h
                .subsystems
                .split(',')
                .filter(|s| !s.starts_with("name=") && *s != name)
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

fn bind(ctx: &MountContext, src: &Path, target: &str, flags: MsFlags, dest: &Path) -> Result<()> {
    mount(
        Some(src),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| Error::Sys(format!("bind cgroup {src:?} on {dest:?}: {}", Os(e))))?;
    if !flags.is_empty() {
        let top = crate::mounts::mount_on(ctx, dest)?;
        remount(&fd_path(&top), flags, ctx.in_userns)
            .map_err(|e| Error::Sys(format!("remount cgroup {dest:?}: {}", Os(e))))?;
    }
    Ok(())
}
