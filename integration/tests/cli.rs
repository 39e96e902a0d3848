//! runc's command line (issue 13): every flag runc lists is accepted with
//! runc's spelling and meaning, values parse as runc parses them, and the
//! newer flags engines pass (`--pidfd-socket`, `--no-subreaper`, exec's
//! per-controller `--cgroup`, `-u NAME`) do what runc's do.

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::process::Command;
use std::time::Duration;

use estiba_integration::*;
use serde_json::json;

/// runc 1.5's flags per command (from its source; `=` marks a flag that
/// takes a value). Where runc is installed, the flags its own `--help`
/// lists are checked too.
const RUNC_FLAGS: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "debug",
            "log=",
            "log-format=",
            "root=",
            "systemd-cgroup",
            "rootless=",
            "criu=",
        ],
    ),
    (
        "create",
        &[
            "bundle=",
            "console-socket=",
            "pidfd-socket=",
            "pid-file=",
            "no-pivot",
            "no-new-keyring",
            "preserve-fds=",
        ],
    ),
    (
        "run",
        &[
            "bundle=",
            "console-socket=",
            "pidfd-socket=",
            "detach",
            "keep",
            "pid-file=",
            "no-subreaper",
            "no-pivot",
            "no-new-keyring",
            "preserve-fds=",
        ],
    ),
    (
        "exec",
        &[
            "console-socket=",
            "pidfd-socket=",
            "cwd=",
            "env=",
            "tty",
            "user=",
            "additional-gids=",
            "process=",
            "detach",
            "pid-file=",
            "process-label=",
            "apparmor=",
            "no-new-privs",
            "cap=",
            "preserve-fds=",
            "cgroup=",
            "ignore-paused",
        ],
    ),
    (
        "update",
        &[
            "resources=",
            "blkio-weight=",
            "cpu-period=",
            "cpu-quota=",
            "cpu-burst=",
            "cpu-share=",
            "cpu-rt-period=",
            "cpu-rt-runtime=",
            "cpuset-cpus=",
            "cpuset-mems=",
            "kernel-memory=",
            "kernel-memory-tcp=",
            "memory=",
            "cpu-idle=",
            "memory-reservation=",
            "memory-swap=",
            "pids-limit=",
            "l3-cache-schema=",
            "mem-bw-schema=",
        ],
    ),
    ("kill", &["all"]),
    ("delete", &["force"]),
    ("list", &["format=", "quiet"]),
    ("ps", &["format="]),
    ("events", &["interval=", "stats"]),
    ("spec", &["bundle=", "rootless"]),
    ("state", &[]),
    ("start", &[]),
    ("pause", &[]),
    ("resume", &[]),
    ("features", &[]),
];

/// A value each flag parses (most take any number).
fn value_for(flag: &str) -> &'static str {
    match flag {
        "log" => "/dev/null",
        "log-format" | "format" => "json",
        "rootless" => "true",
        "interval" => "1s",
        "criu" => "criu",
        "bundle" | "process" | "resources" | "console-socket" | "pidfd-socket" => "/nonexistent/x",
        "root" => "/tmp/estiba-cli-flags-root",
        "cap" => "CAP_KILL",
        "env" => "A=1",
        "cwd" => "/",
        "cgroup" => "x",
        "user" => "1",
        "pid-file" => "/nonexistent/pid",
        "cpuset-cpus" | "cpuset-mems" => "0",
        _ => "1",
    }
}

/// The flags `runc CMD --help` lists (with `=` for a value), if runc is
/// installed.
fn installed_runc_flags(cmd: &str) -> Vec<String> {
    let Some(runc) = runc_binary() else {
        return vec![];
    };
    let mut c = Command::new(runc);
    if !cmd.is_empty() {
        c.arg(cmd);
    }
    let out = c.arg("--help").output().unwrap();
    let help = text(&out.stdout);
    let mut flags = vec![];
    for line in help.lines() {
        let line = line.trim_start();
        let Some(rest) = line.strip_prefix("--") else {
            continue;
        };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        if name == "help" || name == "version" {
            continue;
        }
        let takes_value = rest[name.len()..].starts_with(" value");
        flags.push(if takes_value {
            format!("{name}=")
        } else {
            name
        });
    }
    flags
}

