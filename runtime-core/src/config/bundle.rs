//! Loading and validating a bundle: everything that can be wrong with the
//! input fails here, before any process, cgroup or state directory exists.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Error, Os, Result};

/// A validated bundle: its spec and its absolute rootfs.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The bundle directory, absolute, symlinks resolved.
    pub dir: PathBuf,
    /// The rootfs, absolute.
    pub rootfs: PathBuf,
    /// The config, validated.
    pub spec: Spec,
}

impl Bundle {
    /// Reads `<dir>/config.json`, checks it, resolves the rootfs.
    pub fn load(dir: &Path) -> Result<Self> {
        let dir = std::fs::canonicalize(dir).map_err(|e| Error::path("bundle", dir, &e))?;
        let config = dir.join("config.json");
        let text = crate::config::guard::read_input(&config)?;
        let spec = parse_spec(&text)?;
        Self::from_spec(dir, spec)
    }

    /// Validates an in-memory spec whose relative paths resolve against `dir`.
    pub fn from_spec(dir: PathBuf, mut spec: Spec) -> Result<Self> {
        // Spec 1.1: a relative mount destination is relative to "/".
        for m in spec.mounts_mut().iter_mut().flatten() {
            if !m.destination().is_absolute() {
                let abs = Path::new("/").join(m.destination());
                m.set_destination(abs);
            }
        }
        validate(&spec)?;
        let root = spec
            .root()
            .as_ref()
            .ok_or_else(|| Error::Config("root: required on Linux".into()))?;
        let joined = dir.join(root.path());
        let rootfs =
            std::fs::canonicalize(&joined).map_err(|e| Error::path("root.path", &joined, &e))?;
        crate::config::guard::check_rootfs(&joined, &rootfs)?;
        if !rootfs.is_dir() {
            return Err(Error::path("root.path", rootfs, nix::errno::Errno::ENOTDIR));
        }
        Ok(Bundle { dir, rootfs, spec })
    }
}

/// Parses config.json text; a syntax or type error names line and column.
/// Through a JSON tree: a key given twice counts once, the last (as in
/// runc), and the scheduler flags can be respelled. (Parsing straight into
/// the spec takes half the time, ~11 us, but its deserializer is another
/// 240 KB of binary beside the tree's.)
pub fn parse_spec(text: &[u8]) -> Result<Spec> {
    let err = |source| Error::Parse {
        what: "config.json".into(),
        source,
    };
    let mut v: serde_json::Value = serde_json::from_slice(text).map_err(err)?;
    if let Some(flags) = v.pointer_mut("/process/scheduler/flags") {
        respell_sched_flags(flags);
    }
    serde_json::from_value(v).map_err(err)
}

/// A process.json (`exec --process`), with the spec's scheduler flag names.
pub fn parse_process(text: &[u8]) -> Result<oci_spec::runtime::Process> {
    let err = |source| Error::Parse {
        what: "process".into(),
        source,
    };
    let mut v: serde_json::Value = serde_json::from_slice(text).map_err(err)?;
    if let Some(flags) = v.pointer_mut("/scheduler/flags") {
        respell_sched_flags(flags);
    }
    serde_json::from_value(v).map_err(err)
}

/// oci-spec 0.10 spells two of the spec's scheduler flags its own way
/// (`SCHED_RESET_ON_FORK`, `SCHED_FLAG_D_L_OVERRUN`); the spec's names are
/// mapped onto those before parsing.
fn respell_sched_flags(flags: &mut serde_json::Value) {
    for f in flags.as_array_mut().into_iter().flatten() {
        let ours = match f.as_str() {
            Some("SCHED_FLAG_RESET_ON_FORK") => "SCHED_RESET_ON_FORK",
            Some("SCHED_FLAG_DL_OVERRUN") => "SCHED_FLAG_D_L_OVERRUN",
            _ => continue,
        };
        *f = serde_json::Value::String(ours.into());
    }
}

/// Accepts every 1.x.y release (and pre-releases such as 1.0.2-dev).
fn check_version(v: &str) -> Result<()> {
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    let numeric = parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if !numeric {
        return Err(Error::Config(format!(
            "ociVersion {v:?} is not a SemVer version"
        )));
    }
    if parts[0] != "1" {
        return Err(Error::Config(format!(
            "ociVersion {v:?} is not supported (estiba supports 1.x)"
        )));
    }
    // Newer than the newest this runtime implements: its fields could not
    // all be honoured (a pre-release of the newest is fine).
    let newest: Vec<u64> = crate::OCI_VERSION
        .split('.')
        .filter_map(|p| p.parse().ok())
        .collect();
    let ours: Vec<u64> = parts.iter().filter_map(|p| p.parse().ok()).collect();
    if ours > newest {
        return Err(Error::Config(format!(
            "ociVersion {v:?} is newer than {} (the newest runtime-spec estiba implements)",
            crate::OCI_VERSION
        )));
    }
    Ok(())
}

