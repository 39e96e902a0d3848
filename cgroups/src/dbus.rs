//! Just enough D-Bus to call systemd's manager: EXTERNAL authentication, a
//! marshaller for the argument types those calls take, and a reader for
//! method returns and errors. Little-endian only (what our peers on the
//! same host speak); no file descriptors, no signals, no introspection.
//!
//! Written here rather than taken from a crate: libcgroups' own client is
//! private to it, and the D-Bus crates bring async runtimes or C libraries
//! for what is a few hundred lines of a stable wire format.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum DbusError {
    #[error("connect {path}: {msg}")]
    Connect { path: String, msg: String },
    #[error("D-Bus: {0}")]
    Protocol(String),
    #[error("{method}: {name}: {message}")]
    Call {
        method: String,
        name: String,
        message: String,
    },
}

type Result<T> = std::result::Result<T, DbusError>;

fn proto(msg: impl Into<String>) -> DbusError {
    DbusError::Protocol(msg.into())
}

/// A value to marshal: the types systemd's manager methods take.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Byte(u8),
    Bool(bool),
    U32(u32),
    U64(u64),
    Str(String),
    ObjectPath(String),
    Signature(String),
    /// An array of one element type (given as a signature, for empty ones).
    Array(String, Vec<Value>),
    Struct(Vec<Value>),
    Variant(Box<Value>),
}

impl Value {
    pub fn signature(&self) -> String {
        match self {
            Value::Byte(_) => "y".into(),
            Value::Bool(_) => "b".into(),
            Value::U32(_) => "u".into(),
            Value::U64(_) => "t".into(),
            Value::Str(_) => "s".into(),
            Value::ObjectPath(_) => "o".into(),
            Value::Signature(_) => "g".into(),
            Value::Array(elem, _) => format!("a{elem}"),
            Value::Struct(fields) => {
                format!(
                    "({})",
                    fields.iter().map(Value::signature).collect::<String>()
                )
            }
            Value::Variant(_) => "v".into(),
        }
    }

    /// `(sv)`: a property of systemd's `a(sv)` lists.
    pub fn property(name: &str, value: Value) -> Value {
        Value::Struct(vec![
            Value::Str(name.into()),
            Value::Variant(Box::new(value)),
        ])
    }
}

/// Bytes of a message body or header, with D-Bus alignment.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

fn alignment(sig: u8) -> usize {
    match sig {
        b'y' | b'g' | b'v' => 1,
        b'n' | b'q' => 2,
        b'b' | b'i' | b'u' | b's' | b'o' | b'a' | b'h' => 4,
        _ => 8, // x, t, d, (, {
    }
}

impl Writer {
    fn pad(&mut self, align: usize) {
        while self.buf.len() % align != 0 {
            self.buf.push(0);
        }
    }

    fn u32(&mut self, v: u32) {
        self.pad(4);
        self.buf.extend(v.to_le_bytes());
    }

    fn string(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.buf.extend(s.as_bytes());
        self.buf.push(0);
    }

    fn signature(&mut self, s: &str) {
        self.buf.push(s.len() as u8);
        self.buf.extend(s.as_bytes());
        self.buf.push(0);
    }