/// Every flag of runc's, given to estiba on a container that does not
/// exist: the command fails for that reason, never as a usage error.
#[test]
fn every_runc_flag_is_accepted() {
    let mut checked = 0;
    for (cmd, flags) in RUNC_FLAGS {
        let mut all: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
        for f in installed_runc_flags(cmd) {
            if !all.contains(&f) {
                all.push(f);
            }
        }
        for flag in &all {
            let (name, takes_value) = match flag.strip_suffix('=') {
                Some(n) => (n, true),
                None => (flag.as_str(), false),
            };
            let mut args: Vec<String> = vec![];
            if cmd.is_empty() {
                args.push(format!("--{name}"));
                if takes_value {
                    args.push(value_for(name).into());
                }
                args.extend(["state".into(), "estiba-no-such-container".into()]);
            } else {
                args.push(cmd.to_string());
                args.push(format!("--{name}"));
                if takes_value {
                    args.push(value_for(name).into());
                }
                if !matches!(*cmd, "list" | "spec" | "features") {
                    args.push("estiba-no-such-container".into());
                }
                if *cmd == "exec" {
                    args.push("true".into());
                }
            }
            let out = Command::new(binary())
                .args(&args)
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap();
            let err = text(&out.stderr);
            for usage in [
                "unexpected argument",
                "invalid value",
                "Usage:",
                "unrecognized",
            ] {
                assert!(!err.contains(usage), "estiba {args:?}: {err}");
            }
            checked += 1;
        }
    }
    let _ = std::fs::remove_dir_all("/tmp/estiba-cli-flags-root");
    assert!(checked > 60, "only {checked} flags checked");
}

