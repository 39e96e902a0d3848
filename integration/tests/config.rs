//! Each config.json field, checked from inside the container (and from
//! outside where that is where it shows).

use estiba_integration::{can_run, ns_inode, text, World};
use serde_json::{json, Value};

fn set_namespaces(w: &mut World, nss: Value) {
    w.config["linux"]["namespaces"] = nss;
}

#[test]
fn every_namespace_is_new() {
    if !can_run("every_namespace_is_new") {
        return;
    }
    let mut w = World::new("nsnew");
    let all = json!([{"type":"pid"},{"type":"network"},{"type":"ipc"},{"type":"uts"},{"type":"mount"},{"type":"cgroup"},{"type":"time"}]);
    set_namespaces(&mut w, all);
    w.script(
        "for n in pid net ipc uts mnt cgroup time; do echo $n=$(readlink /proc/self/ns/$n); done",
    );
    let out = w.run_ok("c");
    for (n, host) in ["pid", "net", "ipc", "uts", "mnt", "cgroup", "time"]
        .iter()
        .map(|n| (n, ns_inode("self", n)))
    {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("{n}=")))
            .unwrap_or_else(|| panic!("{n} missing: {out}"));
        let inside = line.split_once('=').unwrap().1;
        assert!(!inside.is_empty(), "{n}: {out}");
        assert_ne!(inside, host, "{n} namespace is the host's");
    }
}

