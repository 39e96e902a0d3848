//! Running without root (runs in the runtime): where state goes, whether the
//! cgroup layer may give up, and the id maps of a user namespace made by a
//! runtime that holds no CAP_SETUID/CAP_SETGID over them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_spec::runtime::{LinuxIdMapping, Spec};

use crate::config::namespaces::id_map_text;
use crate::error::{Error, Result};
use crate::sys::procfs::ProcFs;

/// Where state lives unless `--root` says otherwise: as runc, root's
/// `/run/estiba`, and `$XDG_RUNTIME_DIR/estiba` for anyone else (also for
/// "root" in a user namespace whose `$USER` is not root: rootlesskit).
pub fn default_root() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(xdg) if !xdg.is_empty() && honor_xdg_runtime_dir() => Path::new(&xdg).join("estiba"),
        _ => PathBuf::from(crate::DEFAULT_ROOT),
    }
}

fn honor_xdg_runtime_dir() -> bool {
    if !nix::unistd::geteuid().is_root() {
        return true;
    }
    if !in_user_namespace() {
        return false;
    }
    std::env::var("USER").map_or(true, |u| u != "root")
}

/// Whether this process runs in a user namespace other than the initial
/// one (whose uid map is the whole range onto itself).
pub fn in_user_namespace() -> bool {
    crate::sys::procfs::read_text("/proc/self/uid_map")
        .map(|m| !is_initial_map(&m))
        .unwrap_or(false)
}

fn is_initial_map(map: &str) -> bool {
    let fields: Vec<&str> = map.split_whitespace().collect();
    fields == ["0", "0", "4294967295"]
}

/// `--rootless auto`: the cgroup layer may give up on a cgroup it cannot
/// make when the runtime is not root, or is root only in a user namespace
/// (runc's choice for its cgroupfs driver).
pub fn detect() -> bool {
    !nix::unistd::geteuid().is_root() || in_user_namespace()
}

/// Whether the runtime writes the maps as an unprivileged user: then a
/// single gid line of its own egid is all the kernel lets it write itself,
/// and only once setgroups is denied.
fn unprivileged() -> bool {
    !nix::unistd::geteuid().is_root()
}

/// Whether the container's processes may call setgroups: not when an
/// unprivileged runtime maps just its own gid (the kernel needs
/// setgroups denied for that map; runc does the same).
pub fn setgroups_allowed(spec: &Spec) -> bool {
    !(unprivileged() && own_gid_only(gid_maps(spec)))
}

fn gid_maps(spec: &Spec) -> &[LinuxIdMapping] {
    spec.linux()
        .as_ref()
        .and_then(|l| l.gid_mappings().as_deref())
        .unwrap_or_default()
}

fn own_gid_only(maps: &[LinuxIdMapping]) -> bool {
    let egid = nix::unistd::getegid().as_raw();
    matches!(maps, [m] if m.host_id() == egid && m.size() == 1)
}

/// How long newuidmap/newgidmap may take.
const MAP_TOOL_TIMEOUT: Duration = Duration::from_secs(10);

/// Writes the init's uid and gid maps from the parent. Root writes them
/// directly. An unprivileged runtime writes a map the kernel lets it write
/// (one line: its own id), denying setgroups first for a gid map; any other
/// map goes through the setuid helpers newuidmap/newgidmap, which check it
/// against /etc/subuid and /etc/subgid.
pub fn write_id_maps(pid: i32, spec: &Spec) -> Result<()> {
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    let uids = linux.uid_mappings().as_deref().unwrap_or_default();
    let gids = linux.gid_mappings().as_deref().unwrap_or_default();
    let proc = ProcFs::open(Path::new("/proc"))?;
    if unprivileged() && own_gid_only(gids) {
        proc.write_named(
            "deny setgroups for a single-gid map",
            &format!("{pid}/setgroups"),
            b"deny",
            true,
        )?;
    }
    for (file, tool, maps) in [
        ("uid_map", "newuidmap", uids),
        ("gid_map", "newgidmap", gids),
    ] {
        if maps.is_empty() {
            continue;
        }
        let text = id_map_text(maps);
        match proc.write(&format!("{pid}/{file}"), text.as_bytes(), true) {
            Ok(()) => {}
            Err(nix::errno::Errno::EPERM) if unprivileged() => run_map_tool(tool, pid, maps)?,
            Err(e) => {
                return Err(Error::sys(
                    format!("id mappings: write /proc/{pid}/{file}"),
                    e,
                ))
            }
        }
    }
    Ok(())
}

