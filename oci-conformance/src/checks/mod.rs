//! The spec-derived checks. Each is named after the requirement it tests:
//! `<document>: <requirement>`, the words close to the spec's own.

use std::process::Output;

use serde_json::Value;

use crate::harness::{ensure, fail, text, Bundle, Ctx, Outcome};

mod config;
mod hooks;
mod lifecycle;
mod linux;
pub use linux::own_ns;
mod mounts;
mod resources;

pub struct Check {
    pub name: &'static str,
    pub run: fn(&Ctx) -> Outcome,
}

pub fn all() -> Vec<Check> {
    let mut v = vec![];
    v.extend(lifecycle::checks());
    v.extend(hooks::checks());
    v.extend(config::checks());
    v.extend(mounts::checks());
    v.extend(linux::checks());
    v.extend(resources::checks());
    v
}

/// `create` must fail, say so in one line, and leave nothing behind.
pub fn create_fails(b: &mut Bundle) -> Outcome {
    let out = b.create();
    ensure(!out.status.success(), || {
        "create succeeded; the spec requires an error".into()
    })?;
    nothing_left(b, &out)
}

/// After a failed operation: one line on stderr, no container, state dir,
/// cgroup, mount or process left.
pub fn nothing_left(b: &Bundle, out: &Output) -> Outcome {
    let err = text(&out.stderr);
    let lines = err.lines().filter(|l| !l.trim().is_empty()).count();
    ensure(lines == 1, || {
        format!("error output should be one line, got {lines}: {err:?}")
    })?;
    ensure(b.state().is_none(), || {
        "`state` still answers for the container".into()
    })?;
    let left = crate::cgroup::existing(&b.cgroups_path());
    ensure(left.is_empty(), || format!("cgroup left behind: {left:?}"))?;
    let in_root: Vec<_> = std::fs::read_dir(&b.ctx.root)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(&b.id))
        .map(|e| e.path())
        .collect();
    ensure(in_root.is_empty(), || {
        format!("state left behind: {in_root:?}")
    })?;
    let dir = b.dir.display().to_string();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    ensure(!mounts.contains(&dir), || {
        format!("a mount under {dir} left behind")
    })?;
    let procs = processes_in(&b.rootfs());
    ensure(procs.is_empty(), || {
        format!("processes left behind: {procs:?}")
    })
}

/// Pids whose root is `rootfs` (the container's processes).
pub fn processes_in(rootfs: &std::path::Path) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/root")).is_ok_and(|r| r == rootfs))
        .collect()
}

/// A report's `items` entry for `key`.
pub fn item<'a>(r: &'a Value, key: &str) -> &'a Value {
    &r["items"][key]
}

/// An operation that must fail and leave the container in `status`.
pub fn op_fails_keeps(b: &Bundle, args: &[&str], status: &str) -> Outcome {
    let out = b.op(args);
    ensure(!out.status.success(), || {
        format!("`{}` succeeded; the spec requires an error", args.join(" "))
    })?;
    let now = b.status();
    ensure(now == status, || {
        format!("container went from {status:?} to {now:?}")
    })
}

/// Reads one field of /proc/self/status from a report.
pub fn status_field(r: &Value, field: &str) -> String {
    r["status"][field].as_str().unwrap_or_default().to_string()
}

/// A capability set (hex mask from /proc/self/status) as names.
pub fn cap_mask(r: &Value, field: &str) -> Result<u64, crate::harness::Miss> {
    u64::from_str_radix(&status_field(r, field), 16)
        .or_else(|_| fail(format!("{field} missing from /proc/self/status")))
}
