//! The systemd cgroup driver (`--systemd-cgroup`), on cgroup v1 and v2:
//! systemd owns the container's cgroup as a transient scope unit, made
//! through its D-Bus API with the init's pid in it, `Delegate=yes` so the
//! cgroup below is ours to write, and the limits systemd itself knows as
//! unit properties (it rewrites those on reload; the rest is written to the
//! cgroup files as without systemd). Stopping the unit on delete removes
//! the cgroup systemd made.
//!
//! libcgroups' systemd manager is cgroup-v2-only and its D-Bus client is
//! private; this driver is ours on both.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxResources};

use crate::dbus::{Connection, DbusError, Target, Value};
use crate::{Error, Result};

/// A scope (or, for a name ending in `.slice`, a slice) unit and where its
/// cgroup lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// The unit's name (`docker-ID.scope`, `machine.slice`).
    pub name: String,
    /// The slice unit it goes in (empty for a slice unit itself).
    pub slice: String,
}

fn invalid(path: &str, reason: &'static str) -> Error {
    Error::InvalidPath {
        path: PathBuf::from(path),
        reason,
    }
}

/// `slice:prefix:name` (runc's form) to the cgroup path systemd gives the
/// unit, e.g. `system.slice:estiba:c1` → `/system.slice/estiba-c1.scope`.
/// An empty `cgroups_path` is `system.slice:estiba:<id>`.
pub fn container_path(cgroups_path: Option<&str>, id: &str) -> Result<PathBuf> {
    let default = format!("system.slice:estiba:{id}");
    let raw = cgroups_path.filter(|p| !p.is_empty()).unwrap_or(&default);
    let parts: Vec<&str> = raw.split(':').collect();
    let [slice, prefix, name] = parts[..] else {
        return Err(invalid(
            raw,
            "the systemd cgroup driver expects \"slice:prefix:name\"",
        ));
    };
    if name.is_empty() {
        return Err(invalid(raw, "the unit name (after the last ':') is empty"));
    }
    if [slice, prefix, name].iter().any(|p| p.contains('/')) {
        return Err(invalid(
            raw,
            "systemd unit and slice names cannot contain '/'",
        ));
    }
    let slice = if slice.is_empty() {
        "system.slice"
    } else {
        slice
    };
    let mut path = expand_slice(slice).ok_or_else(|| invalid(raw, "not a valid slice name"))?;
    if name.ends_with(".slice") {
        // The unit is a slice itself (a pod's, as kubelet asks): it lives
        // at its own expanded path, which must be below `slice`.
        let own = expand_slice(name).ok_or_else(|| invalid(raw, "not a valid slice name"))?;
        if !own.starts_with(&path) {
            return Err(invalid(raw, "the slice is not inside the parent slice"));
        }
        return Ok(own);
    }
    let unit = if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    path.push(unit);
    Ok(path)
}

/// `a-b-c.slice` → `/a.slice/a-b.slice/a-b-c.slice`; `-.slice` → `/`.
fn expand_slice(slice: &str) -> Option<PathBuf> {
    let base = slice.strip_suffix(".slice")?;
    let mut path = PathBuf::from("/");
    if base == "-" {
        return Some(path);
    }
    if base.is_empty() || base.starts_with('-') || base.ends_with('-') || base.contains("--") {
        return None;
    }
    let mut prefix = String::new();
    for part in base.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        path.push(format!("{prefix}.slice"));
    }
    Some(path)
}

impl Unit {
    /// The unit a cgroup path made by [`container_path`] belongs to.
    pub fn of_path(path: &Path) -> Result<Unit> {
        let bad = || invalid(&path.display().to_string(), "not a systemd unit's cgroup");
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| n.ends_with(".scope") || n.ends_with(".slice"))
            .ok_or_else(bad)?
            .to_string();
        let slice = if name.ends_with(".slice") {
            String::new()
        } else {
            match path
                .parent()
                .and_then(|p| p.file_name())
                .and_then(|n| n.to_str())
            {
                Some(s) if s.ends_with(".slice") => s.to_string(),
                None => "-.slice".to_string(),
                Some(_) => return Err(bad()),
            }
        };
        Ok(Unit { name, slice })
    }
}