fn validate(spec: &Spec) -> Result<()> {
    check_version(spec.version())?;
    if let Some(process) = spec.process() {
        check_process(process)?;
    }
    check_hooks(spec)?;
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    if let Some(rdt) = linux.intel_rdt() {
        let mounted = crate::sys::procfs::read_text("/proc/self/mountinfo")
            .is_ok_and(|m| m.lines().any(|l| l.contains(" - resctrl ")));
        return Err(if mounted {
            Error::Unsupported(format!(
                "linux.intelRdt {rdt:?}: resctrl groups are not supported yet"
            ))
        } else {
            Error::Config("linux.intelRdt: no resctrl filesystem is mounted".into())
        });
    }
    let seen = check_namespaces(linux)?;
    check_id_mappings(linux)?;
    if !seen.contains(&LinuxNamespaceType::Uts)
        && (spec.hostname().as_deref().is_some_and(|h| !h.is_empty())
            || spec.domainname().as_deref().is_some_and(|h| !h.is_empty()))
    {
        return Err(Error::Config(
            "hostname/domainname: need a new uts namespace".into(),
        ));
    }
    if let Some(prop) = linux.rootfs_propagation() {
        if !matches!(
            prop.as_str(),
            "" | "private"
                | "rprivate"
                | "slave"
                | "rslave"
                | "shared"
                | "rshared"
                | "unbindable"
                | "runbindable"
        ) {
            return Err(Error::Config(format!(
                "linux.rootfsPropagation {prop:?}: unknown"
            )));
        }
    }
    crate::config::guard::check_sysctls(spec)?;
    crate::config::guard::check_mounts(spec)?;
    if let Some(path) = linux.cgroups_path() {
        estiba_cgroups::container_path(Some(path), "x")?;
    }
    crate::config::guard::check_devices(spec)
}

/// `process`: a program, an absolute cwd, each rlimit once and its soft
/// limit at most its hard one.
fn check_process(process: &oci_spec::runtime::Process) -> Result<()> {
    let args = process.args().as_deref().unwrap_or_default();
    if args.is_empty() {
        return Err(Error::Config("process.args: must name a program".into()));
    }
    if !process.cwd().is_absolute() {
        return Err(Error::Config(format!(
            "process.cwd {:?}: must be an absolute path",
            process.cwd()
        )));
    }
    let mut rl_seen = HashSet::new();
    for rl in process.rlimits().iter().flatten() {
        if !rl_seen.insert(format!("{:?}", rl.typ())) {
            return Err(Error::Config(format!(
                "process.rlimits: {:?} listed twice",
                rl.typ()
            )));
        }
        if rl.soft() > rl.hard() {
            return Err(Error::Config(format!(
                "process.rlimits {:?}: soft limit {} above hard limit {}",
                rl.typ(),
                rl.soft(),
                rl.hard()
            )));
        }
    }
    Ok(())
}

/// Every hook: an absolute path, a timeout above zero when given.
fn check_hooks(spec: &Spec) -> Result<()> {
    for h in hooks_of(spec) {
        if !h.path().is_absolute() {
            return Err(Error::Config(format!(
                "hooks: path {:?} must be absolute",
                h.path()
            )));
        }
        if let Some(t) = h.timeout().filter(|t| *t <= 0) {
            return Err(Error::Config(format!(
                "hooks: {:?} has timeout {t}; it must be greater than zero",
                h.path()
            )));
        }
    }
    Ok(())
}

/// `linux.namespaces`: each type once, a path absolute and there;
/// returns the types listed.
fn check_namespaces(linux: &oci_spec::runtime::Linux) -> Result<HashSet<LinuxNamespaceType>> {
    let mut seen = HashSet::new();
    for ns in linux.namespaces().iter().flatten() {
        if !seen.insert(ns.typ()) {
            return Err(Error::Config(format!(
                "malformed spec file: duplicated ns {} (linux.namespaces lists it twice)",
                serde_json::to_string(&ns.typ()).unwrap_or_default()
            )));
        }
        if let Some(p) = ns.path() {
            if !p.is_absolute() {
                return Err(Error::Config(format!(
                    "linux.namespaces: path {p:?} of {:?} must be absolute",
                    ns.typ()
                )));
            }
            std::fs::metadata(p).map_err(|e| {
                Error::Config(format!(
                    "linux.namespaces: path {p:?} of {:?}: {}",
                    ns.typ(),
                    Os::from(&e)
                ))
            })?;
        }
    }
    Ok(seen)
}

/// A new user namespace needs both id maps; maps need a user namespace.
fn check_id_mappings(linux: &oci_spec::runtime::Linux) -> Result<()> {
    let user_ns = linux
        .namespaces()
        .iter()
        .flatten()
        .find(|n| n.typ() == LinuxNamespaceType::User);
    let creates_userns = user_ns.is_some_and(|n| n.path().is_none());
    let has_uid_maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    let has_gid_maps = linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    if creates_userns && !(has_uid_maps && has_gid_maps) {
        return Err(Error::Config(
            "linux.uidMappings and linux.gidMappings: required for a new user namespace".into(),
        ));
    }
    if (has_uid_maps || has_gid_maps) && user_ns.is_none() {
        return Err(Error::Config(
            "linux.uidMappings/gidMappings: given without a user namespace".into(),
        ));
    }
    Ok(())
}

