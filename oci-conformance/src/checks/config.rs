//! config.md: root, process, hostname, annotations, extensibility, version;
//! features.md.

use std::os::fd::AsRawFd;

use serde_json::{json, Value};

use super::{cap_mask, create_fails, item, status_field, Check};
use crate::harness::{ensure, fail, skip, text, Ctx, Outcome};

pub fn checks() -> Vec<Check> {
    vec![
        Check { name: "config.md root: readonly true MUST make the root filesystem read-only", run: root_readonly },
        Check { name: "config.md root: path may be absolute", run: root_absolute },
        Check { name: "config.md process: terminal true gives the process a pty on stdio (console socket)", run: terminal },
        Check { name: "config.md process: consoleSize sets the terminal size", run: console_size },
        Check { name: "config.md process: cwd is the working directory", run: cwd },
        Check { name: "config.md process: cwd MUST be an absolute path (relative is an error)", run: cwd_relative },
        Check { name: "config.md process: env is the process environment", run: env },
        Check { name: "config.md process: args are the process argv", run: args },
        Check { name: "config.md process: args needs at least one entry (empty is an error)", run: args_empty },
        Check { name: "config.md process: rlimits soft and hard MUST match getrlimit", run: rlimits },
        Check { name: "config.md process: an rlimit type that maps to no kernel interface MUST error", run: rlimit_unknown },
        Check { name: "config.md process: duplicated rlimits types MUST error", run: rlimit_duplicate },
        Check { name: "config.md process: capabilities bounding, effective, permitted, inheritable, ambient as configured", run: capabilities },
        Check { name: "config.md process (1.0.2): a capability name that maps to no kernel interface MUST error", run: capability_unknown },
        Check { name: "config.md process: noNewPrivileges true sets no_new_privs", run: no_new_privs },
        Check { name: "config.md process: oomScoreAdj, if set, MUST be set", run: oom_score_adj },
        Check { name: "config.md process: oomScoreAdj unset MUST NOT change oom_score_adj", run: oom_score_adj_unset },
        Check { name: "config.md process: user uid, gid and additionalGids", run: user },
        Check { name: "config.md process: user umask", run: umask },
        Check { name: "config.md process (1.2): ioPriority", run: io_priority },
        Check { name: "config.md process (1.2): scheduler policy and nice", run: scheduler },
        Check { name: "config.md process (1.2): execCPUAffinity final applies to an exec'd process, not to the init", run: cpu_affinity },
        Check { name: "config.md process: apparmorProfile is applied", run: apparmor },
        Check { name: "config.md process: selinuxLabel is applied", run: selinux },
        Check { name: "config.md hostname: the container's hostname", run: hostname },
        Check { name: "config.md domainname: the container's domainname", run: domainname },
        Check { name: "config.md annotations: unknown annotation keys MUST NOT cause an error", run: unknown_annotation },
        Check { name: "config.md extensibility: unknown properties MUST be ignored", run: unknown_property },
        Check { name: "config.md ociVersion: an invalid version MUST generate an error", run: bad_version },
        Check { name: "config.md root: a path where no directory exists MUST generate an error", run: root_missing },
        Check { name: "config.md hooks: a timeout that is not greater than zero MUST generate an error", run: hook_timeout_zero },
        Check { name: "config.md mounts: a mount the kernel refuses (unknown type) MUST generate an error", run: mount_unknown_type },
        Check { name: "features.md: features reports ociVersionMin/Max and the runtime accepts ociVersionMax", run: features },
    ]
}

fn root_readonly(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["report", "write:/written", "write:/shared/ok"]);
    b.config["root"]["readonly"] = json!(true);
    let r = b.report()?;
    ensure(item(&r, "write:/written")["errno"] == libc::EROFS, || {
        format!("writing / gave {}", item(&r, "write:/written"))
    })?;
    ensure(item(&r, "write:/shared/ok")["ok"] == true, || {
        "a rw mount below got read-only".into()
    })
}

fn root_absolute(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["report"]);
    b.config["root"]["path"] = json!(b.rootfs());
    b.report().map(drop)
}

