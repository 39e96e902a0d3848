//! Rootless (issue 16): a real unprivileged account, made by each test and
//! removed after it, runs containers with estiba as runc's rootless mode
//! lets it: `spec --rootless`, state under $XDG_RUNTIME_DIR, its own id
//! mapped to root (or its subordinate ranges through newuidmap), and no
//! cgroup where it owns none unless a limit needs one.

use estiba_integration::skip;
use estiba_integration::*;
use serde_json::json;

/// A world whose config is the one `spec --rootless` writes for `user`,
/// given to the user, running `script`.
fn rootless_world(user: &PlainUser, name: &str, script: &str) -> World {
    let mut w = World::new(name);
    w.config = user.rootless_spec();
    w.config["process"]["terminal"] = json!(false);
    w.script(script);
    w
}

/// Writes the config and gives the world to the user.
fn hand_over(user: &PlainUser, w: &World) {
    w.write_config();
    user.give(&w.dir);
}

fn needs_root_and_user(test: &str) -> Option<PlainUser> {
    if !can_run(test) {
        return None;
    }
    PlainUser::make(test)
}

/// The account runs the config `spec --rootless` gives it: in the
/// container it is root, through a one-line map of its own ids, with
/// setgroups denied (the kernel's rule for an unprivileged gid map), and
/// the state goes under its $XDG_RUNTIME_DIR (runc's default root).
#[test]
fn a_plain_user_runs_a_container() {
    let Some(user) = needs_root_and_user("a_plain_user_runs_a_container") else {
        return;
    };
    let mut w = rootless_world(
        &user,
        "rl-run",
        "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups",
    );
    hand_over(&user, &w);
    let id = w.id("c");
    let bundle = w.bundle.to_string_lossy().into_owned();
    let out = user.estiba_ok(&["run", "--bundle", &bundle, &id]);
    let lines: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        lines,
        [
            "0".to_string(),
            "0".to_string(),
            format!("0 {} 1", user.uid),
            format!("0 {} 1", user.gid),
            "deny".to_string(),
        ],
        "{out}"
    );
    // The state was the user's, in its runtime dir, and is gone with `run`.
    let root = user.runtime_dir.join("estiba");
    assert!(root.is_dir(), "no state root {root:?}");
    assert!(!root.join(&id).exists(), "state of {id} left behind");
}

/// With subordinate ids (/etc/subuid, /etc/subgid) the whole 65536-id
/// range is mapped through newuidmap/newgidmap: a process runs as uid and
/// gid 1000 with an additional group (setgroups is allowed then), and a
/// file the image gives to subordinate id 5 is 5's inside.
#[test]
fn subordinate_ids_are_mapped_through_newuidmap() {
    let Some(user) = needs_root_and_user("subordinate_ids_are_mapped_through_newuidmap") else {
        return;
    };
    let (subuid, subgid, n) = user.subids;
    let mut w = rootless_world(
        &user,
        "rl-subids",
        "id; wc -l < /proc/self/uid_map; stat -c '%u %g' /etc/owned",
    );
    w.config["linux"]["uidMappings"] = json!([
        {"containerID": 0, "hostID": user.uid, "size": 1},
        {"containerID": 1, "hostID": subuid, "size": n},
    ]);
    w.config["linux"]["gidMappings"] = json!([
        {"containerID": 0, "hostID": user.gid, "size": 1},
        {"containerID": 1, "hostID": subgid, "size": n},
    ]);
    w.config["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [1001]});
    let owned = w.rootfs().join("etc/owned");
    std::fs::write(&owned, "x").unwrap();
    hand_over(&user, &w);
    // Host id subuid+4 is container id 5 (container 1 = subuid).
    std::os::unix::fs::chown(&owned, Some(subuid + 4), Some(subgid + 4)).unwrap();
    let id = w.id("c");
    let bundle = w.bundle.to_string_lossy().into_owned();
    let out = user.estiba_ok(&["run", "--bundle", &bundle, &id]);
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0].starts_with("uid=1000 gid=1000") && lines[0].contains("1001"),
        "{out}"
    );
    assert_eq!(lines[1], "2", "{out}");
    assert_eq!(lines[2], "5 5", "{out}");
}

