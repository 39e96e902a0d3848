//! Mount options: what each of a mount entry's `options` means for
//! mount(2) and mount_setattr(2).

use std::path::Path;

use nix::mount::MsFlags;

use crate::error::{Error, Result};

/// Every mount option the parser understands (not passed on as
/// filesystem data): the features document's `mountOptions`.
pub const KNOWN_OPTIONS: &[&str] = &[
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "idmap",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "private",
    "ratime",
    "rbind",
    "rdev",
    "rdiratime",
    "relatime",
    "remount",
    "rexec",
    "ridmap",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnorelatime",
    "rnostrictatime",
    "rnosuid",
    "rnosymfollow",
    "ro",
    "rprivate",
    "rrelatime",
    "rro",
    "rrw",
    "rshared",
    "rslave",
    "rstrictatime",
    "rsuid",
    "rsymfollow",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "symfollow",
    "sync",
    "tmpcopyup",
    "unbindable",
];

/// What the options of one mount entry mean for mount(2).
#[derive(Debug, PartialEq, Eq)]
pub struct MountOptions {
    pub flags: MsFlags,
    /// Flags the options explicitly clear (e.g. `rw`, `suid`), which matter
    /// when a bind mount is remounted.
    pub cleared: MsFlags,
    pub propagation: Vec<MsFlags>,
    pub data: Vec<String>,
    /// mount_setattr(AT_RECURSIVE) attributes from `rro`, `rnosuid`, ...
    pub rec_set: u64,
    pub rec_clr: u64,
    /// `tmpcopyup`: the tmpfs starts with the content it covers.
    pub copyup: bool,
    /// `idmap` (Some(false)) or `ridmap` (Some(true)): an id-mapped bind.
    pub idmap: Option<bool>,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            flags: MsFlags::empty(),
            cleared: MsFlags::empty(),
            propagation: vec![],
            data: vec![],
            rec_set: 0,
            rec_clr: 0,
            copyup: false,
            idmap: None,
        }
    }
}

impl MountOptions {
    pub fn parse<S: AsRef<str>>(options: &[S]) -> Result<Self> {
        let mut o = MountOptions::default();
        for opt in options {
            let opt = opt.as_ref();
            let (set, clear) = match opt {
                "defaults" => (MsFlags::empty(), MsFlags::empty()),
                "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
                "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
                "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
                "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
                "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
                "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
                "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
                "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
                "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
                "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
                "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
                "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
                "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
                "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
                "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
                "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
                "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
                "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
                "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
                "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
                "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
                "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
                "lazytime" => (MsFlags::MS_LAZYTIME, MsFlags::empty()),
                "nolazytime" => (MsFlags::empty(), MsFlags::MS_LAZYTIME),
                "nosymfollow" => (MsFlags::from_bits_retain(MS_NOSYMFOLLOW), MsFlags::empty()),
                "symfollow" => (MsFlags::empty(), MsFlags::from_bits_retain(MS_NOSYMFOLLOW)),
                "silent" => (MsFlags::MS_SILENT, MsFlags::empty()),
                "loud" => (MsFlags::empty(), MsFlags::MS_SILENT),
                "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
                "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
                "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave"
                | "unbindable" | "runbindable" => {
                    o.propagation
                        .push(propagation_flag(opt).unwrap_or(MsFlags::MS_PRIVATE));
                    continue;
                }
                r if recursive_attr(r).is_some() => {
                    let (set, clr) = recursive_attr(r).unwrap_or_default();
                    o.rec_set = (o.rec_set & !clr) | set;
                    o.rec_clr = (o.rec_clr & !set) | clr;
                    continue;
                }
                // runc's extension: copy what the tmpfs covers into it.
                "tmpcopyup" => {
                    o.copyup = true;
                    continue;
                }
                "iversion" => (MsFlags::MS_I_VERSION, MsFlags::empty()),
                "noiversion" => (MsFlags::empty(), MsFlags::MS_I_VERSION),
                // Id-mapped (idmap.rs); ridmap maps every mount of an rbind.
                "idmap" => {
                    o.idmap = Some(o.idmap.unwrap_or(false));
                    continue;
                }
                "ridmap" => {
                    o.idmap = Some(true);
                    continue;
                }
                _ => {
                    o.data.push(opt.to_string());
                    continue;
                }
            };
            o.flags |= set;
            o.flags = without(o.flags, clear);
            o.cleared |= clear;
        }
        Ok(o)
    }

    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }

    /// A bind mount takes no filesystem data: what would go there is an
    /// option nobody knows, refused rather than dropped.
    pub fn check_bind(&self, dest: &Path) -> Result<()> {
        if self.data.is_empty() {
            return Ok(());
        }
        Err(Error::Config(format!(
            "mounts: bind mount on {dest:?}: unknown option(s) {:?}; a bind mount takes only mount flags",
            self.data
        )))
    }
}

