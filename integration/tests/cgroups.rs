//! The container runs in its cgroup with its limits, on cgroup v1 (this
//! host) and v2 (the qemu guest: integration/vm/run.sh); the cgroup goes
//! away with the container.

use std::path::Path;

use estiba_integration::skip;
use estiba_integration::{
    alive, can_run, cgroup_dirs, cgroup_file, cgroup_v2, clear_cgroup_dir, hierarchy_roots,
    tagged_line, text, with_ruled_devices, World,
};
use serde_json::json;

fn have(controller: &str) -> bool {
    if cgroup_v2() {
        std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
            .is_ok_and(|c| c.split_whitespace().any(|x| x == controller))
    } else {
        std::path::Path::new("/sys/fs/cgroup")
            .join(controller)
            .join("cgroup.procs")
            .exists()
    }
}

/// Polls `done` every 5 ms for up to `secs`; panics with `why()` after.
fn wait_for(done: &dyn Fn() -> bool, secs: u64, why: impl FnOnce() -> String) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "{}", why());
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Those of `pids` still alive, each sent SIGKILL (a test's cleanup).
fn kill_survivors(pids: &[i64]) -> Vec<i64> {
    let survivors: Vec<i64> = pids.iter().copied().filter(|&p| alive(p)).collect();
    for &pid in &survivors {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    survivors
}

fn skip_without(test: &str, controllers: &[&str]) -> bool {
    if let Some(c) = controllers.iter().find(|c| !have(c)) {
        skip!("{test}: no {c} controller here");
        return true;
    }
    false
}

#[test]
fn memory_cpu_pids_limits() {
    if !can_run("memory_cpu_pids_limits")
        || skip_without("memory_cpu_pids_limits", &["memory", "cpu", "pids"])
    {
        return;
    }
    let mut w = World::new("cglimits");
    w.config["linux"]["resources"]["memory"] = json!({"limit": 67108864});
    w.config["linux"]["resources"]["cpu"] =
        json!({"shares": 512, "quota": 50000, "period": 100000});
    w.config["linux"]["resources"]["pids"] = json!({"limit": 42});
    w.args(&["sleep", "100"]);
    let (id, out) = w.create("c", &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let path = format!("/{id}");
    assert_eq!(
        cgroup_file(&path, "memory", "memory.limit_in_bytes", "memory.max").as_deref(),
        Some("67108864")
    );
    assert_eq!(
        cgroup_file(&path, "pids", "pids.max", "pids.max").as_deref(),
        Some("42")
    );
    if cgroup_v2() {
        assert_eq!(
            cgroup_file(&path, "cpu", "", "cpu.max").as_deref(),
            Some("50000 100000")
        );
        let weight: u64 = cgroup_file(&path, "cpu", "", "cpu.weight")
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            weight < 100,
            "shares 512 must map below the default weight: {weight}"
        );
    } else {
        assert_eq!(
            cgroup_file(&path, "cpu", "cpu.cfs_quota_us", "").as_deref(),
            Some("50000")
        );
        assert_eq!(
            cgroup_file(&path, "cpu", "cpu.shares", "").as_deref(),
            Some("512")
        );
    }
    let pid = w.state(&id)["pid"].as_i64().unwrap().to_string();
    let procs = cgroup_file(&path, "pids", "cgroup.procs", "cgroup.procs").unwrap_or_default();
    assert!(
        procs.lines().any(|l| l == pid),
        "init not in its cgroup: {procs:?}"
    );
    assert!(w.estiba(&["delete", "--force", &id]).status.success());
    assert!(cgroup_dirs(&id).is_empty(), "left: {:?}", cgroup_dirs(&id));
}

/// cgroup v2: the init is born in its cgroup (clone3's CLONE_INTO_CGROUP),
/// already limited, instead of being moved in after clone (a move takes
/// the kernel's cgroup-wide write lock). Create's debug log says which
/// way it went; the limit and the membership are as for any container.
#[test]
fn on_cgroup_v2_the_init_is_born_in_its_limited_cgroup() {
    const NAME: &str = "on_cgroup_v2_the_init_is_born_in_its_limited_cgroup";
    if !can_run(NAME) || skip_without(NAME, &["pids"]) {
        return;
    }
    if !cgroup_v2() {
        skip!("{NAME}: this host's cgroups are v1 (a v1 hierarchy needs the move); runs in the cgroup v2 guest");
        return;
    }
    let mut w = World::new("cgborn");
    w.config["linux"]["resources"]["pids"] = json!({"limit": 42});
    w.args(&["sleep", "100"]);
    w.write_config();
    let id = w.id("c");
    let log = w.dir.join("debug.log");
    let bundle = w.bundle.to_string_lossy().into_owned();
    let log_arg = log.to_string_lossy().into_owned();
    let out = w.estiba(&[
        "--debug", "--log", &log_arg, "create", "--bundle", &bundle, &id,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let debug = std::fs::read_to_string(&log).unwrap_or_default();
    let path = format!("/{id}");
    let pid = w.state(&id)["pid"].as_i64().unwrap().to_string();
    let procs = cgroup_file(&path, "pids", "cgroup.procs", "cgroup.procs").unwrap_or_default();
    let max = cgroup_file(&path, "pids", "pids.max", "pids.max");
    assert!(w.estiba(&["delete", "--force", &id]).status.success());
    assert!(
        debug.contains(&format!("init {pid} cloned into its cgroup")),
        "the init was moved into its cgroup after clone:\n{debug}"
    );
    assert!(
        procs.lines().any(|l| l == pid),
        "init not in its cgroup: {procs:?}"
    );
    assert_eq!(max.as_deref(), Some("42"));
    assert!(cgroup_dirs(&id).is_empty(), "left: {:?}", cgroup_dirs(&id));
}

#[test]
fn limits_seen_from_inside_through_cgroup_namespace() {
    if !can_run("limits_seen_from_inside_through_cgroup_namespace")
        || skip_without("limits_seen_from_inside", &["memory", "pids"])
    {
        return;
    }
    let mut w = World::new("cginside");
    w.config["linux"]["resources"]["memory"] = json!({"limit": 33554432});
    w.config["linux"]["resources"]["pids"] = json!({"limit": 17});
    if cgroup_v2() {
        w.script("cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max; cat /proc/self/cgroup");
    } else {
        w.script("cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; grep memory /proc/self/cgroup");
    }
    let out = w.run_ok("c");
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "33554432", "{out}");
    assert_eq!(l[1], "17", "{out}");
    assert!(
        l[2].ends_with(":/"),
        "cgroup namespace root should be the container's cgroup: {out}"
    );
}

#[test]
fn every_v1_hierarchy_is_reachable_inside_by_each_host_name() {
    if !can_run("every_v1_hierarchy_is_reachable_inside_by_each_host_name") {
        return;
    }
    if cgroup_v2() {
        skip!("every_v1_hierarchy_is_reachable_inside: a v2 host has one hierarchy (the v2 tests mount it)");
        return;
    }
    // runc's /sys/fs/cgroup on v1: an entry per hierarchy, named as on the
    // host, holding the container's own cgroup read-only, and a link for each
    // controller of a co-mounted one ("cpu" -> "cpu,cpuacct"), so that
    // every name the host has reaches the container's cgroup.
    let mut names: Vec<String> = std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::canonicalize(e.path()).is_ok_and(|real| {
                real.join("cgroup.procs").exists() && !real.join("cgroup.controllers").exists()
            })
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no v1 hierarchy on a v1 host");
    // Read-only, each of them: a writable one would let the container make
    // cgroups on the host (mkdir there is a new cgroup).
    let mut w = World::new("cgnames");
    w.script(&format!(
        "for c in {}; do grep -qx 1 /sys/fs/cgroup/$c/cgroup.procs && echo $c; \
         mkdir /sys/fs/cgroup/$c/escape 2>/dev/null && echo \"$c writable\"; done; true",
        names.join(" ")
    ));
    // With a cgroup namespace each hierarchy is mounted afresh; without
    // one, the container's own cgroup directories are bound.
    let with_ns = w.run_ok("ns");
    let mut namespaces = w.config["linux"]["namespaces"].as_array().unwrap().clone();
    namespaces.retain(|n| n["type"] != "cgroup");
    w.config["linux"]["namespaces"] = json!(namespaces);
    let bound = w.run_ok("bound");
    for out in [with_ns, bound] {
        let seen: Vec<&str> = out.lines().collect();
        assert_eq!(seen, names, "{out}");
    }
}

#[test]
fn cgroups_path_absolute() {
    if !can_run("cgroups_path_absolute") || skip_without("cgroups_path_absolute", &["pids"]) {
        return;
    }
    let mut w = World::new("cgpath");
    let name = format!("{}-custom", w.name);
    w.config["linux"]["cgroupsPath"] = json!(format!("/{name}/inner"));
    w.args(&["sleep", "100"]);
    let (id, out) = w.create("c", &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let pid = w.state(&id)["pid"].as_i64().unwrap().to_string();
    let procs = cgroup_file(
        &format!("/{name}/inner"),
        "pids",
        "cgroup.procs",
        "cgroup.procs",
    )
    .unwrap_or_default();
    assert!(procs.lines().any(|l| l == pid), "{procs:?}");
    assert!(w.estiba(&["delete", "--force", &id]).status.success());
    assert!(cgroup_file(
        &format!("/{name}/inner"),
        "pids",
        "cgroup.procs",
        "cgroup.procs"
    )
    .is_none());
    for d in cgroup_dirs(&name) {
        let _ = std::fs::remove_dir(d);
    }
}

#[test]
fn memory_limit_is_enforced() {
    if !can_run("memory_limit_is_enforced") || skip_without("memory_limit_is_enforced", &["memory"])
    {
        return;
    }
    let mut w = World::new("oom");
    w.config["linux"]["resources"]["memory"] = json!({"limit": 16777216, "swap": 16777216});
    // Fill a 64 MiB tmpfs file: charged to the container's memory cgroup.
    w.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination":"/big","type":"tmpfs","source":"tmpfs","options":["size=64m"]}));
    let events = if cgroup_v2() {
        "grep -w oom_kill /sys/fs/cgroup/memory.events"
    } else {
        "grep -w oom_kill /sys/fs/cgroup/memory/memory.oom_control"
    };
    w.script(&format!("dd if=/dev/zero of=/big/f bs=1M count=48 2>/dev/null; echo dd=$?; {events} | cut -d' ' -f2"));
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

#[test]
fn pids_limit_stops_a_fork_bomb() {
    if !can_run("pids_limit_stops_a_fork_bomb")
        || skip_without("pids_limit_stops_a_fork_bomb", &["pids"])
    {
        return;
    }
    let mut w = World::new("forkbomb");
    w.config["linux"]["resources"]["pids"] = json!({"limit": 10});
    // Start 30 sleepers in a subshell; past the limit its fork fails and it
    // gives up. Then read pids.current with builtins only (no fork left).
    let f = if cgroup_v2() {
        "/sys/fs/cgroup/pids.current"
    } else {
        "/sys/fs/cgroup/pids/pids.current"
    };
    w.script(&format!("(i=0; while [ $i -lt 30 ]; do sleep 5 & i=$((i+1)); done) 2>/dev/null; read c < {f}; echo $c"));
    let out = w.run_ok("c");
    let current: u64 = out.lines().last().unwrap().trim().parse().unwrap();
    assert!(current <= 10, "pids.current {current} above pids.max 10");
}

/// runtime-spec 1.3: a pids limit of 0 is a limit of zero, not "no
/// limit" (runc before 1.4 read 0 as unset): the init runs, and nothing
/// in the container can fork.
#[test]
fn pids_limit_zero_means_no_new_process() {
    if !can_run("pids_limit_zero_means_no_new_process")
        || skip_without("pids_limit_zero_means_no_new_process", &["pids"])
    {
        return;
    }
    let mut w = World::new("pidszero");
    w.config["linux"]["resources"]["pids"] = json!({"limit": 0});
    let f = if cgroup_v2() {
        "/sys/fs/cgroup/pids.max"
    } else {
        "/sys/fs/cgroup/pids/pids.max"
    };
    // The echo is a program, not the builtin: the shell must fork for it,
    // and busybox sh gives up when it cannot.
    // (It is not the last command, which the shell would exec in place.)
    w.script(&format!(
        "read m < {f}; echo max=$m; /bin/echo forked; echo after"
    ));
    let out = w.run("c");
    assert_eq!(text(&out.stdout).trim(), "max=0", "{}", text(&out.stderr));
    assert!(!out.status.success(), "the shell forked");
}

#[test]
fn update_with_flags_and_resources_json() {
    if !can_run("update_with_flags_and_resources_json")
        || skip_without("update", &["memory", "pids", "cpu"])
    {
        return;
    }
    let mut w = World::new("update");
    w.config["linux"]["resources"]["memory"] = json!({"limit": 67108864});
    w.config["linux"]["resources"]["pids"] = json!({"limit": 42});
    w.args(&["sleep", "100"]);
    let id = w.running("c");
    let path = format!("/{id}");
    // runc's flags.
    let out = w.estiba(&[
        "update",
        "--memory",
        "96m",
        "--pids-limit",
        "77",
        "--cpu-quota",
        "20000",
        "--cpu-period",
        "100000",
        &id,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        cgroup_file(&path, "memory", "memory.limit_in_bytes", "memory.max").as_deref(),
        Some("100663296")
    );
    assert_eq!(
        cgroup_file(&path, "pids", "pids.max", "pids.max").as_deref(),
        Some("77")
    );
    if cgroup_v2() {
        assert_eq!(
            cgroup_file(&path, "cpu", "", "cpu.max").as_deref(),
            Some("20000 100000")
        );
    } else {
        assert_eq!(
            cgroup_file(&path, "cpu", "cpu.cfs_quota_us", "").as_deref(),
            Some("20000")
        );
    }
    // The JSON containerd sends, on stdin; what it leaves out stays.
    let json_path = w.dir.join("resources.json");
    std::fs::write(&json_path, json!({"pids": {"limit": 55}}).to_string()).unwrap();
    let out = std::process::Command::new(&w.bin)
        .arg("--root")
        .arg(&w.root)
        .args(["update", "--resources", "-", &id])
        .stdin(std::fs::File::open(&json_path).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        cgroup_file(&path, "pids", "pids.max", "pids.max").as_deref(),
        Some("55")
    );
    assert_eq!(
        cgroup_file(&path, "memory", "memory.limit_in_bytes", "memory.max").as_deref(),
        Some("100663296")
    );
    // Seen from inside too.
    let out = w.estiba(&[
        "exec",
        &id,
        "sh",
        "-c",
        "cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max",
    ]);
    assert_eq!(text(&out.stdout).trim(), "55");
    // Bad values name the resource.
    let out = w.estiba(&["update", "--memory", "lots", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("lots"), "{}", text(&out.stderr));
    assert!(w.estiba(&["kill", &id, "KILL"]).status.success());
    assert!(w.wait_status(&id, "stopped"));
    assert_eq!(
        w.estiba(&["update", "--pids-limit", "5", &id])
            .status
            .code(),
        Some(1)
    );
}

/// A container under a 32 MiB memory limit with a 128 MiB tmpfs at /big,
/// running `script` (which waits for /tmp/go before it fills /big).
fn memory_hog(name: &str, script: &str) -> World {
    let mut w = World::new(name);
    w.config["linux"]["resources"]["memory"] = json!({"limit": 33554432, "swap": 33554432});
    w.config["root"]["readonly"] = json!(false);
    w.config["mounts"].as_array_mut().unwrap().push(
        json!({"destination":"/big","type":"tmpfs","source":"tmpfs","options":["size=128m"]}),
    );
    w.script(script);
    w
}

/// `estiba events --interval EVERY ID` writing to `log`; /tmp/go is made in
/// the container once the stream has printed its first statistics, so the
/// OOM comes after the stream took its count (a fixed sleep lost that race
/// on a loaded CI machine: the stream started after the OOM and, rightly,
/// had nothing new to report).
fn events_stream(w: &World, id: &str, every: &str, log: &Path) -> std::process::Child {
    let mut stream = std::process::Command::new(&w.bin)
        .arg("--root")
        .arg(&w.root)
        .args(["events", "--interval", every, id])
        .stdout(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !std::fs::read_to_string(log)
        .unwrap_or_default()
        .contains("\"stats\"")
    {
        if std::time::Instant::now() > deadline || stream.try_wait().unwrap().is_some() {
            let _ = stream.kill();
            let _ = stream.wait();
            panic!(
                "the stream printed no statistics: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::fs::write(w.rootfs().join("tmp/go"), "").unwrap();
    stream
}

#[test]
fn events_stats_and_oom() {
    if !can_run("events_stats_and_oom") || skip_without("events", &["memory", "pids", "cpu"]) {
        return;
    }
    // Wait for a go, then blow the memory limit from a child. The child
    // offers itself to the OOM killer (oom_score_adj 1000): tmpfs pages are
    // in no process's RSS, so otherwise the init may be the one it picks.
    let mut w = memory_hog("events", "while [ ! -e /tmp/go ]; do sleep 0.05; done; (echo 1000 > /proc/self/oom_score_adj; exec dd if=/dev/zero of=/big/f bs=1M count=100 2>/dev/null); sleep 100");
    w.config["linux"]["resources"]["pids"] = json!({"limit": 50});
    let id = w.running("c");
    let out = w.estiba(&["events", "--stats", &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let e: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(e["type"], "stats");
    assert_eq!(e["id"], id.as_str());
    assert_eq!(e["data"]["memory"]["usage"]["limit"], 33554432);
    assert!(
        e["data"]["memory"]["usage"]["usage"].as_u64().unwrap() > 0,
        "{e}"
    );
    assert_eq!(e["data"]["pids"]["limit"], 50);
    assert!(e["data"]["pids"]["current"].as_u64().unwrap() >= 1, "{e}");
    assert!(e["data"]["cpu"]["usage"]["total"].as_u64().is_some(), "{e}");
    // The stream: stats, and an oom event once the limit kills.
    let log = w.dir.join("events.log");
    let mut stream = events_stream(&w, &id, "300ms", &log);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::time::Instant::now() < deadline
        && !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("\"oom\"")
    {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = stream.kill();
    let _ = stream.wait();
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines.iter().any(|l| l["type"] == "stats"),
        "no stats in the stream"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "oom" && l["id"] == id.as_str()),
        "no oom event: {lines:?}"
    );
    // A stopped container has no stats.
    assert!(w.estiba(&["kill", &id, "KILL"]).status.success());
    assert!(w.wait_status(&id, "stopped"));
    assert_eq!(w.estiba(&["events", "--stats", &id]).status.code(), Some(1));
}

/// A consumer that stops `events` (the CI run that found this killed the
/// stream after the OOM) must hold whole events only: each line reaches
/// stdout in one write(2), as runc's encoder writes it, even past the 1 KiB
/// stdout buffer that split a stats event in two.
#[test]
fn each_event_reaches_stdout_in_one_write() {
    if !can_run("each_event_reaches_stdout_in_one_write")
        || skip_without("events_one_write", &["memory", "pids", "cpu"])
    {
        return;
    }
    if !estiba_integration::have_strace("each_event_reaches_stdout_in_one_write") {
        return;
    }
    let mut w = memory_hog("evwrite", "sleep 100");
    w.config["linux"]["resources"]["pids"] = json!({"limit": 50});
    let id = w.running("c");
    let trace = w.dir.join("events.strace");
    let out = std::process::Command::new("strace")
        .arg("-o")
        .arg(&trace)
        .args(["-e", "trace=write"])
        .arg(&w.bin)
        .arg("--root")
        .arg(&w.root)
        .args(["events", "--stats", &id])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line = text(&out.stdout);
    // The test proves something only if the event is longer than the buffer.
    assert!(line.len() > 1024, "a stats event of {} bytes", line.len());
    assert_eq!(line.matches('\n').count(), 1, "{line}");
    let writes = std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("write(1,"))
        .count();
    assert_eq!(writes, 1, "one event, {writes} writes to stdout");
}

#[test]
fn events_reports_the_oom_that_stopped_the_container() {
    if !can_run("events_reports_the_oom_that_stopped_the_container")
        || skip_without("events", &["memory"])
    {
        return;
    }
    // The init itself is the OOM killer's victim: the stream must still
    // print the oom event before it ends with the container.
    let mut w = memory_hog("oominit", "while [ ! -e /tmp/go ]; do sleep 0.05; done; echo 1000 > /proc/self/oom_score_adj; exec dd if=/dev/zero of=/big/f bs=1M count=100");
    let id = w.running("c");
    let log = w.dir.join("events.log");
    let mut stream = events_stream(&w, &id, "10s", &log);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let ended = loop {
        match stream.try_wait().unwrap() {
            Some(status) => break Some(status),
            None if std::time::Instant::now() > deadline => break None,
            None => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    };
    // (a stream still running is stopped; one that ended is reaped)
    let _ = stream.kill();
    let _ = stream.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        ended.is_some_and(|s| s.success()),
        "the stream did not end with the container: {ended:?} {text}"
    );
    assert_eq!(w.status(&id), "stopped");
    assert!(
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .any(|l| l["type"] == "oom" && l["id"] == id.as_str()),
        "no oom event: {text}"
    );
}

#[test]
fn device_rules_are_enforced() {
    if !can_run("device_rules_are_enforced") {
        return;
    }
    // v1: devices.allow/deny; v2: an eBPF program on the cgroup. The
    // cgroup check comes before the driver's open: a denied open is EPERM,
    // an allowed one reaches the driver (these nodes have none: ENXIO).
    let mut w = World::new("devrules");
    with_ruled_devices(&mut w);
    w.script(
        "echo \"R:$(head -c0 /dev/ro-dev 2>&1)\"; \
         echo \"W:$( (echo x > /dev/ro-dev) 2>&1)\"; \
         echo \"D:$(head -c0 /dev/denied 2>&1)\"; \
         echo ok > /dev/null && echo null-ok",
    );
    let out = w.run_ok("d");
    let line = |tag: &str| tagged_line(&out, tag);
    assert!(!line("R:").contains("not permitted"), "{out}");
    assert!(line("W:").contains("not permitted"), "{out}");
    assert!(line("D:").contains("not permitted"), "{out}");
    assert!(out.contains("null-ok"), "{out}");
}

/// A create that fails after its init entered a cgroup it shares with a
/// running container (the same cgroupsPath) undoes only its own part: the
/// other container keeps running in the cgroup, which stays.
#[test]
fn a_failed_create_leaves_a_shared_cgroup_to_its_other_users() {
    if !can_run("a_failed_create_leaves_a_shared_cgroup_to_its_other_users") {
        return;
    }
    let mut w = World::new("shared");
    let path = format!("/{}-shared", w.name);
    w.config["linux"]["cgroupsPath"] = json!(path);
    w.args(&["sleep", "1000"]);
    let first = w.running("first");
    let pid = w.state(&first)["pid"].as_i64().unwrap();
    // The program does not exist: create fails once the init is in the
    // cgroup and looks for it.
    w.args(&["/no/such/program"]);
    let (second, out) = w.create("second", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(!w.root.join(&second).exists());
    assert_eq!(w.status(&first), "running");
    let procs = cgroup_file(&path, "pids", "cgroup.procs", "cgroup.procs").unwrap_or_default();
    assert!(
        procs.lines().any(|l| l == pid.to_string()),
        "the first container's init left its cgroup: {procs:?}"
    );
    assert!(w.estiba(&["delete", "--force", &first]).status.success());
    let name = path.trim_start_matches('/');
    assert!(
        cgroup_dirs(name).is_empty(),
        "left: {:?}",
        cgroup_dirs(name)
    );
}

/// A v1 cpuset parent that another create made and has not filled yet
/// (two creates under one new parent, racing) holds empty cpus and mems:
/// create fills it from its own parent before its container joins, where
/// it once failed with ENOSPC.
#[test]
fn an_empty_cpuset_parent_made_by_another_is_filled() {
    if !can_run("an_empty_cpuset_parent_made_by_another_is_filled") {
        return;
    }
    if cgroup_v2() || !have("cpuset") {
        skip!("an_empty_cpuset_parent_made_by_another_is_filled: no v1 cpuset here");
        return;
    }
    let mut w = World::new("cpusetparent");
    let parent_name = format!("{}-parent", w.name);
    let parent = Path::new("/sys/fs/cgroup/cpuset").join(&parent_name);
    std::fs::create_dir(&parent).unwrap();
    let made = std::fs::read_to_string(parent.join("cpuset.cpus")).unwrap_or_default();
    w.config["linux"]["cgroupsPath"] = json!(format!("/{parent_name}/c"));
    w.args(&["true"]);
    let out = w.run("c");
    let filled = std::fs::read_to_string(parent.join("cpuset.cpus")).unwrap_or_default();
    for d in cgroup_dirs(&parent_name) {
        let _ = std::fs::remove_dir(d.join("c"));
        let _ = std::fs::remove_dir(d);
    }
    assert!(made.trim().is_empty(), "the kernel filled it: {made:?}");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!filled.trim().is_empty());
}

/// `delete --force` of one of two containers on one cgroupsPath: its
/// processes died with its pid namespace, so the other's keep running in
/// the cgroup; the last delete removes it.
#[test]
fn delete_leaves_a_shared_cgroup_to_its_other_users() {
    if !can_run("delete_leaves_a_shared_cgroup_to_its_other_users") {
        return;
    }
    let mut w = World::new("shareddel");
    let path = format!("/{}-shared", w.name);
    w.config["linux"]["cgroupsPath"] = json!(path);
    w.args(&["sleep", "1000"]);
    let first = w.running("first");
    let second = w.running("second");
    let pid = w.state(&second)["pid"].as_i64().unwrap();
    let deleted = w.estiba(&["delete", "--force", &first]);
    let procs = cgroup_file(&path, "pids", "cgroup.procs", "cgroup.procs").unwrap_or_default();
    let second_status = w.status(&second);
    assert!(w.estiba(&["delete", "--force", &second]).status.success());
    let name = path.trim_start_matches('/');
    let left = cgroup_dirs(name);
    assert!(deleted.status.success(), "{}", text(&deleted.stderr));
    assert!(
        text(&deleted.stderr).contains("left in place"),
        "no warning that the cgroup stays: {}",
        text(&deleted.stderr)
    );
    assert_eq!(second_status, "running");
    assert!(
        procs.lines().any(|l| l == pid.to_string()),
        "the second container's init left the cgroup: {procs:?}"
    );
    assert!(left.is_empty(), "left: {left:?}");
}

/// Without its own pid namespace a container's processes outlive its init:
/// `delete --force` finds them by cgroup and kills them.
#[test]
fn delete_without_a_pid_namespace_kills_what_the_init_left() {
    if !can_run("delete_without_a_pid_namespace_kills_what_the_init_left") {
        return;
    }
    let mut w = World::new("hostpiddel");
    w.without_namespace("pid");
    w.script("sleep 1000 & sleep 1000");
    let id = w.running("c");
    let init = w.state(&id)["pid"].as_i64().unwrap();
    let others: Vec<i64> = w
        .wait_pids(&id, 2)
        .into_iter()
        .filter(|p| *p != init)
        .collect();
    let deleted = w.estiba(&["delete", "--force", &id]);
    let survivors = kill_survivors(&others);
    assert!(deleted.status.success(), "{}", text(&deleted.stderr));
    assert!(!others.is_empty(), "the background sleeper never showed");
    assert!(survivors.is_empty(), "survived delete: {survivors:?}");
}

/// A killed process stays in its cgroup until its exit has torn down its
/// memory, and until then the kernel refuses the cgroup's removal (EBUSY).
/// `delete --force` of a container without its own pid namespace, whose
/// `dd` holds 256 MiB it has written, must wait that out (bounded) and
/// leave no cgroup behind, as runc's delete does.
#[test]
fn delete_force_waits_for_a_dying_process_to_leave_the_cgroup() {
    if !can_run("delete_force_waits_for_a_dying_process_to_leave_the_cgroup") {
        return;
    }
    let mut w = World::new("busydel");
    let path = format!("/{}-busy", w.name);
    w.config["linux"]["cgroupsPath"] = json!(path);
    w.without_namespace("pid");
    // dd fills its 256 MiB buffer, then blocks writing to a pipe nobody
    // reads.
    w.script("dd if=/dev/zero bs=256M count=1 | sleep 1000 & sleep 1000");
    let id = w.running("c");
    let pids = w.wait_pids(&id, 3);
    let rss_kib = |pid: i64| {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            })
            .unwrap_or(0)
    };
    wait_for(
        &|| pids.iter().any(|&p| rss_kib(p) > 200 * 1024),
        20,
        || format!("dd never held 200 MiB: {pids:?}"),
    );
    let deleted = w.estiba(&["delete", "--force", &id]);
    let left = cgroup_dirs(path.trim_start_matches('/'));
    kill_survivors(&pids);
    for d in &left {
        clear_cgroup_dir(d, 5);
    }
    assert!(deleted.status.success(), "{}", text(&deleted.stderr));
    assert!(left.is_empty(), "cgroups left: {left:?}");
}

/// Parent cgroups that create had to make for a nested cgroupsPath go with
/// the container's; a parent that was there before stays.
#[test]
fn delete_removes_the_parent_cgroups_create_made() {
    if !can_run("delete_removes_the_parent_cgroups_create_made") {
        return;
    }
    let mut w = World::new("parents");
    let found = format!("{}-found", w.name);
    let found_dirs: Vec<_> = hierarchy_roots()
        .into_iter()
        .map(|r| r.join(&found))
        .collect();
    for d in &found_dirs {
        std::fs::create_dir(d).unwrap();
    }
    // A create that fails once its init is in the cgroup undoes them too.
    w.config["linux"]["cgroupsPath"] = json!(format!("/{found}/failed/c"));
    w.args(&["/no/such/program"]);
    let (_, failed) = w.create("failed", &[]);
    let failed_left = cgroup_dirs(&format!("{found}/failed"));
    w.config["linux"]["cgroupsPath"] = json!(format!("/{found}/made/deeper/c"));
    w.args(&["true"]);
    let (id, created) = w.create("c", &[]);
    let made_while_running = cgroup_dirs(&format!("{found}/made")).len();
    let deleted = w.estiba(&["delete", "--force", &id]);
    let made_left = cgroup_dirs(&format!("{found}/made"));
    let found_left = cgroup_dirs(&found);
    for d in &found_dirs {
        let _ = std::fs::remove_dir(d.join("made/deeper/c"));
        let _ = std::fs::remove_dir(d.join("made/deeper"));
        let _ = std::fs::remove_dir(d.join("made"));
        let _ = std::fs::remove_dir(d.join("failed/c"));
        let _ = std::fs::remove_dir(d.join("failed"));
        let _ = std::fs::remove_dir(d);
    }
    assert_eq!(failed.status.code(), Some(1), "{}", text(&failed.stderr));
    assert!(
        failed_left.is_empty(),
        "a failed create left: {failed_left:?}"
    );
    assert!(created.status.success(), "{}", text(&created.stderr));
    assert!(deleted.status.success(), "{}", text(&deleted.stderr));
    assert_eq!(made_while_running, found_dirs.len());
    assert!(made_left.is_empty(), "left: {made_left:?}");
    assert_eq!(found_left.len(), found_dirs.len(), "{found_left:?}");
}

/// Every process of a container sits in the container's cgroup in every
/// hierarchy of the host, however it got there: the init and an exec'd
/// process are born in the v2 cgroup and each moves itself into the v1
/// ones (no move by pid, whose lock costs a create ~10 ms here).
#[test]
fn the_init_and_an_exec_d_process_are_in_every_hierarchy() {
    const NAME: &str = "the_init_and_an_exec_d_process_are_in_every_hierarchy";
    if !can_run(NAME) {
        return;
    }
    let mut w = World::new("cgevery");
    w.args(&["sleep", "100"]);
    let id = w.running("c");
    let init = w.state(&id)["pid"].as_i64().unwrap();
    let exec = w.exec_detached(&id, &["sleep", "100"]);
    let hierarchies = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let of = |pid: i64| std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let (init_cg, exec_cg) = (of(init), of(exec));
    assert!(w.estiba(&["delete", "--force", &id]).status.success());
    let want = format!(":/{id}");
    for (who, cg) in [("init", &init_cg), ("exec'd process", &exec_cg)] {
        assert_eq!(
            cg.lines().count(),
            hierarchies.lines().count(),
            "{who}: {cg}"
        );
        for line in cg.lines() {
            assert!(
                line.ends_with(&want),
                "{who} outside its cgroup: {line:?} in\n{cg}"
            );
        }
    }
}

/// A create killed after its init was born in the cgroup (clone3 into the
/// v2 one) but before it recorded the pid leaves that init dying there: its
/// parent-death SIGKILL pending. `delete --force` must wait for it, not keep
/// the cgroup as if another container still used it. Made deterministic
/// with the v1 freezer: a frozen process sent SIGKILL stays, the signal
/// pending, until it is thawed.
#[test]
fn removal_waits_for_a_killed_process_instead_of_keeping_the_cgroup() {
    const NAME: &str = "removal_waits_for_a_killed_process_instead_of_keeping_the_cgroup";
    if !can_run(NAME) || skip_without(NAME, &["freezer"]) {
        return;
    }
    if cgroup_v2() {
        skip!("{NAME}: needs the v1 freezer (a frozen v2 process dies of SIGKILL at once)");
        return;
    }
    let name = format!("estiba-it-{}-dying", std::process::id());
    let dir = Path::new("/sys/fs/cgroup/freezer").join(&name);
    std::fs::create_dir(&dir).unwrap();
    struct Gone(std::path::PathBuf, std::process::Child);
    impl Drop for Gone {
        fn drop(&mut self) {
            let _ = std::fs::write(self.0.join("freezer.state"), "THAWED");
            let _ = self.1.kill();
            let _ = self.1.wait();
            let _ = std::fs::remove_dir(&self.0);
        }
    }
    let child = std::process::Command::new("sleep")
        .arg("100")
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let mut guard = Gone(dir.clone(), child);
    // Frozen only once asleep in its nanosleep: a process still loading
    // (page faults on an emulated guest's 9p root, seen to outlast 5 s under
    // CI load) stays FREEZING. Bounds are for TCG guests, not this host.
    let asleep = || {
        let call = std::fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap_or_default();
        matches!(call.split(' ').next(), Some("35" | "230"))
    };
    wait_for(&asleep, 30, || {
        format!("sleep {pid} never reached its nanosleep")
    });
    std::fs::write(dir.join("cgroup.procs"), pid.to_string()).unwrap();
    std::fs::write(dir.join("freezer.state"), "FROZEN").unwrap();
    let frozen = || {
        std::fs::read_to_string(dir.join("freezer.state"))
            .unwrap_or_default()
            .trim()
            == "FROZEN"
    };
    wait_for(&frozen, 30, || {
        let of = |f: &str| std::fs::read_to_string(format!("/proc/{pid}/{f}")).unwrap_or_default();
        format!(
            "the freezer did not freeze: stat {:?}, wchan {:?}",
            of("stat"),
            of("wchan")
        )
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let thaw = {
        let state = dir.join("freezer.state");
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(150));
            std::fs::write(state, "THAWED")
        })
    };
    let cg = estiba_cgroups::Cgroup::open(&Path::new("/").join(&name), false).unwrap();
    let left = cg.remove_if_unused(&[]);
    thaw.join().unwrap().unwrap();
    let _ = guard.1.wait();
    assert!(
        matches!(&left, Ok(l) if l.is_empty()),
        "the cgroup of a killed process was kept: {left:?}"
    );
    assert!(!dir.exists());
}
