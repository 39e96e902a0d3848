//! runtime-spec 1.3 fields (issue 14): each applied and seen from inside
//! a real container, or refused at create naming it; never ignored.

use estiba_integration::skip;
use estiba_integration::*;
use serde_json::json;

/// `tmpcopyup`: the tmpfs over /data starts with what /data held in the
/// image, owners, modes, a subdirectory and a symlink included, and takes
/// the directory's own mode and owner; it is a tmpfs (writes do not reach
/// the image). runc, where installed, on the same bundle says the same but
/// for the directory's owner, which it leaves root's.
#[test]
fn tmpcopyup_copies_the_directory_up() {
    if !can_run("tmpcopyup_copies_the_directory_up") {
        return;
    }
    let mut w = World::new("copyup");
    let data = w.rootfs().join("data");
    std::fs::create_dir_all(data.join("sub")).unwrap();
    std::fs::write(data.join("file"), "image content\n").unwrap();
    std::fs::write(data.join("sub/deep"), "deep\n").unwrap();
    std::os::unix::fs::symlink("file", data.join("link")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(data.join("file"), std::fs::Permissions::from_mode(0o604)).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o757)).unwrap();
    std::os::unix::fs::chown(data.join("file"), Some(1000), Some(1001)).unwrap();
    std::os::unix::fs::chown(&data, Some(1002), Some(1003)).unwrap();
    w.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup", "nosuid"]}));
    w.script(
        "cat /data/file /data/sub/deep; readlink /data/link; stat -c '%a %u %g' /data/file /data; \
         grep -c ' /data tmpfs ' /proc/mounts; echo new > /data/added",
    );
    let want = [
        "image content",
        "deep",
        "file",
        "604 1000 1001",
        "757 1002 1003",
        "1",
    ];
    let out = w.run_ok("c");
    assert_eq!(out.lines().collect::<Vec<_>>(), want, "{out}");
    assert!(!data.join("added").exists(), "a write reached the image");
    let bundle = w.bundle.to_string_lossy().into_owned();
    if let Some(o) = w.runc(&["run", "--bundle", &bundle, "runc-copyup"]) {
        assert!(o.status.success(), "runc: {}", text(&o.stderr));
        // runc copies the directory's mode but not its owner (the tmpfs
        // root stays root's); everything else is the same.
        let theirs = text(&o.stdout);
        let theirs: Vec<&str> = theirs.lines().collect();
        assert_eq!(theirs.len(), want.len(), "runc: {theirs:?}");
        for (i, (t, o)) in theirs.iter().zip(want).enumerate() {
            if i == 4 {
                assert!(t.starts_with("757 "), "runc: {theirs:?}");
            } else {
                assert_eq!(*t, o, "runc: {theirs:?}");
            }
        }
    }
    // On anything but a tmpfs it means nothing: refused, not ignored.
    w.config["mounts"]
        .as_array_mut()
        .unwrap()
        .last_mut()
        .unwrap()["type"] = json!("proc");
    let out = w.run("d");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("tmpcopyup"),
        "{}",
        text(&out.stderr)
    );
}

/// The first mapping's policy in /proc/self/numa_maps, as runc's
/// memorypolicy.bats reads it.
const NUMA_POLICY: &str = "head -n 1 /proc/self/numa_maps | cut -d ' ' -f 2";

