//! `run` in the foreground: create, start, wait for the init while passing
//! on every signal the runtime gets, reap orphans, delete, and report the
//! exit code (128+n for a signal n).

use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::container::Container;
use crate::create::{create, CreateOptions};
use crate::error::{Error, Result};
use crate::sys;

/// Runs the container to completion; returns its exit code.
pub fn run_foreground(opts: &CreateOptions) -> Result<i32> {
    // Orphans of the container (without a pid namespace) come to us.
    sys::prctl(libc::PR_SET_CHILD_SUBREAPER, 1).map_err(|e| Error::sys("become subreaper", e))?;
    let created = create(opts)?;
    // Block before start so no signal meant for the container is lost.
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
        .thread_swap_mask(nix::sys::signal::SigmaskHow::SIG_BLOCK)
        .map_err(|e| Error::sys("block signals", e))?;
    let result = start_and_wait(opts, created.pid, &mask);
    let _ = old.thread_set_mask();
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            if let Ok(c) = Container::load(&opts.root, &opts.id) {
                let _ = c.delete(true);
            }
            return Err(e);
        }
    };
    Container::load(&opts.root, &opts.id)?.delete(true)?;
    Ok(code)
}

fn start_and_wait(opts: &CreateOptions, pid: i32, mask: &SigSet) -> Result<i32> {
    let sfd =
        SignalFd::with_flags(mask, SfdFlags::SFD_CLOEXEC).map_err(|e| Error::sys("signalfd", e))?;
    Container::load(&opts.root, &opts.id)?.start()?;
    loop {
        if let Some(code) = reap(pid)? {
            return Ok(code);
        }
        let info = match sfd.read_signal() {
            Ok(Some(info)) => info,
            Ok(None) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("read signalfd", e)),
        };
        let signo = info.ssi_signo as i32;
        if signo == libc::SIGCHLD {
            continue;
        }
        if let Ok(sig) = Signal::try_from(signo) {
            let _ = kill(Pid::from_raw(pid), sig);
        }
    }
}

/// Reaps every exited child; the init's exit code once it is among them.
fn reap(init: i32) -> Result<Option<i32>> {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, code)) if p.as_raw() == init => return Ok(Some(code)),
            Ok(WaitStatus::Signaled(p, sig, _)) if p.as_raw() == init => {
                return Ok(Some(128 + sig as i32))
            }
            Ok(WaitStatus::StillAlive) => return Ok(None),
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(nix::errno::Errno::ECHILD) => return Ok(Some(0)),
            Err(e) => return Err(Error::sys("waitpid", e)),
        }
    }
}