/// (controller, file, value) of a v1 cgroup.
type CgroupFile = (&'static str, &'static str, &'static str);

/// `update` takes runc's flags with runc's values (`--cpu-share`, sizes
/// with units, -1 for unlimited), ignores the obsolete kernel memory
/// flags with a warning, and refuses Intel RDT schemas where there is no
/// RDT, in runc's words. The cgroup files estiba writes are compared with
/// runc's for the same flags where runc is installed.
#[test]
fn update_takes_runcs_flags_and_values() {
    if !can_run("update_takes_runcs_flags_and_values") {
        return;
    }
    if cgroup_v2() {
        skip!("update_takes_runcs_flags_and_values: written for cgroup v1 files (the v2 guest runs resources.rs)");
        return;
    }
    let mut w = World::new("updflags");
    w.args(&["sleep", "1000"]);
    let id = w.running("c");
    let bundle = w.bundle.to_string_lossy().into_owned();
    let with_runc = w
        .runc(&["run", "-d", "--bundle", &bundle, &id])
        .is_some_and(|o| o.status.success());
    let ours = w.state(&id)["pid"].as_i64().unwrap();
    let theirs = match with_runc {
        true => {
            let out = w.runc(&["state", &id]).unwrap();
            serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["pid"]
                .as_i64()
                .unwrap()
        }
        false => 0,
    };
    // A file of the v1 cgroup `pid` is in, for `controller`.
    let file = |pid: i64, controller: &str, name: &str| {
        let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        let path = cg
            .lines()
            .find_map(|l| {
                let mut f = l.splitn(3, ':');
                let (_, cs, p) = (f.next()?, f.next()?, f.next()?);
                cs.split(',')
                    .any(|c| c == controller)
                    .then(|| p.to_string())
            })
            .unwrap_or_default();
        std::fs::read_to_string(format!("/sys/fs/cgroup/{controller}{path}/{name}"))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|e| format!("{name}: {e}"))
    };
    let cases: &[(&[&str], &[CgroupFile])] = &[
        (&["--cpu-share", "512"], &[("cpu", "cpu.shares", "512")]),
        (
            &["--memory", "64m", "--memory-swap", "128m"],
            &[
                ("memory", "memory.limit_in_bytes", "67108864"),
                ("memory", "memory.memsw.limit_in_bytes", "134217728"),
            ],
        ),
        (
            &["--memory-reservation", "32M"],
            &[("memory", "memory.soft_limit_in_bytes", "33554432")],
        ),
        (
            &["--memory", "-1", "--memory-swap", "-1"],
            &[("memory", "memory.limit_in_bytes", "9223372036854771712")],
        ),
        (&["--pids-limit", "30"], &[("pids", "pids.max", "30")]),
        (&["--pids-limit", "-1"], &[("pids", "pids.max", "max")]),
        (
            &["--cpu-period", "100000", "--cpu-quota", "50000"],
            &[
                ("cpu", "cpu.cfs_period_us", "100000"),
                ("cpu", "cpu.cfs_quota_us", "50000"),
            ],
        ),
        (&["--cpu-quota", "-1"], &[("cpu", "cpu.cfs_quota_us", "-1")]),
    ];
    for (flags, files) in cases {
        let mut args = vec!["update"];
        args.extend_from_slice(flags);
        args.push(&id);
        let out = w.estiba(&args);
        assert!(
            out.status.success(),
            "estiba {args:?}: {}",
            text(&out.stderr)
        );
        for (controller, name, want) in *files {
            if file(ours, controller, name).ends_with("No such file or directory (os error 2)") {
                skip!("update_takes_runcs_flags_and_values: no {name} here");
                continue;
            }
            assert_eq!(file(ours, controller, name), *want, "{args:?}: {name}");
        }
        if with_runc {
            let out = w.runc(&args).unwrap();
            assert!(out.status.success(), "runc {args:?}: {}", text(&out.stderr));
            for (controller, name, _) in *files {
                assert_eq!(
                    file(ours, controller, name),
                    file(theirs, controller, name),
                    "{args:?}: {name} differs from runc's"
                );
            }
        }
    }
    let out = w.estiba(&["update", "--kernel-memory", "10m", &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("Kernel memory settings are ignored"),
        "{}",
        text(&out.stderr)
    );
    let out = w.estiba(&["update", "--l3-cache-schema", "L3:0=f", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("l3 cache schema is not enabled"),
        "{}",
        text(&out.stderr)
    );
    let out = w.estiba(&["update", "--memory", "12x", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("invalid value for memory"),
        "{}",
        text(&out.stderr)
    );
}

/// `exec -u` takes names from the container's /etc/passwd and /etc/group;
/// a numeric user keeps the process's gid, as runc's does.
#[test]
fn exec_user_takes_names_and_numbers() {
    if !can_run("exec_user_takes_names_and_numbers") {
        return;
    }
    let mut w = World::new("execuser");
    std::fs::write(
        w.rootfs().join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nalice:x:1500:1600:a:/home/alice:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        w.rootfs().join("etc/group"),
        "root:x:0:\nstaff:x:50:\nalice:x:1600:\n",
    )
    .unwrap();
    w.config["process"]["user"] = json!({"uid": 0, "gid": 7});
    w.args(&["sleep", "1000"]);
    let id = w.running("c");
    for (user, want) in [
        ("alice", "1500 1600 /home/alice"),
        ("alice:staff", "1500 50 /home/alice"),
        ("alice:60", "1500 60 /home/alice"),
        ("1500", "1500 7 /home/alice"),
        ("2000:staff", "2000 50 /"),
    ] {
        let out = w.estiba(&[
            "exec",
            "-u",
            user,
            &id,
            "sh",
            "-c",
            "echo $(id -u) $(id -g) $HOME",
        ]);
        assert!(out.status.success(), "-u {user}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout).trim(), want, "-u {user}");
    }
    for user in ["bob", "alice:nogroup", ":", "alice:"] {
        let out = w.estiba(&["exec", "-u", user, &id, "true"]);
        assert_eq!(
            out.status.code(),
            Some(255),
            "-u {user}: {}",
            text(&out.stderr)
        );
    }
}

/// The pid in a pidfd's fdinfo.
fn pidfd_pid(fd: &std::os::fd::OwnedFd) -> i64 {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("Pid:"))
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or(-1)
}

/// `--pidfd-socket` (runc 1.2+): create and run send a pidfd of the init
/// ("standard"), exec one of the new process ("setns"), before they
/// return.
#[test]
fn pidfd_socket_gets_the_process() {
    if !can_run("pidfd_socket_gets_the_process") {
        return;
    }
    let mut w = World::new("pidfd");
    w.args(&["sleep", "1000"]);
    let sock = w.dir.join("pidfd.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let sock_s = sock.to_string_lossy().into_owned();
    let (id, out) = w.create("c", &["--pidfd-socket", &sock_s]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (msg, fds) = estiba_oci_conformance::fdpass::receive_now(&listener)
        .expect("no pidfd was sent before create returned");
    assert_eq!(msg, b"standard");
    assert_eq!(pidfd_pid(&fds[0]), w.state(&id)["pid"].as_i64().unwrap());
    assert!(w.estiba(&["start", &id]).status.success());
    let out = w.estiba(&["exec", "-d", "--pidfd-socket", &sock_s, &id, "sleep", "100"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (msg, fds) = estiba_oci_conformance::fdpass::receive_now(&listener)
        .expect("no pidfd was sent before exec -d returned");
    assert_eq!(msg, b"setns");
    let pid = pidfd_pid(&fds[0]);
    assert!(
        w.wait_pids(&id, 2).contains(&pid),
        "the pidfd's pid {pid} is not the container's"
    );
    // A socket nobody listens on fails create before anything exists.
    drop(listener);
    let (bad, out) = w.create("d", &["--pidfd-socket", &sock_s]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("pidfd socket"),
        "{}",
        text(&out.stderr)
    );
    assert!(!w.root.join(bad).exists());
}

/// `exec --cgroup`: one plain path for every hierarchy, or
/// CONTROLLER[,CONTROLLER]:PATH per v1 controller; the sub-cgroup must
/// exist; runc's refusals for a missing prefix and a repeated controller.
#[test]
fn exec_cgroup_takes_runcs_forms() {
    if !can_run("exec_cgroup_takes_runcs_forms") {
        return;
    }
    if cgroup_v2() {
        skip!("exec_cgroup_takes_runcs_forms: controller paths are cgroup v1");
        return;
    }
    let mut w = World::new("execcg");
    w.args(&["sleep", "1000"]);
    let id = w.running("c");
    let dir =
        |c: &str, sub: &str| std::path::PathBuf::from(format!("/sys/fs/cgroup/{c}/{id}/{sub}"));
    for (c, sub) in [("cpu", "a"), ("memory", "b"), ("pids", "b")] {
        std::fs::create_dir_all(dir(c, sub)).unwrap();
    }
    let out = w.estiba(&[
        "exec",
        "--cgroup",
        "cpu:a",
        "--cgroup",
        "memory,pids:b",
        &id,
        "cat",
        "/proc/self/cgroup",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let o = text(&out.stdout);
    let line = |c: &str| {
        o.lines()
            .find(|l| {
                l.split(':')
                    .nth(1)
                    .is_some_and(|cs| cs.split(',').any(|x| x == c))
            })
            .unwrap_or("")
            .to_string()
    };
    assert!(line("cpu").ends_with("/a"), "{o}");
    assert!(line("memory").ends_with("/b"), "{o}");
    assert!(line("pids").ends_with("/b"), "{o}");
    assert!(
        !line("freezer").ends_with("/a") && !line("freezer").ends_with("/b"),
        "{o}"
    );
    for (args, want) in [
        (
            vec!["--cgroup", "a", "--cgroup", "b"],
            "missing <controller>: prefix",
        ),
        (
            vec!["--cgroup", "cpu:a", "--cgroup", "cpu:b"],
            "specified multiple times",
        ),
        (vec!["--cgroup", "nosuch:a"], "unknown controller"),
        (vec!["--cgroup", "cpu:missing"], "no such sub-cgroup"),
        (vec!["--cgroup", ":a"], "empty <controller> prefix"),
    ] {
        let mut a: Vec<&str> = vec!["exec"];
        a.extend(args.iter());
        a.extend([id.as_str(), "true"]);
        let out = w.estiba(&a);
        assert_eq!(out.status.code(), Some(255), "{a:?}");
        assert!(
            text(&out.stderr).contains(want),
            "{a:?}: {}",
            text(&out.stderr)
        );
    }
    assert!(w.estiba(&["kill", &id, "KILL"]).status.success());
    assert!(w.wait_status(&id, "stopped"));
    for (c, sub) in [("cpu", "a"), ("memory", "b"), ("pids", "b")] {
        let _ = std::fs::remove_dir(dir(c, sub));
    }
}

/// `run` is a child subreaper, so the container's orphans are its to reap
/// (without a pid namespace they would go to the host's init); with
/// `--no-subreaper` it is not (runc's flag).
#[test]
fn run_no_subreaper_leaves_orphans_alone() {
    if !can_run("run_no_subreaper_leaves_orphans_alone") {
        return;
    }
    let mut w = World::new("subreaper");
    w.without_namespace("pid");
    w.config["root"]["readonly"] = json!(false);
    // The orphan's parent, and the runtime's pid (the shell's parent).
    w.script("(sleep 3 & echo $! > /tmp/o); sleep 0.3; grep PPid /proc/$(cat /tmp/o)/status | cut -f2; echo $PPID; kill $(cat /tmp/o)");
    let out = w.run_ok("a");
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l.len(), 2, "{out}");
    assert_eq!(
        l[0], l[1],
        "run: the orphan's parent is not the runtime: {out}"
    );
    w.write_config();
    let id = w.id("b");
    let bundle = w.bundle.to_string_lossy().into_owned();
    let out = w.estiba(&["run", "--no-subreaper", "--bundle", &bundle, &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let o = text(&out.stdout);
    let l: Vec<&str> = o.lines().collect();
    assert_eq!(l.len(), 2, "{o}");
    assert_ne!(l[0], l[1], "run --no-subreaper still took the orphan: {o}");
    std::thread::sleep(Duration::from_millis(10));
}

/// A reader that went away (`estiba list | head -0`) ends the command with
/// status 0, not death by SIGPIPE: the binary has its own C `main`, so it
/// must ignore SIGPIPE itself, as std's start-up did.
#[test]
fn list_to_a_closed_pipe_exits_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let w = World::new("sigpipe");
    let (read, write) = nix::unistd::pipe().expect("pipe");
    drop(read);
    let out = Command::new(&w.bin)
        .arg("--root")
        .arg(&w.root)
        .args(["list"])
        .stdout(write)
        .output()
        .expect("run estiba");
    assert_eq!(
        (out.status.code(), out.status.signal()),
        (Some(0), None),
        "list to a closed pipe: {:?} {}",
        out.status,
        text(&out.stderr)
    );
}

/// Started with stderr closed, estiba's log file must not become its
/// stderr (the next free descriptor): descriptors 0-2 are opened on
/// /dev/null first, as std's start-up does. Otherwise the plain error line
/// lands in the JSON log that containerd reads.
#[test]
fn a_closed_stderr_does_not_become_the_log() {
    let w = World::new("closedfds");
    std::fs::create_dir_all(&w.dir).expect("world dir");
    let log = w.dir.join("log.json");
    let status = Command::new("sh")
        .args([
            "-c",
            r#"exec "$0" --root "$1" --log "$2" --log-format json state nope 2>&-"#,
        ])
        .arg(&w.bin)
        .arg(&w.root)
        .arg(&log)
        .status()
        .expect("run estiba");
    assert_eq!(status.code(), Some(1), "state of a missing container");
    let text = std::fs::read_to_string(&log).expect("the log");
    assert!(text.contains("container does not exist"), "{text}");
    for line in text.lines() {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "not a JSON log line: {line:?} in {text:?}"
        );
    }
}

/// The global flags go before the command, as in runc and crun, which both
/// refuse `state --root DIR ID` ("flag provided but not defined"): a
/// global flag after the command is a usage error, not a root silently
/// taken. Where runc is installed its answer is checked too.
#[test]
fn global_flags_go_before_the_command() {
    let root = std::env::temp_dir().join(format!("estiba-cli-globals-{}", std::process::id()));
    let root = root.to_str().unwrap();
    let after = ["state", "--root", root, "estiba-no-such-container"];
    let before = ["--root", root, "state", "estiba-no-such-container"];
    let run = |bin: &std::path::Path, args: &[&str]| {
        Command::new(bin)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    if let Some(runc) = runc_binary() {
        let out = run(&runc, &after);
        assert!(!out.status.success() && text(&out.stderr).contains("-root"));
    }
    let out = run(&binary(), &after);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("--root"), "{err}");
    // Before the command the same flag is taken: the error is the
    // container's, not the command line's.
    let out = run(&binary(), &before);
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("does not exist"), "{err}");
    let _ = std::fs::remove_dir_all(root);
}
