//! `exec`'s flags: runc's command-line changes to the container's
//! `process`, and its `--cgroup` arguments.

use std::path::PathBuf;

use oci_spec::runtime::{LinuxCapabilities, Process};

use crate::error::{Error, Result};

/// runc's `exec` flags on top of the container's own `process`.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ProcessFlags {
    /// The program and its arguments.
    pub args: Vec<String>,
    /// `KEY=VALUE` entries added to (or replacing) the process's.
    pub env: Vec<String>,
    /// The working directory.
    pub cwd: Option<PathBuf>,
    /// Supplementary groups.
    pub additional_gids: Vec<u32>,
    /// Capabilities added to the bounding, effective and permitted sets.
    pub caps: Vec<String>,
    /// Set no_new_privs.
    pub no_new_privs: bool,
    /// Give the process a terminal.
    pub tty: bool,
    /// An AppArmor profile.
    pub apparmor: Option<String>,
    /// An SELinux label.
    pub process_label: Option<String>,
}

/// Builds the process to exec from the container's `process` and flags,
/// as runc does without `--process`.
pub fn process_from_flags(base: Option<&Process>, f: &ProcessFlags) -> Result<Process> {
    let mut p = base.cloned().unwrap_or_default();
    if f.args.is_empty() {
        return Err(Error::Config("exec: no command given".into()));
    }
    p.set_args(Some(f.args.clone()));
    let mut env = p.env().clone().unwrap_or_default();
    for kv in &f.env {
        let key = kv.split('=').next().unwrap_or("");
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(kv.clone());
    }
    p.set_env(Some(env));
    if let Some(cwd) = &f.cwd {
        p.set_cwd(cwd.clone());
    }
    if !f.additional_gids.is_empty() {
        let mut user = p.user().clone();
        user.set_additional_gids(Some(f.additional_gids.clone()));
        p.set_user(user);
    }
    // As runc since CVE-2022-29162: the inheritable and ambient sets stay
    // as the process gives them, so a file-capability program exec'd
    // inside gains nothing from --cap.
    if !f.caps.is_empty() {
        let mut caps: LinuxCapabilities = p.capabilities().clone().unwrap_or_default();
        let extra: oci_spec::runtime::Capabilities =
            serde_json::from_value(serde_json::json!(f.caps))
                .map_err(|e| Error::Config(format!("--cap: {e}")))?;
        let add = |set: &Option<oci_spec::runtime::Capabilities>| {
            let mut s = set.clone().unwrap_or_default();
            s.extend(extra.iter().copied());
            Some(s)
        };
        let (b, e, pm) = (
            add(caps.bounding()),
            add(caps.effective()),
            add(caps.permitted()),
        );
        caps.set_bounding(b);
        caps.set_effective(e);
        caps.set_permitted(pm);
        p.set_capabilities(Some(caps));
    }
    if f.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    p.set_terminal(Some(f.tty));
    if let Some(profile) = &f.apparmor {
        p.set_apparmor_profile(Some(profile.clone()));
    }
    if let Some(label) = &f.process_label {
        p.set_selinux_label(Some(label.clone()));
    }
    Ok(p)
}

/// runc's `--cgroup` arguments as (controller, path) pairs: one plain
/// `PATH`, or any number of `CONTROLLER[,CONTROLLER]:PATH`, each controller
/// once. A path must stay below the container's cgroup: relative, normal
/// components only (cgroupfs holds no symlinks).
pub(super) fn sub_cgroup_paths(args: &[String]) -> Result<Vec<(Option<String>, String)>> {
    let bad =
        |arg: &str, why: &str| Error::Config(format!("invalid --cgroup argument {arg:?}: {why}"));
    let mut out: Vec<(Option<String>, String)> = vec![];
    for arg in args {
        let (ctrls, path) = match arg.split_once(':') {
            Some((c, p)) => (Some(c), p),
            None if args.len() == 1 => (None, arg.as_str()),
            None => return Err(bad(arg, "missing <controller>: prefix")),
        };
        let plain = !path.is_empty()
            && std::path::Path::new(path)
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !plain {
            return Err(bad(
                arg,
                "must be a relative path below the container's cgroup, without \"..\"",
            ));
        }
        let Some(ctrls) = ctrls else {
            out.push((None, path.to_string()));
            continue;
        };
        for c in ctrls.split(',') {
            if c.is_empty() {
                return Err(bad(arg, "empty <controller> prefix"));
            }
            if out.iter().any(|(have, _)| have.as_deref() == Some(c)) {
                return Err(bad(
                    arg,
                    &format!("controller {c} specified multiple times"),
                ));
            }
            out.push((Some(c.to_string()), path.to_string()));
        }
    }
    Ok(out)
}