#[test]
fn namespaces_joined_by_path() {
    if !can_run("namespaces_joined_by_path") {
        return;
    }
    let mut w = World::new("nsjoin");
    // Join the host's network and uts namespaces (this test's own) by path.
    let me = std::process::id().to_string();
    set_namespaces(
        &mut w,
        json!([{"type":"pid"},{"type":"mount"},{"type":"ipc"},{"type":"network","path":format!("/proc/{me}/ns/net")},{"type":"uts","path":format!("/proc/{me}/ns/uts")}]),
    );
    w.config["hostname"] = Value::Null;
    w.script("readlink /proc/self/ns/net; readlink /proc/self/ns/uts");
    let out = w.run_ok("c");
    assert!(out.contains(&ns_inode(&me, "net")), "{out}");
    assert!(out.contains(&ns_inode(&me, "uts")), "{out}");
    // And another container's pid namespace.
    let mut holder = World::new("nsholder");
    holder.args(&["sleep", "100"]);
    let (hid, o) = holder.create("h", &[]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let hpid = holder.state(&hid)["pid"].as_i64().unwrap();
    set_namespaces(
        &mut w,
        json!([{"type":"mount"},{"type":"pid","path":format!("/proc/{hpid}/ns/pid")}]),
    );
    w.script("readlink /proc/self/ns/pid; echo mypid=$$");
    let out = w.run_ok("d");
    assert!(out.contains(&ns_inode(&hpid.to_string(), "pid")), "{out}");
    assert!(!out.contains("mypid=1\n"), "joined pid ns yet pid 1: {out}");
}

#[test]
fn user_namespace_with_mappings() {
    if !can_run("user_namespace_with_mappings") {
        return;
    }
    let mut w = World::new("userns");
    let mut nss = w.config["linux"]["namespaces"].as_array().unwrap().clone();
    nss.push(json!({"type":"user"}));
    set_namespaces(&mut w, Value::Array(nss));
    w.config["linux"]["uidMappings"] = json!([{"containerID":0,"hostID":100000,"size":65536}]);
    w.config["linux"]["gidMappings"] = json!([{"containerID":0,"hostID":100000,"size":65536}]);
    // The rootfs must be readable by the mapped root.
    let rootfs = w.rootfs();
    for entry in std::iter::once(rootfs.clone()).chain(
        std::fs::read_dir(&rootfs)
            .unwrap()
            .flatten()
            .map(|e| e.path()),
    ) {
        let _ = nix::unistd::chown(
            &entry,
            Some(nix::unistd::Uid::from_raw(100000)),
            Some(nix::unistd::Gid::from_raw(100000)),
        );
    }
    w.script("cat /proc/self/uid_map; cat /proc/self/gid_map; id -u; readlink /proc/self/ns/user");
    let out = w.run_ok("c");
    let nums: Vec<Vec<&str>> = out
        .lines()
        .take(2)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(nums[0], vec!["0", "100000", "65536"], "{out}");
    assert_eq!(nums[1], vec!["0", "100000", "65536"], "{out}");
    assert!(out.lines().nth(2) == Some("0"), "{out}");
    assert_ne!(out.lines().nth(3).unwrap_or(""), ns_inode("self", "user"));
}

#[test]
fn time_namespace_offsets() {
    if !can_run("time_namespace_offsets") {
        return;
    }
    let mut w = World::new("timens");
    let mut nss = w.config["linux"]["namespaces"].as_array().unwrap().clone();
    nss.push(json!({"type":"time"}));
    set_namespaces(&mut w, Value::Array(nss));
    w.config["linux"]["timeOffsets"] = json!({"boottime": {"secs": 864000, "nanosecs": 0}});
    w.args(&["cat", "/proc/uptime"]);
    let out = w.run_ok("c");
    let inside: f64 = out.split_whitespace().next().unwrap().parse().unwrap();
    let host: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(inside - host > 863000.0, "inside {inside} host {host}");
}

#[test]
fn root_readonly_relative_and_absolute_no_pivot() {
    if !can_run("root_readonly_relative_and_absolute_no_pivot") {
        return;
    }
    let mut w = World::new("root");
    w.script("touch /x 2>/dev/null && echo writable || echo readonly");
    assert_eq!(w.run_ok("ro").trim(), "readonly");
    w.config["root"]["readonly"] = Value::Bool(false);
    w.config["root"]["path"] = json!(w.rootfs().to_string_lossy());
    w.script("touch /x && echo writable; rm /x");
    assert_eq!(w.run_ok("abs").trim(), "writable");
    w.write_config();
    let id = w.id("np");
    let bundle = w.bundle.to_string_lossy().into_owned();
    w.script("grep -c . /proc/self/mountinfo >/dev/null; echo ok");
    w.write_config();
    let out = w.estiba(&["run", "--no-pivot", "--bundle", &bundle, &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "ok");
}

#[test]
fn mounts_with_options_in_order() {
    if !can_run("mounts_with_options_in_order") {
        return;
    }
    let mut w = World::new("mounts");
    let host_dir = w.dir.join("share");
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(host_dir.join("f"), "shared-content").unwrap();
    let mounts = w.config["mounts"].as_array_mut().unwrap();
    mounts.push(json!({"destination":"/data/t","type":"tmpfs","source":"tmpfs","options":["size=1m","mode=700","noexec","nosuid","nodev","noatime"]}));
    mounts.push(
        json!({"destination":"/data/t/inner","type":"tmpfs","source":"tmpfs","options":["ro"]}),
    );
    mounts.push(json!({"destination":"/data/b","type":"bind","source":host_dir.to_string_lossy(),"options":["rbind","ro","rprivate"]}));
    mounts.push(json!({"destination":"/data/file","type":"none","source":host_dir.join("f").to_string_lossy(),"options":["bind"]}));
    w.script("grep ' /data/' /proc/self/mountinfo; stat -c '%a' /data/t; cat /data/b/f; cat /data/file; echo x > /data/b/g 2>/dev/null && echo bind-writable || echo bind-ro");
    let out = w.run_ok("c");
    let t = out
        .lines()
        .find(|l| l.contains(" /data/t "))
        .unwrap_or_else(|| panic!("{out}"));
    for opt in ["noexec", "nosuid", "nodev", "noatime"] {
        assert!(t.contains(opt), "{opt} missing: {t}");
    }
    assert!(t.contains("size=1024k"), "{t}");
    let inner = out
        .lines()
        .find(|l| l.contains(" /data/t/inner "))
        .unwrap_or_else(|| panic!("inner missing: {out}"));
    assert!(inner.contains(" ro,"), "{inner}");
    assert!(out.contains("\n700\n"), "{out}");
    assert!(out.contains("shared-contentshared-content"), "{out}");
    assert!(out.contains("bind-ro"), "{out}");
    assert!(!host_dir.join("g").exists());
}

#[test]
fn symlink_in_rootfs_cannot_move_a_mount_outside() {
    if !can_run("symlink_in_rootfs_cannot_move_a_mount_outside") {
        return;
    }
    let mut w = World::new("escape");
    let outside = w.dir.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, w.rootfs().join("evil")).unwrap();
    std::os::unix::fs::symlink("../../../../../../../../..", w.rootfs().join("up")).unwrap();
    let mounts = w.config["mounts"].as_array_mut().unwrap();
    mounts.push(json!({"destination":"/evil/sub","type":"tmpfs","source":"tmpfs"}));
    mounts.push(
        json!({"destination":"/up/tmp/estiba-escape-target","type":"tmpfs","source":"tmpfs"}),
    );
    w.config["root"]["readonly"] = Value::Bool(false);
    w.script("echo inside > /evil/sub/marker; echo ok");
    let out = w.run_ok("c");
    assert_eq!(out.trim(), "ok");
    assert!(
        !outside.join("sub").exists(),
        "mount target created outside the rootfs"
    );
    assert!(
        !std::path::Path::new("/tmp/estiba-escape-target").exists(),
        "escaped through .."
    );
    // Nothing stayed mounted on the host.
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!info.contains(&w.name), "leftover mount: {info}");
}

