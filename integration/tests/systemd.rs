//! The systemd cgroup driver (`--systemd-cgroup`) against a real systemd:
//! these run where systemd is PID 1 (the qemu guests of
//! integration/vm/systemd-tests.sh boot one, on cgroup v2 and on a v1
//! hybrid layout) and say skipped elsewhere.

use std::path::Path;
use std::process::Command;

use estiba_integration::skip;
use estiba_integration::{can_run, cgroup_v2, tagged_line, text, with_ruled_devices, World};
use serde_json::json;

fn systemd_is_init(test: &str) -> bool {
    let comm = std::fs::read_to_string("/proc/1/comm").unwrap_or_default();
    if comm.trim() != "systemd" {
        skip!("{test}: systemd is not PID 1 here");
        return false;
    }
    can_run(test)
}

/// `systemctl show -p PROP --value UNIT`.
fn unit_property(unit: &str, prop: &str) -> String {
    let out = Command::new("systemctl")
        .args(["show", "-p", prop, "--value", unit])
        .output()
        .expect("systemctl");
    text(&out.stdout).trim().to_string()
}

/// The cgroup directories of `path` that exist, in every hierarchy.
fn dirs_of(path: &str) -> Vec<String> {
    let rel = path.trim_start_matches('/');
    let mut roots = vec!["/sys/fs/cgroup".to_string()];
    if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
        for e in entries.flatten() {
            roots.push(e.path().display().to_string());
        }
    }
    roots
        .into_iter()
        .map(|r| format!("{r}/{rel}"))
        .filter(|d| Path::new(d).is_dir())
        .collect()
}

fn memory_limit_file(path: &str) -> String {
    let rel = path.trim_start_matches('/');
    let f = if cgroup_v2() {
        format!("/sys/fs/cgroup/{rel}/memory.max")
    } else {
        format!("/sys/fs/cgroup/memory/{rel}/memory.limit_in_bytes")
    };
    std::fs::read_to_string(&f)
        .unwrap_or_else(|e| format!("{f}: {e}"))
        .trim()
        .to_string()
}

/// The container's device rules hold (a denied open is EPERM; an allowed
/// one reaches the driver, which these nodes lack: ENXIO; see
/// `with_ruled_devices`).
fn devices_still_ruled(w: &World, id: &str, when: &str) {
    let out = w.estiba(&[
        "exec",
        id,
        "sh",
        "-c",
        "echo \"R:$(head -c0 /dev/ro-dev 2>&1)\"; echo \"D:$(head -c0 /dev/denied 2>&1)\"",
    ]);
    let out = text(&out.stdout);
    let line = |tag: &str| tagged_line(&out, tag);
    assert!(!line("R:").contains("not permitted"), "{when}: {out}");
    assert!(line("D:").contains("not permitted"), "{when}: {out}");
}

