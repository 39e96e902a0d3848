//! The container runs in its cgroup with its limits; the cgroup goes away
//! with the container. (Full cgroup coverage is a separate issue.)

use estiba_integration::{can_run, cgroup_dirs, text, World};
use serde_json::json;

fn v1(controller: &str) -> bool {
    std::path::Path::new("/sys/fs/cgroup")
        .join(controller)
        .join("cgroup.procs")
        .exists()
}

#[test]
fn memory_cpu_pids_limits_on_v1() {
    if !can_run("memory_cpu_pids_limits_on_v1") {
        return;
    }
    if !(v1("memory") && v1("cpu") && v1("pids")) {
        println!("skipped: memory_cpu_pids_limits_on_v1: needs cgroup v1 memory, cpu and pids (the v2 guest covers v2)");
        return;
    }
    let mut w = World::new("cglimits");
    w.config["linux"]["resources"]["memory"] = json!({"limit": 67108864});
    w.config["linux"]["resources"]["cpu"] =
        json!({"shares": 512, "quota": 50000, "period": 100000});
    w.config["linux"]["resources"]["pids"] = json!({"limit": 42});
    w.script("cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/pids/pids.max; cat /proc/self/cgroup | grep memory; sleep 100");
    w.config["process"]["args"] = json!(["sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/pids/pids.max; sleep 100"]);
    let log = w.dir.join("out");
    let (id, out) = w.create("c", &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // From outside: the files of the container's own cgroup.
    let read = |c: &str, f: &str| {
        std::fs::read_to_string(format!("/sys/fs/cgroup/{c}/{id}/{f}"))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    assert_eq!(read("memory", "memory.limit_in_bytes"), "67108864");
    assert_eq!(read("cpu", "cpu.shares"), "512");
    assert_eq!(read("cpu", "cpu.cfs_quota_us"), "50000");
    assert_eq!(read("pids", "pids.max"), "42");
    let pid = w.state(&id)["pid"].as_i64().unwrap().to_string();
    assert!(
        read("memory", "cgroup.procs").lines().any(|l| l == pid),
        "init not in its memory cgroup"
    );
    assert!(
        read("pids", "cgroup.procs").lines().any(|l| l == pid),
        "init not in its pids cgroup"
    );
    drop(log);
    assert!(w.estiba(&["delete", "--force", &id]).status.success());
    assert!(cgroup_dirs(&id).is_empty(), "left: {:?}", cgroup_dirs(&id));
}

#[test]
fn limits_seen_from_inside_through_cgroup_namespace() {
    if !can_run("limits_seen_from_inside_through_cgroup_namespace") {
        return;
    }
    if !v1("memory") {
        println!(
            "skipped: limits_seen_from_inside_through_cgroup_namespace: needs cgroup v1 memory"
        );
        return;
    }
    let mut w = World::new("cginside");
    w.config["linux"]["resources"]["memory"] = json!({"limit": 33554432});
    w.config["linux"]["resources"]["pids"] = json!({"limit": 17});
    w.script("cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; grep memory /proc/self/cgroup");
    let out = w.run_ok("c");
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "33554432", "{out}");
    assert_eq!(l[1], "17", "{out}");
    assert!(
        l[2].ends_with(":memory:/"),
        "cgroup namespace root should be the container's cgroup: {out}"
    );
}

#[test]
fn cgroups_path_absolute_and_relative() {
    if !can_run("cgroups_path_absolute_and_relative") {
        return;
    }
    if !v1("pids") {
        println!("skipped: cgroups_path_absolute_and_relative: needs cgroup v1 pids");
        return;
    }
    let mut w = World::new("cgpath");
    let name = format!("{}-custom", w.name);
    w.config["linux"]["cgroupsPath"] = json!(format!("/{name}/inner"));
    w.args(&["sleep", "100"]);
    let (id, out) = w.create("c", &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let pid = w.state(&id)["pid"].as_i64().unwrap().to_string();
    let procs =
        std::fs::read_to_string(format!("/sys/fs/cgroup/pids/{name}/inner/cgroup.procs")).unwrap();
    assert!(procs.lines().any(|l| l == pid));
    assert!(w.estiba(&["delete", "--force", &id]).status.success());
    assert!(!std::path::Path::new(&format!("/sys/fs/cgroup/pids/{name}/inner")).exists());
    for d in cgroup_dirs(&name) {
        let _ = std::fs::remove_dir(d);
    }
}

#[test]
fn memory_limit_is_enforced() {
    if !can_run("memory_limit_is_enforced") {
        return;
    }
    if !v1("memory") {
        println!("skipped: memory_limit_is_enforced: needs cgroup v1 memory");
        return;
    }
    let mut w = World::new("oom");
    w.config["linux"]["resources"]["memory"] = json!({"limit": 16777216, "swap": 16777216});
    // Fill a 64 MiB tmpfs file: charged to the container's memory cgroup.
    w.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination":"/big","type":"tmpfs","source":"tmpfs","options":["size=64m"]}));
    w.script("dd if=/dev/zero of=/big/f bs=1M count=48 2>/dev/null; echo dd=$?; grep -w oom_kill /sys/fs/cgroup/memory/memory.oom_control | cut -d' ' -f2");
    let out = w.run("c");
    let stdout = text(&out.stdout);
    // Either the whole container was OOM-killed, or dd was (the pages stay
    // in the tmpfs, so the kill is what the limit looks like).
    if out.status.code() == Some(0) {
        assert!(
            stdout.contains("dd=137"),
            "dd wrote 48 MiB under a 16 MiB limit: {stdout}"
        );
        let oom_kills: u64 = stdout.lines().last().unwrap().trim().parse().unwrap();
        assert!(oom_kills > 0, "{stdout}");
    } else {
        assert_eq!(
            out.status.code(),
            Some(137),
            "{stdout} {}",
            text(&out.stderr)
        );
    }
}
