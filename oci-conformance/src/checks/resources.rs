//! config-linux.md "Control groups": cgroupsPath and resources, read from
//! the host while the container exists.

use serde_json::{json, Value};

use super::{create_fails, Check};
use crate::cgroup;
use crate::harness::{ensure, skip, Bundle, Ctx, Outcome};

pub fn checks() -> Vec<Check> {
    vec![
        Check { name: "config-linux.md cgroupsPath: an absolute path is relative to the cgroups mount point", run: path },
        Check { name: "config-linux.md resources: memory limit, reservation, swappiness (v1)", run: memory },
        Check { name: "config-linux.md resources: pids limit", run: pids },
        Check { name: "config-linux.md resources: pids limit 0 SHOULD be treated as a limit of 0", run: pids_zero },
        Check { name: "config-linux.md resources: memory disableOOMKiller", run: oom_killer },
        Check { name: "config-linux.md resources: cpu shares, quota, period", run: cpu },
        Check { name: "config-linux.md resources: cpuset cpus and mems", run: cpuset },
        Check { name: "config-linux.md resources: devices allow list, in the listed order", run: devices },
        Check { name: "config-linux.md resources: devices rules are enforced (denied: EPERM at open)", run: devices_enforced },
        Check { name: "config-linux.md resources: blockIO weight", run: blkio },
        Check { name: "config-linux.md resources: hugepageLimits", run: hugetlb },
        Check { name: "config-linux.md resources: network classID", run: net_cls },
        Check { name: "config-linux.md unified: cgroup v2 files are written", run: unified },
        Check {
            name: "config-linux.md unified: a key whose controller is not present MUST generate an error",
            run: unified_missing,
        },
        Check { name: "runtime.md create: a resource the kernel rejects MUST generate an error", run: rejected },
    ]
}

/// Creates the container with `resources`; `check` reads the cgroup.
fn with_resources(ctx: &Ctx, resources: Value, check: impl FnOnce(&Bundle) -> Outcome) -> Outcome {
    let mut b = ctx.bundle(&["sleep", "30"]);
    b.config["linux"]["resources"] = resources;
    b.created()?;
    check(&b)
}

fn need(controller: &str) -> Outcome {
    match cgroup::dir(controller, "/") {
        Some(_) => Ok(()),
        None => skip(format!("no {controller} controller on this host")),
    }
}

fn file_is(b: &Bundle, controller: &str, file: &str, want: &str) -> Outcome {
    let got = cgroup::read(controller, &b.cgroups_path(), file);
    ensure(got.as_deref() == Some(want), || {
        format!("{file} is {got:?}, expected {want:?}")
    })
}

fn path(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["sleep", "30"]);
    b.created()?;
    let pid = b
        .state()
        .and_then(|s| s["pid"].as_i64())
        .unwrap_or(0)
        .to_string();
    let procs = cgroup::read("pids", &b.cgroups_path(), "cgroup.procs").unwrap_or_default();
    ensure(procs.lines().any(|l| l == pid), || {
        format!(
            "pid {pid} is not in {}/cgroup.procs ({procs:?})",
            b.cgroups_path()
        )
    })
}

fn memory(ctx: &Ctx) -> Outcome {
    need("memory")?;
    // Swappiness is a v1 knob: cgroup v2 has no file for it.
    let res = if cgroup::v2() {
        json!({ "memory": { "limit": 67108864, "reservation": 33554432 } })
    } else {
        json!({ "memory": { "limit": 67108864, "reservation": 33554432, "swappiness": 30 } })
    };
    with_resources(ctx, res, |b| {
        if cgroup::v2() {
            file_is(b, "memory", "memory.max", "67108864")?;
            file_is(b, "memory", "memory.low", "33554432")
        } else {
            file_is(b, "memory", "memory.limit_in_bytes", "67108864")?;
            file_is(b, "memory", "memory.soft_limit_in_bytes", "33554432")?;
            file_is(b, "memory", "memory.swappiness", "30")
        }
    })
}

fn pids(ctx: &Ctx) -> Outcome {
    need("pids")?;
    with_resources(ctx, json!({ "pids": { "limit": 77 } }), |b| {
        file_is(b, "pids", "pids.max", "77")
    })
}

fn cpu(ctx: &Ctx) -> Outcome {
    need("cpu")?;
    let res = json!({ "cpu": { "shares": 512, "quota": 50000, "period": 100000 } });
    with_resources(ctx, res, |b| {
        if cgroup::v2() {
            file_is(b, "cpu", "cpu.max", "50000 100000")
        } else {
            file_is(b, "cpu", "cpu.shares", "512")?;
            file_is(b, "cpu", "cpu.cfs_quota_us", "50000")?;
            file_is(b, "cpu", "cpu.cfs_period_us", "100000")
        }
    })
}

fn cpuset(ctx: &Ctx) -> Outcome {
    need("cpuset")?;
    let res = json!({ "cpu": { "cpus": "0", "mems": "0" } });
    with_resources(ctx, res, |b| {
        file_is(b, "cpuset", "cpuset.cpus", "0")?;
        file_is(b, "cpuset", "cpuset.mems", "0")
    })
}

