//! The limits libcgroups does not write, or writes differently from the
//! spec, written here after it: rdma (libcgroups has no rdma controller at
//! all), a v1 cpu burst that comes alone (its v1 cpu controller only looks
//! at the other cpu fields), a pids limit of 0 (it writes "max"), and
//! memory.checkBeforeUpdate (spec 1.2, which it does not know).

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::{errno_text, Cgroup, Result};

fn write(d: &Cgroup, dir: &Path, file: &str, value: &str, field: &str) -> Result<()> {
    std::fs::write(dir.join(file), value).map_err(|e| {
        d.apply_error(format!(
            "linux.resources.{field}: {file} {value:?}: {}",
            errno_text(&e)
        ))
    })
}

/// memory.checkBeforeUpdate: an update whose memory limit is below what
/// the container uses now is refused, before anything is written (on v2
/// the kernel would otherwise reclaim, or OOM-kill, to get under it).
pub fn check_before_update(d: &Cgroup, r: &LinuxResources) -> Result<()> {
    let Some(m) = r.memory().as_ref() else {
        return Ok(());
    };
    let (Some(true), Some(limit)) = (m.check_before_update(), m.limit().filter(|l| *l > 0)) else {
        return Ok(());
    };
    let file = if d.unified {
        "memory.current"
    } else {
        "memory.usage_in_bytes"
    };
    let Some(dir) = d.dir_of("memory") else {
        return Ok(());
    };
    let usage: i64 = crate::read_text(dir.join(file))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    if limit < usage {
        return Err(d.apply_error(format!(
            "linux.resources.memory.limit {limit} is below the container's current usage {usage} (memory.checkBeforeUpdate)"
        )));
    }
    Ok(())
}

pub fn apply(d: &Cgroup, r: &LinuxResources) -> Result<()> {
    let burst = r.cpu().as_ref().and_then(|c| c.burst());
    if let (false, Some(burst), Some(dir)) = (d.unified, burst, d.dir_of("cpu")) {
        write(d, dir, "cpu.cfs_burst_us", &burst.to_string(), "cpu.burst")?;
    }
    // The spec: 0 is a valid limit and SHOULD be treated as such.
    if r.pids().as_ref().is_some_and(|p| p.limit() == 0) {
        if let Some(dir) = d.dir_of("pids") {
            write(d, dir, "pids.max", "0", "pids.limit")?;
        }
    }
    if let Some(rdma) = r.rdma().as_ref().filter(|m| !m.is_empty()) {
        let dir = d.dir_of("rdma").ok_or_else(|| {
            d.apply_error("linux.resources.rdma: no rdma controller on this host".into())
        })?;
        for (device, limit) in rdma {
            let line = rdma_line(device, limit.hca_handles(), limit.hca_objects());
            if let Some(line) = line {
                write(d, dir, "rdma.max", &line, "rdma")?;
            }
        }
    }
    Ok(())
}

/// One rdma.max line ("mlx4_0 hca_handle=2 hca_object=2000"); a limit the
/// spec leaves out is left as it is.
fn rdma_line(device: &str, handles: Option<u32>, objects: Option<u32>) -> Option<String> {
    let mut line = device.to_string();
    if let Some(h) = handles {
        line.push_str(&format!(" hca_handle={h}"));
    }
    if let Some(o) = objects {
        line.push_str(&format!(" hca_object={o}"));
    }
    (handles.is_some() || objects.is_some()).then_some(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rdma_lines_carry_what_the_spec_gives() {
        assert_eq!(
            rdma_line("mlx4_0", Some(2), Some(2000)).as_deref(),
            Some("mlx4_0 hca_handle=2 hca_object=2000")
        );
        assert_eq!(
            rdma_line("d", None, Some(5)).as_deref(),
            Some("d hca_object=5")
        );
        assert_eq!(rdma_line("d", None, None), None);
    }
}
