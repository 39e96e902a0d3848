//! linux.seccomp enforced: engines' real profiles, every action, several
//! architectures (a 32-bit `int 0x80` call is filtered by the x86 rules),
//! notify listeners, and bad profiles refused at create.

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;

use estiba_integration::skip;
use estiba_integration::{
    can_run, engine_profile_to_oci, text, World, DOCKER_CAPS, DOCKER_PROFILE, PODMAN_PROFILE,
};
use serde_json::{json, Value};

const X86_64_KEYCTL: u32 = 250;
const X86_64_UNSHARE: u32 = 272;
const X86_64_MOUNT: u32 = 165;
const X86_64_PERSONALITY: u32 = 135;
const X86_64_GETPPID: u32 = 110;
const X86_GETPPID: u32 = 64;
const X86_KEYCTL: u32 = 288;

fn with_profile(name: &str, seccomp: Value, caps: &[&str]) -> World {
    let mut w = World::new(name);
    w.install_probe();
    w.config["linux"]["seccomp"] = seccomp;
    let caps = json!(caps);
    w.config["process"]["capabilities"] =
        json!({"bounding": caps, "effective": caps, "permitted": caps});
    // Docker's default: no no_new_privs, so the filter needs CAP_SYS_ADMIN
    // at install time.
    w.config["process"]["noNewPrivileges"] = json!(false);
    w
}

fn probe(w: &mut World, suffix: &str, args: &str) -> String {
    w.script(&format!("probe {args}"));
    let out = w.run(suffix);
    assert!(
        out.status.success(),
        "probe {args}: {:?} {}",
        out.status,
        text(&out.stderr)
    );
    text(&out.stdout).trim().to_string()
}

