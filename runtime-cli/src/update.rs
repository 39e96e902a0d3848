//! `update`'s flags (or `--resources`) as `linux.resources`, parsed as runc
//! parses them: sizes with units, -1 for unlimited, obsolete kernel memory
//! flags ignored with a warning, device rules never changed.

use serde_json::{json, Map, Value};

use crate::cli::UpdateFlags;
use crate::Failure;

/// A size as runc takes it (docker's RAMInBytes): a number with an
/// optional k/m/g/t/p unit in powers of 1024 and an optional "i"/"b"
/// ("512k", "1.5g", "10MiB"), or -1 for unlimited.
pub fn ram_in_bytes(s: &str) -> Result<i64, String> {
    let t = s.trim();
    if t == "-1" {
        return Ok(-1);
    }
    let bad = || format!("invalid size: {s:?}");
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let unit = unit.trim_start().to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let shift = match unit {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        _ => return Err(bad()),
    };
    // An "i" or "b" alone is not a unit.
    if unit.is_empty() && t.len() != split && !t[split..].eq_ignore_ascii_case("b") {
        return Err(bad());
    }
    Ok((n * (1u64 << shift) as f64) as i64)
}

fn uint(flag: &str, v: &str) -> Result<u64, Failure> {
    v.parse()
        .map_err(|e| format!("invalid value for {flag}: {e}").into())
}

fn int(flag: &str, v: &str) -> Result<i64, Failure> {
    v.parse()
        .map_err(|e| format!("invalid value for {flag}: {e}").into())
}

/// The resources `update` changes. Devices are never among them: runc's
/// update leaves the device rules alone (a device plugin may have added
/// its own), also when `--resources` carries them.
pub fn resources(f: &UpdateFlags) -> Result<oci_spec::runtime::LinuxResources, Failure> {
    let mut r = match &f.resources {
        Some(path) => from_file(path)?,
        None => from_flags(f)?,
    };
    if let Some(obj) = r.as_object_mut() {
        obj.remove("devices");
    }
    if r.as_object().is_none_or(|o| o.is_empty()) {
        return Err("update: nothing to change (give --resources or a limit flag)".into());
    }
    // runc's fix-up: an unlimited memory limit without a swap limit would
    // be refused for the swap limit left above it.
    if r["memory"]["limit"] == json!(-1) && r["memory"].get("swap").is_none() {
        r["memory"]["swap"] = json!(-1);
    }
    let kernel = r["memory"]
        .as_object_mut()
        .map(|m| m.remove("kernel").is_some() | m.remove("kernelTCP").is_some());
    if kernel == Some(true) {
        crate::logging::warning("Kernel memory settings are ignored and will be removed");
    }
    if r["memory"].as_object().is_some_and(|m| m.is_empty()) {
        if let Some(obj) = r.as_object_mut() {
            obj.remove("memory");
        }
    }
    serde_json::from_value(r).map_err(|e| format!("update: {e}").into())
}

fn from_file(path: &std::path::Path) -> Result<Value, Failure> {
    let text = if path.as_os_str() == "-" {
        let mut s = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut s)
            .map_err(|e| format!("read stdin: {e}"))?;
        s
    } else {
        estiba_core::read_input(path)?
    };
    serde_json::from_slice(&text).map_err(|e| format!("--resources: {e}").into())
}

fn from_flags(f: &UpdateFlags) -> Result<Value, Failure> {
    if f.l3_cache_schema.is_some() {
        return Err("Intel RDT/CAT: l3 cache schema is not enabled".into());
    }
    if f.mem_bw_schema.is_some() {
        return Err("Intel RDT/MBA: memory bandwidth schema is not enabled".into());
    }
    let mut r = Map::new();
    let mut memory = Map::new();
    for (flag, key, v) in [
        ("memory", "limit", &f.memory),
        ("memory-swap", "swap", &f.memory_swap),
        ("memory-reservation", "reservation", &f.memory_reservation),
        ("kernel-memory", "kernel", &f.kernel_memory),
        ("kernel-memory-tcp", "kernelTCP", &f.kernel_memory_tcp),
    ] {
        if let Some(v) = v {
            let n = ram_in_bytes(v).map_err(|e| format!("invalid value for {flag}: {e}"))?;
            memory.insert(key.into(), json!(n));
        }
    }
    if !memory.is_empty() {
        r.insert("memory".into(), Value::Object(memory));
    }
    let mut cpu = Map::new();
    for (flag, key, v) in [
        ("cpu-share", "shares", &f.cpu_share),
        ("cpu-period", "period", &f.cpu_period),
        ("cpu-rt-period", "realtimePeriod", &f.cpu_rt_period),
        ("cpu-burst", "burst", &f.cpu_burst),
    ] {
        if let Some(v) = v {
            cpu.insert(key.into(), json!(uint(flag, v)?));
        }
    }
    for (flag, key, v) in [
        ("cpu-quota", "quota", &f.cpu_quota),
        ("cpu-rt-runtime", "realtimeRuntime", &f.cpu_rt_runtime),
        ("cpu-idle", "idle", &f.cpu_idle),
    ] {
        if let Some(v) = v {
            cpu.insert(key.into(), json!(int(flag, v)?));
        }
    }
    for (key, v) in [("cpus", &f.cpuset_cpus), ("mems", &f.cpuset_mems)] {
        if let Some(v) = v {
            cpu.insert(key.into(), json!(v));
        }
    }
    if !cpu.is_empty() {
        r.insert("cpu".into(), Value::Object(cpu));
    }
    if let Some(v) = f.pids_limit {
        r.insert("pids".into(), json!({"limit": v}));
    }
    // 0 is runc's "not given".
    if let Some(v) = f.blkio_weight.filter(|w| *w != 0) {
        r.insert("blockIO".into(), json!({"weight": v}));
    }
    Ok(Value::Object(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_runc_reads_them() {
        for (s, want) in [
            ("1024", 1024),
            ("-1", -1),
            ("512k", 512 << 10),
            ("512K", 512 << 10),
            ("10m", 10 << 20),
            ("10MB", 10 << 20),
            ("10MiB", 10 << 20),
            ("1.5g", 3 << 29),
            ("2 g", 2 << 30),
            ("100b", 100),
        ] {
            assert_eq!(ram_in_bytes(s), Ok(want), "{s}");
        }
        for s in ["", "x", "10x", "-2", "1i", "k"] {
            assert!(ram_in_bytes(s).is_err(), "{s}");
        }
    }
}
