//! Id-mapped bind mounts (issue 17): ownership checked from both sides,
//! inside with `stat` and outside on the host, on ext4 (the test dir) and
//! on a tmpfs the test mounts. A mapping line is runc's: `containerID` is
//! the id on the filesystem, `hostID` the id the mount shows it as.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use estiba_integration::*;
use serde_json::json;

/// The container's user namespace: its root is host 100000.
fn with_userns(w: &mut World) {
    let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    w.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    w.config["linux"]["uidMappings"] = map.clone();
    w.config["linux"]["gidMappings"] = map;
}

/// A tmpfs the test mounts on `dir`, unmounted on drop, pass or fail.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn at(dir: &Path) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "mount tmpfs on {dir:?}");
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// The mount point: the rootfs is host root's, which the container's root
/// (host 100000) cannot write to, so it must exist, as in an image.
fn mount_point(w: &World) {
    std::fs::create_dir_all(w.rootfs().join("vol")).unwrap();
}

/// A volume of `dir` owned by host 1000:1000, holding `file` (also
/// 1000's), mounted on /vol with `options` and `maps`.
fn volume(w: &mut World, dir: &Path, options: &[&str], maps: Option<serde_json::Value>) {
    mount_point(w);
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("file"), "x").unwrap();
    for p in [dir.to_path_buf(), dir.join("file")] {
        std::os::unix::fs::chown(&p, Some(1000), Some(1000)).unwrap();
    }
    let mut m = json!({"destination": "/vol", "type": "bind", "source": dir, "options": options});
    if let Some(maps) = maps {
        m["uidMappings"] = maps.clone();
        m["gidMappings"] = maps;
    }
    w.config["mounts"].as_array_mut().unwrap().push(m);
}

fn owner(p: &Path) -> (u32, u32) {
    let m = std::fs::metadata(p).unwrap_or_else(|e| panic!("{p:?}: {e}"));
    (m.uid(), m.gid())
}

/// The issue's case, on ext4 and on tmpfs: a container whose root is host
/// 100000 gets a host directory owned by host 1000, mapped 1000 → 100000.
/// Inside, its file is root's; a file the container makes is host 1000's
/// on the host. The same directory bound without a mapping shows the
/// overflow id (nobody) and cannot be written: the mapping is what works.
#[test]
fn an_idmapped_volume_is_the_containers_own() {
    if !can_run("an_idmapped_volume_is_the_containers_own") {
        return;
    }
    let base = World::new("idmap-vol");
    let tmpfs = Tmpfs::at(&base.dir.join("tmpfs"));
    for (fs, dir) in [
        ("ext4", base.dir.join("ext4-src")),
        ("tmpfs", tmpfs.0.join("src")),
    ] {
        let mut w = World::new("idmap-vol");
        with_userns(&mut w);
        let map = json!([{"containerID": 1000, "hostID": 100000, "size": 1}]);
        volume(&mut w, &dir, &["bind"], Some(map));
        w.script("stat -c '%u %g' /vol/file; touch /vol/new && stat -c '%u %g' /vol/new");
        let out = w.run_ok("c");
        assert_eq!(
            out.lines().collect::<Vec<_>>(),
            ["0 0", "0 0"],
            "{fs}: {out}"
        );
        assert_eq!(owner(&dir.join("new")), (1000, 1000), "{fs}: on the host");
        assert_eq!(owner(&dir.join("file")), (1000, 1000), "{fs}: unchanged");
        // Without the mapping: nobody's, and not writable by the container.
        let mut w = World::new("idmap-plain");
        with_userns(&mut w);
        volume(&mut w, &dir, &["bind"], None);
        w.script("stat -c '%u' /vol/file; touch /vol/other 2>/dev/null || echo refused");
        let out = w.run_ok("c");
        assert_eq!(
            out.lines().collect::<Vec<_>>(),
            ["65534", "refused"],
            "{fs}: {out}"
        );
    }
}