fn real_profile(path: &str, name: &str) {
    let Some(seccomp) = engine_profile_to_oci(std::path::Path::new(path), DOCKER_CAPS) else {
        skip!("{name}: {path} is not installed");
        return;
    };
    // What the profile itself says, for the syscalls where engines differ.
    let unconditional = |r: &Value| {
        r.get("args")
            .and_then(|a| a.as_array())
            .is_none_or(|a| a.is_empty())
    };
    let allows = |name: &str| {
        seccomp["syscalls"].as_array().unwrap().iter().any(|r| {
            r["action"] == "SCMP_ACT_ALLOW"
                && r["names"].as_array().unwrap().iter().any(|n| n == name)
                && unconditional(r)
        })
    };
    // The errno a refused call gets: its own rule's, else the default.
    let default_errno = seccomp["defaultErrnoRet"].as_u64().unwrap_or(1);
    let refused = |name: &str| {
        let own = seccomp["syscalls"].as_array().unwrap().iter().find(|r| {
            r["action"] == "SCMP_ACT_ERRNO"
                && r["names"].as_array().unwrap().iter().any(|n| n == name)
                && unconditional(r)
        });
        format!(
            "errno {}",
            own.map(|r| r["errnoRet"].as_u64().unwrap_or(1))
                .unwrap_or(default_errno)
        )
    };
    let (allowed_ptrace, allowed_mount) = (allows("ptrace"), allows("mount"));
    let mut w = with_profile(name, seccomp.clone(), DOCKER_CAPS);
    // Ordinary work is allowed.
    w.script("ls / > /dev/null && cat /proc/self/status | grep -E '^(Seccomp|NoNewPrivs):'");
    let out = w.run("ok");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let o = text(&out.stdout);
    assert!(o.contains("Seccomp:\t2"), "filter not installed: {o}");
    assert!(o.contains("NoNewPrivs:\t0"), "{o}");
    assert_eq!(
        probe(&mut w, "getppid", &format!("sys {X86_64_GETPPID}")),
        "ok 0"
    );
    // Every syscall of this list that the profile does not allow must fail
    // with its errno; the kernel may refuse allowed ones on its own, so
    // those say nothing about the filter.
    let candidates = [
        ("keyctl", X86_64_KEYCTL, "0"),
        ("unshare", X86_64_UNSHARE, "0x10000000"),
        ("mount", X86_64_MOUNT, "0 0 0 0 0"),
        ("add_key", 248, "0"),
        ("request_key", 249, "0"),
        ("kexec_load", 246, "0"),
        ("init_module", 175, "0 0 0"),
        ("bpf", 321, "0 0 0"),
        ("reboot", 169, "0"),
        ("open_by_handle_at", 304, "0 0 0"),
    ];
    let mut blocked = 0;
    for (name, nr, args) in candidates {
        let got = probe(&mut w, name, &format!("sys {nr} {args}"));
        if !allows(name) {
            assert_eq!(got, refused(name), "{name} is not allowed by the profile");
            blocked += 1;
        }
    }
    assert!(
        blocked >= 5,
        "the profile blocks only {blocked} of the probed syscalls"
    );
    let _ = allowed_mount;
    // personality(0xffffffff) queries and is allowed; 0x1 is not.
    assert!(probe(
        &mut w,
        "pers-ok",
        &format!("sys {X86_64_PERSONALITY} 0xffffffff")
    )
    .starts_with("ok"));
    assert_eq!(
        probe(&mut w, "pers-bad", &format!("sys {X86_64_PERSONALITY} 0x1")),
        refused("personality")
    );
    // PTRACE_TRACEME (0): allowed where the profile allows ptrace.
    let ptrace = probe(&mut w, "ptrace", "sys 101 0");
    assert_eq!(
        ptrace == refused("ptrace"),
        !allowed_ptrace,
        "ptrace: {ptrace}"
    );
    // The 32-bit entry point goes through the x86 rules, not around them.
    assert_eq!(
        probe(&mut w, "int80-ok", &format!("int80 {X86_GETPPID}")),
        "ok 0"
    );
    if !allows("keyctl") {
        assert_eq!(
            probe(&mut w, "int80-keyctl", &format!("int80 {X86_KEYCTL} 0")),
            refused("keyctl")
        );
    }
    // kexec_load on x86 (283) is blocked by both profiles.
    assert_eq!(
        probe(&mut w, "int80-kexec", "int80 283 0"),
        refused("kexec_load")
    );
    // exec'd processes are filtered too.
    w.args(&["sleep", "100"]);
    let id = w.running("exec");
    let out = w.estiba(&["exec", &id, "probe", "sys", "246", "0"]);
    assert_eq!(
        text(&out.stdout).trim(),
        refused("kexec_load"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn podman_profile_enforced() {
    if can_run("podman_profile_enforced") {
        real_profile(PODMAN_PROFILE, "podman");
    }
}

#[test]
fn docker_profile_enforced() {
    if can_run("docker_profile_enforced") {
        real_profile(DOCKER_PROFILE, "docker");
    }
}

fn custom(rules: Value, default: &str) -> Value {
    json!({"defaultAction": default, "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"], "syscalls": rules})
}

/// Every syscall a real profile allows whatever its arguments is one the
/// kernel's action cache (Linux 5.11+) answers without running the filter,
/// on x86_64 and x86: such calls cost no BPF at all. The kernel decides that
/// by emulating the filter with a small instruction set; an instruction
/// outside it, or an argument load, on such a syscall's path would make
/// every call of it run the filter. No other syscall is cached.
#[test]
fn unconditional_allows_are_answered_by_the_kernel_cache() {
    use estiba_integration::bpfeval::{kernel_caches, Insn};
    use estiba_seccomp::Table;
    for (path, name) in [(DOCKER_PROFILE, "docker"), (PODMAN_PROFILE, "podman")] {
        let Some(seccomp) = engine_profile_to_oci(std::path::Path::new(path), DOCKER_CAPS) else {
            skip!("{name}: {path} is not installed");
            continue;
        };
        let spec: oci_spec::runtime::LinuxSeccomp =
            serde_json::from_value(seccomp.clone()).expect("the converted profile parses");
        let prog: Vec<Insn> = estiba_seccomp::compile(&spec)
            .expect("compiles")
            .program
            .iter()
            .map(|i| Insn {
                code: i.code,
                jt: i.jt,
                jf: i.jf,
                k: i.k,
            })
            .collect();
        let rules = seccomp["syscalls"].as_array().unwrap();
        for table in [Table::X86_64, Table::X86] {
            let (mut cached, mut expected) = (0, 0);
            for nr in 0..460 {
                let naming: Vec<&Value> = rules
                    .iter()
                    .filter(|r| {
                        r["names"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|n| n.as_str().and_then(|n| table.number(n)) == Some(nr))
                    })
                    .collect();
                let unconditional_allow = naming.iter().any(|r| {
                    r["action"] == "SCMP_ACT_ALLOW"
                        && r["args"].as_array().is_none_or(|a| a.is_empty())
                });
                let want =
                    unconditional_allow && naming.iter().all(|r| r["action"] == "SCMP_ACT_ALLOW");
                let got = kernel_caches(&prog, nr, table.audit());
                assert_eq!(
                    got, want,
                    "{name} {table:?} syscall {nr}: kernel-cached {got}, expected {want}"
                );
                cached += got as u32;
                expected += want as u32;
            }
            assert!(
                expected > 250,
                "{name} {table:?}: only {expected} unconditional allows?"
            );
            println!("{name} {table:?}: {cached} syscalls answered by the kernel's cache");
        }
    }
}

/// The profile's flags reach seccomp(2): the kernel accepts TSYNC and
/// SPEC_ALLOW, and keeps LOG on the filter (read back with
/// PTRACE_SECCOMP_GET_METADATA; it is the one flag the kernel records).
#[test]
fn flags_reach_the_kernel() {
    if !can_run("flags_reach_the_kernel") {
        return;
    }
    const FLAG_LOG: u64 = 2;
    for (flags, want_log) in [
        (json!(["SECCOMP_FILTER_FLAG_LOG"]), true),
        (
            json!([
                "SECCOMP_FILTER_FLAG_TSYNC",
                "SECCOMP_FILTER_FLAG_SPEC_ALLOW"
            ]),
            false,
        ),
        (json!([]), false),
    ] {
        let mut w = with_profile(
            "flags",
            json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": flags,
                   "syscalls": [{"names": ["keyctl"], "action": "SCMP_ACT_ERRNO"}]}),
            DOCKER_CAPS,
        );
        w.args(&["sleep", "1000"]);
        let id = w.running("c");
        let pid = w.state(&id)["pid"].as_i64().unwrap().to_string();
        let out = std::process::Command::new(estiba_integration::probe_binary())
            .args(["filter-flags", &pid])
            .output()
            .unwrap();
        assert!(out.status.success(), "{flags}: {}", text(&out.stderr));
        let got: u64 = text(&out.stdout).trim().parse().unwrap();
        assert_eq!(
            got & FLAG_LOG != 0,
            want_log,
            "{flags}: metadata flags {got}"
        );
        assert!(w.estiba(&["delete", "--force", &id]).status.success());
    }
}