const MANAGER: Target<'static> = Target {
    destination: "org.freedesktop.systemd1",
    path: "/org/freedesktop/systemd1",
    interface: "org.freedesktop.systemd1.Manager",
};

/// How long systemd gets to act on a start or stop (runc gives it 30 s).
const SYSTEMD_TIMEOUT: Duration = Duration::from_secs(30);

fn connect() -> Result<Connection> {
    // As systemctl does for root: systemd's own socket first (no bus daemon
    // in between, and there even where dbus-daemon is not), else the bus.
    let private = Path::new("/run/systemd/private");
    let bus = std::env::var_os("DBUS_SYSTEM_BUS_ADDRESS")
        .and_then(|a| {
            a.to_str()
                .and_then(|a| a.strip_prefix("unix:path="))
                .map(|p| PathBuf::from(p.split(',').next().unwrap_or(p)))
        })
        .unwrap_or_else(|| PathBuf::from("/run/dbus/system_bus_socket"));
    let first = if nix::unistd::geteuid().is_root() && private.exists() {
        Connection::open(private, false, SYSTEMD_TIMEOUT)
    } else {
        Err(DbusError::Protocol("not root".into()))
    };
    first
        .or_else(|_| Connection::open(&bus, true, SYSTEMD_TIMEOUT))
        .map_err(|e| Error::Systemd(format!("cannot reach systemd ({e}); is it running?")))
}

fn call_err(e: DbusError) -> Error {
    Error::Systemd(e.to_string())
}

fn is_error(e: &DbusError, name: &str) -> bool {
    matches!(e, DbusError::Call { name: n, .. } if n.ends_with(name))
}