/// `flags` minus `remove`, keeping bits nix has no name for (`!` on
/// bitflags would drop them, MS_NOSYMFOLLOW among them).
pub fn without(flags: MsFlags, remove: MsFlags) -> MsFlags {
    MsFlags::from_bits_retain(flags.bits() & !remove.bits())
}

/// mount(2)'s MS_NOSYMFOLLOW (Linux 5.10), not in every libc yet.
const MS_NOSYMFOLLOW: libc::c_ulong = 256;

/// `private`, `rshared`, ... as mount(2) propagation flags.
pub fn propagation_flag(name: &str) -> Option<MsFlags> {
    let (rec, base) = match name.strip_prefix('r') {
        Some(b) if !b.is_empty() => (true, b),
        _ => (false, name),
    };
    let flag = match base {
        "private" => MsFlags::MS_PRIVATE,
        "shared" => MsFlags::MS_SHARED,
        "slave" => MsFlags::MS_SLAVE,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        _ => return None,
    };
    Some(if rec { flag | MsFlags::MS_REC } else { flag })
}

/// Per-mount flags as mount_setattr (set, clear) attribute bits; `None`
/// when `flags` holds one it has no attribute for.
pub(crate) fn setattr_of(flags: MsFlags) -> Option<(u64, u64)> {
    use crate::sys::{
        MOUNT_ATTR_NOATIME, MOUNT_ATTR_NODEV, MOUNT_ATTR_NODIRATIME, MOUNT_ATTR_NOEXEC,
        MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY, MOUNT_ATTR_RELATIME, MOUNT_ATTR_STRICTATIME,
        MOUNT_ATTR__ATIME,
    };
    let mut set = 0;
    let mut clr = 0;
    for (flag, attr) in [
        (MsFlags::MS_RDONLY, MOUNT_ATTR_RDONLY),
        (MsFlags::MS_NOSUID, MOUNT_ATTR_NOSUID),
        (MsFlags::MS_NODEV, MOUNT_ATTR_NODEV),
        (MsFlags::MS_NOEXEC, MOUNT_ATTR_NOEXEC),
        (MsFlags::MS_NODIRATIME, MOUNT_ATTR_NODIRATIME),
    ] {
        if flags.contains(flag) {
            set |= attr;
        }
    }
    // At most one access-time mode (relatime is 0 in the mask).
    for (flag, attr) in [
        (MsFlags::MS_RELATIME, MOUNT_ATTR_RELATIME),
        (MsFlags::MS_NOATIME, MOUNT_ATTR_NOATIME),
        (MsFlags::MS_STRICTATIME, MOUNT_ATTR_STRICTATIME),
    ] {
        if flags.contains(flag) {
            if clr != 0 {
                return None;
            }
            set |= attr;
            clr = MOUNT_ATTR__ATIME;
        }
    }
    let known = MsFlags::MS_RDONLY
        | MsFlags::MS_NOSUID
        | MsFlags::MS_NODEV
        | MsFlags::MS_NOEXEC
        | MsFlags::MS_NODIRATIME
        | MsFlags::MS_RELATIME
        | MsFlags::MS_NOATIME
        | MsFlags::MS_STRICTATIME;
    (known | flags == known).then_some((set, clr))
}

