//! `spec` (a default config.json, like runc's) and `features` (what this
//! runtime supports, per the runtime-spec features document — truthfully).

use serde_json::{json, Value};

/// The newest runtime-spec version this runtime implements.
pub const OCI_VERSION: &str = "1.3.0";

/// The version `spec` writes: the config uses nothing newer, and older
/// runtimes and tools (crun 1.8, runtime-tools) refuse 1.1+ documents.
pub const SPEC_WRITES_VERSION: &str = "1.0.2";

const DEFAULT_CAPS: [&str; 3] = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

/// A config.json that runs `sh` in a busybox-like rootfs at `./rootfs`:
/// runc's `spec` for this host (a cgroup namespace only where the host is
/// cgroup v2, as runc decides), with `rootless` runc's `spec --rootless`
/// for the caller's (uid, gid).
pub fn default_spec(rootless: Option<(u32, u32)>) -> Value {
    // runc's test: /sys/fs/cgroup itself is a cgroup2 mount.
    let v2 = nix::sys::statfs::statfs("/sys/fs/cgroup")
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC);
    default_spec_for(rootless, v2)
}

fn default_spec_for(rootless: Option<(u32, u32)>, cgroup_v2: bool) -> Value {
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc"}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
               "options": ["nosuid", "noexec", "nodev", "ro"]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
               "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}),
    ];
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "network"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    if cgroup_v2 {
        namespaces.push(json!({"type": "cgroup"}));
    }
    let mut linux = json!({
        "resources": {"devices": [{"allow": false, "access": "rwm"}]},
        "namespaces": [],
        "maskedPaths": [
            "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
            "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
        ],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
    });
    if let Some((uid, gid)) = rootless {
        // As runc's --rootless: no network namespace, a user namespace
        // mapping the caller to root, /sys bound from the host, no uid=/gid=
        // mount options, no resources.
        namespaces.retain(|n| n["type"] != "network" && n["type"] != "user");
        namespaces.push(json!({"type": "user"}));
        for m in &mut mounts {
            if m["destination"] == "/sys" {
                *m = json!({"destination": "/sys", "type": "none", "source": "/sys",
                            "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
            } else if let Some(opts) = m.get_mut("options").and_then(|o| o.as_array_mut()) {
                opts.retain(|o| {
                    !o.as_str()
                        .is_some_and(|o| o.starts_with("uid=") || o.starts_with("gid="))
                });
            }
        }
        linux["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
        linux["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
        if let Some(obj) = linux.as_object_mut() {
            obj.remove("resources");
        }
    }
    linux["namespaces"] = Value::Array(namespaces);
    json!({
        "ociVersion": SPEC_WRITES_VERSION,
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": DEFAULT_CAPS,
                "effective": DEFAULT_CAPS,
                "permitted": DEFAULT_CAPS
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "estiba",
        "mounts": mounts,
        "linux": linux
    })
}

/// Every capability name the kernel headers we build against know.
fn all_capabilities() -> Vec<String> {
    caps::all()
        .into_iter()
        .map(|c| c.to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The features document. Only what works is listed as supported.
pub fn features() -> Value {
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": crate::init::mounts::KNOWN_OPTIONS,
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": all_capabilities(),
            "cgroup": {"v1": true, "v2": true, "systemd": true, "systemdUser": false, "rdma": true},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                            "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                              "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE",
                          "SCMP_ARCH_RISCV64", "SCMP_ARCH_S390X", "SCMP_ARCH_X32", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64"],
                "knownFlags": estiba_seccomp::KNOWN_FLAGS,
                "supportedFlags": estiba_seccomp::supported_flags()
            },
            // Writing the profile or label before exec is ours; whether this
            // host has the LSM is another matter (features-linux.md).
            "apparmor": {"enabled": true},
            "selinux": {"enabled": true},
            "intelRdt": {"enabled": false},
            "memoryPolicy": {
                "modes": ["MPOL_DEFAULT", "MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_WEIGHTED_INTERLEAVE",
                          "MPOL_PREFERRED", "MPOL_PREFERRED_MANY", "MPOL_LOCAL"],
                "flags": ["MPOL_F_NUMA_BALANCING", "MPOL_F_RELATIVE_NODES", "MPOL_F_STATIC_NODES"]
            },
            "mountExtensions": {"idmap": {"enabled": true}},
            "netDevices": {"enabled": true}
        },
        // No annotation of a config changes what estiba does.
        "potentiallyUnsafeConfigAnnotations": [],
        "annotations": {
            "io.github.estiba.version": env!("CARGO_PKG_VERSION")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_spec_parses_and_validates() {
        let v = default_spec(None);
        let spec: oci_spec::runtime::Spec = serde_json::from_value(v).unwrap();
        assert_eq!(spec.hostname().as_deref(), Some("estiba"));
        let dir = std::env::temp_dir().join(format!("estiba-spec-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("rootfs")).unwrap();
        crate::config::bundle::Bundle::from_spec(dir.clone(), spec).unwrap();
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn rootless_spec_has_user_namespace_and_maps() {
        let v = default_spec(Some((1000, 1000)));
        let spec: oci_spec::runtime::Spec = serde_json::from_value(v.clone()).unwrap();
        let ns = spec
            .linux()
            .as_ref()
            .unwrap()
            .namespaces()
            .as_ref()
            .unwrap();
        assert!(ns
            .iter()
            .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User));
        assert!(!ns
            .iter()
            .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Network));
        assert_eq!(v["linux"]["uidMappings"][0]["hostID"], 1000);
    }

    #[test]
    fn features_lists_seccomp_actions_the_compiler_takes() {
        let f = features();
        assert_eq!(f["linux"]["seccomp"]["enabled"], true);
        // Every action and arch listed must compile.
        for a in f["linux"]["seccomp"]["actions"].as_array().unwrap() {
            if a == "SCMP_ACT_NOTIFY" {
                continue;
            }
            let s: oci_spec::runtime::LinuxSeccomp =
                serde_json::from_value(serde_json::json!({"defaultAction": a, "architectures": f["linux"]["seccomp"]["archs"]})).unwrap();
            estiba_seccomp::compile(&s).unwrap();
        }
        assert!(f["linux"]["capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "CAP_SYS_ADMIN"));
    }
}
