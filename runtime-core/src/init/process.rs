//! The container process's own settings, applied by the init right before
//! exec: rlimits, user and groups, capabilities, no_new_privs, and the
//! lookup of the program to run.

use std::collections::HashSet;
use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{LinuxCapabilities, PosixRlimitType, Process};

use crate::error::{Error, Os, Result};
use crate::sys;

pub fn rlimit_resource(t: PosixRlimitType) -> libc::c_int {
    (match t {
        PosixRlimitType::RlimitCpu => libc::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => libc::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => libc::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => libc::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => libc::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => libc::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => libc::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => libc::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => libc::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => libc::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => libc::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => libc::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => libc::RLIMIT_RTTIME,
    }) as libc::c_int
}

pub fn apply_rlimits(process: &Process) -> Result<()> {
    for rl in process.rlimits().iter().flatten() {
        sys::setrlimit(rlimit_resource(rl.typ()), rl.soft(), rl.hard()).map_err(|e| {
            Error::sys(
                format!(
                    "setrlimit {:?} soft={} hard={}",
                    rl.typ(),
                    rl.soft(),
                    rl.hard()
                ),
                e,
            )
        })?;
    }
    Ok(())
}

fn to_caps(set: &Option<oci_spec::runtime::Capabilities>) -> Result<HashSet<caps::Capability>> {
    let mut out = HashSet::new();
    for c in set.iter().flatten() {
        let name = format!("CAP_{c}");
        match caps::Capability::from_str(&name) {
            Ok(cap) => {
                out.insert(cap);
            }
            Err(_) => {
                return Err(Error::Config(format!(
                    "process.capabilities: unknown capability {name}"
                )))
            }
        }
    }
    Ok(out)
}

/// What this process can hand on: capabilities the running kernel knows
/// that are in our own bounding set. Asked of the kernel per capability the
/// config names, each once (PR_CAPBSET_READ says EINVAL past cap_last_cap):
/// a handful of calls, where the whole set was 41 and a /proc read.
#[derive(Default)]
struct Grantable {
    asked: std::cell::Cell<u64>,
    granted: std::cell::Cell<u64>,
}

impl Grantable {
    fn can_grant(&self, c: caps::Capability) -> bool {
        let ask = || match sys::in_bounding_set(c.index()) {
            Ok(yes) => yes,
            Err(nix::errno::Errno::EINVAL) => false,
            // Not known either way: left to the kernel at exec.
            Err(_) => true,
        };
        let Some(bit) = 1u64.checked_shl(u32::from(c.index())) else {
            return ask();
        };
        if self.asked.get() & bit == 0 {
            self.asked.set(self.asked.get() | bit);
            if ask() {
                self.granted.set(self.granted.get() | bit);
            }
        }
        self.granted.get() & bit != 0
    }

    /// `set` without what cannot be granted here. The spec (1.1+): a
    /// capability that cannot be granted is a warning, not a failure (a
    /// restricted host, e.g. without CAP_SYS_RESOURCE); newer names than
    /// the kernel knows are dropped as runc does.
    fn filter(&self, set: HashSet<caps::Capability>, set_name: &str) -> HashSet<caps::Capability> {
        set.into_iter()
            .filter(|c| {
                let ok = self.can_grant(*c);
                if !ok {
                    crate::log::warn!("{set_name} capability {c} cannot be granted here; skipped");
                }
                ok
            })
            .collect()
    }
}

/// The five capability sets, parsed and checked before any process exists.
#[derive(Debug, Clone, Default)]
pub struct CapSets {
    pub bounding: HashSet<caps::Capability>,
    pub effective: HashSet<caps::Capability>,
    pub inheritable: HashSet<caps::Capability>,
    pub permitted: HashSet<caps::Capability>,
    pub ambient: HashSet<caps::Capability>,
}

impl CapSets {
    pub fn from_spec(c: Option<&LinuxCapabilities>) -> Result<Self> {
        let Some(c) = c else {
            return Ok(Self::default());
        };
        let here = Grantable::default();
        Ok(CapSets {
            bounding: here.filter(to_caps(c.bounding())?, "bounding"),
            effective: here.filter(to_caps(c.effective())?, "effective"),
            inheritable: here.filter(to_caps(c.inheritable())?, "inheritable"),
            permitted: here.filter(to_caps(c.permitted())?, "permitted"),
            ambient: here.filter(to_caps(c.ambient())?, "ambient"),
        })
    }
}

