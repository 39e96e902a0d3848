//! The parent ↔ init channel: a SOCK_SEQPACKET socketpair carrying small
//! tagged messages, so message boundaries come for free.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{recv, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};

use crate::error::{Error, Os, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// Parent → init: ids mapped, cgroup joined; carries the init's host pid.
    Go(i32),
    /// Init → parent: mounts are done, run prestart/createRuntime hooks.
    MountsDone,
    /// Parent → init: those hooks ran.
    HooksDone,
    /// Init → parent: waiting for `start`.
    Ready,
    /// Parent → init: the state is recorded; the init may outlive create.
    Recorded,
    /// Parent → init: recorded, and start now (`run`): no `start` will
    /// connect; the exec closes the channel, or a `Fail` says why not.
    RecordedStart,
    /// Either way: something failed; the text says what.
    Fail(String),
}

impl Msg {
    fn encode(&self) -> Vec<u8> {
        match self {
            Msg::Go(pid) => format!("G{pid}").into_bytes(),
            Msg::MountsDone => b"M".to_vec(),
            Msg::HooksDone => b"H".to_vec(),
            Msg::Ready => b"R".to_vec(),
            Msg::Recorded => b"S".to_vec(),
            Msg::RecordedStart => b"X".to_vec(),
            Msg::Fail(m) => [b"E".as_slice(), m.as_bytes()].concat(),
        }
    }

    fn decode(b: &[u8]) -> Option<Msg> {
        let (tag, rest) = b.split_first()?;
        let text = std::str::from_utf8(rest).ok()?;
        Some(match tag {
            b'G' => Msg::Go(text.parse().ok()?),
            b'M' => Msg::MountsDone,
            b'H' => Msg::HooksDone,
            b'R' => Msg::Ready,
            b'S' => Msg::Recorded,
            b'X' => Msg::RecordedStart,
            b'E' => Msg::Fail(text.to_string()),
            _ => return None,
        })
    }
}

pub struct Channel {
    fd: OwnedFd,
}

pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| Error::sys("socketpair", e))?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    pub fn send(&self, m: &Msg) -> Result<()> {
        send(self.fd.as_raw_fd(), &m.encode(), MsgFlags::MSG_NOSIGNAL)
            .map(|_| ())
            .map_err(|e| Error::sys("send to container init", e))
    }

    /// The next message; `None` when the other side is gone.
    pub fn recv(&self) -> Result<Option<Msg>> {
        let mut buf = vec![0u8; 8192];
        loop {
            match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(0) => return Ok(None),
                Ok(n) => {
                    return Msg::decode(&buf[..n])
                        .map(Some)
                        .ok_or_else(|| Error::Init("garbled message from the other side".into()))
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(Error::Init(format!("receive: {}", Os(e)))),
            }
        }
    }

    pub fn raw(&self) -> i32 {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let (a, b) = pair().unwrap();
        for m in [
            Msg::Go(42),
            Msg::MountsDone,
            Msg::HooksDone,
            Msg::Ready,
            Msg::Fail("x y".into()),
        ] {
            a.send(&m).unwrap();
            assert_eq!(b.recv().unwrap(), Some(m));
        }
        drop(a);
        assert_eq!(b.recv().unwrap(), None);
    }
}