/// `linux.memoryPolicy` (runc 1.4's cases): the init runs with the policy,
/// an exec'd process too; a mode without its nodes, nodes for a mode that
/// takes none, a node that is not there and an empty policy are refused.
#[test]
fn memory_policy_is_set_for_every_process() {
    if !can_run("memory_policy_is_set_for_every_process") {
        return;
    }
    if !std::path::Path::new("/proc/self/numa_maps").exists() {
        skip!("memory_policy_is_set_for_every_process: no NUMA (no /proc/self/numa_maps)");
        return;
    }
    let mut w = World::new("mempolicy");
    w.script(NUMA_POLICY);
    for (i, (policy, want)) in [
        (
            json!({"mode": "MPOL_INTERLEAVE", "nodes": "0"}),
            &["interleave:0"][..],
        ),
        (
            json!({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]}),
            &["bind", "static", "0"][..],
        ),
        (json!({"mode": "MPOL_LOCAL"}), &["local"][..]),
    ]
    .into_iter()
    .enumerate()
    {
        w.config["linux"]["memoryPolicy"] = policy.clone();
        let out = w.run_ok(&format!("r{i}"));
        assert!(out.trim().starts_with(want[0]), "{policy}: {out}");
        assert!(want.iter().all(|p| out.contains(p)), "{policy}: {out}");
    }
    w.config["linux"]["memoryPolicy"] =
        json!({"mode": "MPOL_PREFERRED", "nodes": "0", "flags": ["MPOL_F_RELATIVE_NODES"]});
    w.args(&["sleep", "100"]);
    let id = w.running("e");
    let out = w.estiba(&["exec", &id, "sh", "-c", NUMA_POLICY]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let o = text(&out.stdout);
    assert!(
        o.starts_with("prefer") && o.contains("relative") && o.trim().ends_with('0'),
        "{o}"
    );
    for (policy, want) in [
        (json!({"mode": "MPOL_BIND"}), "needs at least one node"),
        (
            json!({"mode": "MPOL_DEFAULT", "nodes": "0"}),
            "takes no nodes",
        ),
        (json!({"mode": "MPOL_BIND", "nodes": "63"}), "not online"),
        (json!({"mode": "MPOL_BIND", "nodes": "x"}), "not like"),
        (json!({}), "mode"),
        (json!({"mode": "MPOL_NOPE", "nodes": "0"}), "MPOL_NOPE"),
    ] {
        w.config["linux"]["memoryPolicy"] = policy.clone();
        w.create_refused("bad", want);
    }
}

/// The CPUs the runtime itself may use here, pinned with `taskset`.
fn taskset() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("taskset"))
        .find(|p| p.is_file())
}

/// `execCPUAffinity` (runc 1.2's cases): a pinned runtime's affinity is
/// not inherited (every online CPU, or the cpuset's); an exec'd process
/// starts on `initial` (the runtime's debug log reads it back) and runs on
/// `final`; the init gets neither.
#[test]
fn exec_cpu_affinity_initial_and_final() {
    if !can_run("exec_cpu_affinity_initial_and_final") {
        return;
    }
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    let Some(taskset) =
        taskset().filter(|_| online.trim() == "0-1" || online.trim().starts_with("0-"))
    else {
        skip!("exec_cpu_affinity_initial_and_final: needs taskset and CPUs 0 and 1");
        return;
    };
    let all = online.trim().to_string();
    let mut w = World::new("affinity");
    w.config["process"]["execCPUAffinity"] = json!({"initial": "1", "final": "0"});
    w.args(&["sleep", "100"]);
    w.write_config();
    let id = w.id("c");
    let bundle = w.bundle.to_string_lossy().into_owned();
    // The runtime pinned to CPU 0: the init must not stay there.
    let st = std::process::Command::new(&taskset)
        .args(["-c", "0"])
        .arg(&w.bin)
        .arg("--root")
        .arg(&w.root)
        .args(["run", "-d", "--bundle", &bundle, &id])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let pid = w.state(&id)["pid"].as_i64().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let init = status
        .lines()
        .find(|l| l.starts_with("Cpus_allowed_list:"))
        .unwrap();
    assert_eq!(
        init.split_whitespace().last(),
        Some(all.as_str()),
        "the init: {init}"
    );
    let log = w.dir.join("exec.log");
    let log_s = log.to_string_lossy().into_owned();
    let out = w.estiba(&[
        "--debug",
        "--log",
        &log_s,
        "exec",
        &id,
        "grep",
        "Cpus_allowed_list:",
        "/proc/self/status",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).split_whitespace().last(),
        Some("0"),
        "final"
    );
    let lines = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        lines.contains("(process.execCPUAffinity.initial): [1]"),
        "initial not seen: {lines}"
    );
    // Without execCPUAffinity, a pinned runtime's exec gets every CPU.
    let mut w2 = World::new("affinity2");
    w2.args(&["sleep", "100"]);
    let id2 = w2.running("c");
    let out = std::process::Command::new(&taskset)
        .args(["-c", "0"])
        .arg(&w2.bin)
        .arg("--root")
        .arg(&w2.root)
        .args([
            "exec",
            &id2,
            "grep",
            "Cpus_allowed_list:",
            "/proc/self/status",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).split_whitespace().last(),
        Some(all.as_str())
    );
}

