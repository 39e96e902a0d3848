//! A multi-threaded program using the library: while other threads keep
//! allocating and printing, the main thread runs containers and execs into
//! them, and its own child processes (std::process::Command) still work:
//! the library reaps nothing of the caller's and changes no process-wide
//! setting. Prints `ok N` after N rounds.
//!
//! `cargo run -p estiba-core --example threaded -- ROOTFS STATE_DIR ROUNDS`

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use estiba_core::oci_spec::runtime::Spec;
use estiba_core::{create, Container, CreateOptions, ExecOptions, ExecOutcome, ExitStatus};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn spec() -> Res<Spec> {
    let mut spec: Spec = serde_json::from_value(estiba_core::default_spec(None))?;
    let mut process = spec
        .process()
        .clone()
        .ok_or("the default spec has a process")?;
    process.set_terminal(Some(false));
    process.set_args(Some(vec!["sleep".into(), "100".into()]));
    spec.set_process(Some(process));
    Ok(spec)
}

fn main() -> Res<()> {
    estiba_core::selfprotect::ensure_protected()?;
    let args: Vec<String> = std::env::args().collect();
    let [_, rootfs, state, rounds] = &args[..] else {
        return Err("usage: threaded ROOTFS STATE_DIR ROUNDS".into());
    };
    let rounds: u32 = rounds.parse()?;
    let bundle = PathBuf::from(rootfs)
        .parent()
        .ok_or("no parent")?
        .to_path_buf();
    let stop = Arc::new(AtomicBool::new(false));
    let noisy: Vec<_> = (0..4)
        .map(|t| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let v: Vec<String> = (0..64).map(|i| format!("{t}-{i}-{n}")).collect();
                    n += v.len() as u64;
                    if n & 4095 == 0 {
                        eprintln!("thread {t}: {n}");
                    }
                    std::env::var("PATH").ok();
                }
            })
        })
        .collect();
    // A child of our own, started before: it must still be ours to wait.
    let mut own = std::process::Command::new("sleep").arg("0.2").spawn()?;
    let mask_before = std::fs::read_to_string("/proc/thread-self/status")?
        .lines()
        .find(|l| l.starts_with("SigBlk:"))
        .map(str::to_string);
    for round in 0..rounds {
        let id = format!("threaded-{}-{round}", std::process::id());
        let mut opts = CreateOptions::new(id.clone(), &bundle);
        opts.root = PathBuf::from(state);
        opts.spec = Some(spec()?);
        create(&opts)?;
        let c = Container::load(&opts.root, &id)?;
        c.start()?;
        let mut p = c.process()?.ok_or("no process")?;
        p.set_args(Some(vec![
            "sh".into(),
            "-c".into(),
            format!("exit {}", round % 5),
        ]));
        let mut eo = ExecOptions::new(p);
        eo.detach = true;
        let ExecOutcome::Detached(h) = c.exec(&eo)? else {
            return Err("exec did not detach".into());
        };
        let st = h.wait(Some(Duration::from_secs(10)))?;
        if st != ExitStatus::Exited((round % 5) as i32) {
            return Err(format!("round {round}: exec ended {st:?}").into());
        }
        // In the foreground too: only its own pid is waited for (our
        // `sleep` child stays ours), and no signal setting changes.
        let mut p = c.process()?.ok_or("no process")?;
        p.set_args(Some(vec!["true".into()]));
        match c.exec(&ExecOptions::new(p))? {
            ExecOutcome::Exited(0) => {}
            other => return Err(format!("round {round}: foreground exec {other:?}").into()),
        }
        c.kill(estiba_core::Signal::KILL, false)?;
        let st = c.wait(Some(Duration::from_secs(10)))?;
        if st != ExitStatus::Signaled(9) {
            return Err(format!("round {round}: init ended {st:?}").into());
        }
        c.delete(false)?;
    }
    let own_status = own.wait()?;
    let mask_after = std::fs::read_to_string("/proc/thread-self/status")?
        .lines()
        .find(|l| l.starts_with("SigBlk:"))
        .map(str::to_string);
    if mask_before != mask_after {
        return Err(format!("the signal mask changed: {mask_before:?} -> {mask_after:?}").into());
    }
    // Not a subreaper either.
    let mut sub: libc::c_int = 0;
    // SAFETY: PR_GET_CHILD_SUBREAPER writes an int through the pointer.
    unsafe { libc::prctl(libc::PR_GET_CHILD_SUBREAPER, &mut sub as *mut libc::c_int) };
    if sub != 0 {
        return Err("the library made this process a subreaper".into());
    }
    stop.store(true, Ordering::Relaxed);
    for t in noisy {
        let _ = t.join();
    }
    if !own_status.success() {
        return Err("our own child was taken".into());
    }
    println!("ok {rounds}");
    Ok(())
}
