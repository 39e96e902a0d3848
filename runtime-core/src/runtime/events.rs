//! A container's statistics as typed values (serialized, they are runc's
//! `events --stats` JSON, which containerd and monitoring tools parse field
//! by field: same names, same order, zeros left out where runc leaves them
//! out), and a stream of events: statistics every interval, and an OOM
//! event whenever the OOM killer strikes, until the container stops.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Value};

use crate::error::Result;
use crate::runtime::container::Container;
use crate::runtime::state::Status;

fn zero(n: &u64) -> bool {
    *n == 0
}

/// A container's statistics.
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct Stats {
    /// CPU time used and throttling.
    pub cpu: Cpu,
    /// Memory usage and limits.
    pub memory: Memory,
    /// Processes and their limit.
    pub pids: Pids,
    /// Block I/O.
    pub blkio: Blkio,
    /// Huge page usage, by page size ("2MB", ...).
    pub hugetlb: BTreeMap<String, Hugetlb>,
}

/// CPU statistics.
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct Cpu {
    /// CPU time used, in nanoseconds.
    pub usage: CpuUsage,
    /// CFS throttling (left out when all zero).
    #[serde(skip_serializing_if = "Throttling::is_empty")]
    pub throttling: Throttling,
}

/// CPU time used, in nanoseconds.
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct CpuUsage {
    /// In all.
    #[serde(skip_serializing_if = "zero")]
    pub total: u64,
    /// Per CPU.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    /// Per CPU, in kernel mode.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    /// Per CPU, in user mode.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    /// In kernel mode.
    pub kernel: u64,
    /// In user mode.
    pub user: u64,
}

/// CFS throttling.
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct Throttling {
    /// Enforcement periods elapsed.
    #[serde(skip_serializing_if = "zero")]
    pub periods: u64,
    /// Periods in which the container was throttled.
    #[serde(rename = "throttledPeriods", skip_serializing_if = "zero")]
    pub throttled_periods: u64,
    /// Time throttled, in nanoseconds.
    #[serde(rename = "throttledTime", skip_serializing_if = "zero")]
    pub throttled_time: u64,
}

impl Throttling {
    fn is_empty(&self) -> bool {
        self.periods == 0 && self.throttled_periods == 0 && self.throttled_time == 0
    }
}

/// Memory statistics.
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct Memory {
    /// Page cache.
    #[serde(skip_serializing_if = "zero")]
    pub cache: u64,
    /// Memory.
    pub usage: MemoryEntry,
    /// Memory plus swap.
    pub swap: MemoryEntry,
    /// Kernel memory.
    pub kernel: MemoryEntry,
    /// Kernel TCP buffers.
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    /// memory.stat as it is.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

/// One kind of memory: usage, peak, limit, how often the limit was hit.
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct MemoryEntry {
    /// The limit, in bytes.
    pub limit: u64,
    /// In use, in bytes.
    #[serde(skip_serializing_if = "zero")]
    pub usage: u64,
    /// The most used, in bytes.
    #[serde(rename = "max", skip_serializing_if = "zero")]
    pub max_usage: u64,
    /// Times the limit was hit.
    pub failcnt: u64,
}

/// Processes.
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct Pids {
    /// How many now.
    #[serde(skip_serializing_if = "zero")]
    pub current: u64,
    /// The limit (0: none).
    #[serde(skip_serializing_if = "zero")]
    pub limit: u64,
}

/// Block I/O, per device and operation.
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
#[serde(rename_all = "camelCase")]
pub struct Blkio {
    /// Bytes transferred.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    /// Operations.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
    /// Operations queued.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_queued_recursive: Vec<BlkioEntry>,
    /// Service time.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_service_time_recursive: Vec<BlkioEntry>,
    /// Time waiting.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_wait_time_recursive: Vec<BlkioEntry>,
    /// Operations merged.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_merged_recursive: Vec<BlkioEntry>,
    /// Time.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_time_recursive: Vec<BlkioEntry>,
    /// Sectors.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sectors_recursive: Vec<BlkioEntry>,
}

/// One device's count for one operation.
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct BlkioEntry {
    /// Device major number.
    pub major: u64,
    /// Device minor number.
    pub minor: u64,
    /// Read, Write, Sync, Async, Total, ...
    pub op: String,
    /// The count.
    pub value: u64,
}

/// Huge page usage of one page size.
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct Hugetlb {
    /// In use, in bytes.
    #[serde(skip_serializing_if = "zero")]
    pub usage: u64,
    /// The most used, in bytes.
    #[serde(rename = "max", skip_serializing_if = "zero")]
    pub max_usage: u64,
    /// Times the limit was hit.
    pub failcnt: u64,
}

fn memory_entry(m: &estiba_cgroups::stats::MemoryData) -> MemoryEntry {
    MemoryEntry {
        limit: m.limit,
        usage: m.usage,
        max_usage: m.max_usage,
        failcnt: m.fail_count,
    }
}

fn blkio(entries: &[estiba_cgroups::stats::BlkioDeviceStat]) -> Vec<BlkioEntry> {
    entries
        .iter()
        .map(|e| BlkioEntry {
            major: e.major,
            minor: e.minor,
            op: e.op_type.clone().unwrap_or_default(),
            value: e.value,
        })
        .collect()
}

/// Something that happened to a container.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// Statistics, taken at this moment.
    Stats(Box<Stats>),
    /// The OOM killer killed a process of the container.
    Oom,
}

