//! Classic BPF as the kernel runs seccomp filters, for measuring installed
//! programs of any runtime (ours, libseccomp's): the instructions a syscall
//! executes, and whether the kernel's action cache (Linux 5.11+) answers it
//! without running the filter at all.

/// One instruction, as `struct sock_filter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// Instructions from the raw bytes of a program (8 bytes each, host order).
pub fn parse(bytes: &[u8]) -> Result<Vec<Insn>, String> {
    if bytes.len() % 8 != 0 {
        return Err(format!(
            "{} bytes is not a whole number of instructions",
            bytes.len()
        ));
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|c| Insn {
            code: u16::from_le_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect())
}

/// `struct seccomp_data` for one call.
#[derive(Debug, Clone, Copy)]
pub struct Call {
    pub nr: u32,
    pub arch: u32,
    pub args: [u64; 6],
}

impl Call {
    fn word(&self, off: u32) -> Option<u32> {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&self.nr.to_le_bytes());
        data[4..8].copy_from_slice(&self.arch.to_le_bytes());
        // instruction_pointer (8..16) stays 0.
        for (i, a) in self.args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
        }
        let o = off as usize;
        if o % 4 != 0 || o + 4 > data.len() {
            return None;
        }
        Some(u32::from_le_bytes([
            data[o],
            data[o + 1],
            data[o + 2],
            data[o + 3],
        ]))
    }
}

// Opcode parts (linux/bpf_common.h).
const CLASS: u16 = 0x07;
const LD: u16 = 0x00;
const LDX: u16 = 0x01;
const ST: u16 = 0x02;
const STX: u16 = 0x03;
const ALU: u16 = 0x04;
const JMP: u16 = 0x05;
const RET: u16 = 0x06;
const MISC: u16 = 0x07;
const W_ABS: u16 = 0x20;
const W_LEN: u16 = 0x80;
const W_IMM: u16 = 0x00;
const W_MEM: u16 = 0x60;
const SRC_X: u16 = 0x08;

/// Runs `prog` on `call`: the return value and the instructions executed.
pub fn run(prog: &[Insn], call: &Call) -> Result<(u32, usize), String> {
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem = [0u32; 16];
    let mut pc = 0usize;
    let mut executed = 0usize;
    loop {
        let ins = *prog
            .get(pc)
            .ok_or_else(|| format!("ran off the end at {pc}"))?;
        executed += 1;
        pc += 1;
        let src = if ins.code & SRC_X != 0 { x } else { ins.k };
        let slot = |k: u32| (k as usize).min(15);
        match ins.code & CLASS {
            LD => {
                a = match ins.code & 0xe0 {
                    W_ABS => call
                        .word(ins.k)
                        .ok_or_else(|| format!("load at {} out of seccomp_data", ins.k))?,
                    W_LEN => 64,
                    W_IMM => ins.k,
                    W_MEM => mem[slot(ins.k)],
                    m => return Err(format!("load mode {m:#x}")),
                }
            }
            LDX => {
                x = match ins.code & 0xe0 {
                    W_LEN => 64,
                    W_IMM => ins.k,
                    W_MEM => mem[slot(ins.k)],
                    m => return Err(format!("ldx mode {m:#x}")),
                }
            }
            ST => mem[slot(ins.k)] = a,
            STX => mem[slot(ins.k)] = x,
            ALU => {
                a = match ins.code & 0xf0 {
                    0x00 => a.wrapping_add(src),
                    0x10 => a.wrapping_sub(src),
                    0x20 => a.wrapping_mul(src),
                    0x30 => a.checked_div(src).ok_or("division by zero")?,
                    0x40 => a | src,
                    0x50 => a & src,
                    0x60 => a.wrapping_shl(src),
                    0x70 => a.wrapping_shr(src),
                    0x80 => a.wrapping_neg(),
                    0x90 => a.checked_rem(src).ok_or("division by zero")?,
                    0xa0 => a ^ src,
                    op => return Err(format!("alu op {op:#x}")),
                }
            }
            JMP => {
                let op = ins.code & 0xf0;
                if op == 0x00 {
                    pc += ins.k as usize;
                    continue;
                }
                let taken = match op {
                    0x10 => a == src,
                    0x20 => a > src,
                    0x30 => a >= src,
                    0x40 => a & src != 0,
                    _ => return Err(format!("jump op {op:#x}")),
                };
                pc += if taken { ins.jt } else { ins.jf } as usize;
            }
            RET => {
                return Ok((if ins.code & 0x18 == 0x10 { a } else { ins.k }, executed));
            }
            MISC => {
                if ins.code & 0xf8 == 0 {
                    x = a;
                } else {
                    a = x;
                }
            }
            _ => unreachable!("three-bit class"),
        }
    }
}

