//! Descriptors passed over unix sockets with SCM_RIGHTS, each with a short
//! message body: the pty master to a console socket and the seccomp
//! listener to an agent (runc's protocols), and a pidfd to a
//! `--pidfd-socket` (runc 1.2+).

use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

use crate::error::{Error, Result};
use crate::sys;

/// Sends `fd` over `sock` with `body` as the message; `what` names the
/// descriptor in an error.
pub fn send_fd(sock: &UnixStream, body: &str, fd: &OwnedFd, what: &str) -> Result<()> {
    let fds = [fd.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(body.as_bytes())];
    sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None)
        .map(|_| ())
        .map_err(|e| Error::sys(format!("send {what}"), e))
}

/// Receives one descriptor sent by [`send_fd`].
pub fn recv_fd(sock: &UnixStream, what: &str) -> Result<OwnedFd> {
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
    .map_err(|e| Error::sys(format!("receive {what}"), e))?;
    for c in msg
        .cmsgs()
        .map_err(|e| Error::sys(format!("receive {what}"), e))?
    {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(fd) = fds.first() {
                return Ok(sys::own_fd(*fd));
            }
        }
    }
    Err(Error::Init(format!("no {what} was sent")))
}

/// Connects to the `--console-socket` at `path`, where the pty master
/// goes.
pub fn connect_console_socket(path: &Path) -> Result<UnixStream> {
    UnixStream::connect(path).map_err(|e| Error::path("connect console socket", path, &e))
}

/// Connects to the `--pidfd-socket` at `path` (before anything exists, so
/// a wrong path fails early, as runc's does).
pub fn connect_pidfd_socket(path: &Path) -> Result<UnixStream> {
    UnixStream::connect(path).map_err(|e| Error::path("connect pidfd socket", path, &e))
}

/// Sends a pidfd of `pid` (a child of ours, not yet reaped, so the pid
/// cannot have been reused) with runc's body: "standard" for a
/// container's init, "setns" for an exec'd process.
pub fn send_pidfd(sock: &UnixStream, pid: i32, kind: &str) -> Result<()> {
    let fd = sys::pidfd_open(pid).map_err(|e| Error::sys("pidfd_open", e))?;
    send_fd(sock, kind, &fd, "pidfd to the pidfd socket")
}
