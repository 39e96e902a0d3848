//! Checkpoint and restore with CRIU (runs in the runtime): criu is driven
//! over its RPC socket (`criu swrk`, swrk.rs), as runc and crun drive it,
//! runc's options mapped onto criu_opts.
//! What lies outside the container's mount namespace is named to criu as
//! external: bind mounts by destination, masked files as /dev/null; the
//! init's standard streams as given at create are recorded (descriptors.json)
//! so a restore hands its own in their place.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::fcntl::OFlag;

use oci_spec::runtime::Spec;

use crate::error::{Error, Result};
use crate::sys;

mod dump;
mod proto;
pub mod restore;
mod swrk;

pub(crate) use proto::Msg;
pub(crate) use swrk::{Swrk, DUMP, RESTORE, SINGLE_PRE_DUMP};

/// A dump or restore of a container takes seconds; a criu still running
/// after this is killed and the operation fails.
const BOUND: Duration = Duration::from_secs(300);

/// What the init's streams 0-2 were, recorded beside the images.
pub(crate) const DESCRIPTORS: &str = "descriptors.json";

/// What `checkpoint` and `restore` share: runc's flags for criu, and the
/// criu binary.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CriuOptions {
    /// Allow (and restore) established TCP connections.
    pub tcp_established: bool,
    /// Allow unix sockets connected outside the container.
    pub ext_unix_sk: bool,
    /// Allow a process tree that is a shell job (a terminal session).
    pub shell_job: bool,
    /// Dump and restore file locks.
    pub file_locks: bool,
    /// Deduplicate memory images against the parent's.
    pub auto_dedup: bool,
    /// Restore memory lazily (userfaultfd), where criu has it.
    pub lazy_pages: bool,
    /// soft (the default), full, strict or ignore.
    pub manage_cgroups_mode: Option<String>,
    /// Namespaces made empty on restore instead of restored (network).
    pub empty_ns: Vec<String>,
    /// The criu binary (default: `criu` on PATH).
    pub criu: Option<PathBuf>,
}

/// runc's `checkpoint` flags.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CheckpointOptions {
    /// Where the images go (made if missing).
    pub image_path: PathBuf,
    /// Where criu's log and work files go (default: the image path).
    pub work_path: Option<PathBuf>,
    /// A pre-dump's images this dump is incremental to (relative to the
    /// image path, as criu takes it).
    pub parent_path: Option<PathBuf>,
    /// Leave the container running after the dump.
    pub leave_running: bool,
    /// Skip TCP connections still being set up.
    pub tcp_skip_in_flight: bool,
    /// Link unlinked open files back where possible.
    pub link_remap: bool,
    /// Memory only, the container keeps running: a later dump names it
    /// with `parent_path`.
    pub pre_dump: bool,
    /// Send the memory to a page server at `(address, port)` instead of
    /// the image directory (with `lazy_pages`: serve it from there).
    pub page_server: Option<(String, u16)>,
    /// A descriptor (open in this process) that gets one `\0` once a lazy
    /// dump's page server is ready, then is closed (runc's `--status-fd`).
    pub status_fd: Option<std::os::fd::RawFd>,
    /// The flags restore takes too.
    pub criu: CriuOptions,
}

impl CheckpointOptions {
    /// Options with the images at `image_path`, everything else default.
    pub fn new(image_path: impl Into<PathBuf>) -> CheckpointOptions {
        CheckpointOptions {
            image_path: image_path.into(),
            ..Default::default()
        }
    }
}

impl CriuOptions {
    /// These options into criu_opts (rpc.proto's field numbers).
    pub(crate) fn fill(&self, m: &mut Msg) -> Result<()> {
        m.flag(4, self.ext_unix_sk)
            .flag(5, self.tcp_established)
            .flag(7, self.shell_job)
            .flag(8, self.file_locks)
            .flag(16, self.auto_dedup)
            .flag(48, self.lazy_pages);
        // criu_cg_mode: IGNORE 0, SOFT 3, FULL 4, STRICT 5.
        let mode = match self.manage_cgroups_mode.as_deref().unwrap_or("soft") {
            "soft" => 3,
            "full" => 4,
            "strict" => 5,
            "ignore" => 0,
            other => {
                return Err(Error::Config(format!(
                    "--manage-cgroups-mode {other:?}: must be soft, full, strict or ignore"
                )))
            }
        };
        m.flag(24, true).int(34, mode);
        let mut empty = 0;
        for ns in &self.empty_ns {
            // runc's name for it is the OCI one.
            match ns.as_str() {
                "network" | "net" => empty |= libc::CLONE_NEWNET,
                other => {
                    return Err(Error::Config(format!(
                        "--empty-ns {other:?}: only the network namespace can be left empty"
                    )))
                }
            }
        }
        if empty != 0 {
            m.int(38, i64::from(empty));
        }
        Ok(())
    }
}

