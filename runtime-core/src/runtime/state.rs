//! What the runtime remembers about a container between invocations, and how
//! its status is decided.
//!
//! Status is never stored: it is derived each time from the init pid plus
//! its start time (so a reused pid reads as "stopped"), the presence of the
//! exec socket (created vs running) and the freezer (paused).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::Hook;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub const STATE_FILE: &str = "state.json";
/// Where an estiba before 2026-12 kept the container's config as created
/// (now [`Saved::config`]): read for such a container, never written.
pub const CONFIG_COPY: &str = "config.json";
pub const EXEC_SOCKET: &str = "exec.sock";

/// A container's status, as the OCI state document names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Status {
    /// `create` is under way.
    Creating,
    /// Created: the init waits for `start`.
    Created,
    /// The user's program runs.
    Running,
    /// Frozen.
    Paused,
    /// The init has exited.
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// `state.json` on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Saved {
    pub id: String,
    /// 0 while creating, before the init process exists.
    pub pid: i32,
    /// Field 22 of /proc/<pid>/stat at create time.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339, UTC, nanoseconds.
    pub created: String,
    #[serde(default)]
    pub annotations: std::collections::BTreeMap<String, String>,
    pub cgroup_path: PathBuf,
    #[serde(default)]
    pub systemd_cgroup: bool,
    /// Parent cgroups `create` had to make (deepest first): `delete`
    /// removes them once empty, and never one it found.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cgroup_parents_made: Vec<PathBuf>,
    /// The hierarchies (mount points) where a runtime without root could
    /// make no cgroup for the container, which goes without one there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cgroup_left_out: Vec<PathBuf>,
    /// Whether the init has its own pid namespace: then killing it kills
    /// everything, else `delete` must sweep the cgroup.
    #[serde(default)]
    pub own_pid_ns: bool,
    /// Kept so `start` and `delete` need not re-read the bundle (which may
    /// be gone by then).
    #[serde(default)]
    pub poststart: Vec<Hook>,
    #[serde(default)]
    pub poststop: Vec<Hook>,
    pub oci_version: String,
    /// Set once `create` has handed over.
    pub created_done: bool,
    /// config.json had no `process`: the container can be created, not started.
    #[serde(default)]
    pub no_process: bool,
    /// The init's standard streams as given at create, where they are
    /// pipes or sockets (`pipe:[N]`, `socket:[N]`; "" otherwise): what a
    /// checkpoint records for restore to hand its own in their place
    /// (runc's external descriptors). Read at checkpoint time they could
    /// be anything the program made of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stdio: Vec<String>,
    /// The config as created, as its JSON text: exec and `spec()` read it,
    /// never the bundle again (an edited or removed bundle changes
    /// nothing). In this file, as runc keeps it, rather than a file of its
    /// own: one inode less to allocate and free per container. Kept as a
    /// string, so `state` and `list` only copy it (serde_json's raw_value
    /// would skip the escaping, for 24 KB of binary). Set once the init
    /// runs (the save after `Go`), off create's critical path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
}

/// The OCI state document (plus runc's extra fields engines read).
#[derive(Debug, Clone, Serialize, Deserialize)]
/// Fields in runc's order (`state`, `list --format json`): scripts match
/// on the text.
#[non_exhaustive]
pub struct OciState {
    /// The runtime-spec version of the container's config.
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    /// The container's id.
    pub id: String,
    /// The init's pid (0 once stopped).
    pub pid: i32,
    /// Its status.
    pub status: Status,
    /// The bundle directory.
    pub bundle: PathBuf,
    /// The rootfs (runc's extra field).
    pub rootfs: PathBuf,
    /// When it was created, RFC 3339 (runc's extra field).
    pub created: String,
    /// The config's annotations.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty", default)]
    pub annotations: std::collections::BTreeMap<String, String>,
    /// runc's extra field: empty from `state`; from `list`, the name of
    /// the state directory's owner (`#<uid>` without one).
    pub owner: String,
}

