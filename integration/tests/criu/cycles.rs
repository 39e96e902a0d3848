//! runc's "checkpoint/restore and exec" and "restore into a different
//! cgroup": a restored container is checkpointed again with a process
//! exec'd into it, which comes back too; and `--manage-cgroups-mode
//! ignore` restores into the cgroup the bundle names now; a paused
//! container is checkpointed.

use super::*;

#[test]
fn a_restored_container_with_an_exec_d_process_is_checkpointed_again() {
    if !criu_works("a_restored_container_with_an_exec_d_process_is_checkpointed_again") {
        return;
    }
    let mut w = World::new("criu-twice");
    let Counting {
        id,
        bundle,
        rx: _rx,
        before,
        ..
    } = counting(&mut w);
    let mut last = before.unwrap_or(0);
    let mut execed: Option<String> = None;
    for round in 0..2 {
        let img = w.dir.join(format!("img{round}"));
        let img = img.to_string_lossy().into_owned();
        ok(
            &w.estiba(&["checkpoint", "--image-path", &img, &id]),
            "checkpoint",
        );
        let first = restore(&w, &bundle, &id, &img);
        assert!(first > last, "round {round}: {first} after {last}");
        last = first;
        if let Some(pid) = &execed {
            let o = w.estiba(&["exec", &id, "ls", "-d", &format!("/proc/{pid}")]);
            ok(&o, "the exec'd process after restore");
        }
        let o = w.estiba(&[
            "exec",
            &id,
            "sh",
            "-c",
            "sleep 1000 </dev/null >/dev/null 2>&1 & echo $!",
        ]);
        ok(&o, "exec");
        execed = Some(text(&o.stdout).trim().to_string());
    }
    ok(&w.estiba(&["delete", "-f", &id]), "delete");
}

#[test]
fn ignore_mode_restores_into_the_cgroup_the_bundle_names_now() {
    if !criu_works("ignore_mode_restores_into_the_cgroup_the_bundle_names_now") {
        return;
    }
    if !Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        skip!("ignore_mode_restores_into_the_cgroup_the_bundle_names_now: not a cgroup v2 host");
        return;
    }
    let mut w = World::new("criu-cgmove");
    let old = format!("/{}-old", w.name);
    w.config["linux"]["cgroupsPath"] = json!(old);
    let Counting {
        id,
        bundle,
        rx: _rx,
        ..
    } = counting(&mut w);
    assert!(Path::new(&format!("/sys/fs/cgroup{old}")).is_dir());
    let img = w.dir.join("img").to_string_lossy().into_owned();
    let ignore = ["--manage-cgroups-mode", "ignore"];
    let mut dump = vec!["checkpoint", "--image-path", &img];
    dump.extend(ignore);
    dump.push(&id);
    ok(&w.estiba(&dump), "checkpoint");
    assert!(
        !Path::new(&format!("/sys/fs/cgroup{old}")).exists(),
        "old cgroup left"
    );
    let new = format!("/{}-new", w.name);
    w.config["linux"]["cgroupsPath"] = json!(new);
    w.write_config();
    restore_with(&w, &bundle, &id, &img, &ignore);
    let pid = w.state(&id)["pid"].as_i64().unwrap();
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert_eq!(cg.trim(), format!("0::{new}"), "the restored init's cgroup");
    assert!(
        !Path::new(&format!("/sys/fs/cgroup{old}")).exists(),
        "old cgroup back"
    );
    ok(&w.estiba(&["delete", "-f", &id]), "delete");
}

/// A paused container is checkpointed (runc lets criu freeze through the
/// cgroup; estiba did not, and criu waited on the frozen tasks until its
/// bound): with `--leave-running` it is still paused after, and counts
/// on once resumed; dumped, it is restored and, resumed if it comes back
/// paused, goes on from where it stopped.
#[test]
fn a_paused_container_is_checkpointed_and_restored() {
    if !criu_works("a_paused_container_is_checkpointed_and_restored") {
        return;
    }
    let mut w = World::new("criu-paused");
    let Counting {
        data,
        id,
        bundle,
        rx: _rx,
        ..
    } = counting(&mut w);
    ok(&w.estiba(&["pause", &id]), "pause");
    let img = |n: &str| w.dir.join(n).to_string_lossy().into_owned();
    // piped(): bounded, so a hang fails the test in 120 s.
    let (kept, dumped) = (img("kept"), img("dumped"));
    piped(
        &w,
        &["checkpoint", "--leave-running", "--image-path", &kept, &id],
    );
    assert_eq!(w.status(&id), "paused", "after checkpoint --leave-running");
    let stopped = count_in(&data);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(count_in(&data), stopped, "counted while paused");
    ok(&w.estiba(&["resume", &id]), "resume");
    std::thread::sleep(Duration::from_millis(300));
    assert!(count_in(&data) > stopped, "not counting after resume");
    ok(&w.estiba(&["pause", &id]), "pause again");
    piped(&w, &["checkpoint", "--image-path", &dumped, &id]);
    let stopped = count_in(&data);
    let rx = piped(
        &w,
        &[
            "restore",
            "-d",
            "--image-path",
            &dumped,
            "--bundle",
            &bundle,
            &id,
        ],
    );
    if w.status(&id) == "paused" {
        ok(&w.estiba(&["resume", &id]), "resume after restore");
    }
    let first = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("counting after restore");
    assert!(
        first <= stopped + 5 && first + 5 >= stopped,
        "{first} vs {stopped}"
    );
    ok(&w.estiba(&["delete", "-f", &id]), "delete");
}
