//! config.md "Mounts": order, destinations, the Linux mount options.

use serde_json::{json, Value};

use super::{item, Check};
use crate::harness::{ensure, fail, Ctx, Outcome};

pub fn checks() -> Vec<Check> {
    vec![
        Check {
            name: "config.md mounts: the runtime MUST mount entries in the listed order",
            run: order,
        },
        Check {
            name: "config.md mounts: a relative destination MUST be interpreted as relative to /",
            run: relative_destination,
        },
        Check {
            name: "config.md mounts: bind mounts a file",
            run: bind_file,
        },
        Check {
            name: "config.md mounts: bind does not bring submounts, rbind does",
            run: bind_vs_rbind,
        },
        Check {
            name: "config.md mounts option ro (MUST)",
            run: |c| option(c, "ro", Want::Mount("ro")),
        },
        Check {
            name: "config.md mounts option rw (MUST)",
            run: |c| option(c, "rw", Want::Mount("rw")),
        },
        Check {
            name: "config.md mounts option nosuid (MUST)",
            run: |c| option(c, "nosuid", Want::Mount("nosuid")),
        },
        Check {
            name: "config.md mounts option nodev (MUST)",
            run: |c| option(c, "nodev", Want::Mount("nodev")),
        },
        Check {
            name: "config.md mounts option noexec (MUST)",
            run: |c| option(c, "noexec", Want::Mount("noexec")),
        },
        Check {
            name: "config.md mounts option noatime (MUST)",
            run: |c| option(c, "noatime", Want::Mount("noatime")),
        },
        Check {
            name: "config.md mounts option nodiratime (MUST)",
            run: |c| option(c, "nodiratime", Want::Mount("nodiratime")),
        },
        Check {
            name: "config.md mounts option relatime (MUST)",
            run: |c| option(c, "relatime", Want::Mount("relatime")),
        },
        Check {
            name: "config.md mounts option strictatime (MUST)",
            run: |c| option(c, "strictatime", Want::NotMount(&["relatime", "noatime"])),
        },
        Check {
            name: "config.md mounts option sync (MUST)",
            run: |c| option(c, "sync", Want::Super("sync")),
        },
        Check {
            name: "config.md mounts option dirsync (MUST)",
            run: |c| option(c, "dirsync", Want::Super("dirsync")),
        },
        Check {
            name: "config.md mounts option nosymfollow (SHOULD)",
            run: |c| option(c, "nosymfollow", Want::Mount("nosymfollow")),
        },
        Check {
            name: "config.md mounts option private (MUST)",
            run: |c| propagation(c, "private", None),
        },
        Check {
            name: "config.md mounts option shared (MUST)",
            run: |c| propagation(c, "shared", Some("shared:")),
        },
        Check {
            name: "config.md mounts option unbindable (MUST)",
            run: |c| propagation(c, "unbindable", Some("unbindable")),
        },
        Check {
            name: "config.md mounts option rro (SHOULD): submounts read-only too",
            run: rro,
        },
    ]
}

/// One line of mountinfo, split.
pub struct MountLine {
    pub id: String,
    pub parent: String,
    pub point: String,
    pub options: Vec<String>,
    pub optional: Vec<String>,
    pub fstype: String,
    pub super_options: Vec<String>,
}

pub fn mounts(r: &Value) -> Vec<MountLine> {
    r["mountinfo"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let dash = f.iter().position(|x| *x == "-")?;
            Some(MountLine {
                id: f.first()?.to_string(),
                parent: f.get(1)?.to_string(),
                point: f.get(4)?.to_string(),
                options: f.get(5)?.split(',').map(str::to_string).collect(),
                optional: f[6..dash].iter().map(|s| s.to_string()).collect(),
                fstype: f.get(dash + 1)?.to_string(),
                super_options: f.get(dash + 3)?.split(',').map(str::to_string).collect(),
            })
        })
        .collect()
}

/// The topmost mount at `point`.
pub fn mount_at<'a>(all: &'a [MountLine], point: &str) -> Option<&'a MountLine> {
    all.iter().rev().find(|m| m.point == point)
}

fn tmpfs(dest: &str, options: &[&str]) -> Value {
    json!({ "destination": dest, "type": "tmpfs", "source": "tmpfs", "options": options })
}

fn push_mount(b: &mut crate::harness::Bundle, m: Value) {
    if let Some(list) = b.config["mounts"].as_array_mut() {
        list.push(m);
    }
}

fn order(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["report", "stat:/m/inner"]);
    push_mount(&mut b, tmpfs("/m", &[]));
    push_mount(&mut b, tmpfs("/m/inner", &[]));
    let r = b.report()?;
    let all = mounts(&r);
    let (Some(outer), Some(inner)) = (mount_at(&all, "/m"), mount_at(&all, "/m/inner")) else {
        return fail("/m or /m/inner is not a mount");
    };
    ensure(inner.parent == outer.id, || {
        "/m/inner is not mounted on top of /m".into()
    })
}