/// Drops the bounding set first (needs CAP_SETPCAP, which we still have).
/// Dropping one that is not there succeeds, so nothing is read first; one
/// the kernel does not know (past cap_last_cap) is not in the set anyway.
pub fn drop_bounding(sets: &CapSets) -> Result<()> {
    for cap in caps::all() {
        if sets.bounding.contains(&cap) {
            continue;
        }
        match caps::drop(None, caps::CapSet::Bounding, cap) {
            Ok(()) => {}
            Err(_) if !caps::runtime::thread_all_supported().contains(&cap) => {}
            Err(e) => return Err(Error::Init(format!("drop bounding capability {cap}: {e}"))),
        }
    }
    Ok(())
}

/// Sets inheritable (while CAP_SETPCAP is still effective), then effective,
/// then permitted (which must keep holding effective), then ambient (which
/// needs permitted and inheritable in place).
pub fn apply_caps(sets: &CapSets) -> Result<()> {
    let set = |which, value: &HashSet<caps::Capability>, name: &str| {
        caps::set(None, which, value)
            .map_err(|e| Error::Init(format!("set {name} capabilities: {e}")))
    };
    set(caps::CapSet::Inheritable, &sets.inheritable, "inheritable")?;
    set(caps::CapSet::Effective, &sets.effective, "effective")?;
    set(caps::CapSet::Permitted, &sets.permitted, "permitted")?;
    caps::clear(None, caps::CapSet::Ambient)
        .map_err(|e| Error::Init(format!("clear ambient capabilities: {e}")))?;
    // As runc: an ambient capability missing from inheritable or permitted
    // cannot be raised, and that is not fatal (runc's default spec asks for
    // ambient capabilities without inheritable ones).
    for cap in &sets.ambient {
        if let Err(e) = caps::raise(None, caps::CapSet::Ambient, *cap) {
            crate::log::debug!("ambient capability {cap} not raised: {e}");
        }
    }
    Ok(())
}

/// setgroups, setgid, setuid — keeping the permitted capabilities across
/// the uid change so the sets can be applied afterwards.
pub fn switch_user(process: &Process, allow_setgroups: bool) -> Result<()> {
    let user = process.user();
    sys::prctl(libc::PR_SET_KEEPCAPS, 1).map_err(|e| Error::sys("prctl(PR_SET_KEEPCAPS)", e))?;
    let gids: Vec<Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| Gid::from_raw(*g))
        .collect();
    if allow_setgroups {
        nix::unistd::setgroups(&gids).map_err(|e| Error::sys("setgroups", e))?;
    } else if !gids.is_empty() {
        // runc's words: the user namespace denies setgroups.
        return Err(Error::Init(
            "cannot set any additional groups in a rootless container".into(),
        ));
    }
    nix::unistd::setresgid(
        Gid::from_raw(user.gid()),
        Gid::from_raw(user.gid()),
        Gid::from_raw(user.gid()),
    )
    .map_err(|e| Error::sys(format!("setgid {}", user.gid()), e))?;
    nix::unistd::setresuid(
        Uid::from_raw(user.uid()),
        Uid::from_raw(user.uid()),
        Uid::from_raw(user.uid()),
    )
    .map_err(|e| Error::sys(format!("setuid {}", user.uid()), e))?;
    sys::prctl(libc::PR_SET_KEEPCAPS, 0).map_err(|e| Error::sys("prctl(PR_SET_KEEPCAPS)", e))?;
    Ok(())
}

/// A seccomp filter to install, and where a notify listener fd goes.
pub struct SeccompPlan {
    pub filter: estiba_seccomp::Filter,
    /// Connected to `listenerPath` before the process entered the container.
    pub listener: Option<std::os::unix::net::UnixStream>,
    pub metadata: String,
    /// The container's OCI state, sent along with the listener fd.
    pub state: serde_json::Value,
}

impl SeccompPlan {
    fn install(&self) -> Result<()> {
        let fd = self
            .filter
            .install()
            .map_err(|e| Error::Init(e.to_string()))?;
        if let (Some(fd), Some(sock)) = (fd, &self.listener) {
            // The runtime-spec's container process state.
            let msg = serde_json::json!({
                "ociVersion": crate::OCI_VERSION,
                "fds": ["seccompFd"],
                "pid": self.state["pid"],
                "metadata": self.metadata,
                "state": self.state,
            });
            crate::sys::fdpass::send_fd(sock, &msg.to_string(), &fd, "the seccomp listener")?;
        }
        Ok(())
    }
}

