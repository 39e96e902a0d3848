//! The whole lifecycle through the library, with nothing written to the
//! bundle but the rootfs: a config built in memory, the container's output
//! captured through a pipe, create / start / wait with a timeout, an exec
//! whose output is captured too, statistics, pause and resume, kill, and
//! delete. Each step prints one line `step: result` that the integration
//! tests check.
//!
//! `cargo run -p estiba-core --example lifecycle -- ROOTFS STATE_DIR` (as
//! root; ROOTFS holds busybox with its applets linked)

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::Duration;

use estiba_core::oci_spec::runtime::Spec;
use estiba_core::{create, Container, CreateOptions, ExecOptions, ExecOutcome, ExitStatus, Signal};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn pipe() -> Res<(std::fs::File, OwnedFd)> {
    let (r, w) = nix::unistd::pipe()?;
    Ok((std::fs::File::from(r), w))
}

fn spec(args: &[&str]) -> Res<Spec> {
    let mut spec: Spec = serde_json::from_value(estiba_core::default_spec(None))?;
    let mut process = spec
        .process()
        .clone()
        .ok_or("the default spec has a process")?;
    process.set_terminal(Some(false));
    process.set_args(Some(args.iter().map(|a| a.to_string()).collect()));
    spec.set_process(Some(process));
    let mut root = spec.root().clone().ok_or("the default spec has a root")?;
    root.set_readonly(Some(false));
    spec.set_root(Some(root));
    Ok(spec)
}

fn main() -> Res<()> {
    estiba_core::selfprotect::ensure_protected()?;
    let args: Vec<String> = std::env::args().collect();
    let (rootfs, state) = match &args[..] {
        [_, r, s] => (PathBuf::from(r), PathBuf::from(s)),
        _ => return Err("usage: lifecycle ROOTFS STATE_DIR".into()),
    };
    let bundle = rootfs
        .parent()
        .ok_or("the rootfs needs a parent")?
        .to_path_buf();
    let id = format!("lifecycle-{}", std::process::id());

    // Create from a Spec in memory, stdout into our pipe.
    let (mut out, out_w) = pipe()?;
    let mut opts = CreateOptions::new(id.clone(), &bundle);
    opts.root = state;
    opts.spec = Some(spec(&[
        "sh",
        "-c",
        "echo from-init; read line; echo got-$line; exit 3",
    ])?);
    let (in_r, in_w) = nix::unistd::pipe()?;
    opts.stdio.stdin = Some(in_r);
    opts.stdio.stdout = Some(out_w);
    let created = create(&opts)?;
    drop(opts.stdio);
    println!("created: pid {}", created.pid);
    let c = Container::load(&opts.root, &id)?;
    println!("status: {}", c.status());

    // A wait that times out while the init waits for input.
    c.start()?;
    match c.wait(Some(Duration::from_millis(100))) {
        Err(estiba_core::Error::Timeout(_)) => println!("wait-timeout: ok"),
        other => println!("wait-timeout: unexpected {other:?}"),
    }

    // An exec into the running container, its output captured.
    let (mut exec_out, exec_w) = pipe()?;
    let mut process = c.process()?.ok_or("no process")?;
    process.set_args(Some(vec![
        "sh".into(),
        "-c".into(),
        "echo from-exec; exit 7".into(),
    ]));
    let mut eo = ExecOptions::new(process);
    eo.detach = true;
    eo.stdio.stdout = Some(exec_w);
    let ExecOutcome::Detached(handle) = c.exec(&eo)? else {
        return Err("exec did not detach".into());
    };
    drop(eo);
    let status = handle.wait(Some(Duration::from_secs(10)))?;
    let mut text = String::new();
    exec_out.read_to_string(&mut text)?;
    println!("exec: {} {:?}", text.trim(), status.code());

    // Statistics, typed.
    let stats = c.stats()?;
    println!("stats: pids {}", stats.pids.current);

    // Pause and resume.
    c.pause()?;
    println!("paused: {}", c.status());
    c.resume()?;
    println!("resumed: {}", c.status());

    // Feed the init and wait for its exit code (we created it: we are its
    // parent, so the status is known).
    nix::unistd::write(&in_w, b"input\n")?;
    drop(in_w);
    let status = c.wait(Some(Duration::from_secs(10)))?;
    let mut text = String::new();
    out.read_to_string(&mut text)?;
    println!(
        "init: {} {:?}",
        text.split_whitespace().collect::<Vec<_>>().join(","),
        status
    );
    assert!(matches!(status, ExitStatus::Exited(3)));

    // A kill of a stopped container is refused; delete leaves nothing.
    println!("kill-stopped: {}", c.kill(Signal::KILL, false).is_err());
    c.delete(false)?;
    println!("deleted: {}", Container::load(&opts.root, &id).is_err());
    Ok(())
}