impl Saved {
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(STATE_FILE);
        let text = fs::read(&path).map_err(|e| Error::path("read", &path, &e))?;
        serde_json::from_slice(&text).map_err(|source| Error::Parse {
            what: format!("state file {path:?} (damaged)"),
            source,
        })
    }

    /// Writes a temporary file and puts it in place atomically
    /// ([`replace`]): readers see the old state or the new one, never half
    /// of either.
    pub fn save(&self, dir: &Path) -> Result<()> {
        self.save_with(dir, Spare::Removed)
    }

    /// [`Saved::save`] for a writer that saves again soon (create saves
    /// three times): the state it replaces stays at the writer's temporary
    /// name and is written over by the next save, instead of a new file
    /// each time. On a disk-backed root every new file is an inode
    /// allocation (ext4 without a journal scans past each inode freed in
    /// the last minute) and every removal a discard. A plain `save` ends it.
    pub(crate) fn save_keeping_spare(&self, dir: &Path) -> Result<()> {
        self.save_with(dir, Spare::Keep)
    }

    fn save_with(&self, dir: &Path, spare: Spare) -> Result<()> {
        let body =
            serde_json::to_vec(self).map_err(|e| Error::Sys(format!("encode state: {e}")))?;
        put(dir, &body, spare)
    }

    /// Whether the recorded init process still runs (not a zombie, same
    /// start time, so not a recycled pid).
    pub fn init_alive(&self) -> bool {
        self.pid > 0
            && proc_start_time(self.pid)
                .is_some_and(|(start, zombie)| start == self.pid_start && !zombie)
    }

    /// Whether the recorded init still exists, zombie or not (same start
    /// time): there is still an exit status to collect.
    pub fn init_exists(&self) -> bool {
        self.pid > 0 && proc_start_time(self.pid).is_some_and(|(start, _)| start == self.pid_start)
    }

    pub fn status(&self, dir: &Path) -> Status {
        if !self.created_done {
            // A create still under way, or one that died: the init decides
            // whether anything is left to clean; before the init is
            // recorded, the create's lock on the dir does.
            let under_way = match self.pid {
                0 => create_holds(dir),
                _ => self.init_alive(),
            };
            return if under_way {
                Status::Creating
            } else {
                Status::Stopped
            };
        }
        if !self.init_alive() {
            return Status::Stopped;
        }
        if dir.join(EXEC_SOCKET).exists() {
            return Status::Created;
        }
        if estiba_cgroups::is_frozen(&self.cgroup_path) {
            return Status::Paused;
        }
        Status::Running
    }

    pub fn oci(&self, status: Status) -> OciState {
        OciState {
            oci_version: self.oci_version.clone(),
            id: self.id.clone(),
            status,
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            bundle: self.bundle.clone(),
            rootfs: self.rootfs.clone(),
            created: self.created.clone(),
            // runc's `state` leaves it empty; `list` fills it in.
            owner: String::new(),
            annotations: self.annotations.clone(),
        }
    }
}

/// Start time (clock ticks since boot) of `pid` and whether it is a zombie.
pub fn proc_start_time(pid: i32) -> Option<(u64, bool)> {
    let stat = crate::sys::procfs::read_text(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: parse after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // `rest` starts at field 3 (state); starttime is field 22.
    let zombie = matches!(fields.first(), Some(&"Z") | Some(&"X"));
    let start = fields.get(22 - 3)?.parse().ok()?;
    Some((start, zombie))
}

/// A socket for the exec socket of the state dir open as `dir_fd`, and its
/// address: through `/proc/self/fd/N/`, so a long `--root` never hits the
/// 108-byte socket path limit. `create` binds it, `start` connects.
pub fn exec_socket(
    dir_fd: std::os::fd::RawFd,
) -> Result<(std::os::fd::OwnedFd, nix::sys::socket::UnixAddr)> {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType, UnixAddr};
    let sock = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| Error::sys("socket", e))?;
    let addr = UnixAddr::new(format!("/proc/self/fd/{dir_fd}/{EXEC_SOCKET}").as_str())
        .map_err(|e| Error::sys("exec socket address", e))?;
    Ok((sock, addr))
}

/// Whether a create (or restore) still holds the lock on `dir`: it does
/// from its claim to its end. Taken for a moment when free.
fn create_holds(dir: &Path) -> bool {
    let Ok(f) = fs::File::open(dir) else {
        return false;
    };
    crate::sys::flock_exclusive_now(std::os::fd::AsFd::as_fd(&f))
        == Err(nix::errno::Errno::EWOULDBLOCK)
}

/// `<root>/<id>`, after the id was validated.
pub fn container_dir(root: &Path, id: &str) -> PathBuf {
    root.join(id)
}

/// Creates the state root (0700) if missing.
pub fn ensure_root(root: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root)
        .map_err(|e| Error::path("create state root", root, &e))
}

/// Now, as RFC 3339 with nanoseconds in UTC (what runc writes in `created`).
pub fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(now.as_secs() as i64, now.subsec_nanos())
}

fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's method).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// What becomes of the file a save replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spare {
    /// Left at the writer's temporary name for its next save.
    Keep,
    Removed,
}

/// Removes a container's state dir: the file a container leaves there by
/// name, then the dir; a full walk only for anything else (an older
/// estiba's config copy among it). The walk's
/// directory stream is a 32 KiB buffer, which in a runtime about to exit
/// is fresh heap (page faults, the heap grown and trimmed again).
pub(crate) fn remove_dir(dir: &Path) -> std::io::Result<()> {
    // Whatever goes wrong here, the walk below meets it again.
    let _ = fs::remove_file(dir.join(STATE_FILE));
    match fs::remove_dir(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => fs::remove_dir_all(dir),
        done => done,
    }
}

/// Writes `body` as the state in `dir`, through the writer's temporary file.
fn put(dir: &Path, body: &[u8], spare: Spare) -> Result<()> {
    // Each writer its own: two swaps through one name could put the older
    // state back.
    let tmp = dir.join(format!(".state.json.{}.tmp", std::process::id()));
    let write = |e: std::io::Error| Error::path("write", &tmp, &e);
    // Not truncated on open: ext4 (auto_da_alloc) writes a file cut to
    // zero out to disk at close. A longer spare is cut to length after.
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&tmp)
        .map_err(write)?;
    f.write_all(body).map_err(write)?;
    if f.metadata().map_err(write)?.len() > body.len() as u64 {
        f.set_len(body.len() as u64).map_err(write)?;
    }
    drop(f);
    replace(&tmp, &dir.join(STATE_FILE), spare)
}