/// Runs the bundle with terminal true, taking the pty master over a console
/// socket; the text the process wrote to its terminal.
fn run_with_terminal(b: &mut crate::harness::Bundle) -> Result<String, crate::harness::Miss> {
    b.config["process"]["terminal"] = json!(true);
    b.write();
    let sock_path = b.dir.join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock_path)
        .or_else(|e| fail(format!("bind console socket: {e}")))?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(crate::fdpass::receive(&listener));
    });
    let out = b.create_with(&["--console-socket", &sock_path.display().to_string()]);
    ensure(out.status.success(), || {
        format!("create failed: {}", text(&out.stderr))
    })?;
    let master = match rx.recv_timeout(std::time::Duration::from_secs(5)) {
        Ok(Ok((_, mut fds))) if !fds.is_empty() => fds.remove(0),
        _ => return fail("no pty master arrived on the console socket"),
    };
    b.started()?;
    b.wait_status("stopped")?;
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    // The slave is closed once the process exits: read until EIO/EOF.
    while let Ok(n) = nix::unistd::read(master.as_raw_fd(), &mut buf) {
        if n == 0 {
            break;
        }
        text.extend_from_slice(&buf[..n]);
    }
    Ok(String::from_utf8_lossy(&text).into_owned())
}

fn terminal_report(ctx: &Ctx, size: Option<(u16, u16)>) -> Result<Value, crate::harness::Miss> {
    let mut b = ctx.bundle(&["report", "stat:/dev/console"]);
    if let Some((h, w)) = size {
        b.config["process"]["consoleSize"] = json!({ "height": h, "width": w });
    }
    let out = run_with_terminal(&mut b)?;
    serde_json::from_str(out.trim())
        .or_else(|_| fail(format!("no report on the terminal: {out:?}")))
}

fn terminal(ctx: &Ctx) -> Outcome {
    let r = terminal_report(ctx, None)?;
    ensure(r["isatty"] == json!([true, true, true]), || {
        format!("isatty(0,1,2) = {}", r["isatty"])
    })?;
    let console = item(&r, "stat:/dev/console");
    ensure(console["type"] == "char", || {
        format!("/dev/console: {console}")
    })
}

fn console_size(ctx: &Ctx) -> Outcome {
    let r = terminal_report(ctx, Some((33, 111)))?;
    ensure(r["winsize"] == json!([33, 111]), || {
        format!("terminal size {}", r["winsize"])
    })
}

fn cwd(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["report"]);
    b.config["process"]["cwd"] = json!("/tmp");
    let r = b.report()?;
    ensure(r["cwd"] == "/tmp", || format!("cwd {}", r["cwd"]))
}

fn cwd_relative(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["report"]);
    b.config["process"]["cwd"] = json!("tmp");
    create_fails(&mut b)
}

fn env(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["report"]);
    let want = ["PATH=/bin", "A=1", "WITH_SPACE=a b", "EMPTY="];
    b.config["process"]["env"] = json!(want);
    let r = b.report()?;
    let got: Vec<&str> = r["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for w in want {
        ensure(got.contains(&w), || format!("{w} missing from {got:?}"))?;
    }
    Ok(())
}

fn args(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&[]);
    b.set_args(&["report", "two words", "", "x"]);
    let r = b.report()?;
    ensure(
        r["argv"] == json!(["/oci-checker", "report", "two words", "", "x"]),
        || format!("argv {}", r["argv"]),
    )
}

fn args_empty(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&[]);
    b.config["process"]["args"] = json!([]);
    create_fails(&mut b)
}

fn rlimits(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["report"]);
    b.config["process"]["rlimits"] = json!([
        { "type": "RLIMIT_NOFILE", "soft": 1001, "hard": 2002 },
        { "type": "RLIMIT_CORE", "soft": 4096, "hard": 8192 },
        { "type": "RLIMIT_MSGQUEUE", "soft": 4096, "hard": 8192 }
    ]);
    let r = b.report()?;
    for (name, want) in [
        ("RLIMIT_NOFILE", [1001, 2002]),
        ("RLIMIT_CORE", [4096, 8192]),
        ("RLIMIT_MSGQUEUE", [4096, 8192]),
    ] {
        ensure(r["rlimits"][name] == json!(want), || {
            format!("{name} is {}", r["rlimits"][name])
        })?;
    }
    Ok(())
}

fn rlimit_unknown(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["report"]);
    b.config["process"]["rlimits"] = json!([{ "type": "RLIMIT_NO_SUCH", "soft": 1, "hard": 1 }]);
    create_fails(&mut b)
}

fn rlimit_duplicate(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["report"]);
    b.config["process"]["rlimits"] = json!([
        { "type": "RLIMIT_NOFILE", "soft": 100, "hard": 100 },
        { "type": "RLIMIT_NOFILE", "soft": 200, "hard": 200 }
    ]);
    create_fails(&mut b)
}

