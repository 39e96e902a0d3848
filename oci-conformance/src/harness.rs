//! Driving a runtime binary through the OCI command line: bundles with the
//! checker as their rootfs, create/start/state/kill/delete, waiting, and
//! cleaning up whatever a check leaves.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Why a check did not pass.
#[derive(Debug)]
pub enum Miss {
    Fail(String),
    Skip(String),
}

pub type Outcome = Result<(), Miss>;

pub fn fail<T>(msg: impl Into<String>) -> Result<T, Miss> {
    Err(Miss::Fail(msg.into()))
}

pub fn skip<T>(msg: impl Into<String>) -> Result<T, Miss> {
    Err(Miss::Skip(msg.into()))
}

/// `cond` or a failure saying `msg`.
pub fn ensure(cond: bool, msg: impl FnOnce() -> String) -> Outcome {
    if cond {
        Ok(())
    } else {
        Err(Miss::Fail(msg()))
    }
}

/// One run of the suite against one runtime.
pub struct Ctx {
    pub runtime: PathBuf,
    /// The runtime's `--root`, private to this run.
    pub root: PathBuf,
    /// The static checker, copied into every rootfs as /oci-checker.
    pub checker: PathBuf,
    /// Bundles live here.
    pub work: PathBuf,
    seq: AtomicU32,
}

impl Ctx {
    pub fn new(runtime: PathBuf, checker: PathBuf) -> std::io::Result<Ctx> {
        let work = std::env::temp_dir().join(format!("oci-conformance-{}", std::process::id()));
        std::fs::create_dir_all(work.join("root"))?;
        Ok(Ctx {
            runtime,
            root: work.join("root"),
            checker,
            work,
            seq: AtomicU32::new(0),
        })
    }

    /// A runtime command with our `--root`.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.runtime);
        c.arg("--root").arg(&self.root).args(args);
        c.stdin(Stdio::null());
        c
    }

    /// Runs a runtime command that must not outlive `timeout`.
    pub fn run(&self, args: &[&str]) -> Output {
        run_with_timeout(self.cmd(args), Duration::from_secs(30))
    }

    pub fn next_id(&self) -> String {
        format!(
            "oc{}-{}",
            std::process::id(),
            self.seq.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// A bundle whose process runs the checker with `args`.
    pub fn bundle(&self, args: &[&str]) -> Bundle<'_> {
        Bundle::new(self, args)
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

pub fn run_with_timeout(mut cmd: Command, timeout: Duration) -> Output {
    use std::os::unix::process::CommandExt;
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Output {
                status: std::os::unix::process::ExitStatusExt::from_raw(127 << 8),
                stdout: vec![],
                stderr: format!("spawn: {e}").into_bytes(),
            }
        }
    };
    let pgid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(out)) => out,
        _ => {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pgid),
                nix::sys::signal::Signal::SIGKILL,
            );
            let mut out = rx.recv().ok().and_then(Result::ok).unwrap_or(Output {
                status: std::os::unix::process::ExitStatusExt::from_raw(9),
                stdout: vec![],
                stderr: vec![],
            });
            out.stderr
                .extend_from_slice(format!("(killed after {timeout:?})").as_bytes());
            out
        }
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).trim().to_string()
}

/// A bundle directory: config.json (edited as JSON before `write`), rootfs
/// holding only the checker, and `shared/`, bind-mounted at /shared.
pub struct Bundle<'a> {
    pub ctx: &'a Ctx,
    pub id: String,
    pub dir: PathBuf,
    pub config: Value,
    created: bool,
}

