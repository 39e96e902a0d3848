//! A cgroup made by a runtime without root (runc's rootless cgroup
//! manager): where the user owns no cgroup in a hierarchy (cgroup v1, or
//! v2 without a delegated subtree), the container goes without one there,
//! unless it asked for a limit that needs it.

use std::path::PathBuf;

use oci_spec::runtime::LinuxResources;

use crate::{Cgroup, Error, Result};

impl Cgroup {
    /// [`Cgroup::create`] for a runtime without root. A hierarchy whose
    /// cgroup cannot be made or joined for lack of permission is left out,
    /// and this handle forgets it ([`Cgroup::left_out`] names them, for
    /// [`Cgroup::leave_out`] when the container is opened again). A limit
    /// in `resources` whose controller was left out is an error, in runc's
    /// words: never a limit silently dropped. Device rules, which need
    /// privilege even in a delegated cgroup, are not applied.
    pub fn create_rootless(
        &mut self,
        pid: i32,
        resources: Option<&LinuxResources>,
    ) -> Result<Vec<PathBuf>> {
        self.rootless = true;
        if self.unit.is_some() {
            return self.create(pid, resources);
        }
        self.check_not_frozen()?;
        let mut made = vec![];
        let mut kept = vec![];
        for (h, dir) in std::mem::take(&mut self.dirs) {
            match self.enter_one(&h, &dir, pid) {
                Ok(parents) => {
                    made.extend(parents);
                    kept.push((h, dir));
                }
                Err(Error::Denied { .. }) => {
                    // What it may have made before the denial, if empty.
                    let _ = std::fs::remove_dir(&dir);
                }
                Err(e) => {
                    self.dirs = kept;
                    return Err(e);
                }
            }
        }
        self.dirs = kept;
        if let Some(r) = resources {
            self.check_rootless_limits(r)?;
        }
        Ok(made)
    }

    /// A limit whose controller this rootless container has no cgroup in
    /// is refused, in runc's words.
    pub(crate) fn check_rootless_limits(&self, r: &LinuxResources) -> Result<()> {
        match self.limit_without_cgroup(r) {
            Some(field) if self.rootless => {
                let controller = field.split('.').next().unwrap_or(field);
                Err(self.apply_error(format!(
                    "cannot set {controller} limit (linux.resources.{field}): container could not join or create cgroup"
                )))
            }
            _ => Ok(()),
        }
    }

    /// The mount points of the hierarchies this handle has no cgroup in,
    /// of those the host has.
    pub fn left_out(&self) -> Vec<PathBuf> {
        crate::hierarchy::host()
            .into_iter()
            .map(|h| h.mount_point)
            .filter(|m| !self.dirs.iter().any(|(h, _)| &h.mount_point == m))
            .collect()
    }

    /// This handle without the hierarchies at `mount_points` (a container
    /// made by [`Cgroup::create_rootless`], opened again).
    pub fn leave_out(mut self, mount_points: &[PathBuf]) -> Self {
        self.dirs
            .retain(|(h, _)| !mount_points.contains(&h.mount_point));
        self.rootless |= !mount_points.is_empty();
        self
    }

    /// An error for what needs a cgroup when the container has none.
    pub(crate) fn require_some_cgroup(&self) -> Result<()> {
        if self.dirs.is_empty() {
            return Err(Error::Io {
                path: self.path.clone(),
                msg: "the container has no cgroup (made without root where the user owns none)"
                    .into(),
            });
        }
        Ok(())
    }

    /// Whether the container has a cgroup in no hierarchy at all.
    pub fn is_absent(&self) -> bool {
        self.dirs.is_empty()
    }
}
