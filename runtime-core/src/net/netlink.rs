//! A small rtnetlink client for `linux.netDevices`: look a link up, list
//! its addresses, move it into another network namespace (renamed), add
//! addresses and bring it up. Every reply is awaited with a timeout.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    bind, recv, send, setsockopt, socket, sockopt, AddressFamily, MsgFlags, NetlinkAddr, SockFlag,
    SockProtocol, SockType,
};

const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_DUMP: u16 = 0x300;
const IFLA_IFNAME: u16 = 3;
const IFLA_NET_NS_FD: u16 = 28;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const IFA_FLAGS: u16 = 8;
/// ifa_flags: an address set by hand, not by autoconfiguration.
pub const IFA_F_PERMANENT: u32 = 0x80;
const IFF_UP: u32 = 1;

/// One interface address, as the kernel reports it.
#[derive(Debug, Clone)]
pub struct Addr {
    pub family: u8,
    pub prefix_len: u8,
    pub flags: u32,
    pub scope: u8,
    /// (attribute type, bytes): IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST.
    attrs: Vec<(u16, Vec<u8>)>,
}

pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

type Result<T> = std::result::Result<T, Errno>;

fn put_attr(buf: &mut Vec<u8>, typ: u16, data: &[u8]) {
    let len = 4 + data.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&typ.to_ne_bytes());
    buf.extend_from_slice(data);
    buf.resize(buf.len().next_multiple_of(4), 0);
}

/// The attributes in `data`: (type, payload).
fn attrs(mut data: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = vec![];
    while data.len() >= 4 {
        let len = u16::from_ne_bytes([data[0], data[1]]) as usize;
        let typ = u16::from_ne_bytes([data[2], data[3]]) & 0x3fff;
        if len < 4 || len > data.len() {
            break;
        }
        out.push((typ, &data[4..len]));
        data = &data[len.next_multiple_of(4).min(data.len())..];
    }
    out
}

/// An ifinfomsg: family 0, the index, flags and the change mask.
fn ifinfo(index: i32, flags: u32, change: u32) -> Vec<u8> {
    let mut b = vec![0u8; 4];
    b.extend_from_slice(&index.to_ne_bytes());
    b.extend_from_slice(&flags.to_ne_bytes());
    b.extend_from_slice(&change.to_ne_bytes());
    b
}

