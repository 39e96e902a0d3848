//! estiba-core as a library (issue 15), through the example programs a
//! user would write (runtime-core/examples): each runs as its own process,
//! as root, and says what it saw; these tests check what it said.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use estiba_integration::*;

/// A built example program of estiba-core (`cargo test` builds them).
fn example(name: &str) -> PathBuf {
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    for profile in ["debug", "release"] {
        let p = target.join(profile).join("examples").join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("example {name} not built: cargo build -p estiba-core --examples");
}

/// Runs an example in `dir`, killed after `limit`; whether it succeeded,
/// its stdout and its stderr. Both go to files: a pipe nobody reads until
/// the end would fill and stall the program.
fn run_example(
    name: &str,
    dir: &Path,
    args: &[&Path],
    extra: &[&str],
    limit: Duration,
) -> (bool, String, String) {
    let (out_path, err_path) = (
        dir.join(format!("{name}.out")),
        dir.join(format!("{name}.err")),
    );
    let mut child = Command::new(example(name))
        .args(args)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            // Where each of its processes waits, for the report.
            let ps = Command::new("ps")
                .args(["-eo", "pid,ppid,stat,wchan:32,args", "--forest"])
                .output()
                .map(|o| text(&o.stdout))
                .unwrap_or_default();
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name} still ran after {limit:?} (a hang):\n{ps}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    (status.success(), read(&out_path), read(&err_path))
}

/// The lifecycle without files but the rootfs: a config in memory,
/// captured output through pipes for the init and an exec, waits with a
/// timeout and the exit statuses, typed stats, pause and resume, delete.
#[test]
fn the_lifecycle_example_sees_what_it_should() {
    if !can_run("the_lifecycle_example_sees_what_it_should") {
        return;
    }
    let w = World::new("liblife");
    let state = w.dir.join("lib-state");
    let (ok, out, err) = run_example(
        "lifecycle",
        &w.dir,
        &[&w.rootfs(), &state],
        &[],
        Duration::from_secs(60),
    );
    assert!(ok, "{out}\n{err}");
    for want in [
        "status: created",
        "wait-timeout: ok",
        "exec: from-exec Some(7)",
        "paused: paused",
        "resumed: running",
        "init: from-init,got-input Exited(3)",
        "kill-stopped: true",
        "deleted: true",
    ] {
        assert!(out.lines().any(|l| l == want), "no {want:?} in:\n{out}");
    }
    assert!(
        out.lines()
            .any(|l| l.starts_with("stats: pids ") && l != "stats: pids 0"),
        "{out}"
    );
    // Nothing of the config went to the bundle: it was never written.
    assert!(!w.bundle.join("config.json").exists());
}

/// A multi-threaded caller (threads allocating and printing throughout)
/// runs containers and execs, gets their exit statuses (it is their
/// parent), and keeps its own child processes: nothing is reaped or
/// changed behind its back. Bounded: a hang fails the test.
#[test]
fn a_multithreaded_caller_runs_containers() {
    if !can_run("a_multithreaded_caller_runs_containers") {
        return;
    }
    let w = World::new("libthreads");
    let state = w.dir.join("lib-state");
    let (ok, out, err) = run_example(
        "threaded",
        &w.dir,
        &[&w.rootfs(), &state],
        &["20"],
        Duration::from_secs(120),
    );
    assert!(
        ok,
        "{out}\n{}",
        err.lines()
            .filter(|l| !l.starts_with("thread "))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(out.trim(), "ok 20");
    let left: Vec<_> = std::fs::read_dir(&state)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "state left: {left:?}");
}
