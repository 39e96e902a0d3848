//! Removing a container's cgroup: sub-cgroups first, waiting out (or,
//! for a forced removal, killing) what still runs there.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::{errno_text, io_err, systemd, Cgroup, Error, Result};

impl Cgroup {
    /// Kills what is left inside and removes the cgroup (sub-cgroups
    /// first) from every hierarchy, then the `parents_made` by its create
    /// that are empty. Already gone is not an error.
    pub fn remove(&self, parents_made: &[PathBuf]) -> Result<()> {
        self.remove_with(true, parents_made).map(|_| ())
    }

    /// Removes the cgroup once the container's own processes are gone (a
    /// failed `create`; `delete` of a container whose processes died with
    /// its pid namespace). A cgroup that other processes still use (a
    /// `cgroupsPath` shared with a running container) is left to them,
    /// never emptied by force, and so are its parents. Returns the
    /// directories left so.
    pub fn remove_if_unused(&self, parents_made: &[PathBuf]) -> Result<Vec<PathBuf>> {
        self.remove_with(false, parents_made)
    }

    fn remove_with(&self, kill: bool, parents_made: &[PathBuf]) -> Result<Vec<PathBuf>> {
        if let Some(unit) = &self.unit {
            // systemd removes the cgroup it made (in every hierarchy it
            // manages); the rest are ours.
            let systemd_dir = self
                .dirs
                .iter()
                .find(|(h, _)| (h.v2 && self.unified) || h.has("name=systemd"))
                .map(|(_, d)| d.as_path());
            systemd::stop(unit, systemd_dir)?;
        }
        let mut in_use = vec![];
        for (_, dir) in &self.dirs {
            if !remove_tree(dir, kill)? {
                in_use.push(dir.clone());
            }
        }
        if in_use.is_empty() {
            // Deepest first; one that holds another container's cgroup is
            // not empty and stays.
            for d in parents_made {
                let _ = std::fs::remove_dir(d);
            }
        }
        Ok(in_use)
    }
}

pub(crate) fn collect_pids(dir: &Path, out: &mut Vec<i32>) -> Result<()> {
    let procs = match crate::read_text(dir.join("cgroup.procs")) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(&dir.join("cgroup.procs"), e)),
    };
    out.extend(procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                collect_pids(&e.path(), out)?;
            }
        }
    }
    Ok(())
}

/// Removes `dir` and its sub-cgroups, retrying while the kernel finishes
/// tearing tasks down (EBUSY); with `kill`, killing what still runs there,
/// else leaving a cgroup that is still in use (then false).
fn remove_tree(dir: &Path, kill: bool) -> Result<bool> {
    // Most cgroups have no child: one rmdir, no directory read.
    match std::fs::remove_dir(dir) {
        Ok(()) => return Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
        Err(_) => {}
    }
    let mut children_gone = true;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) && !remove_tree(&e.path(), kill)?
            {
                children_gone = false;
            }
        }
    }
    if !children_gone {
        return Ok(false);
    }
    let deadline = Instant::now() + Duration::from_secs(if kill { 5 } else { 1 });
    let mut pause = Duration::from_micros(200);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
            Err(e) if e.raw_os_error() == Some(libc_ebusy()) && Instant::now() < deadline => {
                let mut pids = vec![];
                let _ = collect_pids(dir, &mut pids);
                // A process already killed (a create's init whose runtime
                // died before recording it: its death signal is pending)
                // is waited for, not taken for another user's.
                if !kill && !pids.iter().all(|&p| dying(p)) {
                    return Ok(false);
                }
                if kill {
                    for pid in pids {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pid),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                    }
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(e) => {
                return Err(Error::Remove {
                    path: dir.to_path_buf(),
                    msg: errno_text(&e),
                })
            }
        }
    }
}

/// Whether `pid` is gone, exiting, or has SIGKILL pending.
fn dying(pid: i32) -> bool {
    crate::read_text(format!("/proc/{pid}/status")).map_or(true, |s| dying_from_status(&s))
        || crate::read_text(format!("/proc/{pid}/stat")).map_or(true, |s| exiting_from_stat(&s))
}

/// Whether /proc/PID/stat's flags (field 9) have PF_EXITING: a process
/// that took its SIGKILL and is in its exit (undoing its namespaces can
/// take a while) has no signal pending any more and is not a zombie yet.
fn exiting_from_stat(stat: &str) -> bool {
    const PF_EXITING: u64 = 0x4;
    // The command name (field 2) may hold spaces and parentheses: count
    // from the last ')'. After it: state (3), ppid, pgrp, session,
    // tty_nr, tpgid, flags (9).
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(6))
        .and_then(|f| f.parse::<u64>().ok())
        .is_some_and(|flags| flags & PF_EXITING != 0)
}

fn dying_from_status(status: &str) -> bool {
    let kill_bit = 1u64 << (libc::SIGKILL - 1);
    status.lines().any(|l| match l.split_once(':') {
        Some(("State", v)) => matches!(v.trim().chars().next(), Some('Z' | 'X')),
        Some(("SigPnd" | "ShdPnd", v)) => {
            u64::from_str_radix(v.trim(), 16).is_ok_and(|m| m & kill_bit != 0)
        }
        _ => false,
    })
}

fn libc_ebusy() -> i32 {
    nix::errno::Errno::EBUSY as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_sigkill_or_an_exit_reads_as_dying() {
        let live = "Name:\tsleep\nState:\tS (sleeping)\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000000\n";
        assert!(!dying_from_status(live));
        assert!(dying_from_status(&live.replace(
            "ShdPnd:\t0000000000000000",
            "ShdPnd:\t0000000000000100"
        )));
        assert!(dying_from_status(&live.replace(
            "SigPnd:\t0000000000000000",
            "SigPnd:\t0000000000000100"
        )));
        // SIGTERM (bit 14) pending is not a death.
        assert!(!dying_from_status(&live.replace(
            "ShdPnd:\t0000000000000000",
            "ShdPnd:\t0000000000004000"
        )));
        assert!(dying_from_status(
            &live.replace("S (sleeping)", "Z (zombie)")
        ));
        assert!(!dying(std::process::id() as i32));
    }

    #[test]
    fn an_exit_under_way_reads_as_dying() {
        // PF_EXITING (0x4) in the flags; a name with ") " in it.
        let stat = |flags: u32| format!("42 (a) b) R 1 42 42 0 -1 {flags} 0 0 0 0 5 6");
        assert!(exiting_from_stat(&stat(0x404044)));
        assert!(!exiting_from_stat(&stat(0x404040)));
        let own = std::fs::read_to_string("/proc/self/stat").unwrap();
        assert!(!exiting_from_stat(&own));
    }
}
