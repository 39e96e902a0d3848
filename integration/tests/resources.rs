//! Every `linux.resources` field, one at a time: set at create, read back
//! from the host and from inside the container (through its cgroup
//! namespace), changed with `update --resources`, on whatever layout this
//! host has (v1 here and in the hybrid guest, v2 in the others). The
//! expected values are the kernel's file formats (cgroup-v1 and cgroup-v2
//! documentation) for the spec's inputs. A field whose file this kernel
//! does not have says skipped. Enforcement: memory, pids and devices in
//! cgroups.rs; CPU quota here.

use std::path::Path;

use estiba_integration::skip;
use estiba_integration::{can_run, cgroup_v2, text, World};
use serde_json::{json, Value};

struct Case {
    name: String,
    set: Value,
    update: Value,
    /// v1: (controller, file); v2: file.
    v1: Option<(&'static str, &'static str)>,
    v2: Option<&'static str>,
    /// The file's content after create and after update (per layout).
    want: [String; 2],
    want_v2: Option<[String; 2]>,
}

fn case(
    name: &str,
    set: Value,
    update: Value,
    v1: Option<(&'static str, &'static str)>,
    v2: Option<&'static str>,
    want: [&str; 2],
) -> Case {
    Case {
        name: name.into(),
        set,
        update,
        v1,
        v2,
        want: want.map(str::to_string),
        want_v2: None,
    }
}

impl Case {
    fn v2_wants(mut self, want: [&str; 2]) -> Case {
        self.want_v2 = Some(want.map(str::to_string));
        self
    }
}

/// A block device of this machine, as "major:minor".
fn block_device() -> Option<String> {
    let mut devs: Vec<_> = std::fs::read_dir("/sys/block").ok()?.flatten().collect();
    devs.sort_by_key(|e| e.file_name());
    devs.iter().find_map(|e| {
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with("loop") || name.starts_with("zram") || name.starts_with("ram") {
            return None;
        }
        std::fs::read_to_string(e.path().join("dev"))
            .ok()
            .map(|s| s.trim().to_string())
    })
}

fn hugepage_size() -> Option<String> {
    // "hugepages-2048kB" → "2MB", the spec's (and the files') spelling.
    let e = std::fs::read_dir("/sys/kernel/mm/hugepages")
        .ok()?
        .flatten()
        .next()?;
    let kb: u64 = e
        .file_name()
        .to_string_lossy()
        .strip_prefix("hugepages-")?
        .strip_suffix("kB")?
        .parse()
        .ok()?;
    Some(if kb >= 1024 * 1024 {
        format!("{}GB", kb / 1024 / 1024)
    } else if kb >= 1024 {
        format!("{}MB", kb / 1024)
    } else {
        format!("{kb}KB")
    })
}