/// The limits systemd knows, as unit properties: it writes them itself on
/// every reload, so they must agree with what we write to the files.
pub(crate) fn resource_properties(r: Option<&LinuxResources>, v2: bool) -> Vec<Value> {
    let mut props = vec![];
    let Some(r) = r else { return props };
    let u64_prop = |name: &str, v: u64| Value::property(name, Value::U64(v));
    if let Some(m) = r.memory() {
        if let Some(limit) = m.limit() {
            let v = if limit < 0 { u64::MAX } else { limit as u64 };
            props.push(u64_prop(if v2 { "MemoryMax" } else { "MemoryLimit" }, v));
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(shares) = c.shares().filter(|s| *s > 0) {
            if v2 {
                props.push(u64_prop("CPUWeight", shares_to_weight(shares)));
            } else {
                props.push(u64_prop("CPUShares", shares));
            }
        }
        if let Some(period) = c.period().filter(|p| *p > 0) {
            props.push(u64_prop("CPUQuotaPeriodUSec", period));
        }
        if let Some(quota) = c.quota() {
            let period = c.period().filter(|p| *p > 0).unwrap_or(100_000);
            let per_sec = if quota > 0 {
                // systemd counts in whole 10 ms of CPU per second: round up.
                let us = (quota as u64) * 1_000_000 / period;
                us.div_ceil(10_000) * 10_000
            } else {
                u64::MAX
            };
            props.push(u64_prop("CPUQuotaPerSecUSec", per_sec));
        }
    }
    if let Some(p) = r.pids() {
        if p.limit() < 0 {
            props.push(u64_prop("TasksMax", u64::MAX));
        } else if p.limit() > 0 {
            props.push(u64_prop("TasksMax", p.limit() as u64));
        }
    }
    props
}

/// The device rules as systemd's `DevicePolicy`/`DeviceAllow`. systemd
/// writes its own device policy to the cgroup whenever it realizes the
/// unit (v1: `devices.allow a` under the default policy, undoing ours); a
/// strict policy with the same allow list keeps the container's rules.
/// The list is what the rules leave allowed, starting from a deny-all
/// (runc's meaning, as for v1 and v2): an allow-all list is the default
/// policy, and an allow-all with denials in it cannot be said.
fn device_properties(rules: &[LinuxDeviceCgroup], proc_devices: &str) -> Result<Vec<Value>> {
    let Some(allowed) = crate::devices::allow_list(rules)? else {
        return Ok(vec![Value::property(
            "DevicePolicy",
            Value::Str("auto".into()),
        )]);
    };
    let mut entries = vec![];
    for (r, access) in &allowed {
        let kinds: &[&str] = match r.typ {
            None => &["char", "block"],
            Some(t) if t == crate::devfilter::DEV_BLOCK => &["block"],
            Some(_) => &["char"],
        };
        for kind in kinds {
            let spec = match (r.typ.and(r.major), r.typ.and(r.minor)) {
                (None, _) => Some(format!("{kind}-*")),
                (Some(major), None) => {
                    driver_name(proc_devices, kind, major).map(|n| format!("{kind}-{n}"))
                }
                (Some(major), Some(minor)) => Some(format!("/dev/{kind}/{major}:{minor}")),
            };
            // A major no driver has: nothing to open there anyway.
            if let Some(spec) = spec {
                entries.push(Value::Struct(vec![
                    Value::Str(spec),
                    Value::Str(access.clone()),
                ]));
            }
        }
    }
    Ok(vec![
        Value::property("DevicePolicy", Value::Str("strict".into())),
        // An empty list first: systemd appends to DeviceAllow otherwise.
        Value::property("DeviceAllow", Value::Array("(ss)".into(), vec![])),
        Value::property("DeviceAllow", Value::Array("(ss)".into(), entries)),
    ])
}

/// The driver /proc/devices names for a major number ("char" or "block").
fn driver_name(proc_devices: &str, kind: &str, major: i64) -> Option<String> {
    let header = if kind == "block" {
        "Block devices:"
    } else {
        "Character devices:"
    };
    proc_devices
        .lines()
        .skip_while(|l| l.trim() != header)
        .skip(1)
        .take_while(|l| !l.trim().is_empty() && !l.ends_with(':'))
        .find_map(|l| {
            let (n, name) = l.trim().split_once(' ')?;
            (n.parse::<i64>().ok()? == major).then(|| name.trim().to_string())
        })
}

fn devices_of(r: Option<&LinuxResources>) -> Result<Vec<Value>> {
    let rules = r.and_then(|r| r.devices().as_deref()).unwrap_or_default();
    let proc_devices = crate::read_text("/proc/devices").unwrap_or_default();
    device_properties(rules, &proc_devices)
}

/// cpu.shares [2, 262144] as a v2 cpu.weight [1, 10000]: the quadratic
/// mapping on log2(shares) that runc 1.3, crun and libcgroups (which
/// writes the file) use, so the default 1024 is the default weight 100;
/// systemd's CPUWeight must say the same or a reload would change it.
fn shares_to_weight(shares: u64) -> u64 {
    if shares <= 2 {
        return 1;
    }
    if shares >= 262_144 {
        return 10_000;
    }
    let l = (shares as f64).log2();
    let weight = 10f64.powf((l * l + 125.0 * l) / 612.0 - 7.0 / 34.0).ceil();
    (weight as u64).clamp(1, 10_000)
}

/// Starts the unit with `pid` in it and waits until systemd has moved it
/// there.
pub fn start(unit: &Unit, pid: i32, resources: Option<&LinuxResources>, v2: bool) -> Result<()> {
    let mut props = vec![
        Value::property(
            "Description",
            Value::Str(format!("estiba container {}", unit.name)),
        ),
        Value::property("Delegate", Value::Bool(true)),
        Value::property("DefaultDependencies", Value::Bool(false)),
        Value::property("MemoryAccounting", Value::Bool(true)),
        Value::property("CPUAccounting", Value::Bool(true)),
        Value::property("TasksAccounting", Value::Bool(true)),
        Value::property(
            if v2 {
                "IOAccounting"
            } else {
                "BlockIOAccounting"
            },
            Value::Bool(true),
        ),
    ];
    if !unit.slice.is_empty() {
        props.push(Value::property("Slice", Value::Str(unit.slice.clone())));
    }
    if unit.name.ends_with(".scope") {
        props.push(Value::property(
            "PIDs",
            Value::Array("u".into(), vec![Value::U32(pid as u32)]),
        ));
    }
    props.extend(resource_properties(resources, v2));
    props.extend(devices_of(resources)?);
    let args = [
        Value::Str(unit.name.clone()),
        Value::Str("replace".into()),
        Value::Array("(sv)".into(), props),
        Value::Array("(sa(sv))".into(), vec![]),
    ];
    let mut c = connect()?;
    let job = match c.call(&MANAGER, "StartTransientUnit", &args) {
        Ok(job) => job,
        Err(e) if is_error(&e, "UnitExists") => {
            // A failed unit of an earlier container of this name lingers
            // until reset; one that is still active is a real conflict.
            let _ = c.call(&MANAGER, "ResetFailedUnit", &args[..1]);
            c.call(&MANAGER, "StartTransientUnit", &args).map_err(|e| {
                if is_error(&e, "UnitExists") {
                    Error::Systemd(format!("unit {} already exists", unit.name))
                } else {
                    call_err(e)
                }
            })?
        }
        Err(e) => return Err(call_err(e)),
    };
    if unit.name.ends_with(".scope") {
        let job = job.string().unwrap_or_default();
        wait_until_in_unit(pid, &unit.name, &job)?;
    }
    Ok(())
}

/// systemd runs the start job after answering: the pid is in the unit's
/// cgroup once /proc/<pid>/cgroup says so.
fn wait_until_in_unit(pid: i32, name: &str, job: &str) -> Result<()> {
    let deadline = Instant::now() + SYSTEMD_TIMEOUT;
    let needle = format!("/{name}");
    loop {
        let text = crate::read_text(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        let placed = text.lines().any(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrl, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or(""));
            (ctrl.is_empty() || ctrl == "name=systemd") && path.ends_with(&needle)
        });
        if placed {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::Systemd(format!(
                "systemd did not move pid {pid} into {name} within {} s (job {job})",
                SYSTEMD_TIMEOUT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// `update`: the properties systemd knows, changed at runtime.
pub fn set_properties(unit: &Unit, resources: &LinuxResources, v2: bool) -> Result<()> {
    let mut props = resource_properties(Some(resources), v2);
    if resources.devices().is_some() {
        props.extend(devices_of(Some(resources))?);
    }
    if props.is_empty() {
        return Ok(());
    }
    let args = [
        Value::Str(unit.name.clone()),
        Value::Bool(true),
        Value::Array("(sv)".into(), props),
    ];
    connect()?
        .call(&MANAGER, "SetUnitProperties", &args)
        .map(|_| ())
        .map_err(call_err)
}

/// Stops the unit (a unit already gone is fine) and waits until systemd
/// has removed its cgroup `dir`.
pub fn stop(unit: &Unit, dir: Option<&Path>) -> Result<()> {
    // No systemd to reach: no unit of it left to stop either (its cgroup,
    // if any, is removed with the others).
    let Ok(mut c) = connect() else {
        return Ok(());
    };
    let name = [Value::Str(unit.name.clone())];
    let args = [name[0].clone(), Value::Str("replace".into())];
    match c.call(&MANAGER, "StopUnit", &args) {
        Ok(_) => {}
        Err(e) if is_error(&e, "NoSuchUnit") => {}
        Err(e) => return Err(call_err(e)),
    }
    if let Some(dir) = dir {
        let deadline = Instant::now() + SYSTEMD_TIMEOUT;
        while dir.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    // A scope whose processes were killed can end "failed"; it would
    // linger in systemctl's list until reset.
    let _ = c.call(&MANAGER, "ResetFailedUnit", &name);
    // systemd unloads the stopped unit a moment later; until then a new
    // container of the same id (an engine's restart) would find the name
    // taken. Wait for it, within the same bound.
    let deadline = Instant::now() + SYSTEMD_TIMEOUT;
    while Instant::now() < deadline {
        match c.call(&MANAGER, "GetUnit", &name) {
            Err(e) if is_error(&e, "NoSuchUnit") => break,
            Err(e) => return Err(call_err(e)),
            Ok(_) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runc_style_paths() {
        let p = |s: &str| container_path(Some(s), "c1");
        assert_eq!(
            p("system.slice:estiba:c1").unwrap(),
            Path::new("/system.slice/estiba-c1.scope")
        );
        assert_eq!(
            p("machine-qemu.slice:libpod:abc").unwrap(),
            Path::new("/machine.slice/machine-qemu.slice/libpod-abc.scope")
        );
        assert_eq!(
            p(":docker:abc").unwrap(),
            Path::new("/system.slice/docker-abc.scope")
        );
        assert_eq!(p("-.slice::abc").unwrap(), Path::new("/abc.scope"));
        assert_eq!(
            p("kubepods.slice:cri:kubepods-pod1.slice").unwrap(),
            Path::new("/kubepods.slice/kubepods-pod1.slice")
        );
        assert_eq!(
            container_path(None, "c9").unwrap(),
            Path::new("/system.slice/estiba-c9.scope")
        );
    }

    #[test]
    fn bad_paths_are_refused() {
        for bad in [
            "/abs/path",
            "a:b",
            "a:b:c:d",
            "system.slice:x:",
            "notaslice:x:y",
            "a--b.slice:x:y",
            "-a.slice:x:y",
            "system.slice:x/y:z",
            "system.slice:x:other.slice",
        ] {
            assert!(container_path(Some(bad), "c1").is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn shares_map_to_weights_at_the_ends_and_the_default() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 100);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert!(shares_to_weight(512) < 100 && shares_to_weight(2048) > 100);
    }

    #[test]
    fn units_from_paths() {
        let u = Unit::of_path(Path::new(
            "/machine.slice/machine-qemu.slice/libpod-abc.scope",
        ))
        .unwrap();
        assert_eq!(u.name, "libpod-abc.scope");
        assert_eq!(u.slice, "machine-qemu.slice");
        let u = Unit::of_path(Path::new("/abc.scope")).unwrap();
        assert_eq!(u.slice, "-.slice");
        assert!(Unit::of_path(Path::new("/plain/dir")).is_err());
    }

    #[test]
    fn properties_follow_the_resources() {
        let r: LinuxResources = serde_json::from_str(
            r#"{"memory":{"limit":67108864},"cpu":{"shares":1024,"quota":50000,"period":100000},"pids":{"limit":-1}}"#,
        )
        .unwrap();
        let find = |props: &[Value], name: &str| {
            props.iter().find_map(|p| match p {
                Value::Struct(f) if f[0] == Value::Str(name.into()) => match &f[1] {
                    Value::Variant(v) => Some((**v).clone()),
                    _ => None,
                },
                _ => None,
            })
        };
        let v2 = resource_properties(Some(&r), true);
        assert_eq!(find(&v2, "MemoryMax"), Some(Value::U64(67108864)));
        // 1024 shares is the default weight 100; 50 % is 500 ms per s.
        assert_eq!(find(&v2, "CPUWeight"), Some(Value::U64(100)));
        assert_eq!(find(&v2, "CPUQuotaPerSecUSec"), Some(Value::U64(500_000)));
        assert_eq!(find(&v2, "TasksMax"), Some(Value::U64(u64::MAX)));
        let v1 = resource_properties(Some(&r), false);
        assert_eq!(find(&v1, "MemoryLimit"), Some(Value::U64(67108864)));
        assert_eq!(find(&v1, "CPUShares"), Some(Value::U64(1024)));
        assert!(resource_properties(None, true).is_empty());
    }

    const PROC_DEVICES: &str =
        "Character devices:\n  1 mem\n  5 /dev/tty\n136 pts\n\nBlock devices:\n  7 loop\n";

    fn device_allow(json: &str) -> Result<Vec<(String, String)>> {
        let rules: Vec<LinuxDeviceCgroup> = serde_json::from_str(json).unwrap();
        let props = device_properties(&rules, PROC_DEVICES)?;
        let mut out = vec![];
        for p in props {
            let Value::Struct(f) = p else { continue };
            match (&f[0], &f[1]) {
                (Value::Str(n), Value::Variant(v)) if n == "DevicePolicy" => {
                    if let Value::Str(policy) = &**v {
                        out.push(("policy".into(), policy.clone()));
                    }
                }
                (Value::Str(n), Value::Variant(v)) if n == "DeviceAllow" => {
                    if let Value::Array(_, items) = &**v {
                        for i in items {
                            if let Value::Struct(pair) = i {
                                if let (Value::Str(a), Value::Str(b)) = (&pair[0], &pair[1]) {
                                    out.push((a.clone(), b.clone()));
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(out)
    }

    #[test]
    fn device_rules_become_an_allow_list() {
        let got = device_allow(
            r#"[{"allow":false,"access":"rwm"},{"allow":true,"type":"b","major":7,"minor":250,"access":"r"},
               {"allow":true,"type":"b","major":7,"access":"rw"},{"allow":false,"type":"b","major":7,"access":"w"}]"#,
        )
        .unwrap();
        let has = |a: &str, b: &str| got.iter().any(|(x, y)| x == a && y == b);
        assert!(has("policy", "strict"), "{got:?}");
        assert!(has("/dev/block/7:250", "r"), "{got:?}");
        // The deny took w back from the earlier allow of the whole major.
        assert!(has("block-loop", "r"), "{got:?}");
        // The devices every container gets come after, by node or driver.
        assert!(has("/dev/char/1:3", "rwm"), "{got:?}");
        assert!(has("char-pts", "rwm"), "{got:?}");
        assert!(has("char-*", "m") && has("block-*", "m"), "{got:?}");
        assert!(!got.iter().any(|(x, _)| x.contains("7:251")), "{got:?}");
    }

    #[test]
    fn device_rules_start_from_deny_all() {
        // No rules: only the devices every container gets (runc's meaning).
        let got = device_allow("[]").unwrap();
        assert!(got.contains(&("policy".into(), "strict".into())), "{got:?}");
        assert!(
            got.contains(&("/dev/char/1:3".into(), "rwm".into())),
            "{got:?}"
        );
        assert!(
            !got.iter()
                .any(|(x, _)| x == "char-*" && got.iter().any(|(y, a)| y == x && a.contains('r'))),
            "{got:?}"
        );
        // Allow-all is the default policy.
        assert_eq!(
            device_allow(r#"[{"allow":true,"access":"rwm"}]"#).unwrap(),
            vec![("policy".into(), "auto".into())]
        );
    }

    #[test]
    fn device_rules_systemd_cannot_keep_are_errors() {
        assert!(device_allow(
            r#"[{"allow":true,"access":"rwm"},{"allow":false,"type":"b","major":8,"minor":0,"access":"rwm"}]"#
        )
        .is_err());
        assert!(device_allow(
            r#"[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","access":"rwm"},{"allow":false,"type":"c","major":1,"minor":3,"access":"rwm"}]"#
        )
        .is_err());
    }
}
