//! Limits: `linux.resources` checked against the host, applied at create,
//! changed by `update`, and read back as statistics. libcgroups' managers
//! write most of them (built only here: each costs ~2 ms); `gaps` writes
//! what they do not.

use oci_spec::runtime::LinuxResources;

use crate::{devfilter, devices, gaps, systemd, Cgroup, Error, Result};

impl Cgroup {
    /// An error applying this cgroup's limits.
    pub(crate) fn apply_error(&self, msg: String) -> Error {
        Error::Apply {
            path: self.path.clone(),
            msg,
        }
    }

    /// Resources this host's hierarchies cannot hold, refused before
    /// anything exists: `unified` outside a v2 host (the spec: an error
    /// when it names a controller that is not present), and v1 limits
    /// whose controller is not mounted.
    pub fn check(&self, resources: Option<&LinuxResources>) -> Result<()> {
        let Some(r) = resources else { return Ok(()) };
        // runc's words for a limit the host cannot take.
        let refuse = |field: &str, why: String| {
            self.apply_error(format!(
                "invalid configuration: linux.resources.{field}: {why}"
            ))
        };
        let unified_keys = r.unified().as_ref().filter(|u| !u.is_empty());
        if let (true, Some(keys)) = (self.unified, unified_keys) {
            // Each key names its controller ("memory.high"); the core files
            // ("cgroup.*") are in every cgroup.
            let root = self
                .dirs
                .iter()
                .find(|(h, _)| h.v2)
                .map(|(h, _)| &h.mount_point);
            let have = root
                .and_then(|r| crate::read_text(r.join("cgroup.controllers")).ok())
                .unwrap_or_default();
            for key in keys.keys() {
                let controller = key.split('.').next().unwrap_or("");
                if controller != "cgroup" && !have.split_whitespace().any(|c| c == controller) {
                    return Err(refuse(
                        "unified",
                        format!("{key:?}: this host has no {controller} controller"),
                    ));
                }
            }
        } else if !self.unified {
            if let Some(key) = unified_keys.and_then(|u| u.keys().next()) {
                return Err(refuse(
                    "unified",
                    format!("{key:?} is a cgroup v2 file; this host's controllers are cgroup v1"),
                ));
            }
            let needs = [
                (
                    "hugepageLimits",
                    "hugetlb",
                    r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty()),
                ),
                (
                    "network.classID",
                    "net_cls",
                    r.network().as_ref().is_some_and(|n| n.class_id().is_some()),
                ),
                (
                    "rdma",
                    "rdma",
                    r.rdma().as_ref().is_some_and(|m| !m.is_empty()),
                ),
                (
                    "network.priorities",
                    "net_prio",
                    r.network()
                        .as_ref()
                        .is_some_and(|n| n.priorities().as_ref().is_some_and(|p| !p.is_empty())),
                ),
            ];
            for (field, controller, wanted) in needs {
                if wanted && !self.dirs.iter().any(|(h, _)| h.has(controller)) {
                    return Err(refuse(
                        field,
                        format!("no cgroup v1 {controller} hierarchy is mounted here"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Applies `linux.resources` at create. The device rules are ours on
    /// both versions (libcgroups is given none): v1's written with the
    /// fewest writes, v2's program attached; with no rules a container
    /// still gets only the default devices (runc's meaning).
    pub fn apply(&self, resources: Option<&LinuxResources>) -> Result<()> {
        self.apply_limits(resources)?;
        self.apply_device_rules(resources)
    }

    /// [`Cgroup::apply`] without the device rules.
    pub fn apply_limits(&self, resources: Option<&LinuxResources>) -> Result<()> {
        let Some(r) = resources else {
            return Ok(());
        };
        self.check_files(r)?;
        if needs_libcgroups(r) {
            self.apply_with_libcgroups(&without_devices(r))?;
        }
        gaps::apply(self, r)
    }

    /// Only the device rules of [`Cgroup::apply`]. On v1 they are written
    /// one by one (a deny-all first where the set shrinks), so a process in
    /// the cgroup may find a default device refused until the last write.
    pub fn apply_device_rules(&self, resources: Option<&LinuxResources>) -> Result<()> {
        let rules = resources
            .and_then(|r| r.devices().as_deref())
            .unwrap_or_default();
        self.apply_devices(rules)
    }

    fn apply_devices(&self, rules: &[oci_spec::runtime::LinuxDeviceCgroup]) -> Result<()> {
        // Without root there is no device rule to write (v1 devices.allow
        // and v2 BPF programs need privilege over the host); what such a
        // container can open is what its user may open on the host (runc
        // leaves device rules out too).
        if self.rootless {
            return Ok(());
        }
        let Some(dir) = self.dir_of("devices") else {
            return Ok(());
        };
        if self.unified {
            devfilter::apply(dir, &devices::effective(rules))
        } else {
            devices::apply_v1(dir, rules)
        }
    }

    /// `update`: applies only what `resources` holds (device rules only
    /// when it has some; runc's CLI never passes them).
    pub fn update(&self, resources: &LinuxResources) -> Result<()> {
        self.check_rootless_limits(resources)?;
        self.check_files(resources)?;
        gaps::check_before_update(self, resources)?;
        if let Some(unit) = &self.unit {
            systemd::set_properties(unit, resources, self.unified)?;
        }
        if needs_libcgroups(resources) {
            self.apply_with_libcgroups(&without_devices(resources))?;
        }
        gaps::apply(self, resources)?;
        match resources.devices().as_deref() {
            Some(rules) => self.apply_devices(rules),
            None => Ok(()),
        }
    }

    /// A libcgroups manager for this cgroup (built only where limits or
    /// statistics need it: building one costs ~2 ms). Its errors are
    /// turned into ours by `wrap`.
    fn libcgroups_manager(
        &self,
        wrap: impl Fn(String) -> Error,
    ) -> Result<libcgroups::common::AnyCgroupManager> {
        use libcgroups::common::{create_cgroup_manager, CgroupConfig};
        create_cgroup_manager(CgroupConfig {
            cgroup_path: self.path.clone(),
            systemd_cgroup: false,
            container_name: String::new(),
        })
        .map_err(|e| wrap(e.to_string()))
    }

    fn apply_with_libcgroups(&self, resources: &LinuxResources) -> Result<()> {
        use libcgroups::common::{CgroupManager, ControllerOpt};
        let apply_err = |msg: String| self.apply_error(msg);
        let manager = self.libcgroups_manager(apply_err)?;
        let opt = ControllerOpt {
            resources,
            disable_oom_killer: resources
                .memory()
                .as_ref()
                .and_then(|m| m.disable_oom_killer())
                .unwrap_or(false),
            oom_score_adj: None,
            freezer_state: None,
        };
        match manager.apply(&opt) {
            Ok(()) => Ok(()),
            // v1 takes the period first: a shorter period under the quota
            // still there can exceed a parent's limit (EINVAL). Quota
            // first then, as runc retries.
            Err(e) if self.period_before_quota_refused(&e.to_string(), resources) => manager
                .apply(&opt)
                .map_err(|e| apply_err(name_the_resource(&e.to_string()))),
            Err(e) => Err(apply_err(name_the_resource(&e.to_string()))),
        }
    }

    /// Whether `msg` is v1 refusing cpu.cfs_period_us while a quota is
    /// also asked for; if so the quota is written, so a retry can pass.
    fn period_before_quota_refused(&self, msg: &str, resources: &LinuxResources) -> bool {
        let quota = resources.cpu().as_ref().and_then(|c| c.quota());
        let (false, Some(quota), Some(dir)) = (self.unified, quota, self.dir_of("cpu")) else {
            return false;
        };
        msg.contains("cpu.cfs_period_us")
            && crate::write(&dir.join("cpu.cfs_quota_us"), &quota.to_string()).is_ok()
    }

    /// Usage and limits, as libcgroups reads them.
    pub fn stats(&self) -> Result<libcgroups::stats::Stats> {
        use libcgroups::common::CgroupManager;
        self.require_some_cgroup()?;
        let err = |msg: String| Error::Io {
            path: self.path.clone(),
            msg,
        };
        self.libcgroups_manager(err)?
            .stats()
            .map_err(|e| err(e.to_string()))
    }

    /// How many times the kernel's OOM killer killed in this cgroup (v1
    /// memory.oom_control, v2 memory.events).
    /// An error when the file cannot be read (no memory controller, the
    /// cgroup gone), never a silent 0.
    pub fn oom_kills(&self) -> Result<u64> {
        let (file, dir) = if self.unified {
            ("memory.events", self.dir_of(""))
        } else {
            ("memory.oom_control", self.dir_of("memory"))
        };
        let Some(dir) = dir else {
            return Err(Error::Io {
                path: self.path.clone(),
                msg: "no memory controller: OOM kills are not counted".into(),
            });
        };
        let path = dir.join(file);
        let text = crate::read_text(&path).map_err(|e| crate::io_err(&path, e))?;
        // Kernels before 4.13 have no oom_kill line: none counted.
        Ok(text
            .lines()
            .find_map(|l| {
                l.strip_prefix("oom_kill ")
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or(0))
    }
}

/// Anything in `linux.resources` besides device rules.
/// libcgroups says which file refused which value; say which field of
/// linux.resources that was, in front.
fn name_the_resource(msg: &str) -> String {
    const FIELDS: &[(&str, &str)] = &[
        ("cpuset.cpus", "cpu.cpus"),
        ("cpuset.mems", "cpu.mems"),
        ("cpu.shares", "cpu.shares"),
        ("cpu.weight", "cpu.shares"),
        ("cpu.cfs_quota_us", "cpu.quota"),
        ("cpu.cfs_period_us", "cpu.period"),
        ("cpu.max", "cpu.quota/period"),
        ("cpu.rt_runtime_us", "cpu.realtimeRuntime"),
        ("cpu.rt_period_us", "cpu.realtimePeriod"),
        ("memory.limit_in_bytes", "memory.limit"),
        ("memory.max", "memory.limit"),
        ("memory.soft_limit_in_bytes", "memory.reservation"),
        ("memory.low", "memory.reservation"),
        ("memory.memsw.limit_in_bytes", "memory.swap"),
        ("memory.swap.max", "memory.swap"),
        ("memory.swappiness", "memory.swappiness"),
        ("pids.max", "pids.limit"),
        ("blkio.", "blockIO"),
        ("io.", "blockIO"),
        ("hugetlb.", "hugepageLimits"),
        ("net_cls.classid", "network.classID"),
        ("net_prio.ifpriomap", "network.priorities"),
        ("rdma.max", "rdma"),
    ];
    let file = msg.split_whitespace().find_map(|w| {
        w.trim_end_matches(':')
            .rsplit('/')
            .next()
            .filter(|f| f.contains('.'))
            .filter(|_| w.starts_with('/'))
    });
    // libcgroups' own checks (memory limit below usage, swap below limit).
    const PHRASES: &[(&str, &str)] = &[
        ("memory limit", "memory.limit"),
        ("memory+swap", "memory.swap"),
        ("swap", "memory.swap"),
    ];
    let field = file
        .and_then(|f| FIELDS.iter().find(|(k, _)| f.starts_with(k)))
        .or_else(|| PHRASES.iter().find(|(p, _)| msg.contains(p)));
    match field {
        Some((_, field)) => format!("linux.resources.{field}: {msg}"),
        None => msg.to_string(),
    }
}

/// `r` without device rules: libcgroups would write them verbatim (v1)
/// after ours, deny-all first, cutting running processes off for a moment.
fn without_devices(r: &LinuxResources) -> LinuxResources {
    let mut r = r.clone();
    r.set_devices(None);
    r
}

fn needs_libcgroups(r: &LinuxResources) -> bool {
    r.memory().is_some()
        || r.cpu().is_some()
        || r.pids().is_some()
        || r.block_io().is_some()
        || r.hugepage_limits().as_ref().is_some_and(|v| !v.is_empty())
        || r.network().is_some()
        || r.unified().as_ref().is_some_and(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_resource() {
        let m = "io error: failed to write 9999 to /sys/fs/cgroup/cpuset/x/cpuset.cpus: Numerical result out of range (os error 34)";
        assert!(name_the_resource(m)
            .starts_with("linux.resources.cpu.cpus: io error: failed to write 9999"));
        let m = "io error: failed to write 100 to /sys/fs/cgroup/cpu/x/cpu.cfs_period_us: Invalid argument";
        assert!(name_the_resource(m).starts_with("linux.resources.cpu.period: "));
        assert_eq!(name_the_resource("something else"), "something else");
        let m = "unable to set memory limit to 4096 (current usage: 16384, peak usage: 262144)";
        assert!(name_the_resource(m).starts_with("linux.resources.memory.limit: unable"));
    }

    #[test]
    fn only_device_rules_skip_libcgroups() {
        let r: LinuxResources = serde_json_like(r#"{"devices":[{"allow":false,"access":"rwm"}]}"#);
        assert!(!needs_libcgroups(&r));
        let r: LinuxResources = serde_json_like(r#"{"pids":{"limit":5}}"#);
        assert!(needs_libcgroups(&r));
    }

    fn serde_json_like(s: &str) -> LinuxResources {
        serde_json::from_str(s).unwrap()
    }
}
