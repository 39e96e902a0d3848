//! Waiting in the foreground for a container process (`run`, `exec`),
//! with a terminal copied between the caller's tty and the pty master
//! (raw mode, window size included). What it does to the calling process
//! is the caller's choice ([`ForegroundOptions`]): forwarding every
//! catchable signal to the process (signals blocked and read from a
//! signalfd while the wait lasts), being a child subreaper, reaping every
//! exited child. The CLI asks for runc's behaviour; a library caller gets
//! none of it unless it asks, and only its own process is waited for.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::error::{Error, Result};
use crate::sys;

/// What waiting in the foreground may change in the calling process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ForegroundOptions {
    /// Block every catchable signal while waiting and pass each to the
    /// process (runc's `run` and `exec`).
    pub forward_signals: bool,
    /// Become a child subreaper, so the container's orphans come to the
    /// caller (runc's `run` without `--no-subreaper`). It stays set.
    pub subreaper: bool,
    /// Reap every exited child while waiting, not only the process (what
    /// a subreaper owes its orphans).
    pub reap_all: bool,
}

impl ForegroundOptions {
    /// runc's `run`: all three.
    pub fn runc_run() -> Self {
        ForegroundOptions {
            forward_signals: true,
            subreaper: true,
            reap_all: true,
        }
    }

    /// runc's `exec`: signals forwarded; no subreaper.
    pub fn runc_exec() -> Self {
        ForegroundOptions {
            forward_signals: true,
            subreaper: false,
            reap_all: false,
        }
    }
}

/// Signals blocked and read from a signalfd while the foreground lasts
/// (when forwarding); the old mask comes back on drop.
pub struct Foreground {
    signals: Option<(SignalFd, SigSet)>,
    reap_all: bool,
}

impl Foreground {
    /// Call before the process exists, so no signal meant for it is lost.
    pub fn begin(opts: ForegroundOptions) -> Result<Self> {
        if opts.subreaper {
            sys::prctl(libc::PR_SET_CHILD_SUBREAPER, 1)
                .map_err(|e| Error::sys("become subreaper", e))?;
        }
        let signals = match opts.forward_signals {
            false => None,
            true => {
                let mut mask = SigSet::all();
                for s in [
                    Signal::SIGKILL,
                    Signal::SIGSTOP,
                    Signal::SIGSEGV,
                    Signal::SIGBUS,
                    Signal::SIGILL,
                    Signal::SIGFPE,
                ] {
                    mask.remove(s);
                }
                let old = mask
                    .thread_swap_mask(SigmaskHow::SIG_BLOCK)
                    .map_err(|e| Error::sys("block signals", e))?;
                let sfd =
                    SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
                        .map_err(|e| Error::sys("signalfd", e))?;
                Some((sfd, old))
            }
        };
        Ok(Foreground {
            signals,
            reap_all: opts.reap_all,
        })
    }