/// Puts the file at `tmp` at `path` atomically. Swapped in (RENAME_EXCHANGE)
/// where a file is there already, the old one then removed or, with
/// [`Spare::Keep`], left at `tmp` for the next write: ext4 makes
/// a rename that replaces a file allocate and start writing the new one's
/// blocks at once (auto_da_alloc), so every state update cost a disk write
/// and, freed again, a discard (with `-o discard`, waited for). Swapped,
/// a state that lives a few seconds never reaches the disk. Plain rename
/// where there is nothing to swap with, or the filesystem cannot swap.
fn replace(tmp: &Path, path: &Path, spare: Spare) -> Result<()> {
    use nix::fcntl::{renameat2, RenameFlags};
    match renameat2(None, tmp, None, path, RenameFlags::RENAME_EXCHANGE) {
        Ok(()) if spare == Spare::Keep => Ok(()),
        Ok(()) => fs::remove_file(tmp).map_err(|e| Error::path("remove", tmp, &e)),
        Err(nix::errno::Errno::ENOENT | nix::errno::Errno::EINVAL) => {
            fs::rename(tmp, path).map_err(|e| Error::path("rename", path, &e))
        }
        Err(e) => Err(Error::path("rename", path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(
            rfc3339(1_700_000_000, 123),
            "2023-11-14T22:13:20.000000123Z"
        );
    }

    #[test]
    fn own_start_time_is_stable_and_alive() {
        let me = std::process::id() as i32;
        let (a, zombie) = proc_start_time(me).expect("own stat");
        assert!(!zombie);
        assert_eq!(proc_start_time(me).map(|x| x.0), Some(a));
    }

    fn saved(pid: i32, pid_start: u64, created_done: bool) -> Saved {
        Saved {
            id: "x".into(),
            pid,
            pid_start,
            bundle: "/".into(),
            rootfs: "/".into(),
            created: String::new(),
            annotations: Default::default(),
            cgroup_path: "/x".into(),
            systemd_cgroup: false,
            cgroup_parents_made: vec![],
            cgroup_left_out: vec![],
            own_pid_ns: true,
            poststart: vec![],
            poststop: vec![],
            oci_version: "1.0.0".into(),
            created_done,
            no_process: false,
            config: None,
            stdio: vec![],
        }
    }

    #[test]
    fn reused_pid_reads_as_dead() {
        let me = std::process::id() as i32;
        let (start, _) = proc_start_time(me).unwrap();
        let mut s = saved(me, start + 1, true);
        assert!(!s.init_alive());
        s.pid_start = start;
        assert!(s.init_alive());
    }

    #[test]
    fn a_create_gone_before_recording_its_init_reads_as_stopped() {
        // The first state (pid 0) of a create killed before its init was
        // recorded: creating only while the create holds the dir's lock.
        let d = Scratch::new("unrecorded");
        let s = saved(0, 0, false);
        assert_eq!(s.status(&d.0), Status::Stopped);
        let lock = fs::File::open(&d.0).unwrap();
        crate::sys::flock_exclusive_now(std::os::fd::AsFd::as_fd(&lock)).unwrap();
        assert_eq!(s.status(&d.0), Status::Creating);
        drop(lock);
        assert_eq!(s.status(&d.0), Status::Stopped);
    }

    /// A directory of the test's own, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let d = std::env::temp_dir().join(format!("estiba-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&d);
            fs::create_dir(&d).unwrap();
            Scratch(d)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn remove_dir_takes_whatever_the_dir_holds() {
        let d = Scratch::new("rmstate");
        let plain = d.0.join("plain");
        fs::create_dir(&plain).unwrap();
        fs::write(plain.join(STATE_FILE), "{}").unwrap();
        fs::write(plain.join(CONFIG_COPY), "{}").unwrap();
        remove_dir(&plain).unwrap();
        assert!(!plain.exists());
        // More than the two files a container leaves: the rest goes too.
        let more = d.0.join("more");
        fs::create_dir_all(more.join("sub")).unwrap();
        fs::write(more.join(STATE_FILE), "{}").unwrap();
        fs::write(more.join(EXEC_SOCKET), "").unwrap();
        fs::write(more.join("sub/x"), "").unwrap();
        remove_dir(&more).unwrap();
        assert!(!more.exists());
        // Gone already: an error, as before.
        let err = remove_dir(&more).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    }

    #[test]
    fn replace_puts_the_new_file_in_place_and_leaves_no_temporary() {
        let d = Scratch::new("replace");
        let (tmp, path) = (d.0.join(".t"), d.0.join("state.json"));
        fs::write(&tmp, "first").unwrap();
        replace(&tmp, &path, Spare::Removed).unwrap();
        fs::write(&tmp, "second").unwrap();
        replace(&tmp, &path, Spare::Removed).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "second");
        assert!(!tmp.exists());
    }

    /// create's saves write over one spare file: the state is always the
    /// last one written, whole (a shorter state after a longer one leaves
    /// no tail of it), and the last plain save leaves no temporary behind.
    #[test]
    fn saves_through_a_spare_leave_exactly_the_last_state() {
        let d = Scratch::new("spare");
        let tmp = d.0.join(format!(".state.json.{}.tmp", std::process::id()));
        let long = format!("{{\"pid\":1,\"pad\":\"{}\"}}", "x".repeat(300));
        put(&d.0, b"{\"pid\":0}", Spare::Keep).unwrap();
        put(&d.0, long.as_bytes(), Spare::Keep).unwrap();
        assert!(tmp.exists(), "the replaced state is kept as the spare");
        put(&d.0, b"{\"pid\":2}", Spare::Keep).unwrap();
        let now = fs::read(d.0.join(STATE_FILE)).unwrap();
        assert_eq!(now, b"{\"pid\":2}");
        serde_json::from_slice::<serde_json::Value>(&now).unwrap();
        put(&d.0, b"{\"pid\":3}", Spare::Removed).unwrap();
        assert_eq!(fs::read(d.0.join(STATE_FILE)).unwrap(), b"{\"pid\":3}");
        assert!(!tmp.exists(), "a plain save removes the spare");
    }

    /// `state`, `list` and `delete` read the state while create and start
    /// write it: a reader must always find it, whole.
    #[test]
    fn readers_never_find_the_state_missing_or_partial() {
        let d = Scratch::new("readers");
        let (tmp, path) = (d.0.join(".t"), d.0.join("state.json"));
        let versions: Vec<Vec<u8>> = (b'a'..=b'b').map(|c| vec![c; 64 * 1024]).collect();
        fs::write(&path, &versions[0]).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (path, stop, versions) = (path.clone(), stop.clone(), versions.clone());
            std::thread::spawn(move || {
                let mut reads = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match fs::read(&path) {
                        Ok(b) if versions.contains(&b) => reads += 1,
                        Ok(b) => return Err(format!("a partial state: {} bytes", b.len())),
                        Err(e) => return Err(format!("no state: {e}")),
                    }
                }
                Ok(reads)
            })
        };
        for i in 0..300 {
            fs::write(&tmp, &versions[i % 2]).unwrap();
            replace(&tmp, &path, Spare::Removed).unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let reads = reader.join().unwrap().unwrap();
        assert!(reads > 0);
    }
}
