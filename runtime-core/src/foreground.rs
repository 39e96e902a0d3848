//! Waiting in the foreground for a container process (`run`, `exec`):
//! every catchable signal the runtime gets goes to the process, exited
//! children are reaped (the runtime is a subreaper, so orphans of the
//! container come to it), and with a terminal the caller's tty is put in
//! raw mode and copied to and from the pty master, window size included.

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

/// Signals blocked and read from a signalfd while the foreground lasts;
/// the old mask comes back on drop.
pub struct Foreground {
    sfd: SignalFd,
    old: SigSet,
}

impl Foreground {
    /// Call before the process exists, so no signal meant for it is lost.
    /// With `subreaper` the container's orphans come to us to be reaped
    /// (runc's `run`; not its `exec`, nor `run --no-subreaper`).
    pub fn begin(subreaper: bool) -> Result<Self> {
        if subreaper {
            sys::prctl(libc::PR_SET_CHILD_SUBREAPER, 1)
                .map_err(|e| Error::sys("become subreaper", e))?;
        }
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
        let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .map_err(|e| Error::sys("signalfd", e))?;
        Ok(Foreground { sfd, old })
    }

    /// Waits for `pid` to exit and returns its exit code (128+n for a
    /// signal n), copying terminal I/O through `pty` when given.
    pub fn wait(&self, pid: i32, pty: Option<OwnedFd>) -> Result<i32> {
        let _raw = pty.as_ref().and_then(|_| RawTerminal::enter(0));
        if let Some(master) = &pty {
            copy_winsize(0, master.as_raw_fd());
        }
        let stdin = std::io::stdin();
        let mut stdin_open = pty.is_some();
        let mut master_open = pty.is_some();
        loop {
            if let Some(code) = reap(pid)? {
                if let Some(master) = &pty {
                    drain(master.as_fd());
                }
                return Ok(code);
            }
            let mut fds = vec![PollFd::new(self.sfd.as_fd(), PollFlags::POLLIN)];
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
                ready(0),
                master_open && ready(1),
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

    fn forward(&self, pid: i32, pty: Option<&OwnedFd>) -> Result<()> {
        while let Ok(Some(info)) = self.sfd.read_signal() {
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
        let _ = self.old.thread_set_mask();
    }
}

/// Reaps every exited child; the exit code of `pid` once it is among them.
fn reap(pid: i32) -> Result<Option<i32>> {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, code)) if p.as_raw() == pid => return Ok(Some(code)),
            Ok(WaitStatus::Signaled(p, sig, _)) if p.as_raw() == pid => {
                return Ok(Some(128 + sig as i32))
            }
            Ok(WaitStatus::StillAlive) => return Ok(None),
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(nix::errno::Errno::ECHILD) => {
                return Err(Error::Init(format!(
                    "process {pid} is not a child of this runtime"
                )))
            }
            Err(e) => return Err(Error::sys("waitpid", e)),
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
