//! cgroup v2 device rules: v2 has no devices.allow/deny files; the kernel
//! asks a BPF_PROG_TYPE_CGROUP_DEVICE program attached to the cgroup. We
//! compile the same effective rule list v1 gets (it starts with a
//! deny-all) into such a program with v1's meaning (the last rule that
//! matches decides) and attach it, replacing any earlier one.

use std::os::fd::OwnedFd;
use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::{Error, Result};

/// The kernel's access bits (BPF_DEVCG_ACC_*) and device types.
const ACC_MKNOD: u32 = 1;
const ACC_READ: u32 = 2;
const ACC_WRITE: u32 = 4;
pub(crate) const DEV_BLOCK: i32 = 1;
pub(crate) const DEV_CHAR: i32 = 2;

/// One rule in the kernel's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    /// DEV_BLOCK, DEV_CHAR; None: every type.
    pub typ: Option<i32>,
    pub major: Option<i64>,
    pub minor: Option<i64>,
    pub access: u32,
}

fn access_bits(s: &str) -> u32 {
    s.chars().fold(0, |a, c| {
        a | match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => 0,
        }
    })
}

impl Rule {
    /// A spec rule; fifo rules name nothing the kernel asks about.
    pub fn from_spec(d: &LinuxDeviceCgroup) -> Option<Rule> {
        let typ = match d.typ() {
            Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => Some(DEV_CHAR),
            Some(LinuxDeviceType::B) => Some(DEV_BLOCK),
            Some(LinuxDeviceType::P) => return None,
            Some(LinuxDeviceType::A) | None => None,
        };
        Some(Rule {
            allow: d.allow(),
            typ,
            // "a" means every device, whatever numbers it carries.
            major: typ.and(d.major()),
            minor: typ.and(d.minor()),
            access: access_bits(d.access().as_deref().unwrap_or("rwm")),
        })
    }

    pub fn allow_default(t: char, major: Option<i64>, minor: Option<i64>, access: &str) -> Rule {
        Rule {
            allow: true,
            typ: Some(if t == 'b' { DEV_BLOCK } else { DEV_CHAR }),
            major,
            minor,
            access: access_bits(access),
        }
    }
}

/// One eBPF instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

const LDX_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const AND_K: u8 = 0x57;
const RSH_K: u8 = 0x77;
const MOV_K: u8 = 0xb7;
const MOV_X: u8 = 0xbf;
const JEQ_K: u8 = 0x15;
const JNE_K: u8 = 0x55;
const EXIT: u8 = 0x95;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        dst,
        src,
        off,
        imm,
    }
}

/// The program: r2 = type, r3 = access, r4 = major, r5 = minor from the
/// context (struct bpf_cgroup_dev_ctx), then the rules last to first.
pub fn compile(rules: &[Rule]) -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(AND_K, 2, 0, 0, 0xffff),
        insn(LDX_W, 3, 1, 0, 0),
        insn(RSH_K, 3, 0, 0, 16),
        insn(LDX_W, 4, 1, 4, 0),
        insn(LDX_W, 5, 1, 8, 0),
    ];
    for r in rules.iter().rev() {
        // Each test jumps past the rest of the block when it fails.
        let mut tests: Vec<(u8, u8, i32)> = vec![];
        if let Some(t) = r.typ {
            tests.push((JNE_K, 2, t));
        }
        if let Some(m) = r.major {
            tests.push((JNE_K, 4, m as i32));
        }
        if let Some(m) = r.minor {
            tests.push((JNE_K, 5, m as i32));
        }
        // allow: every requested bit is in the rule; deny: any of them is.
        let (mask, skip_if) = if r.allow {
            (!r.access & 7, JNE_K)
        } else {
            (r.access, JEQ_K)
        };
        let len = tests.len() + 5;
        for (i, (code, reg, imm)) in tests.iter().enumerate() {
            p.push(insn(*code, *reg, 0, (len - i - 1) as i16, *imm));
        }
        p.push(insn(MOV_X, 6, 3, 0, 0));
        p.push(insn(AND_K, 6, 0, 0, mask as i32));
        p.push(insn(skip_if, 6, 0, 2, 0));
        p.push(insn(MOV_K, 0, 0, 0, r.allow as i32));
        p.push(insn(EXIT, 0, 0, 0, 0));
    }
    p.push(insn(MOV_K, 0, 0, 0, 1));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

