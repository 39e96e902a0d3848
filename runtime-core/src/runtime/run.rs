//! `run` in the foreground: create, start, wait for the init while passing
//! on every signal the runtime gets, reap orphans, delete (unless kept), and
//! report the exit code (128+n for a signal n). With `process.terminal` and no console
//! socket, the runtime holds the pty itself and proxies the caller's tty.

use crate::error::Result;
use crate::runtime::container::Container;
use crate::runtime::create::{create_anywhere, load_bundle, CreateOptions};
use crate::runtime::foreground::Foreground;

/// What becomes of a container `run` waited for once its init has exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AfterRun {
    /// Deleted (runc's `run`).
    Delete,
    /// Left stopped, for `state` and a later `delete` (runc's `--keep`).
    Keep,
}

/// Runs the container to completion; returns its exit code. A run that
/// fails is deleted whatever `after` says.
pub fn run_foreground(opts: &CreateOptions, after: AfterRun) -> Result<i32> {
    crate::runtime::selfprotect::require_protected()?;
    // Read once: create takes it as it is.
    let bundle = load_bundle(opts)?;
    let terminal = bundle
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    // Without a console socket the pty is ours to proxy.
    let proxy = terminal && opts.console_socket.is_none();
    let fg = Foreground::begin(opts.foreground)?;
    let size = proxy
        .then(|| crate::sys::get_winsize(0))
        .flatten()
        .map(|w| (w.ws_row, w.ws_col));
    // Started by create itself: no `start` connects (one round trip and
    // the exec socket fewer).
    let (mut created, started) = create_anywhere(opts, Some(bundle), size, proxy, true)?;
    let mounts = std::mem::take(&mut created.mounts);
    // As create left it, else loaded once, for start and delete (its
    // status is derived, never stored).
    let container = match created.made.take() {
        Some((saved, cgroup)) => Ok(Container::as_made(created.state_dir.clone(), saved, cgroup)),
        None => Container::load(&opts.root, &opts.id),
    };
    let (container, result) = match container {
        Ok(c) => {
            let begun = match started {
                Some(exec) => c.started(exec),
                None => c.start(),
            };
            let waited = begun.and_then(|()| {
                crate::log::debug!("run {}: started", opts.id);
                fg.wait(created.pid, created.pty)
            });
            (Some(c), waited)
        }
        Err(e) => (None, Err(e)),
    };
    crate::log::debug!("run {}: exited", opts.id);
    drop(fg);
    if after == AfterRun::Keep && result.is_ok() {
        return result;
    }
    let teardown = mounts.release_beside();
    let cleanup = match container {
        Some(c) => c.delete(true),
        None => Container::load(&opts.root, &opts.id).and_then(|c| c.delete(true)),
    };
    crate::log::debug!("run {}: deleted", opts.id);
    // Bounded: the task only runs the kernel's teardown of the mounts.
    if let Some(t) = teardown {
        t.join();
    }
    let code = result?;
    cleanup?;
    Ok(code)
}

/// The container's mount namespace, held by `run` from create (before the
/// start: the init may be gone by the time create returns) until its init
/// has exited. The last reference does the teardown (every mount
/// undone, an expedited RCU grace period, the superblocks freed: ~0.3 ms
/// here); held, it is not in the init's exit, which comes before the exit
/// is reported, so the wait ends sooner and the teardown runs in a task
/// beside the delete. Nothing depends on it: without it (a /proc that
/// refuses), the init's exit does the teardown as before.
#[derive(Debug, Default)]
pub(crate) struct HeldMounts(Option<std::fs::File>);

impl HeldMounts {
    /// `pid`: an init waiting for its start, unreaped (the child of this
    /// process, or of its caller with the helper): its /proc entry is its own.
    pub(crate) fn of(pid: i32) -> HeldMounts {
        HeldMounts(std::fs::File::open(format!("/proc/{pid}/ns/mnt")).ok())
    }

    /// Lets go in a task of its own (inline if none can be started).
    fn release_beside(self) -> Option<crate::sys::closer::Closer> {
        self.0.and_then(|ns| crate::sys::closer::on_task(ns.into()))
    }
}
