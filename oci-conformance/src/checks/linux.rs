//! config-linux.md and runtime-linux.md, cgroups aside.

use serde_json::{json, Value};

use super::mounts::{mount_at, mounts};
use super::{create_fails, item, status_field, Check};
use crate::harness::{ensure, fail, skip, Bundle, Ctx, Holder, Outcome};

pub fn checks() -> Vec<Check> {
    vec![
        Check { name: "config-linux.md namespaces: pid without path MUST create a new namespace", run: |c| new_ns(c, "pid") },
        Check { name: "config-linux.md namespaces: network without path MUST create a new namespace", run: |c| new_ns(c, "network") },
        Check { name: "config-linux.md namespaces: mount without path MUST create a new namespace", run: |c| new_ns(c, "mount") },
        Check { name: "config-linux.md namespaces: ipc without path MUST create a new namespace", run: |c| new_ns(c, "ipc") },
        Check { name: "config-linux.md namespaces: uts without path MUST create a new namespace", run: |c| new_ns(c, "uts") },
        Check { name: "config-linux.md namespaces: cgroup without path MUST create a new namespace", run: |c| new_ns(c, "cgroup") },
        Check { name: "config-linux.md namespaces: user without path MUST create a new namespace", run: |c| new_ns(c, "user") },
        Check { name: "config-linux.md namespaces: time without path MUST create a new namespace", run: |c| new_ns(c, "time") },
        Check { name: "config-linux.md namespaces: a type not listed MUST inherit the runtime's namespace", run: inherit_ns },
        Check { name: "config-linux.md namespaces: with path the process MUST be placed in that namespace", run: join_ns },
        Check { name: "config-linux.md namespaces: a path not of the namespace type MUST generate an error", run: wrong_type },
        Check { name: "config-linux.md namespaces: duplicated namespace types MUST generate an error", run: duplicate_ns },
        Check { name: "config-linux.md namespaces: a path that does not exist MUST generate an error", run: missing_ns_path },
        Check { name: "config-linux.md user namespace mappings: uidMappings and gidMappings", run: id_mappings },
        Check { name: "config-linux.md user namespace mappings: the runtime SHOULD NOT change the ownership of the rootfs", run: userns_keeps_ownership },
        Check { name: "config-linux.md timeOffsets: offsets of the time namespace", run: time_offsets },
        Check { name: "config-linux.md devices: listed devices MUST be available (type, numbers, mode, owner)", run: devices },
        Check { name: "config-linux.md devices: a file at path that does not match the device MUST generate an error", run: device_conflict },
        Check { name: "config-linux.md default devices: the runtime MUST supply null, zero, full, random, urandom, tty, ptmx", run: default_devices },
        Check { name: "runtime-linux.md dev symbolic links: /dev/fd, /dev/stdin, /dev/stdout, /dev/stderr MUST be created", run: dev_symlinks },
        Check { name: "runtime-linux.md file descriptors: only stdin, stdout and stderr are kept open by default", run: fds },
        Check { name: "config-linux.md sysctl: parameters are set in the container", run: sysctl },
        Check { name: "config-linux.md seccomp: a syscall rule with errnoRet is enforced", run: seccomp_errno },
        Check { name: "config-linux.md seccomp: an unknown action MUST generate an error", run: seccomp_bad_action },
        Check { name: "config-linux.md seccomp: errnoRet on an action without errno MUST print an error and fail", run: seccomp_errno_on_kill },
        Check { name: "config-linux.md seccomp: names MUST contain at least one entry", run: seccomp_no_names },
        Check { name: "config-linux.md seccomp: listenerPath receives the container process state and the notify fd", run: seccomp_listener },
        Check { name: "config-linux.md rootfsPropagation: shared", run: |c| root_propagation(c, "shared", Some("shared:")) },
        Check { name: "config-linux.md rootfsPropagation: slave", run: |c| root_propagation(c, "slave", Some("master:")) },
        Check { name: "config-linux.md rootfsPropagation: private", run: |c| root_propagation(c, "private", None) },
        Check { name: "config-linux.md rootfsPropagation: unbindable", run: |c| root_propagation(c, "unbindable", Some("unbindable")) },
        Check { name: "config-linux.md maskedPaths: MUST mask over the paths so they cannot be read", run: masked },
        Check { name: "config-linux.md readonlyPaths: MUST set the paths read-only", run: readonly },
        Check { name: "config-linux.md personality: domain LINUX32", run: personality },
        Check { name: "config-linux.md intelRdt: without a mounted resctrl the runtime MUST generate an error", run: intel_rdt },
        Check { name: "config-linux.md mountLabel: the SELinux label of mounts", run: |_| selinux_skip() },
        Check { name: "config-linux.md netDevices (1.3): a device that cannot be moved MUST generate an error", run: net_device_missing },
    ]
}