    pub fn value(&mut self, v: &Value) {
        match v {
            Value::Byte(b) => self.buf.push(*b),
            Value::Bool(b) => self.u32(*b as u32),
            Value::U32(n) => self.u32(*n),
            Value::U64(n) => {
                self.pad(8);
                self.buf.extend(n.to_le_bytes());
            }
            Value::Str(s) | Value::ObjectPath(s) => self.string(s),
            Value::Signature(s) => self.signature(s),
            Value::Array(elem, items) => {
                self.u32(0);
                let len_at = self.buf.len() - 4;
                self.pad(alignment(elem.as_bytes()[0]));
                let start = self.buf.len();
                for item in items {
                    self.value(item);
                }
                let len = (self.buf.len() - start) as u32;
                self.buf[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
            }
            Value::Struct(fields) => {
                self.pad(8);
                for f in fields {
                    self.value(f);
                }
            }
            Value::Variant(inner) => {
                self.signature(&inner.signature());
                self.value(inner);
            }
        }
    }
}

/// Reads what a reply holds: the header fields we need, strings, u32s.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn align(&mut self, a: usize) {
        self.pos = self.pos.div_ceil(a) * a;
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len());
        let end = end.ok_or_else(|| proto("message shorter than its contents"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32> {
        self.align(4);
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self) -> Result<String> {
        let n = self.u32()? as usize;
        let s = self.take(n + 1)?;
        String::from_utf8(s[..n].to_vec()).map_err(|_| proto("string is not UTF-8"))
    }

    fn signature(&mut self) -> Result<String> {
        let n = self.take(1)?[0] as usize;
        let s = self.take(n + 1)?;
        String::from_utf8(s[..n].to_vec()).map_err(|_| proto("signature is not UTF-8"))
    }

    /// Skips one value of a single complete type we may meet in headers.
    fn header_value(&mut self, sig: &str) -> Result<HeaderValue> {
        match sig {
            "u" => Ok(HeaderValue::U32(self.u32()?)),
            "s" | "o" => Ok(HeaderValue::Str(self.string()?)),
            "g" => Ok(HeaderValue::Str(self.signature()?)),
            "y" => Ok(HeaderValue::U32(self.take(1)?[0] as u32)),
            other => Err(proto(format!("header field of type {other}"))),
        }
    }
}

enum HeaderValue {
    U32(u32),
    Str(String),
}

const METHOD_CALL: u8 = 1;
const METHOD_RETURN: u8 = 2;
const ERROR: u8 = 3;

const FIELD_PATH: u8 = 1;
const FIELD_INTERFACE: u8 = 2;
const FIELD_MEMBER: u8 = 3;
const FIELD_ERROR_NAME: u8 = 4;
const FIELD_REPLY_SERIAL: u8 = 5;
const FIELD_DESTINATION: u8 = 6;
const FIELD_SIGNATURE: u8 = 8;

/// A message from the peer.
struct Incoming {
    kind: u8,
    reply_serial: Option<u32>,
    error_name: Option<String>,
    signature: String,
    body: Vec<u8>,
}

/// The destination, object and interface of a call.
pub struct Target<'a> {
    pub destination: &'a str,
    pub path: &'a str,
    pub interface: &'a str,
}

/// What a method returned: its body, for [`Reply::string`].
pub struct Reply {
    signature: String,
    body: Vec<u8>,
}

impl Reply {
    /// The first argument, when the method returns a string or object path.
    pub fn string(&self) -> Result<String> {
        if !matches!(self.signature.chars().next(), Some('s' | 'o')) {
            return Err(proto(format!("reply of type {:?}", self.signature)));
        }
        Reader {
            buf: &self.body,
            pos: 0,
        }
        .string()
    }
}

pub struct Connection {
    sock: UnixStream,
    serial: u32,
}

impl Connection {
    /// Connects and authenticates as our uid. With `bus`, the peer is a bus
    /// daemon and gets the Hello every bus client must send first.
    pub fn open(path: &Path, bus: bool, timeout: Duration) -> Result<Self> {
        let err = |e: std::io::Error| DbusError::Connect {
            path: path.display().to_string(),
            msg: crate::errno_text(&e),
        };
        let sock = UnixStream::connect(path).map_err(err)?;
        sock.set_read_timeout(Some(timeout)).map_err(err)?;
        sock.set_write_timeout(Some(timeout)).map_err(err)?;
        let mut c = Connection { sock, serial: 0 };
        c.authenticate()?;
        if bus {
            c.call(
                &Target {
                    destination: "org.freedesktop.DBus",
                    path: "/org/freedesktop/DBus",
                    interface: "org.freedesktop.DBus",
                },
                "Hello",
                &[],
            )?;
        }
        Ok(c)
    }

