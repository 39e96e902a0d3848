//! `probe`: runs inside test containers to make syscalls busybox cannot.
//!
//!   probe sys NR [ARG...]        syscall NR; prints "ok RET" or "errno N"
//!   probe int80 NR [ARG...]      the same through the 32-bit `int 0x80` entry
//!   probe loop N [NR [ARG...]]   N calls of NR (default getppid), in 20 rounds;
//!                                prints ns per call of the fastest round
//!   probe loop-under DIR N [NR [ARG...]]  the same, before and after
//!                                installing the filters filter-dump wrote to
//!                                DIR ("-": none); prints both
//!   probe filter-flags PID       (on the host) the flags the kernel keeps for
//!                                PID's newest filter (PTRACE_SECCOMP_GET_METADATA)
//!   probe filter-dump PID DIR    (on the host) PID's seccomp filters, newest
//!                                first, to DIR/filter-K.bpf; prints their lengths
//!   probe with-lock PATH CMD...  CMD with an exclusive flock on PATH held (its
//!                                descriptor inherited)
//!   probe with-dgram PATH CMD... CMD with fd 3 a unix datagram socket connected
//!                                to PATH

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

/// PTRACE_SECCOMP_GET_FILTER: filter `index` (0 = newest) of a seized,
/// stopped tracee, or its length when `buf` is None; -errno on failure.
fn get_filter(pid: i32, index: usize, buf: Option<&mut [libc::sock_filter]>) -> i64 {
    let ptr = buf.map_or(std::ptr::null_mut(), |b| {
        b.as_mut_ptr().cast::<libc::c_void>()
    });
    // SAFETY: the buffer, when given, holds as many instructions as the
    // kernel said the filter has.
    let n = unsafe { libc::ptrace(0x420c, pid, index, ptr) };
    if n < 0 {
        -(std::io::Error::last_os_error().raw_os_error().unwrap_or(0) as i64)
    } else {
        n as i64
    }
}

/// Attaches to `pid` and stops it, for the PTRACE_SECCOMP_* requests;
/// the caller detaches.
fn seize_and_stop(pid: i32) -> Result<(), String> {
    // SAFETY: ptrace and waitpid with plain integer arguments.
    unsafe {
        if libc::ptrace(libc::PTRACE_SEIZE, pid, 0, 0) != 0 {
            return Err(format!("seize {pid}: {}", std::io::Error::last_os_error()));
        }
        libc::ptrace(libc::PTRACE_INTERRUPT, pid, 0, 0);
        let mut status = 0;
        libc::waitpid(pid, &mut status, libc::__WALL);
    }
    Ok(())
}

/// The flags of `pid`'s newest filter (the kernel keeps SECCOMP_FILTER_FLAG_LOG).
fn filter_flags(pid: i32) -> Result<u64, String> {
    #[repr(C)]
    struct Metadata {
        filter_off: u64,
        flags: u64,
    }
    let mut md = Metadata {
        filter_off: 0,
        flags: 0,
    };
    seize_and_stop(pid)?;
    // SAFETY: the metadata call writes at most size_of::<Metadata>() bytes
    // into md; the tracee is released after.
    unsafe {
        let r = libc::ptrace(
            0x420d, /* PTRACE_SECCOMP_GET_METADATA */
            pid,
            std::mem::size_of::<Metadata>(),
            &mut md as *mut Metadata,
        );
        let err = std::io::Error::last_os_error();
        libc::ptrace(libc::PTRACE_DETACH, pid, 0, 0);
        if r < 0 {
            return Err(format!("metadata of {pid}: {err}"));
        }
    }
    Ok(md.flags)
}

/// Writes every seccomp filter of `pid` to `dir`; their lengths, newest first.
fn filter_dump(pid: i32, dir: &str) -> Result<Vec<usize>, String> {
    seize_and_stop(pid)?;
    let mut lens = vec![];
    let mut result = Ok(());
    for index in 0.. {
        let n = get_filter(pid, index, None);
        if n < 0 {
            if n != -(libc::ENOENT as i64) || index == 0 {
                result = Err(format!("filter {index} of {pid}: errno {}", -n));
            }
            break;
        }
        let mut prog = vec![
            libc::sock_filter {
                code: 0,
                jt: 0,
                jf: 0,
                k: 0
            };
            n as usize
        ];
        if get_filter(pid, index, Some(&mut prog)) != n {
            result = Err(format!("filter {index} of {pid} changed length"));
            break;
        }
        let bytes: Vec<u8> = prog
            .iter()
            .flat_map(|i| {
                let mut b = i.code.to_le_bytes().to_vec();
                b.extend([i.jt, i.jf]);
                b.extend(i.k.to_le_bytes());
                b
            })
            .collect();
        if let Err(e) = std::fs::write(format!("{dir}/filter-{index}.bpf"), bytes) {
            result = Err(format!("write {dir}: {e}"));
            break;
        }
        lens.push(n as usize);
    }
    // SAFETY: as above.
    unsafe { libc::ptrace(libc::PTRACE_DETACH, pid, 0, 0) };
    result.map(|()| lens)
}

/// N [NR [ARG...]] of the loop commands.
fn loop_args(args: &[String]) -> (u64, u64, [u64; 6]) {
    let n = args.first().map_or(1, |s| num(s)).max(1);
    let nr = args
        .get(1)
        .map(|s| num(s))
        .unwrap_or(libc::SYS_getppid as u64);
    let mut a = [0u64; 6];
    for (i, v) in args.iter().skip(2).take(6).enumerate() {
        a[i] = num(v);
    }
    (n, nr, a)
}

