//! Id-mapped bind mounts (runs in the runtime, before clone): for each
//! mount with `idmap`/`ridmap` or its own `uidMappings`/`gidMappings`, a
//! detached clone of the source (`open_tree`) is id-mapped
//! (`mount_setattr(MOUNT_ATTR_IDMAP)`) on a user namespace holding the
//! mappings. Only the runtime, root in the initial user namespace, may do
//! that; the container's init then attaches the prepared mount
//! (`move_mount`). A mapping line is runc's: `containerID` is the id on the
//! filesystem, `hostID` the id the mount shows it as.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Mount, Spec};

use crate::config::namespaces::id_map_text;
use crate::error::{Error, Result};
use crate::init::mounts::MountOptions;
use crate::sys;

/// The prepared mounts: the index in `mounts[]` and the detached,
/// id-mapped mount.
pub type Prepared = Vec<(usize, OwnedFd)>;

/// Whether `m` is to be id-mapped (an option, or mappings of its own).
fn wanted(m: &Mount, opts: &MountOptions) -> bool {
    opts.idmap.is_some() || m.uid_mappings().is_some() || m.gid_mappings().is_some()
}

/// runc's rules, checked before anything exists: bind mounts only, not
/// for a runtime without root.
pub fn check(spec: &Spec) -> Result<()> {
    for m in spec.mounts().iter().flatten() {
        let opts = MountOptions::parse(m.options().as_deref().unwrap_or_default())?;
        if !wanted(m, &opts) {
            continue;
        }
        let dest = m.destination();
        if !(opts.is_bind() || m.typ().as_deref() == Some("bind")) {
            return Err(Error::Config(format!(
                "mounts: {dest:?}: id-mapped mounts are only supported for bind-mounts"
            )));
        }
        if !nix::unistd::geteuid().is_root() {
            return Err(Error::Config(format!(
                "mounts: {dest:?}: id-mapped mounts are not supported for rootless containers"
            )));
        }
    }
    Ok(())
}

/// The mappings a mount is id-mapped with: its own, else the container's
/// (spec 1.2: an `idmap` mount without mappings takes the user
/// namespace's).
enum Mapping<'a> {
    Maps(&'a [LinuxIdMapping], &'a [LinuxIdMapping]),
    /// The container joins this user namespace.
    Joined(&'a Path),
}

fn mapping_of<'a>(spec: &'a Spec, m: &'a Mount) -> Result<Mapping<'a>> {
    let dest = m.destination();
    let need_both = || {
        Error::Config(format!(
            "mounts: {dest:?}: id-mapped mounts must have both uid and gid mappings specified"
        ))
    };
    if m.uid_mappings().is_some() || m.gid_mappings().is_some() {
        let (Some(u), Some(g)) = (m.uid_mappings(), m.gid_mappings()) else {
            return Err(need_both());
        };
        if u.is_empty() || g.is_empty() {
            return Err(need_both());
        }
        return Ok(Mapping::Maps(u, g));
    }
    let linux = spec.linux().as_ref();
    let userns = linux
        .and_then(|l| l.namespaces().as_ref())
        .and_then(|ns| ns.iter().find(|n| n.typ() == LinuxNamespaceType::User));
    match userns {
        Some(ns) if ns.path().is_some() => Ok(Mapping::Joined(
            ns.path().as_deref().unwrap_or(Path::new("")),
        )),
        Some(_) => {
            let u = linux.and_then(|l| l.uid_mappings().as_deref()).unwrap_or_default();
            let g = linux.and_then(|l| l.gid_mappings().as_deref()).unwrap_or_default();
            if u.is_empty() || g.is_empty() {
                return Err(need_both());
            }
            Ok(Mapping::Maps(u, g))
        }
        None => Err(Error::Config(format!(
            "mounts: {dest:?}: id-mapped mount without mappings, and the container has no user namespace to take them from"
        ))),
    }
}

