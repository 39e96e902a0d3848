//! This process's own executable: moving the running image onto a
//! protected copy of its file without an exec (CVE-2019-5736, see
//! `selfprotect`), and the sealed memfd copy for where that cannot be done.
//!
//! The kernel names a process's executable (`/proc/<pid>/exe`) by
//! `mm->exe_file`, which `prctl(PR_SET_MM_MAP)` may change once no mapping
//! of the old file's path is left. So every mapping of the binary is first
//! replaced by the same bytes from the protected path: clean ones (text,
//! read-only data) are mapped again from it, the written ones (relocated
//! data, globals) are copied into anonymous memory and moved into place.
//! Nothing else changes: the same addresses, the same contents. A
//! re-exec does the same for ~1 ms on a VM (a second start of glibc, which
//! probes the CPU with trapping `cpuid`s); this costs a few syscalls.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::errno::Errno;

/// One mapping of the executable, from `/proc/self/maps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExeMapping {
    pub start: usize,
    pub end: usize,
    pub prot: libc::c_int,
    pub offset: i64,
}

/// The mappings of the file `(dev, ino)` in a `/proc/<pid>/maps` text.
pub fn mappings_of(maps: &str, dev: u64, ino: u64) -> Vec<ExeMapping> {
    let want_dev = (libc::major(dev), libc::minor(dev));
    maps.lines()
        .filter_map(|line| {
            let mut f = line.split_ascii_whitespace();
            let (range, perms, offset, devno, inode) =
                (f.next()?, f.next()?, f.next()?, f.next()?, f.next()?);
            if inode.parse::<u64>().ok()? != ino {
                return None;
            }
            let (maj, min) = devno.split_once(':')?;
            let this_dev = (
                u32::from_str_radix(maj, 16).ok()?,
                u32::from_str_radix(min, 16).ok()?,
            );
            if this_dev != want_dev {
                return None;
            }
            let (start, end) = range.split_once('-')?;
            let p = perms.as_bytes();
            let bit = |i: usize, c: u8, v: libc::c_int| if p.get(i) == Some(&c) { v } else { 0 };
            Some(ExeMapping {
                start: usize::from_str_radix(start, 16).ok()?,
                end: usize::from_str_radix(end, 16).ok()?,
                prot: bit(0, b'r', libc::PROT_READ)
                    | bit(1, b'w', libc::PROT_WRITE)
                    | bit(2, b'x', libc::PROT_EXEC),
                offset: i64::from_str_radix(offset, 16).ok()?,
            })
        })
        .collect()
}

/// The address ranges of this process's image that the loader or the
/// program may have written: its PT_LOAD segments marked writable (data,
/// and RELRO, which is written by relocation before it is made read-only).
pub fn writable_segments() -> Vec<(usize, usize)> {
    // SAFETY: getauxval only reads the auxiliary vector.
    let (phdr, phnum) = unsafe {
        (
            libc::getauxval(libc::AT_PHDR) as usize,
            libc::getauxval(libc::AT_PHNUM) as usize,
        )
    };
    if phdr == 0 || phnum == 0 {
        return vec![];
    }
    // SAFETY: AT_PHDR/AT_PHNUM describe this process's own program
    // headers, which the kernel mapped with the image and which stay
    // mapped, read-only, for its whole life.
    let headers = unsafe { std::slice::from_raw_parts(phdr as *const libc::Elf64_Phdr, phnum) };
    // The load bias: where PT_PHDR says the headers are, against where
    // they are.
    let bias = headers
        .iter()
        .find(|h| h.p_type == libc::PT_PHDR)
        .map(|h| phdr.wrapping_sub(h.p_vaddr as usize))
        .unwrap_or(0);
    let page = 4096usize.max(page_size());
    headers
        .iter()
        .filter(|h| h.p_type == libc::PT_LOAD && h.p_flags & libc::PF_W != 0)
        .map(|h| {
            let start = bias.wrapping_add(h.p_vaddr as usize) & !(page - 1);
            let end = bias.wrapping_add((h.p_vaddr + h.p_memsz) as usize);
            (start, end)
        })
        .collect()
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).unwrap_or(4096)
}

/// Replaces each mapping in `maps` by the same bytes taken from `file`
/// (the same file through another path). Mappings overlapping `written`
/// are copied into anonymous memory; the others are mapped from `file`.
///
/// The caller must be single-threaded, and must not allocate or write a
/// global between its call and return (nothing here does): a write to a
/// data mapping between its copy and the move would be lost.
pub fn remap_from(
    file: BorrowedFd<'_>,
    maps: &[ExeMapping],
    written: &[(usize, usize)],
) -> Result<(), Errno> {
    for m in maps {
        let len = m.end - m.start;
        let copy = written.iter().any(|&(s, e)| m.start < e && s < m.end);
        if copy {
            copy_in_place(m, len)?;
        } else {
            // SAFETY: the range is one whole mapping of this same file;
            // MAP_FIXED replaces it with the file's same bytes at the same
            // offset (a clean mapping holds nothing but those), so code
            // running from it, this function's included, goes on unchanged.
            let p = unsafe {
                libc::mmap(
                    m.start as *mut libc::c_void,
                    len,
                    m.prot,
                    libc::MAP_PRIVATE | libc::MAP_FIXED,
                    file.as_raw_fd(),
                    m.offset,
                )
            };
            if p == libc::MAP_FAILED {
                return Err(Errno::last());
            }
        }
    }
    Ok(())
}