/// ns per call of the fastest of 20 rounds of n/20 calls: what the call
/// costs when nothing else (an interrupt, the other tenant of the core) got in.
fn loop_ns(n: u64, nr: u64, a: &[u64; 6]) -> f64 {
    let per_round = (n / 20).max(1);
    let mut best = f64::MAX;
    for _ in 0..20 {
        let t = std::time::Instant::now();
        for _ in 0..per_round {
            syscall6(nr, a);
        }
        best = best.min(t.elapsed().as_nanos() as f64 / per_round as f64);
    }
    best
}

/// Installs the filters `filter-dump` wrote to `dir`, oldest first, so this
/// process runs the same stack the dumped one did ("-": none).
fn install_dumped(dir: &str) -> Result<(), String> {
    if dir == "-" {
        return Ok(());
    }
    let mut progs = vec![];
    for k in 0.. {
        match std::fs::read(format!("{dir}/filter-{k}.bpf")) {
            Ok(b) => progs.push(b),
            Err(_) if k > 0 => break,
            Err(e) => return Err(format!("{dir}/filter-{k}.bpf: {e}")),
        }
    }
    // SAFETY: plain integer prctl.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(format!("no_new_privs: {}", std::io::Error::last_os_error()));
    }
    for bytes in progs.iter().rev() {
        let mut insns: Vec<libc::sock_filter> = bytes
            .chunks_exact(8)
            .map(|c| libc::sock_filter {
                code: u16::from_le_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect();
        let prog = libc::sock_fprog {
            len: insns.len() as u16,
            filter: insns.as_mut_ptr(),
        };
        // SAFETY: prog points at insns, alive for the call; the kernel
        // copies the program.
        let r = unsafe { libc::syscall(libc::SYS_seccomp, 1, 0, &prog as *const libc::sock_fprog) };
        if r != 0 {
            return Err(format!(
                "install {dir}: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

/// Runs `cmd` with `fd` (opened by the caller) at number `at`, inherited.
fn exec_with(fd: std::os::fd::OwnedFd, at: i32, cmd: &[String]) -> String {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    // SAFETY: dup2 onto a number this process does not otherwise use (or
    // the descriptor's own), then CLOEXEC cleared there, so CMD inherits it.
    let placed = unsafe {
        (fd.as_raw_fd() == at || libc::dup2(fd.as_raw_fd(), at) == at)
            && libc::fcntl(at, libc::F_SETFD, 0) == 0
    };
    if !placed {
        return format!("fd {at}: {}", std::io::Error::last_os_error());
    }
    let Some((prog, rest)) = cmd.split_first() else {
        return "no command".into();
    };
    std::process::Command::new(prog)
        .args(rest)
        .exec()
        .to_string()
}

fn with_lock(path: &str, cmd: &[String]) -> String {
    use std::os::fd::AsRawFd;
    let f = match std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
    {
        Ok(f) => f,
        Err(e) => return format!("open {path}: {e}"),
    };
    // SAFETY: flock on a descriptor this process owns.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return format!("flock {path}: {}", std::io::Error::last_os_error());
    }
    exec_with(f.into(), 9, cmd)
}

fn with_dgram(path: &str, cmd: &[String]) -> String {
    let s = std::os::unix::net::UnixDatagram::unbound().and_then(|s| s.connect(path).map(|()| s));
    match s {
        Ok(s) => exec_with(s.into(), 3, cmd),
        Err(e) => format!("connect {path}: {e}"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let (Some(kind @ ("with-lock" | "with-dgram")), Some(path)) =
        (args.get(1).map(String::as_str), args.get(2))
    {
        let cmd = args.get(3..).unwrap_or_default();
        let err = if kind == "with-lock" {
            with_lock(path, cmd)
        } else {
            with_dgram(path, cmd)
        };
        eprintln!("probe {kind}: {err}");
        std::process::exit(1);
    }
    let mut a = [0u64; 6];
    for (i, v) in args.iter().skip(3).take(6).enumerate() {
        a[i] = num(v);
    }
    match args.get(1).map(String::as_str) {
        Some("sys") => report(syscall6(num(&args[2]), &a)),
        Some("int80") => report(int80(num(&args[2]), &a)),
        Some("loop") => {
            let (n, nr, a) = loop_args(&args[2..]);
            println!("{:.2}", loop_ns(n, nr, &a));
        }
        Some("loop-under") => {
            // Before and after, in one process: syscall cost varies more
            // between processes here than a filter costs.
            let (n, nr, a) = loop_args(args.get(3..).unwrap_or_default());
            let before = loop_ns(n, nr, &a);
            if let Err(e) = install_dumped(args.get(2).map_or("", String::as_str)) {
                eprintln!("probe: {e}");
                std::process::exit(1);
            }
            println!("{:.2} {:.2}", before, loop_ns(n, nr, &a));
        }
        Some("filter-flags") => match filter_flags(args.get(2).map_or(0, |p| num(p)) as i32) {
            Ok(flags) => println!("{flags}"),
            Err(e) => {
                eprintln!("probe: {e}");
                std::process::exit(1);
            }
        },
        Some("filter-dump") => match filter_dump(
            args.get(2).map_or(0, |p| num(p)) as i32,
            args.get(3).map_or(".", String::as_str),
        ) {
            Ok(lens) => println!("{lens:?}"),
            Err(e) => {
                eprintln!("probe: {e}");
                std::process::exit(1);
            }
        },
        _ => {
            eprintln!(
                "usage: probe sys|int80 NR [ARG...] | loop N [NR [ARG...]] | filter-dump PID DIR"
            );
            std::process::exit(2);
        }
    }
}