fn selinux_skip() -> Outcome {
    skip("SELinux is not enabled on this host")
}

/// /proc/self/ns link names for spec namespace types.
fn ns_file(t: &str) -> &str {
    match t {
        "network" => "net",
        "mount" => "mnt",
        other => other,
    }
}

pub fn own_ns(t: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{}", ns_file(t)))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

fn user_ns_config(b: &mut Bundle) {
    let map = json!([{ "containerID": 0, "hostID": 200000, "size": 65536 }]);
    b.config["linux"]["uidMappings"] = map.clone();
    b.config["linux"]["gidMappings"] = map;
    // sysfs needs the network namespace's owner; keep it simple.
}

fn add_ns(b: &mut Bundle, ns: Value) {
    if let Some(list) = b.config["linux"]["namespaces"].as_array_mut() {
        list.push(ns);
    }
}

fn new_ns(ctx: &Ctx, t: &str) -> Outcome {
    if !std::path::Path::new(&format!("/proc/self/ns/{}", ns_file(t))).exists() {
        return skip(format!("this kernel has no {t} namespaces"));
    }
    let mut b = ctx.bundle(&["report"]);
    if !["pid", "network", "mount", "ipc", "uts"].contains(&t) {
        add_ns(&mut b, json!({ "type": t }));
    }
    if t == "user" {
        user_ns_config(&mut b);
    }
    let r = b.report()?;
    let inside = r["ns"][ns_file(t)].as_str().unwrap_or_default().to_string();
    ensure(!inside.is_empty() && inside != own_ns(t), || {
        format!(
            "{t} namespace inside is {inside:?}, the runtime's is {:?}",
            own_ns(t)
        )
    })
}

fn inherit_ns(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["report"]);
    b.config["linux"]["namespaces"] = json!([{ "type": "mount" }, { "type": "pid" }]);
    b.config.as_object_mut().map(|o| o.remove("hostname"));
    let r = b.report()?;
    for t in ["network", "ipc", "uts"] {
        let inside = r["ns"][ns_file(t)].as_str().unwrap_or_default();
        ensure(inside == own_ns(t), || {
            format!("{t}: {inside} inside, {} outside", own_ns(t))
        })?;
    }
    Ok(())
}

fn join_ns(ctx: &Ctx) -> Outcome {
    let h = Holder::new()?;
    let mut b = ctx.bundle(&["report"]);
    b.config["linux"]["namespaces"] = json!([
        { "type": "mount" }, { "type": "pid" },
        { "type": "network", "path": h.path("net") },
        { "type": "uts", "path": h.path("uts") },
        { "type": "ipc", "path": h.path("ipc") }
    ]);
    let r = b.report()?;
    for t in ["net", "uts", "ipc"] {
        ensure(r["ns"][t] == h.ns(t).as_str(), || {
            format!("{t}: {} inside, {} joined", r["ns"][t], h.ns(t))
        })?;
    }
    Ok(())
}

fn wrong_type(ctx: &Ctx) -> Outcome {
    let h = Holder::new()?;
    let mut b = ctx.bundle(&["report"]);
    b.config["linux"]["namespaces"] =
        json!([{ "type": "mount" }, { "type": "network", "path": h.path("uts") }]);
    create_fails(&mut b)
}

fn duplicate_ns(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["report"]);
    add_ns(&mut b, json!({ "type": "network" }));
    create_fails(&mut b)
}

