//! Multi-threaded callers. A container process is a raw clone of the
//! caller, and until it execs it runs our code, which allocates; in a
//! multi-threaded caller another thread may hold a lock (malloc's, an
//! environment lock) at the moment of the clone, and the clone would wait
//! on it forever. So in a multi-threaded caller, `create` and `exec` run in
//! a helper: a fork(3) of the caller (glibc makes its allocator consistent
//! in the child of a fork), single-threaded, which does the work and clones
//! the container process with CLONE_PARENT, so that it is the caller's
//! child (the caller can wait for it and get its exit status), then sends
//! the result back and exits. A single-threaded caller (the CLI) pays
//! nothing for this: one directory read.

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use nix::sys::socket::{recvmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::sys;

static IN_HELPER: AtomicBool = AtomicBool::new(false);
/// The last container process the helper cloned: the caller's child, which
/// the caller reaps when the helper's work failed after the clone.
static CLONED: AtomicI32 = AtomicI32::new(0);

/// Whether this process is a helper (clones must name the caller as the
/// parent).
pub(crate) fn in_helper() -> bool {
    IN_HELPER.load(Ordering::Relaxed)
}

/// Records a clone made in the helper.
pub(crate) fn cloned(pid: i32) {
    if in_helper() {
        CLONED.store(pid, Ordering::Relaxed);
    }
}

/// Whether the caller has other threads (then the work goes to a helper).
/// `unshare(CLONE_THREAD)` asks the kernel in one call: EINVAL with other
/// threads in the group, else a no-op. Where it is filtered (seccomp),
/// /proc/self/task is counted (a directory stream: a 32 KiB buffer).
fn multithreaded() -> bool {
    use nix::sched::{unshare, CloneFlags};
    match unshare(CloneFlags::CLONE_THREAD) {
        Ok(()) => false,
        Err(nix::errno::Errno::EINVAL) => true,
        Err(_) => threads_in_proc() > 1,
    }
}

fn threads_in_proc() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

/// What travels from the helper to the caller: a JSON body and the
/// descriptors it names by index.
pub(crate) struct Wire {
    pub body: Value,
    pub fds: Vec<OwnedFd>,
}

/// Runs `work` here when the caller is single-threaded, else in a helper;
/// `encode` turns its result into a [`Wire`] (in the helper), `decode`
/// back (in the caller).
pub(crate) fn run<T>(
    work: impl FnOnce() -> Result<T>,
    encode: impl FnOnce(T) -> Wire,
    decode: impl FnOnce(Wire) -> Result<T>,
) -> Result<T> {
    if in_helper() || !multithreaded() {
        return work();
    }
    let (ours, theirs) = UnixDatagram::pair().map_err(|e| Error::sys("socketpair", &e))?;
    // The helper only runs `work` (our code) and exits.
    let ours_fd = ours.as_raw_fd();
    let pid = sys::fork_then(|| {
        let _ = nix::unistd::close(ours_fd);
        IN_HELPER.store(true, Ordering::Relaxed);
        let reply = match work() {
            Ok(v) => {
                let w = encode(v);
                (json!({"ok": w.body}), w.fds)
            }
            Err(e) => (
                json!({"err": wire_error(&e), "reap": CLONED.load(Ordering::Relaxed)}),
                vec![],
            ),
        };
        let _ = send(&theirs, &reply.0, &reply.1);
        0
    })
    .map_err(|e| Error::sys("fork a helper", e))?;
    drop(theirs);
    let got = receive(&ours);
    // The helper exits once it has sent; reap it.
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
    let (body, fds) = got?;
    if let Some(reap) = body["reap"].as_i64().filter(|p| *p > 0) {
        // The container process the helper killed is our child.
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(reap as i32), None);
    }
    if let Some(err) = body.get("err") {
        return Err(unwire_error(err));
    }
    decode(Wire {
        body: body["ok"].clone(),
        fds,
    })
}

fn send(sock: &UnixDatagram, body: &Value, fds: &[OwnedFd]) -> Result<()> {
    let bytes = body.to_string();
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let cmsg = [ControlMessage::ScmRights(&raw)];
    let cmsgs: &[ControlMessage] = if raw.is_empty() { &[] } else { &cmsg };
    nix::sys::socket::sendmsg::<()>(
        sock.as_raw_fd(),
        &[std::io::IoSlice::new(bytes.as_bytes())],
        cmsgs,
        MsgFlags::empty(),
        None,
    )
    .map(drop)
    .map_err(|e| Error::sys("send the helper's result", e))
}

fn receive(sock: &UnixDatagram) -> Result<(Value, Vec<OwnedFd>)> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 4]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| Error::sys("receive the helper's result", e))?;
    let mut fds = vec![];
    for c in msg
        .cmsgs()
        .map_err(|e| Error::sys("receive the helper's result", e))?
    {
        if let ControlMessageOwned::ScmRights(raw) = c {
            fds.extend(raw.into_iter().map(sys::own_fd));
        }
    }
    let n = msg.bytes;
    if n == 0 {
        return Err(Error::Init(
            "the helper process died before it answered".into(),
        ));
    }
    let body = serde_json::from_slice(&buf[..n]).map_err(|source| Error::Parse {
        what: "the helper's result".into(),
        source,
    })?;
    Ok((body, fds))
}

/// An error as the helper sends it: the kinds a caller matches on, and the
/// message.
fn wire_error(e: &Error) -> Value {
    let (kind, detail) = match e {
        Error::NotFound(id) => ("not-found", id.clone()),
        Error::Exists(id) => ("exists", id.clone()),
        Error::Config(m) => ("config", m.clone()),
        Error::Unsupported(m) => ("unsupported", m.clone()),
        other => ("other", other.to_string()),
    };
    json!({"kind": kind, "detail": detail, "errno": e.errno()})
}

fn unwire_error(v: &Value) -> Error {
    let detail = v["detail"].as_str().unwrap_or("").to_string();
    match v["kind"].as_str() {
        Some("not-found") => Error::NotFound(detail),
        Some("exists") => Error::Exists(detail),
        Some("config") => Error::Config(detail),
        Some("unsupported") => Error::Unsupported(detail),
        _ => match v["errno"].as_i64() {
            Some(n) => Error::sys(
                detail.rsplit_once(": ").map(|(c, _)| c).unwrap_or(&detail),
                nix::errno::Errno::from_raw(n as i32),
            ),
            None => Error::Init(detail),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernels_answer_agrees_with_proc() {
        // libtest runs each test on a thread of its own: never alone here.
        let other =
            std::thread::spawn(|| std::thread::sleep(std::time::Duration::from_millis(200)));
        assert!(threads_in_proc() > 1);
        assert!(multithreaded());
        other.join().unwrap();
    }
}
