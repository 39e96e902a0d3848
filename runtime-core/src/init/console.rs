//! `process.terminal` with a console socket: the init makes a pty inside
//! the container's devpts, makes the slave its controlling terminal and
//! stdio, and sends the master to the socket with SCM_RIGHTS (runc's
//! protocol, spoken by containerd's shim and conmon).

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::Mode;

use crate::error::{Error, Result};
use crate::sys;

/// Runs in the init after pivot_root (which also gets the slave bound on
/// /dev/console), or in an exec'd process inside the container.
pub fn setup(sock: &UnixStream, size: Option<(u16, u16)>, bind_console: bool) -> Result<()> {
    let master = sys::own_fd(
        open(
            "/dev/ptmx",
            OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::path("open", "/dev/ptmx", e))?,
    );
    let n = sys::unlock_pty(master.as_raw_fd()).map_err(|e| Error::sys("unlock pty", e))?;
    let slave_path = format!("/dev/pts/{n}");
    let slave = sys::own_fd(
        open(
            slave_path.as_str(),
            OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::path("open", &slave_path, e))?,
    );
    if let Some((rows, cols)) = size {
        sys::set_winsize(slave.as_raw_fd(), rows, cols)
            .map_err(|e| Error::sys("set console size", e))?;
    }
    // /dev/console is the slave, as runc arranges.
    let console = Path::new("/dev/console");
    if bind_console && !console.exists() {
        std::fs::File::create(console).map_err(|e| Error::path("create", console, &e))?;
    }
    if bind_console {
        mount(
            Some(slave_path.as_str()),
            console,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| Error::path("bind console", console, e))?;
    }
    crate::sys::fdpass::send_fd(sock, "/dev/ptmx", &master, "the pty master")?;
    drop(master);
    for target in 0..3 {
        nix::unistd::dup2(slave.as_raw_fd(), target).map_err(|e| Error::sys("dup2 console", e))?;
    }
    sys::set_controlling_tty(0).map_err(|e| Error::sys("set controlling terminal", e))?;
    Ok(())
}
