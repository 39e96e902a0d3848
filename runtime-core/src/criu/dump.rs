//! `checkpoint`: criu dumps (or pre-dumps) the container's process tree.

use std::ffi::OsString;

use crate::container::Container;
use crate::criu::{self, CheckpointOptions};
use crate::error::{Error, Result};
use crate::state::Status;

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
        let work = opts
            .work_path
            .clone()
            .unwrap_or_else(|| opts.image_path.clone());
        criu::ensure_dir(&opts.image_path)?;
        criu::ensure_dir(&work)?;
        record_descriptors(self.saved.pid, &opts.image_path)?;
        let log = if opts.pre_dump {
            "pre-dump.log"
        } else {
            "dump.log"
        };
        let mut args: Vec<OsString> = vec![
            if opts.pre_dump { "pre-dump" } else { "dump" }.into(),
            "--tree".into(),
            self.saved.pid.to_string().into(),
            "--images-dir".into(),
            opts.image_path.clone().into(),
            "--work-dir".into(),
            work.clone().into(),
            "--log-file".into(),
            log.into(),
            "-v4".into(),
            "--root".into(),
            self.saved.rootfs.clone().into(),
        ];
        opts.criu.args(&mut args)?;
        let flags = [
            (opts.leave_running && !opts.pre_dump, "--leave-running"),
            (opts.tcp_skip_in_flight, "--tcp-skip-in-flight"),
            (opts.link_remap, "--link-remap"),
            // Memory tracking: what a later dump compares against.
            (opts.pre_dump || opts.parent_path.is_some(), "--track-mem"),
        ];
        args.extend(flags.iter().filter(|f| f.0).map(|f| f.1.into()));
        if let Some(parent) = &opts.parent_path {
            args.push("--prev-images-dir".into());
            args.push(parent.clone().into());
        }
        for (dest, _) in criu::external_binds(&spec, &self.saved.bundle) {
            args.push("--external".into());
            args.push(format!("mnt[{}]:{}", dest.display(), dest.display()).into());
        }
        if let Some(dest) = criu::cgroup_bind(&spec) {
            args.push("--external".into());
            args.push(format!("mnt[{}]:{}", dest.display(), dest.display()).into());
        }
        for (kind, key, path) in criu::joined_namespaces(&spec) {
            let ino = std::fs::metadata(&path)
                .map_err(|e| Error::path("stat the joined namespace", &path, &e))?;
            args.push("--external".into());
            args.push(
                format!(
                    "{kind}[{}]:{key}",
                    std::os::unix::fs::MetadataExt::ino(&ino)
                )
                .into(),
            );
        }
        for file in masked_files(&spec, self.saved.pid) {
            args.push("--external".into());
            args.push(format!("mnt[{file}]:{}", criu::MASKED).into());
        }
        let criu_bin = criu::binary(opts.criu.criu.as_deref());
        criu::run(&criu_bin, &args, &work, log, None, |_| Ok(()))?;
        if opts.leave_running || opts.pre_dump {
            return Ok(());
        }
        // criu ended the processes: the container goes, as with runc.
        self.delete(true)
    }
}

/// The init's standard streams as criu names them (`pipe:[N]`, a path),
/// for restore to hand its own in their place.
fn record_descriptors(pid: i32, images: &std::path::Path) -> Result<()> {
    let names: Vec<String> = (0..3)
        .map(|fd| {
            std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
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
