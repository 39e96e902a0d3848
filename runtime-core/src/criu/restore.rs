//! `restore`: a container made again from criu's images. The runtime
//! claims the id and records the state as create does; criu, held until
//! the runtime has put it in the container's cgroup (so the restored tree
//! lands there, under the config's limits), rebuilds the namespaces,
//! mounts and processes from the images with the rootfs as its root. The
//! restored init is made the runtime's child (criu's sibling), as runc's.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use crate::config::bundle::Bundle;
use crate::criu::{self, CriuOptions};
use crate::error::{Error, Result};
use crate::runtime::claim::{claim, Claimed};
use crate::{config::id, runtime::state};

/// runc's `restore` flags.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RestoreOptions {
    /// The container's id.
    pub id: String,
    /// The bundle to restore (its config.json and rootfs).
    pub bundle: PathBuf,
    /// The state root (`--root`).
    pub root: PathBuf,
    /// Where the images are.
    pub image_path: PathBuf,
    /// Where criu's log goes (default: the image path).
    pub work_path: Option<PathBuf>,
    /// Where to write the restored init's pid.
    pub pid_file: Option<PathBuf>,
    /// Where the pty master of a container with a terminal goes
    /// (runc's console socket protocol).
    pub console_socket: Option<PathBuf>,
    /// The restored processes' LSM profile, `TYPE:NAME` (criu's
    /// lsm_profile); default: as in the images.
    pub lsm_profile: Option<String>,
    /// The SELinux mount context of the restored mounts.
    pub lsm_mount_context: Option<String>,
    /// The flags checkpoint takes too.
    pub criu: CriuOptions,
    /// The cgroup is a systemd unit (`--systemd-cgroup`).
    pub systemd_cgroup: bool,
    /// `--rootless`: None is auto.
    pub rootless: Option<bool>,
}

impl RestoreOptions {
    /// Options to restore `id` of `bundle` into the state root `root`.
    pub fn new(id: &str, bundle: impl Into<PathBuf>, root: impl Into<PathBuf>) -> RestoreOptions {
        RestoreOptions {
            id: id.to_string(),
            bundle: bundle.into(),
            root: root.into(),
            ..Default::default()
        }
    }
}

/// The rootfs bound on `<state dir>/criu-root` for criu's `--root` (it
/// pivots into it, so it must be a mount); undone on drop.
struct CriuRoot(PathBuf);

impl CriuRoot {
    fn bind(rootfs: &Path, dir: &Path) -> Result<CriuRoot> {
        let at = dir.join("criu-root");
        criu::ensure_dir(&at)?;
        nix::mount::mount(
            Some(rootfs),
            &at,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND | nix::mount::MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| Error::path("bind the rootfs for criu on", &at, e))?;
        Ok(CriuRoot(at))
    }
}

