//! The calling task's attributes: prctl, rlimits, names, keyring,
//! capabilities' bounding set, personality, scheduling, memory policy.

use std::ffi::CStr;

use nix::errno::Errno;

pub fn prctl(option: libc::c_int, arg: libc::c_ulong) -> Result<(), Errno> {
    // SAFETY: the prctl options we use take integer arguments only.
    let ret = unsafe {
        libc::prctl(
            option,
            arg,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    Errno::result(ret).map(|_| ())
}

pub fn setrlimit(resource: libc::c_int, soft: u64, hard: u64) -> Result<(), Errno> {
    let lim = libc::rlimit64 {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: `lim` is a valid rlimit64 for the duration of the call; pid 0
    // is the calling process.
    let ret = unsafe { libc::prlimit64(0, resource as _, &lim, std::ptr::null_mut()) };
    Errno::result(ret).map(|_| ())
}

pub fn setdomainname(name: &str) -> Result<(), Errno> {
    // SAFETY: the pointer and length describe `name`'s bytes, which outlive
    // the call; the kernel copies them.
    let ret = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    Errno::result(ret).map(|_| ())
}

/// `umask(2)` cannot fail; nix's wrapper needs a feature we do not use.
pub fn umask(mask: u32) {
    // SAFETY: umask only swaps an integer in the process's fs struct.
    unsafe { libc::umask(mask as libc::mode_t) };
}

/// Joins a new session keyring named `name` (what runc does unless
/// `--no-new-keyring`), so containers do not share the host's keys.
pub fn join_session_keyring(name: &CStr) -> Result<(), Errno> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: `name` is NUL-terminated and outlives the call.
    let ret =
        unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    Errno::result(ret).map(|_| ())
}

/// Whether capability `index` is in this thread's bounding set
/// (PR_CAPBSET_READ); EINVAL for one the running kernel does not know.
pub fn in_bounding_set(index: u8) -> Result<bool, Errno> {
    // SAFETY: PR_CAPBSET_READ takes an integer and reads nothing else.
    let ret = unsafe { libc::prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(index), 0, 0, 0) };
    Errno::result(ret).map(|r| r == 1)
}

/// `personality(2)` with a persona value.
pub fn personality(persona: libc::c_ulong) -> Result<(), Errno> {
    // SAFETY: personality takes a plain integer; -1 is the error value.
    let r = unsafe { libc::personality(persona) };
    Errno::result(r).map(drop)
}

/// The CPUs `pid` may run on.
pub fn sched_getaffinity(pid: libc::pid_t) -> Result<Vec<usize>, Errno> {
    // SAFETY: cpu_set_t is plain data, filled by the kernel below.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: set is valid for size_of::<cpu_set_t>() bytes.
    let r =
        unsafe { libc::sched_getaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    Errno::result(r)?;
    // SAFETY: c is below CPU_SETSIZE; CPU_ISSET reads inside `set`.
    Ok((0..libc::CPU_SETSIZE as usize)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect())
}

/// `set_mempolicy(mode | flags, nodemask, maxnode)` for the calling thread
/// (a single-threaded process here): `nodes` are node numbers.
pub fn set_mempolicy(mode: libc::c_int, nodes: &[usize]) -> Result<(), Errno> {
    let words = nodes.iter().max().map(|n| n / 64 + 1).unwrap_or(1);
    let mut mask = vec![0u64; words];
    for &n in nodes {
        mask[n / 64] |= 1u64 << (n % 64);
    }
    // The kernel reads maxnode - 1 bits.
    let maxnode = (words * 64 + 1) as libc::c_ulong;
    let ptr = if nodes.is_empty() {
        std::ptr::null()
    } else {
        mask.as_ptr()
    };
    // SAFETY: `mask` holds `words` u64s, which covers maxnode - 1 bits; a
    // null mask with an empty node list is what the kernel expects for
    // MPOL_DEFAULT / MPOL_LOCAL.
    let r = unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, ptr, maxnode) };
    Errno::result(r).map(drop)
}

/// `ioprio_set(IOPRIO_WHO_PROCESS, 0, class << 13 | level)`.
pub fn ioprio_set(class: u32, level: u32) -> Result<(), Errno> {
    const IOPRIO_WHO_PROCESS: libc::c_long = 1;
    let prio = ((class << 13) | (level & 0x1fff)) as libc::c_long;
    // SAFETY: three integer arguments; affects only the calling process.
    let r = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, prio) };
    Errno::result(r).map(drop)
}

/// The kernel's `struct sched_attr` (version 1, 48 bytes without clamps).
#[repr(C)]
#[derive(Default)]
pub struct SchedAttr {
    pub size: u32,
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
}

/// `sched_setattr(0, attr, 0)` for the calling thread.
pub fn sched_setattr(attr: &mut SchedAttr) -> Result<(), Errno> {
    attr.size = std::mem::size_of::<SchedAttr>() as u32;
    // SAFETY: attr is a valid sched_attr of the size it declares.
    let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, attr as *mut SchedAttr, 0) };
    Errno::result(r).map(drop)
}

/// The CPU the calling thread runs on now (it may move at any time).
pub fn current_cpu() -> Option<usize> {
    // SAFETY: sched_getcpu takes nothing and only reports.
    let c = unsafe { libc::sched_getcpu() };
    usize::try_from(c).ok()
}

/// `sched_setaffinity(0, ...)` to exactly `cpus`.
pub fn sched_setaffinity(pid: libc::pid_t, cpus: &[usize]) -> Result<(), Errno> {
    // SAFETY: cpu_set_t is plain data; CPU_ZERO/CPU_SET write inside it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cpus {
        if c >= libc::CPU_SETSIZE as usize {
            return Err(Errno::EINVAL);
        }
        // SAFETY: c is below CPU_SETSIZE, checked above.
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    // SAFETY: set is valid for size_of::<cpu_set_t>() bytes.
    let r = unsafe { libc::sched_setaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    Errno::result(r).map(drop)
}
