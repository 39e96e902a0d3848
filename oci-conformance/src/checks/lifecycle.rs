//! runtime.md: state, create, start, kill, delete and the lifecycle.

use std::path::Path;

use serde_json::json;

use super::{create_fails, nothing_left, op_fails_keeps, Check};
use crate::harness::{ensure, fail, text, Ctx, Outcome};

pub fn checks() -> Vec<Check> {
    vec![
        Check { name: "runtime.md state: querying a container that does not exist MUST generate an error", run: state_missing },
        Check { name: "runtime.md state: MUST return ociVersion, id, status, pid and bundle", run: state_fields },
        Check { name: "runtime.md state: pid is the container process (created, then running, then stopped)", run: state_statuses },
        Check { name: "runtime.md state: annotations of config.json are in the state", run: state_annotations },
        Check { name: "runtime.md create: MUST generate an error without a container ID", run: create_no_id },
        Check { name: "runtime.md create: an ID that is not unique MUST error and no new container be created", run: create_duplicate },
        Check { name: "runtime.md create: an invalid ID MUST generate an error", run: create_invalid_id },
        Check { name: "runtime.md create: process.args MUST NOT be applied until start", run: args_not_before_start },
        Check { name: "runtime.md lifecycle: updates to config.json after create MUST NOT affect the container", run: config_update_no_effect },
        Check { name: "runtime.md create: a container without process can be created (process is REQUIRED only for start)", run: create_without_process },
        Check { name: "runtime.md start: MUST generate an error if process was not set", run: start_without_process },
        Check { name: "runtime.md start: starting a running container MUST error and have no effect", run: start_running },
        Check { name: "runtime.md start: starting a stopped container MUST error and have no effect", run: start_stopped },
        Check { name: "runtime.md start: MUST generate an error without a container ID", run: start_no_id },
        Check { name: "runtime.md kill: MUST send the specified signal to the container process", run: kill_signal },
        Check { name: "runtime.md kill: a created container can be signalled", run: kill_created },
        Check { name: "runtime.md kill: signalling a stopped container MUST error and have no effect", run: kill_stopped },
        Check { name: "runtime.md delete: deleting a running container MUST error and have no effect", run: delete_running },
        Check { name: "runtime.md delete: deleting a created (not stopped) container MUST error and have no effect", run: delete_created },
        Check { name: "runtime.md delete: MUST delete the resources created during create", run: delete_resources },
        Check { name: "runtime.md delete: resources not created by the container MUST NOT be deleted", run: delete_keeps_foreign },
        Check { name: "runtime.md delete: MUST generate an error without a container ID", run: delete_no_id },
        Check { name: "runtime.md errors: a failed create leaves the environment as if never attempted", run: failed_create_clean },
    ]
}

fn state_missing(ctx: &Ctx) -> Outcome {
    let out = ctx.run(&["state", "oc-no-such-container"]);
    ensure(!out.status.success(), || {
        "state of a missing container succeeded".into()
    })
}

fn state_fields(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["sleep", "30"]);
    b.created()?;
    let Some(s) = b.state() else {
        return fail("state failed on a created container");
    };
    for f in ["ociVersion", "id", "status", "bundle"] {
        ensure(s[f].is_string(), || format!("state lacks {f}: {s}"))?;
    }
    ensure(s["id"] == b.id.as_str(), || {
        format!("id {} != {}", s["id"], b.id)
    })?;
    ensure(s["status"] == "created", || {
        format!("status {} after create", s["status"])
    })?;
    ensure(s["pid"].as_i64().unwrap_or(0) > 0, || {
        format!("pid {} while created", s["pid"])
    })?;
    let bundle = Path::new(s["bundle"].as_str().unwrap_or_default());
    ensure(bundle.is_absolute() && bundle == b.dir, || {
        format!(
            "bundle {bundle:?} is not the absolute bundle path {:?}",
            b.dir
        )
    })
}

