//! The standard input, output and error a container process gets: the
//! caller's own by default, or descriptors the caller hands over (pipes,
//! files, sockets), so that capturing a container's output never means
//! swapping the caller's stdout.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use crate::error::{Error, Result};

/// Descriptors to become a container process's 0, 1 and 2. Each one left
/// `None` is the caller's own.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Stdio {
    /// Becomes the process's standard input.
    pub stdin: Option<OwnedFd>,
    /// Becomes the process's standard output.
    pub stdout: Option<OwnedFd>,
    /// Becomes the process's standard error.
    pub stderr: Option<OwnedFd>,
}

impl Stdio {
    /// The three descriptor numbers (or None), as the cloned process sees
    /// them: its descriptor table is a copy of the caller's.
    pub(crate) fn raw(&self) -> [Option<RawFd>; 3] {
        [&self.stdin, &self.stdout, &self.stderr].map(|f| f.as_ref().map(|f| f.as_raw_fd()))
    }
}

/// The streams `fds` (our own 0-2 where None) as /proc names a pipe or a
/// socket (`pipe:[N]`, `socket:[N]`), "" for anything else: what criu
/// calls them in its images.
pub(crate) fn names(fds: [Option<RawFd>; 3]) -> Vec<String> {
    (0..3)
        .map(|i| {
            let fd = fds[i].unwrap_or(i as RawFd);
            match nix::sys::stat::fstat(fd) {
                Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFIFO => {
                    format!("pipe:[{}]", st.st_ino)
                }
                Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFSOCK => {
                    format!("socket:[{}]", st.st_ino)
                }
                _ => String::new(),
            }
        })
        .collect()
}

/// In the cloned process: makes the given descriptors 0, 1 and 2. Each is
/// first moved above `floor` (the preserved descriptors below it stay put)
/// so that one target never overwrites another's source.
pub(crate) fn install(fds: [Option<RawFd>; 3], floor: RawFd) -> Result<()> {
    let mut moved = [None; 3];
    for (i, fd) in fds.iter().enumerate() {
        if let Some(fd) = fd {
            let high = nix::fcntl::fcntl(*fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(floor))
                .map_err(|e| Error::sys("move a stdio descriptor", e))?;
            moved[i] = Some(high);
        }
    }
    for (target, fd) in moved.iter().enumerate() {
        if let Some(fd) = fd {
            nix::unistd::dup2(*fd, target as RawFd)
                .map_err(|e| Error::sys(format!("make descriptor {target}"), e))?;
            let _ = nix::unistd::close(*fd);
        }
    }
    Ok(())
}

/// For a program with its own C `main` in place of std's (the `estiba`
/// binary): ignore SIGPIPE and make sure descriptors 0-2 are open, as
/// std's start-up does; and note where the descriptors the program was
/// started with end, so that a `preserve_fds` count can never reach one
/// the program opened itself. Call it first.
pub fn program_start() {
    crate::sys::program_start();
    // Before the program opens anything of its own.
    let mut fd = 3;
    while fd < 1 << 20 && nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).is_ok() {
        fd += 1;
    }
    CALLER_FDS_END.store(fd, std::sync::atomic::Ordering::Relaxed);
}

/// Where the run of descriptors from 3 that the program was started with
/// ends, as [`program_start`] found it; -1 where it was not called (a
/// library caller), and only the descriptors' being open can be checked.
static CALLER_FDS_END: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// For a program about to create, run or exec: the stack those paths use,
/// mapped in one call rather than a page fault at a time (best effort).
pub fn prefault_stack() {
    crate::sys::prefault_stack(120 * 1024);
}

/// Refuses descriptors to pass on (`listen` from LISTEN_FDS, first, then
/// `preserve` from `--preserve-fds`) that reach one the caller did not
/// pass: one of the runtime's own (its signal descriptor, its log) may
/// hold that number by now.
pub(crate) fn require_preserved_open(listen: u32, preserve: u32) -> Result<()> {
    let end = CALLER_FDS_END.load(std::sync::atomic::Ordering::Relaxed);
    let first_preserved = 3 + listen as i32;
    for fd in 3..first_preserved + preserve as i32 {
        let passed = match end {
            0.. => fd < end,
            _ => nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).is_ok(),
        };
        if !passed {
            let why = if fd < first_preserved {
                format!("LISTEN_FDS={listen}")
            } else {
                "--preserve-fds".to_string()
            };
            return Err(Error::Config(format!("{why}: fd {fd} is not open")));
        }
    }
    Ok(())
}
