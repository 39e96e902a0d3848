//! config.md "POSIX-platform Hooks" and the hook steps of runtime.md's lifecycle.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{processes_in, Check};
use crate::harness::{ensure, fail, text, Bundle, Ctx, Outcome};

const STAGES: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

pub fn checks() -> Vec<Check> {
    vec![
        Check { name: "config.md hooks: MUST be called in the listed order, each stage at its lifecycle step", run: order },
        Check { name: "config.md hooks: the state of the container MUST be passed to hooks over stdin", run: state_on_stdin },
        Check { name: "config.md hooks: args and env are given to the hook as configured", run: args_env },
        Check { name: "config.md hooks: prestart, createRuntime, poststart, poststop MUST run in the runtime namespace", run: runtime_namespace },
        Check { name: "config.md hooks: createContainer MUST be executed in the container namespace", run: create_container_ns },
        Check { name: "config.md hooks: startContainer path MUST resolve, and run, in the container namespace", run: start_container_ns },
        Check { name: "config.md hooks: poststart MUST be called after the user process is executed, before start returns", run: poststart_after_exec },
        Check { name: "config.md hooks: poststop MUST be called after the container is deleted, before delete returns", run: poststop_after_delete },
        Check { name: "runtime.md lifecycle 3: a failing prestart hook MUST error, stop the container and run poststop", run: |c| create_hook_fails(c, "prestart") },
        Check { name: "runtime.md lifecycle 4: a failing createRuntime hook MUST error, stop the container and run poststop", run: |c| create_hook_fails(c, "createRuntime") },
        Check { name: "runtime.md lifecycle 5: a failing createContainer hook MUST error, stop the container and run poststop", run: |c| create_hook_fails(c, "createContainer") },
        Check { name: "runtime.md lifecycle 7: a failing startContainer hook MUST error, stop the container and run poststop", run: start_container_fails },
        Check { name: "runtime.md lifecycle 9 (1.3): a failing poststart hook MUST be an error; the container is stopped, delete goes on", run: poststart_fails },
        Check { name: "runtime.md lifecycle 13: a failing poststop hook is a warning; later hooks run, delete succeeds", run: poststop_fails },
        Check { name: "config.md hooks: timeout aborts a hook that runs longer", run: timeout },
        Check { name: "config.md hooks: path MUST be absolute (a relative path is an error)", run: relative_path },
    ]
}

/// A container with two hooks per stage, run through its whole lifecycle;
/// the hook log at each step.
fn full_lifecycle(b: &mut Bundle) -> Result<[Vec<Value>; 3], crate::harness::Miss> {
    for s in STAGES {
        b.add_hook(s, &format!("{s}-1"), &[]);
        b.add_hook(s, &format!("{s}-2"), &[]);
    }
    b.created()?;
    let after_create = b.hook_log();
    b.started()?;
    let after_start = b.hook_log();
    let k = b.op(&["kill", "KILL"]);
    ensure(k.status.success(), || {
        format!("kill failed: {}", text(&k.stderr))
    })?;
    b.wait_status("stopped")?;
    let d = b.delete(false);
    ensure(d.status.success(), || {
        format!("delete failed: {}", text(&d.stderr))
    })?;
    Ok([after_create, after_start, b.hook_log()])
}

fn labels(log: &[Value]) -> Vec<String> {
    log.iter()
        .map(|h| h["argv"][0].as_str().unwrap_or("?").to_string())
        .collect()
}

fn order(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["wait-signal"]);
    let [c, s, d] = full_lifecycle(&mut b)?;
    let want: Vec<String> = STAGES
        .iter()
        .flat_map(|s| [format!("{s}-1"), format!("{s}-2")])
        .collect();
    ensure(labels(&c) == want[..6], || {
        format!("after create: {:?}", labels(&c))
    })?;
    ensure(labels(&s) == want[..10], || {
        format!("after start: {:?}", labels(&s))
    })?;
    ensure(labels(&d) == want, || {
        format!("after delete: {:?}", labels(&d))
    })
}

