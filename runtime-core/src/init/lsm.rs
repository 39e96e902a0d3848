//! AppArmor profiles and SELinux labels for the container's process: set
//! for the next exec through /proc/self/attr, as runc does. A profile on a
//! host without AppArmor is an error (the confinement asked for would be
//! missing); an SELinux label on a host without SELinux is ignored, as runc
//! ignores it.

use std::path::Path;

use oci_spec::runtime::Process;

use crate::error::{Error, Os, Result};

pub fn apparmor_enabled() -> bool {
    crate::sys::procfs::read_text("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y")
}

pub fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

/// Checked before any process exists.
pub fn validate(p: &Process) -> Result<()> {
    if let Some(profile) = p.apparmor_profile().as_deref().filter(|s| !s.is_empty()) {
        if !apparmor_enabled() {
            return Err(Error::Config(format!(
                "process.apparmorProfile {profile:?}: AppArmor is not enabled on this host"
            )));
        }
    }
    Ok(())
}

/// In the process, right before exec.
pub fn apply(p: &Process) -> Result<()> {
    if let Some(profile) = p.apparmor_profile().as_deref().filter(|s| !s.is_empty()) {
        let attr = if Path::new("/proc/self/attr/apparmor/exec").exists() {
            "self/attr/apparmor/exec"
        } else {
            "self/attr/exec"
        };
        crate::sys::procfs::ProcFs::open(Path::new("/proc"))?
            .write(attr, format!("exec {profile}").as_bytes(), false)
            .map_err(|e| Error::Init(format!("apply AppArmor profile {profile:?}: {}", Os(e))))?;
    }
    if let Some(label) = p.selinux_label().as_deref().filter(|s| !s.is_empty()) {
        if selinux_enabled() {
            crate::sys::procfs::ProcFs::open(Path::new("/proc"))?
                .write("self/attr/exec", label.as_bytes(), false)
                .map_err(|e| Error::Init(format!("apply SELinux label {label:?}: {}", Os(e))))?;
        } else {
            crate::log::debug!("SELinux is not enabled; label {label:?} ignored");
        }
    }
    Ok(())
}
