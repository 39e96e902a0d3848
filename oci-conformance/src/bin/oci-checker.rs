//! The conformance suite's eyes inside a container (and in hooks). Static,
//! no files needed besides itself. Modes:
//!
//! - `report [ITEM...]`: one JSON object on stdout describing this process
//!   (ids, capabilities, limits, namespaces, mounts, fds, ...) plus one entry
//!   per ITEM: `stat:PATH`, `read:PATH`, `write:PATH`, `getcwd`.
//! - `wait-signal`: prints `{"signal":N}` for the first signal it gets.
//! - `sleep SECS`.
//! - `hook LOG [EXIT [SLEEP]]`: an OCI hook; appends what it saw (argv, env,
//!   state from stdin, its namespaces, the container process) to LOG as one
//!   JSON line, then exits with EXIT.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use serde_json::{json, Value};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("report");
    let code = match mode {
        "report" => {
            let items = args.iter().skip(2).map(|a| (a.clone(), item(a))).collect();
            println!("{}", report(items));
            0
        }
        "wait-signal" => {
            println!("{}", json!({ "signal": sys::wait_signal() }));
            0
        }
        "sleep" => {
            let secs = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(3600);
            std::thread::sleep(std::time::Duration::from_secs(secs));
            0
        }
        "hook" => hook(&args[2..]),
        other => {
            eprintln!("oci-checker: unknown mode {other:?}");
            2
        }
    };
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}

fn report(items: BTreeMap<String, Value>) -> Value {
    let status: BTreeMap<String, String> = read("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect();
    let uts = sys::uname();
    json!({
        "pid": std::process::id(),
        "argv": std::env::args().collect::<Vec<_>>(),
        "env": std::env::vars_os().map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy())).collect::<Vec<_>>(),
        "cwd": std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_default(),
        "status": status,
        "hostname": uts.0,
        "domainname": uts.1,
        "machine": uts.2,
        "rlimits": sys::rlimits(),
        "oom_score_adj": read("/proc/self/oom_score_adj").map(|s| s.trim().to_string()),
        "ns": namespaces("self"),
        "mountinfo": read("/proc/self/mountinfo").unwrap_or_default().lines().collect::<Vec<_>>(),
        "fds": open_fds(),
        "isatty": [sys::isatty(0), sys::isatty(1), sys::isatty(2)],
        "winsize": sys::winsize(0),
        "uid_map": read("/proc/self/uid_map"),
        "gid_map": read("/proc/self/gid_map"),
        "timens_offsets": read("/proc/self/timens_offsets"),
        "cgroup": read("/proc/self/cgroup"),
        "personality": sys::personality(),
        "ioprio": sys::ioprio(),
        "sched_policy": sys::sched_policy(),
        "nice": sys::nice(),
        "affinity": sys::affinity(),
        "items": items,
    })
}

