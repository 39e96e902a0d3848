//! `process.terminal` with a console socket: the init makes a pty inside
//! the container's devpts, makes the slave its controlling terminal and
//! stdio, and sends the master to the socket with SCM_RIGHTS (runc's
//! protocol, spoken by containerd's shim and conmon).

use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::mount::{mount, MsFlags};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use nix::sys::stat::Mode;

use crate::error::{Error, Result};
use crate::sys;

/// Sends `fd` over `sock` with `name` as the message body.
pub fn send_fd(sock: &UnixStream, name: &str, fd: &OwnedFd) -> Result<()> {
    let fds = [fd.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(name.as_bytes())];
    sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None)
        .map(|_| ())
        .map_err(|e| Error::sys("send pty master to console socket", e))
}

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
    send_fd(sock, "/dev/ptmx", &master)?;
    drop(master);
    for target in 0..3 {
        nix::unistd::dup2(slave.as_raw_fd(), target).map_err(|e| Error::sys("dup2 console", e))?;
    }
    sys::set_controlling_tty(0).map_err(|e| Error::sys("set controlling terminal", e))?;
    Ok(())
}

/// Receives the fd sent by [`send_fd`].
pub fn recv_fd(sock: &UnixStream) -> Result<OwnedFd> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned};
    let mut buf = [0u8; 256];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| Error::sys("receive pty master", e))?;
    for c in msg
        .cmsgs()
        .map_err(|e| Error::sys("receive pty master", e))?
    {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(fd) = fds.first() {
                return Ok(sys::own_fd(*fd));
            }
        }
    }
    Err(Error::Init("the container sent no pty master".into()))
}