/// x32 calls (x86_64's audit token, numbers with bit 30 set) from inside
/// the container: filtered by the x32 rules when the profile lists x32,
/// killed as an unlisted architecture when it does not. The filter decides
/// before the kernel looks at the number, so this holds whether or not
/// the kernel runs x32 programs.
#[test]
fn x32_calls_follow_the_x32_rules() {
    if !can_run("x32_calls_follow_the_x32_rules") {
        return;
    }
    const X32_KEYCTL: u32 = 0x4000_0000 | X86_64_KEYCTL;
    let profile = |arches: Value| {
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": arches,
               "syscalls": [{"names": ["keyctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 99}]})
    };
    let mut w = with_profile(
        "x32",
        profile(json!([
            "SCMP_ARCH_X86_64",
            "SCMP_ARCH_X86",
            "SCMP_ARCH_X32"
        ])),
        DOCKER_CAPS,
    );
    assert_eq!(
        probe(&mut w, "x32", &format!("sys {X32_KEYCTL} 0")),
        "errno 99"
    );
    assert_eq!(
        probe(&mut w, "x64", &format!("sys {X86_64_KEYCTL} 0")),
        "errno 99"
    );
    let mut w = with_profile("nox32", profile(json!(["SCMP_ARCH_X86_64"])), DOCKER_CAPS);
    w.script(&format!("probe sys {X32_KEYCTL} 0"));
    let out = w.run("killed");
    assert_eq!(out.status.code(), Some(128 + 31), "{}", text(&out.stdout));
}

#[test]
fn every_action() {
    if !can_run("every_action") {
        return;
    }
    let rules = json!([
        {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42},
        {"names": ["keyctl"], "action": "SCMP_ACT_KILL"},
        {"names": ["add_key"], "action": "SCMP_ACT_KILL_PROCESS"},
        {"names": ["request_key"], "action": "SCMP_ACT_TRAP"},
        {"names": ["getpgid"], "action": "SCMP_ACT_LOG"},
        {"names": ["getsid"], "action": "SCMP_ACT_TRACE", "errnoRet": 9},
    ]);
    let mut w = with_profile("actions", custom(rules, "SCMP_ACT_ALLOW"), DOCKER_CAPS);
    assert_eq!(probe(&mut w, "errno", "sys 110"), "errno 42");
    assert!(probe(&mut w, "log", "sys 121 0").starts_with("ok"));
    // Not traced: SECCOMP_RET_TRACE without a tracer fails with ENOSYS.
    assert_eq!(probe(&mut w, "trace", "sys 124 0"), "errno 38");
    for (nr, what) in [(250, "KILL"), (248, "KILL_PROCESS"), (249, "TRAP")] {
        w.script(&format!("probe sys {nr}; echo survived"));
        let out = w.run(&format!("k{nr}"));
        // The shell reports the probe's death by SIGSYS (31) and goes on.
        assert!(
            text(&out.stdout).contains("survived"),
            "{what}: {}",
            text(&out.stdout)
        );
        assert!(
            !text(&out.stdout).contains("ok") && !text(&out.stdout).contains("errno"),
            "{what} let the call through: {}",
            text(&out.stdout)
        );
        w.script(&format!("probe sys {nr}"));
        let out = w.run(&format!("c{nr}"));
        assert_eq!(out.status.code(), Some(128 + 31), "{what}");
    }
}

#[test]
fn default_errno_and_arguments() {
    if !can_run("default_errno_and_arguments") {
        return;
    }
    // An allow-list: everything busybox and the runtime need, getppid only
    // when its (ignored) first argument is 7 or above 2^32.
    let base: Vec<&str> = vec![
        "read",
        "write",
        "openat",
        "close",
        "fstat",
        "newfstatat",
        "mmap",
        "munmap",
        "mprotect",
        "brk",
        "rt_sigaction",
        "rt_sigprocmask",
        "rt_sigreturn",
        "ioctl",
        "execve",
        "exit",
        "exit_group",
        "arch_prctl",
        "set_tid_address",
        "set_robust_list",
        "rseq",
        "prlimit64",
        "getrandom",
        "getuid",
        "getgid",
        "geteuid",
        "getegid",
        "capget",
        "capset",
        "prctl",
        "setgroups",
        "setresuid",
        "setresgid",
        "chdir",
        "getcwd",
        "umask",
        "fcntl",
        "close_range",
        "poll",
        "sched_getaffinity",
        "uname",
        "readlink",
        "access",
        "getpid",
        "sendmsg",
        "statx",
        "futex",
        "sigaltstack",
        "pread64",
        "lseek",
        "dup2",
        "dup3",
        "wait4",
        "clone",
        "vfork",
        "fork",
        "setsid",
        "getpgrp",
        "setpgid",
        // The init's own calls between the filter (loaded during create, as
        // runc and youki do) and exec: report ready, wait for start.
        "sendto",
        "recvfrom",
        "accept4",
    ];
    let rules = json!([
        {"names": base, "action": "SCMP_ACT_ALLOW"},
        {"names": ["getppid"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 7, "op": "SCMP_CMP_EQ"}]},
        {"names": ["getppid"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 4294967296u64, "op": "SCMP_CMP_GT"}]},
    ]);
    let mut s = custom(rules, "SCMP_ACT_ERRNO");
    s["defaultErrnoRet"] = json!(13);
    let mut w = with_profile("args", s, DOCKER_CAPS);
    // With no_new_privs the filter goes in last, after the capabilities.
    w.config["process"]["noNewPrivileges"] = json!(true);
    assert_eq!(probe(&mut w, "a7", "sys 110 7"), "ok 0");
    assert_eq!(probe(&mut w, "a8", "sys 110 8"), "errno 13");
    assert_eq!(probe(&mut w, "big", "sys 110 0x100000001"), "ok 0");
    assert_eq!(probe(&mut w, "exact", "sys 110 0x100000000"), "errno 13");
    // Not named at all: the default errno. Newer than anything named: ENOSYS.
    assert_eq!(probe(&mut w, "kill", "sys 62 0 0"), "errno 13");
    assert_eq!(probe(&mut w, "new", "sys 460"), "errno 38");
    // x86 listed, so int 0x80 follows the x86 rules: getppid (64) is not
    // allowed there, and it is refused, not killed.
    assert_eq!(probe(&mut w, "int80", "int80 64"), "errno 13");
}

#[test]
fn notify_sends_the_listener_fd_and_state() {
    if !can_run("notify_sends_the_listener_fd_and_state") {
        return;
    }
    let mut w = World::new("notify");
    w.install_probe();
    let sock = w.dir.join("listener.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    w.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock.to_string_lossy(),
        "listenerMetadata": "hello-agent",
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]
    });
    w.args(&["sleep", "100"]);
    let (id, out) = w.create("c", &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // As with runc, an agent has the fd once create has returned: it must
    // already be waiting on the socket, without start.
    let (msg, fds) = estiba_oci_conformance::fdpass::receive_now(&listener)
        .expect("the notify fd was not sent during create");
    assert!(w.estiba(&["start", &id]).status.success());
    let body: Value = serde_json::from_slice(&msg).unwrap();
    assert_eq!(fds.len(), 1);
    assert_eq!(body["fds"], json!(["seccompFd"]));
    assert_eq!(body["metadata"], "hello-agent");
    assert_eq!(body["state"]["id"], id.as_str());
    assert!(body["pid"].as_i64().unwrap() > 0);
    let link = std::fs::read_link(format!("/proc/self/fd/{}", fds[0].as_raw_fd())).unwrap();
    assert!(
        link.to_string_lossy().contains("seccomp notify"),
        "{link:?}"
    );
}