/// The directories a criu session works with, open: criu finds them
/// through our /proc/<pid>/fd; the work directory is also its cwd.
pub(crate) struct Dirs {
    images: OwnedFd,
    work: OwnedFd,
    work_path: PathBuf,
}

impl Dirs {
    /// `images` and `work` (default: the images), made if missing.
    pub fn open(images: &Path, work: Option<&Path>) -> Result<Dirs> {
        let work_path = work.unwrap_or(images).to_path_buf();
        ensure_dir(images)?;
        ensure_dir(&work_path)?;
        let open = |p: &Path| {
            nix::fcntl::open(
                p,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map(sys::own_fd)
            .map_err(|e| Error::path("open", p, e))
        };
        Ok(Dirs {
            images: open(images)?,
            work: open(&work_path)?,
            work_path,
        })
    }

    /// criu_opts' fields every request has: the directories, the log
    /// (verbose, as runc's), the root, notifications on (they bring the
    /// terminal's master and the page server's readiness), and criu's
    /// configuration file as runc picks it: the `org.criu.config`
    /// annotation's (none when it is empty), else /etc/criu/runc.conf
    /// (criu ignores a missing one; its settings win over these).
    pub fn base(&self, log: &str, root: &Path, spec: &Spec) -> Msg {
        let mut m = Msg::default();
        m.int(1, i64::from(self.images.as_raw_fd()))
            .int(17, i64::from(self.work.as_raw_fd()))
            .int(9, 4)
            .str(10, log)
            .str(13, &root.to_string_lossy())
            .flag(12, true)
            .flag(50, true);
        let annotation = spec
            .annotations()
            .as_ref()
            .and_then(|a| a.get("org.criu.config"));
        match annotation.map(String::as_str) {
            Some("") => {}
            Some(file) => {
                m.str(51, file);
            }
            None => {
                m.str(51, "/etc/criu/runc.conf");
            }
        }
        m
    }

    /// Starts `criu swrk` for one request (`what`, logging to `log`).
    pub fn session(
        &self,
        criu: Option<&Path>,
        log: &str,
        what: &'static str,
        started: impl FnOnce(i32) -> Result<()>,
    ) -> Result<Swrk> {
        let criu = criu.map(Path::to_path_buf).unwrap_or_else(|| "criu".into());
        Swrk::start(
            &criu,
            &self.work,
            self.work_path.join(log),
            what,
            BOUND,
            started,
        )
    }
}

/// An `--external` (criu_opts.external) entry.
pub(crate) fn external(m: &mut Msg, key: &str) {
    m.str(37, key);
}

/// The bind mounts criu must be told are not the container's own, as
/// `(destination in the container, source on the host)`, sources relative
/// to `bundle` resolved. (Masked files, bound from /dev/null, are found at
/// dump: dump.rs.)
pub(crate) fn external_binds(spec: &Spec, bundle: &Path) -> Vec<(PathBuf, PathBuf)> {
    let mut out = vec![];
    for m in spec.mounts().iter().flatten() {
        let opts = m.options().as_deref().unwrap_or_default();
        let bind =
            m.typ().as_deref() == Some("bind") || opts.iter().any(|o| o == "bind" || o == "rbind");
        if let (true, Ok(src)) = (bind, crate::init::mounts::bind_source(m, bundle)) {
            out.push((m.destination().clone(), src));
        }
    }
    out
}

/// [`external_binds`] keyed by where each is really mounted in the running
/// container `pid`: a destination reached through a symlink is mounted
/// where the link leads (as create resolves it), and criu knows mounts by
/// that place (runc resolves it the same way).
pub(crate) fn mounted_binds(spec: &Spec, bundle: &Path, pid: i32) -> Vec<(PathBuf, PathBuf)> {
    let binds = external_binds(spec, bundle);
    let root = crate::sys::safepath::Root::open(Path::new(&format!("/proc/{pid}/root")));
    let info = crate::sys::procfs::read_text(format!("/proc/{pid}/mountinfo")).unwrap_or_default();
    let mountpoint = |id: u64| {
        info.lines().find_map(|l| {
            let mut f = l.split(' ');
            if f.next()?.parse::<u64>().ok()? != id {
                return None;
            }
            f.nth(3).map(unescape)
        })
    };
    binds
        .into_iter()
        .map(|(dest, src)| {
            let at = root
                .as_ref()
                .ok()
                .and_then(|r| r.lookup(&dest).ok())
                .and_then(|fd| sys::mount_id(std::os::fd::AsFd::as_fd(&fd)).ok())
                .and_then(mountpoint)
                // A bind found unmounted in there resolves to "/": keep the
                // config's name, criu says what is wrong.
                .filter(|p| p != Path::new("/"))
                .unwrap_or(dest);
            (at, src)
        })
        .collect()
}

/// A mountinfo path: spaces, tabs, newlines and backslashes come octal.
fn unescape(s: &str) -> PathBuf {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], oct) {
            (b'\\', Some(d)) => {
                out.push(d.iter().fold(0u8, |n, c| n.wrapping_mul(8) + (c - b'0')));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    PathBuf::from(<std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(out))
}

/// The name masked files go by in the images (each is /dev/null bound).
pub(crate) const MASKED: &str = "/dev/null";

/// Where a container without a cgroup namespace of its own has its
/// cgroup: binds of its own cgroup directories from the host (cgroupfs.rs),
/// so external mounts for criu. Each: the mount point in the container,
/// a controller of the host hierarchy it comes from (`None`: the v2 one).
/// On v1 only the hierarchies where the container's cgroup existed at
/// create were bound: with `bound_in` (its path, at dump) those alone;
/// without (restore, the cgroup not made yet) all, unused names being
/// harmless to criu.
pub(crate) fn cgroup_binds(spec: &Spec, bound_in: Option<&Path>) -> Vec<(PathBuf, Option<String>)> {
    use oci_spec::runtime::LinuxNamespaceType as T;
    let own_ns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter()
                .any(|n| n.typ() == T::Cgroup && n.path().is_none())
        });
    let dest = spec
        .mounts()
        .iter()
        .flatten()
        .find(|m| matches!(m.typ().as_deref(), Some("cgroup" | "cgroup2")))
        .map(|m| m.destination().clone());
    let Some(dest) = dest.filter(|_| !own_ns) else {
        return vec![];
    };
    let hierarchies = estiba_cgroups::hierarchy::host();
    if estiba_cgroups::hierarchy::is_unified(&hierarchies) {
        return vec![(dest, None)];
    }
    let bound = |h: &estiba_cgroups::hierarchy::Hierarchy| {
        bound_in.is_none_or(|p| {
            h.mount_point
                .join(p.strip_prefix("/").unwrap_or(p))
                .is_dir()
        })
    };
    hierarchies
        .iter()
        .filter(|h| !h.v2 && bound(h))
        .filter_map(|h| {
            let first = h.controllers.first()?.clone();
            Some((dest.join(crate::init::cgroupfs::entry_name(h)), Some(first)))
        })
        .collect()
}

