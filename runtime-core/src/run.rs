//! `run` in the foreground: create, start, wait for the init while passing
//! on every signal the runtime gets, reap orphans, delete (unless kept), and
//! report the exit code (128+n for a signal n). With `process.terminal` and no console
//! socket, the runtime holds the pty itself and proxies the caller's tty.

use std::os::unix::net::UnixStream;

use crate::container::Container;
use crate::create::{create_with_console, CreateOptions};
use crate::error::{Error, Result};
use crate::foreground::Foreground;

/// What becomes of a container `run` waited for once its init has exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterRun {
    Delete,
    /// Left stopped, for `state` and a later `delete` (runc's `--keep`).
    Keep,
}

/// Runs the container to completion; returns its exit code. A run that
/// fails is deleted whatever `after` says.
pub fn run_foreground(opts: &CreateOptions, after: AfterRun) -> Result<i32> {
    let bundle = crate::bundle::Bundle::load(&opts.bundle)?;
    crate::selfprotect::require_protected()?;
    let terminal = bundle
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    let (ours, theirs) = if terminal && opts.console_socket.is_none() {
        let (a, b) = UnixStream::pair().map_err(|e| Error::sys("socketpair", &e))?;
        (Some(a), Some(b))
    } else {
        (None, None)
    };
    let fg = Foreground::begin(!opts.no_subreaper)?;
    let size = theirs
        .as_ref()
        .and_then(|_| crate::sys::get_winsize(0))
        .map(|w| (w.ws_row, w.ws_col));
    let created = create_with_console(opts, theirs, size)?;
    let result = (|| {
        let pty = match &ours {
            Some(sock) => Some(crate::fdpass::recv_fd(sock, "the pty master")?),
            None => None,
        };
        Container::load(&opts.root, &opts.id)?.start()?;
        fg.wait(created.pid, pty)
    })();
    drop(fg);
    if after == AfterRun::Keep && result.is_ok() {
        return result;
    }
    let cleanup = Container::load(&opts.root, &opts.id).and_then(|c| c.delete(true));
    let code = result?;
    cleanup?;
    Ok(code)
}