/// The lifecycle as the account, with no cgroup (it owns none on this
/// host): create, state, start, exec, ps (the init and its descendants),
/// kill, delete. What needs a cgroup says so: pause, update.
#[test]
fn a_plain_users_lifecycle_without_a_cgroup() {
    let Some(user) = needs_root_and_user("a_plain_users_lifecycle_without_a_cgroup") else {
        return;
    };
    let mut w = rootless_world(&user, "rl-life", "sleep 100");
    w.args(&["sleep", "100"]);
    hand_over(&user, &w);
    let id = w.id("c");
    let bundle = w.bundle.to_string_lossy().into_owned();
    let out = user.estiba_detached(&["create", "--bundle", &bundle, &id]);
    assert!(out.status.success(), "create: {}", text(&out.stderr));
    let state: serde_json::Value =
        serde_json::from_str(&user.estiba_ok(&["state", &id])).expect("state JSON");
    assert_eq!(state["status"], "created");
    let init = state["pid"].as_i64().unwrap();
    // Another user (root, in its own state root) does not see it.
    let roots = w.estiba(&["list", "-q"]);
    assert!(!text(&roots.stdout).contains(&id));
    user.estiba_ok(&["start", &id]);
    assert_eq!(user.estiba_ok(&["exec", &id, "id", "-u"]).trim(), "0");
    let out = user.estiba_detached(&["exec", "-d", &id, "sleep", "50"]);
    assert!(out.status.success(), "exec -d: {}", text(&out.stderr));
    let ps: Vec<i64> =
        serde_json::from_str(&user.estiba_ok(&["ps", "--format", "json", &id])).expect("ps JSON");
    assert!(
        ps.contains(&init) && ps.len() == 2,
        "ps: {ps:?} (init {init})"
    );
    for pid in &ps {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
        assert!(
            uid_line.split_whitespace().nth(1) == Some(&user.uid.to_string()),
            "{pid}: {uid_line}"
        );
    }
    let out = user.estiba(&["pause", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("freezer"),
        "{}",
        text(&out.stderr)
    );
    let out = user.estiba(&["update", "--memory", "64m", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("could not join or create cgroup"),
        "{}",
        text(&out.stderr)
    );
    user.estiba_ok(&["kill", "--all", &id, "KILL"]);
    let stopped = (0..200).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(20));
        text(&user.estiba(&["state", &id]).stdout).contains("\"stopped\"")
    });
    assert!(stopped, "not stopped after kill");
    user.estiba_ok(&["delete", &id]);
    assert!(!user.runtime_dir.join("estiba").join(&id).exists());
    for pid in ps {
        assert!(!alive(pid), "{pid} outlived delete");
    }
}