/// A change to a config.
type ConfigEdit = Box<dyn Fn(&mut serde_json::Value)>;

/// Fields with no meaning here are refused, naming them: personality
/// flags (the spec defines none). Mount id-mappings that cannot be
/// honoured: tests/idmap.rs.
#[test]
fn fields_that_cannot_be_honoured_are_refused() {
    if !can_run("fields_that_cannot_be_honoured_are_refused") {
        return;
    }
    let mut w = World::new("refused13");
    let base = w.config.clone();
    let cases: Vec<(ConfigEdit, &str)> = vec![(
        Box::new(|c| c["linux"]["personality"] = json!({"domain": "LINUX", "flags": ["X"]})),
        "personality.flags",
    )];
    for (edit, want) in cases {
        w.config = base.clone();
        edit(&mut w.config);
        w.create_refused("x", want);
    }
    // blockIO.leafWeight: CFQ's blkio.leaf_weight, gone since Linux 5.0
    // and never on v2. Where no cgroup can hold it, it is refused.
    let leaf = std::fs::read_dir("/sys/fs/cgroup/blkio")
        .map(|d| d.flatten().any(|e| e.file_name() == "blkio.leaf_weight"))
        .unwrap_or(false);
    if leaf {
        skip!("fields_that_cannot_be_honoured_are_refused: this kernel has blkio.leaf_weight");
    } else {
        w.config = base.clone();
        w.config["linux"]["resources"]["blockIO"] = json!({"leafWeight": 300});
        w.create_refused(
            "leaf",
            "invalid configuration: linux.resources.blockIO.leafWeight",
        );
    }
    // iversion is a mount flag, not filesystem data.
    w.config = base;
    w.config["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/v", "type": "tmpfs", "source": "tmpfs", "options": ["iversion"]}),
    );
    w.script("grep -c ' /v tmpfs ' /proc/mounts");
    assert_eq!(w.run_ok("iv").trim(), "1");
}