fn cases() -> Vec<Case> {
    let m = |v: Value| json!({ "memory": v });
    let c = |v: Value| json!({ "cpu": v });
    let mut out = vec![
        case(
            "memory.limit",
            m(json!({"limit": 67108864})),
            m(json!({"limit": 100663296})),
            Some(("memory", "memory.limit_in_bytes")),
            Some("memory.max"),
            ["67108864", "100663296"],
        ),
        case(
            "memory.reservation",
            m(json!({"reservation": 33554432})),
            m(json!({"reservation": 50331648})),
            Some(("memory", "memory.soft_limit_in_bytes")),
            Some("memory.low"),
            ["33554432", "50331648"],
        ),
        // v1 memsw is limit+swap; v2's swap.max is the swap part alone.
        case(
            "memory.swap",
            m(json!({"limit": 67108864, "swap": 134217728})),
            m(json!({"limit": 67108864, "swap": 201326592})),
            Some(("memory", "memory.memsw.limit_in_bytes")),
            Some("memory.swap.max"),
            ["134217728", "201326592"],
        )
        .v2_wants(["67108864", "134217728"]),
        case(
            "memory.swappiness",
            m(json!({"swappiness": 10})),
            m(json!({"swappiness": 30})),
            Some(("memory", "memory.swappiness")),
            None,
            ["10", "30"],
        ),
        case(
            "cpu.shares",
            c(json!({"shares": 512})),
            c(json!({"shares": 2048})),
            Some(("cpu", "cpu.shares")),
            Some("cpu.weight"),
            ["512", "2048"],
        )
        // The conversion runc 1.3, crun and libcgroups use (1024 → 100):
        // ceil(10^((log2(s)^2 + 125 log2(s)) / 612 - 7/34)).
        .v2_wants(["59", "174"]),
        case(
            "cpu.quota and period",
            c(json!({"quota": 50000, "period": 100000})),
            c(json!({"quota": 20000, "period": 50000})),
            Some(("cpu", "cpu.cfs_quota_us")),
            Some("cpu.max"),
            ["50000", "20000"],
        )
        .v2_wants(["50000 100000", "20000 50000"]),
        case(
            "cpu.burst",
            c(json!({"quota": 50000, "period": 100000, "burst": 10000})),
            c(json!({"burst": 20000})),
            Some(("cpu", "cpu.cfs_burst_us")),
            Some("cpu.max.burst"),
            ["10000", "20000"],
        ),
        case(
            "cpu.idle",
            c(json!({"idle": 1})),
            c(json!({"idle": 0})),
            Some(("cpu", "cpu.idle")),
            Some("cpu.idle"),
            ["1", "0"],
        ),
        case(
            "cpu.realtimeRuntime",
            c(json!({"realtimePeriod": 1000000, "realtimeRuntime": 0})),
            c(json!({"realtimeRuntime": 0})),
            Some(("cpu", "cpu.rt_period_us")),
            None,
            ["1000000", "1000000"],
        ),
        case(
            "cpu.cpus",
            c(json!({"cpus": "0"})),
            c(json!({"cpus": "0-1"})),
            Some(("cpuset", "cpuset.cpus")),
            Some("cpuset.cpus"),
            ["0", "0-1"],
        ),
        case(
            "cpu.mems",
            c(json!({"mems": "0"})),
            c(json!({"mems": "0"})),
            Some(("cpuset", "cpuset.mems")),
            Some("cpuset.mems"),
            ["0", "0"],
        ),
        case(
            "pids.limit",
            json!({"pids": {"limit": 42}}),
            json!({"pids": {"limit": 77}}),
            Some(("pids", "pids.max")),
            Some("pids.max"),
            ["42", "77"],
        ),
        case(
            "blockIO.weight",
            json!({"blockIO": {"weight": 500}}),
            json!({"blockIO": {"weight": 300}}),
            Some(("blkio", "blkio.bfq.weight")),
            Some("io.bfq.weight"),
            ["500", "300"],
        )
        .v2_wants(["default 500", "default 300"]),
        case(
            "network.classID",
            json!({"network": {"classID": 1048577}}),
            json!({"network": {"classID": 1048578}}),
            Some(("net_cls", "net_cls.classid")),
            None,
            ["1048577", "1048578"],
        ),
        case(
            "network.priorities",
            json!({"network": {"priorities": [{"name": "lo", "priority": 5}]}}),
            json!({"network": {"priorities": [{"name": "lo", "priority": 7}]}}),
            Some(("net_prio", "net_prio.ifpriomap")),
            None,
            ["lo 5", "lo 7"],
        ),
        case(
            "unified",
            json!({"unified": {"memory.high": "50000000"}}),
            json!({"unified": {"memory.high": "60000000"}}),
            None,
            Some("memory.high"),
            ["49999872", "59998208"],
        ),
    ];
    if let Some(dev) = block_device() {
        let (maj, min) = dev.split_once(':').unwrap_or(("0", "0"));
        let (maj, min): (i64, i64) = (maj.parse().unwrap_or(0), min.parse().unwrap_or(0));
        for (field, v1_file, v2_key) in [
            (
                "throttleReadBpsDevice",
                "blkio.throttle.read_bps_device",
                "rbps",
            ),
            (
                "throttleWriteBpsDevice",
                "blkio.throttle.write_bps_device",
                "wbps",
            ),
            (
                "throttleReadIOPSDevice",
                "blkio.throttle.read_iops_device",
                "riops",
            ),
            (
                "throttleWriteIOPSDevice",
                "blkio.throttle.write_iops_device",
                "wiops",
            ),
        ] {
            let t = |rate: u64| json!({"blockIO": {field: [{"major": maj, "minor": min, "rate": rate}]}});
            let io_max = |rate: u64| {
                let keys = ["rbps", "wbps", "riops", "wiops"].map(|k| {
                    if k == v2_key {
                        format!("{k}={rate}")
                    } else {
                        format!("{k}=max")
                    }
                });
                format!("{dev} {}", keys.join(" "))
            };
            out.push(
                case(
                    &format!("blockIO.{field}"),
                    t(1048576),
                    t(2097152),
                    Some(("blkio", v1_file)),
                    Some("io.max"),
                    [&format!("{dev} 1048576"), &format!("{dev} 2097152")],
                )
                .v2_wants([&io_max(1048576), &io_max(2097152)]),
            );
        }
    } else {
        skip!("blockIO throttles: no block device here");
    }
    if let Some(size) = hugepage_size() {
        let h = |limit: u64| json!({"hugepageLimits": [{"pageSize": size, "limit": limit}]});
        let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
        out.push(case(
            "hugepageLimits",
            h(4194304),
            h(8388608),
            Some(("hugetlb", leak(format!("hugetlb.{size}.limit_in_bytes")))),
            Some(leak(format!("hugetlb.{size}.max"))),
            ["4194304", "8388608"],
        ));
    } else {
        skip!("hugepageLimits: no huge page sizes here");
    }
    out
}