#[test]
fn devices_default_and_configured() {
    if !can_run("devices_default_and_configured") {
        return;
    }
    let mut w = World::new("dev");
    w.config["linux"]["devices"] = json!([{"path":"/dev/mynull","type":"c","major":1,"minor":3,"fileMode":0o640,"uid":1000,"gid":1001},
                                           {"path":"/dev/sub/myzero","type":"c","major":1,"minor":5}]);
    w.config["linux"]["resources"]["devices"] = json!([{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"}]);
    w.script("for d in null zero full random urandom tty mynull sub/myzero; do stat -c \"$d %t,%T %a %u:%g %F\" /dev/$d; done; for l in ptmx fd stdin stdout stderr; do readlink /dev/$l; done; echo hi > /dev/sub/myzero && echo wrote");
    let out = w.run_ok("c");
    for want in [
        "null 1,3 666 0:0 character special file",
        "zero 1,5 666",
        "full 1,7 666",
        "random 1,8 666",
        "urandom 1,9 666",
        "tty 5,0 666",
        "mynull 1,3 640 1000:1001",
        "sub/myzero 1,5",
    ] {
        assert!(out.contains(want), "missing {want:?}: {out}");
    }
    for want in [
        "pts/ptmx",
        "/proc/self/fd\n",
        "/proc/self/fd/0",
        "/proc/self/fd/1",
        "/proc/self/fd/2",
        "wrote",
    ] {
        assert!(out.contains(want), "missing {want:?}: {out}");
    }
}

#[test]
fn masked_and_readonly_paths() {
    if !can_run("masked_and_readonly_paths") {
        return;
    }
    let mut w = World::new("mask");
    // Several files: the first mask gets the detached /dev/null clone, the
    // later ones clones of that mount.
    let files = [
        "/proc/version",
        "/proc/cmdline",
        "/proc/uptime",
        "/proc/loadavg",
    ];
    let mut masked: Vec<&str> = files.to_vec();
    masked.extend(["/proc/acpi", "/proc/does-not-exist"]);
    w.config["linux"]["maskedPaths"] = json!(masked);
    w.config["linux"]["readonlyPaths"] = json!(["/proc/sys"]);
    let each = files
        .iter()
        .map(|f| format!("echo $(wc -c < {f}) $(stat -c '%F %t:%T' {f})"))
        .collect::<Vec<_>>()
        .join("; ");
    w.script(&format!("{each}; ls /proc/acpi | wc -l; echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo sys-writable || echo sys-ro"));
    let out = w.run_ok("c");
    let lines: Vec<&str> = out.lines().collect();
    let mut want = vec!["0 character special file 1:3"; files.len()];
    want.extend(["0", "sys-ro"]);
    assert_eq!(lines, want, "{out}");
}

/// A masked or read-only path that is a symlink in the image is refused
/// (estiba never masks through a symlink), not covered in name only while
/// what it points to stays writable.
#[test]
fn masked_and_readonly_paths_that_are_symlinks_are_refused() {
    if !can_run("masked_and_readonly_paths_that_are_symlinks_are_refused") {
        return;
    }
    for key in ["readonlyPaths", "maskedPaths"] {
        let mut w = World::new(&format!("{}link", &key[..4]));
        std::fs::create_dir_all(w.rootfs().join("target")).unwrap();
        std::os::unix::fs::symlink("/target", w.rootfs().join("data")).unwrap();
        w.config["linux"][key] = json!(["/data"]);
        w.create_refused("c", "symlink");
    }
}

/// A read-only tmpfs whose destination is a symlink in the image lands
/// where the symlink points (inside the rootfs), and is read-only there.
#[test]
fn a_read_only_tmpfs_on_a_symlinked_destination() {
    if !can_run("a_read_only_tmpfs_on_a_symlinked_destination") {
        return;
    }
    let mut w = World::new("rotmpfslink");
    std::fs::create_dir_all(w.rootfs().join("vt")).unwrap();
    std::os::unix::fs::symlink("/vt", w.rootfs().join("t")).unwrap();
    let mut mounts = w.config["mounts"].as_array().unwrap().clone();
    mounts.push(json!({"destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": ["ro", "nosuid"]}));
    w.config["mounts"] = json!(mounts);
    w.script("touch /t/x 2>/dev/null && echo writable || echo read-only; grep ' /vt ' /proc/mounts | cut -d' ' -f3");
    let out = w.run_ok("c");
    assert_eq!(out, "read-only\ntmpfs\n");
}

#[test]
fn hostname_domainname_sysctl() {
    if !can_run("hostname_domainname_sysctl") {
        return;
    }
    let mut w = World::new("uts");
    w.config["hostname"] = json!("box-1");
    w.config["domainname"] = json!("example.test");
    w.config["linux"]["sysctl"] =
        json!({"net.ipv4.ip_forward": "1", "kernel.shm_rmid_forced": "1"});
    w.script("hostname; cat /proc/sys/kernel/domainname; cat /proc/sys/net/ipv4/ip_forward; cat /proc/sys/kernel/shm_rmid_forced");
    w.config["linux"]["readonlyPaths"] = json!([]);
    let out = w.run_ok("c");
    assert_eq!(out, "box-1\nexample.test\n1\n1\n");
    assert_ne!(
        nix::unistd::gethostname().unwrap().to_string_lossy(),
        "box-1"
    );
}

#[test]
fn process_user_env_cwd_umask_rlimits() {
    if !can_run("process_user_env_cwd_umask_rlimits") {
        return;
    }
    let mut w = World::new("proc");
    w.config["process"]["user"] =
        json!({"uid": 1000, "gid": 1001, "umask": 0o027, "additionalGids": [5, 2000]});
    w.config["process"]["cwd"] = json!("/work/dir");
    w.config["process"]["env"] = json!(["PATH=/bin", "FOO=bar baz"]);
    w.config["process"]["rlimits"] = json!([{"type":"RLIMIT_NOFILE","soft":123,"hard":456},{"type":"RLIMIT_CORE","soft":0,"hard":0}]);
    w.script("id -u; id -g; id -G; pwd; umask; echo \"$FOO\"; grep -E 'open files|core file' /proc/self/limits");
    let out = w.run_ok("c");
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "1000");
    assert_eq!(l[1], "1001");
    assert_eq!(
        l[2].split_whitespace().collect::<Vec<_>>(),
        vec!["1001", "5", "2000"],
        "{out}"
    );
    assert_eq!(l[3], "/work/dir");
    assert_eq!(l[4], "0027");
    assert_eq!(l[5], "bar baz");
    assert!(
        out.contains("Max open files            123                  456"),
        "{out}"
    );
    assert!(
        out.contains("Max core file size        0                    0"),
        "{out}"
    );
}

/// CapEff etc. as a set of capability numbers.
fn cap_bits(status: &str, field: &str) -> u64 {
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("{field}: {status}"));
    u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
}

#[test]
fn capabilities_all_five_sets_and_no_new_privs() {
    if !can_run("capabilities_all_five_sets_and_no_new_privs") {
        return;
    }
    let mut w = World::new("caps");
    let kill = 1u64 << 5;
    let nbs = 1u64 << 10;
    let chown = 1u64;
    w.config["process"]["capabilities"] = json!({
        "bounding": ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_CHOWN"],
        "effective": ["CAP_KILL", "CAP_CHOWN"],
        "permitted": ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_CHOWN"],
        "inheritable": ["CAP_NET_BIND_SERVICE"],
        "ambient": ["CAP_NET_BIND_SERVICE"]
    });
    w.config["process"]["noNewPrivileges"] = json!(true);
    w.config["process"]["args"] = json!(["cat", "/proc/self/status"]);
    // As root, execve makes permitted and effective what bounding allows.
    let status = w.run_ok("root");
    assert_eq!(cap_bits(&status, "CapBnd:"), kill | nbs | chown);
    assert_eq!(cap_bits(&status, "CapPrm:"), kill | nbs | chown);
    assert_eq!(cap_bits(&status, "CapEff:"), kill | nbs | chown);
    assert_eq!(cap_bits(&status, "CapInh:"), nbs);
    assert_eq!(cap_bits(&status, "CapAmb:"), nbs);
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");
    // As another user only the ambient set survives exec.
    w.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    let status = w.run_ok("user");
    assert_eq!(cap_bits(&status, "CapBnd:"), kill | nbs | chown);
    assert_eq!(cap_bits(&status, "CapPrm:"), nbs);
    assert_eq!(cap_bits(&status, "CapEff:"), nbs);
    assert_eq!(cap_bits(&status, "CapAmb:"), nbs);
    // Without ambient, a non-root process has none at all.
    w.config["process"]["capabilities"]["ambient"] = json!([]);
    let status = w.run_ok("noamb");
    assert_eq!(cap_bits(&status, "CapEff:"), 0);
    w.config["process"]["args"] = json!(["cat", "/proc/self/oom_score_adj"]);
    w.config["process"]["oomScoreAdj"] = json!(123);
    assert_eq!(w.run_ok("oom").trim(), "123");
    w.config["process"]["args"] = json!(["cat", "/proc/self/status"]);
    w.config["process"]["noNewPrivileges"] = json!(false);
    assert!(w.run_ok("nnp").contains("NoNewPrivs:\t0"));
}

#[test]
fn annotations_are_in_state() {
    if !can_run("annotations_are_in_state") {
        return;
    }
    let mut w = World::new("annot");
    w.config["annotations"] = json!({"org.example.key": "value", "other": ""});
    w.args(&["sleep", "10"]);
    let (id, out) = w.create("c", &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let st = w.state(&id);
    assert_eq!(st["annotations"]["org.example.key"], "value");
    assert_eq!(st["annotations"]["other"], "");
}

#[test]
fn rootfs_propagation() {
    if !can_run("rootfs_propagation") {
        return;
    }
    let mut w = World::new("prop");
    w.args(&[
        "grep",
        "-E",
        "^[0-9]+ [0-9]+ [0-9:]+ [^ ]+ / ",
        "/proc/self/mountinfo",
    ]);
    // Default: the root is a slave of the host (or private), never shared.
    let out = w.run_ok("default");
    assert!(!out.contains("shared:"), "{out}");
    w.config["linux"]["rootfsPropagation"] = json!("shared");
    let out = w.run_ok("shared");
    assert!(out.contains("shared:"), "{out}");
    w.config["linux"]["rootfsPropagation"] = json!("private");
    let out = w.run_ok("private");
    assert!(
        !out.contains("shared:") && !out.contains("master:"),
        "{out}"
    );
}