fn cap_bits(names: &[&str]) -> u64 {
    names.iter().fold(0, |m, n| {
        m | match *n {
            "CAP_CHOWN" => 1 << 0,
            "CAP_KILL" => 1 << 5,
            "CAP_SETGID" => 1 << 6,
            "CAP_SETUID" => 1 << 7,
            "CAP_SETPCAP" => 1 << 8,
            "CAP_NET_BIND_SERVICE" => 1 << 10,
            _ => 0,
        }
    })
}

fn capabilities(ctx: &Ctx) -> Outcome {
    // A non-root user, so exec keeps exactly the ambient set in permitted
    // and effective (root would get the bounding set back at exec).
    let bounding = [
        "CAP_CHOWN",
        "CAP_KILL",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",
    ];
    let kept = ["CAP_CHOWN", "CAP_KILL", "CAP_SETUID"];
    let ambient = ["CAP_CHOWN", "CAP_KILL"];
    let mut b = ctx.bundle(&["report"]);
    b.config["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
    b.config["process"]["capabilities"] = json!({
        "bounding": bounding, "effective": kept, "permitted": kept,
        "inheritable": ambient, "ambient": ambient
    });
    let r = b.report()?;
    for (field, want) in [
        ("CapBnd", cap_bits(&bounding)),
        ("CapInh", cap_bits(&ambient)),
        ("CapAmb", cap_bits(&ambient)),
        ("CapPrm", cap_bits(&ambient)),
        ("CapEff", cap_bits(&ambient)),
    ] {
        let got = cap_mask(&r, field)?;
        ensure(got == want, || {
            format!("{field} {got:#x}, expected {want:#x}")
        })?;
    }
    Ok(())
}

fn capability_unknown(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["report"]);
    b.config["process"]["capabilities"]["bounding"] = json!(["CAP_CHOWN", "CAP_NO_SUCH_THING"]);
    create_fails(&mut b)
}

fn no_new_privs(ctx: &Ctx) -> Outcome {
    for want in [true, false] {
        let mut b = ctx.bundle(&["report"]);
        b.config["process"]["noNewPrivileges"] = json!(want);
        let r = b.report()?;
        let got = status_field(&r, "NoNewPrivs");
        ensure(got == if want { "1" } else { "0" }, || {
            format!("noNewPrivileges {want}: NoNewPrivs {got}")
        })?;
    }
    Ok(())
}

fn oom_score_adj(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["report"]);
    b.config["process"]["oomScoreAdj"] = json!(567);
    let r = b.report()?;
    ensure(r["oom_score_adj"] == "567", || {
        format!("oom_score_adj {}", r["oom_score_adj"])
    })
}

fn oom_score_adj_unset(ctx: &Ctx) -> Outcome {
    let ours = std::fs::read_to_string("/proc/self/oom_score_adj").unwrap_or_default();
    let mut b = ctx.bundle(&["report"]);
    let r = b.report()?;
    ensure(r["oom_score_adj"] == ours.trim(), || {
        format!(
            "oom_score_adj {} but the runtime's caller has {}",
            r["oom_score_adj"],
            ours.trim()
        )
    })
}

fn user(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["report"]);
    b.config["process"]["user"] =
        json!({ "uid": 1234, "gid": 2345, "additionalGids": [3001, 3002] });
    let r = b.report()?;
    let uid = status_field(&r, "Uid");
    let gid = status_field(&r, "Gid");
    let groups = status_field(&r, "Groups");
    ensure(uid.split_whitespace().all(|u| u == "1234"), || {
        format!("Uid {uid}")
    })?;
    ensure(gid.split_whitespace().all(|g| g == "2345"), || {
        format!("Gid {gid}")
    })?;
    let mut g: Vec<&str> = groups.split_whitespace().collect();
    g.sort();
    ensure(g == ["3001", "3002"], || format!("Groups {groups}"))
}

fn umask(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["report"]);
    b.config["process"]["user"]["umask"] = json!(0o027);
    let r = b.report()?;
    ensure(status_field(&r, "Umask") == "0027", || {
        format!("Umask {}", status_field(&r, "Umask"))
    })
}

fn io_priority(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["report"]);
    b.config["ociVersion"] = json!("1.2.0");
    b.config["process"]["ioPriority"] = json!({ "class": "IOPRIO_CLASS_BE", "priority": 6 });
    let r = b.report()?;
    let want = (2 << 13) | 6;
    ensure(r["ioprio"] == want, || {
        format!("ioprio {} expected {want}", r["ioprio"])
    })
}

