//! `restore`: a container made again from criu's images. The runtime
//! claims the id and records the state as create does; criu, held until
//! the runtime has put it in the container's cgroup (so the restored tree
//! lands there, under the config's limits), rebuilds the namespaces,
//! mounts and processes from the images with the rootfs as its root. The
//! restored init is made the runtime's child (criu's sibling), as runc's.

use std::ffi::OsString;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::bundle::Bundle;
use crate::create::{claim, Claimed};
use crate::criu::{self, CriuOptions};
use crate::error::{Error, Result};
use crate::{id, state};

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
    /// For a container with a terminal (not supported yet).
    pub console_socket: Option<PathBuf>,
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
/// child: wait for it, or leave it to a subreaper.
pub fn restore(opts: &RestoreOptions) -> Result<i32> {
    id::validate(&opts.id)?;
    if opts.console_socket.is_some() {
        return Err(Error::Unsupported(
            "restore --console-socket: restoring a container with a terminal is not supported yet"
                .into(),
        ));
    }
    let bundle = Bundle::load(&opts.bundle)?;
    let spec = &bundle.spec;
    let resources = spec.linux().as_ref().and_then(|l| l.resources().as_ref());
    let own_pid_ns = crate::namespaces::Plan::from_spec(spec)?.new_pid;
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
    make_mount_points(&bundle)?;
    let root = CriuRoot::bind(&bundle.rootfs, &dir)?;
    let work = opts
        .work_path
        .clone()
        .unwrap_or_else(|| opts.image_path.clone());
    criu::ensure_dir(&work)?;
    let pid_file = work.join("restore.pid");
    let _ = std::fs::remove_file(&pid_file);
    let mut args = restore_args(opts, &bundle, &root.0, &work, &pid_file)?;
    if let (Some(dest), Some(dir)) = (criu::cgroup_bind(spec), cgroup.dir_of("memory")) {
        // The container's new cgroup, made before criu restores anything.
        args.push("--external".into());
        args.push(format!("mnt[{}]:{}", dest.display(), dir.display()).into());
    }
    // Namespaces joined by path are handed to criu open, under runc's keys;
    // these descriptors are inherited (no CLOEXEC) and closed after.
    let mut joined = vec![];
    for (_, key, path) in criu::joined_namespaces(spec) {
        let fd = nix::fcntl::open(
            &path,
            nix::fcntl::OFlag::O_RDONLY,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| Error::path("open the joined namespace", &path, e))?;
        let fd = crate::sys::own_fd(fd);
        args.push("--inherit-fd".into());
        args.push(format!("fd[{}]:{key}", fd.as_raw_fd()).into());
        joined.push(fd);
    }

    let (hold_rx, hold_tx) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Error::sys("pipe", e))?;
    let mut parents = vec![];
    let criu_bin = criu::binary(opts.criu.criu.as_deref());
    let placed = |pid: i32| -> Result<()> {
        // Before criu forks anything: the restored tree is born here.
        parents = if without {
            cgroup.create_rootless(pid, resources)?
        } else {
            cgroup.create(pid, resources)?
        };
        Ok(cgroup.apply(resources)?)
    };
    let hold = Some((hold_rx.as_raw_fd(), hold_tx.as_raw_fd()));
    let result = criu::run(&criu_bin, &args, &work, "restore.log", hold, placed);
    drop(joined);
    cleanup.cgroup = Some(cgroup.clone());
    cleanup.cgroup_parents_made = parents.clone();
    result?;
    drop(root);
    let pid = read_pid(&pid_file)?;
    cleanup.pid = Some(pid);
    saved.pid = pid;
    saved.pid_start = state::proc_start_time(pid).map(|s| s.0).unwrap_or(0);
    saved.cgroup_parents_made = parents;
    saved.cgroup_left_out = cgroup.left_out();
    saved.created_done = true;
    saved.save(&dir)?;
    if let Some(p) = &opts.pid_file {
        crate::create::write_pid_file(p, pid)?;
    }
    cleanup.armed = false;
    Ok(pid)
}

/// criu's `restore` arguments.
fn restore_args(
    opts: &RestoreOptions,
    bundle: &Bundle,
    root: &Path,
    work: &Path,
    pid_file: &Path,
) -> Result<Vec<OsString>> {
    let mut args: Vec<OsString> = vec![
        "restore".into(),
        "--images-dir".into(),
        opts.image_path.clone().into(),
        "--work-dir".into(),
        work.into(),
        "--log-file".into(),
        "restore.log".into(),
        "-v4".into(),
        "--root".into(),
        root.into(),
        // The tree is the runtime's child, and criu returns once it runs.
        "--restore-detached".into(),
        "--restore-sibling".into(),
        "--pidfile".into(),
        pid_file.into(),
        "--evasive-devices".into(),
    ];
    opts.criu.args(&mut args)?;
    for (dest, source) in criu::external_binds(&bundle.spec, &bundle.dir) {
        args.push("--external".into());
        args.push(format!("mnt[{}]:{}", dest.display(), source.display()).into());
    }
    args.push("--external".into());
    args.push(format!("mnt[{}]:/dev/null", criu::MASKED).into());
    // The checkpointed init's pipes and sockets become ours (0-2).
    let names: Vec<String> = std::fs::read(opts.image_path.join(criu::DESCRIPTORS))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    for (fd, name) in names.iter().enumerate().take(3) {
        if name.starts_with("pipe:") || name.starts_with("socket:") {
            args.push("--inherit-fd".into());
            args.push(format!("fd[{fd}]:{name}").into());
        }
    }
    Ok(args)
}

/// Bind mounts need their mount points in the rootfs, made (without
/// following the image's symlinks) as create would.
fn make_mount_points(bundle: &Bundle) -> Result<()> {
    let root = crate::safepath::Root::open(&bundle.rootfs)?;
    for (dest, source) in criu::external_binds(&bundle.spec, &bundle.dir) {
        let file = std::fs::metadata(&source).is_ok_and(|m| !m.is_dir());
        root.ensure(&dest, file)?;
    }
    Ok(())
}

fn read_pid(path: &Path) -> Result<i32> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::path("read", path, &e))?;
    text.trim()
        .parse()
        .map_err(|_| Error::Criu(format!("criu's pid file {path:?} holds {text:?}")))
}

/// `restore` in the foreground, as runc's without `--detach`: restores,
/// waits for the init while passing on signals (and reaping orphans with
/// `fg.subreaper`), deletes the container, and returns its exit code.
pub fn restore_foreground(opts: &RestoreOptions, fg: crate::ForegroundOptions) -> Result<i32> {
    let waiter = crate::foreground::Foreground::begin(fg)?;
    let result = restore(opts).and_then(|pid| waiter.wait(pid, None));
    drop(waiter);
    let cleanup = crate::Container::load(&opts.root, &opts.id).and_then(|c| c.delete(true));
    let code = result?;
    cleanup?;
    Ok(code)
}
