//! Checkpoint and restore with CRIU (runs in the runtime): the `criu`
//! binary is driven through its command line, runc's options mapped onto
//! criu's own (runc drives the same operations over criu's RPC socket).
//! What lies outside the container's mount namespace is named to criu as
//! external: bind mounts by destination, masked files as /dev/null; the
//! init's standard streams are recorded at checkpoint (descriptors.json)
//! so a restore hands its own in their place.

use std::ffi::{CString, OsString};
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use oci_spec::runtime::Spec;

use crate::error::{Error, Result};
use crate::sys;

mod dump;
pub mod restore;

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
    pub(crate) fn args(&self, out: &mut Vec<OsString>) -> Result<()> {
        let flags = [
            (self.tcp_established, "--tcp-established"),
            (self.ext_unix_sk, "--ext-unix-sk"),
            (self.shell_job, "--shell-job"),
            (self.file_locks, "--file-locks"),
            (self.auto_dedup, "--auto-dedup"),
            (self.lazy_pages, "--lazy-pages"),
        ];
        out.extend(flags.iter().filter(|f| f.0).map(|f| f.1.into()));
        let mode = self.manage_cgroups_mode.as_deref().unwrap_or("soft");
        if !matches!(mode, "soft" | "full" | "strict" | "ignore") {
            return Err(Error::Config(format!(
                "--manage-cgroups-mode {mode:?}: must be soft, full, strict or ignore"
            )));
        }
        out.push(format!("--manage-cgroups={mode}").into());
        for ns in &self.empty_ns {
            // runc's name for it is the OCI one.
            let criu_ns = match ns.as_str() {
                "network" | "net" => "net",
                other => {
                    return Err(Error::Config(format!(
                        "--empty-ns {other:?}: only the network namespace can be left empty"
                    )))
                }
            };
            out.push("--empty-ns".into());
            out.push(criu_ns.into());
        }
        Ok(())
    }
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
        if let (true, Ok(src)) = (bind, crate::mounts::bind_source(m, bundle)) {
            out.push((m.destination().clone(), src));
        }
    }
    out
}

/// The name masked files go by in the images (each is /dev/null bound).
pub(crate) const MASKED: &str = "/dev/null";

/// Where a container without a cgroup namespace of its own has the
/// cgroup v2 hierarchy: a bind of its own cgroup from the host (mounts.rs),
/// so an external mount for criu. (v1 hybrid hosts: not handled.)
pub(crate) fn cgroup_bind(spec: &Spec) -> Option<PathBuf> {
    use oci_spec::runtime::LinuxNamespaceType as T;
    let own_ns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter()
                .any(|n| n.typ() == T::Cgroup && n.path().is_none())
        });
    if own_ns || !estiba_cgroups::hierarchy::is_unified(&estiba_cgroups::hierarchy::host()) {
        return None;
    }
    spec.mounts()
        .iter()
        .flatten()
        .find(|m| matches!(m.typ().as_deref(), Some("cgroup" | "cgroup2")))
        .map(|m| m.destination().clone())
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

/// Runs criu with `args` (its log `log` in `work`), bounded; a failure
/// carries criu's errors from its log. With `hold`, the forked criu waits
/// for `started` (given its pid) to finish before it execs: restore puts
/// it in the container's cgroup first.
pub(crate) fn run(
    criu: &Path,
    args: &[OsString],
    work: &Path,
    log: &str,
    hold: Option<(RawFd, RawFd)>,
    started: impl FnOnce(i32) -> Result<()>,
) -> Result<()> {
    let path = find(criu).ok_or_else(|| {
        Error::Unsupported(format!(
            "checkpoint/restore needs criu, and {criu:?} was not found (Debian: apt install criu)"
        ))
    })?;
    let pid = fork_exec(&path, args, hold)?;
    if let Err(e) = started(pid) {
        let _ = sys::kill(pid, libc::SIGKILL);
        let _ = waitpid(Pid::from_raw(pid), None);
        return Err(e);
    }
    if let Some((_, release)) = hold {
        nix::unistd::write(sys::borrow_fd(release), b"g")
            .map_err(|e| Error::sys("release criu", e))?;
    }
    let end = Instant::now() + BOUND;
    let status = loop {
        match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) if Instant::now() < end => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Ok(WaitStatus::StillAlive) => {
                let _ = sys::kill(pid, libc::SIGKILL);
                let _ = waitpid(Pid::from_raw(pid), None);
                return Err(Error::Timeout(format!(
                    "criu {}: no result in {BOUND:?}{}",
                    args[0].to_string_lossy(),
                    log_tail(&work.join(log))
                )));
            }
            Ok(st) => break st,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("wait for criu", e)),
        }
    };
    if status == WaitStatus::Exited(Pid::from_raw(pid), 0) {
        return Ok(());
    }
    Err(Error::Criu(format!(
        "criu {} failed ({status:?}){}",
        args[0].to_string_lossy(),
        log_tail(&work.join(log))
    )))
}

/// `criu` as given, or found on PATH.
fn find(criu: &Path) -> Option<PathBuf> {
    if criu.components().count() > 1 {
        return criu.is_file().then(|| criu.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(criu))
        .find(|p| p.is_file())
}

/// Forks criu (its argv and environment made before the fork); with
/// `hold`, the child waits for the parent's byte on the pipe first.
fn fork_exec(path: &Path, args: &[OsString], hold: Option<(RawFd, RawFd)>) -> Result<i32> {
    let c = |s: &std::ffi::OsStr| CString::new(s.as_bytes()).ok();
    let prog = c(path.as_os_str()).ok_or_else(|| Error::Config("criu path has a NUL".into()))?;
    let mut argv = vec![prog.clone()];
    argv.extend(args.iter().filter_map(|a| c(a)));
    let envp: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            c(&kv)
        })
        .collect();
    let argv_ref: Vec<&std::ffi::CStr> = argv.iter().map(|s| s.as_c_str()).collect();
    let envp_ref: Vec<&std::ffi::CStr> = envp.iter().map(|s| s.as_c_str()).collect();
    let pid = sys::clone_here(libc::SIGCHLD).map_err(|e| Error::sys("fork criu", e))?;
    if pid == 0 {
        if let Some((rx, tx)) = hold {
            sys::close_raw(tx);
            if !sys::read_one(rx) {
                sys::exit_now(1);
            }
        }
        sys::execve(&prog, &argv_ref, &envp_ref);
        sys::exit_now(127);
    }
    Ok(pid)
}

/// The last lines of criu's log, for an error message.
fn log_tail(path: &Path) -> String {
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

/// The criu binary to run.
pub(crate) fn binary(given: Option<&Path>) -> PathBuf {
    given
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("criu"))
}

/// Makes `dir` (and parents) if missing.
pub(crate) fn ensure_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::path("create", dir, &e))
}