fn read(path: &str) -> Option<String> {
    std::fs::read(path)
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn errno(e: &std::io::Error) -> Value {
    json!({ "errno": e.raw_os_error().unwrap_or(0), "error": e.to_string() })
}

fn item(spec: &str) -> Value {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let (what, path) = spec.split_once(':').unwrap_or((spec, ""));
    match what {
        "stat" => match std::fs::symlink_metadata(path) {
            Ok(m) => {
                let t = m.file_type();
                let kind = if t.is_symlink() {
                    "symlink"
                } else if t.is_char_device() {
                    "char"
                } else if t.is_block_device() {
                    "block"
                } else if t.is_fifo() {
                    "fifo"
                } else if t.is_dir() {
                    "dir"
                } else {
                    "file"
                };
                json!({
                    "type": kind,
                    "mode": m.mode() & 0o7777,
                    "uid": m.uid(),
                    "gid": m.gid(),
                    "major": sys::major(m.rdev()),
                    "minor": sys::minor(m.rdev()),
                    "target": std::fs::read_link(path).ok().map(|p| p.display().to_string()),
                })
            }
            Err(e) => errno(&e),
        },
        "read" => match std::fs::read(path) {
            Ok(b) => json!({ "content": String::from_utf8_lossy(&b[..b.len().min(4096)]) }),
            Err(e) => errno(&e),
        },
        "write" => match std::fs::write(path, b"written by oci-checker\n") {
            Ok(()) => json!({ "ok": true }),
            Err(e) => errno(&e),
        },
        "getcwd" => match sys::getcwd() {
            Ok(()) => json!({ "ok": true }),
            Err(e) => errno(&e),
        },
        _ => json!({ "error": "unknown item" }),
    }
}

fn namespaces(pid: &str) -> BTreeMap<String, String> {
    ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"]
        .iter()
        .filter_map(|n| {
            std::fs::read_link(format!("/proc/{pid}/ns/{n}"))
                .ok()
                .map(|l| (n.to_string(), l.display().to_string()))
        })
        .collect()
}

/// Open descriptors, leaving out the one reading /proc/self/fd.
fn open_fds() -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return vec![];
    };
    let mut fds: Vec<i32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| {
            std::fs::read_link(format!("/proc/self/fd/{fd}")).is_ok_and(|t| {
                !t.to_string_lossy()
                    .starts_with(&format!("/proc/{}/fd", std::process::id()))
            })
        })
        .collect();
    fds.sort();
    fds
}

fn hook(args: &[String]) -> i32 {
    let log = args.first().cloned().unwrap_or_default();
    let exit: i32 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    if let Some(secs) = args.get(2).and_then(|s| s.parse().ok()) {
        std::thread::sleep(std::time::Duration::from_secs(secs));
    }
    let mut input = String::new();
    let _ = std::io::stdin().read_to_string(&mut input);
    let state: Value = serde_json::from_str(&input).unwrap_or(Value::Null);
    let target = state["pid"].as_i64().unwrap_or(0);
    let line = json!({
        "argv": std::env::args().collect::<Vec<_>>(),
        "env": std::env::vars().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        "state": state,
        "ns": namespaces("self"),
        // The runtime that ran us: its namespaces are "the runtime namespace".
        "parent_ns": namespaces(&sys::parent_pid().to_string()),
        "target_alive": target > 0 && std::path::Path::new(&format!("/proc/{target}")).exists(),
        "target_cmdline": read(&format!("/proc/{target}/cmdline")).map(|s| s.split('\0').filter(|a| !a.is_empty()).map(str::to_string).collect::<Vec<_>>()),
        "target_ns": namespaces(&target.to_string()),
    });
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()));
    if let Err(e) = written {
        eprintln!("oci-checker hook: {log}: {e}");
        return 3;
    }
    exit
}

/// The raw calls; each returns plain data.
mod sys {
    use serde_json::{json, Value};

    pub fn uname() -> (String, String, String) {
        // SAFETY: utsname is plain data; uname fills it.
        let mut u: libc::utsname = unsafe { std::mem::zeroed() };
        // SAFETY: u is a valid, writable utsname.
        if unsafe { libc::uname(&mut u) } != 0 {
            return Default::default();
        }
        let s = |f: &[libc::c_char]| {
            let bytes: Vec<u8> = f
                .iter()
                .take_while(|c| **c != 0)
                .map(|c| *c as u8)
                .collect();
            String::from_utf8_lossy(&bytes).into_owned()
        };
        (s(&u.nodename), s(&u.domainname), s(&u.machine))
    }