    fn authenticate(&mut self) -> Result<()> {
        let uid = nix::unistd::getuid().as_raw().to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        self.send_raw(format!("\0AUTH EXTERNAL {hex}\r\n").as_bytes())?;
        let line = self.read_line()?;
        if !line.starts_with("OK ") {
            return Err(proto(format!("authentication refused: {line}")));
        }
        self.send_raw(b"BEGIN\r\n")
    }

    fn send_raw(&mut self, b: &[u8]) -> Result<()> {
        self.sock
            .write_all(b)
            .map_err(|e| proto(format!("write: {e}")))
    }

    fn read_line(&mut self) -> Result<String> {
        let mut line = vec![];
        let mut byte = [0u8; 1];
        while !line.ends_with(b"\r\n") {
            if line.len() > 512 {
                return Err(proto("authentication line too long"));
            }
            self.read_exact(&mut byte)?;
            line.push(byte[0]);
        }
        line.truncate(line.len() - 2);
        String::from_utf8(line).map_err(|_| proto("authentication reply is not text"))
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<()> {
        self.sock
            .read_exact(buf)
            .map_err(|e| proto(format!("read: {e}")))
    }

    /// Calls `member` with `args` and waits for its return or error.
    pub fn call(&mut self, to: &Target, member: &str, args: &[Value]) -> Result<Reply> {
        self.serial += 1;
        let serial = self.serial;
        let mut body = Writer::default();
        for a in args {
            body.value(a);
        }
        let sig: String = args.iter().map(Value::signature).collect();
        let mut fields = vec![
            field(FIELD_PATH, Value::ObjectPath(to.path.into())),
            field(FIELD_INTERFACE, Value::Str(to.interface.into())),
            field(FIELD_MEMBER, Value::Str(member.into())),
            field(FIELD_DESTINATION, Value::Str(to.destination.into())),
        ];
        if !sig.is_empty() {
            fields.push(field(FIELD_SIGNATURE, Value::Signature(sig)));
        }
        let mut msg = Writer::default();
        msg.buf.extend([b'l', METHOD_CALL, 0, 1]);
        msg.buf.extend((body.buf.len() as u32).to_le_bytes());
        msg.buf.extend(serial.to_le_bytes());
        msg.value(&Value::Array("(yv)".into(), fields));
        msg.pad(8);
        msg.buf.extend(&body.buf);
        self.send_raw(&msg.buf)?;
        loop {
            let m = self.receive()?;
            if m.reply_serial != Some(serial) {
                continue; // a signal, or NameAcquired after Hello
            }
            match m.kind {
                METHOD_RETURN => {
                    return Ok(Reply {
                        signature: m.signature,
                        body: m.body,
                    })
                }
                ERROR => {
                    let message = if m.signature.starts_with('s') {
                        Reader {
                            buf: &m.body,
                            pos: 0,
                        }
                        .string()
                        .unwrap_or_default()
                    } else {
                        String::new()
                    };
                    return Err(DbusError::Call {
                        method: member.into(),
                        name: m.error_name.unwrap_or_default(),
                        message,
                    });
                }
                _ => continue,
            }
        }
    }

    fn receive(&mut self) -> Result<Incoming> {
        let mut fixed = [0u8; 16];
        self.read_exact(&mut fixed)?;
        if fixed[0] != b'l' {
            return Err(proto("big-endian message"));
        }
        let le =
            |i: usize| u32::from_le_bytes([fixed[i], fixed[i + 1], fixed[i + 2], fixed[i + 3]]);
        let (body_len, fields_len) = (le(4) as usize, le(12) as usize);
        if body_len > 1 << 26 || fields_len > 1 << 26 {
            return Err(proto("message over 64 MiB"));
        }
        let header_end = (16 + fields_len).div_ceil(8) * 8;
        let mut rest = vec![0u8; header_end - 16 + body_len];
        self.read_exact(&mut rest)?;
        let mut whole = fixed.to_vec();
        whole.extend(&rest);
        let mut r = Reader {
            buf: &whole[..16 + fields_len],
            pos: 16,
        };
        let mut m = Incoming {
            kind: fixed[1],
            reply_serial: None,
            error_name: None,
            signature: String::new(),
            body: whole[header_end..].to_vec(),
        };
        while r.pos < 16 + fields_len {
            r.align(8);
            if r.pos >= 16 + fields_len {
                break;
            }
            let code = r.take(1)?[0];
            let sig = r.signature()?;
            match (code, r.header_value(&sig)?) {
                (FIELD_REPLY_SERIAL, HeaderValue::U32(v)) => m.reply_serial = Some(v),
                (FIELD_ERROR_NAME, HeaderValue::Str(s)) => m.error_name = Some(s),
                (FIELD_SIGNATURE, HeaderValue::Str(s)) => m.signature = s,
                _ => {}
            }
        }
        Ok(m)
    }
}

/// One `(yv)` header field.
fn field(code: u8, v: Value) -> Value {
    Value::Struct(vec![Value::Byte(code), Value::Variant(Box::new(v))])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Child, Command, Stdio};

