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
    let (created, started) = create_anywhere(opts, Some(bundle), size, proxy, true)?;
    // Loaded once for start and delete (its status is derived, never stored).
    let (container, result) = match Container::load(&opts.root, &opts.id) {
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
    let cleanup = match container {
        Some(c) => c.delete(true),
        None => Container::load(&opts.root, &opts.id).and_then(|c| c.delete(true)),
    };
    crate::log::debug!("run {}: deleted", opts.id);
    let code = result?;
    cleanup?;
    Ok(code)
}