/// A written mapping's bytes moved into anonymous memory at the same place.
fn copy_in_place(m: &ExeMapping, len: usize) -> Result<(), Errno> {
    // SAFETY: a fresh anonymous mapping chosen by the kernel.
    let tmp = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
            -1,
            0,
        )
    };
    if tmp == libc::MAP_FAILED {
        return Err(Errno::last());
    }
    // SAFETY: both ranges are `len` bytes, mapped and readable (the source
    // is one of our own mappings with PROT_READ), and they do not overlap.
    // From the copy to the move nothing writes the source (the caller's
    // contract); mremap then replaces it atomically.
    unsafe {
        std::ptr::copy_nonoverlapping(m.start as *const u8, tmp as *mut u8, len);
        if libc::mprotect(tmp, len, m.prot) != 0 {
            let e = Errno::last();
            libc::munmap(tmp, len);
            return Err(e);
        }
        let moved = libc::mremap(
            tmp,
            len,
            len,
            libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
            m.start as *mut libc::c_void,
        );
        if moved == libc::MAP_FAILED {
            let e = Errno::last();
            libc::munmap(tmp, len);
            return Err(e);
        }
    }
    Ok(())
}

/// The memory-layout fields `PR_SET_MM_MAP` takes, from `/proc/self/stat`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MmLayout {
    pub start_code: u64,
    pub end_code: u64,
    pub start_data: u64,
    pub end_data: u64,
    pub start_brk: u64,
    pub start_stack: u64,
    pub arg_start: u64,
    pub arg_end: u64,
    pub env_start: u64,
    pub env_end: u64,
}

/// Parses the layout out of a `/proc/<pid>/stat` line (proc(5): fields
/// 26-28 and 45-51, counted from 1; the command name may hold spaces).
pub fn parse_stat_layout(stat: &str) -> Option<MmLayout> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // Field 3 (state) is the first after the name.
    let f: Vec<u64> = rest
        .split_ascii_whitespace()
        .skip(1)
        .map(|v| v.parse::<u64>().unwrap_or(0))
        .collect();
    let at = |n: usize| f.get(n - 4).copied();
    Some(MmLayout {
        start_code: at(26)?,
        end_code: at(27)?,
        start_stack: at(28)?,
        start_data: at(45)?,
        end_data: at(46)?,
        start_brk: at(47)?,
        arg_start: at(48)?,
        arg_end: at(49)?,
        env_start: at(50)?,
        env_end: at(51)?,
    })
}

/// struct prctl_mm_map (linux/prctl.h).
#[repr(C)]
struct PrctlMmMap {
    start_code: u64,
    end_code: u64,
    start_data: u64,
    end_data: u64,
    start_brk: u64,
    brk: u64,
    start_stack: u64,
    arg_start: u64,
    arg_end: u64,
    env_start: u64,
    env_end: u64,
    auxv: *mut u64,
    auxv_size: u32,
    exe_fd: u32,
}

const PR_SET_MM: libc::c_int = 35;
const PR_SET_MM_MAP: libc::c_ulong = 14;

