//! Static builds (the release binary, `integration/build-release.sh`):
//! - pack their relative relocations (DT_RELR, which glibc 2.36 applies in a
//!   static-pie): 80 KB less binary and fewer entries to apply at each start;
//! - place the functions the lifecycle commands run first in the text, in
//!   the order of `hot-functions.txt` (made by
//!   `integration/bench/hot-functions.py`): the kernel maps text 64 KB
//!   around each fault, so scattered hot code kept most of the binary
//!   resident. Names the build no longer has are skipped. The flag is
//!   lld's, the linker Rust uses for x86_64-unknown-linux-gnu.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=hot-functions.txt");
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let features = var("CARGO_CFG_TARGET_FEATURE");
    if var("CARGO_CFG_TARGET_OS") != "linux" || !features.split(',').any(|f| f == "crt-static") {
        return;
    }
    println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    if var("CARGO_CFG_TARGET_ARCH") == "x86_64" && var("CARGO_CFG_TARGET_ENV") == "gnu" {
        let list = std::path::Path::new(&var("CARGO_MANIFEST_DIR")).join("hot-functions.txt");
        if list.exists() {
            println!(
                "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
                list.display()
            );
            println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
        }
    }
}