    /// A private session bus of Debian's dbus-daemon, removed on drop.
    struct Daemon {
        child: Child,
        dir: std::path::PathBuf,
    }

    impl Drop for Daemon {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn daemon() -> Option<Daemon> {
        let dir = std::env::temp_dir().join(format!("estiba-dbus-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        let child = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--nopidfile"])
            .arg(format!("--address=unix:path={}", dir.join("bus").display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(child) = child else {
            println!("skipped: dbus-daemon is not installed");
            let _ = std::fs::remove_dir_all(&dir);
            return None;
        };
        let d = Daemon { child, dir };
        for _ in 0..500 {
            if d.dir.join("bus").exists() {
                return Some(d);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("dbus-daemon did not make its socket");
    }

    const BUS: Target<'static> = Target {
        destination: "org.freedesktop.DBus",
        path: "/org/freedesktop/DBus",
        interface: "org.freedesktop.DBus",
    };

    #[test]
    fn talks_to_a_real_bus() {
        let Some(d) = daemon() else { return };
        let mut c = Connection::open(&d.dir.join("bus"), true, Duration::from_secs(10))
            .expect("authenticate and Hello");
        let owner = c
            .call(
                &BUS,
                "GetNameOwner",
                &[Value::Str("org.freedesktop.DBus".into())],
            )
            .expect("GetNameOwner")
            .string()
            .unwrap();
        assert_eq!(owner, "org.freedesktop.DBus");
        // Errors come back by name, with their message.
        match c.call(&BUS, "GetNameOwner", &[Value::Str("no.such.Name".into())]) {
            Err(DbusError::Call { name, message, .. }) => {
                assert_eq!(name, "org.freedesktop.DBus.Error.NameHasNoOwner");
                assert!(!message.is_empty());
            }
            other => panic!("GetNameOwner of nobody: {:?}", other.map(|r| r.signature)),
        }
        // systemd's argument shapes: the daemon checks every message against
        // its signature before it even looks the method up, and drops a
        // connection that sends a malformed one. UnknownMethod means the
        // body was well formed.
        let props = Value::Array(
            "(sv)".into(),
            vec![
                Value::property("Delegate", Value::Bool(true)),
                Value::property("PIDs", Value::Array("u".into(), vec![Value::U32(1)])),
                Value::property("MemoryMax", Value::U64(u64::MAX)),
                Value::property("Slice", Value::Str("system.slice".into())),
            ],
        );
        let args = [
            Value::Str("x.scope".into()),
            Value::Str("replace".into()),
            props,
            Value::Array("(sa(sv))".into(), vec![]),
        ];
        match c.call(&BUS, "StartTransientUnit", &args) {
            Err(DbusError::Call { name, .. }) => {
                assert_eq!(name, "org.freedesktop.DBus.Error.UnknownMethod")
            }
            other => panic!(
                "expected UnknownMethod, got {:?}",
                other.map(|r| r.signature)
            ),
        }
        // The connection is still good after that.
        assert!(c
            .call(&BUS, "GetId", &[])
            .and_then(|r| r.string())
            .is_ok_and(|id| id.len() == 32));
    }
}