fn id_mappings(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["report"]);
    add_ns(&mut b, json!({ "type": "user" }));
    user_ns_config(&mut b);
    let r = b.report()?;
    for f in ["uid_map", "gid_map"] {
        let m: Vec<String> = r[f]
            .as_str()
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect();
        ensure(m == ["0", "200000", "65536"], || format!("{f}: {m:?}"))?;
    }
    Ok(())
}

fn time_offsets(ctx: &Ctx) -> Outcome {
    if !std::path::Path::new("/proc/self/ns/time").exists() {
        return skip("this kernel has no time namespaces");
    }
    let mut b = ctx.bundle(&["report"]);
    b.config["ociVersion"] = json!("1.2.0");
    add_ns(&mut b, json!({ "type": "time" }));
    b.config["linux"]["timeOffsets"] = json!({ "monotonic": { "secs": 86400, "nanosecs": 0 } });
    let r = b.report()?;
    let offsets = r["timens_offsets"].as_str().unwrap_or_default().to_string();
    ensure(
        offsets
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["monotonic", "86400", "0"]),
        || format!("timens_offsets: {offsets:?}"),
    )
}

fn devices(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&[
        "report",
        "stat:/dev/oc-null",
        "stat:/dev/oc-loop",
        "stat:/dev/oc-fifo",
    ]);
    b.config["linux"]["devices"] = json!([
        { "path": "/dev/oc-null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640, "uid": 12, "gid": 34 },
        { "path": "/dev/oc-loop", "type": "b", "major": 7, "minor": 0 },
        { "path": "/dev/oc-fifo", "type": "p" }
    ]);
    let r = b.report()?;
    let null = item(&r, "stat:/dev/oc-null");
    ensure(
        null["type"] == "char" && null["major"] == 1 && null["minor"] == 3,
        || format!("/dev/oc-null: {null}"),
    )?;
    ensure(
        null["mode"] == 0o640 && null["uid"] == 12 && null["gid"] == 34,
        || format!("/dev/oc-null: {null}"),
    )?;
    let lp = item(&r, "stat:/dev/oc-loop");
    ensure(
        lp["type"] == "block" && lp["major"] == 7 && lp["minor"] == 0,
        || format!("/dev/oc-loop: {lp}"),
    )?;
    let fifo = item(&r, "stat:/dev/oc-fifo");
    ensure(fifo["type"] == "fifo", || format!("/dev/oc-fifo: {fifo}"))
}

fn device_conflict(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["report"]);
    // No tmpfs on /dev: the rootfs's own /dev holds a regular file there.
    if let Some(m) = b.config["mounts"].as_array_mut() {
        m.retain(|m| {
            m["destination"] != "/dev"
                && !m["destination"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with("/dev/")
        });
    }
    let _ = std::fs::write(b.rootfs().join("dev/oc-conflict"), "not a device");
    b.config["linux"]["devices"] =
        json!([{ "path": "/dev/oc-conflict", "type": "c", "major": 1, "minor": 3 }]);
    create_fails(&mut b)
}

fn default_devices(ctx: &Ctx) -> Outcome {
    let list = [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ];
    let mut args: Vec<String> = list
        .iter()
        .map(|(n, _, _)| format!("stat:/dev/{n}"))
        .collect();
    args.push("stat:/dev/ptmx".into());
    let mut b = ctx.bundle(&[]);
    let mut all = vec!["report"];
    all.extend(args.iter().map(String::as_str));
    b.set_args(&all);
    let r = b.report()?;
    for (n, ma, mi) in list {
        let s = item(&r, &format!("stat:/dev/{n}"));
        ensure(
            s["type"] == "char" && s["major"] == ma && s["minor"] == mi,
            || format!("/dev/{n}: {s}"),
        )?;
    }
    let ptmx = item(&r, "stat:/dev/ptmx");
    ensure(
        ptmx["target"] == "pts/ptmx" || ptmx["type"] == "char",
        || format!("/dev/ptmx: {ptmx}"),
    )
}