/// The namespaces the container joins by path that criu must not dump but
/// name (runc's keys): `(criu's name for the type, key, path)`. A pod's
/// containers join the sandbox's network namespace this way.
pub(crate) fn joined_namespaces(spec: &Spec) -> Vec<(&'static str, &'static str, PathBuf)> {
    use oci_spec::runtime::LinuxNamespaceType as T;
    let namespaces = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    namespaces
        .into_iter()
        .filter_map(|n| {
            let (kind, key) = match n.typ() {
                T::Network => ("net", "extRootNetNS"),
                T::Pid => ("pid", "extRootPidNS"),
                _ => return None,
            };
            n.path().clone().map(|p| (kind, key, p))
        })
        .collect()
}

/// `criu` as given, or found on PATH.
pub(super) fn find(criu: &Path) -> Option<PathBuf> {
    if criu.components().count() > 1 {
        return criu.is_file().then(|| criu.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(criu))
        .find(|p| p.is_file())
}

/// The last lines of criu's log, for an error message.
pub(super) fn log_tail(path: &Path) -> String {
    let Ok(text) = std::fs::read_to_string(path) else {
        return String::new();
    };
    // criu's first errors say why; its last lines what it was doing.
    let errors: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("Error ("))
        .take(4)
        .collect();
    let lines: Vec<&str> = text.lines().collect();
    let last = lines[lines.len().saturating_sub(2)..].join("\n");
    format!(": {}:\n{}\n...\n{last}", path.display(), errors.join("\n"))
}

/// Makes `dir` (and parents) if missing.
pub(crate) fn ensure_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::path("create", dir, &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_paths_are_unescaped() {
        // As the kernel writes them (show_mountinfo's mangle: " \t\n\\").
        assert_eq!(unescape("/a\\040b\\011c"), Path::new("/a b\tc"));
        assert_eq!(unescape("/x\\134y"), Path::new("/x\\y"));
        assert_eq!(unescape("/plain\\9"), Path::new("/plain\\9"));
    }
}
