//! The devices cgroup as runc keeps it (issue 13): rules start from a
//! deny-all (a config without rules gets only the default devices), only
//! the writes that change something are made (a rule taken back later in
//! the list is never written, so a parent that forbids it is no
//! obstacle), and `update` leaves the device rules alone.

use estiba_integration::skip;
use estiba_integration::*;
use serde_json::json;

/// A block node (7:250) the loop driver has no device for: an open the
/// cgroup allows reaches the driver (ENXIO), a denied one is EPERM.
fn with_node(w: &mut World) {
    w.config["linux"]["devices"] =
        json!([{"path": "/dev/probe", "type": "b", "major": 7, "minor": 250}]);
}

const OPEN_PROBE: &str = "head -c0 /dev/probe 2>&1; echo done";

/// Whether the container's open of /dev/probe passed the device cgroup.
fn passed(out: &str) -> bool {
    out.contains("done") && !out.contains("not permitted")
}

/// A container opening /dev/probe: the result for estiba and, where
/// installed, runc on the same bundle.
fn open_probe(w: &mut World, suffix: &str) -> (String, Option<String>) {
    with_node(w);
    w.script(OPEN_PROBE);
    let out = w.run(suffix);
    let ours = text(&out.stdout) + &text(&out.stderr);
    let bundle = w.bundle.to_string_lossy().into_owned();
    let id = format!("{}-{suffix}", w.name);
    let theirs = w
        .runc(&["run", "--bundle", &bundle, &id])
        .map(|o| text(&o.stdout) + &text(&o.stderr));
    (ours, theirs)
}

/// No `linux.resources.devices` at all: as under runc, the container still
/// gets only the default devices (v1 rules or v2 program start from a
/// deny-all); a device node it was given does not open.
#[test]
fn without_device_rules_only_the_defaults_are_allowed() {
    if !can_run("without_device_rules_only_the_defaults_are_allowed") {
        return;
    }
    let mut w = World::new("nodevrules");
    if let Some(r) = w.config["linux"]["resources"].as_object_mut() {
        r.remove("devices");
    }
    let (ours, theirs) = open_probe(&mut w, "a");
    assert!(!passed(&ours), "estiba let it open: {ours}");
    if let Some(theirs) = theirs {
        assert!(!passed(&theirs), "runc let it open: {theirs}");
    }
    // An explicit allow lets it through, with both.
    w.config["linux"]["resources"]["devices"] = json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "b", "major": 7, "minor": 250, "access": "r"}
    ]);
    let (ours, theirs) = open_probe(&mut w, "b");
    assert!(passed(&ours), "estiba: {ours}");
    if let Some(theirs) = theirs {
        assert!(passed(&theirs), "runc: {theirs}");
    }
}

/// A v1 parent cgroup of the test's in deny mode, allowing only the
/// default devices; removed on drop.
struct DenyingParent(std::path::PathBuf);

impl DenyingParent {
    fn make(name: &str) -> Option<DenyingParent> {
        let dir = std::path::Path::new("/sys/fs/cgroup/devices").join(name);
        std::fs::create_dir(&dir).ok()?;
        let p = DenyingParent(dir);
        std::fs::write(p.0.join("devices.deny"), "a").ok()?;
        for rule in [
            "c *:* m",
            "b *:* m",
            "c 1:3 rwm",
            "c 1:5 rwm",
            "c 1:7 rwm",
            "c 1:8 rwm",
            "c 1:9 rwm",
            "c 5:0 rwm",
            "c 5:1 rwm",
            "c 5:2 rwm",
            "c 136:* rwm",
            "c 10:200 rwm",
        ] {
            std::fs::write(p.0.join("devices.allow"), rule).ok()?;
        }
        Some(p)
    }
}

impl Drop for DenyingParent {
    fn drop(&mut self) {
        // Also the parent runc made in the other hierarchies (runc leaves
        // the parents it makes); each is empty by now.
        let name = self.0.file_name().unwrap_or_default().to_owned();
        for root in hierarchy_roots() {
            let _ = std::fs::remove_dir(root.join(&name));
        }
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// An allow the list takes back later ([deny-all, allow c 1:11, deny
/// c 1:11]) leaves nothing to write for that device; under a parent that
/// forbids /dev/kmsg, writing it anyway fails create with EPERM (the rules
/// were written as listed before). runc computes the same minimal writes.
#[test]
fn a_rule_taken_back_is_never_written() {
    if !can_run("a_rule_taken_back_is_never_written") {
        return;
    }
    if cgroup_v2() || !std::path::Path::new("/sys/fs/cgroup/devices").is_dir() {
        skip!("a_rule_taken_back_is_never_written: needs the v1 devices hierarchy");
        return;
    }
    let mut w = World::new("devtaken");
    let Some(parent) = DenyingParent::make(&w.name) else {
        skip!("a_rule_taken_back_is_never_written: cannot make a v1 devices cgroup here");
        return;
    };
    w.config["linux"]["cgroupsPath"] = json!(format!("/{}/c", w.name));
    w.config["linux"]["resources"]["devices"] = json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "rwm"},
        {"allow": false, "type": "c", "major": 1, "minor": 11, "access": "rwm"}
    ]);
    w.script("echo ok > /dev/null && echo fine");
    let out = w.run("c");
    assert!(
        out.status.success() && text(&out.stdout).contains("fine"),
        "estiba: {}",
        text(&out.stderr)
    );
    let bundle = w.bundle.to_string_lossy().into_owned();
    // runc's container on its own cgroup path under the same parent.
    w.config["linux"]["cgroupsPath"] = json!(format!("/{}/r", w.name));
    w.write_config();
    if let Some(o) = w.runc(&["run", "--bundle", &bundle, "runc-devtaken"]) {
        assert!(o.status.success(), "runc: {}", text(&o.stderr));
    }
    drop(w);
    drop(parent);
}

/// `update --resources` with device rules leaves the container's rules
/// alone, as runc's update does (a device plugin may have added its own):
/// a device the container may open stays open to it.
#[test]
fn update_leaves_device_rules_alone() {
    if !can_run("update_leaves_device_rules_alone") {
        return;
    }
    let mut w = World::new("devupdate");
    with_node(&mut w);
    w.config["linux"]["resources"]["devices"] = json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "b", "major": 7, "minor": 250, "access": "r"}
    ]);
    w.args(&["sleep", "1000"]);
    let id = w.running("c");
    let res = w.dir.join("res.json");
    std::fs::write(
        &res,
        json!({"devices": [{"allow": false, "access": "rwm"}], "pids": {"limit": 100}}).to_string(),
    )
    .unwrap();
    let res_s = res.to_string_lossy().into_owned();
    let out = w.estiba(&["update", "--resources", &res_s, &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = w.estiba(&["exec", &id, "sh", "-c", OPEN_PROBE]);
    let o = text(&out.stdout) + &text(&out.stderr);
    assert!(passed(&o), "the device is denied after update: {o}");
}
