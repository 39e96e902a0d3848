//! Attacks on the host, each built the way an attacker would build it (a
//! hostile image, a hostile config an engine might pass, a racing process
//! inside the container), against harmless host targets that are restored
//! whatever happens. Each one changed the host before its fix.

use std::path::Path;
use std::time::{Duration, Instant};

use estiba_integration::*;
use serde_json::json;

/// Polls for `path` for up to `secs` seconds.
fn wait_for(path: &Path, secs: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !path.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    path.exists()
}

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
    std::fs::write(rootfs.join("bin/evil"), "#!/proc/self/exe --log=/tmp/fifo\n").unwrap();
    std::fs::set_permissions(
        rootfs.join("bin/evil"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    nix::unistd::mkfifo(&rootfs.join("tmp/fifo"), nix::sys::stat::Mode::from_bits_truncate(0o666))
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
        println!("skipped: exec_of_a_proc_self_exe_script: this kernel refuses /proc/self/exe as the interpreter of estiba's clone (ENOENT); the ptrace form is tested in exec.rs");
        return;
    }
    assert!(out.status.success(), "exec -d: {}", text(&out.stderr));
    std::fs::write(rootfs.join("tmp/go"), "").unwrap();
    // The runtime copy ran twice: as `exec`, and (in the container) as the
    // script's interpreter. Neither runs once the fifo is read.
    std::thread::sleep(Duration::from_millis(500));
    std::fs::write(rootfs.join("tmp/stop"), "").unwrap();
    assert!(wait_for(&rootfs.join("tmp/done"), 10), "attacker did not finish");
    let hits = std::fs::read_to_string(rootfs.join("tmp/hits")).unwrap_or_default();
    let changed = before != std::fs::read(&copy).unwrap();
    w.bin = binary();
    assert!(
        hits.contains("held"),
        "the attack did not get as far as holding the interpreter's exe: {hits}"
    );
    assert!(!changed, "the runtime binary was overwritten from the container: {hits}");
    assert!(!hits.contains("wrote"), "{hits}");
}