fn relative_destination(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["report"]);
    b.config["ociVersion"] = json!("1.1.0");
    push_mount(&mut b, tmpfs("relative-dest", &[]));
    let r = b.report()?;
    ensure(mount_at(&mounts(&r), "/relative-dest").is_some(), || {
        "nothing mounted at /relative-dest".into()
    })
}

fn bind_file(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["report", "read:/etc/bound"]);
    let src = b.dir.join("bound-file");
    let _ = std::fs::write(&src, "bound content\n");
    push_mount(
        &mut b,
        json!({ "destination": "/etc/bound", "type": "bind", "source": src, "options": ["bind", "ro"] }),
    );
    let r = b.report()?;
    ensure(
        item(&r, "read:/etc/bound")["content"] == "bound content\n",
        || format!("/etc/bound: {}", item(&r, "read:/etc/bound")),
    )
}

/// A host directory with a tmpfs mounted inside it, unmounted on drop.
struct HostTree {
    dir: std::path::PathBuf,
}

impl HostTree {
    fn new(under: &std::path::Path) -> Result<HostTree, crate::harness::Miss> {
        let dir = under.join("tree");
        let _ = std::fs::create_dir_all(dir.join("sub"));
        nix::mount::mount(
            Some("tmpfs"),
            &dir.join("sub"),
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .or_else(|e| fail(format!("mount a tmpfs on the host: {e}")))?;
        let _ = std::fs::write(dir.join("sub/file"), "x");
        Ok(HostTree { dir })
    }
}

impl Drop for HostTree {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.dir.join("sub"), nix::mount::MntFlags::MNT_DETACH);
    }
}

fn bind_vs_rbind(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["report", "stat:/b/sub/file", "stat:/rb/sub/file"]);
    let tree = HostTree::new(&b.dir)?;
    push_mount(
        &mut b,
        json!({ "destination": "/b", "type": "bind", "source": tree.dir, "options": ["bind"] }),
    );
    push_mount(
        &mut b,
        json!({ "destination": "/rb", "type": "bind", "source": tree.dir, "options": ["rbind"] }),
    );
    let r = b.report()?;
    drop(tree);
    ensure(
        item(&r, "stat:/b/sub/file")["errno"] == libc::ENOENT,
        || "bind brought the submount".into(),
    )?;
    ensure(item(&r, "stat:/rb/sub/file")["type"] == "file", || {
        "rbind did not bring the submount".into()
    })
}

enum Want {
    Mount(&'static str),
    NotMount(&'static [&'static str]),
    Super(&'static str),
}

fn option(ctx: &Ctx, opt: &str, want: Want) -> Outcome {
    let mut b = ctx.bundle(&["report"]);
    push_mount(&mut b, tmpfs("/opt-test", &[opt]));
    let r = b.report()?;
    let all = mounts(&r);
    let Some(m) = mount_at(&all, "/opt-test") else {
        return fail("nothing mounted at /opt-test");
    };
    let has = |v: &[String], o: &str| v.iter().any(|x| x == o);
    match want {
        Want::Mount(o) => ensure(has(&m.options, o), || {
            format!("mount options {:?} lack {o}", m.options)
        }),
        Want::NotMount(os) => ensure(os.iter().all(|o| !has(&m.options, o)), || {
            format!("mount options {:?} still have one of {os:?}", m.options)
        }),
        Want::Super(o) => ensure(has(&m.super_options, o) || has(&m.options, o), || {
            format!("{} options {:?} lack {o}", m.fstype, m.super_options)
        }),
    }
}

fn propagation(ctx: &Ctx, opt: &str, want: Option<&str>) -> Outcome {
    let mut b = ctx.bundle(&["report"]);
    let source = b.shared();
    push_mount(
        &mut b,
        json!({ "destination": "/prop", "type": "bind", "source": source, "options": ["rbind", opt] }),
    );
    let r = b.report()?;
    let all = mounts(&r);
    let Some(m) = mount_at(&all, "/prop") else {
        return fail("nothing mounted at /prop");
    };
    propagation_is(m, want)
}

/// The mount's propagation fields show `tag` (`shared:`, `master:`,
/// `unbindable`), or none at all for private.
pub fn propagation_is(m: &MountLine, tag: Option<&str>) -> Outcome {
    let ok = match tag {
        Some(t) => m.optional.iter().any(|o| o.starts_with(t)),
        None => m.optional.is_empty(),
    };
    ensure(ok, || {
        format!(
            "{}: propagation fields {:?}, expected {tag:?}",
            m.point, m.optional
        )
    })
}

fn rro(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["report", "write:/rro/sub/new"]);
    let tree = HostTree::new(&b.dir)?;
    push_mount(
        &mut b,
        json!({ "destination": "/rro", "type": "bind", "source": tree.dir, "options": ["rbind", "rro"] }),
    );
    let r = b.report()?;
    drop(tree);
    ensure(
        item(&r, "write:/rro/sub/new")["errno"] == libc::EROFS,
        || {
            format!(
                "writing a submount of an rro mount: {}",
                item(&r, "write:/rro/sub/new")
            )
        },
    )
}
