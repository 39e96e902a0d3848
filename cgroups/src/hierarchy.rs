//! Where the host's cgroup hierarchies are mounted, read from one pass over
//! /proc/self/mountinfo (libcgroups re-reads it per controller).

use std::path::{Path, PathBuf};

/// One mounted hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// v1 controllers ("cpu", "cpuacct", "name=systemd"); empty for v2.
    pub controllers: Vec<String>,
    /// The unified (cgroup2) hierarchy.
    pub v2: bool,
}

impl Hierarchy {
    /// Whether this v1 hierarchy holds `controller`.
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// Parses mountinfo text into its cgroup hierarchies. A mount point that a
/// later mount covers (anything mounted over it) does not count. One pass
/// over each line's fields, mount points compared as text (mountinfo's are
/// canonical): on every create, so it stays cheap.
pub fn parse(mountinfo: &str) -> Vec<Hierarchy> {
    let mut out: Vec<Hierarchy> = vec![];
    for line in mountinfo.lines() {
        let mut fields = line.split(' ');
        let Some(mp) = fields.nth(4) else {
            continue;
        };
        out.retain(|h| h.mount_point.as_os_str() != mp);
        // After the optional fields, "-", then type, source and options.
        let mut right = fields.skip_while(|f| *f != "-").skip(1);
        let (Some(fstype), Some(_src), Some(opts)) = (right.next(), right.next(), right.next())
        else {
            continue;
        };
        let h = match fstype {
            "cgroup" => Hierarchy {
                mount_point: PathBuf::from(mp),
                controllers: opts
                    .split(',')
                    .filter(|o| {
                        !matches!(
                            *o,
                            "rw" | "ro"
                                | "clone_children"
                                | "noprefix"
                                | "xattr"
                                | "cpuset_v2_mode"
                        ) && !o.starts_with("release_agent=")
                    })
                    .map(str::to_string)
                    .collect(),
                v2: false,
            },
            "cgroup2" => Hierarchy {
                mount_point: PathBuf::from(mp),
                controllers: vec![],
                v2: true,
            },
            _ => continue,
        };
        let dup = out.iter().any(|o| {
            o.v2 == h.v2
                && (o.mount_point.as_os_str() == h.mount_point.as_os_str()
                    || (!h.v2 && o.controllers == h.controllers))
        });
        if !dup {
            out.push(h);
        }
    }
    out
}

/// The hierarchies mounted where this process sees them.
pub fn host() -> Vec<Hierarchy> {
    crate::read_text("/proc/self/mountinfo")
        .map(|s| parse(&s))
        .unwrap_or_default()
}

/// Whether these hierarchies make a pure v2 host.
pub fn is_unified(hs: &[Hierarchy]) -> bool {
    !hs.is_empty() && hs.iter().all(|h| h.v2)
}

/// `<mount point>/<path>` with `path` taken as relative to the mount.
pub fn join(h: &Hierarchy, path: &Path) -> PathBuf {
    h.mount_point.join(path.strip_prefix("/").unwrap_or(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd,release_agent=/x
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn parses_v1_and_v2_mounts() {
        let hs = parse(HYBRID);
        assert_eq!(hs.len(), 4);
        assert_eq!(hs[0].controllers, vec!["cpu"]);
        assert_eq!(hs[1].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(hs[2].controllers, vec!["name=systemd"]);
        assert!(hs[3].v2);
        assert!(!is_unified(&hs));
        assert_eq!(
            join(&hs[0], Path::new("/a/b")),
            PathBuf::from("/sys/fs/cgroup/cpu/a/b")
        );
    }

    #[test]
    fn covered_mount_does_not_count() {
        let covered = format!("{HYBRID}99 41 0:99 / /sys/fs/cgroup/unified rw - tmpfs none rw\n");
        let hs = parse(&covered);
        assert_eq!(hs.len(), 3);
        assert!(hs.iter().all(|h| !h.v2));
    }

    /// Optional fields (propagation) stand between the options and "-".
    #[test]
    fn optional_fields_before_the_separator() {
        let hs = parse(
            "35 31 0:31 / /sys/fs/cgroup/memory rw,nosuid shared:9 master:3 - cgroup cgroup rw,memory\n\
             36 31 0:32 / /sys/fs/cgroup/pids rw shared:10 - cgroup cgroup rw,pids\n",
        );
        assert_eq!(hs.len(), 2);
        assert_eq!(hs[0].mount_point, PathBuf::from("/sys/fs/cgroup/memory"));
        assert_eq!(hs[0].controllers, vec!["memory"]);
        assert_eq!(hs[1].controllers, vec!["pids"]);
    }

    #[test]
    fn pure_v2() {
        let hs = parse("30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n");
        assert!(is_unified(&hs));
    }
}
