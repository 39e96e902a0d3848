//! Harness for tests that drive the real `estiba` binary as root on real
//! bundles built from Debian's busybox-static. Everything a test makes (state
//! root, bundle, containers, cgroups) is removed when its guard drops, pass
//! or fail.

pub mod bpfeval;
mod plainuser;
pub use plainuser::PlainUser;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{json, Value};

/// The binary under test: `$ESTIBA_BIN`, else the workspace's debug build.
pub fn binary() -> PathBuf {
    if let Ok(p) = std::env::var("ESTIBA_BIN") {
        return PathBuf::from(p);
    }
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    for profile in ["debug", "release"] {
        let p = target.join(profile).join("estiba");
        if p.exists() {
            return p;
        }
    }
    panic!("estiba binary not found: run `cargo build -p estiba` first or set ESTIBA_BIN");
}

/// The `probe` helper binary built with the tests.
pub fn probe_binary() -> PathBuf {
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    for profile in ["debug", "release"] {
        let p = target.join(profile).join("probe");
        if p.exists() {
            return p;
        }
    }
    panic!("probe binary not found: cargo builds it with the integration tests");
}

/// The busybox this machine has (Debian's busybox-static).
pub fn busybox() -> Option<PathBuf> {
    ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Whether real containers can run here; prints the reason when not.
/// Tests return early (and say "skipped") when this is false.
/// Says `skipped: LINE` on the test process's real stderr, which cargo's
/// harness does not capture (as it does `println!`): a check this machine
/// cannot run is visible in every log, passing or not.
pub fn skip_line(line: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(format!("skipped: {line}\n").as_bytes());
}

/// `skip!("name: reason {x}")`: [`skip_line`] with `format!` arguments.
#[macro_export]
macro_rules! skip {
    ($($t:tt)*) => { $crate::skip_line(&format!($($t)*)) };
}

/// Whether strace runs here; says `skipped` for `test` if not.
pub fn have_strace(test: &str) -> bool {
    let there = std::process::Command::new("strace")
        .arg("-V")
        .output()
        .is_ok();
    if !there {
        skip!("{test}: needs strace");
    }
    there
}

pub fn can_run(test: &str) -> bool {
    if !nix::unistd::geteuid().is_root() {
        skip!("{test}: needs root");
        return false;
    }
    if busybox().is_none() {
        skip!("{test}: needs busybox-static (/bin/busybox)");
        return false;
    }
    true
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A number unique within this test process.
pub fn next_seq() -> u32 {
    SEQ.fetch_add(1, Ordering::SeqCst)
}

const APPLETS: &[&str] = &[
    "sh",
    "cat",
    "echo",
    "ls",
    "id",
    "hostname",
    "grep",
    "sleep",
    "true",
    "false",
    "touch",
    "mount",
    "stat",
    "readlink",
    "pwd",
    "env",
    "umask",
    "head",
    "wc",
    "test",
    "kill",
    "ps",
    "mkdir",
    "tr",
    "cut",
    "sed",
    "printf",
    "domainname",
    "dd",
    "yes",
    "uname",
    "nproc",
    "date",
    "ln",
    "rm",
    "stty",
    "tty",
    "ip",
    "od",
];

/// One test's world: a bundle with a busybox rootfs, a private state root,
/// and the containers it made.
pub struct World {
    /// The binary this world drives (tests may swap in a copy).
    pub bin: PathBuf,
    pub name: String,
    pub dir: PathBuf,
    pub root: PathBuf,
    pub bundle: PathBuf,
    pub config: Value,
    ids: Vec<String>,
}

impl World {
    pub fn new(name: &str) -> World {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let tag = format!("estiba-it-{}-{n}-{name}", std::process::id());
        let dir = std::env::temp_dir().join(&tag);
        let _ = std::fs::remove_dir_all(&dir);
        let bundle = dir.join("bundle");
        let rootfs = bundle.join("rootfs");
        for d in ["bin", "proc", "sys", "dev", "tmp", "etc"] {
            std::fs::create_dir_all(rootfs.join(d)).expect("make rootfs");
        }
        std::fs::copy(busybox().expect("busybox"), rootfs.join("bin/busybox"))
            .expect("copy busybox");
        for a in APPLETS {
            symlink("busybox", rootfs.join("bin").join(a)).expect("applet link");
        }
        std::fs::write(
            rootfs.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n",
        )
        .unwrap();
        std::fs::write(rootfs.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
        let mut config = estiba_spec();
        // `spec` adds a cgroup namespace only on a cgroup v2 host (runc);
        // the tests run with one everywhere, as they were written.
        if let Some(ns) = config["linux"]["namespaces"].as_array_mut() {
            if !ns.iter().any(|n| n["type"] == "cgroup") {
                ns.push(serde_json::json!({"type": "cgroup"}));
            }
        }
        config["process"]["terminal"] = Value::Bool(false);
        config["process"]["args"] = serde_json::json!(["true"]);
        World {
            bin: binary(),
            name: tag,
            root: dir.join("state"),
            dir,
            bundle,
            config,
            ids: vec![],
        }
    }

    /// A container id unique to this test (also its default cgroup name).
    pub fn id(&mut self, suffix: &str) -> String {
        let id = format!("{}-{suffix}", self.name);
        self.ids.push(id.clone());
        id
    }

    /// Copies the `probe` binary (and the shared libraries it needs) into
    /// the rootfs as /bin/probe.
    pub fn install_probe(&self) {
        let probe = probe_binary();
        let rootfs = self.rootfs();
        std::fs::copy(&probe, rootfs.join("bin/probe")).expect("copy probe");
        let ldd = Command::new("ldd").arg(&probe).output().expect("ldd");
        for line in String::from_utf8_lossy(&ldd.stdout).lines() {
            // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
            let path = line
                .split("=>")
                .last()
                .unwrap_or("")
                .split_whitespace()
                .next()
                .unwrap_or("");
            if path.starts_with('/') {
                let dest = rootfs.join(path.trim_start_matches('/'));
                std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
                std::fs::copy(path, &dest).expect("copy library");
            }
        }
    }

    pub fn rootfs(&self) -> PathBuf {
        self.bundle.join("rootfs")
    }

    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.config["process"]["args"] = serde_json::json!(args);
        self
    }

    /// `sh -c SCRIPT` as the container's process.
    pub fn script(&mut self, script: &str) -> &mut Self {
        self.args(&["sh", "-c", script])
    }

    pub fn write_config(&self) {
        std::fs::write(
            self.bundle.join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }

    /// Runs `estiba --root <root> ARGS` and returns its output. Output goes
    /// through files, not pipes: a created container's init inherits the
    /// runtime's stdio, so a pipe would stay open as long as it lives.
    pub fn estiba(&self, args: &[&str]) -> Output {
        self.invoke(&self.bin, &self.root, args)
    }

    /// `exec -d --pid-file F ID ARGS...`, asserted to succeed; the pid.
    pub fn exec_detached(&self, id: &str, args: &[&str]) -> i64 {
        let pf = self.dir.join(format!("exec-{}.pid", next_seq()));
        let pf_arg = pf.to_string_lossy().into_owned();
        let mut all = vec!["exec", "-d", "--pid-file", &pf_arg, id];
        all.extend_from_slice(args);
        let out = self.estiba(&all);
        assert!(out.status.success(), "exec -d: {}", text(&out.stderr));
        std::fs::read_to_string(&pf)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    /// Runs the reference runtime, `runc --root <dir>/runc-state ARGS`, on
    /// this world's bundle, if runc is installed: what runc does is what a
    /// fidelity test expects of estiba. A container id of this world is
    /// given to runc as `ID-runc`, so the two runtimes' containers never
    /// share a default cgroup. Its containers go with the world.
    pub fn runc(&self, args: &[&str]) -> Option<Output> {
        let runc = runc_binary()?;
        let args: Vec<String> = args
            .iter()
            .map(|a| match self.ids.iter().any(|id| id == a) {
                true => format!("{a}-runc"),
                false => a.to_string(),
            })
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Some(self.invoke(&runc, &self.dir.join("runc-state"), &args))
    }

    fn invoke(&self, bin: &Path, root: &Path, args: &[&str]) -> Output {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let out_path = self.dir.join(format!(".out-{n}"));
        let err_path = self.dir.join(format!(".err-{n}"));
        let status = Command::new(bin)
            .arg("--root")
            .arg(root)
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out_path).expect("stdout file"))
            .stderr(std::fs::File::create(&err_path).expect("stderr file"))
            .status()
            .expect("run estiba");
        let out = Output {
            status,
            stdout: std::fs::read(&out_path).unwrap_or_default(),
            stderr: std::fs::read(&err_path).unwrap_or_default(),
        };
        let _ = std::fs::remove_file(out_path);
        let _ = std::fs::remove_file(err_path);
        out
    }

    /// Writes the config and runs the container in the foreground.
    pub fn run(&mut self, suffix: &str) -> Output {
        self.write_config();
        let id = self.id(suffix);
        let bundle = self.bundle.to_string_lossy().into_owned();
        self.estiba(&["run", "--bundle", &bundle, &id])
    }

    /// `run` that must succeed; returns stdout.
    pub fn run_ok(&mut self, suffix: &str) -> String {
        let out = self.run(suffix);
        assert!(
            out.status.success(),
            "run failed: {:?}\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A running container (`run -d`) for exec tests; returns its id.
    pub fn running(&mut self, suffix: &str) -> String {
        self.write_config();
        let id = self.id(suffix);
        let bundle = self.bundle.to_string_lossy().into_owned();
        let out = self.estiba(&["run", "-d", "--bundle", &bundle, &id]);
        assert!(out.status.success(), "run -d: {}", text(&out.stderr));
        id
    }

    /// `create` with the current config; returns the id.
    pub fn create(&mut self, suffix: &str, extra: &[&str]) -> (String, Output) {
        self.create_after(&[], suffix, extra)
    }

    /// `create` with global flags (`--systemd-cgroup`) before the command,
    /// where runc takes them.
    pub fn create_after(
        &mut self,
        globals: &[&str],
        suffix: &str,
        extra: &[&str],
    ) -> (String, Output) {
        self.write_config();
        let id = self.id(suffix);
        let bundle = self.bundle.to_string_lossy().into_owned();
        let mut args = globals.to_vec();
        args.extend(["create", "--bundle", bundle.as_str()]);
        args.extend_from_slice(extra);
        args.push(&id);
        let out = self.estiba(&args);
        (id, out)
    }

    /// `create` with the current config must fail: exit code 1, `want` in
    /// its one error line, and no state left behind.
    pub fn create_refused(&mut self, suffix: &str, want: &str) {
        let (id, out) = self.create(suffix, &[]);
        let err = text(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "accepted (want {want:?}): {err}"
        );
        assert!(err.contains(want), "want {want:?} in {err:?}");
        assert!(!self.root.join(&id).exists(), "state left for {id}");
    }

    pub fn state(&self, id: &str) -> Value {
        let out = self.estiba(&["state", id]);
        assert!(
            out.status.success(),
            "state {id}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("state is JSON")
    }

    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"].as_str().unwrap_or("").to_string()
    }

    /// The container's pids (`estiba ps`), polled until there are at least
    /// `n` (or 5 s pass: slow machines, emulated guests).
    pub fn wait_pids(&self, id: &str, n: usize) -> Vec<i64> {
        let mut pids = vec![];
        for _ in 0..500 {
            let out = self.estiba(&["ps", "--format", "json", id]);
            pids = serde_json::from_slice(&out.stdout).unwrap_or_default();
            if pids.len() >= n {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        pids
    }

    /// Polls until `id` reports `status` (or 5 s pass).
    pub fn wait_status(&self, id: &str, status: &str) -> bool {
        for _ in 0..500 {
            if self.status(id) == status {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        false
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.bin = binary();
        for id in &self.ids {
            let _ = self.estiba(&["delete", "--force", id]);
            // Whatever a failing test left of the container's cgroups goes
            // too: its processes killed, the directories removed.
            for dir in cgroup_dirs(id) {
                clear_cgroup_dir(&dir, 1);
            }
        }
        if self.dir.join("runc-state").exists() {
            let listed = self.runc(&["list", "-q"]).map(|o| text(&o.stdout));
            for id in listed.unwrap_or_default().lines() {
                let _ = self.runc(&["delete", "--force", id]);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// runc on PATH, the reference runtime, if installed.
pub fn runc_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("runc"))
        .find(|p| p.is_file())
}

/// The default config.json as `estiba spec` writes it.
pub fn estiba_spec() -> Value {
    let dir = std::env::temp_dir().join(format!(
        "estiba-it-spec-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new(binary())
        .args(["spec", "--bundle"])
        .arg(&dir)
        .output()
        .expect("estiba spec");
    assert!(
        out.status.success(),
        "estiba spec: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    v
}

/// The root of every cgroup hierarchy the host has mounted, each once
/// (v1's cpu and cpuacct may be links to one "cpu,cpuacct").
pub fn hierarchy_roots() -> Vec<PathBuf> {
    let top = Path::new("/sys/fs/cgroup");
    if top.join("cgroup.controllers").exists() {
        return vec![top.to_path_buf()];
    }
    let mut out: Vec<PathBuf> = vec![];
    if let Ok(entries) = std::fs::read_dir(top) {
        for e in entries.flatten() {
            let Ok(real) = std::fs::canonicalize(e.path()) else {
                continue;
            };
            if real.join("cgroup.procs").exists() && !out.contains(&real) {
                out.push(real);
            }
        }
    }
    out
}

/// Every cgroup v1/v2 directory named `name` under the host's hierarchies.
pub fn cgroup_dirs(name: &str) -> Vec<PathBuf> {
    hierarchy_roots()
        .into_iter()
        .map(|r| r.join(name))
        .filter(|p| p.exists())
        .collect()
}

/// A cgroup directory a test left: its processes killed, then its removal
/// retried (every 10 ms, for up to `secs` seconds) while they exit.
pub fn clear_cgroup_dir(dir: &Path, secs: u64) {
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    for pid in procs.lines().filter_map(|p| p.trim().parse::<i32>().ok()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::fs::remove_dir(dir).is_err() && dir.exists() && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Polls for `path` (every 20 ms) for up to `secs` seconds; whether it is
/// there.
pub fn wait_for_path(path: &Path, secs: u64) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !path.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    path.exists()
}

/// Whether `pid` is a live process (not gone, not a zombie).
pub fn alive(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z"))
}

/// The first line of stdout/stderr, for messages.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Gives `w` two block nodes of minors the loop driver has no device for,
/// and device rules that deny everything but reading the first:
/// /dev/ro-dev (7:250, read allowed) and /dev/denied (7:251). A denied open
/// is EPERM; an allowed one reaches the driver (ENXIO).
pub fn with_ruled_devices(w: &mut World) {
    w.config["linux"]["devices"] = json!([
        {"path": "/dev/ro-dev", "type": "b", "major": 7, "minor": 250},
        {"path": "/dev/denied", "type": "b", "major": 7, "minor": 251}
    ]);
    w.config["linux"]["resources"]["devices"] = json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "b", "major": 7, "minor": 250, "access": "r"}
    ]);
}

/// The first line of `out` that starts with `tag`, or "".
pub fn tagged_line(out: &str, tag: &str) -> String {
    out.lines()
        .find(|l| l.starts_with(tag))
        .unwrap_or_default()
        .to_string()
}

/// Namespace inode of `pid` (or "self") for `ns`.
pub fn ns_inode(pid: &str, ns: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Docker's default capabilities (what `docker run` grants).
pub const DOCKER_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// An engine's seccomp profile (docker/podman format: `archMap`,
/// `includes`/`excludes`) turned into the OCI `linux.seccomp` the engine
/// passes for a container with `caps`, on this machine (x86_64), the way
/// docker's and podman's own code does it.
pub fn engine_profile_to_oci(path: &Path, caps: &[&str]) -> Option<Value> {
    let p: Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let native = "SCMP_ARCH_X86_64";
    let go_arch = "amd64";
    let mut arches = vec![native.to_string()];
    for m in p["archMap"].as_array().into_iter().flatten() {
        if m["architecture"] == native {
            for s in m["subArchitectures"].as_array().into_iter().flatten() {
                arches.push(s.as_str()?.to_string());
            }
        }
    }
    let kernel: Vec<u32> = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()?
        .split(|c: char| !c.is_ascii_digit())
        .take(2)
        .filter_map(|x| x.parse().ok())
        .collect();
    let has = |list: &Value, c: &str| list.as_array().into_iter().flatten().any(|v| v == c);
    let mut rules = vec![];
    for r in p["syscalls"].as_array().into_iter().flatten() {
        let inc = &r["includes"];
        let exc = &r["excludes"];
        if inc["arches"].as_array().is_some_and(|a| !a.is_empty()) && !has(&inc["arches"], go_arch)
        {
            continue;
        }
        if has(&exc["arches"], go_arch) {
            continue;
        }
        if inc["caps"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| !caps.contains(&c.as_str().unwrap_or("")))
        {
            continue;
        }
        if exc["caps"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| caps.contains(&c.as_str().unwrap_or("")))
        {
            continue;
        }
        if let Some(min) = inc["minKernel"].as_str() {
            let want: Vec<u32> = min.split('.').filter_map(|x| x.parse().ok()).collect();
            if kernel < want {
                continue;
            }
        }
        let mut rule = serde_json::json!({"names": r["names"], "action": r["action"]});
        if let Some(a) = r.get("args").filter(|a| !a.is_null()) {
            rule["args"] = a.clone();
        }
        if let Some(e) = r.get("errnoRet").filter(|e| !e.is_null()) {
            rule["errnoRet"] = e.clone();
        }
        rules.push(rule);
    }
    let mut out = serde_json::json!({"defaultAction": p["defaultAction"], "architectures": arches, "syscalls": rules});
    if let Some(e) = p.get("defaultErrnoRet").filter(|e| !e.is_null()) {
        out["defaultErrnoRet"] = e.clone();
    }
    Some(out)
}

pub const PODMAN_PROFILE: &str = "/usr/share/containers/seccomp.json";
pub const DOCKER_PROFILE: &str =
    "/usr/share/gocode/src/github.com/docker/docker/profiles/seccomp/default.json";

/// Whether the host is pure cgroup v2.
pub fn cgroup_v2() -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|m| {
            m.lines()
                .any(|l| l.contains(" /sys/fs/cgroup ") && l.contains(" - cgroup2 "))
        })
        .unwrap_or(false)
}

/// A file of the container's cgroup as seen from the host: the v1 file in
/// `controller`'s hierarchy, or the v2 one.
pub fn cgroup_file(path: &str, controller: &str, v1: &str, v2: &str) -> Option<String> {
    let rel = path.trim_start_matches('/');
    let p = if cgroup_v2() {
        format!("/sys/fs/cgroup/{rel}/{v2}")
    } else {
        format!("/sys/fs/cgroup/{controller}/{rel}/{v1}")
    };
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
}

impl World {
    /// Drops namespace `typ` from the config (the container shares the
    /// runtime's).
    pub fn without_namespace(&mut self, typ: &str) {
        let ns: Vec<Value> = self.config["linux"]["namespaces"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|n| n["type"] != typ)
            .cloned()
            .collect();
        self.config["linux"]["namespaces"] = Value::Array(ns);
    }
}

/// Accepts one connection on `listener` and receives what is sent with
/// SCM_RIGHTS (runc's console-socket protocol, the seccomp listener's): the
/// message body and the fds.
pub fn receive_fds(
    listener: &std::os::unix::net::UnixListener,
) -> (Vec<u8>, Vec<std::os::fd::OwnedFd>) {
    estiba_oci_conformance::fdpass::receive(listener).expect("receive SCM_RIGHTS")
}
