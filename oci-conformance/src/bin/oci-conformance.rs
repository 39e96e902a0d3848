//! oci-conformance run --runtime PATH [--checker PATH] [--filter TEXT] [--results FILE]
//! oci-conformance table NAME=RESULTS...
//! oci-conformance validation --runtime PATH [--dir DIR] [--ledger FILE] [--column NAME] [--only NAME]

use std::path::PathBuf;
use std::process::ExitCode;

use estiba_oci_conformance::report::{self, Line, Verdict};
use estiba_oci_conformance::{checks, harness, validation};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    match args.first().map(String::as_str) {
        Some("run") => run(
            flag("--runtime"),
            flag("--checker"),
            flag("--filter"),
            flag("--results"),
        ),
        Some("table") => table(&args[1..]),
        Some("validation") => validation(
            flag("--runtime"),
            flag("--dir"),
            flag("--ledger"),
            flag("--column"),
            flag("--only"),
        ),
        _ => {
            eprintln!("usage: oci-conformance run|table|validation ... (see the crate's README)");
            ExitCode::from(2)
        }
    }
}

fn absolute(p: &str) -> PathBuf {
    let p = PathBuf::from(p);
    if p.is_absolute() || !p.to_string_lossy().contains('/') {
        p
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    }
}

fn run(
    runtime: Option<String>,
    checker: Option<String>,
    filter: Option<String>,
    results: Option<String>,
) -> ExitCode {
    let Some(runtime) = runtime else {
        eprintln!("oci-conformance run: --runtime PATH is required");
        return ExitCode::from(2);
    };
    if !nix::unistd::geteuid().is_root() {
        println!("skipped: the conformance suite needs root");
        return ExitCode::SUCCESS;
    }
    let checker = checker.map(|c| absolute(&c)).unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(|d| d.join("oci-checker")))
            .unwrap_or_default()
    });
    if !checker.exists() {
        eprintln!(
            "oci-conformance: checker {} not found (build the oci-checker binary)",
            checker.display()
        );
        return ExitCode::from(2);
    }
    if needs_loader(&checker) {
        eprintln!(
            "oci-conformance: {} is dynamically linked; the rootfs holds only the checker (build it with -C target-feature=+crt-static)",
            checker.display()
        );
        return ExitCode::from(2);
    }
    let ctx = match harness::Ctx::new(absolute(&runtime), checker) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("oci-conformance: work dir: {e}");
            return ExitCode::from(2);
        }
    };
    let all: Vec<_> = checks::all()
        .into_iter()
        // --filter "a|b": checks whose name contains a or b.
        .filter(|c| {
            filter
                .as_deref()
                .is_none_or(|f| f.split('|').any(|p| c.name.contains(p)))
        })
        .collect();
    println!("TAP version 13\n1..{}", all.len());
    let mut lines = vec![];
    for (i, c) in all.iter().enumerate() {
        let line = Line::from_outcome(c.name, (c.run)(&ctx));
        println!("{}", line.tap(i + 1));
        lines.push(line);
    }
    // Whatever a check could not clean up is a failure of the run.
    let left = ctx.run(&["list", "-q"]);
    let leftovers = String::from_utf8_lossy(&left.stdout).trim().to_string();
    if !leftovers.is_empty() {
        println!("# containers left behind: {leftovers}");
        for id in leftovers.lines() {
            let _ = ctx.run(&["delete", "--force", id]);
        }
    }
    if let Some(path) = results {
        let text: String = lines.iter().map(|l| l.tsv() + "\n").collect();
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("oci-conformance: {path}: {e}");
        }
    }
    println!("{}", report::summary(&lines));
    if lines.iter().any(|l| l.verdict == Verdict::Fail) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn table(specs: &[String]) -> ExitCode {
    let mut columns = vec![];
    for s in specs {
        let Some((name, path)) = s.split_once('=') else {
            eprintln!("oci-conformance table: expected NAME=RESULTS, got {s:?}");
            return ExitCode::from(2);
        };
        let text = std::fs::read_to_string(path).unwrap_or_default();
        columns.push((
            name.to_string(),
            text.lines().filter_map(Line::from_tsv).collect(),
        ));
    }
    print!("{}", report::table(&columns));
    ExitCode::SUCCESS
}

fn validation(
    runtime: Option<String>,
    dir: Option<String>,
    ledger: Option<String>,
    column: Option<String>,
    only: Option<String>,
) -> ExitCode {
    let Some(dir) = dir.or_else(|| std::env::var("OCI_VALIDATION_DIR").ok()) else {
        println!("skipped: runtime-tools validation (OCI_VALIDATION_DIR is not set)");
        return ExitCode::SUCCESS;
    };
    let Some(runtime) = runtime else {
        eprintln!("oci-conformance validation: --runtime PATH is required");
        return ExitCode::from(2);
    };
    let dir = PathBuf::from(dir);
    let runtime = absolute(&runtime);
    let programs: Vec<_> = validation::programs(&dir)
        .into_iter()
        .filter(|p| {
            only.as_deref()
                .is_none_or(|o| p.to_string_lossy().contains(o))
        })
        .collect();
    if programs.is_empty() {
        eprintln!(
            "oci-conformance: no validation/*/*.t programs under {}",
            dir.display()
        );
        return ExitCode::from(2);
    }
    let mut results = vec![];
    for p in &programs {
        let r = validation::run_program(&dir, p, &runtime);
        println!(
            "{:36} {}  ok={} not_ok={} skip={} exit={}  {}",
            r.name,
            if r.passed { "pass" } else { "FAIL" },
            r.ok,
            r.not_ok,
            r.skipped,
            r.exit,
            r.failing.join(" | ")
        );
        if !r.left_behind.is_empty() {
            println!(
                "    left behind (deleted by the runner): {}",
                r.left_behind.join(" ")
            );
        }
        results.push(r);
    }
    let passed = results.iter().filter(|r| r.passed).count();
    println!(
        "validation: {passed} passed, {} failed of {}",
        results.len() - passed,
        results.len()
    );
    let Some(ledger) = ledger else {
        return ExitCode::SUCCESS;
    };
    let ledger = validation::Ledger::parse(&std::fs::read_to_string(&ledger).unwrap_or_default());
    let column = column.unwrap_or_else(|| "estiba".into());
    let (worse, better) = validation::compare(&results, &ledger, &column);
    for b in &better {
        println!("validation: {b} now passes (the ledger says fail: update it)");
    }
    for w in &worse {
        println!("validation: REGRESSION {w}");
    }
    if worse.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Whether an ELF64 file asks for a program interpreter (PT_INTERP).
fn needs_loader(path: &std::path::Path) -> bool {
    let Ok(b) = std::fs::read(path) else {
        return true;
    };
    let u16_at = |o: usize| {
        b.get(o..o + 2)
            .map(|s| u16::from_le_bytes([s[0], s[1]]) as usize)
    };
    let u64_at = |o: usize| {
        b.get(o..o + 8)
            .and_then(|s| s.try_into().ok())
            .map(|a: [u8; 8]| u64::from_le_bytes(a) as usize)
    };
    let (Some(phoff), Some(size), Some(num)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38)) else {
        return true;
    };
    (0..num).any(|i| b.get(phoff + i * size..phoff + i * size + 4) == Some(&[3, 0, 0, 0][..]))
}
