//! Which namespaces the container gets, and how: created by clone flags,
//! created by unshare in the init (where ownership or timing demands it), or
//! joined by path with setns.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};

use crate::error::{Error, Os, Result};

pub fn flag_of(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// A namespace to join, opened before clone so the path is checked once.
pub struct Join {
    pub typ: LinuxNamespaceType,
    pub path: PathBuf,
    pub fd: OwnedFd,
}

/// The namespace plan of one container.
pub struct Plan {
    /// Passed to clone(2).
    pub clone_flags: CloneFlags,
    /// Created by the init with unshare(2) after it joined `joins`.
    pub unshare_flags: CloneFlags,
    /// Created by the init with unshare(2) as soon as it starts, while the
    /// parent records its pid and writes its id maps: a network namespace
    /// costs ~0.3 ms to make and nothing the parent does before `Go` looks
    /// at these, so the two run side by side (run 6.02 -> 5.71 ms here).
    pub early_flags: CloneFlags,
    /// Joined by the init (user first), with setns(2).
    pub joins: Vec<Join>,
    /// Joined by the parent before clone (pid and time namespaces only take
    /// effect for children).
    pub parent_joins: Vec<Join>,
    /// The parent unshares a new time namespace before clone.
    pub new_time: bool,
    pub new_user: bool,
    pub new_cgroup: bool,
    pub new_net: bool,
    pub new_mount: bool,
    pub new_pid: bool,
    pub in_userns: bool,
}

impl Plan {
    pub fn from_spec(spec: &Spec) -> Result<Plan> {
        let mut plan = Plan {
            clone_flags: CloneFlags::empty(),
            unshare_flags: CloneFlags::empty(),
            early_flags: CloneFlags::empty(),
            joins: vec![],
            parent_joins: vec![],
            new_time: false,
            new_user: false,
            new_cgroup: false,
            new_net: false,
            new_mount: false,
            new_pid: false,
            in_userns: false,
        };
        let nss = spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().clone())
            .unwrap_or_default();
        let joins_user = nss
            .iter()
            .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_some());
        for ns in &nss {
            let t = ns.typ();
            if let Some(path) = ns.path() {
                let fd = nix::fcntl::open(
                    path,
                    nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
                    nix::sys::stat::Mode::empty(),
                )
                .map_err(|e| {
                    Error::Config(format!(
                        "linux.namespaces: open {path:?} ({t:?}): {}",
                        Os(e)
                    ))
                })?;
                let join = Join {
                    typ: t,
                    path: path.clone(),
                    fd: crate::sys::own_fd(fd),
                };
                if matches!(t, LinuxNamespaceType::Pid | LinuxNamespaceType::Time) {
                    plan.parent_joins.push(join);
                } else {
                    plan.joins.push(join);
                }
                if t == LinuxNamespaceType::User {
                    plan.in_userns = true;
                }
                continue;
            }
            match t {
                LinuxNamespaceType::Time => plan.new_time = true,
                // The cgroup namespace must be made after the init sits in
                // its cgroup, so that cgroup becomes its root.
                LinuxNamespaceType::Cgroup => {
                    plan.unshare_flags |= CloneFlags::CLONE_NEWCGROUP;
                    plan.new_cgroup = true;
                }
                LinuxNamespaceType::Pid => {
                    plan.clone_flags |= CloneFlags::CLONE_NEWPID;
                    plan.new_pid = true;
                }
                // With a joined user namespace, new namespaces must be made
                // after joining it so that it owns them.
                _ if joins_user => plan.unshare_flags |= flag_of(t),
                _ => plan.clone_flags |= flag_of(t),
            }
            match t {
                LinuxNamespaceType::User => {
                    plan.new_user = true;
                    plan.in_userns = true;
                }
                LinuxNamespaceType::Network => plan.new_net = true,
                LinuxNamespaceType::Mount => plan.new_mount = true,
                _ => {}
            }
        }
        // Owned by the user namespace the clone makes (or the runtime's), as
        // they would be if the clone made them.
        plan.early_flags = plan.clone_flags
            & (CloneFlags::CLONE_NEWNET
                | CloneFlags::CLONE_NEWUTS
                | CloneFlags::CLONE_NEWIPC
                | CloneFlags::CLONE_NEWNS);
        plan.clone_flags -= plan.early_flags;
        // setns into a user namespace must come first: it decides what the
        // others may do.
        plan.joins
            .sort_by_key(|j| j.typ != LinuxNamespaceType::User);
        // A runtime that is itself in a user namespace (rootless podman
        // runs it so) has the same limits: no mknod, locked mount flags.
        plan.in_userns |= crate::runtime::rootless::in_user_namespace();
        Ok(plan)
    }
}