#[test]
fn bad_profiles_fail_create_cleanly() {
    if !can_run("bad_profiles_fail_create_cleanly") {
        return;
    }
    let mut w = World::new("badseccomp");
    let bad = [
        (json!({"defaultAction": "SCMP_ACT_NOPE"}), "SCMP_ACT_NOPE"),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_NOPE"]}),
            "SCMP_ARCH_NOPE",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_MIPS"]}),
            "not supported",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 9, "value": 1, "op": "SCMP_CMP_EQ"}]}]}),
            "index",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_NOPE"}]}]}),
            "SCMP_CMP_NOPE",
        ),
        (json!({"defaultAction": "SCMP_ACT_NOTIFY"}), "NOTIFY"),
        (
            json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": (0..1500).map(|v| json!({"names": ["getppid"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": v, "op": "SCMP_CMP_EQ"}]})).collect::<Vec<_>>()}),
            "4096",
        ),
    ];
    for (i, (s, want)) in bad.into_iter().enumerate() {
        w.config["linux"]["seccomp"] = s;
        let (id, out) = w.create(&format!("b{i}"), &[]);
        assert_eq!(out.status.code(), Some(1), "{want}");
        let err = text(&out.stderr);
        assert!(err.contains(want), "want {want:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(!w.root.join(&id).exists());
    }
}
