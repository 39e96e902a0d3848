//! Architectures a filter can cover: their audit tokens and syscall tables
//! (from the `syscalls` crate). x32 shares x86_64's token and numbers, with
//! bit 30 set.

use oci_spec::runtime::Arch;

/// x32 syscall numbers are x86_64's with this bit set.
pub const X32_BIT: u32 = 0x4000_0000;

/// An architecture a filter can cover, with its syscall table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// x86-64.
    X86_64,
    /// x32 (x86-64's token, numbers with bit 30).
    X32,
    /// 32-bit x86.
    X86,
    /// 64-bit ARM.
    Aarch64,
    /// 32-bit ARM (EABI).
    Arm,
    /// 64-bit RISC-V.
    Riscv64,
    /// 64-bit big-endian PowerPC.
    Ppc64,
    /// 64-bit little-endian PowerPC.
    Ppc64le,
    /// 64-bit IBM Z.
    S390x,
}

impl Table {
    /// The table of a runtime-spec architecture, if we have it.
    pub fn from_oci(a: Arch) -> Option<Table> {
        Some(match a {
            Arch::ScmpArchX86_64 => Table::X86_64,
            Arch::ScmpArchX32 => Table::X32,
            Arch::ScmpArchX86 => Table::X86,
            Arch::ScmpArchAarch64 => Table::Aarch64,
            Arch::ScmpArchArm => Table::Arm,
            Arch::ScmpArchRiscv64 => Table::Riscv64,
            Arch::ScmpArchPpc64 => Table::Ppc64,
            Arch::ScmpArchPpc64le => Table::Ppc64le,
            Arch::ScmpArchS390x => Table::S390x,
            _ => return None,
        })
    }

    /// The architecture this binary runs on.
    pub fn native() -> Table {
        if cfg!(target_arch = "x86_64") {
            Table::X86_64
        } else if cfg!(target_arch = "aarch64") {
            Table::Aarch64
        } else if cfg!(target_arch = "x86") {
            Table::X86
        } else if cfg!(target_arch = "arm") {
            Table::Arm
        } else if cfg!(target_arch = "riscv64") {
            Table::Riscv64
        } else if cfg!(all(target_arch = "powerpc64", target_endian = "little")) {
            Table::Ppc64le
        } else if cfg!(target_arch = "powerpc64") {
            Table::Ppc64
        } else {
            Table::S390x
        }
    }

    /// AUDIT_ARCH_* from <linux/audit.h>.
    pub fn audit(self) -> u32 {
        match self {
            Table::X86_64 | Table::X32 => 0xC000_003E,
            Table::X86 => 0x4000_0003,
            Table::Aarch64 => 0xC000_00B7,
            Table::Arm => 0x4000_0028,
            Table::Riscv64 => 0xC000_00F3,
            Table::Ppc64 => 0x8000_0015,
            Table::Ppc64le => 0xC000_0015,
            Table::S390x => 0x8000_0016,
        }
    }

    /// Whether its syscalls take 64-bit arguments.
    pub fn is_64bit(self) -> bool {
        !matches!(self, Table::X86 | Table::Arm)
    }

    /// Whether this machine's kernel can run programs of this
    /// architecture (its own, and the compat ABIs it has: x86 and x32 on
    /// x86-64, 32-bit ARM on arm64). Only these carry a syscall table: a
    /// filter's branch for any other audit token would never be taken.
    pub fn runs_here(self) -> bool {
        match self {
            Table::X86_64 | Table::X32 => cfg!(target_arch = "x86_64"),
            Table::X86 => cfg!(any(target_arch = "x86_64", target_arch = "x86")),
            Table::Aarch64 => cfg!(target_arch = "aarch64"),
            Table::Arm => cfg!(any(target_arch = "aarch64", target_arch = "arm")),
            Table::Riscv64 => cfg!(target_arch = "riscv64"),
            Table::Ppc64 => cfg!(all(target_arch = "powerpc64", target_endian = "big")),
            Table::Ppc64le => cfg!(all(target_arch = "powerpc64", target_endian = "little")),
            Table::S390x => cfg!(target_arch = "s390x"),
        }
    }

    /// The syscall's number on this architecture, if it has it (and runs
    /// here: see [`Table::runs_here`]).
    pub fn number(self, name: &str) -> Option<u32> {
        use std::str::FromStr;
        if !self.runs_here() {
            return None;
        }
        let n = match self {
            #[cfg(target_arch = "x86_64")]
            Table::X86_64 => syscalls::x86_64::Sysno::from_str(name).ok()?.id(),
            #[cfg(target_arch = "x86_64")]
            Table::X32 => {
                return syscalls::x86_64::Sysno::from_str(name)
                    .ok()
                    .map(|s| s.id() as u32 | X32_BIT)
            }
            #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
            Table::X86 => syscalls::x86::Sysno::from_str(name).ok()?.id(),
            #[cfg(target_arch = "aarch64")]
            Table::Aarch64 => syscalls::aarch64::Sysno::from_str(name).ok()?.id(),
            #[cfg(any(target_arch = "aarch64", target_arch = "arm"))]
            Table::Arm => syscalls::arm::Sysno::from_str(name).ok()?.id(),
            #[cfg(target_arch = "riscv64")]
            Table::Riscv64 => syscalls::riscv64::Sysno::from_str(name).ok()?.id(),
            #[cfg(target_arch = "powerpc64")]
            Table::Ppc64 | Table::Ppc64le => syscalls::powerpc64::Sysno::from_str(name).ok()?.id(),
            #[cfg(target_arch = "s390x")]
            Table::S390x => syscalls::s390x::Sysno::from_str(name).ok()?.id(),
            #[allow(unreachable_patterns)]
            _ => return None,
        };
        Some(n as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn numbers_differ_per_arch() {
        assert_eq!(Table::X86_64.number("getppid"), Some(110));
        assert_eq!(Table::X86.number("getppid"), Some(64));
        assert_eq!(Table::X32.number("getppid"), Some(110 | X32_BIT));
        assert_eq!(Table::X86_64.number("no_such_syscall"), None);
        // Kernels of x86-64 run x86-64, x32 and x86 programs only.
        assert!(!Table::Aarch64.runs_here());
        assert_eq!(Table::Aarch64.number("getppid"), None);
        // socketcall exists on x86 only.
        assert!(Table::X86.number("socketcall").is_some());
        assert!(Table::X86_64.number("socketcall").is_none());
    }
}
