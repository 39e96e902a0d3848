//! A `criu swrk` session (runs in the runtime): criu forked as our child
//! with one end of a SOCK_SEQPACKET pair, spoken to in its RPC messages
//! (runc's and crun's way). RPC is what gives restore the pty master of a
//! container's terminal ("orphan-pts-master", with the descriptor), and
//! checkpoint the page server's "status-ready". Every wait is bounded.

use std::ffi::{CString, OsStr};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::proto::{fields, Field, Msg};
use crate::error::{Error, Result};
use crate::sys;

/// criu_req_type values (rpc.proto).
pub(crate) const DUMP: i64 = 1;
pub(crate) const RESTORE: i64 = 2;
pub(crate) const NOTIFY: i64 = 6;
pub(crate) const SINGLE_PRE_DUMP: i64 = 13;

/// What criu answered a request with.
#[derive(Debug, Default)]
pub(crate) struct Reply {
    /// The restored tree's root (restore).
    pub pid: Option<i32>,
}

/// One criu notification: the script's name and the descriptor it came
/// with, if any (the orphaned pty's master).
pub(crate) struct Notice {
    pub script: String,
    pub fd: Option<OwnedFd>,
}

pub(crate) struct Swrk {
    pid: i32,
    sock: Option<OwnedFd>,
    end: Instant,
    /// criu's log, for errors.
    log: PathBuf,
    what: &'static str,
}

impl Swrk {
    /// Forks `criu swrk` with `cwd` (an open directory, where its log is
    /// written) as its working directory. `started` gets criu's pid before
    /// it runs (restore puts it in the container's cgroup there).
    pub fn start(
        criu: &Path,
        cwd: &OwnedFd,
        log: PathBuf,
        what: &'static str,
        bound: Duration,
        started: impl FnOnce(i32) -> Result<()>,
    ) -> Result<Swrk> {
        let path = super::find(criu).ok_or_else(|| {
            Error::Unsupported(format!(
                "checkpoint/restore needs criu, and {criu:?} was not found (Debian: apt install criu)"
            ))
        })?;
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| Error::sys("criu's socket pair", e))?;
        let (hold_rx, hold_tx) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Error::sys("pipe", e))?;
        let fds = Held {
            sock: theirs.as_raw_fd(),
            cwd: cwd.as_raw_fd(),
            hold: (hold_rx.as_raw_fd(), hold_tx.as_raw_fd()),
        };
        let pid = fork_exec(&path, &fds)?;
        drop(theirs);
        drop(hold_rx);
        let mut session = Swrk {
            pid,
            sock: Some(ours),
            end: Instant::now() + bound,
            log,
            what,
        };
        started(pid)?;
        nix::unistd::write(&hold_tx, b"g").map_err(|e| Error::sys("release criu", e))?;
        session.end = Instant::now() + bound;
        Ok(session)
    }

    /// Sends the request `kind` with `opts`, answers criu's notifications
    /// through `notice` (an error there fails the request), and returns
    /// criu's reply.
    pub fn call(
        &mut self,
        kind: i64,
        opts: &Msg,
        mut notice: impl FnMut(Notice) -> Result<()>,
    ) -> Result<Reply> {
        let mut req = Msg::default();
        req.int(1, kind).msg(2, opts);
        self.send(&req.into_bytes())?;
        loop {
            let (buf, fd) = self.recv()?;
            let resp = Resp::parse(&buf)
                .ok_or_else(|| self.failure("it sent a message that does not parse", None))?;
            if !resp.success {
                return Err(self.failure("", Some(&resp)));
            }
            if resp.kind == NOTIFY {
                let script = resp.script.clone().unwrap_or_default();
                notice(Notice { script, fd })?;
                let mut ack = Msg::default();
                ack.int(1, NOTIFY).flag(3, true);
                self.send(&ack.into_bytes())?;
                continue;
            }
            if resp.kind != kind {
                return Err(self.failure("it answered another request", Some(&resp)));
            }
            return Ok(Reply { pid: resp.pid });
        }
    }

    /// Ends the session: criu sees the socket close and exits; waits for
    /// it (bounded), and fails unless it exited 0.
    pub fn finish(mut self) -> Result<()> {
        self.sock = None;
        let pid = self.pid;
        match self.wait()? {
            WaitStatus::Exited(_, 0) => Ok(()),
            st => Err(self.failure(&format!("it ended badly (pid {pid}: {st:?})"), None)),
        }
    }

    fn send(&self, bytes: &[u8]) -> Result<()> {
        let sock = self.sock.as_ref().map(|s| s.as_raw_fd()).unwrap_or(-1);
        nix::sys::socket::send(sock, bytes, nix::sys::socket::MsgFlags::MSG_NOSIGNAL)
            .map_err(|e| self.failure(&format!("a request could not be sent ({e})"), None))?;
        Ok(())
    }

    /// The next message, with the descriptor it carried; bounded.
    fn recv(&self) -> Result<(Vec<u8>, Option<OwnedFd>)> {
        use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
        let Some(sock) = self.sock.as_ref() else {
            return Err(self.failure("its socket is closed", None));
        };
        self.wait_readable(sock)?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let (n, fd) = {
            let mut iov = [std::io::IoSliceMut::new(&mut buf)];
            let msg = recvmsg::<()>(
                sock.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            )
            .map_err(|e| self.failure(&format!("its answer could not be read ({e})"), None))?;
            let mut fd = None;
            for c in msg.cmsgs().into_iter().flatten() {
                if let ControlMessageOwned::ScmRights(fds) = c {
                    fd = fds.first().map(|f| sys::own_fd(*f));
                }
            }
            (msg.bytes, fd)
        };
        if n == 0 {
            return Err(self.failure("it ended without an answer", None));
        }
        buf.truncate(n);
        Ok((buf, fd))
    }

    fn wait_readable(&self, sock: &OwnedFd) -> Result<()> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        loop {
            let left = self.end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Timeout(format!(
                    "criu {}: no answer in time{}",
                    self.what,
                    super::log_tail(&self.log)
                )));
            }
            let ms = PollTimeout::try_from(left.min(Duration::from_secs(60)))
                .unwrap_or(PollTimeout::MAX);
            let mut p = [PollFd::new(
                std::os::fd::AsFd::as_fd(sock),
                PollFlags::POLLIN,
            )];
            match poll(&mut p, ms) {
                Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
                Ok(_) => return Ok(()),
                Err(e) => return Err(Error::sys("wait for criu", e)),
            }
        }
    }

    /// criu's exit, bounded (killed after).
    fn wait(&mut self) -> Result<WaitStatus> {
        loop {
            match waitpid(Pid::from_raw(self.pid), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) if Instant::now() < self.end => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Ok(WaitStatus::StillAlive) => {
                    self.kill();
                    return Err(Error::Timeout(format!(
                        "criu {}: did not exit in time{}",
                        self.what,
                        super::log_tail(&self.log)
                    )));
                }
                Ok(st) => {
                    self.pid = 0;
                    return Ok(st);
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("wait for criu", e)),
            }
        }
    }

    fn kill(&mut self) {
        if self.pid > 0 {
            let _ = sys::kill(self.pid, libc::SIGKILL);
            let _ = waitpid(Pid::from_raw(self.pid), None);
            self.pid = 0;
        }
    }

    fn failure(&self, how: &str, resp: Option<&Resp>) -> Error {
        // criu's own words when it answered (errno, message), ours else.
        let mut said = String::new();
        if let Some(r) = resp {
            if let Some(m) = &r.errmsg {
                said.push_str(&format!(": {m}"));
            }
            if let Some(e) = r.errno {
                said.push_str(&format!(" (errno {e})"));
            }
        }
        let how = if how.is_empty() {
            String::new()
        } else {
            format!(": {how}")
        };
        Error::Criu(format!(
            "criu {} failed{how}{said}{}",
            self.what,
            super::log_tail(&self.log)
        ))
    }
}

