//! Runs `echo` in a container built from busybox-static, captures its
//! output through a pipe, waits for it, and checks both. Only estiba-core
//! and the standard library are used.

use std::io::Read;
use std::time::Duration;

use estiba_core::oci_spec::runtime::Spec;
use estiba_core::{create, Container, CreateOptions, ExitStatus};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    estiba_core::selfprotect::ensure_protected()?;
    let dir = std::env::temp_dir().join(format!("estiba-embedder-{}", std::process::id()));
    let result = run(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    let out = result?;
    if out != "hello from the embedder" {
        return Err(format!("unexpected output {out:?}").into());
    }
    println!("embedder: ok");
    Ok(())
}

fn run(dir: &std::path::Path) -> Result<String, Box<dyn std::error::Error>> {
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin"))?;
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox"))?;
    std::os::unix::fs::symlink("busybox", rootfs.join("bin/echo"))?;
    let mut spec: Spec = estiba_core::serde_json::from_value(estiba_core::default_spec(None))?;
    let mut process = spec.process().clone().ok_or("no process")?;
    process.set_terminal(Some(false));
    process.set_args(Some(vec!["echo".into(), "hello from the embedder".into()]));
    spec.set_process(Some(process));

    let (mut out, out_w) = std::io::pipe()?;
    let mut opts = CreateOptions::new(format!("embedder-{}", std::process::id()), dir);
    opts.root = dir.join("state");
    opts.spec = Some(spec);
    opts.stdio.stdout = Some(out_w.into());
    create(&opts)?;
    drop(opts.stdio);
    let c = Container::load(&opts.root, &format!("embedder-{}", std::process::id()))?;
    c.start()?;
    let status = c.wait(Some(Duration::from_secs(30)))?;
    c.delete(false)?;
    if status != ExitStatus::Exited(0) {
        return Err(format!("the container ended {status:?}").into());
    }
    let mut text = String::new();
    out.read_to_string(&mut text)?;
    Ok(text.trim().to_string())
}
