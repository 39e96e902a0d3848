//! Per-task attributes from the spec: the container's (personality,
//! memory policy: every process in it gets them) and the process's own
//! (I/O priority, scheduler, CPU affinity). Set while the process still
//! holds its capabilities (real-time classes need CAP_SYS_NICE /
//! CAP_SYS_ADMIN).

use oci_spec::runtime::{
    IOPriorityClass, LinuxMemoryPolicy, LinuxPersonality, LinuxPersonalityDomain,
    LinuxSchedulerFlag, LinuxSchedulerPolicy, MemoryPolicyFlagType, MemoryPolicyModeType, Process,
    Spec,
};

use crate::error::{Error, Result};
use crate::sys;

/// What the container's config sets for every process in it (runc sets
/// both for the init and for exec'd processes).
#[derive(Debug, Clone, Default)]
pub struct ContainerAttrs {
    personality: Option<LinuxPersonality>,
    memory_policy: Option<(libc::c_int, Vec<usize>)>,
}

impl ContainerAttrs {
    /// Checked here, before any process exists.
    pub fn from_spec(spec: &Spec) -> Result<Self> {
        let linux = spec.linux().as_ref();
        let personality = linux.and_then(|l| l.personality().clone());
        if let Some(flags) = personality.as_ref().and_then(|p| p.flags().as_ref()) {
            if !flags.is_empty() {
                return Err(Error::Config(format!(
                    "linux.personality.flags {flags:?}: the runtime-spec defines no personality flags"
                )));
            }
        }
        let memory_policy = match linux.and_then(|l| l.memory_policy().as_ref()) {
            Some(mp) => Some(memory_policy(mp)?),
            None => None,
        };
        Ok(ContainerAttrs {
            personality,
            memory_policy,
        })
    }

    pub fn apply(&self) -> Result<()> {
        if let Some(p) = &self.personality {
            apply_personality(p)?;
        }
        if let Some((mode, nodes)) = &self.memory_policy {
            sys::set_mempolicy(*mode, nodes)
                .map_err(|e| Error::sys("linux.memoryPolicy: set_mempolicy", e))?;
        }
        Ok(())
    }
}

/// `linux.memoryPolicy` as set_mempolicy's mode (flags or-ed in) and node
/// list, checked as runc checks it: DEFAULT and LOCAL take no nodes,
/// PREFERRED any number, the others at least one; without
/// MPOL_F_RELATIVE_NODES every node must be online here.
fn memory_policy(mp: &LinuxMemoryPolicy) -> Result<(libc::c_int, Vec<usize>)> {
    let bad =
        |why: String| Error::Config(format!("invalid memory policy: linux.memoryPolicy: {why}"));
    let mode = match mp.mode() {
        MemoryPolicyModeType::MpolDefault => 0,
        MemoryPolicyModeType::MpolPreferred => 1,
        MemoryPolicyModeType::MpolBind => 2,
        MemoryPolicyModeType::MpolInterleave => 3,
        MemoryPolicyModeType::MpolLocal => 4,
        MemoryPolicyModeType::MpolPreferredMany => 5,
        MemoryPolicyModeType::MpolWeightedInterleave => 6,
    };
    let mut flags = 0;
    for f in mp.flags().iter().flatten() {
        flags |= match f {
            MemoryPolicyFlagType::MpolFNumaBalancing => 1 << 13,
            MemoryPolicyFlagType::MpolFRelativeNodes => 1 << 14,
            MemoryPolicyFlagType::MpolFStaticNodes => 1 << 15,
        };
    }
    let nodes = match mp.nodes().as_deref().map(str::trim) {
        None | Some("") => vec![],
        Some(list) => {
            parse_cpus(list).map_err(|_| bad(format!("nodes {list:?} is not like 0-3,7")))?
        }
    };
    match (mode, nodes.len()) {
        (0 | 4, n) if n > 0 => return Err(bad(format!("mode {} takes no nodes", mp.mode()))),
        (2 | 3 | 5 | 6, 0) => {
            return Err(bad(format!("mode {} needs at least one node", mp.mode())))
        }
        _ => {}
    }
    if flags & (1 << 14) == 0 {
        let online = crate::sys::procfs::read_text("/sys/devices/system/node/online")
            .ok()
            .and_then(|s| parse_cpus(s.trim()).ok())
            .unwrap_or_else(|| vec![0]);
        if let Some(n) = nodes.iter().find(|n| !online.contains(n)) {
            return Err(bad(format!(
                "node {n} is not online here (online: {online:?})"
            )));
        }
    }
    Ok((mode | flags, nodes))
}

pub fn apply_personality(p: &LinuxPersonality) -> Result<()> {
    const PER_LINUX32: libc::c_ulong = 0x0008;
    let persona = match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0,
        LinuxPersonalityDomain::PerLinux32 => PER_LINUX32,
    };
    sys::personality(persona)
        .map_err(|e| Error::sys(format!("linux.personality {:?}", p.domain()), e))
}

