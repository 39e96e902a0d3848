//! SCM_RIGHTS receiving: the console socket and the seccomp listener.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;

/// Accepts one connection and reads one message: its bytes and its fds.
pub fn receive(listener: &UnixListener) -> std::io::Result<(Vec<u8>, Vec<OwnedFd>)> {
    receive_with(listener, nix::sys::socket::MsgFlags::empty())
}

/// `receive` of what has already been sent: fails with EAGAIN instead of
/// waiting when no connection or no message is there yet.
pub fn receive_now(listener: &UnixListener) -> std::io::Result<(Vec<u8>, Vec<OwnedFd>)> {
    listener.set_nonblocking(true)?;
    let got = receive_with(listener, nix::sys::socket::MsgFlags::MSG_DONTWAIT);
    listener.set_nonblocking(false)?;
    got
}

fn receive_with(
    listener: &UnixListener,
    flags: nix::sys::socket::MsgFlags,
) -> std::io::Result<(Vec<u8>, Vec<OwnedFd>)> {
    let (conn, _) = listener.accept()?;
    let mut buf = vec![0u8; 16384];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 4]);
    let msg = nix::sys::socket::recvmsg::<()>(conn.as_raw_fd(), &mut iov, Some(&mut cmsg), flags)?;
    let mut fds = vec![];
    for c in msg.cmsgs()? {
        if let nix::sys::socket::ControlMessageOwned::ScmRights(raw) = c {
            // SAFETY: the kernel just installed these descriptors for us.
            fds.extend(
                raw.into_iter()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            );
        }
    }
    let n = msg.bytes;
    buf.truncate(n);
    Ok((buf, fds))
}
