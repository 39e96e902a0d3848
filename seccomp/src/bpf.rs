//! A small classic-BPF assembler: instructions with symbolic forward
//! labels, and a relaxation pass that turns conditional jumps whose target
//! is more than 255 instructions away into short jumps to `ja` trampolines.

use libc::sock_filter;

pub const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
pub const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
pub const JGT_K: u16 = 0x25;
pub const JGE_K: u16 = 0x35;
pub const JA: u16 = 0x05;
pub const RET_K: u16 = 0x06;
pub const AND_K: u16 = 0x54; // BPF_ALU | BPF_AND | BPF_K

pub type Label = usize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Label(Label),
    /// A fixed number of instructions to skip.
    Skip(u8),
}

#[derive(Debug, Clone)]
enum Item {
    Stmt {
        code: u16,
        k: u32,
    },
    Jump {
        code: u16,
        k: u32,
        jt: Target,
        jf: Target,
    },
    Ja(Label),
    Mark(Label),
}

#[derive(Default)]
pub struct Asm {
    items: Vec<Item>,
    labels: usize,
}

impl Asm {
    pub fn label(&mut self) -> Label {
        self.labels += 1;
        self.labels - 1
    }

    pub fn mark(&mut self, l: Label) {
        self.items.push(Item::Mark(l));
    }

    pub fn load(&mut self, offset: u32) {
        self.items.push(Item::Stmt {
            code: LD_W_ABS,
            k: offset,
        });
    }

    pub fn and(&mut self, k: u32) {
        self.items.push(Item::Stmt { code: AND_K, k });
    }

    pub fn ret(&mut self, k: u32) {
        self.items.push(Item::Stmt { code: RET_K, k });
    }

    pub fn jump(&mut self, code: u16, k: u32, jt: Target, jf: Target) {
        self.items.push(Item::Jump { code, k, jt, jf });
    }

    /// Resolves labels into a program. Every jump must go forward.
    pub fn finish(mut self) -> Result<Vec<sock_filter>, String> {
        loop {
            let (pos, labels) = self.layout();
            let mut far = None;
            for (i, item) in self.items.iter().enumerate() {
                if let Item::Jump { jt, jf, .. } = item {
                    for t in [jt, jf] {
                        if let Target::Label(l) = t {
                            let d = labels[*l].checked_sub(pos[i] + 1).ok_or("backward jump")?;
                            if d > 255 {
                                far = Some(i);
                            }
                        }
                    }
                }
            }
            let Some(i) = far else { break };
            // jcond k, L1, L2  →  jcond k, +0, +1; ja L1; ja L2
            let Item::Jump { code, k, jt, jf } = self.items[i].clone() else {
                unreachable!()
            };
            let to_ja = |t: Target, skip_extra: u8| match t {
                Target::Label(l) => Item::Ja(l),
                Target::Skip(n) => Item::Stmt {
                    code: JA,
                    k: n as u32 + skip_extra as u32,
                },
            };
            self.items[i] = Item::Jump {
                code,
                k,
                jt: Target::Skip(0),
                jf: Target::Skip(1),
            };
            self.items.insert(i + 1, to_ja(jt, 1));
            self.items.insert(i + 2, to_ja(jf, 0));
        }
        let (pos, labels) = self.layout();
        let mut out = Vec::new();
        for (i, item) in self.items.iter().enumerate() {
            let resolve = |t: &Target| -> u8 {
                match t {
                    Target::Label(l) => (labels[*l] - pos[i] - 1) as u8,
                    Target::Skip(n) => *n,
                }
            };
            match item {
                Item::Stmt { code, k } => out.push(sock_filter {
                    code: *code,
                    jt: 0,
                    jf: 0,
                    k: *k,
                }),
                Item::Jump { code, k, jt, jf } => out.push(sock_filter {
                    code: *code,
                    jt: resolve(jt),
                    jf: resolve(jf),
                    k: *k,
                }),
                Item::Ja(l) => out.push(sock_filter {
                    code: JA,
                    jt: 0,
                    jf: 0,
                    k: (labels[*l] - pos[i] - 1) as u32,
                }),
                Item::Mark(_) => {}
            }
        }
        Ok(out)
    }

    /// Instruction index of every item, and of every label.
    fn layout(&self) -> (Vec<usize>, Vec<usize>) {
        let mut pos = Vec::with_capacity(self.items.len());
        let mut labels = vec![usize::MAX; self.labels];
        let mut n = 0;
        for item in &self.items {
            pos.push(n);
            match item {
                Item::Mark(l) => labels[*l] = n,
                _ => n += 1,
            }
        }
        (pos, labels)
    }
}

/// Runs a program on (arch, nr, args) as the kernel would: for tests.
#[cfg(test)]
pub fn run(prog: &[sock_filter], nr: u32, arch: u32, args: [u64; 6]) -> u32 {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&nr.to_le_bytes());
    data[4..8].copy_from_slice(&arch.to_le_bytes());
    for (i, a) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
    }
    let (mut a, mut pc) = (0u32, 0usize);
    loop {
        let ins = prog[pc];
        pc += 1;
        match ins.code {
            LD_W_ABS => {
                let o = ins.k as usize;
                a = u32::from_le_bytes([data[o], data[o + 1], data[o + 2], data[o + 3]]);
            }
            AND_K => a &= ins.k,
            RET_K => return ins.k,
            JA => pc += ins.k as usize,
            JEQ_K | JGT_K | JGE_K => {
                let taken = match ins.code {
                    JEQ_K => a == ins.k,
                    JGT_K => a > ins.k,
                    _ => a >= ins.k,
                };
                pc += if taken { ins.jt } else { ins.jf } as usize;
            }
            other => panic!("unknown opcode {other:#x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn far_jumps_get_trampolines() {
        let mut a = Asm::default();
        let far = a.label();
        a.load(0);
        a.jump(JEQ_K, 7, Target::Label(far), Target::Skip(0));
        for _ in 0..300 {
            a.ret(1);
        }
        a.mark(far);
        a.ret(2);
        let p = a.finish().unwrap();
        assert_eq!(run(&p, 7, 0, [0; 6]), 2);
        assert_eq!(run(&p, 8, 0, [0; 6]), 1);
        assert!(p.len() > 302);
    }
}
