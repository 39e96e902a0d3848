//! A real unprivileged account for the rootless tests: made by the test
//! (with subordinate id ranges and a runtime dir, as a login would give),
//! used through `setpriv`, and removed with everything it left, pass or
//! fail.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::{binary, text};

/// An account made for one test.
pub struct PlainUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// Its `$XDG_RUNTIME_DIR` (/run/user/UID), where estiba keeps its state.
    pub runtime_dir: PathBuf,
    /// A copy of the binary under test the account can run.
    pub bin: PathBuf,
    /// The first subordinate uid and gid, and how many (65536 each).
    pub subids: (u32, u32, u32),
    home: PathBuf,
    /// A cgroup v2 subtree given to the account ([`PlainUser::delegate_cgroup`])
    /// and the leaf in it where its commands run.
    delegated: Option<(PathBuf, PathBuf)>,
}

impl PlainUser {
    /// Makes the account, or says why not (`skipped:`) and gives None.
    pub fn make(test: &str) -> Option<PlainUser> {
        for tool in ["useradd", "userdel", "setpriv", "newuidmap", "newgidmap"] {
            let found = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
                .iter()
                .any(|d| Path::new(d).join(tool).exists());
            if !found {
                crate::skip!("{test}: {tool} is not installed (passwd, util-linux, uidmap)");
                return None;
            }
        }
        // Short (useradd takes 32 characters), unique to this process.
        let name = format!("esrl{}x{}", std::process::id(), crate::next_seq());
        let ok = Command::new(sbin("useradd"))
            .args(["--create-home", "--shell", "/bin/sh", "--user-group", &name])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "useradd {name} failed");
        let mut user = PlainUser {
            uid: id_of(&name, "-u"),
            gid: id_of(&name, "-g"),
            runtime_dir: PathBuf::new(),
            bin: PathBuf::new(),
            subids: (0, 0, 65536),
            home: PathBuf::from("/home").join(&name),
            delegated: None,
            name,
        };
        user.runtime_dir = PathBuf::from(format!("/run/user/{}", user.uid));
        std::fs::create_dir_all(&user.runtime_dir).expect("make the runtime dir");
        user.give(&user.runtime_dir);
        chmod(&user.runtime_dir, 0o700);
        user.subids = user.ensure_subids();
        // The binary under test, where the account can reach it.
        let dir = user.home.join("bin");
        std::fs::create_dir_all(&dir).unwrap();
        user.bin = dir.join("estiba");
        std::fs::copy(binary(), &user.bin).expect("copy the binary");
        chmod(&user.bin, 0o755);
        user.give(&user.home);
        Some(user)
    }

    /// The account's subordinate ranges: the ones useradd gave it, else a
    /// free range added with usermod.
    fn ensure_subids(&self) -> (u32, u32, u32) {
        let find = |file: &str| {
            std::fs::read_to_string(file)
                .unwrap_or_default()
                .lines()
                .find_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f.len() == 3 && f[0] == self.name).then(|| f[1].parse::<u32>().ok())?
                })
        };
        if let (Some(u), Some(g)) = (find("/etc/subuid"), find("/etc/subgid")) {
            return (u, g, 65536);
        }
        let end = |file: &str| {
            std::fs::read_to_string(file)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    Some(f.get(1)?.parse::<u64>().ok()? + f.get(2)?.parse::<u64>().ok()?)
                })
                .max()
                .unwrap_or(100000)
        };
        let start = end("/etc/subuid").max(end("/etc/subgid")).max(100000) as u32;
        let range = format!("{start}-{}", start + 65535);
        let ok = Command::new(sbin("usermod"))
            .args(["--add-subuids", &range, "--add-subgids", &range, &self.name])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "usermod --add-subuids {range} failed");
        (start, start, 65536)
    }

    /// Gives `path` (and what is under it) to the account.
    pub fn give(&self, path: &Path) {
        let ok = Command::new("chown")
            .arg("-R")
            .arg(format!("{}:{}", self.uid, self.gid))
            .arg(path)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "chown {path:?}");
    }

    /// `sh -c SCRIPT` as the account, with the environment a login gives
    /// (HOME, USER, PATH, XDG_RUNTIME_DIR) and `$ESTIBA` naming the binary.
    pub fn sh(&self, script: &str) -> Output {
        // In a delegated subtree, root puts the shell in its leaf first.
        let mut cmd = match &self.delegated {
            Some((_, leaf)) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!(
                        "echo $$ > {}/cgroup.procs && exec \"$@\"",
                        leaf.display()
                    ))
                    .args(["sh", "setpriv"]);
                c
            }
            None => Command::new("setpriv"),
        };
        cmd.arg(format!("--reuid={}", self.uid))
            .arg(format!("--regid={}", self.gid))
            .args(["--init-groups", "--", "env", "-i"])
            .arg(format!("HOME={}", self.home.display()))
            .arg(format!("USER={}", self.name))
            .arg("PATH=/usr/local/bin:/usr/bin:/bin")
            .arg(format!("XDG_RUNTIME_DIR={}", self.runtime_dir.display()))
            .arg(format!("ESTIBA={}", self.bin.display()))
            .args(["sh", "-c", script])
            .current_dir("/")
            .output()
            .expect("setpriv")
    }

    /// Gives the account a cgroup v2 subtree, as systemd's `Delegate=yes`
    /// does (the directory and its cgroup.procs, cgroup.subtree_control and
    /// cgroup.threads are the account's), with a leaf where its commands
    /// run from now on; returns the subtree. None where the host is not
    /// pure cgroup v2.
    pub fn delegate_cgroup(&mut self) -> Option<PathBuf> {
        let top = Path::new("/sys/fs/cgroup");
        if !top.join("cgroup.subtree_control").exists() || top.join("memory").is_dir() {
            return None;
        }
        let root = top.join(format!("{}-delegated", self.name));
        let leaf = root.join("shell");
        std::fs::create_dir_all(&leaf).expect("make the delegated cgroup");
        for dir in [&root, &leaf] {
            for f in [
                "",
                "cgroup.procs",
                "cgroup.subtree_control",
                "cgroup.threads",
            ] {
                let path = dir.join(f);
                std::os::unix::fs::chown(&path, Some(self.uid), Some(self.gid))
                    .unwrap_or_else(|e| panic!("chown {path:?}: {e}"));
            }
        }
        self.delegated = Some((root.clone(), leaf));
        Some(root)
    }

    /// The config `estiba spec --rootless` writes for the account.
    pub fn rootless_spec(&self) -> serde_json::Value {
        let out = self.sh(
            "d=$(mktemp -d) && cd $d && \"$ESTIBA\" spec --rootless && cat config.json; rm -rf $d",
        );
        assert!(
            out.status.success(),
            "spec --rootless: {}",
            text(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("spec --rootless wrote JSON")
    }

    /// `estiba ARGS...` as the account, its container's stdio away from
    /// the pipes (a detached container would hold them open).
    pub fn estiba_detached(&self, args: &[&str]) -> Output {
        let quoted: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
        self.sh(&format!(
            "e=$(mktemp); \"$ESTIBA\" {} </dev/null >/dev/null 2>$e; rc=$?; cat $e >&2; rm -f $e; exit $rc",
            quoted.join(" ")
        ))
    }

    /// `estiba ARGS...` as the account.
    pub fn estiba(&self, args: &[&str]) -> Output {
        let quoted: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
        self.sh(&format!("exec \"$ESTIBA\" {}", quoted.join(" ")))
    }

    /// Like [`PlainUser::estiba`], asserting success; its stdout.
    pub fn estiba_ok(&self, args: &[&str]) -> String {
        let out = self.estiba(args);
        assert!(
            out.status.success(),
            "estiba {args:?} as {}: {}",
            self.name,
            text(&out.stderr)
        );
        text(&out.stdout)
    }
}

impl Drop for PlainUser {
    fn drop(&mut self) {
        // Its containers first (they are its own to delete), then anything
        // of it still running, then the account and what it owned.
        let list = self.estiba(&["list", "-q"]);
        for id in text(&list.stdout).lines().filter(|l| !l.is_empty()) {
            let _ = self.estiba(&["delete", "--force", id]);
        }
        let uid = self.uid.to_string();
        for _ in 0..50 {
            let _ = Command::new("pkill").args(["-KILL", "-U", &uid]).status();
            let left = Command::new("pgrep").args(["-U", &uid]).output();
            if left.is_ok_and(|o| o.stdout.is_empty()) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        if let Some((root, _)) = &self.delegated {
            // Deepest first; cgroups go with rmdir only.
            let _ = Command::new("find")
                .arg(root)
                .args(["-depth", "-type", "d", "-exec", "rmdir", "{}", ";"])
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.runtime_dir);
        let _ = Command::new(sbin("userdel"))
            .args(["--remove", "--force", &self.name])
            .output();
        // userdel removes the subordinate ranges too; make sure.
        for file in ["/etc/subuid", "/etc/subgid"] {
            if let Ok(s) = std::fs::read_to_string(file) {
                let prefix = format!("{}:", self.name);
                if s.lines().any(|l| l.starts_with(&prefix)) {
                    let kept: String = s
                        .lines()
                        .filter(|l| !l.starts_with(&prefix))
                        .map(|l| format!("{l}\n"))
                        .collect();
                    let _ = std::fs::write(file, kept);
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

/// An administration tool by its full path: PATH may lack the sbin
/// directories (the qemu guest's has only /bin).
fn sbin(tool: &str) -> PathBuf {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(tool))
}

fn id_of(name: &str, flag: &str) -> u32 {
    let out = Command::new("id").args([flag, name]).output().expect("id");
    text(&out.stdout).trim().parse().expect("id's number")
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}
