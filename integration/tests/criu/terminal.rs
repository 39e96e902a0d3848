//! A container with a terminal, checkpointed and restored: runc's own
//! checkpoint test's case (a container run with --console-socket). The
//! pty master is outside the container, so criu dumps the slave as an
//! orphan and, on restore, makes a new master for it that reaches the
//! runtime over criu's RPC socket and goes on to `restore
//! --console-socket`, as with runc.

use std::io::Write;
use std::os::unix::net::UnixListener;

use super::*;

/// Types `line` into the terminal and waits (10 s at most) until the
/// container wrote it to `got`.
fn typed(master: &mut std::fs::File, line: &str, got: &Path) -> bool {
    let _ = std::fs::remove_file(got);
    master.write_all(format!("{line}\n").as_bytes()).unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        if std::fs::read_to_string(got).is_ok_and(|s| s.trim() == line) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn a_container_with_a_terminal_is_restored_onto_a_new_console() {
    if !criu_works("a_container_with_a_terminal_is_restored_onto_a_new_console") {
        return;
    }
    let mut w = World::new("criu-tty");
    let data = with_data(&mut w);
    w.config["process"]["terminal"] = json!(true);
    // A counter in the background; in the foreground, what is typed on the
    // terminal goes to /data/got.
    w.script(&format!(
        "({}) & while read l; do echo \"$l\" > /data/got; done",
        count_loop("")
    ));
    w.write_config();
    let sock = w.dir.join("console.sock");
    let sock_s = sock.to_string_lossy().into_owned();
    let listener = UnixListener::bind(&sock).unwrap();
    let id = w.id("c");
    let bundle = w.bundle.to_string_lossy().into_owned();
    ok(
        &w.estiba(&[
            "run",
            "-d",
            "--console-socket",
            &sock_s,
            "--bundle",
            &bundle,
            &id,
        ]),
        "run -d",
    );
    let (_, mut fds) = receive_fds(&listener);
    let mut first = std::fs::File::from(fds.remove(0));
    let got = data.join("got");
    assert!(typed(&mut first, "one", &got), "the terminal before");
    let img = w.dir.join("img").to_string_lossy().into_owned();
    ok(
        &w.estiba(&["checkpoint", "--image-path", &img, &id]),
        "checkpoint",
    );
    drop(first);
    let stopped_at = count_in(&data);
    // As runc: a terminal needs somewhere for its master to go.
    let o = w.estiba(&[
        "restore",
        "-d",
        "--image-path",
        &img,
        "--bundle",
        &bundle,
        &id,
    ]);
    assert!(
        !o.status.success(),
        "restore of a terminal without a socket"
    );
    assert!(
        text(&o.stderr).contains("console-socket"),
        "{}",
        text(&o.stderr)
    );
    ok(
        &w.estiba(&[
            "restore",
            "-d",
            "--console-socket",
            &sock_s,
            "--image-path",
            &img,
            "--bundle",
            &bundle,
            &id,
        ]),
        "restore --console-socket",
    );
    let (_, mut fds) = receive_fds(&listener);
    assert_eq!(fds.len(), 1, "no master on the console socket");
    let mut second = std::fs::File::from(fds.remove(0));
    assert!(
        typed(&mut second, "two", &got),
        "the terminal after restore"
    );
    let counted = count_in(&data);
    assert!(
        counted >= stopped_at && counted <= stopped_at + 200,
        "{counted} after restore, stopped at {stopped_at}"
    );
    // The restored shell's terminal is the container's /dev/pts/0.
    let pid = w.state(&id)["pid"].as_i64().unwrap();
    let tty = std::fs::read_link(format!("/proc/{pid}/fd/0")).unwrap();
    assert!(tty.to_string_lossy().ends_with("pts/0"), "{tty:?}");
    ok(&w.estiba(&["delete", "-f", &id]), "delete");
}