/// `features` tells the truth: every mount option, namespace, memory
/// policy mode and flag, and seccomp flag it lists works in a real
/// container; what it says is not supported (Intel RDT, id-mapped mounts)
/// and a config newer than `ociVersionMax` are refused.
#[test]
fn features_match_what_containers_do() {
    if !can_run("features_match_what_containers_do") {
        return;
    }
    let f: serde_json::Value = serde_json::from_slice(
        &std::process::Command::new(binary())
            .arg("features")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let mut w = World::new("features");
    let base = w.config.clone();
    let shared = w.dir.join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    let mut ran = 0;
    let mut runs = |w: &mut World, what: &str| {
        let out = w.run(&format!("f{ran}"));
        ran += 1;
        assert!(out.status.success(), "{what}: {}", text(&out.stderr));
    };
    for o in f["mountOptions"].as_array().unwrap() {
        let o = o.as_str().unwrap();
        w.config = base.clone();
        let m = match o {
            "bind" | "rbind" => {
                json!({"destination": "/t", "type": "bind", "source": shared, "options": [o]})
            }
            // Id-mapped: a bind with mappings (tests/idmap.rs checks the ids).
            "idmap" | "ridmap" => {
                let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
                json!({"destination": "/t", "type": "bind", "source": shared,
                       "options": ["rbind", o], "uidMappings": map, "gidMappings": map})
            }
            _ => json!({"destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": [o]}),
        };
        w.config["mounts"].as_array_mut().unwrap().push(m);
        runs(&mut w, &format!("mount option {o}"));
    }
    for ns in f["linux"]["namespaces"].as_array().unwrap() {
        let ns = ns.as_str().unwrap();
        w.config = base.clone();
        w.without_namespace(ns);
        w.config["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": ns}));
        if ns == "user" {
            let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            w.config["linux"]["uidMappings"] = map.clone();
            w.config["linux"]["gidMappings"] = map;
        }
        runs(&mut w, &format!("namespace {ns}"));
    }
    if std::path::Path::new("/proc/self/numa_maps").exists() {
        for mode in f["linux"]["memoryPolicy"]["modes"].as_array().unwrap() {
            let mode = mode.as_str().unwrap();
            w.config = base.clone();
            let nodes = if matches!(mode, "MPOL_DEFAULT" | "MPOL_LOCAL") {
                ""
            } else {
                "0"
            };
            w.config["linux"]["memoryPolicy"] = json!({"mode": mode, "nodes": nodes});
            runs(&mut w, &format!("memory policy {mode}"));
        }
        for flag in f["linux"]["memoryPolicy"]["flags"].as_array().unwrap() {
            w.config = base.clone();
            w.config["linux"]["memoryPolicy"] =
                json!({"mode": "MPOL_BIND", "nodes": "0", "flags": [flag]});
            runs(&mut w, &format!("memory policy flag {flag}"));
        }
    } else {
        skip!("features_match_what_containers_do: no NUMA here, memory policies not run");
    }
    for flag in f["linux"]["seccomp"]["supportedFlags"].as_array().unwrap() {
        if flag == "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" {
            continue; // only with a listener: tests/seccomp.rs's notify test
        }
        w.config = base.clone();
        w.config["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": [flag]});
        runs(&mut w, &format!("seccomp flag {flag}"));
    }
    // Said not to be supported: refused.
    assert_eq!(f["linux"]["intelRdt"]["enabled"], false);
    // Id-mapped mounts: tests/idmap.rs.
    assert_eq!(f["linux"]["mountExtensions"]["idmap"]["enabled"], true);
    // netDevices: net_devices_move_into_the_container.
    assert_eq!(f["linux"]["netDevices"]["enabled"], true);
    let refused: Vec<(serde_json::Value, &str)> = vec![
        (json!({"linux": {"intelRdt": {"closID": "x"}}}), "intelRdt"),
        (json!({"ociVersion": "1.4.0"}), "newer"),
    ];
    for (edit, want) in refused {
        w.config = base.clone();
        for (k, v) in edit.as_object().unwrap() {
            if k == "linux" {
                for (lk, lv) in v.as_object().unwrap() {
                    w.config["linux"][lk] = lv.clone();
                }
            } else {
                w.config[k] = v.clone();
            }
        }
        w.create_refused("r", want);
    }
    assert_eq!(f["ociVersionMax"], "1.3.0");
    w.config = base;
    w.config["ociVersion"] = json!("1.3.0");
    runs(&mut w, "ociVersion 1.3.0");
}

/// A network namespace of the test's own standing in for the host (the
/// real host's interfaces are never touched); deleted on drop.
struct TestNetns(String);

impl TestNetns {
    fn make(name: &str) -> Option<TestNetns> {
        let ok = std::process::Command::new("ip")
            .args(["netns", "add", name])
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| TestNetns(name.to_string()))
    }

    /// Runs `ip ARGS` inside it.
    fn ip(&self, args: &[&str]) -> bool {
        std::process::Command::new("ip")
            .args(["-n", &self.0])
            .args(args)
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Runs estiba inside it (only the network namespace changes).
    fn estiba(&self, w: &World, args: &[&str]) -> std::process::Output {
        std::process::Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.0))
            .arg(&w.bin)
            .arg("--root")
            .arg(&w.root)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    }
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.0])
            .status();
    }
}