/// The recursive options (`rro`, `rnosuid`, ...) as mount_setattr
/// (set, clear) attribute bits.
fn recursive_attr(opt: &str) -> Option<(u64, u64)> {
    use crate::sys::{
        MOUNT_ATTR_NOATIME as NOATIME, MOUNT_ATTR_NODEV as NODEV,
        MOUNT_ATTR_NODIRATIME as NODIRATIME, MOUNT_ATTR_NOEXEC as NOEXEC,
        MOUNT_ATTR_NOSUID as NOSUID, MOUNT_ATTR_NOSYMFOLLOW as NOSYMFOLLOW,
        MOUNT_ATTR_RDONLY as RDONLY, MOUNT_ATTR_STRICTATIME as STRICTATIME,
        MOUNT_ATTR__ATIME as ATIME_MASK,
    };
    Some(match opt {
        "rro" => (RDONLY, 0),
        "rrw" => (0, RDONLY),
        "rnosuid" => (NOSUID, 0),
        "rsuid" => (0, NOSUID),
        "rnodev" => (NODEV, 0),
        "rdev" => (0, NODEV),
        "rnoexec" => (NOEXEC, 0),
        "rexec" => (0, NOEXEC),
        "rnoatime" => (NOATIME, ATIME_MASK),
        "rstrictatime" => (STRICTATIME, ATIME_MASK),
        "rrelatime" | "ratime" | "rnostrictatime" | "rnorelatime" => (0, ATIME_MASK),
        "rnodiratime" => (NODIRATIME, 0),
        "rdiratime" => (0, NODIRATIME),
        "rnosymfollow" => (NOSYMFOLLOW, 0),
        "rsymfollow" => (0, NOSYMFOLLOW),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_spec_options() {
        let o = MountOptions::parse(&["nosuid", "strictatime", "mode=755", "size=65536k"]).unwrap();
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.data, vec!["mode=755", "size=65536k"]);
        let o = MountOptions::parse(&["rbind", "ro", "rprivate"]).unwrap();
        assert!(o.is_bind());
        assert!(o.flags.contains(MsFlags::MS_REC | MsFlags::MS_RDONLY));
        assert_eq!(o.propagation, vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
    }

    #[test]
    fn later_option_wins() {
        let o = MountOptions::parse(&["ro", "rw"]).unwrap();
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
        assert!(o.cleared.contains(MsFlags::MS_RDONLY));
    }

    #[test]
    fn propagation_names() {
        assert_eq!(
            propagation_flag("rslave"),
            Some(MsFlags::MS_SLAVE | MsFlags::MS_REC)
        );
        assert_eq!(propagation_flag("shared"), Some(MsFlags::MS_SHARED));
        assert_eq!(
            propagation_flag("runbindable"),
            Some(MsFlags::MS_UNBINDABLE | MsFlags::MS_REC)
        );
        assert_eq!(propagation_flag("ro"), None);
    }

    #[test]
    fn every_known_option_is_understood() {
        for o in KNOWN_OPTIONS {
            let p = MountOptions::parse(&[o]).unwrap_or_else(|e| panic!("{o}: {e}"));
            assert!(p.data.is_empty(), "{o} would be passed on as data");
        }
        // Data options are not mount options of ours.
        assert!(MountOptions::parse(&["size=1k"]).unwrap().data == ["size=1k"]);
    }

    #[test]
    fn mount_flags_as_setattr_bits() {
        let f = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        assert_eq!(setattr_of(f), Some((0xf, 0)));
        assert_eq!(setattr_of(f | MsFlags::MS_RELATIME), Some((0xf, 0x70)));
        assert_eq!(setattr_of(MsFlags::MS_NOATIME), Some((0x10, 0x70)));
        assert_eq!(
            setattr_of(MsFlags::MS_NOATIME | MsFlags::MS_STRICTATIME),
            None
        );
        assert_eq!(setattr_of(MsFlags::MS_SYNCHRONOUS), None);
    }

    #[test]
    fn ridmap_wins_over_idmap() {
        assert_eq!(MountOptions::parse(&["idmap"]).unwrap().idmap, Some(false));
        assert_eq!(
            MountOptions::parse(&["ridmap", "idmap"]).unwrap().idmap,
            Some(true)
        );
        assert_eq!(
            MountOptions::parse(&["idmap", "ridmap"]).unwrap().idmap,
            Some(true)
        );
        assert_eq!(MountOptions::parse(&["bind"]).unwrap().idmap, None);
    }
}
