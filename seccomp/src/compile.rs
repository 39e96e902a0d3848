//! The compiler proper.

use std::collections::BTreeMap;

use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction as A, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator as Op,
};

use crate::arch::{Table, X32_BIT};
use crate::bpf::{Asm, Label, Target, JEQ_K, JGE_K, JGT_K};
use crate::{ret, Error, Filter, Result};

const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const fn off_arg(i: u32, hi: bool) -> u32 {
    16 + 8 * i + if hi { 4 } else { 0 }
}

/// What a syscall number does on one architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Treat {
    Ret(u32),
    /// Conditional rules in order, then what happens when none matches.
    Rules(Vec<(Vec<LinuxSeccompArg>, u32)>, u32),
}

fn action(a: A, errno: Option<u32>) -> Result<u32> {
    // The spec: errnoRet on an action that returns no errno is an error.
    if errno.is_some() && !matches!(a, A::ScmpActErrno | A::ScmpActTrace) {
        return Err(Error::Invalid(format!(
            "errnoRet is set but {a:?} returns no errno"
        )));
    }
    let errno = errno.unwrap_or(libc::EPERM as u32) & 0xffff;
    Ok(match a {
        A::ScmpActKill | A::ScmpActKillThread => ret::KILL_THREAD,
        A::ScmpActKillProcess => ret::KILL_PROCESS,
        A::ScmpActTrap => ret::TRAP,
        A::ScmpActErrno => ret::ERRNO | errno,
        A::ScmpActTrace => ret::TRACE | errno,
        A::ScmpActLog => ret::LOG,
        A::ScmpActAllow => ret::ALLOW,
        A::ScmpActNotify => ret::USER_NOTIF,
    })
}

/// Compiles a profile for its architectures (and always the native one).
pub fn compile(s: &LinuxSeccomp) -> Result<Filter> {
    if s.default_action() == A::ScmpActNotify {
        return Err(Error::Invalid(
            "defaultAction SCMP_ACT_NOTIFY is not allowed".into(),
        ));
    }
    let default = action(s.default_action(), s.default_errno_ret())?;
    let mut tables = vec![Table::native()];
    let mut foreign = vec![];
    for a in s.architectures().iter().flatten() {
        let t = Table::from_oci(*a).ok_or_else(|| Error::Arch(format!("{a:?}")))?;
        let list = if t.runs_here() {
            &mut tables
        } else {
            &mut foreign
        };
        if !list.contains(&t) {
            list.push(t);
        }
    }
    let mut notify = false;
    let mut skipped = vec![];
    // Per architecture: number → treatment.
    let mut per_arch: BTreeMap<Table, BTreeMap<u32, Treat>> =
        tables.iter().map(|t| (*t, BTreeMap::new())).collect();
    for rule in s.syscalls().iter().flatten() {
        if rule.names().is_empty() {
            return Err(Error::Invalid(
                "a syscalls entry has no names (the spec asks for at least one)".into(),
            ));
        }
        let act = action(rule.action(), rule.errno_ret())?;
        if rule.action() == A::ScmpActNotify {
            notify = true;
        }
        let args = rule.args().clone().unwrap_or_default();
        for a in &args {
            if a.index() > 5 {
                return Err(Error::Invalid(format!(
                    "args index {} (syscalls have 6 arguments)",
                    a.index()
                )));
            }
        }
        for name in rule.names() {
            for t in &tables {
                let Some(nr) = t.number(name) else {
                    skipped.push((*t, name.clone()));
                    continue;
                };
                let entry = per_arch
                    .get_mut(t)
                    .expect("table")
                    .entry(nr)
                    .or_insert(Treat::Rules(vec![], default));
                let Treat::Rules(rules, fallback) = entry else {
                    continue;
                };
                if args.is_empty() {
                    // An unconditional rule decides when no conditional one matched.
                    *fallback = act;
                } else {
                    rules.push((args.clone(), act));
                }
            }
        }
    }
    if notify && s.listener_path().is_none() {
        return Err(Error::Invalid("SCMP_ACT_NOTIFY needs listenerPath".into()));
    }
    let mut flags = 0;
    let mut wait_killable_asked = false;
    for f in s.flags().iter().flatten() {
        flags |= match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => crate::FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => crate::FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => crate::FLAG_SPEC_ALLOW,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                wait_killable_asked = true;
                crate::FLAG_WAIT_KILLABLE_RECV
            }
            #[allow(unreachable_patterns)]
            other => return Err(Error::Invalid(format!("flag {other:?} is not supported"))),
        };
    }
    if wait_killable_asked && !notify {
        return Err(Error::Invalid(
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs an SCMP_ACT_NOTIFY rule (the kernel takes it only with a listener)".into(),
        ));
    }
    if notify {
        flags |= crate::FLAG_WAIT_KILLABLE_RECV;
    }
    // runc's rule: syscalls newer than anything the profile names (and
    // clone3, when it names it not) fail with ENOSYS, so programs fall back
    // to older calls instead of seeing the default errno.
    let enosys = !matches!(s.default_action(), A::ScmpActAllow | A::ScmpActLog);
    let mut asm = Asm::default();
    asm.load(OFF_ARCH);
    let has_x32 = tables.contains(&Table::X32);
    let blocks: Vec<(Table, Label)> = tables
        .iter()
        .filter(|t| **t != Table::X32)
        .map(|t| (*t, asm.label()))
        .collect();
    for (t, l) in &blocks {
        asm.jump(JEQ_K, t.audit(), Target::Label(*l), Target::Skip(0));
    }
    // An architecture the profile does not list: libseccomp's default.
    asm.ret(ret::KILL_THREAD);
    let x32_label = asm.label();
    for (t, l) in &blocks {
        asm.mark(*l);
        asm.load(OFF_NR);
        if *t == Table::X86_64 {
            // x32 syscalls carry bit 30 under the same audit token.
            if has_x32 {
                asm.jump(JGE_K, X32_BIT, Target::Label(x32_label), Target::Skip(0));
            } else {
                let ok = asm.label();
                asm.jump(JGE_K, X32_BIT, Target::Skip(0), Target::Label(ok));
                asm.ret(ret::KILL_THREAD);
                asm.mark(ok);
            }
        }
        emit_table(
            &mut asm,
            *t,
            &per_arch[t],
            default,
            enosys,
            (
                0,
                if *t == Table::X86_64 && !has_x32 {
                    X32_BIT
                } else {
                    u32::MAX
                },
            ),
        );
    }
    if has_x32 {
        asm.mark(x32_label);
        emit_table(
            &mut asm,
            Table::X32,
            &per_arch[&Table::X32],
            default,
            enosys,
            (X32_BIT, u32::MAX),
        );
    }
    let program = asm.finish().map_err(Error::Invalid)?;
    if program.len() > 4096 {
        return Err(Error::TooLong(program.len()));
    }
    Ok(Filter {
        program,
        flags,
        notify,
        skipped,
        foreign,
        wait_killable_asked,
    })
}

