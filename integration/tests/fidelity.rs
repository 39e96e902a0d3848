//! Behaviours where runc is the reference (issue 13): what engines and
//! scripts written against runc rely on. Each test states runc's behaviour
//! and checks estiba's against it on a real container.

use std::time::Duration;

use estiba_integration::*;
use serde_json::json;

fn sleeper(name: &str) -> World {
    let mut w = World::new(name);
    w.args(&["sleep", "1000"]);
    w
}

/// `kill CT 0` is an existence probe (runc passes 0 to kill(2)); real-time
/// signals by name reach the init too (RTMIN+3 is 37 with glibc).
#[test]
fn kill_zero_probes_and_realtime_signals_arrive() {
    if !can_run("kill_zero_probes_and_realtime_signals_arrive") {
        return;
    }
    let mut w = World::new("kill0");
    w.config["root"]["readonly"] = json!(false);
    w.script("trap 'echo rt >> /tmp/log' 37; echo > /tmp/ready; while true; do sleep 0.05; done");
    let id = w.running("c");
    let ready = w.rootfs().join("tmp/ready");
    assert!((0..500).any(|_| {
        std::thread::sleep(Duration::from_millis(10));
        ready.exists()
    }));
    let out = w.estiba(&["kill", &id, "0"]);
    assert!(out.status.success(), "kill 0: {}", text(&out.stderr));
    assert_eq!(w.status(&id), "running", "signal 0 must not be delivered");
    let out = w.estiba(&["kill", &id, "RTMIN+3"]);
    assert!(out.status.success(), "kill RTMIN+3: {}", text(&out.stderr));
    let log = w.rootfs().join("tmp/log");
    assert!(
        (0..500).any(|_| {
            std::thread::sleep(Duration::from_millis(10));
            std::fs::read_to_string(&log).is_ok_and(|l| l.contains("rt"))
        }),
        "RTMIN+3 did not arrive"
    );
    assert!(w.estiba(&["kill", &id, "KILL"]).status.success());
    assert!(w.wait_status(&id, "stopped"));
    // On a stopped container, signal 0 fails like any other.
    assert_eq!(w.estiba(&["kill", &id, "0"]).status.code(), Some(1));
}

/// `ps` of a stopped container lists nothing and succeeds (runc's ps.bats).
#[test]
fn ps_of_a_stopped_container_is_empty() {
    if !can_run("ps_of_a_stopped_container_is_empty") {
        return;
    }
    let mut w = sleeper("psstopped");
    let id = w.running("c");
    assert!(w.estiba(&["kill", &id, "KILL"]).status.success());
    assert!(w.wait_status(&id, "stopped"));
    let out = w.estiba(&["ps", &id]);
    assert!(out.status.success(), "ps: {}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).lines().count(),
        1,
        "only the header: {}",
        text(&out.stdout)
    );
    let out = w.estiba(&["ps", "--format", "json", &id]);
    assert!(out.status.success(), "ps json: {}", text(&out.stderr));
    let pids: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pids, json!([]));
}