/// Where the file is, from the host and from inside (cgroup namespace).
fn paths(case: &Case, cgroup: &str) -> Option<(String, String)> {
    let rel = cgroup.trim_start_matches('/');
    if cgroup_v2() {
        let f = case.v2?;
        Some((
            format!("/sys/fs/cgroup/{rel}/{f}"),
            format!("/sys/fs/cgroup/{f}"),
        ))
    } else {
        let (ctrl, f) = case.v1?;
        // v1 hierarchies may be co-mounted ("cpu,cpuacct"): find ours.
        let mount = std::fs::read_dir("/sys/fs/cgroup")
            .ok()?
            .flatten()
            .find_map(|e| {
                let n = e.file_name().to_string_lossy().to_string();
                n.split(',').any(|c| c == ctrl).then_some(n)
            })?;
        Some((
            format!("/sys/fs/cgroup/{mount}/{rel}/{f}"),
            format!("/sys/fs/cgroup/{mount}/{f}"),
        ))
    }
}

/// Whether a fresh cgroup next to the container's would have the file
/// `outside` names (on v2 with the file's controller enabled, as estiba
/// enables every controller for its containers).
fn kernel_has(outside: &str, cgroup: &str) -> bool {
    let Some((hierarchy, file)) = outside
        .strip_suffix(&format!("/{}", outside.rsplit('/').next().unwrap_or("")))
        .and_then(|d| d.strip_suffix(cgroup))
        .map(|h| {
            (
                h.to_string(),
                outside.rsplit('/').next().unwrap_or("").to_string(),
            )
        })
    else {
        return false;
    };
    if cgroup_v2() {
        let controller = file.split('.').next().unwrap_or("");
        let _ = std::fs::write(
            format!("{hierarchy}/cgroup.subtree_control"),
            format!("+{controller}"),
        );
    }
    let probe = format!("{hierarchy}{cgroup}-probe");
    if std::fs::create_dir(&probe).is_err() {
        return false;
    }
    let has = Path::new(&probe).join(&file).exists();
    let _ = std::fs::remove_dir(&probe);
    has
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| format!("<{path}: {e}>"))
        .trim()
        .to_string()
}

/// How a v1 file with one line per entry (ifpriomap) holds our value.
fn holds(content: &str, want: &str) -> bool {
    content == want || content.lines().any(|l| l.trim() == want)
}