impl Drop for CriuRoot {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Restores the container `opts.id` of `opts.bundle` from
/// `opts.image_path`; returns the restored init's pid. It is the caller's
/// child: wait for it, or leave it to a subreaper. A container with a
/// terminal needs `opts.console_socket`: the pty master goes there.
pub fn restore(opts: &RestoreOptions) -> Result<i32> {
    restore_with_pty(opts, false).map(|(pid, _)| pid)
}

/// [`restore`], keeping the pty master when `keep_pty` and no console
/// socket is given (a foreground restore proxies the terminal itself).
fn restore_with_pty(opts: &RestoreOptions, keep_pty: bool) -> Result<(i32, Option<OwnedFd>)> {
    id::validate(&opts.id)?;
    let bundle = Bundle::load(&opts.bundle)?;
    let spec = &bundle.spec;
    let terminal = spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    let keep_pty = keep_pty && terminal && opts.console_socket.is_none();
    crate::runtime::create::check_console(terminal, opts.console_socket.is_some() || keep_pty)?;
    let resources = crate::config::bundle::resources_of(spec);
    let own_pid_ns = crate::config::namespaces::Plan::from_spec(spec)?.new_pid;
    let Claimed {
        dir,
        dir_fd: _lock,
        mut cleanup,
        mut saved,
        mut cgroup,
        may_go_without_cgroup: without,
    } = claim(
        &opts.root,
        &opts.id,
        &bundle,
        opts.rootless,
        opts.systemd_cgroup,
        own_pid_ns,
    )?;
    saved.config = Some(crate::runtime::claim::config_text(spec)?);
    let console = opts
        .console_socket
        .as_deref()
        .map(crate::sys::fdpass::connect_console_socket)
        .transpose()?;
    let root = CriuRoot::bind(&bundle.rootfs, &dir)?;
    let binds = mount_points(&root.0, &bundle)?;
    let dirs = criu::Dirs::open(&opts.image_path, opts.work_path.as_deref())?;
    let (m, joined) = request(opts, &bundle, &binds, &dirs, &root.0, &cgroup)?;

    let mut parents = vec![];
    let placed = |pid: i32| -> Result<()> {
        // Before criu forks anything: the restored tree is born here.
        parents = if without {
            cgroup.create_rootless(pid, resources)?
        } else {
            cgroup.create(pid, resources)?
        };
        Ok(cgroup.apply(resources)?)
    };
    let mut master = None;
    let result = dirs
        .session(opts.criu.criu.as_deref(), LOG, "restore", placed)
        .and_then(|mut session| {
            let reply = session.call(criu::RESTORE, &m, |n| {
                if n.script == "orphan-pts-master" {
                    master = n.fd;
                }
                Ok(())
            })?;
            session.finish()?;
            reply
                .pid
                .ok_or_else(|| Error::Criu("criu restore: its answer has no pid".into()))
        });
    drop(joined);
    cleanup.cgroup = Some(cgroup.clone());
    cleanup.cgroup_parents_made = parents.clone();
    let pid = result?;
    cleanup.pid = Some(pid);
    drop(root);
    let pty = hand_over(terminal, master, console.as_ref())?;
    saved.pid = pid;
    saved.pid_start = state::proc_start_time(pid).map(|s| s.0).unwrap_or(0);
    saved.cgroup_parents_made = parents;
    saved.cgroup_left_out = cgroup.left_out();
    if !terminal {
        // The restored init's streams are ours, inherited by criu.
        saved.stdio = crate::runtime::stdio::names([None; 3]);
    }
    saved.created_done = true;
    saved.save(&dir)?;
    if let Some(p) = &opts.pid_file {
        crate::runtime::create::write_pid_file(p, pid)?;
    }
    cleanup.armed = false;
    Ok((pid, pty))
}

/// The restore request: criu_opts, and the joined namespaces' descriptors
/// criu inherits (kept open until it has run).
fn request(
    opts: &RestoreOptions,
    bundle: &Bundle,
    binds: &[(PathBuf, PathBuf)],
    dirs: &criu::Dirs,
    root: &Path,
    cgroup: &estiba_cgroups::Cgroup,
) -> Result<(criu::Msg, Vec<OwnedFd>)> {
    let spec = &bundle.spec;
    let mut m = dirs.base(LOG, root, spec);
    restore_opts(&mut m, opts, binds)?;
    // The container's new cgroup, made before criu restores anything, in
    // each hierarchy that was bound.
    for (dest, controller) in criu::cgroup_binds(spec, None) {
        if let Some(dir) = cgroup.dir_of(controller.as_deref().unwrap_or("memory")) {
            criu::external(
                &mut m,
                &format!("mnt[{}]:{}", dest.display(), dir.display()),
            );
        }
    }
    // Namespaces joined by path are handed to criu open, under runc's keys;
    // these descriptors are inherited (no CLOEXEC).
    let mut joined = vec![];
    for (_, key, path) in criu::joined_namespaces(spec) {
        let fd = nix::fcntl::open(
            &path,
            nix::fcntl::OFlag::O_RDONLY,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| Error::path("open the joined namespace", &path, e))?;
        let fd = crate::sys::own_fd(fd);
        inherit_fd(&mut m, key, fd.as_raw_fd());
        joined.push(fd);
    }
    Ok((m, joined))
}

/// The terminal's new master (from criu) to the console socket, or kept
/// for the caller when there is none.
fn hand_over(
    terminal: bool,
    master: Option<OwnedFd>,
    console: Option<&UnixStream>,
) -> Result<Option<OwnedFd>> {
    match (terminal, master, console) {
        (false, _, _) => Ok(None),
        (true, None, _) => Err(Error::Criu(
            "restore: process.terminal is true but the checkpoint holds no terminal".into(),
        )),
        (true, Some(master), Some(sock)) => {
            crate::sys::fdpass::send_fd(sock, "/dev/ptmx", &master, "the pty master")?;
            Ok(None)
        }
        (true, Some(master), None) => Ok(Some(master)),
    }
}

/// criu's log of a restore, in the work directory.
const LOG: &str = "restore.log";

/// An inherit_fd entry (criu_opts field 27: key 1, fd 2).
fn inherit_fd(m: &mut criu::Msg, key: &str, fd: i32) {
    let mut e = criu::Msg::default();
    e.str(1, key).int(2, i64::from(fd));
    m.msg(27, &e);
}

/// criu_opts of a restore, beyond the session's base.
fn restore_opts(
    m: &mut criu::Msg,
    opts: &RestoreOptions,
    binds: &[(PathBuf, PathBuf)],
) -> Result<()> {
    // evasive_devices; rst_sibling: the tree is the runtime's child (RPC
    // restores are always detached: criu answers once it runs).
    m.flag(6, true).flag(26, true);
    opts.criu.fill(m)?;
    if let Some(p) = &opts.lsm_profile {
        m.str(53, p);
    }
    if let Some(c) = &opts.lsm_mount_context {
        m.str(63, c);
    }
    for (dest, source) in binds {
        criu::external(m, &format!("mnt[{}]:{}", dest.display(), source.display()));
    }
    criu::external(m, &format!("mnt[{}]:/dev/null", criu::MASKED));
    // The checkpointed init's pipes and sockets become ours (0-2).
    let names: Vec<String> = std::fs::read(opts.image_path.join(criu::DESCRIPTORS))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    for (fd, name) in names.iter().enumerate().take(3) {
        if name.starts_with("pipe:") || name.starts_with("socket:") {
            inherit_fd(m, name, fd as i32);
        }
    }
    Ok(())
}

/// Makes the bind mounts' mount points in the rootfs (`root`, criu's
/// view of it) as create would, symlinks resolved inside it. Each source is
/// bound there for the moment, so that a nested destination's mount point
/// is made in the source below it, as runc does; all are unmounted before
/// criu runs. Returns the binds by their resolved destination (criu's key).
fn mount_points(root: &Path, bundle: &Bundle) -> Result<Vec<(PathBuf, PathBuf)>> {
    let real = std::fs::canonicalize(root).map_err(|e| Error::path("resolve", root, &e))?;
    let r = crate::sys::safepath::Root::open(&real)?;
    let mut temp = TempBinds(vec![]);
    let mut out = vec![];
    for (dest, source) in criu::external_binds(&bundle.spec, &bundle.dir) {
        let file = std::fs::metadata(&source).is_ok_and(|m| !m.is_dir());
        let fd = r.ensure(&dest, file)?;
        let inside = r.inside_path(&fd).unwrap_or(dest);
        let at = crate::sys::safepath::fd_path(&fd);
        nix::mount::mount(
            Some(&source),
            at.as_str(),
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| Error::path("bind for its nested mount points", &source, e))?;
        temp.0.push(r.host_path(&inside));
        out.push((inside, source));
    }
    Ok(out)
}

/// The sources [`mount_points`] bound, unmounted last first on drop.
struct TempBinds(Vec<PathBuf>);

impl Drop for TempBinds {
    fn drop(&mut self) {
        for at in self.0.iter().rev() {
            let _ = nix::mount::umount2(at, nix::mount::MntFlags::UMOUNT_NOFOLLOW);
        }
    }
}

/// `restore` in the foreground, as runc's without `--detach`: restores,
/// waits for the init while passing on signals (and reaping orphans with
/// `fg.subreaper`), deletes the container, and returns its exit code.
pub fn restore_foreground(opts: &RestoreOptions, fg: crate::ForegroundOptions) -> Result<i32> {
    let waiter = crate::runtime::foreground::Foreground::begin(fg)?;
    let result = restore_with_pty(opts, true).and_then(|(pid, pty)| waiter.wait(pid, pty));
    drop(waiter);
    let cleanup = crate::Container::load(&opts.root, &opts.id).and_then(|c| c.delete(true));
    let code = result?;
    cleanup?;
    Ok(code)
}