/// Hooks without `env`: runc's run with the runtime's environment (PATH
/// included, so `sh -c 'cat ...'` finds its programs); the ones in the
/// container (createContainer, startContainer) with the process's. `"env":
/// []` is an empty environment.
#[test]
fn hooks_without_env_inherit_like_runc() {
    if !can_run("hooks_without_env_inherit_like_runc") {
        return;
    }
    let mut w = sleeper("hookenv");
    w.config["process"]["env"] = json!(["PATH=/bin", "FROM=process"]);
    // startContainer runs after pivot_root: it writes into the rootfs.
    w.config["root"]["readonly"] = json!(false);
    std::fs::create_dir_all(w.rootfs().join("tmp")).unwrap();
    let dir = w.dir.clone();
    let rootfs = w.rootfs();
    let file = |name: &str| match name {
        "startContainer" => rootfs.join("tmp/startContainer.env"),
        _ => dir.join(format!("{name}.env")),
    };
    let dump = |at: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("env > {at}")]});
    let host = |name: &str| file(name).to_string_lossy().into_owned();
    let mut empty = dump(&host("empty"));
    empty["env"] = json!([]);
    w.config["hooks"] = json!({
        "createRuntime": [dump(&host("createRuntime")), empty],
        "createContainer": [dump(&host("createContainer"))],
        "startContainer": [dump("/tmp/startContainer.env")],
    });
    let id = w.running("c");
    let read = |name: &str| std::fs::read_to_string(file(name)).unwrap_or_default();
    let ours = std::env::var("PATH").unwrap();
    assert!(
        read("createRuntime")
            .lines()
            .any(|l| l == format!("PATH={ours}")),
        "createRuntime: {}",
        read("createRuntime")
    );
    for stage in ["createContainer", "startContainer"] {
        let env = read(stage);
        assert!(env.lines().any(|l| l == "FROM=process"), "{stage}: {env}");
        assert!(env.lines().any(|l| l == "PATH=/bin"), "{stage}: {env}");
    }
    assert!(
        !read("empty")
            .lines()
            .any(|l| l.starts_with("PATH=") && l != "PATH=/bin"),
        "env [] got an environment: {}",
        read("empty")
    );
    assert!(w.estiba(&["delete", "--force", &id]).status.success());
}

/// HOME comes from the container's /etc/passwd when the environment has
/// none, else `/` (runc's setupUser), for the init and for exec.
#[test]
fn home_is_set_from_the_containers_passwd() {
    if !can_run("home_is_set_from_the_containers_passwd") {
        return;
    }
    let mut w = sleeper("home");
    w.config["process"]["env"] = json!(["PATH=/bin"]);
    w.config["process"]["user"] = json!({"uid": 2000, "gid": 2000});
    let etc = w.rootfs().join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(
        etc.join("passwd"),
        "root:x:0:0:root:/root:/bin/sh\nu:x:2000:2000::/home/u:/bin/sh\n",
    )
    .unwrap();
    w.script("echo \"$HOME\" > /tmp/home; exec sleep 1000");
    w.config["root"]["readonly"] = json!(false);
    std::fs::create_dir_all(w.rootfs().join("tmp")).unwrap();
    nix::unistd::chown(&w.rootfs().join("tmp"), Some(2000.into()), None).unwrap();
    let id = w.running("c");
    let home = w.rootfs().join("tmp/home");
    assert!((0..500).any(|_| {
        std::thread::sleep(Duration::from_millis(10));
        home.exists()
    }));
    assert_eq!(
        std::fs::read_to_string(&home).unwrap().trim(),
        "/home/u",
        "init"
    );
    let echo = |user: &str| {
        let out = w.estiba(&[
            "exec",
            "--user",
            user,
            &id,
            "sh",
            "-c",
            "echo \"HOME=$HOME\"",
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout).trim().to_string()
    };
    assert_eq!(echo("2000"), "HOME=/home/u");
    assert_eq!(echo("0"), "HOME=/root");
    assert_eq!(echo("1000"), "HOME=/");
    let out = w.estiba(&[
        "exec",
        "-e",
        "HOME=/mine",
        &id,
        "sh",
        "-c",
        "echo \"HOME=$HOME\"",
    ]);
    assert_eq!(text(&out.stdout).trim(), "HOME=/mine");
}

/// In a network namespace of its own the container has `lo` up (runc's
/// loopback strategy), so services on 127.0.0.1 work.
#[test]
fn loopback_is_up_in_a_new_network_namespace() {
    if !can_run("loopback_is_up_in_a_new_network_namespace") {
        return;
    }
    let mut w = World::new("lo");
    w.args(&["cat", "/sys/class/net/lo/flags"]);
    let out = w.run_ok("c");
    let flags = u32::from_str_radix(out.trim().trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "IFF_UP not set: {out}");
}

/// sysfs is mounted in the container's own network namespace, so
/// /sys/class/net lists its `lo` and not the host's interfaces, and the
/// container runs in that namespace (the one the hooks and network
/// devices are given), not the host's.
#[test]
fn sysfs_and_the_process_see_the_containers_network_namespace() {
    if !can_run("sysfs_and_the_process_see_the_containers_network_namespace") {
        return;
    }
    let host: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    if host.iter().all(|n| n == "lo") {
        eprintln!("skipped: the host has no interface but lo to tell the namespaces apart");
        return;
    }
    let mine = std::fs::read_link("/proc/self/ns/net").unwrap();
    let mut w = World::new("netsys");
    w.script("ls /sys/class/net; readlink /proc/self/ns/net");
    let out = w.run_ok("c");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0], "lo", "sysfs shows other interfaces: {out}");
    assert_ne!(
        std::path::Path::new(lines[1]),
        mine,
        "the container runs in the host's network namespace"
    );
}

