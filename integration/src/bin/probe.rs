//! `probe`: runs inside test containers to make syscalls busybox cannot.
//!
//!   probe sys NR [ARG...]        syscall NR; prints "ok RET" or "errno N"
//!   probe int80 NR [ARG...]      the same through the 32-bit `int 0x80` entry
//!   probe loop N [NR [ARG...]]   N calls of NR (default getppid); prints ns per call
//!   probe filter-len PID         (on the host) instructions of PID's seccomp filter

fn num(s: &str) -> u64 {
    if let Some(h) = s.strip_prefix("0x") {
        u64::from_str_radix(h, 16).unwrap_or(0)
    } else {
        s.parse().unwrap_or(0)
    }
}

fn report(ret: i64) {
    if ret < 0 && ret > -4096 {
        println!("errno {}", -ret);
    } else {
        println!("ok {ret}");
    }
}

fn syscall6(nr: u64, a: &[u64; 6]) -> i64 {
    // SAFETY: the test asks for arbitrary syscalls on purpose; arguments
    // are plain integers (no pointers are passed by the tests).
    let r = unsafe { libc::syscall(nr as libc::c_long, a[0], a[1], a[2], a[3], a[4], a[5]) };
    if r == -1 {
        -(std::io::Error::last_os_error().raw_os_error().unwrap_or(0) as i64)
    } else {
        r as i64
    }
}

#[cfg(target_arch = "x86_64")]
fn int80(nr: u64, a: &[u64; 6]) -> i64 {
    let mut ret = nr as i64;
    // SAFETY: `int 0x80` enters the kernel's 32-bit syscall path with the
    // ia32 register convention; only integer arguments are passed.
    unsafe {
        std::arch::asm!(
            "push rbx", "mov ebx, {a0:e}", "int 0x80", "pop rbx",
            a0 = in(reg) a[0] as u32,
            inout("eax") ret,
            in("ecx") a[1] as u32, in("edx") a[2] as u32,
            in("esi") a[3] as u32, in("edi") a[4] as u32,
        );
    }
    (ret as i32) as i64
}

#[cfg(not(target_arch = "x86_64"))]
fn int80(_nr: u64, _a: &[u64; 6]) -> i64 {
    -(libc::ENOSYS as i64)
}

fn filter_len(pid: i32) -> i64 {
    // SAFETY: ptrace with plain integer arguments on a pid we seize and
    // release; PTRACE_SECCOMP_GET_FILTER with a NULL buffer returns the
    // instruction count.
    unsafe {
        if libc::ptrace(libc::PTRACE_SEIZE, pid, 0, 0) != 0 {
            return -(std::io::Error::last_os_error().raw_os_error().unwrap_or(0) as i64);
        }
        libc::ptrace(libc::PTRACE_INTERRUPT, pid, 0, 0);
        let mut status = 0;
        libc::waitpid(pid, &mut status, libc::__WALL);
        let n = libc::ptrace(
            0x420c, /* PTRACE_SECCOMP_GET_FILTER */
            pid,
            0,
            std::ptr::null_mut::<libc::c_void>(),
        );
        let err = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        libc::ptrace(libc::PTRACE_DETACH, pid, 0, 0);
        if n < 0 {
            -(err as i64)
        } else {
            n as i64
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut a = [0u64; 6];
    for (i, v) in args.iter().skip(3).take(6).enumerate() {
        a[i] = num(v);
    }
    match args.get(1).map(String::as_str) {
        Some("sys") => report(syscall6(num(&args[2]), &a)),
        Some("int80") => report(int80(num(&args[2]), &a)),
        Some("loop") => {
            let n = num(&args[2]).max(1);
            let nr = args
                .get(3)
                .map(|s| num(s))
                .unwrap_or(libc::SYS_getppid as u64);
            let mut a = [0u64; 6];
            for (i, v) in args.iter().skip(4).take(6).enumerate() {
                a[i] = num(v);
            }
            let t = std::time::Instant::now();
            for _ in 0..n {
                syscall6(nr, &a);
            }
            println!("{:.2}", t.elapsed().as_nanos() as f64 / n as f64);
        }
        Some("filter-len") => report(filter_len(num(&args[2]) as i32)),
        _ => {
            eprintln!("usage: probe sys|int80 NR [ARG...] | loop N | filter-len PID");
            std::process::exit(2);
        }
    }
}