fn state_statuses(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["wait-signal"]);
    b.created()?;
    let pid = b.state().and_then(|s| s["pid"].as_i64()).unwrap_or(0);
    ensure(Path::new(&format!("/proc/{pid}")).exists(), || {
        format!("state pid {pid} does not exist")
    })?;
    b.started()?;
    ensure(b.status() == "running", || {
        format!("status {} after start", b.status())
    })?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    ensure(
        String::from_utf8_lossy(&cmdline).contains("wait-signal"),
        || {
            format!(
                "state pid {pid} is not the user's process: {:?}",
                String::from_utf8_lossy(&cmdline)
            )
        },
    )?;
    let k = b.op(&["kill", "KILL"]);
    ensure(k.status.success(), || {
        format!("kill failed: {}", text(&k.stderr))
    })?;
    b.wait_status("stopped")
}

fn state_annotations(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["sleep", "30"]);
    b.config["annotations"] = json!({ "org.example.conformance": "yes" });
    b.created()?;
    let s = b.state().unwrap_or_default();
    ensure(s["annotations"]["org.example.conformance"] == "yes", || {
        format!("state annotations: {}", s["annotations"])
    })
}

fn create_no_id(ctx: &Ctx) -> Outcome {
    let b = ctx.bundle(&[]);
    b.write();
    let out = ctx.run(&["create", "--bundle", &b.dir.display().to_string()]);
    ensure(!out.status.success(), || {
        "create without an ID succeeded".into()
    })
}

fn create_duplicate(ctx: &Ctx) -> Outcome {
    let mut a = ctx.bundle(&["sleep", "30"]);
    a.created()?;
    let before = a.state().unwrap_or_default();
    let mut b = ctx.bundle(&["sleep", "30"]);
    b.id = a.id.clone();
    b.config["linux"]["cgroupsPath"] = json!(format!("/{}-dup", a.id));
    let out = b.create();
    ensure(!out.status.success(), || {
        "second create with the same ID succeeded".into()
    })?;
    let after = a.state().unwrap_or_default();
    ensure(before == after, || {
        format!("the first container changed: {before} -> {after}")
    })
}

fn create_invalid_id(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&[]);
    b.id = "../oc-escape".into();
    create_fails(&mut b)
}

fn args_not_before_start(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["report", "write:/shared/ran"]);
    b.created()?;
    ensure(!b.shared().join("ran").exists(), || {
        "the process ran at create".into()
    })?;
    b.started()?;
    b.wait_status("stopped")?;
    ensure(b.shared().join("ran").exists(), || {
        "the process did not run at start".into()
    })
}

fn config_update_no_effect(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["report"]);
    b.created()?;
    b.config["process"]["env"] = json!(["CHANGED=after-create"]);
    b.set_args(&["report", "write:/shared/changed"]);
    b.write();
    b.started()?;
    b.wait_status("stopped")?;
    let out = std::fs::read_to_string(b.dir.join("stdout")).unwrap_or_default();
    ensure(
        !out.contains("CHANGED=after-create") && !b.shared().join("changed").exists(),
        || "the edited config.json took effect".into(),
    )
}

fn create_without_process(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&[]);
    b.config.as_object_mut().map(|o| o.remove("process"));
    b.created()?;
    ensure(b.status() == "created", || format!("status {}", b.status()))
}

fn start_without_process(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&[]);
    b.config.as_object_mut().map(|o| o.remove("process"));
    let out = b.create();
    if !out.status.success() {
        return fail(format!(
            "create failed, so start cannot be tried: {}",
            text(&out.stderr)
        ));
    }
    op_fails_keeps(&b, &["start"], "created")
}

fn start_running(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["sleep", "30"]);
    b.created()?;
    b.started()?;
    op_fails_keeps(&b, &["start"], "running")
}

fn start_stopped(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["report"]);
    b.created()?;
    b.started()?;
    b.wait_status("stopped")?;
    op_fails_keeps(&b, &["start"], "stopped")
}