/// `process.scheduler.flags` with the spec's names: `SCHED_FLAG_RESET_ON_FORK`
/// with nice -5 leaves the init at -5 and resets its children to 0.
#[test]
fn scheduler_flags_take_the_specs_names() {
    if !can_run("scheduler_flags_take_the_specs_names") {
        return;
    }
    let mut w = World::new("schedflags");
    w.config["process"]["scheduler"] =
        json!({"policy": "SCHED_OTHER", "nice": -5, "flags": ["SCHED_FLAG_RESET_ON_FORK"]});
    // cat in a pipeline is forked; busybox runs a lone cut inside sh.
    w.script("cut -d' ' -f19 /proc/1/stat; cat /proc/self/stat | cut -d' ' -f19");
    let out = w.run_ok("c");
    assert_eq!(out.lines().collect::<Vec<_>>(), ["-5", "0"], "{out}");
}

/// runc's exec exits 255 when it cannot run the process ("exec failed:
/// ..."), so a caller tells that from a process that exited 1.
#[test]
fn exec_failures_exit_255() {
    if !can_run("exec_failures_exit_255") {
        return;
    }
    let mut w = sleeper("exec255");
    let id = w.running("c");
    let out = w.estiba(&["exec", &id, "no-such-program"]);
    assert_eq!(out.status.code(), Some(255), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("exec failed"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        w.estiba(&["exec", &id, "sh", "-c", "exit 1"]).status.code(),
        Some(1)
    );
    assert_eq!(
        w.estiba(&["exec", "no-such-container", "true"])
            .status
            .code(),
        Some(255)
    );
}

/// `--log FILE` takes every line the runtime writes, `--debug` ones
/// included, also those written while an exec'd process is set up inside
/// the container (where FILE's path does not exist): none reach the
/// process's stderr.
#[test]
fn log_file_takes_everything() {
    if !can_run("log_file_takes_everything") {
        return;
    }
    let mut w = sleeper("logall");
    let id = w.running("c");
    let log = w.dir.join("runtime.log");
    let log_s = log.to_string_lossy().into_owned();
    let out = w.estiba(&["--debug", "--log", &log_s, "exec", &id, "true"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        "",
        "runtime lines on the process's stderr"
    );
    let lines = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        lines.contains("level=debug"),
        "no debug line in the log: {lines:?}"
    );
    assert!(!w.rootfs().join(log.strip_prefix("/").unwrap()).exists());
}

/// `linux.devices` paths are "full paths inside the container" (spec):
/// runc makes a node outside /dev too.
#[test]
fn devices_outside_dev_are_made() {
    if !can_run("devices_outside_dev_are_made") {
        return;
    }
    let mut w = World::new("foodev");
    w.config["linux"]["devices"] =
        json!([{"path": "/foo-dev", "type": "c", "major": 1, "minor": 5, "fileMode": 438}]);
    w.script("head -c 4 /foo-dev | od -An -tx1");
    let out = w.run_ok("c");
    assert_eq!(out.trim(), "00 00 00 00", "{out}");
}

/// A rootfs whose /dev is the image's own (no /dev tmpfs in `mounts`):
/// runc makes the default nodes there, and the container runs.
#[test]
fn the_images_own_dev_gets_the_default_nodes() {
    if !can_run("the_images_own_dev_gets_the_default_nodes") {
        return;
    }
    let mut w = World::new("imagedev");
    let mounts: Vec<serde_json::Value> = w.config["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| !m["destination"].as_str().unwrap().starts_with("/dev"))
        .cloned()
        .collect();
    w.config["mounts"] = json!(mounts);
    w.config["root"]["readonly"] = json!(false);
    std::fs::create_dir_all(w.rootfs().join("dev")).unwrap();
    w.script("for d in null zero full random urandom tty; do [ -c /dev/$d ] && echo $d; done; echo x > /dev/null && echo written");
    let out = w.run_ok("c");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["null", "zero", "full", "random", "urandom", "tty", "written"],
        "{out}"
    );
}

/// A /dev tmpfs mounted `ro`: runc mounts it writable, makes the nodes,
/// links and sub-mounts (/dev/pts, /dev/shm), then remounts it read-only.
#[test]
fn a_read_only_dev_gets_its_nodes_first() {
    if !can_run("a_read_only_dev_gets_its_nodes_first") {
        return;
    }
    let mut w = World::new("rodev");
    for m in w.config["mounts"].as_array_mut().unwrap() {
        if m["destination"] == "/dev" {
            m["options"].as_array_mut().unwrap().push(json!("ro"));
        }
    }
    w.script("[ -c /dev/null ] && [ -d /dev/pts ] && echo nodes; touch /dev/new 2>/dev/null || echo read-only; grep ' /dev ' /proc/self/mounts | cut -d' ' -f4 | cut -d, -f1");
    let out = w.run_ok("c");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["nodes", "read-only", "ro"],
        "{out}"
    );
}

