//! Checks that keep a config from reaching the host: sysctls only where the
//! container owns the namespace (runc's rules), device paths and access
//! strings that mean exactly what they say, bind mounts with only mount
//! flags, a rootfs that is not a symlink,
//! and input files read only when they are regular files of sane size.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path};

use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType, Spec};

use crate::error::{Error, Result};

/// The largest config.json / process.json / resources file read.
const MAX_INPUT: u64 = 16 << 20;

/// Reads an input file (config.json, process.json, a resources file):
/// without blocking on a fifo, only a regular file, at most 16 MiB.
pub fn read_input(path: &Path) -> Result<Vec<u8>> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| Error::path("open", path, &e))?;
    let meta = f.metadata().map_err(|e| Error::path("stat", path, &e))?;
    if !meta.is_file() {
        return Err(Error::Config(format!("{path:?}: not a regular file")));
    }
    if meta.len() > MAX_INPUT {
        return Err(Error::Config(format!(
            "{path:?}: {} bytes, more than the {MAX_INPUT} allowed",
            meta.len()
        )));
    }
    let mut buf = Vec::with_capacity(meta.len() as usize);
    f.take(MAX_INPUT + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::path("read", path, &e))?;
    Ok(buf)
}

/// The ipc namespace's sysctls (besides `fs.mqueue.*`).
const IPC_SYSCTLS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// Whether the container gets a namespace of `typ` that is not the
/// runtime's own: a new one, or one joined by a path naming another.
fn owns_namespace(nss: &[LinuxNamespace], typ: LinuxNamespaceType, proc_name: &str) -> bool {
    let Some(ns) = nss.iter().find(|n| n.typ() == typ) else {
        return false;
    };
    let Some(path) = ns.path() else {
        return true;
    };
    let id = |p: &Path| {
        std::fs::metadata(p).map(|m| {
            (
                std::os::unix::fs::MetadataExt::dev(&m),
                std::os::unix::fs::MetadataExt::ino(&m),
            )
        })
    };
    match (id(path), id(&Path::new("/proc/self/ns").join(proc_name))) {
        (Ok(theirs), Ok(ours)) => theirs != ours,
        _ => false,
    }
}

/// runc's rule: a sysctl is written only into a namespace the container
/// owns; anything else is refused, naming the key, before any process.
pub fn check_sysctls(spec: &Spec) -> Result<()> {
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    let nss = linux.namespaces().clone().unwrap_or_default();
    for key in linux.sysctl().iter().flatten().map(|(k, _)| k) {
        if key.is_empty()
            || key.starts_with(['.', '/'])
            || key.split(['.', '/']).any(|c| c.is_empty() || c == "..")
        {
            return Err(Error::Config(format!("linux.sysctl: invalid key {key:?}")));
        }
        let (typ, name, what) = if IPC_SYSCTLS.contains(&key.as_str())
            || key.starts_with("fs.mqueue.")
        {
            (LinuxNamespaceType::Ipc, "ipc", "ipc")
        } else if key.starts_with("net.") {
            (LinuxNamespaceType::Network, "net", "network")
        } else if key == "kernel.hostname" || key == "kernel.domainname" {
            (LinuxNamespaceType::Uts, "uts", "uts")
        } else if key.starts_with("user.") {
            (LinuxNamespaceType::User, "user", "user")
        } else {
            return Err(Error::Config(format!(
                "linux.sysctl {key:?}: not in a separate kernel namespace, so it would change the host: refused"
            )));
        };
        if !owns_namespace(&nss, typ, name) {
            return Err(Error::Config(format!(
                "linux.sysctl {key:?}: not allowed in the host's {what} namespace (the container needs its own)"
            )));
        }
    }
    Ok(())
}

/// Device paths are absolute and plain, anywhere in the container (the
/// spec and runc allow that): no `..`, which would hide where they land.
pub fn check_devices(spec: &Spec) -> Result<()> {
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    for d in linux.devices().iter().flatten() {
        let p = d.path();
        if !p.is_absolute() || p.components().any(|c| c == Component::ParentDir) {
            return Err(Error::Config(format!(
                "linux.devices: path {p:?} must be absolute, without \"..\""
            )));
        }
    }
    for r in linux
        .resources()
        .as_ref()
        .and_then(|r| r.devices().as_ref())
        .into_iter()
        .flatten()
    {
        if let Some(a) = r.access() {
            if !a.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
                return Err(Error::Config(format!(
                    "linux.resources.devices: access {a:?}: only the letters r, w and m are allowed"
                )));
            }
        }
    }
    Ok(())
}

