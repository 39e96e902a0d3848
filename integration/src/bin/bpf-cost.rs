//! `bpf-cost`: what installed seccomp filters cost per syscall, counted,
//! not timed. Each NAME=DIR holds one runtime's filters as `probe
//! filter-dump` wrote them (filter-0.bpf newest); every filter of a stack
//! runs on each syscall, so their instruction counts add up.
//!
//!   bpf-cost [--max-nr N] [--call NR[:ARG0]]... NAME=DIR...
//!
//! For x86_64 syscall numbers 0..=N (default 460) it prints, per runtime,
//! how many the kernel's action cache answers without running the filter,
//! and for the rest the instructions executed (mean, max and the syscall of
//! the max); then the same for each --call.

use std::process::ExitCode;

use estiba_integration::bpfeval::{kernel_caches, parse, run, Call, Insn};

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;

struct Runtime {
    name: String,
    filters: Vec<Vec<Insn>>,
}

impl Runtime {
    fn load(spec: &str) -> Result<Self, String> {
        let (name, dir) = spec
            .split_once('=')
            .ok_or_else(|| format!("{spec}: expected NAME=DIR"))?;
        let mut filters = vec![];
        for k in 0.. {
            let path = format!("{dir}/filter-{k}.bpf");
            match std::fs::read(&path) {
                Ok(b) => filters.push(parse(&b).map_err(|e| format!("{path}: {e}"))?),
                Err(_) if k > 0 => break,
                Err(e) => return Err(format!("{path}: {e}")),
            }
        }
        Ok(Runtime {
            name: name.to_string(),
            filters,
        })
    }

    /// None when the kernel's cache answers; else the instructions executed.
    fn cost(&self, call: &Call) -> Result<Option<usize>, String> {
        if self
            .filters
            .iter()
            .all(|f| kernel_caches(f, call.nr, call.arch))
        {
            return Ok(None);
        }
        let mut total = 0;
        for f in &self.filters {
            total += run(f, call)?.1;
        }
        Ok(Some(total))
    }
}

fn number(s: &str) -> Result<u64, String> {
    let r = match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|e| format!("{s}: {e}"))
}

fn main() -> ExitCode {
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bpf-cost: {e}");
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let mut max_nr = 460u32;
    let mut calls = vec![];
    let mut runtimes = vec![];
    while let Some(a) = args.next() {
        match a.as_str() {
            "--max-nr" => {
                max_nr = number(&args.next().ok_or("--max-nr needs a value")?)? as u32;
            }
            "--call" => {
                let c = args.next().ok_or("--call needs NR[:ARG0]")?;
                let (nr, arg) = c.split_once(':').unwrap_or((&c, "0"));
                calls.push(Call {
                    nr: number(nr)? as u32,
                    arch: AUDIT_ARCH_X86_64,
                    args: [number(arg)?, 0, 0, 0, 0, 0],
                });
            }
            _ => runtimes.push(Runtime::load(&a)?),
        }
    }
    if runtimes.is_empty() {
        return Err("usage: bpf-cost [--max-nr N] [--call NR[:ARG0]]... NAME=DIR...".into());
    }
    println!(
        "x86_64 syscalls 0..={max_nr}, arguments 0: instructions the installed filters execute"
    );
    println!(
        "{:<8} {:>8} {:>14} {:>8} {:>8} {:>14}",
        "runtime", "filters", "kernel-cached", "mean", "max", "max at syscall"
    );
    for r in &runtimes {
        let (mut cached, mut sum, mut n, mut max, mut max_nr_at) = (0, 0, 0, 0, 0);
        for nr in 0..=max_nr {
            let call = Call {
                nr,
                arch: AUDIT_ARCH_X86_64,
                args: [0; 6],
            };
            match r.cost(&call)? {
                None => cached += 1,
                Some(c) => {
                    sum += c;
                    n += 1;
                    if c > max {
                        (max, max_nr_at) = (c, nr);
                    }
                }
            }
        }
        let mean = if n > 0 { sum as f64 / n as f64 } else { 0.0 };
        println!(
            "{:<8} {:>8} {:>14} {:>8.1} {:>8} {:>14}",
            r.name,
            r.filters.len(),
            cached,
            mean,
            max,
            max_nr_at
        );
    }
    for call in &calls {
        print!("syscall {} (arg0 {:#x}):", call.nr, call.args[0]);
        for r in &runtimes {
            match r.cost(call)? {
                None => print!("  {} kernel-cached", r.name),
                Some(c) => print!("  {} {c}", r.name),
            }
        }
        println!();
    }
    Ok(())
}