fn scheduler(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["report"]);
    b.config["ociVersion"] = json!("1.2.0");
    b.config["process"]["scheduler"] = json!({ "policy": "SCHED_BATCH", "nice": 7 });
    let r = b.report()?;
    ensure(r["sched_policy"] == libc::SCHED_BATCH, || {
        format!("policy {}", r["sched_policy"])
    })?;
    ensure(r["nice"] == 7, || format!("nice {}", r["nice"]))
}

fn cpu_affinity(ctx: &Ctx) -> Outcome {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    if cpus < 2 {
        return skip("one CPU: no affinity to narrow");
    }
    let mut b = ctx.bundle(&["sleep"]);
    b.config["ociVersion"] = json!("1.2.0");
    b.config["process"]["execCPUAffinity"] = json!({ "final": "0" });
    b.created()?;
    b.started()?;
    let pid = b.state().and_then(|s| s["pid"].as_i64()).unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let init = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap_or("")
        .trim()
        .to_string();
    // The spec: "not applicable to the container's init process".
    ensure(init != "0", || {
        format!("the init's affinity was narrowed to {init}")
    })?;
    let out = b.op(&["exec", "/oci-checker", "report"]);
    ensure(out.status.success(), || {
        format!("exec failed: {}", text(&out.stderr))
    })?;
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    ensure(r["affinity"] == json!([0]), || {
        format!("the exec'd process's affinity {}", r["affinity"])
    })
}

fn apparmor(_: &Ctx) -> Outcome {
    let on = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled").unwrap_or_default();
    if on.trim() != "Y" {
        return skip("AppArmor is not enabled on this host");
    }
    skip("no AppArmor profile is known to be loaded for the check")
}

fn selinux(_: &Ctx) -> Outcome {
    if !std::path::Path::new("/sys/fs/selinux/enforce").exists() {
        return skip("SELinux is not enabled on this host");
    }
    skip("SELinux labels are not checked yet")
}

fn hostname(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["report"]);
    b.config["hostname"] = json!("conformance-host");
    let r = b.report()?;
    ensure(r["hostname"] == "conformance-host", || {
        format!("hostname {}", r["hostname"])
    })
}

fn domainname(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["report"]);
    b.config["ociVersion"] = json!("1.2.0");
    b.config["domainname"] = json!("conformance.example");
    let r = b.report()?;
    ensure(r["domainname"] == "conformance.example", || {
        format!("domainname {}", r["domainname"])
    })
}

fn unknown_annotation(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["report"]);
    b.config["annotations"] =
        json!({ "org.example.never-heard-of": "x", "org.opencontainers.future": "y" });
    b.report().map(drop)
}

fn unknown_property(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["report"]);
    b.config["org.example.unknown"] = json!({ "a": 1 });
    b.config["process"]["unknownField"] = json!(true);
    b.config["linux"]["unknownField"] = json!([1, 2]);
    b.report().map(drop)
}

fn bad_version(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["report"]);
    b.config["ociVersion"] = json!("not-a-version");
    create_fails(&mut b)
}

fn features(ctx: &Ctx) -> Outcome {
    let out = ctx.run(&["features"]);
    ensure(out.status.success(), || {
        format!("features failed: {}", text(&out.stderr))
    })?;
    let f: Value = serde_json::from_slice(&out.stdout)
        .or_else(|e| fail(format!("features is not JSON: {e}")))?;
    let (Some(min), Some(max)) = (f["ociVersionMin"].as_str(), f["ociVersionMax"].as_str()) else {
        return fail(format!("no ociVersionMin/ociVersionMax: {f}"));
    };
    let v = |s: &str| {
        s.split(['.', '-', '+'])
            .take(3)
            .map(|p| p.parse::<u32>().unwrap_or(0))
            .collect::<Vec<_>>()
    };
    ensure(v(min) <= v(max), || {
        format!("ociVersionMin {min} > ociVersionMax {max}")
    })?;
    let mut b = ctx.bundle(&["report"]);
    b.config["ociVersion"] = json!(max);
    b.report().map(drop)
}

fn root_missing(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["report"]);
    b.config["root"]["path"] = json!("no-such-rootfs");
    create_fails(&mut b)
}

fn hook_timeout_zero(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["report"]);
    b.add_hook("createRuntime", "zero", &[]);
    b.config["hooks"]["createRuntime"][0]["timeout"] = json!(0);
    create_fails(&mut b)
}

fn mount_unknown_type(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["report"]);
    if let Some(m) = b.config["mounts"].as_array_mut() {
        m.push(json!({ "destination": "/odd", "type": "no-such-fs", "source": "none" }));
    }
    create_fails(&mut b)
}
