//! Per-task attributes from the spec (1.2): personality, I/O priority,
//! scheduler, CPU affinity. Set while the process still holds its
//! capabilities (real-time classes need CAP_SYS_NICE / CAP_SYS_ADMIN).

use oci_spec::runtime::{
    IOPriorityClass, LinuxPersonality, LinuxPersonalityDomain, LinuxSchedulerFlag,
    LinuxSchedulerPolicy, Process,
};

use crate::error::{Error, Os, Result};
use crate::sys;

pub fn apply_personality(p: &LinuxPersonality) -> Result<()> {
    const PER_LINUX32: libc::c_ulong = 0x0008;
    let persona = match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0,
        LinuxPersonalityDomain::PerLinux32 => PER_LINUX32,
    };
    sys::personality(persona)
        .map_err(|e| Error::Sys(format!("linux.personality {:?}: {}", p.domain(), Os(e))))
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
            .map_err(|e| Error::Sys(format!("process.ioPriority {:?}: {}", io.class(), Os(e))))?;
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
            .map_err(|e| Error::Sys(format!("process.scheduler {:?}: {}", s.policy(), Os(e))))?;
    }
    if let Some(cpus) = process
        .exec_cpu_affinity()
        .as_ref()
        .and_then(|a| a.cpu_affinity_final().as_ref())
    {
        let list = parse_cpus(cpus)?;
        sys::sched_setaffinity(&list).map_err(|e| {
            Error::Sys(format!("process.execCPUAffinity.final {cpus:?}: {}", Os(e)))
        })?;
    }
    Ok(())
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