/// The last steps before exec, shared by the container's init and exec:
/// rlimits and the bounding set while still privileged, user and groups,
/// cwd, capabilities, no_new_privs, umask, and no runtime fd left open.
/// Seccomp goes in as runc puts it: without no_new_privs it needs
/// CAP_SYS_ADMIN, so before the capabilities drop; with it, last.
pub fn finalize(
    process: &Process,
    caps: &CapSets,
    setgroups_allowed: bool,
    preserved_fds: u32,
    seccomp: Option<&SeccompPlan>,
) -> Result<()> {
    let nnp = process.no_new_privileges().unwrap_or(false);
    apply_rlimits(process)?;
    crate::init::taskattr::apply(process)?;
    drop_bounding(caps)?;
    let cwd = process.cwd();
    // Try the cwd as root first, then as the user (root may lack access
    // on a root-squashed mount; the user may lack it where root has it).
    let early_cd = nix::unistd::chdir(cwd.as_path()).is_ok();
    if early_cd {
        check_cwd_inside_root()?;
    }
    // Without no_new_privs the filter needs CAP_SYS_ADMIN, so it goes in
    // before the user switch; as late as that allows, so a profile that
    // denies getcwd, chdir, ... does not trip our own setup.
    if let (Some(s), false) = (seccomp, nnp) {
        s.install()?;
    }
    switch_user(process, setgroups_allowed)?;
    if !early_cd {
        nix::unistd::chdir(cwd.as_path())
            .map_err(|e| Error::Init(format!("chdir to cwd {cwd:?}: {}", Os(e))))?;
        check_cwd_inside_root()?;
    }
    apply_caps(caps)?;
    if nnp {
        set_no_new_privs()?;
    }
    sys::umask(process.user().umask().unwrap_or(0o022));
    crate::init::lsm::apply(process)?;
    sys::reset_signals();
    close_runtime_fds(preserved_fds)?;
    if let (Some(s), true) = (seccomp, nnp) {
        s.install()?;
    }
    Ok(())
}

/// The CVE-2024-21626 class: a leaked directory fd as cwd would put the
/// process outside its root. getcwd tells "(unreachable)" in that case.
fn check_cwd_inside_root() -> Result<()> {
    let cwd = nix::unistd::getcwd().map_err(|e| Error::sys("getcwd", e))?;
    if !cwd.starts_with("/") || cwd.to_string_lossy().starts_with("(unreachable)") {
        return Err(Error::Init(format!(
            "current working directory {cwd:?} is outside the container"
        )));
    }
    Ok(())
}

/// Everything above 2 (and above the preserved fds) is closed at exec;
/// the preserved ones stay open across it.
fn close_runtime_fds(preserved: u32) -> Result<()> {
    let first = 3 + preserved as i32;
    sys::cloexec_from(first).map_err(|e| Error::sys("mark runtime fds close-on-exec", e))?;
    for fd in 3..first {
        sys::set_cloexec(fd, false)
            .map_err(|e| Error::sys(format!("keep preserved fd {fd}"), e))?;
    }
    Ok(())
}

pub fn set_no_new_privs() -> Result<()> {
    sys::prctl(libc::PR_SET_NO_NEW_PRIVS, 1)
        .map_err(|e| Error::sys("prctl(PR_SET_NO_NEW_PRIVS)", e))
}

/// The value of `PATH` in an environment list, or the default runc uses.
fn path_of(env: &[String]) -> &str {
    env.iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
}

fn is_executable(p: &Path) -> std::result::Result<(), nix::errno::Errno> {
    let meta = std::fs::metadata(p)
        .map_err(|e| nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::ENOENT)))?;
    if meta.is_dir() {
        return Err(nix::errno::Errno::EACCES);
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(nix::errno::Errno::EACCES);
    }
    Ok(())
}