/// The freezer directory of cgroup `name` (v1 freezer hierarchy, or v2).
fn freezer_dir(name: &str) -> Option<(std::path::PathBuf, bool)> {
    if cgroup_v2() {
        return Some((std::path::Path::new("/sys/fs/cgroup").join(name), true));
    }
    let v1 = std::path::Path::new("/sys/fs/cgroup/freezer");
    v1.exists().then(|| (v1.join(name), false))
}

fn freezer_state(dir: &std::path::Path, v2: bool) -> String {
    if v2 {
        let ev = std::fs::read_to_string(dir.join("cgroup.events")).unwrap_or_default();
        return if ev.contains("frozen 1") {
            "FROZEN"
        } else {
            "THAWED"
        }
        .into();
    }
    std::fs::read_to_string(dir.join("freezer.state"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// `pause` returns once the cgroup is FROZEN, not while it is still
/// FREEZING (runc waits, with a bound): with busy processes to catch, the
/// state read right after pause must already say frozen, every time.
#[test]
fn pause_returns_only_when_frozen() {
    if !can_run("pause_returns_only_when_frozen") {
        return;
    }
    let mut w = World::new("pausefrozen");
    w.script("for i in $(seq 40); do (while :; do :; done) & done; wait");
    let id = w.running("c");
    let Some((dir, v2)) = freezer_dir(&id) else {
        skip!("pause_returns_only_when_frozen: no freezer here");
        return;
    };
    assert!(w.wait_pids(&id, 41).len() >= 41);
    for round in 0..30 {
        let out = w.estiba(&["pause", &id]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let now = freezer_state(&dir, v2);
        assert_eq!(now, "FROZEN", "round {round}: pause returned while {now}");
        assert_eq!(w.status(&id), "paused");
        assert!(w.estiba(&["resume", &id]).status.success());
    }
    assert!(w.estiba(&["delete", "--force", &id]).status.success());
}

/// A cgroupsPath naming a cgroup that is already frozen: runc fails fast
/// ("container's cgroup unexpectedly frozen") instead of leaving the init
/// stuck in it and create waiting forever.
#[test]
fn a_frozen_cgroup_is_refused_at_once() {
    if !can_run("a_frozen_cgroup_is_refused_at_once") {
        return;
    }
    let name = format!("estiba-it-frozen-{}", std::process::id());
    let Some((dir, v2)) = freezer_dir(&name) else {
        skip!("a_frozen_cgroup_is_refused_at_once: no freezer here");
        return;
    };
    std::fs::create_dir_all(&dir).unwrap();
    struct Thaw(std::path::PathBuf, bool);
    impl Drop for Thaw {
        fn drop(&mut self) {
            let (f, v) = if self.1 {
                ("cgroup.freeze", "0")
            } else {
                ("freezer.state", "THAWED")
            };
            let _ = std::fs::write(self.0.join(f), v);
            let _ = std::fs::remove_dir(&self.0);
        }
    }
    let thaw = Thaw(dir.clone(), v2);
    let (f, v) = if v2 {
        ("cgroup.freeze", "1")
    } else {
        ("freezer.state", "FROZEN")
    };
    std::fs::write(dir.join(f), v).unwrap();
    let mut w = sleeper("frozencg");
    w.config["linux"]["cgroupsPath"] = json!(format!("/{name}"));
    w.write_config();
    let id = w.id("c");
    // Bounded from outside: the old behaviour was to wait forever, with
    // the runtime itself stuck in the frozen cgroup until it is thawed.
    let err_path = w.dir.join("create.err");
    let mut child = std::process::Command::new(&w.bin)
        .arg("--root")
        .arg(&w.root)
        .args(["create", "--bundle"])
        .arg(&w.bundle)
        .arg(&id)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if std::time::Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let Some(status) = status else {
        drop(thaw);
        let _ = child.kill();
        let _ = child.wait();
        let _ = w.estiba(&["delete", "--force", &id]);
        panic!("create still waiting after 10s in a frozen cgroup");
    };
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    assert_eq!(status.code(), Some(1), "create: {status:?} {stderr}");
    assert!(stderr.contains("unexpectedly frozen"), "{stderr}");
    assert!(!w.root.join(&id).exists());
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    assert_eq!(procs.trim(), "", "a process was put into the frozen cgroup");
}

/// Under a parent limited to quota 50000 / period 100000, `update
/// --cpu-period 10000 --cpu-quota 3000` from quota 20000 passes in runc:
/// the period alone first would put the cgroup over its parent (EINVAL).
#[test]
fn update_cpu_period_and_quota_under_a_parent_limit() {
    if !can_run("update_cpu_period_and_quota_under_a_parent_limit") {
        return;
    }
    let cpu = std::path::Path::new("/sys/fs/cgroup/cpu");
    if cgroup_v2() || !cpu.join("cpu.cfs_period_us").exists() {
        skip!("update_cpu_period_and_quota_under_a_parent_limit: needs the v1 cpu controller (v2 writes cpu.max at once)");
        return;
    }
    let parent = format!("estiba-it-cpuparent-{}", std::process::id());
    let pdir = cpu.join(&parent);
    std::fs::create_dir_all(&pdir).unwrap();
    struct Rm(std::path::PathBuf);
    impl Drop for Rm {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(&self.0);
        }
    }
    let _rm = Rm(pdir.clone());
    std::fs::write(pdir.join("cpu.cfs_period_us"), "100000").unwrap();
    std::fs::write(pdir.join("cpu.cfs_quota_us"), "50000").unwrap();
    let mut w = sleeper("cpuupdate");
    let id = w.id("c");
    w.config["linux"]["cgroupsPath"] = json!(format!("/{parent}/{id}"));
    w.config["linux"]["resources"]["cpu"] = json!({"quota": 20000, "period": 100000});
    w.write_config();
    let bundle = w.bundle.to_string_lossy().into_owned();
    let out = w.estiba(&["run", "-d", "--bundle", &bundle, &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = w.estiba(&[
        "update",
        "--cpu-period",
        "10000",
        "--cpu-quota",
        "3000",
        &id,
    ]);
    let cdir = pdir.join(&id);
    let read = |f: &str| {
        std::fs::read_to_string(cdir.join(f))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let got = (read("cpu.cfs_period_us"), read("cpu.cfs_quota_us"));
    let _ = w.estiba(&["delete", "--force", &id]);
    assert!(out.status.success(), "update: {}", text(&out.stderr));
    assert_eq!(got, ("10000".into(), "3000".into()));
}

/// The config `spec` (and `spec --rootless`) writes into `dir`.
fn spec_of(bin: &std::path::Path, dir: &std::path::Path, rootless: bool) -> serde_json::Value {
    std::fs::create_dir_all(dir).unwrap();
    let _ = std::fs::remove_file(dir.join("config.json"));
    let mut cmd = std::process::Command::new(bin);
    cmd.arg("spec").arg("--bundle").arg(dir);
    if rootless {
        cmd.arg("--rootless");
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{bin:?} spec: {}", text(&out.stderr));
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    // Each runtime's name and spec version are its own.
    let o = v.as_object_mut().unwrap();
    o.remove("ociVersion");
    o.remove("hostname");
    v
}

/// `spec` writes what `runc spec` writes on this host, `--rootless` too
/// (namespaces included: runc adds a cgroup namespace only on a cgroup v2
/// host), and refuses to overwrite a config.json in runc's words. runc 1.2
/// stopped writing an ambient set; an older runc's is left out of the
/// comparison.
#[test]
fn spec_writes_runcs_default_config() {
    if !can_run("spec_writes_runcs_default_config") {
        return;
    }
    let Some(runc) = runc_binary() else {
        skip!("spec_writes_runcs_default_config: runc is not installed");
        return;
    };
    // The world's directory goes with it, pass or fail.
    let w = World::new("specrunc");
    let dir = w.dir.join("spec");
    for rootless in [false, true] {
        let ours = spec_of(&binary(), &dir.join("ours"), rootless);
        let mut theirs = spec_of(&runc, &dir.join("runc"), rootless);
        if let Some(caps) = theirs["process"]["capabilities"].as_object_mut() {
            caps.remove("ambient");
        }
        assert_eq!(
            ours,
            theirs,
            "rootless {rootless}:\nestiba {}\nrunc {}",
            serde_json::to_string_pretty(&ours).unwrap(),
            serde_json::to_string_pretty(&theirs).unwrap()
        );
    }
    let out = std::process::Command::new(binary())
        .args(["spec", "--bundle"])
        .arg(dir.join("ours"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("exists. Remove it first"),
        "{}",
        text(&out.stderr)
    );
}

/// Runs `args` with estiba and, when installed, runc (each on its own
/// containers of the same bundle), and checks both fail with `code` and
/// say `phrase`: the words are runc's, engines and scripts match on them.
fn both_refuse(w: &World, args: &[&str], code: i32, phrase: &str) {
    let ours = w.estiba(args);
    assert_eq!(
        ours.status.code(),
        Some(code),
        "estiba {args:?}: {}",
        text(&ours.stderr)
    );
    assert!(
        text(&ours.stderr).contains(phrase),
        "estiba {args:?}: want {phrase:?} in {:?}",
        text(&ours.stderr)
    );
    if let Some(theirs) = w.runc(args) {
        assert_eq!(
            theirs.status.code(),
            Some(code),
            "runc {args:?}: {}",
            text(&theirs.stderr)
        );
        assert!(
            text(&theirs.stderr).contains(phrase),
            "the phrase is not runc's: runc {args:?} said {:?}",
            text(&theirs.stderr)
        );
    }
}

/// Runs `args` with estiba and, when installed, runc; both must succeed.
fn both_ok(w: &World, args: &[&str]) {
    let ours = w.estiba(args);
    assert!(
        ours.status.success(),
        "estiba {args:?}: {}",
        text(&ours.stderr)
    );
    if let Some(theirs) = w.runc(args) {
        assert!(
            theirs.status.success(),
            "runc {args:?}: {}",
            text(&theirs.stderr)
        );
    }
}

/// The common refusals (no such container, an id taken, start, kill,
/// pause, resume, exec and delete in the wrong state, a bad id, a config
/// runc calls invalid) carry runc's words and exit codes; where runc is
/// installed, the same commands are run with it to show the words are its.
#[test]
fn refusals_carry_runcs_words() {
    if !can_run("refusals_carry_runcs_words") {
        return;
    }
    let mut w = sleeper("words");
    w.write_config();
    let bundle = w.bundle.to_string_lossy().into_owned();
    let id = w.id("c");
    let id = id.as_str();
    let create = ["create", "--bundle", bundle.as_str(), id];
    both_refuse(
        &w,
        &["state", "no-such-container"],
        1,
        "container does not exist",
    );
    assert!(w.estiba(&create).status.success());
    if let Some(out) = w.runc(&create) {
        assert!(out.status.success(), "runc create: {}", text(&out.stderr));
    }
    both_refuse(&w, &create, 1, "container with given ID already exists");
    both_ok(&w, &["start", id]);
    both_refuse(
        &w,
        &["start", id],
        1,
        "cannot start an already running container",
    );
    both_refuse(&w, &["resume", id], 1, "container not paused");
    both_refuse(&w, &["delete", id], 1, "that is not stopped");
    both_ok(&w, &["pause", id]);
    both_refuse(
        &w,
        &["exec", id, "true"],
        255,
        "cannot exec in a paused container",
    );
    both_ok(&w, &["resume", id]);
    for rt in [
        Some(w.estiba(&["kill", id, "KILL"])),
        w.runc(&["kill", id, "KILL"]),
    ] {
        assert!(rt.is_none_or(|o| o.status.success()));
    }
    assert!(w.wait_status(id, "stopped"));
    if w.runc(&["state", id]).is_some() {
        assert!((0..500).any(|_| {
            std::thread::sleep(Duration::from_millis(10));
            w.runc(&["state", id])
                .is_some_and(|o| text(&o.stdout).contains("\"stopped\""))
        }));
    }
    both_refuse(
        &w,
        &["start", id],
        1,
        "cannot start a container that has stopped",
    );
    both_refuse(&w, &["kill", id, "KILL"], 1, "container not running");
    both_refuse(&w, &["pause", id], 1, "container not running");
    both_refuse(
        &w,
        &["exec", id, "true"],
        255,
        "cannot exec in a stopped container",
    );
    both_refuse(
        &w,
        &["create", "--bundle", bundle.as_str(), "../x"],
        1,
        "invalid container ID format",
    );
    // A namespace type listed twice: runc refuses the config as malformed.
    {
        let mut w = sleeper("words-dupns");
        w.config["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "uts"}));
        w.write_config();
        let bundle = w.bundle.to_string_lossy().into_owned();
        let id = w.id("d");
        both_refuse(
            &w,
            &["run", "-d", "--bundle", bundle.as_str(), id.as_str()],
            1,
            "duplicated ns",
        );
    }
    // A limit this host's cgroups cannot hold: runc calls it invalid.
    if !cgroup_v2() {
        let mut w = sleeper("words-unified");
        w.config["linux"]["resources"]["unified"] = json!({"memory.min": "131072"});
        w.write_config();
        let bundle = w.bundle.to_string_lossy().into_owned();
        let id = w.id("u");
        both_refuse(
            &w,
            &["run", "-d", "--bundle", bundle.as_str(), id.as_str()],
            1,
            "invalid configuration",
        );
    }
}

/// The keys of the JSON object on `out`, in the order printed.
fn keys(v: &serde_json::Value) -> Vec<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

/// `state`, `list --format json` and `events` print their keys in runc's
/// order (its structs' field order: scripts match on the text).
#[test]
fn json_output_keeps_runcs_key_order() {
    if !can_run("json_output_keeps_runcs_key_order") {
        return;
    }
    let mut w = sleeper("jsonorder");
    w.config["annotations"] = json!({"org.example": "x"});
    let id = w.running("c");
    let state_keys = [
        "ociVersion",
        "id",
        "pid",
        "status",
        "bundle",
        "rootfs",
        "created",
        "annotations",
        "owner",
    ];
    let state: serde_json::Value =
        serde_json::from_slice(&w.estiba(&["state", &id]).stdout).unwrap();
    assert_eq!(keys(&state), state_keys, "state");
    let list: serde_json::Value =
        serde_json::from_slice(&w.estiba(&["list", "--format", "json"]).stdout).unwrap();
    assert_eq!(keys(&list[0]), state_keys, "list");
    let ev: serde_json::Value =
        serde_json::from_slice(&w.estiba(&["events", "--stats", &id]).stdout).unwrap();
    assert_eq!(keys(&ev), ["type", "id", "data"], "events");
    // runc's own, on the same bundle, where installed.
    let bundle = w.bundle.to_string_lossy().into_owned();
    if let Some(out) = w.runc(&["run", "-d", "--bundle", &bundle, &id]) {
        assert!(out.status.success(), "runc run: {}", text(&out.stderr));
        let theirs: serde_json::Value =
            serde_json::from_slice(&w.runc(&["state", &id]).unwrap().stdout).unwrap();
        assert_eq!(keys(&state), keys(&theirs), "runc's state");
        let ev: serde_json::Value =
            serde_json::from_slice(&w.runc(&["events", "--stats", &id]).unwrap().stdout).unwrap();
        assert_eq!(keys(&ev), ["type", "id", "data"], "runc's events");
    }
}

/// runc's `state` leaves "owner" empty; its `list` names the owner of the
/// container's state directory from /etc/passwd (`#<uid>` without a name),
/// in the JSON and in the table.
#[test]
fn owner_is_empty_in_state_and_named_in_list_as_runc_does() {
    if !can_run("owner_is_empty_in_state_and_named_in_list_as_runc_does") {
        return;
    }
    let mut w = sleeper("owner");
    let id = w.running("c");
    let uid = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(w.root.join(&id)).unwrap());
    let named = std::fs::read_to_string("/etc/passwd")
        .unwrap_or_default()
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 2 && f[2] == uid.to_string())
        .map(|f| f[0].to_string())
        .unwrap_or(format!("#{uid}"));
    let state: serde_json::Value =
        serde_json::from_slice(&w.estiba(&["state", &id]).stdout).unwrap();
    assert_eq!(state["owner"], "", "state");
    let list: serde_json::Value =
        serde_json::from_slice(&w.estiba(&["list", "--format", "json"]).stdout).unwrap();
    assert_eq!(list[0]["owner"], named.as_str(), "list --format json");
    let table = text(&w.estiba(&["list"]).stdout);
    let row = table
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_default();
    assert_eq!(
        row.split_whitespace().last(),
        Some(named.as_str()),
        "{table}"
    );
    // runc's own, on the same bundle, where installed.
    let bundle = w.bundle.to_string_lossy().into_owned();
    if let Some(out) = w.runc(&["run", "-d", "--bundle", &bundle, &id]) {
        assert!(out.status.success(), "runc run: {}", text(&out.stderr));
        let theirs: serde_json::Value =
            serde_json::from_slice(&w.runc(&["state", &id]).unwrap().stdout).unwrap();
        assert_eq!(theirs["owner"], state["owner"], "runc's state");
        let theirs: serde_json::Value =
            serde_json::from_slice(&w.runc(&["list", "--format", "json"]).unwrap().stdout).unwrap();
        assert_eq!(theirs[0]["owner"], list[0]["owner"], "runc's list");
    }
}