/// What `seccomp_is_const_allow` (kernel/seccomp.c) decides for (nr, arch):
/// true when the filter allows the syscall whatever its arguments, judged
/// by following only the instructions the kernel's emulator knows. Such
/// syscalls go into the kernel's per-filter bitmap and never run the filter.
pub fn kernel_caches(prog: &[Insn], nr: u32, arch: u32) -> bool {
    const LD_W_ABS: u16 = LD | W_ABS;
    const RET_K: u16 = RET;
    const JA: u16 = JMP;
    const JEQ_K: u16 = JMP | 0x10;
    const JGT_K: u16 = JMP | 0x20;
    const JGE_K: u16 = JMP | 0x30;
    const JSET_K: u16 = JMP | 0x40;
    const AND_K: u16 = ALU | 0x50;
    let mut reg = 0u32;
    let mut pc = 0usize;
    while let Some(ins) = prog.get(pc) {
        match ins.code {
            LD_W_ABS => match ins.k {
                0 => reg = nr,
                4 => reg = arch,
                _ => return false,
            },
            RET_K => return ins.k == 0x7fff_0000,
            JA => pc += ins.k as usize,
            JEQ_K | JGT_K | JGE_K | JSET_K => {
                let taken = match ins.code {
                    JEQ_K => reg == ins.k,
                    JGT_K => reg > ins.k,
                    JGE_K => reg >= ins.k,
                    _ => reg & ins.k != 0,
                };
                pc += if taken { ins.jt } else { ins.jf } as usize;
            }
            AND_K => reg &= ins.k,
            _ => return false,
        }
        pc += 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn i(code: u16, jt: u8, jf: u8, k: u32) -> Insn {
        Insn { code, jt, jf, k }
    }

    const ALLOW: u32 = 0x7fff_0000;
    const EPERM: u32 = 0x0005_0001;

    /// nr == 39 → allow; args[0] == 7 → allow; else EPERM.
    fn prog() -> Vec<Insn> {
        vec![
            i(0x20, 0, 0, 0),     // ld nr
            i(0x15, 0, 1, 39),    // jeq 39
            i(0x06, 0, 0, ALLOW), // ret allow
            i(0x20, 0, 0, 16),    // ld args[0] low
            i(0x15, 0, 1, 7),     // jeq 7
            i(0x06, 0, 0, ALLOW), // ret allow
            i(0x06, 0, 0, EPERM), // ret EPERM
        ]
    }

    #[test]
    fn runs_and_counts() {
        let call = |nr, a0| Call {
            nr,
            arch: 0,
            args: [a0, 0, 0, 0, 0, 0],
        };
        assert_eq!(run(&prog(), &call(39, 0)), Ok((ALLOW, 3)));
        assert_eq!(run(&prog(), &call(1, 7)), Ok((ALLOW, 5)));
        assert_eq!(run(&prog(), &call(1, 8)), Ok((EPERM, 5)));
    }

    #[test]
    fn the_cache_needs_an_allow_that_reads_no_argument() {
        assert!(kernel_caches(&prog(), 39, 0));
        // Reaches the argument load: the kernel cannot cache it.
        assert!(!kernel_caches(&prog(), 1, 0));
        // An instruction the emulator does not know (tax) on the path.
        let mut p = prog();
        p.insert(1, i(0x07, 0, 0, 0));
        assert!(!kernel_caches(&p, 39, 0));
    }

    #[test]
    fn bad_programs_are_errors() {
        assert!(parse(&[0; 7]).is_err());
        assert!(run(
            &[i(0x20, 0, 0, 64)],
            &Call {
                nr: 0,
                arch: 0,
                args: [0; 6]
            }
        )
        .is_err());
        assert!(run(
            &[i(0x20, 0, 0, 0)],
            &Call {
                nr: 0,
                arch: 0,
                args: [0; 6]
            }
        )
        .is_err());
    }
}