/// `linux.netDevices`: a veth interface of a test namespace (standing in
/// for the host) is moved into the container's network namespace, renamed,
/// up, with its permanent global addresses and without its others; a
/// "%d" name is numbered by the kernel; a device that is not there, a
/// name taken inside, and a container without a network namespace of its
/// own are refused, leaving nothing. (The spec: never moved back; a
/// virtual device ends with the container's namespace.)
#[test]
fn net_devices_move_into_the_container() {
    if !can_run("net_devices_move_into_the_container") {
        return;
    }
    let mut w = World::new("netdev");
    let ns_name = format!("estiba-nd-{}", std::process::id());
    let Some(ns) = TestNetns::make(&ns_name) else {
        skip!("net_devices_move_into_the_container: cannot make a network namespace (ip netns)");
        return;
    };
    assert!(ns.ip(&["link", "add", "nd0", "type", "veth", "peer", "name", "nd0p"]));
    assert!(ns.ip(&["addr", "add", "10.99.0.1/24", "dev", "nd0"]));
    assert!(ns.ip(&[
        "addr",
        "add",
        "10.98.0.1/24",
        "dev",
        "nd0",
        "valid_lft",
        "100",
        "preferred_lft",
        "100"
    ]));
    w.config["linux"]["netDevices"] = json!({"nd0": {"name": "ctr0"}});
    w.script("ip -o link show ctr0; ip -o -4 addr show dev ctr0");
    w.write_config();
    let bundle = w.bundle.to_string_lossy().into_owned();
    let id = w.id("a");
    let out = ns.estiba(&w, &["run", "--bundle", &bundle, &id]);
    let o = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        o.lines()
            .next()
            .is_some_and(|l| l.contains("ctr0") && l.contains("UP")),
        "{o}"
    );
    assert!(
        o.contains("10.99.0.1/24"),
        "the permanent address is gone: {o}"
    );
    assert!(
        !o.contains("10.98.0.1"),
        "a non-permanent address came along: {o}"
    );
    assert!(
        !ns.ip(&["link", "show", "nd0"]),
        "the device is still outside"
    );
    // A template name: the kernel numbers it.
    assert!(ns.ip(&["link", "add", "nd1", "type", "veth", "peer", "name", "nd1p"]));
    w.config["linux"]["netDevices"] = json!({"nd1": {"name": "eth%d"}});
    w.script("ls /sys/class/net | grep eth");
    w.write_config();
    let id = w.id("b");
    let out = ns.estiba(&w, &["run", "--bundle", &bundle, &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "eth0");
    // Refusals, each leaving nothing behind.
    assert!(ns.ip(&["link", "add", "nd2", "type", "veth", "peer", "name", "nd2p"]));
    let cases = [
        (json!({"nd9": {}}), true, "no such network device"),
        (
            json!({"nd2": {"name": "lo"}}),
            true,
            "already exists in the container",
        ),
        (
            json!({"nd2": {"name": "a/b"}}),
            true,
            "invalid network device name",
        ),
        (json!({"nd2": {}}), false, "no network namespace of its own"),
    ];
    for (devs, own_netns, want) in cases {
        w.config["linux"]["netDevices"] = devs.clone();
        if !own_netns {
            w.without_namespace("network");
        }
        w.write_config();
        let id = w.id("r");
        let out = ns.estiba(&w, &["create", "--bundle", &bundle, &id]);
        assert_eq!(out.status.code(), Some(1), "{devs}: accepted");
        assert!(
            text(&out.stderr).contains(want),
            "{devs}: {}",
            text(&out.stderr)
        );
        assert!(!w.root.join(&id).exists(), "{devs}: state left");
        if !own_netns {
            let ns = w.config["linux"]["namespaces"].as_array_mut().unwrap();
            ns.push(json!({"type": "network"}));
        }
    }
    assert!(
        ns.ip(&["link", "show", "nd2"]),
        "a refused create moved the device"
    );
}