impl<'a> Bundle<'a> {
    fn new(ctx: &'a Ctx, args: &[&str]) -> Bundle<'a> {
        let id = ctx.next_id();
        let dir = ctx.work.join(&id);
        let rootfs = dir.join("rootfs");
        for d in ["proc", "sys", "dev", "tmp", "shared", "etc"] {
            let _ = std::fs::create_dir_all(rootfs.join(d));
        }
        let _ = std::fs::create_dir_all(dir.join("shared"));
        if std::fs::hard_link(&ctx.checker, rootfs.join("oci-checker")).is_err() {
            let _ = std::fs::copy(&ctx.checker, rootfs.join("oci-checker"));
        }
        let mut argv = vec!["/oci-checker".to_string()];
        argv.extend(args.iter().map(|s| s.to_string()));
        let config = base_config(&id, &dir, argv);
        Bundle {
            ctx,
            id,
            dir,
            config,
            created: false,
        }
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    pub fn shared(&self) -> PathBuf {
        self.dir.join("shared")
    }

    /// The cgroup path every bundle asks for (one per container).
    pub fn cgroups_path(&self) -> String {
        self.config["linux"]["cgroupsPath"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub fn write(&self) {
        let _ = std::fs::write(
            self.dir.join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap_or_default(),
        );
    }

    /// `create`, with the container's stdio (inherited from the runtime)
    /// going to files in the bundle.
    pub fn create_with(&mut self, extra: &[&str]) -> Output {
        self.write();
        let out = |name: &str| {
            std::fs::File::create(self.dir.join(name))
                .map(Stdio::from)
                .unwrap_or(Stdio::null())
        };
        let bundle = self.dir.display().to_string();
        let mut args = vec!["create", "--bundle", bundle.as_str()];
        args.extend_from_slice(extra);
        args.push(&self.id);
        let mut cmd = self.ctx.cmd(&args);
        cmd.stdout(out("stdout")).stderr(out("stderr"));
        self.created = true;
        let status = match cmd.spawn() {
            Ok(mut c) => wait_child(&mut c, Duration::from_secs(30)),
            Err(e) => {
                let _ = std::fs::write(self.dir.join("stderr"), format!("spawn: {e}"));
                std::os::unix::process::ExitStatusExt::from_raw(127 << 8)
            }
        };
        Output {
            status,
            stdout: std::fs::read(self.dir.join("stdout")).unwrap_or_default(),
            stderr: std::fs::read(self.dir.join("stderr")).unwrap_or_default(),
        }
    }

    pub fn create(&mut self) -> Output {
        self.create_with(&[])
    }

    /// `create` that must succeed.
    pub fn created(&mut self) -> Outcome {
        let out = self.create();
        ensure(out.status.success(), || {
            format!("create failed: {}", text(&out.stderr))
        })
    }

    /// A runtime command on this container: `args[0]`, its flags, the ID,
    /// then positional arguments (`kill ID SIGNAL`), as runc parses them.
    pub fn op(&self, args: &[&str]) -> Output {
        let (flags, rest): (Vec<&str>, Vec<&str>) =
            args[1..].iter().partition(|a| a.starts_with('-'));
        let mut v = vec![args[0]];
        v.extend(flags);
        v.push(&self.id);
        v.extend(rest);
        self.ctx.run(&v)
    }

    pub fn start(&self) -> Output {
        self.op(&["start"])
    }

    pub fn started(&self) -> Outcome {
        let out = self.start();
        ensure(out.status.success(), || {
            format!("start failed: {}", text(&out.stderr))
        })
    }

    /// The runtime's `state`, parsed; None when it fails.
    pub fn state(&self) -> Option<Value> {
        let out = self.op(&["state"]);
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    pub fn status(&self) -> String {
        self.state()
            .and_then(|s| s["status"].as_str().map(str::to_string))
            .unwrap_or_else(|| "(none)".into())
    }

    pub fn wait_status(&self, want: &str) -> Outcome {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let now = self.status();
            if now == want {
                return Ok(());
            }
            if Instant::now() > deadline {
                return fail(format!("status stayed {now:?}, expected {want:?}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn delete(&mut self, force: bool) -> Output {
        let out = if force {
            self.op(&["delete", "--force"])
        } else {
            self.op(&["delete"])
        };
        if out.status.success() {
            self.created = false;
        }
        out
    }

    /// create, start, wait for exit; the container's stdout.
    pub fn run_to_end(&mut self) -> Result<String, Miss> {
        self.created()?;
        self.started()?;
        self.wait_status("stopped")?;
        let out = std::fs::read(self.dir.join("stdout")).unwrap_or_default();
        let out = String::from_utf8_lossy(&out).into_owned();
        let del = self.delete(false);
        ensure(del.status.success(), || {
            format!("delete failed: {}", text(&del.stderr))
        })?;
        Ok(out)
    }

    /// `run_to_end` of a `report` process, parsed.
    pub fn report(&mut self) -> Result<Value, Miss> {
        let out = self.run_to_end()?;
        serde_json::from_str(out.trim()).or_else(|_| {
            let err = std::fs::read(self.dir.join("stderr")).unwrap_or_default();
            fail(format!(
                "no report from the container: stdout {:?}, stderr {:?}",
                out,
                text(&err)
            ))
        })
    }

    pub fn set_args(&mut self, args: &[&str]) {
        let mut argv = vec![json!("/oci-checker")];
        argv.extend(args.iter().map(|a| json!(a)));
        self.config["process"]["args"] = Value::Array(argv);
    }

    /// Adds a hook at `stage` running the host's checker in hook mode.
    pub fn add_hook(&mut self, stage: &str, label: &str, extra: &[&str]) -> PathBuf {
        let log = self.shared().join("hooks.log");
        let path = if stage == "startContainer" {
            // Resolved in the container: its copy of the checker.
            "/oci-checker".to_string()
        } else {
            self.ctx.checker.display().to_string()
        };
        let log_arg = if stage == "startContainer" {
            "/shared/hooks.log".to_string()
        } else {
            log.display().to_string()
        };
        let mut args = vec![json!(label), json!("hook"), json!(log_arg)];
        args.extend(extra.iter().map(|a| json!(a)));
        let hooks = &mut self.config["hooks"];
        if hooks.is_null() {
            *hooks = json!({});
        }
        let list = &mut hooks[stage];
        if list.is_null() {
            *list = json!([]);
        }
        if let Some(l) = list.as_array_mut() {
            l.push(json!({ "path": path, "args": args, "env": [format!("HOOK_STAGE={stage}")] }));
        }
        log
    }

    /// The hook log: one JSON object per hook run.
    pub fn hook_log(&self) -> Vec<Value> {
        std::fs::read_to_string(self.shared().join("hooks.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Hook labels in the order they ran.
    pub fn hook_order(&self) -> Vec<String> {
        self.hook_log()
            .iter()
            .map(|h| h["argv"][0].as_str().unwrap_or("?").to_string())
            .collect()
    }

    pub fn linux(&mut self) -> &mut Value {
        &mut self.config["linux"]
    }

    pub fn process(&mut self) -> &mut Value {
        &mut self.config["process"]
    }
}

impl Drop for Bundle<'_> {
    fn drop(&mut self) {
        if self.created {
            let _ = self.op(&["delete", "--force"]);
        }
        crate::cgroup::remove(&self.cgroups_path());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn wait_child(c: &mut std::process::Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(st)) = c.try_wait() {
            return st;
        }
        if Instant::now() > deadline {
            let _ = c.kill();
            return c
                .wait()
                .unwrap_or(std::os::unix::process::ExitStatusExt::from_raw(9));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// What runc's `spec` would write, made small: the checker as the process,
/// the usual mounts, five namespaces, a cgroup per container.
fn base_config(id: &str, dir: &Path, args: Vec<String>) -> Value {
    let caps = json!([
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FOWNER",
        "CAP_KILL",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_NET_BIND_SERVICE",
        "CAP_AUDIT_WRITE"
    ]);
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": args,
            "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "OCI_CONFORMANCE=1"],
            "cwd": "/",
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps
            },
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": false },
        "hostname": "oci-conformance",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
              "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
              "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs",
              "options": ["nosuid", "noexec", "nodev", "ro"] },
            { "destination": "/shared", "type": "bind", "source": dir.join("shared"),
              "options": ["rbind", "rw"] }
        ],
        "linux": {
            "namespaces": [
                { "type": "pid" }, { "type": "network" }, { "type": "ipc" },
                { "type": "uts" }, { "type": "mount" }
            ],
            "cgroupsPath": format!("/{id}"),
            "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list"],
            "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}

/// A process holding fresh network, uts and ipc namespaces.
pub struct Holder(std::process::Child);

impl Holder {
    pub fn new() -> Result<Holder, Miss> {
        let child = std::process::Command::new("unshare")
            .args(["--net", "--uts", "--ipc", "sleep", "60"])
            .spawn()
            .or_else(|e| fail(format!("unshare: {e}")))?;
        let h = Holder(child);
        // Bounded, but not tight: making a network namespace waits for the
        // kernel's cleanup of those the tests before left (one second was
        // not enough once in the cgroup v2 guest).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if h.ns("net") != crate::checks::own_ns("network") && !h.ns("net").is_empty() {
                return Ok(h);
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        fail("the namespace holder did not unshare within 10 s")
    }
    pub fn path(&self, t: &str) -> String {
        format!("/proc/{}/ns/{t}", self.0.id())
    }
    pub fn ns(&self, t: &str) -> String {
        std::fs::read_link(self.path(t))
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