impl Netlink {
    /// A route socket in the caller's network namespace.
    pub fn open() -> Result<Netlink> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))?;
        let timeout = nix::sys::time::TimeVal::from(libc::timeval {
            tv_sec: 5,
            tv_usec: 0,
        });
        setsockopt(&fd, sockopt::ReceiveTimeout, &timeout)?;
        Ok(Netlink { fd, seq: 1 })
    }

    /// A route socket in the network namespace `netns` (the calling thread
    /// returns to its own namespace before this returns).
    pub fn open_in(netns: &OwnedFd) -> std::result::Result<Netlink, (String, Errno)> {
        let own = nix::fcntl::open(
            "/proc/thread-self/ns/net",
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| ("open own network namespace".to_string(), e))?;
        let own = crate::sys::own_fd(own);
        nix::sched::setns(netns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| ("join the container's network namespace".to_string(), e))?;
        let sock = Netlink::open();
        nix::sched::setns(own.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| ("return to the runtime's network namespace".to_string(), e))?;
        sock.map_err(|e| ("open a route socket there".to_string(), e))
    }

    fn request(&mut self, typ: u16, flags: u16, body: &[u8]) -> Result<u32> {
        let seq = self.seq;
        self.seq += 1;
        let mut msg = Vec::with_capacity(16 + body.len());
        msg.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
        msg.extend_from_slice(&typ.to_ne_bytes());
        msg.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        msg.extend_from_slice(&seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(body);
        send(self.fd.as_raw_fd(), &msg, MsgFlags::empty())?;
        Ok(seq)
    }

    /// Reads replies to `seq` until an ack, an error or the end of a dump;
    /// hands every other message (type, body) to `each`.
    fn replies(&mut self, seq: u32, mut each: impl FnMut(u16, &[u8])) -> Result<()> {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty())?;
            let mut data = &buf[..n];
            while data.len() >= 16 {
                let len = u32::from_ne_bytes([data[0], data[1], data[2], data[3]]) as usize;
                let typ = u16::from_ne_bytes([data[4], data[5]]);
                let got = u32::from_ne_bytes([data[8], data[9], data[10], data[11]]);
                if len < 16 || len > data.len() {
                    return Err(Errno::EBADMSG);
                }
                let body = &data[16..len];
                data = &data[len.next_multiple_of(4).min(data.len())..];
                if got != seq {
                    continue;
                }
                match typ {
                    NLMSG_DONE => return Ok(()),
                    NLMSG_ERROR => {
                        let code = body
                            .get(..4)
                            .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                            .unwrap_or(-libc::EBADMSG);
                        return if code == 0 {
                            Ok(())
                        } else {
                            Err(Errno::from_raw(-code))
                        };
                    }
                    _ => each(typ, body),
                }
            }
        }
    }

    /// The name of link `index`, if there is one.
    pub fn link_name(&mut self, index: i32) -> Result<Option<String>> {
        let seq = self.request(RTM_GETLINK, NLM_F_ACK, &ifinfo(index, 0, 0))?;
        let mut name = None;
        match self.replies(seq, |_, body| {
            for (t, v) in attrs(body.get(16..).unwrap_or_default()) {
                if t == IFLA_IFNAME {
                    name = Some(
                        String::from_utf8_lossy(v.split(|b| *b == 0).next().unwrap_or_default())
                            .into_owned(),
                    );
                }
            }
        }) {
            Ok(()) => Ok(name),
            Err(Errno::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The index of the link called `name`.
    pub fn link_index(&mut self, name: &str) -> Result<Option<i32>> {
        let mut body = ifinfo(0, 0, 0);
        let mut n = name.as_bytes().to_vec();
        n.push(0);
        put_attr(&mut body, IFLA_IFNAME, &n);
        let seq = self.request(RTM_GETLINK, NLM_F_ACK, &body)?;
        let mut index = None;
        match self.replies(seq, |_, body| {
            if let Some(b) = body.get(4..8) {
                index = Some(i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
            }
        }) {
            Ok(()) => Ok(index),
            Err(Errno::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every address of link `index`.
    pub fn addresses(&mut self, index: i32) -> Result<Vec<Addr>> {
        let seq = self.request(RTM_GETADDR, NLM_F_DUMP, &[0u8; 8])?;
        let mut out = vec![];
        self.replies(seq, |typ, body| {
            if typ != RTM_NEWADDR || body.len() < 8 {
                return;
            }
            let ifindex = i32::from_ne_bytes([body[4], body[5], body[6], body[7]]);
            if ifindex != index {
                return;
            }
            let mut a = Addr {
                family: body[0],
                prefix_len: body[1],
                flags: body[2] as u32,
                scope: body[3],
                attrs: vec![],
            };
            for (t, v) in attrs(&body[8..]) {
                match t {
                    IFA_FLAGS if v.len() == 4 => {
                        a.flags = u32::from_ne_bytes([v[0], v[1], v[2], v[3]])
                    }
                    IFA_ADDRESS | IFA_LOCAL | IFA_BROADCAST => a.attrs.push((t, v.to_vec())),
                    _ => {}
                }
            }
            out.push(a);
        })?;
        Ok(out)
    }

    /// Moves link `index` into the network namespace `netns`, named
    /// `name` there (a name ending in %d lets the kernel number it).
    pub fn move_to(&mut self, index: i32, netns: &OwnedFd, name: &str) -> Result<()> {
        let mut body = ifinfo(index, 0, 0);
        put_attr(
            &mut body,
            IFLA_NET_NS_FD,
            &(netns.as_raw_fd() as u32).to_ne_bytes(),
        );
        let mut n = name.as_bytes().to_vec();
        n.push(0);
        put_attr(&mut body, IFLA_IFNAME, &n);
        let seq = self.request(RTM_NEWLINK, NLM_F_ACK, &body)?;
        self.replies(seq, |_, _| {})
    }

    /// Adds `a` to link `index`.
    pub fn add_address(&mut self, index: i32, a: &Addr) -> Result<()> {
        let mut body = vec![a.family, a.prefix_len, (a.flags & 0xff) as u8, a.scope];
        body.extend_from_slice(&index.to_ne_bytes());
        for (t, v) in &a.attrs {
            put_attr(&mut body, *t, v);
        }
        put_attr(&mut body, IFA_FLAGS, &a.flags.to_ne_bytes());
        let seq = self.request(RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, &body)?;
        self.replies(seq, |_, _| {})
    }

    /// Brings link `index` up.
    pub fn set_up(&mut self, index: i32) -> Result<()> {
        let seq = self.request(RTM_NEWLINK, NLM_F_ACK, &ifinfo(index, IFF_UP, IFF_UP))?;
        self.replies(seq, |_, _| {})
    }
}