/// The binary search over one architecture's syscall numbers in `range`.
fn emit_table(
    asm: &mut Asm,
    t: Table,
    entries: &BTreeMap<u32, Treat>,
    default: u32,
    enosys: bool,
    range: (u32, u32),
) {
    let enosys_ret = ret::ERRNO | libc::ENOSYS as u32;
    let mut entries = entries.clone();
    // Profiles that never mention clone3 get ENOSYS for it.
    if enosys {
        if let Some(nr) = t.number("clone3") {
            entries.entry(nr).or_insert(Treat::Ret(enosys_ret));
        }
    }
    // Rules whose every outcome is the same need no argument loads: that
    // also lets the kernel's action cache answer the syscall without
    // running the filter when the outcome is ALLOW.
    let simplify = |tr: &Treat| match tr {
        Treat::Rules(r, fb) if r.iter().all(|(_, act)| act == fb) => Treat::Ret(*fb),
        other => other.clone(),
    };
    // Intervals [start, next start) with one treatment each.
    let mut iv: Vec<(u32, Treat)> = vec![(range.0, Treat::Ret(default))];
    let max_named = entries.keys().next_back().copied();
    for (nr, tr) in &entries {
        let tr = simplify(tr);
        push(&mut iv, *nr, tr);
        if let Some(next) = nr.checked_add(1) {
            push(&mut iv, next, Treat::Ret(default));
        }
    }
    if enosys {
        if let Some(next) = max_named.and_then(|m| m.checked_add(1)) {
            // Replace the trailing default with ENOSYS.
            if iv
                .last()
                .is_some_and(|(s, tr)| *s == next && *tr == Treat::Ret(default))
            {
                iv.pop();
            }
            push(&mut iv, next, Treat::Ret(enosys_ret));
        }
    }
    emit_tree(asm, &iv, default);
}

