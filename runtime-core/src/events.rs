//! `events`: the container's cgroup statistics in runc's JSON shape
//! (containerd and monitoring tools parse it field by field), and OOM kills.

use serde_json::{json, Map, Value};

use crate::container::Container;
use crate::error::Result;
use crate::state::Status;

/// Drops zero numbers and empty objects/arrays, as Go's `omitempty` does
/// for the fields runc marks so.
fn omit_empty(v: Value) -> Option<Value> {
    match v {
        Value::Number(n) if n.as_u64() == Some(0) => None,
        Value::Array(a) if a.is_empty() => None,
        Value::Object(o) => {
            let o: Map<String, Value> = o
                .into_iter()
                .filter_map(|(k, v)| omit_empty(v).map(|v| (k, v)))
                .collect();
            (!o.is_empty()).then_some(Value::Object(o))
        }
        other => Some(other),
    }
}

fn memory_entry(m: &estiba_cgroups::stats::MemoryData) -> Value {
    // limit and failcnt are always there in runc's output.
    let mut e = omit_empty(json!({"usage": m.usage, "max": m.max_usage})).unwrap_or(json!({}));
    e["limit"] = json!(m.limit);
    e["failcnt"] = json!(m.fail_count);
    e
}

fn blkio(entries: &[estiba_cgroups::stats::BlkioDeviceStat]) -> Value {
    Value::Array(
        entries
            .iter()
            .map(|e| json!({"major": e.major, "minor": e.minor, "op": e.op_type.clone().unwrap_or_default(), "value": e.value}))
            .collect(),
    )
}

impl Container {
    /// The `data` of a runc `stats` event.
    pub fn stats(&self) -> Result<Value> {
        let status = self.status();
        if status == Status::Stopped {
            return Err(self.state_error(status, "container not running"));
        }
        let s = self.cgroup_handle()?.stats()?;
        let cpu = omit_empty(json!({
            "usage": {
                "total": s.cpu.usage.usage_total,
                "percpu": s.cpu.usage.per_core_usage_total,
                "percpu_kernel": s.cpu.usage.per_core_usage_kernel,
                "percpu_user": s.cpu.usage.per_core_usage_user,
            },
            "throttling": {
                "periods": s.cpu.throttling.periods,
                "throttledPeriods": s.cpu.throttling.throttled_periods,
                "throttledTime": s.cpu.throttling.throttled_time,
            }
        }))
        .unwrap_or(json!({}));
        let mut cpu = cpu;
        cpu["usage"]["kernel"] = json!(s.cpu.usage.usage_kernel);
        cpu["usage"]["user"] = json!(s.cpu.usage.usage_user);
        // Keys in runc's order (serde_json keeps insertion order here).
        let mut memory = Map::new();
        if s.memory.cache > 0 {
            memory.insert("cache".into(), json!(s.memory.cache));
        }
        memory.insert("usage".into(), memory_entry(&s.memory.memory));
        memory.insert("swap".into(), memory_entry(&s.memory.memswap));
        memory.insert("kernel".into(), memory_entry(&s.memory.kernel));
        memory.insert("kernelTCP".into(), memory_entry(&s.memory.kernel_tcp));
        let mut memory = Value::Object(memory);
        if !s.memory.stats.is_empty() {
            memory["raw"] = json!(s.memory.stats);
        }
        let hugetlb: Map<String, Value> = s
            .hugetlb
            .iter()
            .map(|(size, h)| {
                let mut e =
                    omit_empty(json!({"usage": h.usage, "max": h.max_usage})).unwrap_or(json!({}));
                e["failcnt"] = json!(h.fail_count);
                (size.clone(), e)
            })
            .collect();
        let b = &s.blkio;
        let blkio = omit_empty(json!({
            "ioServiceBytesRecursive": blkio(&b.service_bytes),
            "ioServicedRecursive": blkio(&b.serviced),
            "ioQueuedRecursive": blkio(&b.queued),
            "ioServiceTimeRecursive": blkio(&b.service_time),
            "ioWaitTimeRecursive": blkio(&b.wait_time),
            "ioMergedRecursive": blkio(&b.merged),
            "ioTimeRecursive": blkio(&b.time),
            "sectorsRecursive": blkio(&b.sectors),
        }))
        .unwrap_or(json!({}));
        Ok(json!({
            "cpu": cpu,
            "memory": memory,
            "pids": omit_empty(json!({"current": s.pids.current, "limit": s.pids.limit})).unwrap_or(json!({})),
            "blkio": blkio,
            "hugetlb": hugetlb,
        }))
    }

    /// OOM kills in the container's cgroup so far.
    pub fn oom_kills(&self) -> u64 {
        self.cgroup_handle().map(|c| c.oom_kills()).unwrap_or(0)
    }
}

/// One event line as runc prints it.
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
    fn omitempty_drops_zeros_and_empties_only() {
        let v = omit_empty(json!({"a": 0, "b": 3, "c": [], "d": {"e": 0}, "f": "x"})).unwrap();
        assert_eq!(v, json!({"b": 3, "f": "x"}));
    }
}