fn dev_symlinks(ctx: &Ctx) -> Outcome {
    let links = [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ];
    let mut b = ctx.bundle(&[
        "report",
        "stat:/dev/fd",
        "stat:/dev/stdin",
        "stat:/dev/stdout",
        "stat:/dev/stderr",
    ]);
    let r = b.report()?;
    for (name, target) in links {
        let s = item(&r, &format!("stat:/dev/{name}"));
        ensure(s["type"] == "symlink" && s["target"] == target, || {
            format!("/dev/{name}: {s}")
        })?;
    }
    Ok(())
}

fn fds(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["report"]);
    let r = b.report()?;
    ensure(r["fds"] == json!([0, 1, 2]), || {
        format!("open fds: {}", r["fds"])
    })
}

fn sysctl(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&[
        "report",
        "read:/proc/sys/net/ipv4/ip_forward",
        "read:/proc/sys/kernel/shm_rmid_forced",
    ]);
    b.config["linux"]["sysctl"] =
        json!({ "net.ipv4.ip_forward": "1", "kernel.shm_rmid_forced": "1" });
    let r = b.report()?;
    for p in [
        "/proc/sys/net/ipv4/ip_forward",
        "/proc/sys/kernel/shm_rmid_forced",
    ] {
        let v = item(&r, &format!("read:{p}"));
        ensure(v["content"] == "1\n", || format!("{p}: {v}"))?;
    }
    Ok(())
}

fn seccomp(rules: Value) -> Value {
    json!({ "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"], "syscalls": rules })
}

fn seccomp_errno(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["report", "getcwd"]);
    b.config["linux"]["seccomp"] =
        seccomp(json!([{ "names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42 }]));
    let r = b.report()?;
    ensure(status_field(&r, "Seccomp") == "2", || {
        format!("Seccomp: {}", status_field(&r, "Seccomp"))
    })?;
    ensure(item(&r, "getcwd")["errno"] == 42, || {
        format!("getcwd: {}", item(&r, "getcwd"))
    })
}

fn seccomp_bad_action(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["report"]);
    b.config["linux"]["seccomp"] =
        seccomp(json!([{ "names": ["getcwd"], "action": "SCMP_ACT_NO_SUCH" }]));
    create_fails(&mut b)
}

fn seccomp_errno_on_kill(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["report"]);
    b.config["linux"]["seccomp"] =
        seccomp(json!([{ "names": ["getcwd"], "action": "SCMP_ACT_KILL", "errnoRet": 5 }]));
    create_fails(&mut b)
}

fn seccomp_listener(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["sleep", "30"]);
    let sock = b.dir.join("seccomp.sock");
    let listener =
        std::os::unix::net::UnixListener::bind(&sock).or_else(|e| fail(format!("bind: {e}")))?;
    let mut sc = seccomp(json!([{ "names": ["syslog"], "action": "SCMP_ACT_NOTIFY" }]));
    sc["listenerPath"] = json!(sock);
    sc["listenerMetadata"] = json!("conformance");
    b.config["linux"]["seccomp"] = sc;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(crate::fdpass::receive(&listener));
    });
    let created = b.created();
    if created.is_ok() {
        let _ = b.start();
    }
    let got = rx.recv_timeout(std::time::Duration::from_secs(5));
    created?;
    let Ok(Ok((body, fds))) = got else {
        return fail("nothing arrived on listenerPath");
    };
    let st: Value = serde_json::from_slice(&body)
        .or_else(|_| fail(format!("not JSON: {:?}", String::from_utf8_lossy(&body))))?;
    ensure(fds.len() == 1, || format!("{} fds sent", fds.len()))?;
    ensure(st["fds"] == json!(["seccompFd"]), || {
        format!("fds: {}", st["fds"])
    })?;
    ensure(
        st["pid"].as_i64().unwrap_or(0) > 0 && st["metadata"] == "conformance",
        || format!("state: {st}"),
    )?;
    ensure(st["state"]["id"] == b.id.as_str(), || {
        format!("state.id {}", st["state"]["id"])
    })
}