/// Makes `file` this process's executable (`/proc/self/exe`), keeping the
/// memory layout as it is. The kernel refuses (EBUSY) while any mapping
/// of the old executable's path is left, and without CAP_SYS_ADMIN or
/// CAP_CHECKPOINT_RESTORE (EPERM).
pub fn set_exe_file(file: BorrowedFd<'_>, layout: &MmLayout) -> Result<(), Errno> {
    // The current program break, read just before it is written back (the
    // call sets it too): nothing allocates in between.
    // SAFETY: brk(0) only reports the break.
    let brk = unsafe { libc::syscall(libc::SYS_brk, 0usize) } as u64;
    let map = PrctlMmMap {
        start_code: layout.start_code,
        end_code: layout.end_code,
        start_data: layout.start_data,
        end_data: layout.end_data,
        start_brk: layout.start_brk,
        brk,
        start_stack: layout.start_stack,
        arg_start: layout.arg_start,
        arg_end: layout.arg_end,
        env_start: layout.env_start,
        env_end: layout.env_end,
        auxv: std::ptr::null_mut(),
        auxv_size: 0,
        exe_fd: u32::try_from(file.as_raw_fd()).map_err(|_| Errno::EBADF)?,
    };
    // SAFETY: the struct is prctl_mm_map's layout and lives across the
    // call; the kernel copies it in. Every field but exe_fd is the value
    // the process already has, so only the executable changes.
    let ret = unsafe {
        libc::prctl(
            PR_SET_MM,
            PR_SET_MM_MAP,
            &map as *const PrctlMmMap as libc::c_ulong,
            std::mem::size_of::<PrctlMmMap>() as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    Errno::result(ret).map(drop)
}

/// A sealed in-memory copy of `/proc/self/exe`: nothing can write to it,
/// so a container that reaches `/proc/<pid>/exe` of a runtime process
/// running from it cannot modify the runtime on disk.
pub fn sealed_copy_of_self() -> Result<OwnedFd, Errno> {
    use std::io::Read;
    const MFD_CLOEXEC: libc::c_uint = 1;
    const MFD_ALLOW_SEALING: libc::c_uint = 2;
    // SAFETY: the name is a NUL-terminated literal; the kernel returns a
    // new descriptor.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_memfd_create,
            c"estiba".as_ptr(),
            MFD_CLOEXEC | MFD_ALLOW_SEALING,
        )
    };
    let memfd = super::own_fd(Errno::result(fd)? as RawFd);
    let io = |e: std::io::Error| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
    let mut exe = std::fs::File::open("/proc/self/exe").map_err(io)?;
    let mut out = std::fs::File::from(memfd);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = exe.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        std::io::Write::write_all(&mut out, &buf[..n]).map_err(io)?;
    }
    let memfd = OwnedFd::from(out);
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // The kernel refuses the write seal (EBUSY, after its own wait of
    // ~150 ms) while a page of the copy is still referenced elsewhere,
    // which the benchmark's helper met once in ~400 runs of three copies
    // each: a few tries.
    for attempt in 1.. {
        // SAFETY: F_ADD_SEALS takes an integer argument.
        match Errno::result(unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, seals) }) {
            Err(Errno::EBUSY) if attempt < 5 => continue,
            r => r?,
        };
        break;
    }
    Ok(memfd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines_of_the_file_only() {
        let maps = "\
55d0c0a00000-55d0c0b10000 r--p 00000000 fd:01 1234 /usr/bin/estiba
55d0c0b11000-55d0c0e56000 r-xp 00110000 fd:01 1234 /usr/bin/estiba
55d0c0e58000-55d0c0e88000 r--p 00456000 fd:01 1234 /usr/bin/estiba
55d0c0e88000-55d0c0e8b000 rw-p 00486000 fd:01 1234 /usr/bin/estiba
55d0c0e8b000-55d0c0e91000 rw-p 00000000 00:00 0
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]
7f0000000000-7f0000001000 r--p 00000000 fd:02 1234 /other/fs/same/inode
";
        let dev = libc::makedev(0xfd, 0x01);
        let got = mappings_of(maps, dev, 1234);
        assert_eq!(got.len(), 4);
        assert_eq!(
            got[1],
            ExeMapping {
                start: 0x55d0c0b11000,
                end: 0x55d0c0e56000,
                prot: libc::PROT_READ | libc::PROT_EXEC,
                offset: 0x110000,
            }
        );
        assert_eq!(got[3].prot, libc::PROT_READ | libc::PROT_WRITE);
        assert!(mappings_of(maps, dev, 999).is_empty());
    }

    #[test]
    fn stat_layout_with_a_name_holding_spaces_and_parens() {
        // Fields 1..52 numbered by their own value, the name odd on purpose.
        let mut fields: Vec<String> = (3..=52).map(|n| n.to_string()).collect();
        fields[0] = "S".into();
        let line = format!("42 (a) b (c) {}", fields.join(" "));
        let l = parse_stat_layout(&line).unwrap();
        assert_eq!((l.start_code, l.end_code, l.start_stack), (26, 27, 28));
        assert_eq!(
            (
                l.start_data,
                l.end_data,
                l.start_brk,
                l.arg_start,
                l.arg_end,
                l.env_start,
                l.env_end
            ),
            (45, 46, 47, 48, 49, 50, 51)
        );
        assert!(parse_stat_layout("42 (short) S 1 2 3").is_none());
    }

    #[test]
    fn this_processes_image_has_writable_segments() {
        // The test binary's own headers: at least its data segment.
        let w = writable_segments();
        assert!(!w.is_empty());
        let here = &w as *const _ as usize;
        // A global lies in one of them; a stack address does not.
        static MARK: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);
        let global = &MARK as *const _ as usize;
        assert!(w.iter().any(|&(s, e)| (s..e).contains(&global)));
        assert!(!w.iter().any(|&(s, e)| (s..e).contains(&here)));
    }
}