fn devices(ctx: &Ctx) -> Outcome {
    if cgroup::v2() {
        return skip("cgroup v2 device rules are an eBPF program; not readable as a list");
    }
    need("devices")?;
    let res = json!({ "devices": [
        { "allow": false, "access": "rwm" },
        { "allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw" }
    ] });
    with_resources(ctx, res, |b| {
        let list = cgroup::read("devices", &b.cgroups_path(), "devices.list").unwrap_or_default();
        ensure(list.lines().any(|l| l.starts_with("c 1:3 rw")), || {
            format!("devices.list lacks c 1:3 rw: {list:?}")
        })?;
        ensure(!list.contains("a *:* rwm"), || {
            format!("everything is still allowed: {list:?}")
        })
    })
}

fn blkio(ctx: &Ctx) -> Outcome {
    let Some(dir) = cgroup::dir(if cgroup::v2() { "io" } else { "blkio" }, "/") else {
        return skip("no blkio/io controller on this host");
    };
    let file = [
        "blkio.weight",
        "blkio.bfq.weight",
        "io.bfq.weight",
        "io.weight",
    ]
    .into_iter()
    .find(|f| dir.join(f).exists());
    let Some(file) = file else {
        return skip("no I/O weight file here (no BFQ scheduler)");
    };
    let res = json!({ "blockIO": { "weight": 300 } });
    with_resources(ctx, res, |b| {
        let ctrl = if cgroup::v2() { "io" } else { "blkio" };
        let got = cgroup::read(ctrl, &b.cgroups_path(), file).unwrap_or_default();
        ensure(got.split_whitespace().any(|w| w == "300"), || {
            format!("{file}: {got:?}")
        })
    })
}

fn hugetlb(ctx: &Ctx) -> Outcome {
    need("hugetlb")?;
    let res = json!({ "hugepageLimits": [{ "pageSize": "2MB", "limit": 4194304 }] });
    with_resources(ctx, res, |b| {
        let f = if cgroup::v2() {
            "hugetlb.2MB.max"
        } else {
            "hugetlb.2MB.limit_in_bytes"
        };
        file_is(b, "hugetlb", f, "4194304")
    })
}

fn net_cls(ctx: &Ctx) -> Outcome {
    need("net_cls")?;
    with_resources(ctx, json!({ "network": { "classID": 1048577 } }), |b| {
        file_is(b, "net_cls", "net_cls.classid", "1048577")
    })
}

fn unified(ctx: &Ctx) -> Outcome {
    if !cgroup::v2() {
        return skip("this host is cgroup v1 (hybrid); unified applies to v2 only");
    }
    with_resources(ctx, json!({ "unified": { "pids.max": "42" } }), |b| {
        file_is(b, "pids", "pids.max", "42")
    })
}

/// On v2 a controller no kernel has; on a v1 host (hybrid included: its
/// v2 mount carries no memory controller) any v2 file.
fn unified_missing(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["sleep", "30"]);
    let key = if cgroup::v2() {
        "nosuchcontroller.max"
    } else {
        "memory.high"
    };
    b.config["linux"]["resources"] = json!({ "unified": { key: "1" } });
    create_fails(&mut b)
}

fn rejected(ctx: &Ctx) -> Outcome {
    need("cpuset")?;
    let mut b = ctx.bundle(&["sleep", "30"]);
    b.config["linux"]["resources"] = json!({ "cpu": { "cpus": "9999" } });
    create_fails(&mut b)
}

fn pids_zero(ctx: &Ctx) -> Outcome {
    need("pids")?;
    with_resources(ctx, json!({ "pids": { "limit": 0 } }), |b| {
        file_is(b, "pids", "pids.max", "0")
    })
}

fn oom_killer(ctx: &Ctx) -> Outcome {
    need("memory")?;
    if cgroup::v2() {
        return skip("cgroup v2 has no switch for the OOM killer");
    }
    let res = json!({ "memory": { "limit": 67108864, "disableOOMKiller": true } });
    with_resources(ctx, res, |b| {
        let ctl =
            cgroup::read("memory", &b.cgroups_path(), "memory.oom_control").unwrap_or_default();
        ensure(ctl.lines().any(|l| l == "oom_kill_disable 1"), || {
            format!("memory.oom_control: {ctl:?}")
        })
    })
}

fn devices_enforced(ctx: &Ctx) -> Outcome {
    // The cgroup check comes before the driver: a denied open is EPERM, an
    // allowed one reaches the driver (none here: ENXIO).
    let mut b = ctx.bundle(&[
        "report",
        "read:/dev/oc-allowed",
        "write:/dev/oc-allowed",
        "read:/dev/oc-denied",
    ]);
    b.config["linux"]["devices"] = json!([
        { "path": "/dev/oc-allowed", "type": "b", "major": 7, "minor": 250 },
        { "path": "/dev/oc-denied", "type": "b", "major": 7, "minor": 251 }
    ]);
    b.config["linux"]["resources"] = json!({ "devices": [
        { "allow": false, "access": "rwm" },
        { "allow": true, "type": "b", "major": 7, "minor": 250, "access": "r" }
    ] });
    let r = b.report()?;
    let errno = |k: &str| r["items"][k]["errno"].as_i64().unwrap_or(0);
    ensure(errno("read:/dev/oc-allowed") != libc::EPERM as i64, || {
        format!(
            "reading an allowed device: {}",
            r["items"]["read:/dev/oc-allowed"]
        )
    })?;
    ensure(errno("write:/dev/oc-allowed") == libc::EPERM as i64, || {
        format!(
            "writing a read-only device: {}",
            r["items"]["write:/dev/oc-allowed"]
        )
    })?;
    ensure(errno("read:/dev/oc-denied") == libc::EPERM as i64, || {
        format!(
            "reading a denied device: {}",
            r["items"]["read:/dev/oc-denied"]
        )
    })
}
