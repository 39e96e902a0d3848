//! Attacks on the host, each built the way an attacker would build it (a
//! hostile image, a hostile config an engine might pass, a racing process
//! inside the container), against harmless host targets that are restored
//! whatever happens. Each one changed the host before its fix.

use std::path::Path;
use std::time::{Duration, Instant};

use estiba_integration::*;
use serde_json::json;

/// CVE-2019-5736 through `exec`, with the default capabilities: the image
/// holds a script whose interpreter is `#!/proc/self/exe`. When estiba's
/// clone execs it, the kernel runs the runtime binary again as a container
/// process; its `--log` is a fifo, so it blocks there while the container's
/// init opens `/proc/<pid>/exe`, keeps the descriptor, lets it go, and once
/// no estiba of that binary runs, reopens the descriptor for writing. A copy
/// of the binary is attacked, so a failure cannot damage the build.
#[test]
fn exec_of_a_proc_self_exe_script_cannot_overwrite_the_runtime() {
    if !can_run("exec_of_a_proc_self_exe_script_cannot_overwrite_the_runtime") {
        return;
    }
    let mut w = World::new("cveshebang");
    let copy = w.dir.join("estiba-copy");
    std::fs::copy(binary(), &copy).unwrap();
    let before = std::fs::read(&copy).unwrap();
    w.bin = copy.clone();
    w.config["root"]["readonly"] = json!(false);
    let rootfs = w.rootfs();
    std::fs::write(
        rootfs.join("bin/evil"),
        "#!/proc/self/exe --log=/tmp/fifo\n",
    )
    .unwrap();
    std::fs::set_permissions(
        rootfs.join("bin/evil"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    nix::unistd::mkfifo(
        &rootfs.join("tmp/fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o666),
    )
    .unwrap();
    let attack = "while [ ! -e /tmp/go ]; do sleep 0.05; done; \
        for p in /proc/[0-9]*; do grep -q fifo $p/cmdline 2>/dev/null || continue; \
          command eval \"exec 3< $p/exe\" && echo held $p $(readlink $p/exe) >> /tmp/hits; break; done; \
        exec 4< /tmp/fifo; cat <&4 >> /tmp/hits; \
        while [ ! -e /tmp/stop ]; do sleep 0.05; done; \
        { echo pwned >> /proc/self/fd/3; } 2>> /tmp/hits && echo wrote >> /tmp/hits; \
        touch /tmp/done; sleep 1000";
    w.script(attack);
    let id = w.running("c");
    let out = w.estiba(&["exec", "-d", &id, "/bin/evil"]);
    if text(&out.stderr).contains("no such file or directory") {
        // Kernels that keep a magic link to a file outside the caller's
        // mount namespace from serving as an interpreter (this machine's).
        skip!("exec_of_a_proc_self_exe_script: this kernel refuses /proc/self/exe as the interpreter of estiba's clone (ENOENT); the ptrace form is tested in exec.rs");
        return;
    }
    assert!(out.status.success(), "exec -d: {}", text(&out.stderr));
    std::fs::write(rootfs.join("tmp/go"), "").unwrap();
    // The runtime copy ran twice: as `exec`, and (in the container) as the
    // script's interpreter. Neither runs once the fifo is read.
    std::thread::sleep(Duration::from_millis(500));
    std::fs::write(rootfs.join("tmp/stop"), "").unwrap();
    assert!(
        wait_for_path(&rootfs.join("tmp/done"), 10),
        "attacker did not finish"
    );
    let hits = std::fs::read_to_string(rootfs.join("tmp/hits")).unwrap_or_default();
    let changed = before != std::fs::read(&copy).unwrap();
    w.bin = binary();
    assert!(
        hits.contains("held"),
        "the attack did not get as far as holding the interpreter's exe: {hits}"
    );
    assert!(
        !changed,
        "the runtime binary was overwritten from the container: {hits}"
    );
    assert!(!hits.contains("wrote"), "{hits}");
}

/// A host sysctl, read now and written back when dropped (pass or fail).
struct HostSysctl {
    path: std::path::PathBuf,
    value: String,
}

impl HostSysctl {
    fn save(key: &str) -> HostSysctl {
        let path = Path::new("/proc/sys").join(key.replace('.', "/"));
        let value = std::fs::read_to_string(&path).unwrap();
        HostSysctl { path, value }
    }
    fn changed(&self) -> bool {
        std::fs::read_to_string(&self.path).unwrap() != self.value
    }
    /// A value other than the saved one (for a 0/1 switch).
    fn other(&self) -> &'static str {
        if self.value.trim() == "0" {
            "1"
        } else {
            "0"
        }
    }
}

impl Drop for HostSysctl {
    fn drop(&mut self) {
        if self.changed() {
            let _ = std::fs::write(&self.path, self.value.trim());
        }
    }
}

/// Sysctls outside the namespaces the container owns would be the host's:
/// every such config is refused before any process exists, naming the key.
#[test]
fn host_sysctls_are_refused() {
    if !can_run("host_sysctls_are_refused") {
        return;
    }
    let guard = HostSysctl::save("kernel.core_uses_pid");
    let other = guard.other();
    let mut w = World::new("sysctlhost");
    let cases: Vec<(serde_json::Value, &str, Option<&str>)> = vec![
        (
            json!({"kernel.core_uses_pid": other}),
            "kernel.core_uses_pid",
            None,
        ),
        (
            json!({"net.ipv4.tcp_fin_timeout": "31"}),
            "net.ipv4.tcp_fin_timeout",
            Some("network"),
        ),
        (
            json!({"fs.mqueue.queues_max": "77"}),
            "fs.mqueue.queues_max",
            Some("ipc"),
        ),
        (
            json!({"kernel.msgmax": "8193"}),
            "kernel.msgmax",
            Some("ipc"),
        ),
        (
            json!({"net.ipv4.ping_group_range": "0 0"}),
            "net.ipv4.ping_group_range",
            Some("network"),
        ),
        (
            json!({"kernel.hostname": "pwned-host"}),
            "kernel.hostname",
            Some("uts"),
        ),
    ];
    let hostname = HostSysctl::save("kernel.hostname");
    for (i, (sysctl, key, drop_ns)) in cases.into_iter().enumerate() {
        let mut c = w.config.clone();
        c["linux"]["sysctl"] = sysctl;
        if let Some(ns) = drop_ns {
            let nss = c["linux"]["namespaces"].as_array().unwrap().clone();
            c["linux"]["namespaces"] = json!(nss
                .into_iter()
                .filter(|n| n["type"] != ns)
                .collect::<Vec<_>>());
        }
        if drop_ns == Some("uts") {
            c.as_object_mut().unwrap().remove("hostname");
        }
        let saved = std::mem::replace(&mut w.config, c);
        let (id, out) = w.create(&format!("k{i}"), &[]);
        w.config = saved;
        assert_eq!(out.status.code(), Some(1), "{key}: create succeeded");
        assert!(
            text(&out.stderr).contains(key),
            "{key}: {}",
            text(&out.stderr)
        );
        assert!(!w.root.join(&id).exists(), "{key}: state left behind");
    }
    assert!(
        !guard.changed(),
        "the host's kernel.core_uses_pid was changed"
    );
    assert!(!hostname.changed(), "the host was renamed");
    // In namespaces of its own the container's values are its own.
    w.config["linux"]["sysctl"] =
        json!({"net.ipv4.tcp_fin_timeout": "31", "kernel.msgmax": "8193"});
    w.script("cat /proc/sys/net/ipv4/tcp_fin_timeout /proc/sys/kernel/msgmax");
    let out = w.run_ok("own");
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["31", "8193"],
        "{out}"
    );
}

/// A config.json that is a fifo would block `create` forever; a huge one
/// would be read whole.
#[test]
fn a_fifo_config_is_refused_at_once() {
    if !can_run("a_fifo_config_is_refused_at_once") {
        return;
    }
    let mut w = World::new("fifocfg");
    let cfg = w.bundle.join("config.json");
    let _ = std::fs::remove_file(&cfg);
    nix::unistd::mkfifo(&cfg, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let id = w.id("c");
    let bundle = w.bundle.to_string_lossy().into_owned();
    let started = Instant::now();
    let out = w.estiba(&["create", "--bundle", &bundle, &id]);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("not a regular file"),
        "{}",
        text(&out.stderr)
    );
}

/// runc's rule: the rootfs must not be a symlink (nor pass through one
/// inside the bundle), so what was checked is what is mounted.
#[test]
fn a_symlinked_rootfs_is_refused() {
    if !can_run("a_symlinked_rootfs_is_refused") {
        return;
    }
    let mut w = World::new("rootlink");
    std::fs::rename(w.rootfs(), w.bundle.join("real")).unwrap();
    std::os::unix::fs::symlink("real", w.rootfs()).unwrap();
    let (id, out) = w.create("c", &[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "created through a symlinked rootfs"
    );
    assert!(
        text(&out.stderr).contains("symlink"),
        "{}",
        text(&out.stderr)
    );
    assert!(!w.root.join(id).exists());
    std::fs::remove_file(w.rootfs()).unwrap();
    std::fs::rename(w.bundle.join("real"), w.rootfs()).unwrap();
}

/// Lenient input that would weaken a later check.
#[test]
fn lenient_device_input_is_refused() {
    if !can_run("lenient_device_input_is_refused") {
        return;
    }
    let mut w = World::new("lenient");
    w.config["linux"]["devices"] =
        json!([{"path": "/dev/../../etc/evil", "type": "c", "major": 1, "minor": 3}]);
    let (_, out) = w.create("dotdot", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        !w.rootfs().join("etc/evil").exists(),
        "a node was made outside /dev"
    );
    w.config["linux"]["devices"] = json!([]);
    w.config["linux"]["resources"]["devices"] = json!([{"allow": true, "access": "xyz"}]);
    let (_, out) = w.create("access", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("xyz"), "{}", text(&out.stderr));
}

/// A bind mount whose options hold a word the runtime does not know: a
/// typo for `ro` (`r0`), or a filesystem option a bind cannot take. Passed
/// through as mount data, the kernel drops it and the container writes to a
/// host directory that was meant to be read-only.
#[test]
fn unknown_bind_mount_options_are_refused() {
    if !can_run("unknown_bind_mount_options_are_refused") {
        return;
    }
    let mut w = World::new("bindopts");
    let host = w.dir.join("host-data");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::create_dir_all(w.rootfs().join("data")).unwrap();
    let mut mounts = w.config["mounts"].as_array().unwrap().clone();
    mounts.push(
        json!({"destination": "/data", "type": "bind", "source": host,
        "options": ["rbind", "r0"]}),
    );
    w.config["mounts"] = json!(mounts);
    w.script("echo x > /data/written");
    let out = w.run("typo");
    assert!(
        !host.join("written").exists(),
        "the container wrote to the host directory"
    );
    assert_eq!(out.status.code(), Some(1), "run succeeded");
    assert!(text(&out.stderr).contains("r0"), "{}", text(&out.stderr));
    let m = w.config["mounts"]
        .as_array_mut()
        .unwrap()
        .last_mut()
        .unwrap();
    m["options"] = json!(["bind", "ro", "mode=755"]);
    let (id, out) = w.create("fsopt", &[]);
    assert_eq!(out.status.code(), Some(1), "create succeeded");
    assert!(
        text(&out.stderr).contains("mode=755"),
        "{}",
        text(&out.stderr)
    );
    assert!(!w.root.join(id).exists());
}

/// A config whose mounts put a host directory over part of /proc/sys, with a
/// symlink where a namespaced sysctl should be, plus that sysctl: the write
/// would land in a host sysctl. Two forms: the mount aimed at /proc/sys/net
/// directly, and an image symlink `/vol -> /proc/sys/net` with a volume at
/// `/vol`.
#[test]
fn proc_writes_cannot_be_redirected_by_mounts() {
    if !can_run("proc_writes_cannot_be_redirected_by_mounts") {
        return;
    }
    let guard = HostSysctl::save("kernel.core_uses_pid");
    let mut w = World::new("procredir");
    let fake = w.dir.join("fake-net");
    std::fs::create_dir_all(fake.join("ipv4")).unwrap();
    std::os::unix::fs::symlink(
        "/proc/sys/kernel/core_uses_pid",
        fake.join("ipv4/ip_forward"),
    )
    .unwrap();
    std::os::unix::fs::symlink("/proc/sys/net", w.rootfs().join("vol")).unwrap();
    w.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": guard.other()});
    let mounts = w.config["mounts"].as_array().unwrap().clone();
    for (n, dest) in ["/proc/sys/net", "/vol"].into_iter().enumerate() {
        let mut m = mounts.clone();
        m.push(json!({"destination": dest, "type": "bind", "source": fake, "options": ["rbind"]}));
        w.config["mounts"] = json!(m);
        let (id, out) = w.create(&format!("m{n}"), &[]);
        assert_eq!(out.status.code(), Some(1), "{dest}: create succeeded");
        assert!(
            text(&out.stderr).contains("inside /proc"),
            "{dest}: {}",
            text(&out.stderr)
        );
        assert!(!w.root.join(id).exists());
        assert!(!guard.changed(), "{dest}: a host sysctl was written");
    }
}

/// `/proc` or `/sys` in the image as a symlink: procfs or sysfs would be
/// mounted wherever it points.
#[test]
fn proc_and_sys_must_be_real_directories() {
    if !can_run("proc_and_sys_must_be_real_directories") {
        return;
    }
    for dir in ["proc", "sys"] {
        let mut w = World::new(&format!("{dir}link"));
        let p = w.rootfs().join(dir);
        std::fs::remove_dir(&p).unwrap();
        std::fs::create_dir_all(w.rootfs().join("tmp/elsewhere")).unwrap();
        std::os::unix::fs::symlink("/tmp/elsewhere", &p).unwrap();
        w.config["process"]["oomScoreAdj"] = json!(100);
        let (id, out) = w.create("c", &[]);
        assert_eq!(out.status.code(), Some(1), "/{dir} as a symlink: created");
        assert!(
            text(&out.stderr).contains("ordinary directory"),
            "{}",
            text(&out.stderr)
        );
        assert!(!w.root.join(id).exists());
    }
}

/// CVE-2025-31133: an image whose `/dev/null` is a symlink to a host sysctl
/// (a config without a /dev tmpfs keeps the image's /dev): masking must not
/// bind that file read-write over /proc/keys, where the container writes.
/// Masks bind the host's verified /dev/null; and since the default nodes go
/// into the image's /dev too, the planted file is refused before that.
#[test]
fn masks_do_not_use_the_images_dev_null() {
    if !can_run("masks_do_not_use_the_images_dev_null") {
        return;
    }
    let guard = HostSysctl::save("kernel.core_uses_pid");
    let mut w = World::new("devnull");
    let mounts: Vec<_> = w.config["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| !m["destination"].as_str().unwrap_or("").starts_with("/dev"))
        .cloned()
        .collect();
    w.config["mounts"] = json!(mounts);
    std::os::unix::fs::symlink(
        "/proc/sys/kernel/core_uses_pid",
        w.rootfs().join("dev/null"),
    )
    .unwrap();
    w.script(&format!(
        "echo {} > /proc/keys; cat /proc/keys; echo done",
        guard.other()
    ));
    let out = w.run("c");
    assert!(
        !guard.changed(),
        "a host sysctl was written through a mask: {}",
        text(&out.stdout)
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("\"/dev/null\": the file already there"),
        "{}",
        text(&out.stderr)
    );
}

/// The create of a container inherits nothing of its caller: a file and a
/// pipe end the caller had open are not held by the waiting init.
#[test]
fn the_created_init_holds_no_descriptor_of_its_caller() {
    if !can_run("the_created_init_holds_no_descriptor_of_its_caller") {
        return;
    }
    let mut w = World::new("callerfds");
    w.args(&["sleep", "1000"]);
    w.write_config();
    let id = w.id("c");
    let cmd = format!(
        "exec 7</etc/hostname 8>{dir}/scratch 9<>{dir}/scratch; exec {bin} --root {root} create --bundle {bundle} {id}",
        dir = w.dir.display(),
        bin = binary().display(),
        root = w.root.display(),
        bundle = w.bundle.display()
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &cmd])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(out.success());
    let pid = w.state(&id)["pid"].as_i64().unwrap();
    let mut held = vec![];
    for e in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
    {
        let n: i32 = e.file_name().to_string_lossy().parse().unwrap();
        let target = std::fs::read_link(e.path()).unwrap_or_default();
        if n > 2 {
            held.push(format!("{n} -> {}", target.display()));
        }
    }
    let leaked: Vec<_> = held
        .iter()
        .filter(|h| {
            h.contains("hostname")
                || h.contains("scratch")
                || h.starts_with("7 ")
                || h.starts_with("8 ")
                || h.starts_with("9 ")
        })
        .collect();
    assert!(
        leaked.is_empty(),
        "the init holds the caller's fds: {held:?}"
    );
    // Only its two channels (the exec socket and the one to create) remain,
    // and those are sockets.
    assert!(held.iter().all(|h| h.contains("socket:")), "{held:?}");
}

/// `exec --cgroup` with a path that leaves the container's cgroup is
/// refused, and nothing runs.
#[test]
fn exec_cgroup_cannot_leave_the_container() {
    if !can_run("exec_cgroup_cannot_leave_the_container") {
        return;
    }
    let mut w = World::new("execcg");
    w.args(&["sleep", "1000"]);
    w.config["root"]["readonly"] = json!(false);
    let id = w.running("c");
    for sub in ["..", "../..", "/", "/x", "a/../..", ""] {
        let out = w.estiba(&["exec", "--cgroup", sub, &id, "sh", "-c", "touch /tmp/ran"]);
        assert_eq!(out.status.code(), Some(255), "--cgroup {sub:?} ran");
        assert!(
            text(&out.stderr).contains("--cgroup"),
            "{}",
            text(&out.stderr)
        );
        assert!(
            !w.rootfs().join("tmp/ran").exists(),
            "--cgroup {sub:?}: the process ran"
        );
    }
}

/// `exec --cap` raises bounding, effective and permitted, never inheritable
/// or ambient (runc since CVE-2022-29162).
#[test]
fn exec_cap_does_not_widen_inheritable_or_ambient() {
    if !can_run("exec_cap_does_not_widen_inheritable_or_ambient") {
        return;
    }
    let mut w = World::new("execcap");
    w.args(&["sleep", "1000"]);
    let id = w.running("c");
    let out = w.estiba(&[
        "exec",
        "--cap",
        "CAP_SYS_ADMIN",
        &id,
        "grep",
        "-E",
        "^Cap(Inh|Amb|Eff)",
        "/proc/self/status",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let o = text(&out.stdout);
    let field = |k: &str| {
        let v = tagged_line(&o, k);
        u64::from_str_radix(v.split_whitespace().nth(1).unwrap_or("0"), 16).unwrap()
    };
    assert_eq!(field("CapInh"), 0, "{o}");
    assert_eq!(field("CapAmb"), 0, "{o}");
    assert_ne!(
        field("CapEff") & (1 << 21),
        0,
        "CAP_SYS_ADMIN not effective: {o}"
    );
}

/// What a killed `estiba CMD` may leave must go with `delete --force`, and
/// the id must be free again. strace kills the runtime at its Nth syscall.
fn killed_at_every_point(w: &mut World, cmd: &str, step: usize) -> usize {
    let mut points = 0;
    let rootfs = std::fs::canonicalize(w.rootfs()).unwrap();
    for n in (1..2000).step_by(step) {
        let id = w.id(&format!("{cmd}{n}"));
        let bundle = w.bundle.to_string_lossy().into_owned();
        let root = w.root.to_string_lossy().into_owned();
        let pre: Vec<&str> = match cmd {
            "start" | "delete" | "exec" => vec!["create", "--bundle", &bundle, &id],
            _ => vec![],
        };
        if !pre.is_empty() {
            assert!(w.estiba(&pre).status.success());
        }
        if cmd == "exec" {
            assert!(w.estiba(&["start", &id]).status.success());
        }
        let args: Vec<&str> = match cmd {
            "create" => vec!["create", "--bundle", &bundle, &id],
            "run" => vec!["run", "-d", "--bundle", &bundle, &id],
            "start" => vec!["start", &id],
            "delete" => vec!["delete", "--force", &id],
            _ => vec!["exec", &id, "true"],
        };
        let when = format!("inject=all:signal=KILL:when={n}");
        let st = std::process::Command::new("strace")
            .args(["-o", "/dev/null", "-e", &when])
            .arg(binary())
            .args(["--root", &root])
            .args(&args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        let out = w.estiba(&["delete", "--force", &id]);
        assert!(
            out.status.success(),
            "{cmd} killed at {n}: delete --force: {}",
            text(&out.stderr)
        );
        assert!(
            !w.root.join(&id).exists(),
            "{cmd} killed at {n}: state left"
        );
        assert!(
            cgroup_dirs(&id).is_empty(),
            "{cmd} killed at {n}: cgroups left: {:?}",
            cgroup_dirs(&id)
        );
        for p in std::fs::read_dir("/proc").unwrap().flatten() {
            let root_link = std::fs::read_link(p.path().join("root")).unwrap_or_default();
            let pid: i64 = p.file_name().to_string_lossy().parse().unwrap_or(0);
            assert!(
                !(root_link == rootfs && alive(pid)),
                "{cmd} killed at {n}: process {pid} still runs in the rootfs"
            );
        }
        points += 1;
        if st.success() {
            break;
        }
    }
    points
}

#[test]
fn a_killed_runtime_leaves_nothing_delete_cannot_remove() {
    if !can_run("a_killed_runtime_leaves_nothing_delete_cannot_remove") {
        return;
    }
    if !estiba_integration::have_strace("a_killed_runtime_leaves_nothing") {
        return;
    }
    let mut w = World::new("faults");
    w.args(&["sleep", "1000"]);
    w.write_config();
    let mut total = 0;
    for (cmd, step) in [
        ("create", 2),
        ("run", 5),
        ("start", 5),
        ("exec", 7),
        ("delete", 5),
    ] {
        let n = killed_at_every_point(&mut w, cmd, step);
        assert!(n > 3, "{cmd}: only {n} points");
        total += n;
    }
    println!("fault points: {total}");
}