/// Prepares every id-mapped mount of `spec`.
pub fn prepare(spec: &Spec, bundle_dir: &Path) -> Result<Prepared> {
    let mut out = vec![];
    // One user namespace per distinct mapping.
    let mut made: Vec<(String, OwnedFd)> = vec![];
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let opts = MountOptions::parse(m.options().as_deref().unwrap_or_default())?;
        if !wanted(m, &opts) {
            continue;
        }
        let dest = m.destination();
        let userns = match mapping_of(spec, m)? {
            Mapping::Joined(path) => {
                let fd = nix::fcntl::open(
                    path,
                    nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
                    nix::sys::stat::Mode::empty(),
                )
                .map_err(|e| Error::path("open user namespace", path, e))?;
                sys::own_fd(fd)
            }
            Mapping::Maps(u, g) => {
                let key = format!("{}|{}", id_map_text(u), id_map_text(g));
                let fd = match made.iter().find(|(k, _)| *k == key) {
                    Some((_, fd)) => fd.try_clone(),
                    None => {
                        let fd = user_namespace(u, g)?;
                        let copy = fd.try_clone();
                        made.push((key, fd));
                        copy
                    }
                };
                fd.map_err(|e| Error::path("dup", "user namespace of an id-mapped mount", &e))?
            }
        };
        let source = crate::init::mounts::bind_source(m, bundle_dir)?;
        let recursive_tree = opts.flags.contains(nix::mount::MsFlags::MS_REC);
        let c = std::ffi::CString::new(source.as_os_str().as_encoded_bytes())
            .map_err(|_| Error::Config(format!("mounts: {dest:?}: source has a NUL byte")))?;
        let tree = sys::open_tree_clone(
            libc::AT_FDCWD,
            &c,
            if recursive_tree {
                libc::AT_RECURSIVE as libc::c_uint
            } else {
                0
            },
        )
        .map_err(|e| Error::path("open_tree (id-mapped mount source)", &source, e))?;
        sys::mount_setattr_idmap(tree.as_fd(), opts.idmap == Some(true), userns.as_fd())
            .map_err(|e| idmap_error(dest, &source, e))?;
        out.push((i, tree));
    }
    Ok(out)
}

fn idmap_error(dest: &Path, source: &Path, e: nix::errno::Errno) -> Error {
    let why = match e {
        nix::errno::Errno::EINVAL => {
            "the filesystem does not support id-mapped mounts (or a mapping is invalid)"
        }
        nix::errno::Errno::ENOSYS | nix::errno::Errno::E2BIG => {
            "this kernel has no id-mapped mounts (Linux 5.12+)"
        }
        nix::errno::Errno::EPERM => "not permitted (the runtime must be root on the host)",
        _ => "",
    };
    Error::Config(format!(
        "mounts: {dest:?}: cannot id-map {source:?}: {why}{}{}",
        if why.is_empty() { "" } else { ": " },
        crate::error::Os(e)
    ))
}

/// A user namespace holding `uids` and `gids`: a child made in a new one
/// waits on a pipe while its maps are written, its namespace is opened,
/// and it is killed.
fn user_namespace(uids: &[LinuxIdMapping], gids: &[LinuxIdMapping]) -> Result<OwnedFd> {
    let (rx, tx) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Error::sys("pipe", e))?;
    let pid = sys::clone_here(libc::CLONE_NEWUSER)
        .map_err(|e| Error::sys("clone a user namespace for an id-mapped mount", e))?;
    if pid == 0 {
        drop(tx);
        // Wait until the parent closes its end (or dies).
        let mut b = [0u8; 1];
        let _ = nix::unistd::read(rx.as_raw_fd(), &mut b);
        sys::exit_now(0);
    }
    drop(rx);
    let res = (|| {
        let proc = crate::sys::procfs::ProcFs::open(Path::new("/proc"))?;
        for (file, maps) in [("uid_map", uids), ("gid_map", gids)] {
            proc.write_named(
                "id-mapped mount's user namespace",
                &format!("{pid}/{file}"),
                id_map_text(maps).as_bytes(),
                true,
            )?;
        }
        let path = format!("/proc/{pid}/ns/user");
        let fd = nix::fcntl::open(
            path.as_str(),
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| Error::sys(format!("open {path}"), e))?;
        Ok(sys::own_fd(fd))
    })();
    drop(tx);
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
    res
}
