//! Waiting for a container process to exit, from any process and with a
//! timeout: a pidfd polls readable once the process is gone. Its exit
//! status can only be had by its parent (the process that created or
//! exec'd it); any other waiter learns that it exited.

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::error::{Error, Result};
use crate::runtime::signal::Signal;
use crate::sys;

/// How a container process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExitStatus {
    /// It exited with this code.
    Exited(i32),
    /// A signal ended it.
    Signaled(i32),
    /// It is gone, but the caller is not its parent, so how is unknown.
    Unknown,
}

impl ExitStatus {
    /// The code a shell (and runc) reports: the exit code, or 128 + n for
    /// signal n; None when unknown.
    pub fn code(self) -> Option<i32> {
        match self {
            ExitStatus::Exited(c) => Some(c),
            ExitStatus::Signaled(s) => Some(128 + s),
            ExitStatus::Unknown => None,
        }
    }
}

/// A process of a container: the init, or one `exec` started.
#[derive(Debug)]
pub struct ProcessHandle {
    pid: i32,
    pidfd: OwnedFd,
    pty: Option<OwnedFd>,
}

impl ProcessHandle {
    /// A handle on `pid`, which the caller knows is the process it means
    /// (its own child, or checked by start time).
    pub(crate) fn open(pid: i32) -> Result<ProcessHandle> {
        let pidfd = sys::pidfd_open(pid).map_err(|e| Error::sys(format!("pidfd_open {pid}"), e))?;
        Ok(ProcessHandle {
            pid,
            pidfd,
            pty: None,
        })
    }

    pub(crate) fn with_pty(mut self, pty: Option<OwnedFd>) -> Self {
        self.pty = pty;
        self
    }

    /// Its pid in the runtime's pid namespace.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The pty master of a process that has a terminal, when it was asked
    /// to be returned (taken once).
    pub fn take_pty(&mut self) -> Option<OwnedFd> {
        self.pty.take()
    }

    /// Sends `signal` through the pidfd (never to a recycled pid).
    pub fn signal(&self, signal: Signal) -> Result<()> {
        sys::pidfd_send_signal(self.pidfd.as_fd(), signal.number())
            .map_err(|e| Error::sys(format!("signal {} {}", self.pid, signal.number()), e))
    }

    /// Waits until the process exits, at most `timeout` (None: no limit).
    /// `Error::Timeout` when it has not.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<ExitStatus> {
        wait_pidfd(&self.pidfd, self.pid, timeout)
    }
}

/// Waits on `pidfd` (of `pid`) for the process to exit.
pub(crate) fn wait_pidfd(
    pidfd: &OwnedFd,
    pid: i32,
    timeout: Option<Duration>,
) -> Result<ExitStatus> {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let left = match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX)
            }
            None => PollTimeout::NONE,
        };
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, left) {
            Ok(0) => {
                return Err(Error::Timeout(format!(
                    "process {pid} did not exit within {:?}",
                    timeout.unwrap_or_default()
                )))
            }
            Ok(_) => break,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("poll pidfd", e)),
        }
    }
    match sys::waitid_pidfd(pidfd.as_fd()) {
        Ok(Some((false, code))) => Ok(ExitStatus::Exited(code)),
        Ok(Some((true, sig))) => Ok(ExitStatus::Signaled(sig)),
        // Readable but not yet reapable cannot last; not our child: gone.
        Ok(None) | Err(nix::errno::Errno::ECHILD) => Ok(ExitStatus::Unknown),
        Err(e) => Err(Error::sys(format!("waitid {pid}"), e)),
    }
}