/// Whether the host mount holding `path` is shared (a slave needs a master).
fn host_mount_shared(path: &std::path::Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let point = *f.get(4)?;
            path.starts_with(point)
                .then(|| (point.len(), f.iter().any(|x| x.starts_with("shared:"))))
        })
        .max_by_key(|(len, _)| *len)
        .is_some_and(|(_, shared)| shared)
}

fn root_propagation(ctx: &Ctx, mode: &str, tag: Option<&str>) -> Outcome {
    let mut b = ctx.bundle(&["report"]);
    if mode == "slave" && !host_mount_shared(&b.dir) {
        return skip(
            "the host mount holding the bundle is not shared, so a slave has no master to show",
        );
    }
    b.config["linux"]["rootfsPropagation"] = json!(mode);
    let r = b.report()?;
    let all = mounts(&r);
    let Some(root) = mount_at(&all, "/") else {
        return fail("no / in mountinfo");
    };
    super::mounts::propagation_is(root, tag)
}

fn masked(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["report", "read:/proc/keys", "stat:/sys/kernel/mm"]);
    b.config["linux"]["maskedPaths"] = json!(["/proc/keys", "/sys/kernel"]);
    let r = b.report()?;
    let keys = item(&r, "read:/proc/keys");
    ensure(keys["content"] == "" || keys["errno"].is_number(), || {
        format!("/proc/keys readable: {keys}")
    })?;
    let mm = item(&r, "stat:/sys/kernel/mm");
    ensure(mm["errno"] == libc::ENOENT, || {
        format!("/sys/kernel/mm visible: {mm}")
    })
}

fn readonly(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["report", "write:/proc/sys/kernel/hostname"]);
    b.config["linux"]["readonlyPaths"] = json!(["/proc/sys"]);
    let r = b.report()?;
    let w = item(&r, "write:/proc/sys/kernel/hostname");
    ensure(w["errno"] == libc::EROFS, || {
        format!("write below /proc/sys: {w}")
    })
}

fn personality(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["report"]);
    b.config["ociVersion"] = json!("1.2.0");
    b.config["linux"]["personality"] = json!({ "domain": "LINUX32" });
    let r = b.report()?;
    let p = r["personality"].as_i64().unwrap_or(-1);
    ensure(p & 0xff == 0x0008, || {
        format!("personality {p:#x}, machine {}", r["machine"])
    })
}

fn intel_rdt(ctx: &Ctx) -> Outcome {
    let mounted = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .contains(" resctrl ");
    if mounted {
        return skip("resctrl is mounted here; the error path cannot be seen");
    }
    let mut b = ctx.bundle(&["report"]);
    b.config["linux"]["intelRdt"] = json!({ "closID": "oc-conformance" });
    create_fails(&mut b)
}

fn missing_ns_path(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["report"]);
    b.config["linux"]["namespaces"] =
        json!([{ "type": "mount" }, { "type": "network", "path": "/proc/self/ns/no-such-ns" }]);
    create_fails(&mut b)
}

fn net_device_missing(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["report"]);
    b.config["ociVersion"] = json!("1.3.0");
    b.config["linux"]["netDevices"] = json!({ "oci-no-such0": { "name": "eth0" } });
    create_fails(&mut b)
}

fn seccomp_no_names(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["report"]);
    b.config["linux"]["seccomp"] = seccomp(json!([{ "names": [], "action": "SCMP_ACT_ERRNO" }]));
    create_fails(&mut b)
}

fn userns_keeps_ownership(ctx: &Ctx) -> Outcome {
    use std::os::unix::fs::MetadataExt;
    let mut b = ctx.bundle(&["report"]);
    add_ns(&mut b, json!({ "type": "user" }));
    user_ns_config(&mut b);
    let owner = |p: &std::path::Path| std::fs::metadata(p).map(|m| (m.uid(), m.gid())).ok();
    let before = (owner(&b.rootfs()), owner(&b.rootfs().join("oci-checker")));
    b.report()?;
    let after = (owner(&b.rootfs()), owner(&b.rootfs().join("oci-checker")));
    ensure(before == after, || {
        format!("ownership changed: {before:?} -> {after:?}")
    })
}
