//! Which cgroup file each `linux.resources` field is written to, so that a
//! field this host's cgroups have no file for is refused, naming it, rather
//! than dropped (a v1 host without BFQ has no blkio weight; cgroup v2 has
//! no realtime or swappiness knob). runc fails on the missing file too.

use oci_spec::runtime::LinuxResources;

use crate::{Cgroup, Result};

/// A field that is set, with the files that can hold it: a v1 controller
/// and its files (any one will do), and the v2 files (None: v2 has no
/// such knob).
struct Need {
    field: &'static str,
    controller: &'static str,
    v1: &'static [&'static str],
    v2: Option<&'static [&'static str]>,
}

fn needs(r: &LinuxResources) -> Vec<Need> {
    let mut out = vec![];
    let mut need = |set: bool, field, controller, v1, v2| {
        if set {
            out.push(Need {
                field,
                controller,
                v1,
                v2,
            })
        }
    };
    if let Some(m) = r.memory() {
        need(
            m.limit().is_some(),
            "memory.limit",
            "memory",
            &["memory.limit_in_bytes"],
            Some(&["memory.max"]),
        );
        need(
            m.reservation().is_some(),
            "memory.reservation",
            "memory",
            &["memory.soft_limit_in_bytes"],
            Some(&["memory.low"]),
        );
        need(
            m.swap().is_some(),
            "memory.swap",
            "memory",
            &["memory.memsw.limit_in_bytes"],
            Some(&["memory.swap.max"]),
        );
        need(
            m.kernel_tcp().is_some(),
            "memory.kernelTCP",
            "memory",
            &["memory.kmem.tcp.limit_in_bytes"],
            None,
        );
        need(
            m.swappiness().is_some(),
            "memory.swappiness",
            "memory",
            &["memory.swappiness"],
            None,
        );
        need(
            m.disable_oom_killer().is_some_and(|d| d),
            "memory.disableOOMKiller",
            "memory",
            &["memory.oom_control"],
            None,
        );
    }
    if let Some(c) = r.cpu() {
        need(
            c.shares().is_some(),
            "cpu.shares",
            "cpu",
            &["cpu.shares"],
            Some(&["cpu.weight"]),
        );
        need(
            c.quota().is_some(),
            "cpu.quota",
            "cpu",
            &["cpu.cfs_quota_us"],
            Some(&["cpu.max"]),
        );
        need(
            c.period().is_some(),
            "cpu.period",
            "cpu",
            &["cpu.cfs_period_us"],
            Some(&["cpu.max"]),
        );
        need(
            c.burst().is_some(),
            "cpu.burst",
            "cpu",
            &["cpu.cfs_burst_us"],
            Some(&["cpu.max.burst"]),
        );
        need(
            c.idle().is_some(),
            "cpu.idle",
            "cpu",
            &["cpu.idle"],
            Some(&["cpu.idle"]),
        );
        need(
            c.realtime_runtime().is_some(),
            "cpu.realtimeRuntime",
            "cpu",
            &["cpu.rt_runtime_us"],
            None,
        );
        need(
            c.realtime_period().is_some(),
            "cpu.realtimePeriod",
            "cpu",
            &["cpu.rt_period_us"],
            None,
        );
        need(
            c.cpus().as_ref().is_some_and(|s| !s.is_empty()),
            "cpu.cpus",
            "cpuset",
            &["cpuset.cpus"],
            Some(&["cpuset.cpus"]),
        );
        need(
            c.mems().as_ref().is_some_and(|s| !s.is_empty()),
            "cpu.mems",
            "cpuset",
            &["cpuset.mems"],
            Some(&["cpuset.mems"]),
        );
    }
    if let Some(b) = r.block_io() {
        let weights = b.weight_device().as_deref().unwrap_or_default();
        need(
            // 0 is "not set": docker sends weight 0 for every container,
            // and runc writes no weight for it.
            b.weight().is_some_and(|w| w != 0),
            "blockIO.weight",
            "blkio",
            &["blkio.weight", "blkio.bfq.weight"],
            Some(&["io.weight", "io.bfq.weight"]),
        );
        need(
            b.leaf_weight().is_some_and(|w| w != 0),
            "blockIO.leafWeight",
            "blkio",
            &["blkio.leaf_weight"],
            None,
        );
        need(
            weights.iter().any(|w| w.weight().is_some_and(|w| w != 0)),
            "blockIO.weightDevice",
            "blkio",
            &["blkio.weight_device", "blkio.bfq.weight_device"],
            Some(&["io.weight", "io.bfq.weight"]),
        );
        need(
            weights
                .iter()
                .any(|w| w.leaf_weight().is_some_and(|w| w != 0)),
            "blockIO.weightDevice.leafWeight",
            "blkio",
            &["blkio.leaf_weight_device"],
            None,
        );
        let any = |d: &Option<Vec<_>>| d.as_ref().is_some_and(|d: &Vec<_>| !d.is_empty());
        need(
            any(b.throttle_read_bps_device()),
            "blockIO.throttleReadBpsDevice",
            "blkio",
            &["blkio.throttle.read_bps_device"],
            Some(&["io.max"]),
        );
        need(
            any(b.throttle_write_bps_device()),
            "blockIO.throttleWriteBpsDevice",
            "blkio",
            &["blkio.throttle.write_bps_device"],
            Some(&["io.max"]),
        );
        need(
            any(b.throttle_read_iops_device()),
            "blockIO.throttleReadIOPSDevice",
            "blkio",
            &["blkio.throttle.read_iops_device"],
            Some(&["io.max"]),
        );
        need(
            any(b.throttle_write_iops_device()),
            "blockIO.throttleWriteIOPSDevice",
            "blkio",
            &["blkio.throttle.write_iops_device"],
            Some(&["io.max"]),
        );
    }
    if let Some(p) = r.pids() {
        let _ = p;
        need(
            true,
            "pids.limit",
            "pids",
            &["pids.max"],
            Some(&["pids.max"]),
        );
    }
    out
}

impl Cgroup {
    /// The first field of `r` set for a controller this cgroup has no
    /// directory for.
    pub(crate) fn limit_without_cgroup(&self, r: &LinuxResources) -> Option<&'static str> {
        needs(r)
            .into_iter()
            .find(|n| self.dir_of(n.controller).is_none())
            .map(|n| n.field)
    }

    /// Every field of `r` has a file in the container's cgroup (which
    /// exists by now): else the first that has none is refused.
    pub(crate) fn check_files(&self, r: &LinuxResources) -> Result<()> {
        for n in needs(r) {
            let files = if self.unified { n.v2 } else { Some(n.v1) };
            let dir = self.dir_of(n.controller);
            let found = match (files, dir) {
                (Some(files), Some(dir)) => files.iter().any(|f| dir.join(f).exists()),
                _ => false,
            };
            if !found {
                let why = match files {
                    None => "cgroup v2 has no such setting".to_string(),
                    Some(files) => format!("this host's cgroups have no {}", files.join(" or ")),
                };
                return Err(self.apply_error(format!(
                    "invalid configuration: linux.resources.{}: {why}",
                    n.field
                )));
            }
        }
        Ok(())
    }
}
