//! What crosses the runtime's edges: pid file, console socket (SCM_RIGHTS),
//! preserved fds and LISTEN_FDS, and the JSON log engines read.

use std::io::Read;
use std::os::unix::net::UnixListener;
use std::process::Command;

use estiba_integration::{binary, can_run, text, World};
use serde_json::json;

#[test]
fn console_socket_receives_pty_master() {
    if !can_run("console_socket_receives_pty_master") {
        return;
    }
    let mut w = World::new("console");
    w.config["process"]["terminal"] = json!(true);
    w.config["process"]["consoleSize"] = json!({"height": 40, "width": 100});
    w.script("tty; stty size; readlink /proc/self/fd/0; echo done");
    w.write_config();
    let sock_path = w.dir.join("console.sock");
    let listener = UnixListener::bind(&sock_path).unwrap();
    let id = w.id("c");
    let mut create = Command::new(binary())
        .arg("--root")
        .arg(&w.root)
        .args(["create", "--bundle"])
        .arg(&w.bundle)
        .arg("--console-socket")
        .arg(&sock_path)
        .arg(&id)
        .stderr(std::fs::File::create(w.dir.join("create.err")).unwrap())
        .spawn()
        .unwrap();
    let (_, mut fds) = estiba_integration::receive_fds(&listener);
    assert_eq!(fds.len(), 1, "no fd received over the console socket");
    let master = fds.remove(0);
    let status = create.wait().unwrap();
    let err = std::fs::read_to_string(w.dir.join("create.err")).unwrap_or_default();
    assert!(status.success(), "create: {err}");
    assert!(w.estiba(&["start", &id]).status.success());
    let mut out = Vec::new();
    let mut f = std::fs::File::from(master);
    let mut chunk = [0u8; 1024];
    // Read until the program is done (EIO once the slave side closes).
    while let Ok(n) = f.read(&mut chunk) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&chunk[..n]);
        if String::from_utf8_lossy(&out).contains("done") {
            break;
        }
    }
    let out = String::from_utf8_lossy(&out).replace('\r', "");
    assert!(out.contains("/dev/pts/"), "{out}");
    assert!(out.contains("40 100"), "{out}");
    assert!(out.contains("done"), "{out}");
}