#[test]
fn every_resource_set_read_inside_and_updated() {
    if !can_run("every_resource_set_read_inside_and_updated") {
        return;
    }
    let (mut passed, mut skipped) = (0, vec![]);
    for case in cases() {
        let mut w = World::new("res");
        let id = w.id("c");
        let cgroup = format!("/{id}");
        let Some((outside, inside)) = paths(&case, &cgroup) else {
            skipped.push(match (cgroup_v2(), case.v1) {
                (true, _) => format!("{}: cgroup v2 has no such file", case.name),
                (false, Some((ctrl, _))) => format!("{}: no v1 {ctrl} hierarchy here", case.name),
                (false, None) => format!("{}: cgroup v1 has no such file", case.name),
            });
            continue;
        };
        // Whether this kernel has the file at all.
        w.config["linux"]["cgroupsPath"] = json!(cgroup);
        w.args(&["sleep", "1000"]);
        let bundle = w.bundle.to_string_lossy().into_owned();
        // v2 holds a blkio weight in io.weight (converted) where BFQ is
        // not there: applied, but not as the value this case reads back.
        let io_weight = cgroup_v2() && case.name == "blockIO.weight";
        if !kernel_has(&outside, &cgroup) && io_weight {
            skipped.push(format!(
                "{}: no io.bfq.weight here; io.weight holds it, converted",
                case.name
            ));
            continue;
        }
        if !kernel_has(&outside, &cgroup) {
            // The field cannot be held here: create refuses it, naming it
            // (runc fails on the missing file too), and leaves nothing.
            for (k, v) in case.set.as_object().unwrap() {
                w.config["linux"]["resources"][k] = v.clone();
            }
            w.write_config();
            let out = w.estiba(&["create", "--bundle", &bundle, &id]);
            let err = text(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(1),
                "{}: accepted without its file",
                case.name
            );
            assert!(
                err.contains("invalid configuration") && err.contains(&case.name),
                "{}: {err}",
                case.name
            );
            assert!(!w.root.join(&id).exists(), "{}: state left", case.name);
            skipped.push(format!(
                "{}: this kernel has no {} (refused at create, checked)",
                case.name,
                outside.rsplit('/').next().unwrap_or("")
            ));
            continue;
        }

        for (k, v) in case.set.as_object().unwrap() {
            w.config["linux"]["resources"][k] = v.clone();
        }
        w.write_config();
        let out = w.estiba(&["run", "-d", "--bundle", &bundle, &id]);
        assert!(
            out.status.success(),
            "{}: run: {}",
            case.name,
            text(&out.stderr)
        );
        let want = case
            .want_v2
            .as_ref()
            .filter(|_| cgroup_v2())
            .unwrap_or(&case.want);
        let got = read(&outside);
        assert!(
            holds(&got, &want[0]),
            "{}: {outside} is {got:?}, want {:?}",
            case.name,
            want[0]
        );
        let seen = w.estiba(&["exec", &id, "cat", &inside]);
        let seen = text(&seen.stdout).trim().to_string();
        assert!(
            holds(&seen, &want[0]),
            "{}: inside, {inside} is {seen:?}",
            case.name
        );

        let json_path = w.dir.join("update.json");
        std::fs::write(&json_path, case.update.to_string()).unwrap();
        let out = w.estiba(&["update", "--resources", &json_path.to_string_lossy(), &id]);
        assert!(
            out.status.success(),
            "{}: update: {}",
            case.name,
            text(&out.stderr)
        );
        let got = read(&outside);
        assert!(
            holds(&got, &want[1]),
            "{}: after update {outside} is {got:?}, want {:?}",
            case.name,
            want[1]
        );
        assert!(w.estiba(&["delete", "--force", &id]).status.success());
        assert!(
            !Path::new(&outside).exists(),
            "{}: {outside} left",
            case.name
        );
        passed += 1;
        println!("ok: {}", case.name);
    }
    for s in &skipped {
        skip!("{s}");
    }
    println!("{passed} resources checked, {} skipped", skipped.len());
    assert!(passed >= 8, "only {passed} resources could be checked here");
}