pub fn apply(process: &Process) -> Result<()> {
    if let Some(io) = process.io_priority() {
        let class = match io.class() {
            IOPriorityClass::IoprioClassRt => 1,
            IOPriorityClass::IoprioClassBe => 2,
            IOPriorityClass::IoprioClassIdle => 3,
        };
        let level = u32::try_from(io.priority())
            .ok()
            .filter(|l| *l <= 7)
            .ok_or_else(|| {
                Error::Config(format!(
                    "process.ioPriority.priority {} is not 0..7",
                    io.priority()
                ))
            })?;
        sys::ioprio_set(class, level)
            .map_err(|e| Error::sys(format!("process.ioPriority {:?}", io.class()), e))?;
    }
    if let Some(s) = process.scheduler() {
        let policy = match s.policy() {
            LinuxSchedulerPolicy::SchedOther => libc::SCHED_OTHER,
            LinuxSchedulerPolicy::SchedFifo => libc::SCHED_FIFO,
            LinuxSchedulerPolicy::SchedRr => libc::SCHED_RR,
            LinuxSchedulerPolicy::SchedBatch => libc::SCHED_BATCH,
            LinuxSchedulerPolicy::SchedIso => 4,
            LinuxSchedulerPolicy::SchedIdle => libc::SCHED_IDLE,
            LinuxSchedulerPolicy::SchedDeadline => 6,
        };
        let flags = s.flags().iter().flatten().fold(0u64, |f, fl| {
            f | match fl {
                LinuxSchedulerFlag::SchedResetOnFork => 0x01,
                LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
                LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
                LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
                LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
                LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
                LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
            }
        });
        let mut attr = sys::SchedAttr {
            policy: policy as u32,
            flags,
            nice: s.nice().unwrap_or(0),
            priority: s.priority().unwrap_or(0).max(0) as u32,
            runtime: s.runtime().unwrap_or(0),
            deadline: s.deadline().unwrap_or(0),
            period: s.period().unwrap_or(0),
            ..Default::default()
        };
        sys::sched_setattr(&mut attr)
            .map_err(|e| Error::sys(format!("process.scheduler {:?}", s.policy()), e))?;
    }
    Ok(())
}

/// The affinity a container process (`pid`, still the runtime's code)
/// starts with, set before it enters the container's cgroup: an exec'd
/// process's `execCPUAffinity.initial`, else every online CPU, so that it
/// never inherits a runtime that runs pinned (`taskset`); the cgroup's
/// cpuset narrows it (runc does the same).
pub fn reset_affinity(pid: libc::pid_t, exec_process: Option<&Process>) -> Result<()> {
    let initial = exec_process
        .and_then(|p| p.exec_cpu_affinity().as_ref())
        .and_then(|a| a.initial().clone())
        .filter(|c| !c.trim().is_empty());
    let (cpus, what) = match &initial {
        Some(c) => (parse_cpus(c)?, "process.execCPUAffinity.initial"),
        None => match online_cpus() {
            Some(all) => (all.to_vec(), "every online CPU"),
            None => return Ok(()),
        },
    };
    sys::sched_setaffinity(pid, &cpus)
        .map_err(|e| Error::sys(format!("CPU affinity ({what}) of {pid}"), e))?;
    let now = sys::sched_getaffinity(pid).unwrap_or_default();
    crate::log::debug!("process {pid}: affinity before its cgroup ({what}): {now:?}");
    Ok(())
}

/// Every online CPU, read once per process.
fn online_cpus() -> Option<&'static [usize]> {
    static ONLINE: std::sync::OnceLock<Option<Vec<usize>>> = std::sync::OnceLock::new();
    ONLINE
        .get_or_init(|| {
            let text = crate::sys::procfs::read_text("/sys/devices/system/cpu/online").ok()?;
            parse_cpus(text.trim()).ok()
        })
        .as_deref()
}

/// Moves a process just cloned by this one (`pid`) off the CPU this one
/// runs on. The kernel mostly queues a new child behind its parent, so
/// the child's first steps (its namespaces) waited for the parent to block
/// instead of running beside the parent's own (the cgroup): 34 of 50
/// `run`s here lost ~0.65 ms that way. Best effort, and temporary:
/// `reset_affinity` sets the affinity the process keeps.
pub fn start_elsewhere(pid: libc::pid_t) {
    let (Some(all), Some(here)) = (online_cpus(), sys::current_cpu()) else {
        return;
    };
    let others: Vec<usize> = all.iter().copied().filter(|&c| c != here).collect();
    if !others.is_empty() {
        let _ = sys::sched_setaffinity(pid, &others);
    }
}

/// `process.execCPUAffinity.final` (exec'd processes only; the spec: "not
/// applicable to the container's init process"), once the process is in
/// the container's cgroup.
pub fn apply_exec_affinity_final(process: &Process) -> Result<()> {
    let Some(a) = process.exec_cpu_affinity() else {
        return Ok(());
    };
    let name = "final";
    let Some(cpus) = a
        .cpu_affinity_final()
        .as_ref()
        .filter(|c| !c.trim().is_empty())
    else {
        return Ok(());
    };
    let list = parse_cpus(cpus)?;
    sys::sched_setaffinity(0, &list)
        .map_err(|e| Error::sys(format!("process.execCPUAffinity.{name} {cpus:?}"), e))
}

/// "0-3,7" as [0, 1, 2, 3, 7].
fn parse_cpus(s: &str) -> Result<Vec<usize>> {
    let bad = || Error::Config(format!("CPU list {s:?} is not like 0-3,7"));
    let mut out = vec![];
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) =
                    (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                if a > b {
                    return Err(bad());
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().map_err(|_| bad())?),
        }
    }
    if out.is_empty() {
        return Err(bad());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::parse_cpus;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpus("0-3,7").unwrap(), vec![0, 1, 2, 3, 7]);
        assert_eq!(parse_cpus("5").unwrap(), vec![5]);
        assert!(parse_cpus("3-1").is_err());
        assert!(parse_cpus("x").is_err());
        assert!(parse_cpus("").is_err());
    }
}