    /// Waits for `pid` (a child of the caller) to exit and returns its exit
    /// code (128+n for a signal n), copying terminal I/O through `pty`
    /// when given.
    pub fn wait(&self, pid: i32, pty: Option<OwnedFd>) -> Result<i32> {
        let pidfd = sys::pidfd_open(pid).map_err(|e| Error::sys(format!("pidfd_open {pid}"), e))?;
        let _raw = pty.as_ref().and_then(|_| RawTerminal::enter(0));
        if let Some(master) = &pty {
            copy_winsize(0, master.as_raw_fd());
        }
        let stdin = std::io::stdin();
        let mut stdin_open = pty.is_some();
        let mut master_open = pty.is_some();
        loop {
            if let Some(code) = self.exited(pid, pidfd.as_fd())? {
                if let Some(master) = &pty {
                    drain(master.as_fd());
                }
                return Ok(code);
            }
            let mut fds = vec![PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
            let sig_idx = fds.len();
            if let Some((sfd, _)) = &self.signals {
                fds.push(PollFd::new(sfd.as_fd(), PollFlags::POLLIN));
            }
            let master_idx = fds.len();
            if let (Some(m), true) = (&pty, master_open) {
                fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
            }
            let stdin_idx = fds.len();
            if stdin_open {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(Error::sys("poll", e)),
            }
            let ready = |i: usize| {
                fds.get(i)
                    .and_then(|f| f.revents())
                    .is_some_and(|r| !r.is_empty())
            };
            let (sig_ready, master_ready, stdin_ready) = (
                self.signals.is_some() && ready(sig_idx),
                master_open && ready(master_idx),
                stdin_open && ready(stdin_idx),
            );
            drop(fds);
            if sig_ready {
                self.forward(pid, pty.as_ref())?;
            }
            if let (Some(m), true) = (&pty, master_ready) {
                master_open = copy(m.as_raw_fd(), 1);
            }
            if let (Some(m), true) = (&pty, stdin_ready) {
                stdin_open = copy(0, m.as_raw_fd());
            }
        }
    }

    /// The exit code of `pid` once it has exited; with `reap_all` every
    /// other exited child is reaped on the way.
    fn exited(&self, pid: i32, pidfd: BorrowedFd<'_>) -> Result<Option<i32>> {
        if self.reap_all {
            loop {
                match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::Exited(p, code)) if p.as_raw() == pid => return Ok(Some(code)),
                    Ok(WaitStatus::Signaled(p, sig, _)) if p.as_raw() == pid => {
                        return Ok(Some(128 + sig as i32))
                    }
                    Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::ECHILD) => break,
                    Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => return Err(Error::sys("waitpid", e)),
                }
            }
        }
        match sys::waitid_pidfd(pidfd) {
            Ok(Some((false, code))) => Ok(Some(code)),
            Ok(Some((true, sig))) => Ok(Some(128 + sig)),
            Ok(None) => Ok(None),
            Err(nix::errno::Errno::ECHILD) => Err(Error::Init(format!(
                "process {pid} is not a child of this runtime"
            ))),
            Err(e) => Err(Error::sys("waitid", e)),
        }
    }

    fn forward(&self, pid: i32, pty: Option<&OwnedFd>) -> Result<()> {
        let Some((sfd, _)) = &self.signals else {
            return Ok(());
        };
        while let Ok(Some(info)) = sfd.read_signal() {
            let signo = info.ssi_signo as i32;
            match signo {
                libc::SIGCHLD => {}
                libc::SIGWINCH if pty.is_some() => {
                    if let Some(m) = pty {
                        copy_winsize(0, m.as_raw_fd());
                    }
                }
                _ => {
                    if let Ok(sig) = Signal::try_from(signo) {
                        let _ = kill(Pid::from_raw(pid), sig);
                    }
                }
            }
        }
        Ok(())
    }
}

impl Drop for Foreground {
    fn drop(&mut self) {
        if let Some((_, old)) = &self.signals {
            let _ = old.thread_set_mask();
        }
    }
}

/// Copies what is readable from `from` to `to`; false at end of input.
fn copy(from: i32, to: i32) -> bool {
    let mut buf = [0u8; 8192];
    match nix::unistd::read(from, &mut buf) {
        Ok(0) => false,
        Ok(n) => {
            let mut out = FdWriter(to);
            out.write_all(&buf[..n]).is_ok()
        }
        Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => true,
        // EIO: the slave side is closed.
        Err(_) => false,
    }
}

/// What the pty still holds once the process is gone.
fn drain(master: BorrowedFd<'_>) {
    let mut fds = [PollFd::new(master, PollFlags::POLLIN)];
    while matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0) {
        if !copy(master.as_raw_fd(), 1) {
            break;
        }
    }
}

struct FdWriter(i32);

impl Write for FdWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        nix::unistd::write(sys::borrow_fd(self.0), buf).map_err(std::io::Error::from)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn copy_winsize(from: i32, to: i32) {
    if let Some(ws) = sys::get_winsize(from) {
        let _ = sys::set_winsize(to, ws.ws_row, ws.ws_col);
    }
}

/// The caller's terminal in raw mode, restored on drop.
struct RawTerminal {
    fd: i32,
    saved: Termios,
}

impl RawTerminal {
    fn enter(fd: i32) -> Option<Self> {
        if !sys::isatty(fd) {
            return None;
        }
        let b = sys::borrow_fd(fd);
        let saved = tcgetattr(b).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(b, SetArg::TCSANOW, &raw).ok()?;
        Some(RawTerminal { fd, saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = tcsetattr(sys::borrow_fd(self.fd), SetArg::TCSANOW, &self.saved);
    }
}