/// Every mount's options parse, and a bind mount carries only mount flags:
/// the kernel ignores filesystem data on a bind, so a typo (`r0`) or an
/// option meant for another filesystem (`mode=755`) would silently leave
/// the mount weaker than asked (runc 1.2+ refuses the same).
pub fn check_mounts(spec: &Spec) -> Result<()> {
    for m in spec.mounts().iter().flatten() {
        let dest = m.destination();
        let opts =
            crate::init::mounts::MountOptions::parse(m.options().as_deref().unwrap_or_default())?;
        let bind = opts.is_bind() || m.typ().as_deref() == Some("bind");
        if bind {
            opts.check_bind(dest)?;
        }
        if opts.copyup && (bind || m.typ().as_deref() != Some("tmpfs")) {
            return Err(Error::Config(format!(
                "mounts: {dest:?}: tmpcopyup is for a tmpfs mount"
            )));
        }
    }
    crate::runtime::idmap::check(spec)
}

/// runc's rule: the rootfs, inside the (resolved) bundle, must not be or
/// pass through a symlink.
pub fn check_rootfs(joined: &Path, resolved: &Path) -> Result<()> {
    let lexical: std::path::PathBuf =
        joined
            .components()
            .fold(std::path::PathBuf::new(), |mut acc, c| {
                match c {
                    Component::ParentDir => {
                        acc.pop();
                    }
                    Component::CurDir => {}
                    other => acc.push(other),
                }
                acc
            });
    if lexical != resolved {
        return Err(Error::Config(format!(
            "root.path {joined:?}: invalid rootfs: not an absolute path, or a symlink (it resolves to {resolved:?})"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(linux: serde_json::Value) -> Spec {
        serde_json::from_value(serde_json::json!({"ociVersion": "1.0.0", "linux": linux})).unwrap()
    }

    #[test]
    fn sysctls_need_their_namespace() {
        let bad = [
            (
                r#"{"sysctl":{"kernel.core_uses_pid":"1"},"namespaces":[{"type":"ipc"},{"type":"network"},{"type":"uts"}]}"#,
                "separate",
            ),
            (
                r#"{"sysctl":{"net.ipv4.tcp_fin_timeout":"30"},"namespaces":[{"type":"ipc"}]}"#,
                "network",
            ),
            (
                r#"{"sysctl":{"fs.mqueue.queues_max":"9"},"namespaces":[{"type":"network"}]}"#,
                "ipc",
            ),
            (r#"{"sysctl":{"kernel.msgmax":"9"}}"#, "ipc"),
            (
                r#"{"sysctl":{"kernel.hostname":"x"},"namespaces":[{"type":"ipc"}]}"#,
                "uts",
            ),
            (
                r#"{"sysctl":{"net.ipv4.ip_forward":"1"},"namespaces":[{"type":"network","path":"/proc/self/ns/net"}]}"#,
                "network",
            ),
            (
                r#"{"sysctl":{"net/../kernel/core_pattern":"x"},"namespaces":[{"type":"network"}]}"#,
                "invalid",
            ),
        ];
        for (j, word) in bad {
            let err = check_sysctls(&spec(serde_json::from_str(j).unwrap()))
                .unwrap_err()
                .to_string();
            assert!(err.contains(word), "{j}: {err}");
        }
        let good = r#"{"sysctl":{"net.ipv4.ip_forward":"1","kernel.shmmax":"9","fs.mqueue.msg_max":"9","kernel.domainname":"d"},"namespaces":[{"type":"ipc"},{"type":"network"},{"type":"uts"}]}"#;
        check_sysctls(&spec(serde_json::from_str(good).unwrap())).unwrap();
    }

    #[test]
    fn device_paths_and_access() {
        let s = spec(
            serde_json::json!({"devices": [{"path": "/dev/../../etc/x", "type": "c", "major": 1, "minor": 3}]}),
        );
        assert!(check_devices(&s).is_err());
        let s =
            spec(serde_json::json!({"resources": {"devices": [{"allow": true, "access": "xyz"}]}}));
        assert!(check_devices(&s).unwrap_err().to_string().contains("xyz"));
        let s =
            spec(serde_json::json!({"resources": {"devices": [{"allow": true, "access": "rwm"}]}}));
        check_devices(&s).unwrap();
    }

    #[test]
    fn bind_mounts_take_only_mount_flags() {
        let with = |typ: &str, opts: &[&str]| -> Spec {
            serde_json::from_value(serde_json::json!({"ociVersion": "1.0.0",
                "mounts": [{"destination": "/d", "type": typ, "source": "/s", "options": opts}]}))
            .unwrap()
        };
        let err = check_mounts(&with("bind", &["rbind", "r0"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("r0"), "{err}");
        let err = check_mounts(&with("none", &["bind", "size=1k"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("size=1k"), "{err}");
        check_mounts(&with("bind", &["rbind", "rro", "nosuid", "rprivate"])).unwrap();
        check_mounts(&with(
            "tmpfs",
            &["nosuid", "mode=755", "size=65536k", "tmpcopyup"],
        ))
        .unwrap();
        // tmpcopyup means something only for a tmpfs.
        let err = check_mounts(&with("bind", &["rbind", "tmpcopyup"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("tmpcopyup"), "{err}");
    }

    #[test]
    fn fifo_input_is_refused_without_blocking() {
        let d = std::env::temp_dir().join(format!("estiba-guard-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let fifo = d.join("config.json");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let err = read_input(&fifo).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