fn start_no_id(ctx: &Ctx) -> Outcome {
    ensure(!ctx.run(&["start"]).status.success(), || {
        "start without an ID succeeded".into()
    })
}

fn kill_signal(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["wait-signal"]);
    b.created()?;
    b.started()?;
    let out = b.op(&["kill", "USR1"]);
    ensure(out.status.success(), || {
        format!("kill USR1 failed: {}", text(&out.stderr))
    })?;
    b.wait_status("stopped")?;
    let got = std::fs::read_to_string(b.dir.join("stdout")).unwrap_or_default();
    ensure(
        got.contains(&format!("\"signal\":{}", libc::SIGUSR1)),
        || format!("the process saw {got:?}, not SIGUSR1"),
    )
}

fn kill_created(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["sleep", "30"]);
    b.created()?;
    let out = b.op(&["kill", "KILL"]);
    ensure(out.status.success(), || {
        format!("kill of a created container failed: {}", text(&out.stderr))
    })?;
    b.wait_status("stopped")
}

fn kill_stopped(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["report"]);
    b.created()?;
    b.started()?;
    b.wait_status("stopped")?;
    op_fails_keeps(&b, &["kill", "TERM"], "stopped")
}

fn delete_running(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["sleep", "30"]);
    b.created()?;
    b.started()?;
    op_fails_keeps(&b, &["delete"], "running")
}

fn delete_created(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["sleep", "30"]);
    b.created()?;
    op_fails_keeps(&b, &["delete"], "created")
}

fn delete_resources(ctx: &Ctx) -> Outcome {
    let mut b = ctx.bundle(&["report"]);
    b.created()?;
    let cg = crate::cgroup::existing(&b.cgroups_path());
    ensure(!cg.is_empty(), || {
        "no cgroup was created for cgroupsPath".into()
    })?;
    b.started()?;
    b.wait_status("stopped")?;
    let out = b.delete(false);
    ensure(out.status.success(), || {
        format!("delete failed: {}", text(&out.stderr))
    })?;
    let ok = nothing_left(
        &b,
        &std::process::Output {
            stderr: b"-".to_vec(),
            ..out
        },
    );
    ok.map_err(|e| match e {
        crate::harness::Miss::Fail(m) => crate::harness::Miss::Fail(format!("after delete: {m}")),
        other => other,
    })
}

fn delete_keeps_foreign(ctx: &Ctx) -> Outcome {
    // A network namespace held by a process of ours, joined by path.
    let holder = crate::harness::Holder::new()?;
    let before = holder.ns("net");
    let mut b = ctx.bundle(&["report"]);
    b.config["linux"]["namespaces"] =
        json!([{ "type": "mount" }, { "type": "network", "path": holder.path("net") }]);
    b.config.as_object_mut().map(|o| o.remove("hostname"));
    b.run_to_end()?;
    ensure(holder.ns("net") == before, || {
        "the joined namespace is gone".into()
    })
}

fn delete_no_id(ctx: &Ctx) -> Outcome {
    ensure(!ctx.run(&["delete"]).status.success(), || {
        "delete without an ID succeeded".into()
    })
}

fn failed_create_clean(ctx: &Ctx) -> Outcome {
    // Everything is set up, then the process cannot be found.
    let mut b = ctx.bundle(&[]);
    b.config["process"]["args"] = json!(["/no-such-program"]);
    let out = b.create();
    if !out.status.success() {
        return nothing_left(&b, &out);
    }
    // Runtimes that look the program up at start: start must fail, and
    // after delete nothing may be left.
    let st = b.start();
    ensure(!st.status.success(), || {
        "start of a missing program succeeded".into()
    })?;
    let _ = b.delete(true);
    nothing_left(
        &b,
        &std::process::Output {
            stderr: b"-".to_vec(),
            ..st
        },
    )
}