/// Finds the program as Go's exec.LookPath does, with runc's error wording
/// (engines map "executable file not found" and "no such file or
/// directory" to 127, "permission denied" to 126).
pub fn look_path(arg0: &str, env: &[String]) -> Result<PathBuf> {
    if arg0.contains('/') {
        let p = PathBuf::from(arg0);
        return match is_executable(&p) {
            Ok(()) => Ok(p),
            Err(e) => Err(Error::Init(format!(
                "exec: {arg0:?}: stat {arg0}: {}",
                Os(e)
            ))),
        };
    }
    let mut denied = None;
    for dir in path_of(env).split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let p = Path::new(dir).join(arg0);
        match is_executable(&p) {
            Ok(()) => return Ok(p),
            Err(nix::errno::Errno::EACCES) if p.exists() => denied = Some(p),
            Err(_) => {}
        }
    }
    match denied {
        Some(p) => Err(Error::Init(format!(
            "exec: {arg0:?}: stat {}: permission denied",
            p.display()
        ))),
        None => Err(Error::Init(format!(
            "exec: {arg0:?}: executable file not found in $PATH"
        ))),
    }
}

/// argv and envp as C strings, prepared before anything can fail late.
pub struct ExecArgs {
    pub path: CString,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
}

impl ExecArgs {
    pub fn new(path: &Path, args: &[String], env: &[String]) -> Result<Self> {
        use std::os::unix::ffi::OsStrExt;
        let c = |s: &[u8], what: &str| {
            CString::new(s)
                .map_err(|_| Error::Config(format!("process.{what}: contains a NUL byte")))
        };
        Ok(ExecArgs {
            path: c(path.as_os_str().as_bytes(), "args")?,
            argv: args
                .iter()
                .map(|a| c(a.as_bytes(), "args"))
                .collect::<Result<_>>()?,
            envp: env
                .iter()
                .map(|e| c(e.as_bytes(), "env"))
                .collect::<Result<_>>()?,
        })
    }

    /// Replaces the process image; returns the error text on failure.
    pub fn exec(&self) -> Error {
        let argv: Vec<&std::ffi::CStr> = self.argv.iter().map(|a| a.as_c_str()).collect();
        let envp: Vec<&std::ffi::CStr> = self.envp.iter().map(|a| a.as_c_str()).collect();
        let err = sys::execve(&self.path, &argv, &envp);
        Error::Init(format!(
            "exec {:?}: {}",
            self.path.to_string_lossy(),
            Os(err)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_lookup_finds_sh_and_words_errors_like_runc() {
        let env = vec!["PATH=/nonexistent:/bin:/usr/bin".to_string()];
        assert!(look_path("sh", &env).unwrap().ends_with("sh"));
        let err = look_path("no-such-program-xyz", &env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("executable file not found in $PATH"), "{err}");
        let err = look_path("/no/such/file", &env).unwrap_err().to_string();
        assert!(err.contains("no such file or directory"), "{err}");
        let err = look_path("/etc/passwd", &env).unwrap_err().to_string();
        assert!(err.contains("permission denied"), "{err}");
    }

    #[test]
    fn capability_names_map_to_caps_crate() {
        let c: LinuxCapabilities = serde_json::from_str(
            r#"{"bounding":["CAP_SYS_ADMIN","CAP_NET_BIND_SERVICE"],"effective":["CAP_KILL"]}"#,
        )
        .unwrap();
        let sets = CapSets::from_spec(Some(&c)).unwrap();
        assert!(sets.bounding.contains(&caps::Capability::CAP_SYS_ADMIN));
        assert!(sets
            .bounding
            .contains(&caps::Capability::CAP_NET_BIND_SERVICE));
        assert_eq!(sets.effective.len(), 1);
        assert!(sets.ambient.is_empty());
    }

    #[test]
    fn a_capability_outside_our_bounding_set_is_skipped_not_refused() {
        // Spec 1.1+: what the runtime cannot grant is a warning. Dropped
        // from this test thread's own bounding set (per thread), it must
        // leave every set it was asked for; the others stay.
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: capability filtering test needs root (CAP_SETPCAP)");
            return;
        }
        std::thread::spawn(|| {
            caps::drop(
                None,
                caps::CapSet::Bounding,
                caps::Capability::CAP_WAKE_ALARM,
            )
            .unwrap();
            let c: LinuxCapabilities = serde_json::from_str(
                r#"{"bounding":["CAP_WAKE_ALARM","CAP_KILL"],"effective":["CAP_WAKE_ALARM"],
                    "permitted":["CAP_WAKE_ALARM","CAP_KILL"]}"#,
            )
            .unwrap();
            let sets = CapSets::from_spec(Some(&c)).unwrap();
            let kill = std::collections::HashSet::from([caps::Capability::CAP_KILL]);
            assert_eq!(sets.bounding, kill);
            assert_eq!(sets.permitted, kill);
            assert!(sets.effective.is_empty());
        })
        .join()
        .unwrap();
    }
}