/// `idmap` without mappings takes the container's (spec 1.2): a host
/// file owned by host root is the container root's, and what the
/// container makes is host root's, as on the host's side of the volume.
/// Without a user namespace the mount's own mappings still apply: the
/// container (host ids) sees the file as 100000's; `ro` holds.
#[test]
fn idmap_takes_the_containers_mappings_or_its_own() {
    if !can_run("idmap_takes_the_containers_mappings_or_its_own") {
        return;
    }
    let mut w = World::new("idmap-own");
    with_userns(&mut w);
    let dir = w.dir.join("src");
    volume(&mut w, &dir, &["bind", "idmap"], None);
    // The volume's top is host root's here, so the container's root owns it.
    std::os::unix::fs::chown(&dir, Some(0), Some(0)).unwrap();
    std::fs::write(dir.join("roots"), "x").unwrap();
    w.script("stat -c '%u %g' /vol/roots; touch /vol/made && stat -c '%u' /vol/made");
    let out = w.run_ok("c");
    assert_eq!(out.lines().collect::<Vec<_>>(), ["0 0", "0"], "{out}");
    assert_eq!(owner(&dir.join("made")), (0, 0));
    // No user namespace: the mapping alone decides what is seen. `ro`
    // still applies to the id-mapped mount.
    let mut w = World::new("idmap-nouserns");
    let dir = w.dir.join("src");
    let map = json!([{"containerID": 1000, "hostID": 100000, "size": 1}]);
    volume(&mut w, &dir, &["bind", "ro"], Some(map));
    w.script("stat -c '%u %g' /vol/file; touch /vol/x 2>&1 | grep -c 'Read-only'");
    assert_eq!(
        w.run_ok("c").lines().collect::<Vec<_>>(),
        ["100000 100000", "1"]
    );
}

/// `ridmap` on an rbind maps the submounts too; `idmap` maps only the top
/// mount, and a submount's files keep their ids (the overflow id inside
/// the container's user namespace).
#[test]
fn ridmap_maps_the_submounts_idmap_only_the_top() {
    if !can_run("ridmap_maps_the_submounts_idmap_only_the_top") {
        return;
    }
    let base = World::new("ridmap");
    let dir = base.dir.join("src");
    std::fs::create_dir_all(&dir).unwrap();
    let sub = Tmpfs::at(&dir.join("sub"));
    std::fs::write(sub.0.join("f"), "x").unwrap();
    std::os::unix::fs::chown(sub.0.join("f"), Some(1000), Some(1000)).unwrap();
    std::fs::write(dir.join("top"), "x").unwrap();
    std::os::unix::fs::chown(dir.join("top"), Some(1000), Some(1000)).unwrap();
    for (opt, want_sub) in [("ridmap", "0"), ("idmap", "65534")] {
        let mut w = World::new("ridmap");
        with_userns(&mut w);
        let map = json!([{"containerID": 1000, "hostID": 100000, "size": 1}]);
        mount_point(&w);
        w.config["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/vol", "type": "bind", "source": dir,
            "options": ["rbind", opt], "uidMappings": map, "gidMappings": map
        }));
        w.script("stat -c '%u' /vol/top /vol/sub/f");
        let out = w.run_ok("c");
        assert_eq!(
            out.lines().collect::<Vec<_>>(),
            ["0", want_sub],
            "{opt}: {out}"
        );
    }
}

/// What cannot be id-mapped is refused at create, naming the mount and
/// why, leaving nothing: a tmpfs (bind mounts only), a mount with uid
/// mappings but no gid mappings, `idmap` with no mappings anywhere, and a
/// filesystem without id-mapping support (sysfs).
#[test]
fn what_cannot_be_idmapped_is_refused() {
    if !can_run("what_cannot_be_idmapped_is_refused") {
        return;
    }
    let mut w = World::new("idmap-no");
    let base = w.config.clone();
    let src = w.dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    let cases = [
        (
            json!({"destination": "/vol", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"]}),
            "only supported for bind-mounts",
        ),
        (
            json!({"destination": "/vol", "type": "bind", "source": src, "options": ["bind"], "uidMappings": map}),
            "must have both uid and gid mappings",
        ),
        (
            json!({"destination": "/vol", "type": "bind", "source": src, "options": ["bind", "idmap"]}),
            "no user namespace",
        ),
        (
            json!({"destination": "/vol", "type": "bind", "source": "/sys/kernel", "options": ["bind"], "uidMappings": map, "gidMappings": map}),
            "cannot id-map \"/sys/kernel\"",
        ),
    ];
    for (m, words) in cases {
        w.config = base.clone();
        w.config["mounts"].as_array_mut().unwrap().push(m);
        w.create_refused("r", words);
    }
}