/// `newuidmap PID ID HOSTID COUNT...` (or newgidmap), found on PATH,
/// with an empty environment and a bound.
fn run_map_tool(tool: &str, pid: i32, maps: &[LinuxIdMapping]) -> Result<()> {
    let path = find_on_path(tool).ok_or_else(|| {
        Error::Config(format!(
            "{tool} is needed for these id mappings as a user without CAP_SETUID/CAP_SETGID, and it is not on PATH (Debian: the uidmap package)"
        ))
    })?;
    let mut args = vec![tool.to_string(), pid.to_string()];
    for m in maps {
        args.extend([
            m.container_id().to_string(),
            m.host_id().to_string(),
            m.size().to_string(),
        ]);
    }
    crate::runtime::hooks::run_program(&path, &args, MAP_TOOL_TIMEOUT)
        .map_err(|msg| Error::Sys(format!("{tool} {pid}: {msg}")))
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The processes of a container that has no cgroup: with its own pid
/// namespace, every process in it (an exec'd process is no descendant of
/// the init); else the init and its descendants.
pub fn processes_of(init: i32, own_pid_ns: bool) -> Vec<i32> {
    let procs = all_pids();
    if own_pid_ns {
        let ns = |p: i32| std::fs::read_link(format!("/proc/{p}/ns/pid")).ok();
        if let Some(theirs) = ns(init) {
            return procs
                .into_iter()
                .filter(|p| ns(*p).as_ref() == Some(&theirs))
                .collect();
        }
    }
    let parent_of: Vec<(i32, i32)> = procs
        .into_iter()
        .filter_map(|p| {
            let stat = crate::sys::procfs::read_text(format!("/proc/{p}/stat")).ok()?;
            Some((p, ppid_of_stat(&stat)?))
        })
        .collect();
    let mut tree = vec![init];
    let mut i = 0;
    while i < tree.len() {
        let p = tree[i];
        tree.extend(parent_of.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    tree
}

fn all_pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Field 4 of /proc/PID/stat; the command (field 2) may hold spaces and
/// parentheses, so fields are counted after its last ')'.
fn ppid_of_stat(stat: &str) -> Option<i32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_map_is_recognised() {
        assert!(is_initial_map("         0          0 4294967295\n"));
        assert!(!is_initial_map("         0       1000          1\n"));
        assert!(!is_initial_map("0 0 4294967295\n1 1 1\n"));
    }

    #[test]
    fn the_tree_holds_our_own_child() {
        let mut child = std::process::Command::new("sleep")
            .arg("10")
            .spawn()
            .unwrap();
        let tree = processes_of(std::process::id() as i32, false);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(tree[0], std::process::id() as i32);
        assert!(tree.contains(&(child.id() as i32)), "{tree:?}");
        assert_eq!(ppid_of_stat("12 (a) b) S 7 12"), Some(7));
    }

    #[test]
    fn only_a_single_own_gid_counts() {
        let egid = nix::unistd::getegid().as_raw();
        let maps: Vec<LinuxIdMapping> = serde_json::from_str(&format!(
            r#"[{{"containerID":0,"hostID":{egid},"size":1}}]"#
        ))
        .unwrap();
        assert!(own_gid_only(&maps));
        let two: Vec<LinuxIdMapping> = serde_json::from_str(&format!(
            r#"[{{"containerID":0,"hostID":{egid},"size":1}},{{"containerID":1,"hostID":100000,"size":65536}}]"#
        ))
        .unwrap();
        assert!(!own_gid_only(&two));
        assert!(!own_gid_only(&[]));
    }
}