/// The CPU quota is enforced: a busy loop under 10 ms per 100 ms gets
/// throttled (cpu.stat's nr_throttled grows).
#[test]
fn cpu_quota_is_enforced() {
    if !can_run("cpu_quota_is_enforced") {
        return;
    }
    let mut w = World::new("quota");
    let id = w.id("c");
    let cgroup = format!("/{id}");
    w.config["linux"]["cgroupsPath"] = json!(cgroup);
    w.config["linux"]["resources"]["cpu"] = json!({"quota": 10000, "period": 100000});
    w.script("while :; do :; done");
    w.write_config();
    let bundle = w.bundle.to_string_lossy().into_owned();
    let out = w.estiba(&["run", "-d", "--bundle", &bundle, &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stat = if cgroup_v2() {
        format!("/sys/fs/cgroup/{id}/cpu.stat")
    } else {
        let mount = std::fs::read_dir("/sys/fs/cgroup")
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .find(|n| n.split(',').any(|c| c == "cpu"))
            .expect("a cpu hierarchy");
        format!("/sys/fs/cgroup/{mount}/{id}/cpu.stat")
    };
    let throttled = || {
        read(&stat)
            .lines()
            .find_map(|l| {
                l.strip_prefix("nr_throttled ")
                    .and_then(|v| v.parse::<u64>().ok())
            })
            .unwrap_or(0)
    };
    let mut n = 0;
    for _ in 0..100 {
        n = throttled();
        if n >= 3 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        n >= 3,
        "a busy loop under a 10% quota was throttled {n} times: {}",
        read(&stat)
    );
    assert!(w.estiba(&["delete", "--force", &id]).status.success());
}

/// What this host's hierarchies cannot hold fails create with one line
/// naming the field, before anything exists: `unified` on v1, v1 limits
/// whose controller is not mounted, an rdma device that is not there.
#[test]
fn resources_this_host_cannot_hold_are_refused() {
    if !can_run("resources_this_host_cannot_hold_are_refused") {
        return;
    }
    let mounted = |c: &str| {
        std::fs::read_dir("/sys/fs/cgroup")
            .map(|d| {
                d.flatten()
                    .any(|e| e.file_name().to_string_lossy().split(',').any(|x| x == c))
            })
            .unwrap_or(false)
    };
    let mut cases: Vec<(&str, Value)> = vec![];
    if cgroup_v2() {
        cases.push(("unified", json!({"unified": {"nosuchcontroller.max": "1"}})));
    } else {
        cases.push(("unified", json!({"unified": {"memory.high": "50000000"}})));
        if !mounted("hugetlb") {
            cases.push((
                "hugepageLimits",
                json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}),
            ));
        }
        if !mounted("net_cls") {
            cases.push(("network.classID", json!({"network": {"classID": 5}})));
        }
    }
    if mounted("rdma")
        || (cgroup_v2() && read("/sys/fs/cgroup/cgroup.controllers").contains("rdma"))
    {
        cases.push(("rdma", json!({"rdma": {"no_such_hca": {"hcaHandles": 3}}})));
    } else {
        skip!("rdma refused: no rdma controller here");
    }
    for (field, resources) in cases {
        let mut w = World::new("refused");
        w.config["linux"]["resources"] = resources;
        w.args(&["sleep", "1000"]);
        let (id, out) = w.create("c", &[]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{field}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{field}: {err}");
        assert!(
            err.contains(&format!("linux.resources.{field}")),
            "{field}: {err}"
        );
        assert!(!w.root.join(&id).exists(), "{field}: state left");
        assert!(
            estiba_integration::cgroup_dirs(&id).is_empty(),
            "{field}: cgroup left"
        );
        println!("ok: {field} refused: {}", err.trim());
    }
}

#[test]
fn a_zero_block_io_weight_is_no_weight() {
    if !can_run("a_zero_block_io_weight_is_no_weight") {
        return;
    }
    // docker puts `"blockIO": {"weight": 0}` in every container's config;
    // runc takes 0 as not set and writes nothing. A host without a blkio
    // weight file (no BFQ, as this one) must still run it.
    let mut w = World::new("bioweight0");
    w.config["linux"]["resources"] = json!({"blockIO": {"weight": 0, "leafWeight": 0}});
    w.script("echo ran");
    assert_eq!(w.run_ok("c").trim(), "ran");
}

/// v2 device rules are one eBPF program, replaced when the cgroup layer is
/// given new rules, never stacked (runc stacked them until the kernel's
/// limit of 64); `estiba update` leaves it alone, as runc's update leaves
/// device rules.
#[test]
fn v2_device_program_is_replaced_not_stacked() {
    if !can_run("v2_device_program_is_replaced_not_stacked") {
        return;
    }
    if !cgroup_v2() {
        skip!(
            "v2_device_program_is_replaced_not_stacked: cgroup v1 has device files, not programs"
        );
        return;
    }
    let mut w = World::new("devprog");
    let id = w.id("c");
    let cgroup = format!("/{id}");
    w.config["linux"]["cgroupsPath"] = json!(cgroup);
    w.config["linux"]["resources"]["devices"] = json!([{"allow": false, "access": "rwm"}]);
    w.args(&["sleep", "1000"]);
    w.write_config();
    let bundle = w.bundle.to_string_lossy().into_owned();
    let out = w.estiba(&["run", "-d", "--bundle", &bundle, &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let dir = format!("/sys/fs/cgroup{cgroup}");
    let programs = || estiba_cgroups::attached_device_programs(Path::new(&dir)).expect("query");
    let first = programs();
    assert_eq!(first.len(), 1, "after create: {first:?}");
    let json_path = w.dir.join("devices.json");
    let rules = json!({"devices": [{"allow": false, "access": "rwm"}], "pids": {"limit": 50}});
    std::fs::write(&json_path, rules.to_string()).unwrap();
    let out = w.estiba(&["update", "--resources", &json_path.to_string_lossy(), &id]);
    assert!(out.status.success(), "update: {}", text(&out.stderr));
    assert_eq!(
        programs(),
        first,
        "estiba update changed the device program"
    );
    let cg = estiba_cgroups::Cgroup::open(Path::new(&cgroup), false).expect("open cgroup");
    for minor in [3, 5, 7] {
        let rules = json!({"devices": [{"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": minor, "access": "rw"}]});
        let r: oci_spec::runtime::LinuxResources = serde_json::from_value(rules).unwrap();
        cg.update(&r).expect("update the device rules");
        let now = programs();
        assert_eq!(now.len(), 1, "after an update: {now:?}");
        assert_ne!(now, first, "the program was not replaced");
    }
    assert!(w.estiba(&["delete", "--force", &id]).status.success());
}

/// memory.checkBeforeUpdate: an update below the current usage is refused
/// and the limit stays; without the flag the same update is the kernel's
/// to take (v1 refuses what it cannot reclaim; v2 reclaims).
#[test]
fn check_before_update_refuses_a_limit_below_usage() {
    if !can_run("check_before_update_refuses_a_limit_below_usage") {
        return;
    }
    let mut w = World::new("cbu");
    let id = w.id("c");
    let cgroup = format!("/{id}");
    w.config["linux"]["cgroupsPath"] = json!(cgroup);
    w.config["linux"]["resources"]["memory"] = json!({"limit": 268435456});
    // 32 MiB in tmpfs: charged to the container and not reclaimable
    // without swap.
    w.script("head -c 33554432 /dev/zero > /dev/shm/fill; sleep 1000");
    w.write_config();
    let bundle = w.bundle.to_string_lossy().into_owned();
    let out = w.estiba(&["run", "-d", "--bundle", &bundle, &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (limit_file, usage_file) = if cgroup_v2() {
        (
            format!("/sys/fs/cgroup{cgroup}/memory.max"),
            format!("/sys/fs/cgroup{cgroup}/memory.current"),
        )
    } else {
        (
            format!("/sys/fs/cgroup/memory{cgroup}/memory.limit_in_bytes"),
            format!("/sys/fs/cgroup/memory{cgroup}/memory.usage_in_bytes"),
        )
    };
    // (Under emulation writing 32 MiB takes a while.)
    let usage = || read(&usage_file).parse::<u64>().unwrap_or(0);
    for _ in 0..1200 {
        if usage() > 30 << 20 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        usage() > 30 << 20,
        "the container did not fill its tmpfs: {}",
        usage()
    );
    let json_path = w.dir.join("update.json");
    std::fs::write(
        &json_path,
        json!({"memory": {"limit": 16777216, "checkBeforeUpdate": true}}).to_string(),
    )
    .unwrap();
    let out = w.estiba(&["update", "--resources", &json_path.to_string_lossy(), &id]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("checkBeforeUpdate") && err.contains("16777216"),
        "{err}"
    );
    assert_eq!(read(&limit_file), "268435456");
    assert_eq!(w.status(&id), "running");
    // Above the usage the same update goes through.
    std::fs::write(
        &json_path,
        json!({"memory": {"limit": 134217728, "checkBeforeUpdate": true}}).to_string(),
    )
    .unwrap();
    let out = w.estiba(&["update", "--resources", &json_path.to_string_lossy(), &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(read(&limit_file), "134217728");
    assert!(w.estiba(&["delete", "--force", &id]).status.success());
}