impl Drop for Swrk {
    /// A session left unfinished (an error on our side) ends criu.
    fn drop(&mut self) {
        self.kill();
    }
}

/// A criu_resp, the fields we use.
#[derive(Debug, Default)]
struct Resp {
    kind: i64,
    success: bool,
    pid: Option<i32>,
    script: Option<String>,
    errno: Option<i32>,
    errmsg: Option<String>,
}

impl Resp {
    fn parse(buf: &[u8]) -> Option<Resp> {
        let mut r = Resp::default();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        for f in fields(buf)? {
            match f {
                Field::Int(1, v) => r.kind = v as i64,
                Field::Int(2, v) => r.success = v != 0,
                Field::Int(7, v) => r.errno = Some(v as i32),
                Field::Bytes(9, b) => r.errmsg = Some(text(b)),
                // criu_restore_resp { pid = 1 }
                Field::Bytes(4, b) => {
                    r.pid = fields(b)?.iter().find_map(|f| match f {
                        Field::Int(1, v) => Some(*v as i32),
                        _ => None,
                    })
                }
                // criu_notify { script = 1 }
                Field::Bytes(5, b) => {
                    r.script = fields(b)?.iter().find_map(|f| match f {
                        Field::Bytes(1, s) => Some(text(s)),
                        _ => None,
                    })
                }
                _ => {}
            }
        }
        Some(r)
    }
}

/// The descriptors the forked criu keeps or uses before exec.
struct Held {
    sock: RawFd,
    cwd: RawFd,
    hold: (RawFd, RawFd),
}

/// Forks `criu swrk <sock>` (argv and environment made before the fork);
/// the child waits for the parent's byte on the hold pipe, then enters
/// `cwd` and execs with the socket left open across exec.
fn fork_exec(path: &Path, fds: &Held) -> Result<i32> {
    let c = |s: &OsStr| CString::new(s.as_bytes()).ok();
    let prog = c(path.as_os_str()).ok_or_else(|| Error::Config("criu path has a NUL".into()))?;
    let sock_arg = CString::new(fds.sock.to_string()).unwrap_or_default();
    let argv = [prog.as_c_str(), c"swrk", sock_arg.as_c_str()];
    let envp: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            c(&kv)
        })
        .collect();
    let envp_ref: Vec<&std::ffi::CStr> = envp.iter().map(|s| s.as_c_str()).collect();
    let pid = sys::clone_here(libc::SIGCHLD).map_err(|e| Error::sys("fork criu", e))?;
    if pid == 0 {
        sys::close_raw(fds.hold.1);
        let kept = nix::fcntl::fcntl(
            fds.sock,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
        );
        if !sys::read_one(fds.hold.0) || kept.is_err() || nix::unistd::fchdir(fds.cwd).is_err() {
            sys::exit_now(1);
        }
        sys::execve(&prog, &argv, &envp_ref);
        sys::exit_now(127);
    }
    Ok(pid)
}
