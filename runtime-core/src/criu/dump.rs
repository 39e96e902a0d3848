//! `checkpoint`: criu dumps (or pre-dumps) the container's process tree.

use crate::criu::{self, CheckpointOptions};
use crate::error::{Error, Result};
use crate::runtime::container::Container;
use crate::runtime::state::Status;

impl Container {
    /// Checkpoints the container into `opts.image_path`. Unless it was
    /// left running (or this is a pre-dump), the container is then gone,
    /// as after runc's checkpoint: its processes ended by criu, its
    /// cgroup and state removed, its poststop hooks run.
    pub fn checkpoint(&self, opts: &CheckpointOptions) -> Result<()> {
        let status = self.status();
        if !matches!(status, Status::Running | Status::Paused) {
            return Err(self.state_error(status, "only a running container can be checkpointed"));
        }
        let spec = self.spec()?;
        // The image path made first, as runc does: the parent is found
        // from it.
        let dirs = criu::Dirs::open(&opts.image_path, opts.work_path.as_deref())?;
        if let Some(parent) = &opts.parent_path {
            check_parent(&opts.image_path, parent)?;
        }
        record_descriptors(&self.saved, &opts.image_path)?;
        let log = if opts.pre_dump {
            "pre-dump.log"
        } else {
            "dump.log"
        };
        let mut m = dirs.base(log, &self.saved.rootfs, &spec);
        m.int(2, i64::from(self.saved.pid));
        opts.criu.fill(&mut m)?;
        // leave_running, tcp_skip_in_flight, link_remap, and memory
        // tracking: what a later dump compares against.
        m.flag(3, opts.leave_running && !opts.pre_dump)
            .flag(46, opts.tcp_skip_in_flight)
            .flag(18, opts.link_remap)
            .flag(15, opts.pre_dump || opts.parent_path.is_some());
        if let Some(parent) = &opts.parent_path {
            m.str(14, &parent.to_string_lossy());
        }
        // criu freezes through the cgroup, as runc has it: a paused
        // container's tasks cannot be stopped by ptrace alone (criu waited
        // for them until its bound), and criu leaves a paused one paused.
        if let Some(dir) = self.cgroup_handle()?.freezer_dir() {
            m.str(44, &dir.to_string_lossy());
        }
        if let Some((address, port)) = &opts.page_server {
            // criu_page_server_info { address = 1, port = 2 }
            let mut ps = criu::Msg::default();
            ps.str(1, address).int(2, i64::from(*port));
            m.msg(11, &ps);
        }
        // Binds and the cgroup bind, each named by its mount point.
        let binds = criu::mounted_binds(&spec, &self.saved.bundle, self.saved.pid);
        for dest in binds.into_iter().map(|b| b.0).chain(
            criu::cgroup_binds(&spec, Some(&self.saved.cgroup_path))
                .into_iter()
                .map(|b| b.0),
        ) {
            criu::external(
                &mut m,
                &format!("mnt[{}]:{}", dest.display(), dest.display()),
            );
        }
        for (kind, key, path) in criu::joined_namespaces(&spec) {
            let ino = std::fs::metadata(&path)
                .map_err(|e| Error::path("stat the joined namespace", &path, &e))?;
            let ino = std::os::unix::fs::MetadataExt::ino(&ino);
            criu::external(&mut m, &format!("{kind}[{ino}]:{key}"));
        }
        for file in masked_files(&spec, self.saved.pid) {
            criu::external(&mut m, &format!("mnt[{file}]:{}", criu::MASKED));
        }
        let (what, kind) = if opts.pre_dump {
            ("pre-dump", criu::SINGLE_PRE_DUMP)
        } else {
            ("dump", criu::DUMP)
        };
        let mut status = opts.status_fd.map(crate::sys::own_fd);
        let mut session = dirs.session(opts.criu.criu.as_deref(), log, what, |_| Ok(()))?;
        session.call(kind, &m, |n| {
            // A lazy dump's page server is up: one \0, then the
            // descriptor is closed, as runc does.
            if n.script == "status-ready" {
                if let Some(fd) = status.take() {
                    let _ = nix::unistd::write(&fd, &[0]);
                }
            }
            Ok(())
        })?;
        session.finish()?;
        if opts.leave_running || opts.pre_dump {
            return Ok(());
        }
        // criu ended the processes: the container goes, as with runc.
        self.delete(true)
    }
}

/// The init's standard streams as criu names them (`pipe:[N]`,
/// `socket:[N]`), for restore to hand its own in their place: as given
/// at create (the state), or, for a container an older estiba made, as
/// they are now.
fn record_descriptors(
    saved: &crate::runtime::state::Saved,
    images: &std::path::Path,
) -> Result<()> {
    let names: Vec<String> = if saved.stdio.is_empty() {
        (0..3)
            .map(|fd| {
                std::fs::read_link(format!("/proc/{}/fd/{fd}", saved.pid))
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default()
            })
            .collect()
    } else {
        saved.stdio.clone()
    };
    let path = images.join(criu::DESCRIPTORS);
    std::fs::write(&path, serde_json::to_vec(&names).unwrap_or_default())
        .map_err(|e| Error::path("write", &path, &e))
}

/// The masked paths that are files in the container (bound from
/// /dev/null; masked directories are tmpfs mounts criu dumps itself).
fn masked_files(spec: &oci_spec::runtime::Spec, pid: i32) -> Vec<String> {
    let masked = spec
        .linux()
        .as_ref()
        .and_then(|l| l.masked_paths().clone())
        .unwrap_or_default();
    masked
        .into_iter()
        .filter(|p| std::fs::metadata(format!("/proc/{pid}/root{p}")).is_ok_and(|m| !m.is_dir()))
        .collect()
}

/// runc's checks of `--parent-path`: relative to the image path (as criu
/// takes it), and there.
fn check_parent(images: &std::path::Path, parent: &std::path::Path) -> Result<()> {
    if parent.is_absolute() {
        return Err(Error::Config(format!(
            "--parent-path {parent:?}: must be relative to the image path"
        )));
    }
    let at = images.join(parent);
    if !at.is_dir() {
        return Err(Error::Config(format!(
            "--parent-path {parent:?}: no images at {at:?}"
        )));
    }
    Ok(())
}
