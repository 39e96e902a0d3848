//! Where a container's cgroup is: `linux.cgroupsPath` (or the systemd
//! driver's `slice:prefix:name`) resolved against the runtime's own cgroup.

use std::path::{Component, Path, PathBuf};

use crate::{systemd, Error, Result};

/// The cgroup path a container gets from `linux.cgroupsPath`: with the
/// systemd driver its `slice:prefix:name` form, else [`container_path`].
pub fn cgroup_path(cgroups_path: Option<&Path>, id: &str, systemd: bool) -> Result<PathBuf> {
    if systemd {
        let raw = match cgroups_path.map(|p| p.to_str()) {
            Some(None) => {
                return Err(Error::InvalidPath {
                    path: cgroups_path.map(Path::to_path_buf).unwrap_or_default(),
                    reason: "is not UTF-8",
                })
            }
            Some(Some(s)) => Some(s),
            None => None,
        };
        return systemd::container_path(raw, id);
    }
    container_path(cgroups_path, id)
}

/// The cgroup path a container gets: `linux.cgroupsPath` when given, else
/// `/<id>`. A path that climbs out with `..` is refused.
pub fn container_path(cgroups_path: Option<&Path>, id: &str) -> Result<PathBuf> {
    let raw = match cgroups_path {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("/").join(id),
    };
    if raw.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(Error::InvalidPath {
            path: raw,
            reason: "must not contain '..'",
        });
    }
    if raw.is_absolute() {
        return Ok(raw);
    }
    // Relative (and the default): under the runtime's own cgroup, as runc
    // does; on v2 under its parent (the runtime's own cgroup holds
    // processes, so it cannot delegate controllers to a child).
    let own = crate::read_text("/proc/self/cgroup").unwrap_or_default();
    Ok(Path::new("/").join(own_base(&own)).join(raw))
}

/// Where relative cgroup paths start, from /proc/self/cgroup: on v2 the
/// parent of our cgroup, on v1 (and hybrid) our memory/pids cgroup.
fn own_base(proc_self_cgroup: &str) -> PathBuf {
    let lines: Vec<(&str, &str)> = proc_self_cgroup
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
            Some((ctrls, path))
        })
        .collect();
    let v1 = lines
        .iter()
        .find(|(c, _)| c.split(',').any(|c| c == "memory" || c == "pids"));
    let rel = |p: &str| PathBuf::from(p.trim_start_matches('/'));
    match v1 {
        Some((_, p)) => rel(p),
        None => lines
            .iter()
            .find(|(c, _)| c.is_empty())
            .map(|(_, p)| rel(p).parent().map(Path::to_path_buf).unwrap_or_default())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_and_relative_paths_start_at_our_own_cgroup() {
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let base = Path::new("/").join(own_base(&own));
        assert_eq!(container_path(None, "abc").unwrap(), base.join("abc"));
        assert_eq!(
            container_path(Some(Path::new("")), "abc").unwrap(),
            base.join("abc")
        );
        assert_eq!(
            container_path(Some(Path::new("a/b")), "x").unwrap(),
            base.join("a/b")
        );
        assert_eq!(
            container_path(Some(Path::new("/a/b")), "x").unwrap(),
            PathBuf::from("/a/b")
        );
    }

    #[test]
    fn own_base_v1_hybrid_and_v2() {
        let v1 = "12:pids:/user.slice/s1\n4:memory:/user.slice/s1\n0::/user.slice/s1\n";
        assert_eq!(own_base(v1), PathBuf::from("user.slice/s1"));
        let v2 = "0::/system.slice/containerd.service\n";
        assert_eq!(own_base(v2), PathBuf::from("system.slice"));
        assert_eq!(own_base("0::/\n"), PathBuf::from(""));
        assert_eq!(own_base(""), PathBuf::from(""));
    }

    #[test]
    fn dotdot_is_refused() {
        assert!(container_path(Some(Path::new("/a/../../etc")), "x").is_err());
    }
}