/// Loads the program for `rules` and attaches it to the cgroup at `dir`,
/// then detaches whatever device programs were there before.
pub fn apply(dir: &Path, rules: &[Rule]) -> Result<()> {
    let err = |what: &str, e: nix::errno::Errno| Error::Apply {
        path: dir.to_path_buf(),
        msg: format!(
            "device rules (eBPF): {what}: {}",
            crate::errno_text(&e.into())
        ),
    };
    let cg = nix::fcntl::open(
        dir,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| err("open cgroup", e))?;
    let cg = crate::sys::own_fd(cg);
    let old = crate::sys::bpf_query_device_progs(&cg).map_err(|e| err("query", e))?;
    let prog = crate::sys::bpf_load_device_prog(&compile(rules)).map_err(|e| err("load", e))?;
    crate::sys::bpf_attach_device_prog(&cg, &prog).map_err(|e| err("attach", e))?;
    for id in old {
        let old: OwnedFd = crate::sys::bpf_prog_fd_by_id(id).map_err(|e| err("find old", e))?;
        crate::sys::bpf_detach_device_prog(&cg, &old).map_err(|e| err("detach old", e))?;
    }
    Ok(())
}

/// Ids of the device programs attached to the cgroup at `dir` (v2): one
/// of ours after any number of updates, plus any the cgroup's owner (e.g.
/// systemd) attached.
pub fn attached(dir: &Path) -> Result<Vec<u32>> {
    let err = |e: nix::errno::Errno| Error::Io {
        path: dir.to_path_buf(),
        msg: crate::errno_text(&e.into()),
    };
    let cg = nix::fcntl::open(
        dir,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(err)?;
    crate::sys::bpf_query_device_progs(&crate::sys::own_fd(cg)).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the program on one request, as the kernel would.
    fn run(p: &[Insn], typ: i32, access: u32, major: u32, minor: u32) -> u64 {
        let ctx = [((access << 16) | typ as u32), major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = p[pc];
            pc += 1;
            let (d, s) = (i.dst as usize, i.src as usize);
            match i.code {
                LDX_W => {
                    assert_eq!(s, 1);
                    r[d] = ctx[i.off as usize / 4] as u64;
                }
                AND_K => r[d] &= i.imm as u32 as u64,
                RSH_K => r[d] >>= i.imm,
                MOV_K => r[d] = i.imm as u64,
                MOV_X => r[d] = r[s],
                JEQ_K if r[d] == i.imm as u64 => pc += i.off as usize,
                JNE_K if r[d] != i.imm as u64 => pc += i.off as usize,
                JEQ_K | JNE_K => {}
                EXIT => return r[0],
                other => panic!("unknown opcode {other:#x}"),
            }
        }
    }

    fn rule(
        allow: bool,
        typ: Option<i32>,
        major: Option<i64>,
        minor: Option<i64>,
        access: &str,
    ) -> Rule {
        Rule {
            allow,
            typ,
            major,
            minor,
            access: access_bits(access),
        }
    }

    #[test]
    fn last_matching_rule_decides_like_v1() {
        let rules = vec![
            rule(false, None, None, None, "rwm"),
            rule(true, Some(DEV_CHAR), Some(1), Some(3), "rw"),
            rule(true, Some(DEV_CHAR), Some(136), None, "rwm"),
            rule(false, Some(DEV_CHAR), Some(136), Some(7), "w"),
        ];
        let p = compile(&rules);
        let rw = ACC_READ | ACC_WRITE;
        assert_eq!(run(&p, DEV_CHAR, ACC_READ, 1, 3), 1);
        assert_eq!(run(&p, DEV_CHAR, rw, 1, 3), 1);
        // mknod was not in the allow rule: the deny-all decides.
        assert_eq!(run(&p, DEV_CHAR, ACC_MKNOD, 1, 3), 0);
        assert_eq!(run(&p, DEV_BLOCK, ACC_READ, 1, 3), 0);
        assert_eq!(run(&p, DEV_CHAR, ACC_READ, 1, 5), 0);
        assert_eq!(run(&p, DEV_CHAR, rw, 136, 4), 1);
        assert_eq!(run(&p, DEV_CHAR, ACC_READ, 136, 7), 1);
        assert_eq!(run(&p, DEV_CHAR, ACC_WRITE, 136, 7), 0);
    }

    #[test]
    fn no_rules_allow_everything() {
        assert_eq!(run(&compile(&[]), DEV_BLOCK, ACC_WRITE, 8, 0), 1);
        let deny_one = [rule(false, Some(DEV_BLOCK), Some(8), None, "w")];
        let p = compile(&deny_one);
        assert_eq!(run(&p, DEV_BLOCK, ACC_WRITE, 8, 0), 0);
        assert_eq!(run(&p, DEV_BLOCK, ACC_READ, 8, 0), 1);
        assert_eq!(run(&p, DEV_BLOCK, ACC_WRITE, 9, 0), 1);
    }

    #[test]
    fn spec_rules_convert() {
        let all: LinuxDeviceCgroup =
            serde_json::from_str(r#"{"allow":false,"type":"a","major":4,"access":"rw"}"#).unwrap();
        assert_eq!(
            Rule::from_spec(&all),
            Some(rule(false, None, None, None, "rw"))
        );
        let fifo: LinuxDeviceCgroup = serde_json::from_str(r#"{"allow":true,"type":"p"}"#).unwrap();
        assert_eq!(Rule::from_spec(&fifo), None);
    }
}
