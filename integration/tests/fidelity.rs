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