fn state_on_stdin(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["wait-signal"]);
    let [_, _, log] = full_lifecycle(&mut b)?;
    ensure(log.len() == 12, || {
        format!("{} hook runs, expected 12", log.len())
    })?;
    for h in &log {
        let st = &h["state"];
        let who = h["argv"][0].as_str().unwrap_or("?");
        ensure(st["ociVersion"].is_string(), || {
            format!("{who}: no ociVersion in {st}")
        })?;
        ensure(st["id"] == b.id.as_str(), || {
            format!("{who}: id {}", st["id"])
        })?;
        ensure(st["bundle"] == b.dir.display().to_string().as_str(), || {
            format!("{who}: bundle {}", st["bundle"])
        })?;
        ensure(st["status"].is_string(), || format!("{who}: no status"))?;
        if !who.starts_with("poststop") {
            ensure(st["pid"].as_i64().unwrap_or(0) > 0, || {
                format!("{who}: pid {}", st["pid"])
            })?;
        }
    }
    Ok(())
}

fn args_env(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["wait-signal"]);
    let [_, _, log] = full_lifecycle(&mut b)?;
    for h in &log {
        let who = h["argv"][0].as_str().unwrap_or("?");
        let stage = who.rsplit_once('-').map(|(s, _)| s).unwrap_or(who);
        ensure(h["argv"][1] == "hook", || {
            format!("{who}: argv {}", h["argv"])
        })?;
        ensure(h["env"] == json!([format!("HOOK_STAGE={stage}")]), || {
            format!("{who}: env {}", h["env"])
        })?;
    }
    Ok(())
}

fn own_mnt_ns() -> String {
    // Used to tell the container's namespace from ours.
    std::fs::read_link("/proc/self/ns/mnt")
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// The runtime namespace is where the runtime runs: the hook's parent's
/// (a wrapper may give the runtime a private one), and never the
/// container's.
fn runtime_namespace(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["wait-signal"]);
    let [_, _, log] = full_lifecycle(&mut b)?;
    for h in &log {
        let who = h["argv"][0].as_str().unwrap_or("?");
        if ["prestart", "createRuntime", "poststart", "poststop"]
            .iter()
            .any(|s| who.starts_with(&format!("{s}-")))
        {
            let (ns, runtime) = (&h["ns"]["mnt"], &h["parent_ns"]["mnt"]);
            ensure(ns == runtime && ns != &h["target_ns"]["mnt"], || {
                format!("{who} ran in mount namespace {ns}; the runtime's is {runtime}, the container's {}", h["target_ns"]["mnt"])
            })?;
        }
    }
    Ok(())
}

fn container_mnt_ns(b: &Bundle) -> String {
    let pid = b.state().and_then(|s| s["pid"].as_i64()).unwrap_or(0);
    std::fs::read_link(format!("/proc/{pid}/ns/mnt"))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

fn in_container_ns(ctx: &Ctx, stage: &str) -> Outcome {
    let mut b = ctx.bundle(&["wait-signal"]);
    b.add_hook(stage, stage, &[]);
    b.created()?;
    let ns = container_mnt_ns(&b);
    b.started()?;
    let log = b.hook_log();
    let Some(h) = log.iter().find(|h| h["argv"][0] == stage) else {
        return fail(format!("the {stage} hook did not run"));
    };
    ensure(h["ns"]["mnt"] == ns.as_str() && ns != own_mnt_ns(), || {
        format!(
            "{stage} ran in {}, the container's mount namespace is {ns}",
            h["ns"]["mnt"]
        )
    })
}

fn create_container_ns(ctx: &Ctx) -> Outcome {
    in_container_ns(ctx, "createContainer")
}

fn start_container_ns(ctx: &Ctx) -> Outcome {
    in_container_ns(ctx, "startContainer")
}

fn poststart_after_exec(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["wait-signal"]);
    b.add_hook("poststart", "poststart", &[]);
    b.created()?;
    b.started()?;
    let log = b.hook_log();
    let Some(h) = log.first() else {
        return fail("poststart had not run when start returned");
    };
    let cmd = h["target_cmdline"].to_string();
    ensure(cmd.contains("wait-signal"), || {
        format!("when poststart ran, the container process was {cmd}, not the user's program")
    })
}