/// The spec's `linux.resources`, if any.
pub(crate) fn resources_of(spec: &Spec) -> Option<&oci_spec::runtime::LinuxResources> {
    spec.linux().as_ref().and_then(|l| l.resources().as_ref())
}

/// Every hook in the spec, whatever its stage.
pub fn hooks_of(spec: &Spec) -> impl Iterator<Item = &oci_spec::runtime::Hook> {
    let hooks = spec.hooks().as_ref();
    [
        hooks.and_then(|h| h.prestart().as_ref()),
        hooks.and_then(|h| h.create_runtime().as_ref()),
        hooks.and_then(|h| h.create_container().as_ref()),
        hooks.and_then(|h| h.start_container().as_ref()),
        hooks.and_then(|h| h.poststart().as_ref()),
        hooks.and_then(|h| h.poststop().as_ref()),
    ]
    .into_iter()
    .flatten()
    .flatten()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_key_given_twice_takes_the_last_as_runc_does() {
        let j =
            br#"{"ociVersion":"1.3.0","hostname":"first","root":{"path":"r"},"hostname":"last"}"#;
        let s = parse_spec(j).unwrap();
        assert_eq!(s.hostname().as_deref(), Some("last"));
    }

    #[test]
    fn sched_flags_with_the_specs_names() {
        let j = br#"{"ociVersion":"1.3.0","process":{"cwd":"/","user":{"uid":0,"gid":0},"scheduler":{"policy":"SCHED_OTHER","flags":["SCHED_FLAG_RESET_ON_FORK","SCHED_FLAG_DL_OVERRUN","SCHED_FLAG_RECLAIM"]}}}"#;
        let s = parse_spec(j).unwrap();
        let flags = s
            .process()
            .as_ref()
            .unwrap()
            .scheduler()
            .as_ref()
            .unwrap()
            .flags()
            .clone();
        use oci_spec::runtime::LinuxSchedulerFlag as F;
        assert_eq!(
            flags.unwrap(),
            [
                F::SchedResetOnFork,
                F::SchedFlagDLOverrun,
                F::SchedFlagReclaim
            ]
        );
        let p = parse_process(br#"{"cwd":"/","user":{"uid":0,"gid":0},"scheduler":{"policy":"SCHED_OTHER","flags":["SCHED_FLAG_DL_OVERRUN"]}}"#).unwrap();
        assert_eq!(
            p.scheduler().as_ref().unwrap().flags().clone().unwrap(),
            [F::SchedFlagDLOverrun]
        );
    }

    use super::*;

    fn spec(json: &str) -> Result<Spec> {
        let s = parse_spec(json.as_bytes())?;
        validate(&s)?;
        Ok(s)
    }

    #[test]
    fn versions() {
        assert!(check_version("1.0.0").is_ok());
        assert!(check_version("1.0.2-dev").is_ok());
        assert!(check_version("1.2.1").is_ok());
        assert!(check_version("1.3.0").is_ok());
        assert!(check_version("1.3.0-rc.1").is_ok());
        // Newer than the newest implemented.
        assert!(check_version("1.3.1").is_err());
        assert!(check_version("1.4.0").is_err());
        assert!(check_version("2.0.0").is_err());
        assert!(check_version("").is_err());
        assert!(check_version("1.0").is_err());
    }

    #[test]
    fn syntax_error_names_line_and_column() {
        let err = spec("{\n  \"ociVersion\": \"1.0.0\",\n  oops\n}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("column"), "{err}");
    }

    #[test]
    fn missing_required_field_is_named() {
        let err = spec(r#"{"ociVersion":"1.0.0","process":{"cwd":"/","args":["sh"]}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("user"), "{err}");
    }

    #[test]
    fn relative_cwd_refused() {
        let err = spec(r#"{"ociVersion":"1.0.0","process":{"cwd":"tmp","args":["sh"],"user":{"uid":0,"gid":0}}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("process.cwd"), "{err}");
    }

    #[test]
    fn unknown_capability_refused() {
        let err = spec(r#"{"ociVersion":"1.0.0","process":{"cwd":"/","args":["sh"],"user":{"uid":0,"gid":0},"capabilities":{"bounding":["CAP_NOPE"]}}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("CAP_NOPE"), "{err}");
    }

    #[test]
    fn hostname_without_uts_refused() {
        let err = spec(
            r#"{"ociVersion":"1.0.0","hostname":"h","linux":{"namespaces":[{"type":"mount"}]}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("uts"), "{err}");
    }

    #[test]
    fn duplicate_namespace_refused() {
        let err = spec(
            r#"{"ociVersion":"1.0.0","linux":{"namespaces":[{"type":"pid"},{"type":"pid"}]}}"#,
        )
        .unwrap_err()
        .to_string();
        // runc's words.
        assert!(err.contains("malformed spec file: duplicated ns"), "{err}");
    }
}