#[test]
fn a_scope_unit_holds_the_container_and_goes_with_it() {
    if !systemd_is_init("a_scope_unit_holds_the_container_and_goes_with_it") {
        return;
    }
    let mut w = World::new("sdscope");
    let name = format!("{}-c", w.name);
    let unit = format!("estiba-test-{name}.scope");
    let path = format!("/system.slice/{unit}");
    w.config["linux"]["cgroupsPath"] = json!(format!("system.slice:estiba-test:{name}"));
    w.config["linux"]["resources"] = json!({
        "memory": {"limit": 67108864},
        "pids": {"limit": 50},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000}
    });
    with_ruled_devices(&mut w);
    w.args(&["sleep", "1000"]);
    let (id, out) = w.create_after(&["--systemd-cgroup"], "c", &[]);
    assert!(out.status.success(), "create: {}", text(&out.stderr));
    assert_eq!(id, name);

    // systemd made and owns the unit, the init sits in it in every
    // hierarchy, and the limits are the unit's properties and the files'.
    assert_eq!(unit_property(&unit, "ActiveState"), "active");
    assert_eq!(unit_property(&unit, "ControlGroup"), path);
    assert_eq!(unit_property(&unit, "Delegate"), "yes");
    let mem_prop = if cgroup_v2() {
        "MemoryMax"
    } else {
        "MemoryLimit"
    };
    assert_eq!(unit_property(&unit, mem_prop), "67108864");
    assert_eq!(unit_property(&unit, "TasksMax"), "50");
    assert_eq!(unit_property(&unit, "CPUQuotaPerSecUSec"), "500ms");
    assert_eq!(memory_limit_file(&path), "67108864");
    let pid = w.state(&id)["pid"].as_i64().unwrap();
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for line in cg.lines() {
        assert!(
            line.ends_with(&format!(":{path}")),
            "init not in its unit's cgroup in every hierarchy: {cg}"
        );
    }

    assert!(w.estiba(&["start", &id]).status.success());
    // exec'd processes join the same unit.
    let out = w.estiba(&["exec", &id, "cat", "/proc/self/cgroup"]);
    assert!(out.status.success(), "exec: {}", text(&out.stderr));
    let pids_line = text(&out.stdout)
        .lines()
        .find(|l| l.starts_with("0::") || l.contains(":pids:"))
        .unwrap_or_default()
        .to_string();
    assert!(!pids_line.is_empty(), "{}", text(&out.stdout));

    // Freezer and update work on systemd's cgroup; update also tells systemd.
    assert!(w.estiba(&["pause", &id]).status.success());
    assert_eq!(w.status(&id), "paused");
    assert!(w.estiba(&["resume", &id]).status.success());
    assert_eq!(w.status(&id), "running");
    let out = w.estiba(&["update", "--memory", "100663296", &id]);
    assert!(out.status.success(), "update: {}", text(&out.stderr));
    assert_eq!(memory_limit_file(&path), "100663296");
    assert_eq!(unit_property(&unit, mem_prop), "100663296");

    // Reloading systemd rewrites the properties it knows to the files:
    // they must still say what the container asked for.
    devices_still_ruled(&w, &id, "before a reload");
    let reload = Command::new("systemctl")
        .arg("daemon-reload")
        .status()
        .unwrap();
    assert!(reload.success());
    assert_eq!(memory_limit_file(&path), "100663296");
    devices_still_ruled(&w, &id, "after a reload");

    assert!(w.estiba(&["kill", &id, "KILL"]).status.success());
    assert!(w.wait_status(&id, "stopped"));
    let out = w.estiba(&["delete", &id]);
    assert!(out.status.success(), "delete: {}", text(&out.stderr));
    assert_eq!(unit_property(&unit, "LoadState"), "not-found");
    assert!(dirs_of(&path).is_empty(), "left: {:?}", dirs_of(&path));
}

#[test]
fn default_unit_foreground_run_and_errors() {
    if !systemd_is_init("default_unit_foreground_run_and_errors") {
        return;
    }
    let mut w = World::new("sddefault");
    // No cgroupsPath: system.slice, estiba-<id>.scope; run removes it.
    // (Without a cgroup namespace the container sees the whole path.)
    w.without_namespace("cgroup");
    w.script("cat /proc/self/cgroup");
    w.write_config();
    let id = w.id("r");
    let bundle = w.bundle.to_string_lossy().into_owned();
    let out = w.estiba(&["--systemd-cgroup", "run", "--bundle", &bundle, &id]);
    assert!(out.status.success(), "run: {}", text(&out.stderr));
    let scope = format!("/system.slice/estiba-{id}.scope");
    let lines: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
    assert!(
        !lines.is_empty() && lines.iter().all(|l| l.ends_with(&format!(":{scope}"))),
        "not in {scope} everywhere: {lines:?}"
    );
    assert_eq!(
        unit_property(&format!("estiba-{id}.scope"), "LoadState"),
        "not-found"
    );
    assert!(dirs_of(&scope).is_empty(), "left: {:?}", dirs_of(&scope));

    // Not the systemd form: one line, nothing made.
    w.config["linux"]["cgroupsPath"] = json!("/plain/path");
    let (bad, out) = w.create_after(&["--systemd-cgroup"], "bad", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr).trim().lines().count(),
        1,
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("slice:prefix:name"),
        "{}",
        text(&out.stderr)
    );
    assert!(!w.root.join(&bad).exists());

    // Two containers cannot share one unit; the first is left as it was.
    let shared = format!("system.slice:estiba-test:{}-shared", w.name);
    w.config["linux"]["cgroupsPath"] = json!(shared);
    w.args(&["sleep", "1000"]);
    let (first, out) = w.create_after(&["--systemd-cgroup"], "first", &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (second, out) = w.create_after(&["--systemd-cgroup"], "second", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("already exists"),
        "{}",
        text(&out.stderr)
    );
    assert!(!w.root.join(&second).exists());
    assert_eq!(w.status(&first), "created");
    let unit = format!("estiba-test-{}-shared.scope", w.name);
    assert_eq!(unit_property(&unit, "ActiveState"), "active");
    assert!(w.estiba(&["delete", "--force", &first]).status.success());
    assert_eq!(unit_property(&unit, "LoadState"), "not-found");
}