#[test]
fn terminal_and_console_socket_must_agree() {
    if !can_run("terminal_and_console_socket_must_agree") {
        return;
    }
    let mut w = World::new("termflags");
    w.config["process"]["terminal"] = json!(true);
    let (id, out) = w.create("a", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("console-socket"),
        "{}",
        text(&out.stderr)
    );
    assert!(!w.root.join(&id).exists());
    w.config["process"]["terminal"] = json!(false);
    let (id, out) = w.create("b", &["--console-socket", "/nonexistent.sock"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!w.root.join(&id).exists());
}

#[test]
fn preserve_fds_and_listen_fds() {
    if !can_run("preserve_fds_and_listen_fds") {
        return;
    }
    let mut w = World::new("fds");
    let f = w.dir.join("passed");
    std::fs::write(&f, "through-fd-3").unwrap();
    w.script("cat <&3; echo; ls /proc/self/fd | tr '\\n' ' '; echo; env | grep LISTEN_ | sort");
    w.write_config();
    let id = w.id("c");
    let cmd = format!(
        "exec 3<{} 4</dev/null; LISTEN_FDS=1 exec {} --root {} run --preserve-fds 1 --bundle {} {}",
        f.display(),
        binary().display(),
        w.root.display(),
        w.bundle.display(),
        id
    );
    let out = Command::new("/bin/sh").args(["-c", &cmd]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "through-fd-3", "{stdout}");
    // 0-2, 3 and 4 (LISTEN_FDS=1 plus --preserve-fds 1), and ls's own dir fd.
    let fds: Vec<u32> = lines[1]
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    assert!(fds.contains(&3) && fds.contains(&4), "{stdout}");
    assert!(
        fds.iter().filter(|fd| **fd > 4).count() <= 1,
        "runtime fds leaked: {stdout}"
    );
    assert_eq!(&lines[2..], &["LISTEN_FDS=1", "LISTEN_PID=1"], "{stdout}");
}

/// `--preserve-fds` past the descriptors the caller really passed is
/// refused, by create and by exec. The attack it
/// stops: with `--log`, the runtime's own log file took the number the
/// caller left free, and the container's process wrote into that host file
/// through it (it did, before the check counted only the caller's), as
/// it did with no flag at all under a stale LISTEN_FDS.
#[test]
fn preserve_fds_past_what_the_caller_passed_is_refused() {
    if !can_run("preserve_fds_past_what_the_caller_passed_is_refused") {
        return;
    }
    let refused = |out: &std::process::Output, code: i32, want: &str| {
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{err}");
        assert!(err.contains(want), "{err}");
    };
    let mut w = World::new("fdgap");
    let log = w.dir.join("runtime.log");
    let log_arg = log.to_string_lossy().into_owned();
    let mark = "written-from-the-container";
    let write_fd3 = format!("echo {mark} >&3");
    w.script(&format!("{write_fd3}; sleep 1000"));
    w.write_config();
    let id = w.id("c");
    // No fd 3 in the caller (Command passes 0-2 only).
    let bundle = w.bundle.to_string_lossy().into_owned();
    let out = w.estiba(&[
        "--log",
        &log_arg,
        "run",
        "--detach",
        "--preserve-fds",
        "1",
        "--bundle",
        &bundle,
        &id,
    ]);
    refused(&out, 1, "--preserve-fds: fd 3 is not open");
    assert!(!w.root.join(&id).exists(), "state left");
    let (id, out) = w.create("e", &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(w.estiba(&["start", &id]).status.success());
    let out = w.estiba(&[
        "--log",
        &log_arg,
        "exec",
        "--preserve-fds",
        "1",
        &id,
        "sh",
        "-c",
        &write_fd3,
    ]);
    refused(&out, 255, "--preserve-fds: fd 3 is not open");
    // A stale LISTEN_FDS in the caller's environment names fds just the same.
    let id = w.id("l");
    let root = w.root.to_string_lossy().into_owned();
    let out = Command::new(binary())
        .env("LISTEN_FDS", "1")
        .args(["--root", &root, "--log", &log_arg, "run", "--detach"])
        .args(["--bundle", &bundle, &id])
        .output()
        .unwrap();
    refused(&out, 1, "LISTEN_FDS=1: fd 3 is not open");
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !logged.contains(mark),
        "the container wrote the runtime's log: {logged}"
    );
}

#[test]
fn no_runtime_fd_reaches_the_container() {
    if !can_run("no_runtime_fd_reaches_the_container") {
        return;
    }
    let mut w = World::new("nofd");
    w.args(&["ls", "-l", "/proc/self/fd"]);
    let out = w.run_ok("c");
    // ls shows 0, 1, 2 and the fd of the directory it is reading.
    let fds: Vec<&str> = out.lines().filter(|l| l.contains("->")).collect();
    assert!(fds.len() <= 4, "{out}");
    // Above stdio only ls's own directory fd may appear.
    for l in fds.iter().filter(|l| {
        let fd: u32 = l
            .split(" -> ")
            .next()
            .and_then(|x| x.split_whitespace().last())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        fd > 2
    }) {
        assert!(l.contains("/proc/"), "leaked: {l}");
    }
}

#[test]
fn json_log_has_level_msg_time() {
    if !can_run("json_log_has_level_msg_time") {
        return;
    }
    let w = World::new("log");
    let log = w.dir.join("log.json");
    let out = Command::new(binary())
        .arg("--root")
        .arg(&w.root)
        .arg("--log")
        .arg(&log)
        .args(["--log-format", "json", "start", "no-such-container"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr).lines().count(),
        1,
        "{}",
        text(&out.stderr)
    );
    let line = std::fs::read_to_string(&log).unwrap();
    let v: serde_json::Value = serde_json::from_str(line.lines().last().unwrap()).unwrap();
    assert_eq!(v["level"], "error");
    assert!(v["msg"].as_str().unwrap().contains("does not exist"), "{v}");
    assert!(v["time"].as_str().unwrap().ends_with('Z'), "{v}");
}