    pub fn rlimits() -> Value {
        let names = [
            (libc::RLIMIT_AS, "RLIMIT_AS"),
            (libc::RLIMIT_CORE, "RLIMIT_CORE"),
            (libc::RLIMIT_CPU, "RLIMIT_CPU"),
            (libc::RLIMIT_DATA, "RLIMIT_DATA"),
            (libc::RLIMIT_FSIZE, "RLIMIT_FSIZE"),
            (libc::RLIMIT_LOCKS, "RLIMIT_LOCKS"),
            (libc::RLIMIT_MEMLOCK, "RLIMIT_MEMLOCK"),
            (libc::RLIMIT_MSGQUEUE, "RLIMIT_MSGQUEUE"),
            (libc::RLIMIT_NICE, "RLIMIT_NICE"),
            (libc::RLIMIT_NOFILE, "RLIMIT_NOFILE"),
            (libc::RLIMIT_NPROC, "RLIMIT_NPROC"),
            (libc::RLIMIT_RSS, "RLIMIT_RSS"),
            (libc::RLIMIT_RTPRIO, "RLIMIT_RTPRIO"),
            (libc::RLIMIT_RTTIME, "RLIMIT_RTTIME"),
            (libc::RLIMIT_SIGPENDING, "RLIMIT_SIGPENDING"),
            (libc::RLIMIT_STACK, "RLIMIT_STACK"),
        ];
        let mut out = serde_json::Map::new();
        for (res, name) in names {
            let mut r = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: r is a valid rlimit to fill.
            if unsafe { libc::getrlimit(res, &mut r) } == 0 {
                out.insert(name.into(), json!([r.rlim_cur, r.rlim_max]));
            }
        }
        Value::Object(out)
    }

    pub fn parent_pid() -> i32 {
        // SAFETY: getppid cannot fail.
        unsafe { libc::getppid() }
    }

    pub fn isatty(fd: i32) -> bool {
        // SAFETY: isatty only inspects the descriptor.
        unsafe { libc::isatty(fd) == 1 }
    }

    pub fn winsize(fd: i32) -> Option<[u16; 2]> {
        let mut ws = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ writes one winsize into ws.
        (unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == 0)
            .then_some([ws.ws_row, ws.ws_col])
    }

    pub fn personality() -> i64 {
        // SAFETY: 0xffffffff only queries the persona.
        unsafe { libc::personality(0xffff_ffff) as i64 }
    }

    pub fn ioprio() -> i64 {
        const IOPRIO_WHO_PROCESS: libc::c_long = 1;
        // SAFETY: ioprio_get takes two integers and changes nothing.
        unsafe { libc::syscall(libc::SYS_ioprio_get, IOPRIO_WHO_PROCESS, 0) }
    }

    pub fn sched_policy() -> i32 {
        // SAFETY: queries the calling thread's policy.
        unsafe { libc::sched_getscheduler(0) }
    }

    pub fn nice() -> i32 {
        // SAFETY: getpriority only reads.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
    }

    pub fn affinity() -> Vec<usize> {
        // SAFETY: cpu_set_t is plain data; sched_getaffinity fills it.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: set is valid for size_of::<cpu_set_t>() bytes.
        if unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) }
            != 0
        {
            return vec![];
        }
        // SAFETY: CPU_ISSET reads the set we own.
        (0..libc::CPU_SETSIZE as usize)
            .filter(|c| unsafe { libc::CPU_ISSET(*c, &set) })
            .collect()
    }

    pub fn getcwd() -> std::io::Result<()> {
        let mut buf = [0u8; 4096];
        // SAFETY: buf is writable for its length; the raw syscall, so a
        // seccomp rule on getcwd is what answers.
        let r = unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) };
        if r < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    pub fn major(dev: u64) -> u64 {
        libc::major(dev) as u64
    }

    pub fn minor(dev: u64) -> u64 {
        libc::minor(dev) as u64
    }

    /// Blocks every catchable signal and waits for one.
    pub fn wait_signal() -> i32 {
        // SAFETY: sigset_t is plain data, filled by sigfillset.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        let mut sig = 0;
        // SAFETY: set is ours; blocking signals then waiting on them.
        unsafe {
            libc::sigfillset(&mut set);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            libc::sigwait(&set, &mut sig);
        }
        sig
    }
}
