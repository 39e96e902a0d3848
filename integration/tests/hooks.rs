//! Hooks run in spec order, get the state on stdin, and a failing hook
//! fails its step (or only warns, for poststart/poststop).

use estiba_integration::{can_run, cgroup_dirs, text, World};
use serde_json::{json, Value};

fn hook(log: &std::path::Path, stage: &str, extra: &str) -> Value {
    json!({"path": "/bin/sh", "args": ["sh", "-c", format!("read -r s; echo \"{stage} $s\" >> {}; {extra}", log.display())]})
}

#[test]
fn all_stages_in_order_with_state() {
    if !can_run("all_stages_in_order_with_state") {
        return;
    }
    let mut w = World::new("hooks");
    let log = w.dir.join("hooks.log");
    let stages = [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ];
    let mut hooks = serde_json::Map::new();
    for s in stages {
        hooks.insert(s.to_string(), json!([hook(&log, s, "")]));
    }
    // startContainer runs inside the container: its /bin/sh is busybox and
    // the log path must be inside too.
    hooks.insert("startContainer".into(), json!([{"path": "/bin/sh", "args": ["sh", "-c", "read -r s; echo \"startContainer $s\" > /tmp/start.log"]}]));
    w.config["hooks"] = Value::Object(hooks);
    w.config["root"]["readonly"] = json!(false);
    w.args(&["sleep", "100"]);
    let (id, out) = w.create("c", &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let after_create = std::fs::read_to_string(&log).unwrap();
    let order: Vec<&str> = after_create
        .lines()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(order, vec!["prestart", "createRuntime", "createContainer"]);
    for line in after_create.lines() {
        let state: Value = serde_json::from_str(line.split_once(' ').unwrap().1).unwrap();
        assert_eq!(state["id"], id.as_str());
        // Lifecycle step 2 is over when these run (the spec's state section).
        assert_eq!(state["status"], "created");
        assert!(state["pid"].as_i64().unwrap() > 0);
        assert_eq!(state["bundle"], w.bundle.to_string_lossy().as_ref());
    }
    assert!(w.estiba(&["start", &id]).status.success());
    let all = std::fs::read_to_string(&log).unwrap();
    assert!(
        all.lines().last().unwrap().starts_with("poststart "),
        "{all}"
    );
    let ps: Value =
        serde_json::from_str(all.lines().last().unwrap().split_once(' ').unwrap().1).unwrap();
    assert_eq!(ps["status"], "running");
    let sc = std::fs::read_to_string(w.rootfs().join("tmp/start.log")).unwrap();
    assert!(sc.starts_with("startContainer {"), "{sc}");
    assert!(w.estiba(&["delete", "--force", &id]).status.success());
    let all = std::fs::read_to_string(&log).unwrap();
    let last = all.lines().last().unwrap();
    assert!(last.starts_with("poststop "), "{all}");
    let st: Value = serde_json::from_str(last.split_once(' ').unwrap().1).unwrap();
    assert_eq!(st["status"], "stopped");
}

#[test]
fn failing_create_runtime_hook_fails_create_and_cleans_up() {
    if !can_run("failing_create_runtime_hook_fails_create_and_cleans_up") {
        return;
    }
    let mut w = World::new("hookfail");
    w.config["hooks"] = json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "echo broken-hook >&2; exit 4"]}]});
    w.args(&["sleep", "100"]);
    let (id, out) = w.create("c", &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("createRuntime") && err.contains("broken-hook"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(!w.root.join(&id).exists());
    assert!(cgroup_dirs(&id).is_empty());
}

/// Spec 1.3 and runc: a failing poststart hook is an error; the container
/// is stopped and waits for `delete`, which runs the poststop hooks. The
/// hooks after the failing one do not run (runc stops at the first).
#[test]
fn failing_poststart_stops_the_container() {
    if !can_run("failing_poststart_stops_the_container") {
        return;
    }
    let mut w = World::new("poststart");
    let log = w.dir.join("hooks.log");
    let log_s = log.to_string_lossy().into_owned();
    let hook = |name: &str, code: i32| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("echo {name} >> {log_s}; exit {code}")]});
    w.config["hooks"] = json!({
        "poststart": [hook("first", 0), hook("failing", 3), hook("after", 0)],
        "poststop": [hook("poststop", 0)]
    });
    w.args(&["sleep", "100"]);
    let (id, out) = w.create("c", &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = w.estiba(&["start", &id]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("poststart hook #1"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(w.status(&id), "stopped");
    assert!(w.estiba(&["delete", &id]).status.success());
    let ran = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(
        ran.lines().collect::<Vec<_>>(),
        ["first", "failing", "poststop"]
    );
    // (Not compared with an installed runc: runc 1.1 runs poststart hooks
    // during create, which runc 1.2 fixed; Debian's is 1.1.5.)
}

#[test]
fn hook_timeout() {
    if !can_run("hook_timeout") {
        return;
    }
    let mut w = World::new("hooktimeout");
    w.config["hooks"] =
        json!({"prestart": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]});
    let t = std::time::Instant::now();
    let (id, out) = w.create("c", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("timed out"),
        "{}",
        text(&out.stderr)
    );
    assert!(t.elapsed().as_secs() < 10);
    assert!(!w.root.join(&id).exists());
}

/// `run` starts the process itself (no `start` connects): every stage
/// still runs in order, poststart after the process exists and before run
/// waits; a failing startContainer hook is run's error (runc: "error
/// running startContainer hook"), the poststop hooks run once and nothing
/// is left.
#[test]
fn run_runs_every_stage_and_fails_on_start_container() {
    if !can_run("run_runs_every_stage_and_fails_on_start_container") {
        return;
    }
    let mut w = World::new("hookrun");
    let log = w.dir.join("hooks.log");
    let mut hooks = serde_json::Map::new();
    for s in ["prestart", "createRuntime", "poststart", "poststop"] {
        hooks.insert(s.to_string(), json!([hook(&log, s, "")]));
    }
    w.config["hooks"] = Value::Object(hooks.clone());
    w.args(&["true"]);
    let id = w.id("ok");
    let bundle = w.bundle.to_string_lossy().into_owned();
    w.write_config();
    let out = w.estiba(&["run", "--bundle", &bundle, &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stages: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(
        stages,
        ["prestart", "createRuntime", "poststart", "poststop"],
        "run's hooks"
    );
    let _ = std::fs::remove_file(&log);

    hooks.insert(
        "startContainer".into(),
        json!([{"path": "/bin/sh", "args": ["sh", "-c", "echo broken-start >&2; exit 3"]}]),
    );
    w.config["hooks"] = Value::Object(hooks);
    w.args(&["sleep", "100"]);
    w.write_config();
    let id = w.id("bad");
    let out = w.estiba(&["run", "--bundle", &bundle, &id]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("startContainer"), "{err}");
    let stages: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(stages, ["prestart", "createRuntime", "poststop"], "{err}");
    assert!(!w.root.join(&id).exists(), "state left");
    assert!(cgroup_dirs(&id).is_empty(), "cgroup left");
}