/// A limit needs a cgroup: where the account can make none, create fails
/// in runc's words and leaves nothing; so does a cgroupsPath it cannot
/// make (asked for, so never gone without).
#[test]
fn limits_without_a_cgroup_are_refused() {
    let Some(user) = needs_root_and_user("limits_without_a_cgroup_are_refused") else {
        return;
    };
    if cgroup_v2() {
        skip!("limits_without_a_cgroup_are_refused: on cgroup v2 the account may own a delegated cgroup");
        return;
    }
    let mut w = rootless_world(&user, "rl-limits", "true");
    w.config["linux"]["resources"] = json!({"memory": {"limit": 67108864}});
    hand_over(&user, &w);
    let id = w.id("c");
    let bundle = w.bundle.to_string_lossy().into_owned();
    let out = user.estiba(&["run", "--bundle", &bundle, &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("cannot set memory limit")
            && text(&out.stderr).contains("could not join or create cgroup"),
        "{}",
        text(&out.stderr)
    );
    assert!(user.estiba_ok(&["list", "-q"]).trim().is_empty());
    w.config["linux"]["resources"] = json!({});
    w.config["linux"]["cgroupsPath"] = json!(format!("/{id}-asked"));
    hand_over(&user, &w);
    let out = user.estiba(&["run", "--bundle", &bundle, &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("permission denied"),
        "{}",
        text(&out.stderr)
    );
    assert!(user.estiba_ok(&["list", "-q"]).trim().is_empty());
}

/// cgroup v2 with a subtree delegated to the account (as systemd's
/// `Delegate=yes` gives one): the container's cgroup is made in it with
/// its limits, seen from inside; pause and resume freeze it; update
/// changes a limit; delete removes it.
#[test]
fn a_delegated_cgroup_holds_the_limits() {
    if !cgroup_v2() {
        skip!("a_delegated_cgroup_holds_the_limits: needs a cgroup v2 host (the v2 guest runs it)");
        return;
    }
    let Some(mut user) = needs_root_and_user("a_delegated_cgroup_holds_the_limits") else {
        return;
    };
    let Some(deleg) = user.delegate_cgroup() else {
        skip!(
            "a_delegated_cgroup_holds_the_limits: the cgroup v2 hierarchy is not at /sys/fs/cgroup"
        );
        return;
    };
    let mut w = rootless_world(&user, "rl-deleg", "sleep 100");
    w.args(&["sleep", "100"]);
    w.config["linux"]["resources"] = json!({"memory": {"limit": 67108864}, "pids": {"limit": 20}});
    hand_over(&user, &w);
    let id = w.id("c");
    let bundle = w.bundle.to_string_lossy().into_owned();
    let out = user.estiba_detached(&["create", "--bundle", &bundle, &id]);
    assert!(out.status.success(), "create: {}", text(&out.stderr));
    let cg = deleg.join(&id);
    let read = |f: &str| {
        std::fs::read_to_string(cg.join(f))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|e| format!("{f}: {e}"))
    };
    assert_eq!(read("memory.max"), "67108864");
    assert_eq!(read("pids.max"), "20");
    user.estiba_ok(&["start", &id]);
    assert_eq!(
        user.estiba_ok(&["exec", &id, "cat", "/sys/fs/cgroup/memory.max"])
            .trim(),
        "67108864"
    );
    user.estiba_ok(&["pause", &id]);
    assert!(text(&user.estiba(&["state", &id]).stdout).contains("\"paused\""));
    assert_eq!(read("cgroup.freeze"), "1");
    user.estiba_ok(&["resume", &id]);
    assert_eq!(read("cgroup.freeze"), "0");
    user.estiba_ok(&["update", "--memory", "96m", &id]);
    assert_eq!(read("memory.max"), "100663296");
    let stats: serde_json::Value =
        serde_json::from_str(&user.estiba_ok(&["events", "--stats", &id])).expect("events JSON");
    assert_eq!(stats["type"], "stats");
    assert_eq!(
        stats["data"]["memory"]["usage"]["limit"], 100663296,
        "{stats}"
    );
    let state: serde_json::Value =
        serde_json::from_str(&user.estiba_ok(&["state", &id])).expect("state JSON");
    let ps: Vec<i64> =
        serde_json::from_str(&user.estiba_ok(&["ps", "--format", "json", &id])).expect("ps JSON");
    assert_eq!(ps, [state["pid"].as_i64().unwrap()]);
    user.estiba_ok(&["delete", "--force", &id]);
    assert!(!cg.exists(), "{cg:?} left by delete");
}

/// `--rootless` as runc takes it: `false` makes a cgroup the account
/// cannot make an error (the cgroup is required); `true` and `auto` let
/// the container go without; anything else is refused.
#[test]
fn the_rootless_flag_takes_runcs_values() {
    let Some(user) = needs_root_and_user("the_rootless_flag_takes_runcs_values") else {
        return;
    };
    let w = rootless_world(&user, "rl-flag", "true");
    hand_over(&user, &w);
    let bundle = w.bundle.to_string_lossy().into_owned();
    let mut w = w;
    for (value, ok) in [
        ("true", true),
        ("auto", true),
        ("1", true),
        ("false", false),
    ] {
        let id = w.id(&format!("f{value}"));
        let out = user.estiba(&["--rootless", value, "run", "--bundle", &bundle, &id]);
        assert_eq!(
            out.status.success(),
            ok,
            "--rootless {value}: {}",
            text(&out.stderr)
        );
        if !ok {
            assert!(
                text(&out.stderr).contains("permission denied"),
                "{}",
                text(&out.stderr)
            );
        }
    }
    let id = w.id("bogus");
    let out = user.estiba(&["--rootless", "maybe", "run", "--bundle", &bundle, &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--rootless"),
        "{}",
        text(&out.stderr)
    );
    assert!(user.estiba_ok(&["list", "-q"]).trim().is_empty());
}

/// Another user's containers are out of reach: root's container, in a
/// state root the account names itself, can be neither read, signalled,
/// entered nor deleted by it, and runs on.
#[test]
fn another_users_containers_are_out_of_reach() {
    let Some(user) = needs_root_and_user("another_users_containers_are_out_of_reach") else {
        return;
    };
    let mut w = World::new("rl-theirs");
    w.args(&["sleep", "100"]);
    let id = w.running("c");
    let root = w.root.to_string_lossy().into_owned();
    for args in [
        vec!["state", id.as_str()],
        vec!["kill", id.as_str(), "KILL"],
        vec!["exec", id.as_str(), "true"],
        vec!["delete", "--force", id.as_str()],
    ] {
        let mut all = vec!["--root", root.as_str()];
        all.extend(args.iter());
        let out = user.estiba(&all);
        assert!(!out.status.success(), "{args:?} as the account succeeded");
        assert!(
            text(&out.stderr).contains("permission denied"),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    assert_eq!(w.status(&id), "running");
}

/// A sysfs mount (runc's root config has one) where the container has no
/// network namespace of its own cannot be made in a user namespace: the
/// host's /sys is bound read-only instead (runc's fallback), and the
/// container runs.
#[test]
fn sysfs_without_a_network_namespace_is_bound() {
    let Some(user) = needs_root_and_user("sysfs_without_a_network_namespace_is_bound") else {
        return;
    };
    let mut w = rootless_world(
        &user,
        "rl-sysfs",
        "test -d /sys/kernel && echo kernel; touch /sys/x 2>/dev/null || echo ro",
    );
    for m in w.config["mounts"].as_array_mut().unwrap() {
        if m["destination"] == "/sys" {
            *m = json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
                        "options": ["nosuid", "noexec", "nodev", "ro"]});
        }
    }
    hand_over(&user, &w);
    let id = w.id("c");
    let bundle = w.bundle.to_string_lossy().into_owned();
    let out = user.estiba_ok(&["run", "--bundle", &bundle, &id]);
    assert_eq!(out.lines().collect::<Vec<_>>(), ["kernel", "ro"], "{out}");
}