/// The events of a running container: statistics every interval, an OOM
/// event whenever the OOM killer strikes (checked at least every 200 ms).
/// It ends once the container has stopped (after the OOM event that may
/// have stopped it).
pub struct Events<'a> {
    container: &'a Container,
    every: Duration,
    next: Instant,
    ooms: u64,
    done: bool,
}

impl Iterator for Events<'_> {
    type Item = Result<Event>;

    fn next(&mut self) -> Option<Result<Event>> {
        loop {
            if self.done {
                return None;
            }
            // The status before the OOM count: when the OOM killer took the
            // init, its kill is counted before the container shows stopped.
            let stopped = self.container.status() == Status::Stopped;
            match self.container.oom_kills() {
                Ok(n) if n > self.ooms => {
                    self.ooms = n;
                    return Some(Ok(Event::Oom));
                }
                // Gone with the container's cgroup: nothing more to see.
                Err(_) if stopped => {}
                Err(e) => return Some(Err(e)),
                Ok(_) => {}
            }
            if stopped {
                self.done = true;
                return None;
            }
            if Instant::now() >= self.next {
                self.next += self.every;
                match self.container.stats() {
                    Ok(s) => return Some(Ok(Event::Stats(Box::new(s)))),
                    Err(_) if self.container.status() == Status::Stopped => continue,
                    Err(e) => return Some(Err(e)),
                }
            }
            std::thread::sleep(self.every.min(Duration::from_millis(200)));
        }
    }
}

impl Container {
    /// The container's statistics (runc's `events --stats`).
    pub fn stats(&self) -> Result<Stats> {
        let status = self.status();
        if status == Status::Stopped {
            return Err(self.state_error(status, "container not running"));
        }
        let s = self.cgroup_handle()?.stats()?;
        let b = &s.blkio;
        Ok(Stats {
            cpu: Cpu {
                usage: CpuUsage {
                    total: s.cpu.usage.usage_total,
                    percpu: s.cpu.usage.per_core_usage_total.clone(),
                    percpu_kernel: s.cpu.usage.per_core_usage_kernel.clone(),
                    percpu_user: s.cpu.usage.per_core_usage_user.clone(),
                    kernel: s.cpu.usage.usage_kernel,
                    user: s.cpu.usage.usage_user,
                },
                throttling: Throttling {
                    periods: s.cpu.throttling.periods,
                    throttled_periods: s.cpu.throttling.throttled_periods,
                    throttled_time: s.cpu.throttling.throttled_time,
                },
            },
            memory: Memory {
                cache: s.memory.cache,
                usage: memory_entry(&s.memory.memory),
                swap: memory_entry(&s.memory.memswap),
                kernel: memory_entry(&s.memory.kernel),
                kernel_tcp: memory_entry(&s.memory.kernel_tcp),
                raw: s
                    .memory
                    .stats
                    .iter()
                    .map(|(k, v)| (k.clone(), *v))
                    .collect(),
            },
            pids: Pids {
                current: s.pids.current,
                limit: s.pids.limit,
            },
            blkio: Blkio {
                io_service_bytes_recursive: blkio(&b.service_bytes),
                io_serviced_recursive: blkio(&b.serviced),
                io_queued_recursive: blkio(&b.queued),
                io_service_time_recursive: blkio(&b.service_time),
                io_wait_time_recursive: blkio(&b.wait_time),
                io_merged_recursive: blkio(&b.merged),
                io_time_recursive: blkio(&b.time),
                sectors_recursive: blkio(&b.sectors),
            },
            hugetlb: s
                .hugetlb
                .iter()
                .map(|(size, h)| {
                    let e = Hugetlb {
                        usage: h.usage,
                        max_usage: h.max_usage,
                        failcnt: h.fail_count,
                    };
                    (size.clone(), e)
                })
                .collect(),
        })
    }

    /// OOM kills in the container's cgroup so far (an error when they
    /// cannot be read, never a silent 0).
    pub fn oom_kills(&self) -> Result<u64> {
        Ok(self.cgroup_handle()?.oom_kills()?)
    }

    /// The container's events, statistics every `every` (see [`Events`]).
    pub fn events(&self, every: Duration) -> Events<'_> {
        Events {
            container: self,
            every,
            next: Instant::now(),
            ooms: self.oom_kills().unwrap_or(0),
            done: false,
        }
    }
}

/// One event line as runc prints it: `{"type","id","data"}`.
pub fn event(kind: &str, id: &str, data: Option<Value>) -> Value {
    let mut e = json!({"type": kind, "id": id});
    if let Some(d) = data {
        e["data"] = d;
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeros_are_left_out_where_runc_leaves_them_out() {
        let s = Stats::default();
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["cpu"], json!({"usage": {"kernel": 0, "user": 0}}));
        assert_eq!(v["memory"]["usage"], json!({"limit": 0, "failcnt": 0}));
        assert_eq!(v["pids"], json!({}));
        assert_eq!(v["blkio"], json!({}));
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["cpu", "memory", "pids", "blkio", "hugetlb"]);
    }
}
