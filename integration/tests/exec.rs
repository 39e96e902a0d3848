//! exec, terminals and signals: what engines do to running containers.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use estiba_integration::skip;
use estiba_integration::{binary, can_run, ns_inode, text, World};
use serde_json::json;

fn sleeper(name: &str) -> World {
    let mut w = World::new(name);
    w.args(&["sleep", "1000"]);
    w.config["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 777, "hard": 888}]);
    w
}

#[test]
fn exec_flags_seen_from_inside() {
    if !can_run("exec_flags_seen_from_inside") {
        return;
    }
    let mut w = sleeper("execflags");
    let id = w.running("c");
    let out = w.estiba(&[
        "exec", "--env", "FOO=bar", "-e", "PATH=/bin", "--cwd", "/tmp", "--user", "1000:1001", "-g", "5", "-g", "7",
        "--cap", "CAP_SYS_TIME", "--no-new-privs", &id,
        "sh", "-c", "echo $FOO; pwd; id -u; id -g; id -G; grep -E '^(CapBnd|NoNewPrivs)' /proc/self/status; grep 'open files' /proc/self/limits",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let o = text(&out.stdout);
    let l: Vec<&str> = o.lines().collect();
    assert_eq!(&l[..4], &["bar", "/tmp", "1000", "1001"], "{o}");
    assert_eq!(
        l[4].split_whitespace().collect::<Vec<_>>(),
        vec!["1001", "5", "7"],
        "{o}"
    );
    let bnd = u64::from_str_radix(l[5].split_whitespace().nth(1).unwrap(), 16).unwrap();
    assert!(bnd & (1 << 25) != 0, "CAP_SYS_TIME not added: {o}");
    assert!(l[6].ends_with('1'), "{o}");
    assert!(
        o.contains("777                  888"),
        "container rlimits not applied: {o}"
    );
}

#[test]
fn exec_exit_codes_and_errors() {
    if !can_run("exec_exit_codes_and_errors") {
        return;
    }
    let mut w = sleeper("execcodes");
    let id = w.running("c");
    assert_eq!(
        w.estiba(&["exec", &id, "sh", "-c", "exit 42"])
            .status
            .code(),
        Some(42)
    );
    assert_eq!(
        w.estiba(&["exec", &id, "sh", "-c", "kill -TERM $$"])
            .status
            .code(),
        Some(143)
    );
    let out = w.estiba(&["exec", &id, "no-such-binary"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(
        text(&out.stderr).contains("executable file not found"),
        "{}",
        text(&out.stderr)
    );
    let out = w.estiba(&["exec", "-d", &id, "/etc/passwd"]);
    assert_eq!(
        out.status.code(),
        Some(255),
        "a detached exec failure is exec's error"
    );
    assert!(
        text(&out.stderr).contains("permission denied"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn exec_joins_the_same_namespaces() {
    if !can_run("exec_joins_the_same_namespaces") {
        return;
    }
    let mut w = sleeper("execns");
    let id = w.running("c");
    let init = w.state(&id)["pid"].as_i64().unwrap().to_string();
    let out = w.estiba(&["exec", &id, "sh", "-c", "for n in pid net ipc uts mnt cgroup; do readlink /proc/self/ns/$n; done; echo pid=$$; cat /proc/1/cmdline | tr '\\0' ' '"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let o = text(&out.stdout);
    for (i, n) in ["pid", "net", "ipc", "uts", "mnt", "cgroup"]
        .iter()
        .enumerate()
    {
        assert_eq!(o.lines().nth(i).unwrap(), ns_inode(&init, n), "{n}: {o}");
    }
    assert!(!o.contains("pid=1\n"), "{o}");
    assert!(
        o.contains("sleep 1000"),
        "pid 1 should be the container's init: {o}"
    );
    // The exec'd process was in the container's cgroup (its namespace root).
    let out = w.estiba(&["exec", &id, "cat", "/proc/self/cgroup"]);
    let cg = text(&out.stdout);
    assert!(
        cg.lines()
            .any(|l| l == "0::/" || (l.contains(":memory:") && l.ends_with(":/"))),
        "{cg}"
    );
}

#[test]
fn detach_pid_file_then_kill_and_ps() {
    if !can_run("detach_pid_file_then_kill_and_ps") {
        return;
    }
    let mut w = sleeper("execdetach");
    let id = w.running("c");
    let pid = w.exec_detached(&id, &["sleep", "500"]) as i32;
    let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert_eq!(cmdline, "sleep\u{0}500\u{0}");
    let ps: Vec<i32> =
        serde_json::from_slice(&w.estiba(&["ps", "--format", "json", &id]).stdout).unwrap();
    assert!(ps.contains(&pid), "{ps:?}");
    let table = text(&w.estiba(&["ps", &id]).stdout);
    assert!(
        table.starts_with("UID") && table.contains("sleep 500"),
        "{table}"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    for _ in 0..200 {
        let ps: Vec<i32> =
            serde_json::from_slice(&w.estiba(&["ps", "--format", "json", &id]).stdout).unwrap();
        if !ps.contains(&pid) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("exec'd process still listed after kill");
}

#[test]
fn exec_refused_when_paused_or_stopped() {
    if !can_run("exec_refused_when_paused_or_stopped") {
        return;
    }
    let mut w = sleeper("execpaused");
    let id = w.running("c");
    assert!(w.estiba(&["pause", &id]).status.success());
    assert_eq!(w.status(&id), "paused");
    let freezer = std::fs::read_to_string(format!("/sys/fs/cgroup/freezer/{id}/freezer.state"))
        .unwrap_or_default();
    if !freezer.is_empty() {
        assert_eq!(freezer.trim(), "FROZEN");
    }
    let out = w.estiba(&["exec", &id, "true"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(
        text(&out.stderr).contains("paused"),
        "{}",
        text(&out.stderr)
    );
    let out = w.estiba(&["exec", "-d", "--ignore-paused", &id, "true"]);
    if estiba_integration::cgroup_v2() {
        // The v2 freezer is the cgroup itself: refused, with a reason.
        assert_eq!(out.status.code(), Some(255));
        assert!(
            text(&out.stderr).contains("unfrozen"),
            "{}",
            text(&out.stderr)
        );
    } else {
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    assert!(w.estiba(&["resume", &id]).status.success());
    assert_eq!(w.status(&id), "running");
    assert_eq!(w.estiba(&["resume", &id]).status.code(), Some(1));
    assert!(w.estiba(&["kill", &id, "KILL"]).status.success());
    assert!(w.wait_status(&id, "stopped"));
    assert_eq!(w.estiba(&["pause", &id]).status.code(), Some(1));
    let out = w.estiba(&["exec", &id, "true"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(
        text(&out.stderr).contains("stopped"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn exec_with_process_json() {
    if !can_run("exec_with_process_json") {
        return;
    }
    let mut w = sleeper("execjson");
    let id = w.running("c");
    let pj = w.dir.join("process.json");
    std::fs::write(&pj, json!({"args": ["sh", "-c", "echo $X; pwd; id -u"], "env": ["X=from-json", "PATH=/bin"], "cwd": "/dev", "user": {"uid": 7, "gid": 7}}).to_string()).unwrap();
    let out = w.estiba(&["exec", "--process", pj.to_str().unwrap(), &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "from-json\n/dev\n7\n");
}

/// Receives the pty master sent over `listener` (runc's protocol).
fn recv_master(listener: &UnixListener) -> OwnedFd {
    let (_, mut fds) = estiba_integration::receive_fds(listener);
    assert_eq!(fds.len(), 1, "expected one fd over the console socket");
    fds.remove(0)
}

/// Reads from `f` until `want` shows up (or 5 s pass); carriage returns
/// the tty adds are dropped.
fn read_until(f: &mut std::fs::File, want: &str) -> String {
    use std::os::fd::AsFd;
    let mut out = String::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut chunk = [0u8; 1024];
    while Instant::now() < deadline && !out.contains(want) {
        let mut fds = [nix::poll::PollFd::new(
            f.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        if !matches!(nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(100u16)), Ok(n) if n > 0)
        {
            continue;
        }
        match f.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.push_str(&String::from_utf8_lossy(&chunk[..n]).replace('\r', "")),
        }
    }
    out
}

#[test]
fn exec_tty_with_console_socket() {
    if !can_run("exec_tty_with_console_socket") {
        return;
    }
    let mut w = sleeper("exectty");
    let id = w.running("c");
    let sock = w.dir.join("exec-console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let mut child = Command::new(binary())
        .arg("--root")
        .arg(&w.root)
        .args(["exec", "-t", "-d", "--console-socket"])
        .arg(&sock)
        .args([&id, "sh"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let master = recv_master(&listener);
    assert!(child.wait().unwrap().success());
    let mut f = std::fs::File::from(master);
    f.write_all(b"tty; echo the-answer-$((6*7)); exit\n")
        .unwrap();
    let out = read_until(&mut f, "the-answer-42\n");
    assert!(out.contains("/dev/pts/"), "{out}");
    assert!(out.contains("the-answer-42"), "{out}");
    // A terminal without a socket cannot be detached.
    let out = w.estiba(&["exec", "-t", "-d", &id, "true"]);
    assert_eq!(out.status.code(), Some(255));
}

/// Spawns `estiba ARGS` on a new pty (its controlling terminal) of `rows`x`cols`.
fn spawn_on_pty(
    w: &World,
    args: &[&str],
    rows: u16,
    cols: u16,
) -> (std::process::Child, std::fs::File) {
    let ws = nix::pty::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&ws), None).unwrap();
    for fd in [pty.master.as_raw_fd(), pty.slave.as_raw_fd()] {
        nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )
        .unwrap();
    }
    let slave = pty.slave;
    let mut cmd = Command::new(binary());
    cmd.arg("--root").arg(&w.root).args(args);
    cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave));
    // SAFETY: setsid and TIOCSCTTY are async-signal-safe syscalls, run in
    // the forked child before exec; fd 0 is the pty slave.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            libc::setsid();
            libc::ioctl(0, libc::TIOCSCTTY, 0);
            Ok(())
        });
    }
    let child = cmd.spawn().unwrap();
    (child, std::fs::File::from(pty.master))
}

#[test]
fn run_tty_without_socket_proxies_and_resizes() {
    if !can_run("run_tty_without_socket_proxies_and_resizes") {
        return;
    }
    let mut w = World::new("runtty");
    w.config["process"]["terminal"] = json!(true);
    w.script("stty size; echo ready; read line; echo got-$line; stty size");
    w.write_config();
    let id = w.id("c");
    let bundle = w.bundle.to_string_lossy().into_owned();
    let (mut child, mut master) = spawn_on_pty(&w, &["run", "--bundle", &bundle, &id], 24, 80);
    let first = read_until(&mut master, "ready\n");
    assert!(first.contains("24 80"), "{first}");
    let ws = libc::winsize {
        ws_row: 33,
        ws_col: 111,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a valid winsize; the kernel sends SIGWINCH
    // to the terminal's foreground process group (estiba).
    assert_eq!(
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) },
        0
    );
    std::thread::sleep(Duration::from_millis(300));
    master.write_all(b"hello\n").unwrap();
    let rest = read_until(&mut master, "33 111");
    assert!(rest.contains("got-hello"), "{rest}");
    assert!(
        rest.contains("33 111"),
        "window size change not forwarded: {rest}"
    );
    assert!(child.wait().unwrap().success());
    // exec -t in the foreground, the same way.
    let mut w2 = sleeper("exectty2");
    let id2 = w2.running("c");
    let (mut child, mut master) = spawn_on_pty(
        &w2,
        &["exec", "-t", &id2, "sh", "-c", "stty size; exit 5"],
        40,
        120,
    );
    let out = read_until(&mut master, "40 120");
    assert!(out.contains("40 120"), "{out}");
    assert_eq!(child.wait().unwrap().code(), Some(5));
}

#[test]
fn signals_are_forwarded_in_the_foreground() {
    if !can_run("signals_are_forwarded_in_the_foreground") {
        return;
    }
    let mut w = World::new("sigfwd");
    w.config["root"]["readonly"] = json!(false);
    w.script(
        "trap 'echo got-term; exit 3' TERM; touch /tmp/ready; while true; do sleep 0.05; done",
    );
    w.write_config();
    let id = w.id("c");
    let out_path = w.dir.join("fg.out");
    let mut child = Command::new(binary())
        .arg("--root")
        .arg(&w.root)
        .args(["run", "--bundle"])
        .arg(&w.bundle)
        .arg(&id)
        .stdout(std::fs::File::create(&out_path).unwrap())
        .spawn()
        .unwrap();
    let ready = w.rootfs().join("tmp/ready");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !ready.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(3));
    assert!(std::fs::read_to_string(&out_path)
        .unwrap()
        .contains("got-term"));
    assert!(!w.root.join(&id).exists(), "run must delete after exit");
}

#[test]
fn orphans_are_reaped_by_the_foreground_runtime() {
    if !can_run("orphans_are_reaped_by_the_foreground_runtime") {
        return;
    }
    let mut w = World::new("reap");
    // No pid namespace: orphans go to the nearest subreaper, estiba.
    w.without_namespace("pid");
    w.script("(sleep 0.1 &); (sleep 0.1 &); sleep 1; echo done");
    w.write_config();
    let id = w.id("c");
    let mut child = Command::new(binary())
        .arg("--root")
        .arg(&w.root)
        .args(["run", "--bundle"])
        .arg(&w.bundle)
        .arg(&id)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(600));
    let me = child.id().to_string();
    let mut zombies = vec![];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) {
            let rest = &stat[stat.rfind(')').unwrap() + 2..];
            let f: Vec<&str> = rest.split(' ').collect();
            if f[1] == me && f[0] == "Z" {
                zombies.push(e.file_name());
            }
        }
    }
    assert!(child.wait().unwrap().success());
    assert!(zombies.is_empty(), "zombies left under estiba: {zombies:?}");
}

#[test]
fn hundred_concurrent_execs() {
    if !can_run("hundred_concurrent_execs") {
        return;
    }
    let mut w = sleeper("execmany");
    let id = w.running("c");
    let init = w.state(&id)["pid"].as_i64().unwrap();
    let fds_before = std::fs::read_dir(format!("/proc/{init}/fd"))
        .unwrap()
        .count();
    let children: Vec<_> = (0..100)
        .map(|i| {
            let out = w.dir.join(format!("exec-{i}.out"));
            let child = Command::new(binary())
                .arg("--root")
                .arg(&w.root)
                .args([
                    "exec",
                    &id,
                    "sh",
                    "-c",
                    &format!("echo n{i}; exit {}", i % 50),
                ])
                .stdout(std::fs::File::create(&out).unwrap())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            (i, child, out)
        })
        .collect();
    for (i, mut child, out) in children {
        assert_eq!(child.wait().unwrap().code(), Some(i % 50), "exec {i}");
        assert_eq!(std::fs::read_to_string(out).unwrap(), format!("n{i}\n"));
    }
    let ps: Vec<i32> =
        serde_json::from_slice(&w.estiba(&["ps", "--format", "json", &id]).stdout).unwrap();
    assert_eq!(ps, vec![init as i32], "processes left in the container");
    assert_eq!(
        std::fs::read_dir(format!("/proc/{init}/fd"))
            .unwrap()
            .count(),
        fds_before,
        "init's fds changed"
    );
    let zombies = Command::new("sh")
        .args([
            "-c",
            "grep -l '^State:.Z' /proc/[0-9]*/status 2>/dev/null | wc -l",
        ])
        .output()
        .unwrap();
    let _ = zombies;
}

#[test]
fn cwd_through_a_leaked_fd_is_refused() {
    if !can_run("cwd_through_a_leaked_fd_is_refused") {
        return;
    }
    // CVE-2024-21626: a cwd of /proc/self/fd/N would land outside the
    // container if the runtime leaked a directory fd N.
    let mut w = sleeper("cvecwd");
    let id = w.running("c");
    for n in 3..16 {
        let cwd = format!("/proc/self/fd/{n}");
        let out = w.estiba(&[
            "exec",
            "--cwd",
            &cwd,
            &id,
            "sh",
            "-c",
            "pwd; ls / | head -50",
        ]);
        if out.status.success() {
            let o = text(&out.stdout);
            assert!(!o.starts_with("(unreachable)"), "cwd {cwd} escaped: {o}");
            assert!(!o.contains("estiba-it-"), "host visible through {cwd}: {o}");
        }
    }
    // The same through the container's own config.
    w.config["process"]["cwd"] = json!("/proc/self/fd/5");
    let out = w.run("cfg");
    assert!(!text(&out.stdout).starts_with("(unreachable)"));
}

/// CVE-2019-5736: while estiba's clone runs inside the container (before
/// exec), a container process opens /proc/<pid>/exe and keeps the fd; once
/// no estiba runs it writes the runtime binary through it. (Direct writes
/// fail with ETXTBSY while any estiba runs, so the attack holds fds.) A copy
/// of the binary is attacked, so a failure cannot damage the build.
/// Returns whether the copy changed, and what the attacker logged.
fn cve_2019_5736_attack(name: &str, caps: &[&str]) -> (bool, String) {
    let mut w = sleeper(name);
    let copy = w.dir.join("estiba-copy");
    std::fs::copy(binary(), &copy).unwrap();
    let before = std::fs::read(&copy).unwrap();
    w.bin = copy.clone();
    w.config["root"]["readonly"] = json!(false);
    w.config["process"]["capabilities"] =
        json!({"bounding": caps, "effective": caps, "permitted": caps});
    // `command`: a failed redirection of the special builtin exec (the
    // process exited since readlink) must not end the attacking shell.
    let attack = "n=3; me=$(readlink /proc/self/exe); while [ ! -e /tmp/stop ]; do \
        for p in /proc/[0-9]*; do t=$(readlink $p/exe 2>/dev/null) || continue; [ \"$t\" = \"$me\" ] && continue; [ $n -le 9 ] || continue; \
        case \"$t\" in *estiba*) command eval \"exec $n< $p/exe\" 2>/dev/null && { echo held $p $t >> /tmp/hits; n=$((n+1)); };; esac; done; done; \
        for fd in /proc/self/fd/*; do case $(readlink $fd) in *estiba*) echo pwned >> $fd 2>/dev/null && echo wrote $fd >> /tmp/hits;; esac; done; \
        touch /tmp/done; sleep 1000";
    w.config["process"]["args"] = json!(["sh", "-c", attack]);
    let id = w.running("c");
    for _ in 0..60 {
        let out = w.estiba(&["exec", &id, "true"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    // No estiba of this copy runs now: writes would no longer get ETXTBSY.
    std::fs::write(w.rootfs().join("tmp/stop"), "").unwrap();
    let done = w.rootfs().join("tmp/done");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(done.exists(), "attacker did not finish");
    let hits = std::fs::read_to_string(w.rootfs().join("tmp/hits")).unwrap_or_default();
    let changed = before != std::fs::read(&copy).unwrap();
    w.bin = binary();
    (changed, hits)
}

#[test]
fn runtime_binary_cannot_be_overwritten_from_the_container() {
    if !can_run("runtime_binary_cannot_be_overwritten_from_the_container") {
        return;
    }
    // Default capabilities: the kernel keeps the container from even
    // opening the runtime's exe (it is non-dumpable, with more capabilities).
    let (changed, hits) = cve_2019_5736_attack(
        "cveexe",
        &["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
    );
    assert!(
        !changed,
        "the runtime binary was modified from inside the container: {hits}"
    );
    assert!(
        !hits.contains("held"),
        "a container process opened the runtime's exe: {hits}"
    );
}

#[test]
fn privileged_container_cannot_overwrite_the_runtime_either() {
    if !can_run("privileged_container_cannot_overwrite_the_runtime_either") {
        return;
    }
    // With CAP_SYS_PTRACE the kernel lets the container reach estiba's exe:
    // what it reaches is a private read-only clone of the binary.
    let (changed, hits) = cve_2019_5736_attack(
        "cveptrace",
        &[
            "CAP_SYS_PTRACE",
            "CAP_SYS_ADMIN",
            "CAP_DAC_OVERRIDE",
            "CAP_KILL",
        ],
    );
    assert!(!changed, "the runtime binary was modified: {hits}");
    // What it could hold was not the file's own mount.
    assert!(!hits.contains("estiba-copy"), "{hits}");
}

/// The protection without a second start of the runtime: `exec` (like
/// create and run) moves its running image onto the read-only clone of
/// its binary in place. Seen from the host while an exec waits for its
/// process: its exe is on a read-only mount, no mapping names the
/// binary's own (writable) path, and it never executed itself again (a
/// re-exec leaves its mark in the environment).
#[test]
fn the_runtime_runs_from_its_read_only_clone_without_executing_again() {
    if !can_run("the_runtime_runs_from_its_read_only_clone_without_executing_again") {
        return;
    }
    let mut w = sleeper("inplace");
    let id = w.running("c");
    let bin = std::fs::canonicalize(&w.bin).unwrap();
    let mut child = Command::new(&bin)
        .arg("--root")
        .arg(&w.root)
        .args(["exec", &id, "sleep", "3"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Until the exec's process runs (its parent then only waits).
    let deadline = Instant::now() + Duration::from_secs(5);
    let proc_dir = std::path::PathBuf::from(format!("/proc/{pid}"));
    let sleeping = || {
        std::fs::read_to_string(proc_dir.join("task").join(pid.to_string()).join("children"))
            .is_ok_and(|c| !c.trim().is_empty())
    };
    while !sleeping() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let exe = std::fs::File::open(proc_dir.join("exe"));
    let maps = std::fs::read_to_string(proc_dir.join("maps")).unwrap_or_default();
    let environ = std::fs::read(proc_dir.join("environ")).unwrap_or_default();
    let _ = child.wait();
    let exe = exe.expect("open the exec's /proc/<pid>/exe");
    let ro = nix::sys::statvfs::fstatvfs(&exe)
        .unwrap()
        .flags()
        .contains(nix::sys::statvfs::FsFlags::ST_RDONLY);
    assert!(ro, "the running runtime's executable is writable");
    let named = bin.to_string_lossy().to_string();
    assert!(
        !maps.lines().any(|l| l.ends_with(&named)),
        "the binary's writable path is still mapped:\n{maps}"
    );
    assert!(
        !String::from_utf8_lossy(&environ).contains("_ESTIBA_PROTECTED_EXEC="),
        "the runtime executed itself again to be protected"
    );
}

#[test]
fn apparmor_profile_without_apparmor_is_an_error() {
    if !can_run("apparmor_profile_without_apparmor_is_an_error") {
        return;
    }
    let apparmor = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y");
    let mut w = sleeper("apparmor");
    let id = w.running("c");
    let out = w.estiba(&[
        "exec",
        "--apparmor",
        "unconfined",
        &id,
        "cat",
        "/proc/self/attr/current",
    ]);
    if apparmor {
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains("unconfined"),
            "{}",
            text(&out.stdout)
        );
    } else {
        skip!("applying a real AppArmor profile: AppArmor is not enabled on this kernel");
        assert_eq!(out.status.code(), Some(255));
        assert!(
            text(&out.stderr).contains("AppArmor is not enabled"),
            "{}",
            text(&out.stderr)
        );
        w.config["process"]["apparmorProfile"] = json!("docker-default");
        let (cid, out) = w.create("d", &[]);
        assert_eq!(out.status.code(), Some(1));
        assert!(!w.root.join(cid).exists());
    }
}

/// `linux.personality` is the container's, so every process in it has it
/// (runc sets it for exec too): with LINUX32, an exec'd `uname -m` says a
/// 32-bit machine, as the init does.
#[test]
fn exec_gets_the_containers_personality() {
    if !can_run("exec_gets_the_containers_personality") {
        return;
    }
    let mut w = sleeper("execpers");
    w.config["linux"]["personality"] = json!({"domain": "LINUX32"});
    let id = w.running("c");
    let init = w.estiba(&["exec", &id, "cat", "/proc/1/personality"]);
    assert!(init.status.success(), "{}", text(&init.stderr));
    assert_eq!(text(&init.stdout).trim(), "00000008", "the init's");
    let out = w.estiba(&[
        "exec",
        &id,
        "sh",
        "-c",
        "cat /proc/self/personality; uname -m",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let o = text(&out.stdout);
    let l: Vec<&str> = o.lines().collect();
    assert_eq!(l[0], "00000008", "exec'd process: {o}");
    assert_ne!(l[1], "x86_64", "exec'd uname -m: {o}");
}

/// An exec'd process leads a session of its own, terminal or not, as
/// runc's (its nsexec calls setsid for every process it starts): left in
/// the caller's session, whose leader is outside the container's pid
/// namespace, criu cannot checkpoint the container while it runs ("A
/// session leader ... is outside of its pid namespace").
#[test]
fn an_exec_d_process_leads_its_own_session() {
    if !can_run("an_exec_d_process_leads_its_own_session") {
        return;
    }
    let mut w = sleeper("execsid");
    w.write_config();
    let id = w.id("c");
    let bundle = w.bundle.to_string_lossy().into_owned();
    // pid and session of the exec'd shell, as its own /proc/self/stat says.
    let probe = ["sh", "-c", "busybox cut -d' ' -f1,6 /proc/$$/stat"];
    let check = |o: Output, who: &str| {
        assert!(o.status.success(), "{who}: {}", text(&o.stderr));
        let out = text(&o.stdout);
        let f: Vec<&str> = out.split_whitespace().collect();
        assert_eq!(f.len(), 2, "{who}: {out}");
        assert_eq!(
            f[0], f[1],
            "{who}: the exec'd process is not a session leader"
        );
    };
    assert!(w
        .estiba(&["run", "-d", "--bundle", &bundle, &id])
        .status
        .success());
    let mut args = vec!["exec", id.as_str()];
    args.extend(probe);
    check(w.estiba(&args), "estiba");
    match w.runc(&["run", "-d", "--bundle", &bundle, &id]) {
        Some(o) if o.status.success() => check(w.runc(&args).unwrap(), "runc"),
        Some(o) => panic!("runc run -d: {}", text(&o.stderr)),
        None => skip!("an_exec_d_process_leads_its_own_session: no runc to compare"),
    }
}