fn push(iv: &mut Vec<(u32, Treat)>, start: u32, tr: Treat) {
    if let Some((s, last)) = iv.last_mut() {
        if *s == start {
            *last = tr;
            dedup_tail(iv);
            return;
        }
        if *last == tr && matches!(tr, Treat::Ret(_)) {
            return;
        }
    }
    iv.push((start, tr));
}

fn dedup_tail(iv: &mut Vec<(u32, Treat)>) {
    let n = iv.len();
    if n >= 2 && iv[n - 1].1 == iv[n - 2].1 && matches!(iv[n - 1].1, Treat::Ret(_)) {
        iv.pop();
    }
}

/// A (the syscall number) is loaded on entry.
fn emit_tree(asm: &mut Asm, iv: &[(u32, Treat)], default: u32) {
    if iv.len() == 1 {
        emit_treat(asm, &iv[0].1, default);
        return;
    }
    let mid = iv.len() / 2;
    let right = asm.label();
    asm.jump(JGE_K, iv[mid].0, Target::Label(right), Target::Skip(0));
    emit_tree(asm, &iv[..mid], default);
    asm.mark(right);
    emit_tree(asm, &iv[mid..], default);
}

fn emit_treat(asm: &mut Asm, tr: &Treat, _default: u32) {
    match tr {
        Treat::Ret(k) => asm.ret(*k),
        Treat::Rules(rules, fallback) => {
            for (args, act) in rules {
                let fail = asm.label();
                for a in args {
                    emit_arg(asm, a, fail);
                }
                asm.ret(*act);
                asm.mark(fail);
            }
            asm.ret(*fallback);
        }
    }
}