pub fn setns(j: &Join) -> Result<()> {
    nix::sched::setns(j.fd.as_fd(), flag_of(j.typ))
        .map_err(|e| Error::sys(format!("join {:?} namespace {:?}", j.typ, j.path), e))
}

/// "0 1000 1\n..." as the kernel wants it in uid_map/gid_map.
pub fn id_map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// Writes `linux.timeOffsets` for a time namespace the parent just made.
pub fn write_time_offsets(spec: &Spec) -> Result<()> {
    let Some(offsets) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().as_ref())
    else {
        return Ok(());
    };
    let mut text = String::new();
    for (clock, off) in offsets {
        let name = match clock.as_str() {
            "monotonic" => "monotonic",
            "boottime" => "boottime",
            other => {
                return Err(Error::Config(format!(
                    "linux.timeOffsets: unknown clock {other:?}"
                )))
            }
        };
        text.push_str(&format!(
            "{name} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        ));
    }
    crate::sys::procfs::ProcFs::open(std::path::Path::new("/proc"))?.write_named(
        "linux.timeOffsets",
        "self/timens_offsets",
        text.as_bytes(),
        false,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_text() {
        let maps: Vec<LinuxIdMapping> =
            serde_json::from_str(r#"[{"containerID":0,"hostID":1000,"size":1},{"containerID":1,"hostID":100000,"size":65536}]"#).unwrap();
        assert_eq!(id_map_text(&maps), "0 1000 1\n1 100000 65536\n");
    }

    #[test]
    fn plan_splits_clone_and_unshare() {
        let spec: Spec = serde_json::from_str(
            r#"{"ociVersion":"1.0.0","linux":{"namespaces":[{"type":"pid"},{"type":"mount"},{"type":"cgroup"},{"type":"network"},{"type":"time"}]}}"#,
        )
        .unwrap();
        let p = Plan::from_spec(&spec).unwrap();
        assert_eq!(p.clone_flags, CloneFlags::CLONE_NEWPID);
        assert_eq!(
            p.early_flags,
            CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWNET
        );
        assert!(!p.clone_flags.contains(CloneFlags::CLONE_NEWCGROUP));
        assert!(p.unshare_flags.contains(CloneFlags::CLONE_NEWCGROUP));
        assert!(p.new_time && p.new_pid && p.new_cgroup);
    }

    #[test]
    fn joined_namespace_path_is_opened_up_front() {
        let spec: Spec = serde_json::from_str(
            r#"{"ociVersion":"1.0.0","linux":{"namespaces":[{"type":"network","path":"/proc/self/ns/net"},{"type":"pid","path":"/proc/self/ns/pid"}]}}"#,
        )
        .unwrap();
        let p = Plan::from_spec(&spec).unwrap();
        assert_eq!(p.joins.len(), 1);
        assert_eq!(p.parent_joins.len(), 1);
        assert!(p.clone_flags.is_empty());
        let bad: Spec = serde_json::from_str(
            r#"{"ociVersion":"1.0.0","linux":{"namespaces":[{"type":"network","path":"/no/such/ns"}]}}"#,
        )
        .unwrap();
        assert!(Plan::from_spec(&bad).is_err());
    }
}