fn poststop_after_delete(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["wait-signal"]);
    b.add_hook("poststop", "poststop", &[]);
    b.created()?;
    b.started()?;
    let k = b.op(&["kill", "KILL"]);
    ensure(k.status.success(), || {
        format!("kill failed: {}", text(&k.stderr))
    })?;
    b.wait_status("stopped")?;
    ensure(b.hook_log().is_empty(), || {
        "poststop ran before delete".into()
    })?;
    let d = b.delete(false);
    ensure(d.status.success(), || {
        format!("delete failed: {}", text(&d.stderr))
    })?;
    let log = b.hook_log();
    let Some(h) = log.first() else {
        return fail("poststop had not run when delete returned");
    };
    ensure(h["target_alive"] == false, || {
        "the container process was alive during poststop".into()
    })
}

fn create_hook_fails(ctx: &Ctx, stage: &str) -> Outcome {
    let mut b = ctx.bundle(&["wait-signal"]);
    b.add_hook(stage, "failing", &["1"]);
    b.add_hook("poststop", "poststop", &[]);
    let out = b.create();
    ensure(!out.status.success(), || {
        format!("create succeeded with a failing {stage} hook")
    })?;
    stopped_and_poststop(&b)
}

/// After a failed hook: the container is stopped (or gone), nothing of it
/// runs, and poststop hooks have run.
fn stopped_and_poststop(b: &Bundle) -> Outcome {
    let status = b.status();
    ensure(status == "stopped" || status == "(none)", || {
        format!("the container is {status}, expected it stopped")
    })?;
    let procs = processes_in(&b.rootfs());
    ensure(procs.is_empty(), || {
        format!("container processes still run: {procs:?}")
    })?;
    ensure(b.hook_order().iter().any(|l| l == "poststop"), || {
        format!("poststop hooks did not run (ran: {:?})", b.hook_order())
    })
}

fn start_container_fails(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["wait-signal"]);
    b.add_hook("startContainer", "failing", &["1"]);
    b.add_hook("poststop", "poststop", &[]);
    b.created()?;
    let out = b.start();
    ensure(!out.status.success(), || {
        "start succeeded with a failing startContainer hook".into()
    })?;
    stopped_and_poststop(&b)
}

fn poststart_fails(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["wait-signal"]);
    b.config["ociVersion"] = json!("1.3.0");
    b.add_hook("poststart", "failing", &["1"]);
    b.add_hook("poststop", "poststop", &[]);
    b.created()?;
    let out = b.start();
    ensure(!out.status.success(), || {
        "start succeeded with a failing poststart hook".into()
    })?;
    stopped_and_poststop(&b)
}

fn poststop_fails(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["report"]);
    b.add_hook("poststop", "failing", &["1"]);
    b.add_hook("poststop", "second", &[]);
    b.run_to_end()?;
    ensure(b.hook_order() == ["failing", "second"], || {
        format!("poststop hooks that ran: {:?}", b.hook_order())
    })
}

fn timeout(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["wait-signal"]);
    b.add_hook("createRuntime", "slow", &["0", "30"]);
    b.config["hooks"]["createRuntime"][0]["timeout"] = json!(1);
    let t0 = Instant::now();
    let out = b.create();
    let took = t0.elapsed();
    ensure(!out.status.success(), || {
        "create succeeded though its hook timed out".into()
    })?;
    ensure(took < Duration::from_secs(15), || {
        format!("create took {took:?} with a 1 s hook timeout")
    })
}

fn relative_path(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["report"]);
    b.config["hooks"] =
        json!({ "createRuntime": [{ "path": "oci-checker", "args": ["x", "hook", "/dev/null"] }] });
    super::create_fails(&mut b)
}
