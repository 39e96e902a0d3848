//! What runc's checkpoint tests ask of mounts and of criu's settings:
//! nested bind mounts whose inner mount point is gone from the outer
//! source by restore time, a destination reached through a symlink in the
//! image, the `org.criu.config` annotation, and `--parent-path` checks.

use super::*;

/// runc's "nested bind mounts" and "bind mount, destination is symlink":
/// /test and /test/for/nested are binds (the inner mount point lives in
/// the outer source, and is removed before restore), /conf is a symlink
/// to /real/conf in the image. Restore makes the mount points again where
/// they belong and every bind shows its source.
#[test]
fn nested_binds_and_a_destination_through_a_symlink_are_restored() {
    if !criu_works("nested_binds_and_a_destination_through_a_symlink_are_restored") {
        return;
    }
    let mut w = World::new("criu-nest");
    let source = |name: &str, file: &str| {
        let d = w.dir.join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(file), name).unwrap();
        d
    };
    let (outer, inner, conf) = (
        source("outer", "o"),
        source("inner", "i"),
        source("conf", "c"),
    );
    std::fs::create_dir_all(w.rootfs().join("real/conf")).unwrap();
    std::os::unix::fs::symlink("/real/conf", w.rootfs().join("conf")).unwrap();
    for (dest, src) in [
        ("/test", &outer),
        ("/test/for/nested", &inner),
        ("/conf", &conf),
    ] {
        w.config["mounts"].as_array_mut().unwrap().push(
            json!({"destination": dest, "type": "bind", "source": src, "options": ["rbind"]}),
        );
    }
    let data = with_data(&mut w);
    w.script(COUNT);
    let Counting { id, bundle, rx, .. } = detached(&mut w, data);
    latest(&rx, Duration::from_secs(1)).expect("counting");
    let img = w.dir.join("img").to_string_lossy().into_owned();
    ok(
        &w.estiba(&["checkpoint", "--image-path", &img, &id]),
        "checkpoint",
    );
    // create made the inner mount point in the outer source; gone now.
    std::fs::remove_dir_all(outer.join("for")).expect("the inner mount point");
    restore(&w, &bundle, &id, &img);
    let o = w.estiba(&[
        "exec",
        &id,
        "cat",
        "/test/o",
        "/test/for/nested/i",
        "/conf/c",
        "/real/conf/c",
    ]);
    ok(&o, "exec cat");
    assert_eq!(text(&o.stdout), "outerinnerconfconf");
    ok(&w.estiba(&["delete", "-f", &id]), "delete");
}

/// The `org.criu.config` annotation names criu's configuration file for
/// this container (its settings win over the runtime's): here its
/// log-file, which both checkpoint and restore then write.
#[test]
fn the_criu_config_annotation_is_given_to_criu() {
    if !criu_works("the_criu_config_annotation_is_given_to_criu") {
        return;
    }
    let mut w = World::new("criu-conf");
    let conf = w.dir.join("criu.conf");
    std::fs::write(&conf, "log-file=from-annotation.log\n").unwrap();
    w.config["annotations"] = json!({"org.criu.config": conf});
    let Counting {
        id,
        bundle,
        rx: _rx,
        ..
    } = counting(&mut w);
    let img = w.dir.join("img");
    let img_s = img.to_string_lossy().into_owned();
    ok(
        &w.estiba(&["checkpoint", "--image-path", &img_s, &id]),
        "checkpoint",
    );
    let custom = img.join("from-annotation.log");
    assert!(custom.exists(), "criu did not log where its config says");
    assert!(!img.join("dump.log").exists(), "dump.log written too");
    std::fs::remove_file(&custom).unwrap();
    restore(&w, &bundle, &id, &img_s);
    assert!(custom.exists(), "restore did not read the config");
    ok(&w.estiba(&["delete", "-f", &id]), "delete");
}

/// runc's "checkpoint --pre-dump (bad --parent-path)": an absolute parent
/// path and one with no images there are refused, naming the flag, and
/// the container runs on. (Checked before criu runs: tested everywhere.)
#[test]
fn a_bad_parent_path_is_refused() {
    if !can_run("a_bad_parent_path_is_refused") {
        return;
    }
    let mut w = World::new("criu-parent");
    w.args(&["sleep", "100"]);
    let id = w.running("c");
    let img = w.dir.join("img").to_string_lossy().into_owned();
    let absolute = w.dir.join("parent").to_string_lossy().into_owned();
    for parent in [absolute.as_str(), "../parent"] {
        let o = w.estiba(&[
            "checkpoint",
            "--parent-path",
            parent,
            "--image-path",
            &img,
            &id,
        ]);
        assert!(!o.status.success(), "--parent-path {parent} taken");
        assert!(
            text(&o.stderr).contains("--parent-path"),
            "{}",
            text(&o.stderr)
        );
        assert_eq!(w.status(&id), "running");
    }
}