/// One argument condition; falls through when it holds, jumps to `fail`
/// when not. 64-bit values compare the high halves first.
fn emit_arg(asm: &mut Asm, a: &LinuxSeccompArg, fail: Label) {
    let i = a.index() as u32;
    let v = a.value();
    let (vhi, vlo) = ((v >> 32) as u32, v as u32);
    let pass = asm.label();
    let f = Target::Label(fail);
    let p = Target::Label(pass);
    let next = Target::Skip(0);
    match a.op() {
        Op::ScmpCmpEq | Op::ScmpCmpNe => {
            let eq = a.op() == Op::ScmpCmpEq;
            asm.load(off_arg(i, true));
            asm.jump(JEQ_K, vhi, next, if eq { f } else { p });
            asm.load(off_arg(i, false));
            if eq {
                asm.jump(JEQ_K, vlo, p, f);
            } else {
                asm.jump(JEQ_K, vlo, f, p);
            }
        }
        Op::ScmpCmpGt | Op::ScmpCmpGe => {
            asm.load(off_arg(i, true));
            asm.jump(JGT_K, vhi, p, next);
            asm.jump(JEQ_K, vhi, next, f);
            asm.load(off_arg(i, false));
            asm.jump(
                if a.op() == Op::ScmpCmpGt {
                    JGT_K
                } else {
                    JGE_K
                },
                vlo,
                p,
                f,
            );
        }
        Op::ScmpCmpLt | Op::ScmpCmpLe => {
            asm.load(off_arg(i, true));
            asm.jump(JGT_K, vhi, f, next);
            asm.jump(JEQ_K, vhi, next, p);
            asm.load(off_arg(i, false));
            // lo < v  ⇔ !(lo >= v);  lo <= v ⇔ !(lo > v)
            asm.jump(
                if a.op() == Op::ScmpCmpLt {
                    JGE_K
                } else {
                    JGT_K
                },
                vlo,
                f,
                p,
            );
        }
        Op::ScmpCmpMaskedEq => {
            let w = a.value_two().unwrap_or(0);
            asm.load(off_arg(i, true));
            asm.and(vhi);
            asm.jump(JEQ_K, (w >> 32) as u32, next, f);
            asm.load(off_arg(i, false));
            asm.and(vlo);
            asm.jump(JEQ_K, w as u32, p, f);
        }
    }
    asm.mark(pass);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf::run;

    const X86_64: u32 = 0xC000_003E;
    const X86: u32 = 0x4000_0003;

    fn profile(json: &str) -> Filter {
        compile(&serde_json_from(json)).unwrap()
    }

    fn serde_json_from(json: &str) -> LinuxSeccomp {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn rules_that_all_allow_read_no_argument() {
        let f = profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],
            "syscalls":[{"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":8,"op":"SCMP_CMP_EQ"}]},
                        {"names":["personality"],"action":"SCMP_ACT_ALLOW"}]}"#,
        );
        let arg_loads = f
            .program
            .iter()
            .filter(|i| i.code == crate::bpf::LD_W_ABS && i.k >= 16)
            .count();
        assert_eq!(arg_loads, 0);
        assert_eq!(run(&f.program, 135, X86_64, [8, 0, 0, 0, 0, 0]), ret::ALLOW);
        assert_eq!(run(&f.program, 135, X86_64, [9, 0, 0, 0, 0, 0]), ret::ALLOW);
    }

    #[test]
    fn per_rule_actions_and_errno() {
        let f = profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,"architectures":["SCMP_ARCH_X86_64"],
            "syscalls":[{"names":["getppid","getpid"],"action":"SCMP_ACT_ALLOW"},
                        {"names":["getuid"],"action":"SCMP_ACT_ERRNO","errnoRet":99},
                        {"names":["kill"],"action":"SCMP_ACT_TRAP"}]}"#,
        );
        assert_eq!(run(&f.program, 110, X86_64, [0; 6]), ret::ALLOW);
        assert_eq!(run(&f.program, 39, X86_64, [0; 6]), ret::ALLOW);
        assert_eq!(run(&f.program, 102, X86_64, [0; 6]), ret::ERRNO | 99);
        assert_eq!(run(&f.program, 62, X86_64, [0; 6]), ret::TRAP);
        assert_eq!(run(&f.program, 0, X86_64, [0; 6]), ret::ERRNO | 1);
        // Newer than anything named: ENOSYS.
        assert_eq!(
            run(&f.program, 450, X86_64, [0; 6]),
            ret::ERRNO | libc::ENOSYS as u32
        );
        // clone3 (435) not named: ENOSYS too.
        assert_eq!(
            run(&f.program, 435, X86_64, [0; 6]),
            ret::ERRNO | libc::ENOSYS as u32
        );
        // Unlisted arch: killed; x32 numbers without x32 listed: killed.
        assert_eq!(run(&f.program, 110, 0xC000_00B7, [0; 6]), ret::KILL_THREAD);
        assert_eq!(
            run(&f.program, 110 | X32_BIT, X86_64, [0; 6]),
            ret::KILL_THREAD
        );
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn architectures_this_kernel_cannot_run_add_nothing() {
        let rules = r#""syscalls":[{"names":["getppid"],"action":"SCMP_ACT_ALLOW"}]"#;
        let mixed = profile(&format!(
            r#"{{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_AARCH64","SCMP_ARCH_S390X","SCMP_ARCH_AARCH64"],{rules}}}"#
        ));
        let native = profile(&format!(
            r#"{{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],{rules}}}"#
        ));
        assert_eq!(mixed.foreign, vec![Table::Aarch64, Table::S390x]);
        assert!(native.foreign.is_empty());
        let code = |f: &Filter| {
            f.program
                .iter()
                .map(|i| (i.code, i.jt, i.jf, i.k))
                .collect::<Vec<_>>()
        };
        assert_eq!(code(&mixed), code(&native));
        // The aarch64 token (which this kernel never reports) is unlisted.
        assert_eq!(
            run(&mixed.program, 173, 0xC000_00B7, [0; 6]),
            ret::KILL_THREAD
        );
    }

    #[test]
    fn several_architectures() {
        let f = profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"],
            "syscalls":[{"names":["getppid"],"action":"SCMP_ACT_ALLOW"}]}"#,
        );
        assert_eq!(run(&f.program, 110, X86_64, [0; 6]), ret::ALLOW);
        assert_eq!(run(&f.program, 64, X86, [0; 6]), ret::ALLOW);
        assert_eq!(run(&f.program, 110 | X32_BIT, X86_64, [0; 6]), ret::ALLOW);
        assert_eq!(run(&f.program, 110, X86, [0; 6]), ret::ERRNO | 1);
        assert!(f.skipped.is_empty());
        let g = profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],
            "syscalls":[{"names":["socketcall","no_such_call"],"action":"SCMP_ACT_ALLOW"}]}"#,
        );
        assert!(g
            .skipped
            .contains(&(Table::X86_64, "socketcall".to_string())));
        assert!(!g.skipped.contains(&(Table::X86, "socketcall".to_string())));
        assert!(g
            .skipped
            .contains(&(Table::X86, "no_such_call".to_string())));
        assert_eq!(
            run(&f.program, 39 | X32_BIT, X86_64, [0; 6]),
            ret::ERRNO | 1
        );
    }

    #[test]
    fn every_operator_on_64_bit_values() {
        let big: u64 = 0x1_0000_0005;
        let rule = |op: &str, v: u64, v2: u64| {
            format!(
                r#"{{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
                "syscalls":[{{"names":["getppid"],"action":"SCMP_ACT_ERRNO","errnoRet":7,"args":[{{"index":1,"value":{v},"valueTwo":{v2},"op":"{op}"}}]}}]}}"#
            )
        };
        let hit = |f: &Filter, arg: u64| {
            run(&f.program, 110, X86_64, [0, arg, 0, 0, 0, 0]) == ret::ERRNO | 7
        };
        for arg in [0u64, 5, 6, big - 1, big, big + 1, 0x5, u64::MAX] {
            assert_eq!(
                hit(&profile(&rule("SCMP_CMP_EQ", big, 0)), arg),
                arg == big,
                "EQ {arg:#x}"
            );
            assert_eq!(
                hit(&profile(&rule("SCMP_CMP_NE", big, 0)), arg),
                arg != big,
                "NE {arg:#x}"
            );
            assert_eq!(
                hit(&profile(&rule("SCMP_CMP_GT", big, 0)), arg),
                arg > big,
                "GT {arg:#x}"
            );
            assert_eq!(
                hit(&profile(&rule("SCMP_CMP_GE", big, 0)), arg),
                arg >= big,
                "GE {arg:#x}"
            );
            assert_eq!(
                hit(&profile(&rule("SCMP_CMP_LT", big, 0)), arg),
                arg < big,
                "LT {arg:#x}"
            );
            assert_eq!(
                hit(&profile(&rule("SCMP_CMP_LE", big, 0)), arg),
                arg <= big,
                "LE {arg:#x}"
            );
            let m = 0xF_0000_000F;
            assert_eq!(
                hit(&profile(&rule("SCMP_CMP_MASKED_EQ", m, 0x1_0000_0005)), arg),
                arg & m == 0x1_0000_0005,
                "MASKED_EQ {arg:#x}"
            );
        }
    }

    #[test]
    fn several_rules_for_one_syscall() {
        // personality(0) and personality(8) allowed, anything else EPERM.
        let f = profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],"syscalls":[
            {"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":0,"op":"SCMP_CMP_EQ"}]},
            {"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":8,"op":"SCMP_CMP_EQ"}]},
            {"names":["getppid"],"action":"SCMP_ACT_ALLOW"}]}"#,
        );
        assert_eq!(run(&f.program, 135, X86_64, [0, 0, 0, 0, 0, 0]), ret::ALLOW);
        assert_eq!(run(&f.program, 135, X86_64, [8, 0, 0, 0, 0, 0]), ret::ALLOW);
        assert_eq!(
            run(&f.program, 135, X86_64, [9, 0, 0, 0, 0, 0]),
            ret::ERRNO | 1
        );
    }

    #[test]
    fn bad_profiles_are_refused() {
        let notify_default = serde_json_from(r#"{"defaultAction":"SCMP_ACT_NOTIFY"}"#);
        assert!(compile(&notify_default).is_err());
        let notify_no_listener = serde_json_from(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getppid"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        );
        assert!(compile(&notify_no_listener).is_err());
        let bad_index = serde_json_from(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getppid"],"action":"SCMP_ACT_ERRNO","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#,
        );
        assert!(compile(&bad_index).is_err());
        // Over 4096 instructions: many conditional rules.
        let mut rules = vec![];
        for v in 0..1500 {
            rules.push(format!(r#"{{"names":["getppid"],"action":"SCMP_ACT_ALLOW","args":[{{"index":0,"value":{v},"op":"SCMP_CMP_EQ"}}]}}"#));
        }
        let huge = serde_json_from(&format!(
            r#"{{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{}]}}"#,
            rules.join(",")
        ));
        assert!(matches!(compile(&huge), Err(Error::TooLong(_))));
    }

    #[test]
    fn a_big_allow_list_is_a_shallow_tree() {
        let names: Vec<String> = (0..330u32)
            .filter_map(|n| syscalls::x86_64::Sysno::new(n as usize))
            .map(|s| format!("\"{}\"", s.name()))
            .collect();
        let f = profile(&format!(
            r#"{{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],"syscalls":[{{"names":[{}],"action":"SCMP_ACT_ALLOW"}}]}}"#,
            names.join(",")
        ));
        assert!(f.program.len() < 100, "{} instructions", f.program.len());
        assert_eq!(run(&f.program, 0, X86_64, [0; 6]), ret::ALLOW);
        assert_eq!(run(&f.program, 329, X86_64, [0; 6]), ret::ALLOW);
    }
}
