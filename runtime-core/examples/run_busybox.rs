//! Runs a container through the library, no CLI involved: builds a bundle
//! from busybox-static in a temporary directory, creates the container,
//! starts it, waits for its exit code, and deletes it.
//!
//! `cargo run -p estiba-core --example run_busybox` (as root)

use std::path::Path;

use estiba_core::{create, Container, CreateOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A program that starts containers runs from an executable they cannot
    // write to (CVE-2019-5736): this re-executes it that way, once.
    estiba_core::selfprotect::ensure_protected()?;
    let dir = std::env::temp_dir().join(format!("estiba-example-{}", std::process::id()));
    let result = run(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    let code = result?;
    println!("container exited with {code}");
    if code != 0 {
        return Err(format!("unexpected exit code {code}").into());
    }
    Ok(())
}

fn run(dir: &Path) -> Result<i32, Box<dyn std::error::Error>> {
    let rootfs = dir.join("bundle/rootfs");
    std::fs::create_dir_all(rootfs.join("bin"))?;
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox"))?;
    std::os::unix::fs::symlink("busybox", rootfs.join("bin/sh"))?;
    std::os::unix::fs::symlink("busybox", rootfs.join("bin/hostname"))?;

    // The default spec, with our program and no terminal; the library
    // takes the same oci_spec::runtime::Spec a bundle's config.json holds.
    let mut spec: estiba_core::oci_spec::runtime::Spec =
        serde_json::from_value(estiba_core::default_spec(None))?;
    let mut process = spec.process().clone().ok_or("default spec has a process")?;
    process.set_terminal(Some(false));
    process.set_args(Some(vec![
        "sh".into(),
        "-c".into(),
        "echo hello from $(hostname), pid $$".into(),
    ]));
    spec.set_process(Some(process));
    std::fs::write(dir.join("bundle/config.json"), serde_json::to_vec(&spec)?)?;

    let mut opts = CreateOptions::new(
        format!("example-{}", std::process::id()),
        dir.join("bundle"),
    );
    opts.root = dir.join("state");

    // Step by step: create (the init waits), start, wait, delete.
    let created = create(&opts)?;
    println!("created {} with init pid {}", created.id, created.pid);
    let c = Container::load(&opts.root, &created.id)?;
    c.start()?;
    // We created it, so we are its parent: the exit status is ours to see.
    let status = c.wait(Some(std::time::Duration::from_secs(30)))?;
    c.delete(false)?;
    Ok(status.code().unwrap_or(-1))
}
