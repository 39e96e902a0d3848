//! `estiba`: the runc-compatible command line. Parses flags, calls
//! estiba-core, prints, logs, exits. No container logic lives here.

mod logging;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use estiba_core::{Container, CreateOptions};

#[derive(Parser)]
#[command(
    name = "estiba",
    about = "estiba: an OCI container runtime",
    disable_version_flag = true
)]
struct Cli {
    /// Root directory for container state
    #[arg(long, global = true, default_value = estiba_core::DEFAULT_ROOT)]
    root: PathBuf,
    /// Log file (default: stderr)
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Log format: text or json
    #[arg(long = "log-format", global = true, default_value = "text")]
    log_format: logging::Format,
    /// Log debug messages too
    #[arg(long, global = true)]
    debug: bool,
    /// Place containers through systemd: linux.cgroupsPath is slice:prefix:name, a transient scope unit
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    /// Rootless mode: auto, true or false (accepted for compatibility)
    #[arg(long, global = true, num_args = 0..=1, default_missing_value = "true", default_value = "auto")]
    rootless: String,
    /// Path to criu (accepted for compatibility; checkpointing is not supported)
    #[arg(long, global = true, hide = true)]
    criu: Option<String>,
    /// Print the version
    #[arg(short = 'v', long = "version")]
    version: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Args, Clone)]
struct CreateFlags {
    /// Path to the bundle directory
    #[arg(short = 'b', long, default_value = ".")]
    bundle: PathBuf,
    /// Unix socket to receive the pty master of a terminal container
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// File to write the init's pid to
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// Do not use pivot_root (for a rootfs on ramfs)
    #[arg(long = "no-pivot")]
    no_pivot: bool,
    /// Do not create a new session keyring
    #[arg(long = "no-new-keyring")]
    no_new_keyring: bool,
    /// Pass N more fds (3..3+N) to the container
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: u32,
    /// Accepted for compatibility (runc >= 1.2); not supported
    #[arg(long = "pidfd-socket", hide = true)]
    pidfd_socket: Option<PathBuf>,
    id: String,
}

#[derive(Args, Clone)]
struct ExecFlags {
    /// A process.json to run (as containerd sends it); other process flags are ignored
    #[arg(short = 'p', long)]
    process: Option<PathBuf>,
    /// Allocate a pseudo-terminal
    #[arg(short = 't', long)]
    tty: bool,
    /// Unix socket to receive the pty master
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// Return once the process runs
    #[arg(short = 'd', long)]
    detach: bool,
    /// File to write the process's host pid to
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// Working directory in the container
    #[arg(long)]
    cwd: Option<PathBuf>,
    /// Environment variable KEY=VALUE (repeatable)
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    /// uid[:gid]
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// Additional group id (repeatable)
    #[arg(short = 'g', long = "additional-gids")]
    additional_gids: Vec<u32>,
    /// Add a capability (repeatable)
    #[arg(short = 'c', long = "cap")]
    cap: Vec<String>,
    /// Set no_new_privs
    #[arg(long = "no-new-privs")]
    no_new_privs: bool,
    /// AppArmor profile (not supported: an error)
    #[arg(long)]
    apparmor: Option<String>,
    /// SELinux label (not supported: an error)
    #[arg(long = "process-label")]
    process_label: Option<String>,
    /// Pass N more fds (3..3+N) to the process
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: u32,
    /// Sub-cgroup to run in (cgroup v2)
    #[arg(long)]
    cgroup: Option<String>,
    /// Allow exec into a paused container
    #[arg(long = "ignore-paused")]
    ignore_paused: bool,
    id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

#[derive(Args, Clone)]
struct UpdateFlags {
    /// linux.resources JSON (as containerd sends it); "-" reads stdin
    #[arg(short = 'r', long)]
    resources: Option<PathBuf>,
    /// Memory limit in bytes
    #[arg(long)]
    memory: Option<String>,
    /// Memory plus swap limit in bytes (-1: unlimited)
    #[arg(long = "memory-swap")]
    memory_swap: Option<String>,
    /// Memory soft limit in bytes
    #[arg(long = "memory-reservation")]
    memory_reservation: Option<String>,
    /// CPU shares (relative weight)
    #[arg(long = "cpu-shares")]
    cpu_shares: Option<u64>,
    /// CPU CFS quota in microseconds (-1: unlimited)
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    cpu_quota: Option<i64>,
    /// CPU CFS period in microseconds
    #[arg(long = "cpu-period")]
    cpu_period: Option<u64>,
    /// CPU realtime runtime in microseconds
    #[arg(long = "cpu-rt-runtime")]
    cpu_rt_runtime: Option<i64>,
    /// CPU realtime period in microseconds
    #[arg(long = "cpu-rt-period")]
    cpu_rt_period: Option<u64>,
    /// CPUs to use (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    cpuset_cpus: Option<String>,
    /// Memory nodes to use
    #[arg(long = "cpuset-mems")]
    cpuset_mems: Option<String>,
    /// Maximum number of pids (-1: unlimited)
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    /// Block IO weight (10-1000)
    #[arg(long = "blkio-weight")]
    blkio_weight: Option<u16>,
    id: String,
}

#[derive(Subcommand)]
enum Command {
    /// Create a container (its process waits for `start`)
    Create(CreateFlags),
    /// Start a created container
    Start { id: String },
    /// Print a container's state as JSON
    State { id: String },
    /// Send a signal to a container's init (or all its processes)
    Kill {
        #[arg(short = 'a', long)]
        all: bool,
        id: String,
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Delete a stopped container (--force: stop it first)
    Delete {
        #[arg(short = 'f', long)]
        force: bool,
        id: String,
    },
    /// Create and start a container; in the foreground, wait and exit with its code
    Run {
        #[arg(short = 'd', long)]
        detach: bool,
        /// Keep the container's state after it exits
        #[arg(long)]
        keep: bool,
        #[command(flatten)]
        flags: CreateFlags,
    },
    /// List containers
    List {
        #[arg(short = 'f', long, default_value = "table")]
        format: String,
        #[arg(short = 'q', long)]
        quiet: bool,
    },
    /// Write a default config.json
    Spec {
        #[arg(short = 'b', long, default_value = ".")]
        bundle: PathBuf,
    },
    /// Print the runtime-spec features document
    Features,
    /// Run a new process in a running container
    Exec(ExecFlags),
    /// Freeze every process of a container
    Pause { id: String },
    /// Thaw a paused container
    Resume { id: String },
    /// List a container's processes (extra args go to ps)
    Ps {
        #[arg(short = 'f', long, default_value = "table")]
        format: String,
        id: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Change a container's resource limits (runc's flags, or --resources FILE|-)
    Update(UpdateFlags),
    /// Container events: stats every --interval and OOM kills (--stats: once)
    Events {
        /// Print the stats once and exit
        #[arg(long)]
        stats: bool,
        /// How often to print stats (Go duration: 5s, 500ms, 1m)
        #[arg(long, default_value = "5s")]
        interval: String,
        id: String,
    },
    /// Not supported yet: checkpoint, restore
    #[command(external_subcommand)]
    Other(Vec<String>),
}

/// Whether the command line may be create, run or exec: any argument equal
/// to one of those words. A false positive (a container named `run`) only
/// costs the re-exec; the check after parsing catches anything missed.
fn may_enter_a_container() -> bool {
    std::env::args_os()
        .skip(1)
        .any(|a| a == "create" || a == "run" || a == "exec")
}

fn main() -> ExitCode {
    // The CVE-2019-5736 protection before anything else, parsing included:
    // the first image does as little as it can before it is replaced.
    // A failure here is reported by the check below, once logging is set.
    if may_enter_a_container() {
        let _ = estiba_core::selfprotect::ensure_protected();
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // runc's convention: every failure exits 1; help is success.
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    logging::init(cli.log.clone(), cli.log_format, cli.debug);
    if cli.version {
        println!(
            "estiba version {}\nspec: {}",
            env!("CARGO_PKG_VERSION"),
            estiba_core::OCI_VERSION
        );
        return ExitCode::SUCCESS;
    }
    // Commands that put a process into a container run from a read-only
    // clone of this binary (CVE-2019-5736); nothing is done before this.
    if matches!(
        cli.command,
        Some(Command::Create(_) | Command::Run { .. } | Command::Exec(_))
    ) {
        if let Err(err) = estiba_core::selfprotect::ensure_protected() {
            logging::error(&err.to_string());
            return ExitCode::from(1);
        }
    }
    // runc exits 255 when exec itself fails, so a caller can tell that from
    // a process that exited 1; every other failure is 1.
    let (code, prefix) = match cli.command {
        Some(Command::Exec(_)) => (255, "exec failed: "),
        _ => (1, ""),
    };
    match dispatch(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(Failure::Msg(msg)) => {
            logging::error(&format!("{prefix}{msg}"));
            ExitCode::from(code)
        }
    }
}

/// Why a command failed.
enum Failure {
    Msg(String),
}

impl From<String> for Failure {
    fn from(s: String) -> Self {
        Failure::Msg(s)
    }
}

impl From<&str> for Failure {
    fn from(s: &str) -> Self {
        Failure::Msg(s.to_string())
    }
}

impl From<estiba_core::Error> for Failure {
    fn from(e: estiba_core::Error) -> Self {
        Failure::Msg(e.to_string())
    }
}

fn create_options(cli: &Cli, f: &CreateFlags) -> CreateOptions {
    let mut o = CreateOptions::new(f.id.clone(), f.bundle.clone());
    o.root = cli.root.clone();
    o.pid_file = f.pid_file.clone();
    o.console_socket = f.console_socket.clone();
    o.no_pivot = f.no_pivot;
    o.no_new_keyring = f.no_new_keyring;
    o.preserve_fds = f.preserve_fds;
    o.systemd_cgroup = cli.systemd_cgroup;
    o
}

fn dispatch(cli: &Cli) -> Result<u8, Failure> {
    let Some(cmd) = &cli.command else {
        return Err("no command given; see estiba --help".into());
    };
    match cmd {
        Command::Create(f) => {
            estiba_core::create(&create_options(cli, f))?;
        }
        Command::Start { id } => Container::load(&cli.root, id).and_then(|c| c.start())?,
        Command::State { id } => {
            let c = Container::load(&cli.root, id)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&c.state()).map_err(|x| x.to_string())?
            );
        }
        Command::Kill { all, id, signal } => {
            // 0 probes that the container's init exists, as kill(2) does.
            let sig = match signal.as_str() {
                "0" => 0,
                _ => estiba_core::signal::parse(signal)?,
            };
            Container::load(&cli.root, id).and_then(|c| c.kill(sig, *all))?;
        }
        Command::Delete { force, id } => match Container::load(&cli.root, id) {
            Ok(c) => c.delete(*force)?,
            // Engines delete --force once more after the container is gone.
            Err(estiba_core::Error::NotFound(_)) if *force => {
                Container::remove_incomplete(&cli.root, id)?
            }
            Err(err) => return Err(err.into()),
        },
        Command::Run {
            detach,
            keep,
            flags,
        } => {
            let opts = create_options(cli, flags);
            if *detach {
                estiba_core::create(&opts)?;
                if let Err(err) = Container::load(&cli.root, &flags.id).and_then(|c| c.start()) {
                    if let Ok(c) = Container::load(&cli.root, &flags.id) {
                        let _ = c.delete(true);
                    }
                    return Err(err.into());
                }
                return Ok(0);
            }
            let after = if *keep {
                estiba_core::AfterRun::Keep
            } else {
                estiba_core::AfterRun::Delete
            };
            let code = estiba_core::run_foreground(&opts, after)?;
            return Ok(code.clamp(0, 255) as u8);
        }
        Command::List { format, quiet } => list(cli, format, *quiet)?,
        Command::Exec(f) => return exec(cli, f),
        Command::Events {
            stats,
            interval,
            id,
        } => events(cli, id, *stats, interval)?,
        Command::Update(f) => {
            let resources = update_resources(f)?;
            Container::load(&cli.root, &f.id)?.update(&resources)?;
        }
        Command::Pause { id } => Container::load(&cli.root, id).and_then(|c| c.pause())?,
        Command::Resume { id } => Container::load(&cli.root, id).and_then(|c| c.resume())?,
        Command::Ps {
            format,
            id,
            ps_args,
        } => ps(cli, id, format, ps_args)?,
        Command::Spec { bundle } => {
            // `spec --rootless` arrives through the global --rootless flag.
            let rootless = cli.rootless == "true";
            let path = bundle.join("config.json");
            if path.exists() {
                return Err(format!("File {} exists. Remove it first", path.display()).into());
            }
            let ids = rootless.then(|| {
                (
                    nix::unistd::geteuid().as_raw(),
                    nix::unistd::getegid().as_raw(),
                )
            });
            let text = serde_json::to_string_pretty(&estiba_core::default_spec(ids))
                .map_err(|x| x.to_string())?;
            std::fs::write(&path, text + "\n")
                .map_err(|x| format!("write {}: {x}", path.display()))?;
        }
        Command::Features => {
            println!(
                "{}",
                serde_json::to_string_pretty(&estiba_core::features()).map_err(|x| x.to_string())?
            );
        }
        Command::Other(args) => {
            let name = args.first().map(String::as_str).unwrap_or("");
            return Err(
                format!("command {name:?} is not supported by this version of estiba").into(),
            );
        }
    }
    Ok(0)
}

fn exec(cli: &Cli, f: &ExecFlags) -> Result<u8, Failure> {
    let c = Container::load(&cli.root, &f.id)?;
    let process = match &f.process {
        Some(path) => {
            let text = estiba_core::read_input(path)?;
            estiba_core::parse_process(&text)
                .map_err(|e| format!("process {}: {e}", path.display()))?
        }
        None => {
            let flags = estiba_core::ProcessFlags {
                args: f.command.clone(),
                env: f.env.clone(),
                cwd: f.cwd.clone(),
                user: f.user.clone(),
                additional_gids: f.additional_gids.clone(),
                caps: f.cap.clone(),
                no_new_privs: f.no_new_privs,
                tty: f.tty,
                apparmor: f.apparmor.clone(),
                process_label: f.process_label.clone(),
            };
            let base = c.process()?;
            estiba_core::process_from_flags(base.as_ref(), &flags)?
        }
    };
    let mut opts = estiba_core::ExecOptions::new(process);
    opts.console_socket = f.console_socket.clone();
    opts.detach = f.detach;
    opts.pid_file = f.pid_file.clone();
    opts.preserve_fds = f.preserve_fds;
    opts.ignore_paused = f.ignore_paused;
    opts.sub_cgroup = f.cgroup.clone();
    match c.exec(&opts)? {
        estiba_core::ExecOutcome::Detached(_) => Ok(0),
        estiba_core::ExecOutcome::Exited(code) => Ok(code.clamp(0, 255) as u8),
    }
}

/// A Go duration as runc takes it: "5s", "500ms", "1m", "1h".
fn duration(s: &str) -> Result<std::time::Duration, Failure> {
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
    let secs = match unit {
        "ns" => n / 1e9,
        "us" | "µs" => n / 1e6,
        "ms" => n / 1e3,
        "s" | "" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("invalid duration {s:?}").into()),
    };
    if secs <= 0.0 {
        return Err(format!("duration {s:?} must be positive").into());
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// `events`: one stats event, or a stats event every interval and an
/// "oom" event whenever the OOM killer strikes, until the container stops.
fn events(cli: &Cli, id: &str, once: bool, interval: &str) -> Result<(), Failure> {
    use std::io::Write;
    let every = duration(interval)?;
    let c = Container::load(&cli.root, id)?;
    let print = |v: serde_json::Value| -> Result<(), Failure> {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{v}")
            .and_then(|_| out.flush())
            .map_err(|e| Failure::Msg(format!("write: {e}")))
    };
    if once {
        return print(estiba_core::event("stats", id, Some(c.stats()?)));
    }
    let mut ooms = c.oom_kills();
    let mut next = std::time::Instant::now();
    loop {
        // The status is read before the OOM count: when the OOM killer took
        // the init, its kill is counted before the container shows stopped,
        // so that last oom event is still printed.
        let stopped = c.status() == estiba_core::Status::Stopped;
        let now_ooms = c.oom_kills();
        if now_ooms > ooms {
            print(estiba_core::event("oom", id, None))?;
            ooms = now_ooms;
        }
        if stopped {
            return Ok(());
        }
        if std::time::Instant::now() >= next {
            match c.stats() {
                Ok(s) => print(estiba_core::event("stats", id, Some(s)))?,
                Err(_) if c.status() == estiba_core::Status::Stopped => return Ok(()),
                Err(e) => return Err(e.into()),
            }
            next += every;
        }
        // OOM kills are checked more often than stats are printed.
        std::thread::sleep(every.min(std::time::Duration::from_millis(200)));
    }
}

/// A memory size: bytes, or with k/m/g (as runc accepts), or -1.
fn bytes(s: &str) -> Result<i64, Failure> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    num.parse::<i64>()
        .map(|n| if n < 0 { n } else { n * mult })
        .map_err(|_| format!("invalid size {s:?}").into())
}

/// `update`'s flags (or --resources) as linux.resources.
fn update_resources(f: &UpdateFlags) -> Result<oci_spec::runtime::LinuxResources, Failure> {
    use serde_json::{json, Map, Value};
    if let Some(path) = &f.resources {
        let text = if path.as_os_str() == "-" {
            let mut s = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut s)
                .map_err(|e| format!("read stdin: {e}"))?;
            s
        } else {
            estiba_core::read_input(path)?
        };
        return serde_json::from_slice(&text).map_err(|e| format!("--resources: {e}").into());
    }
    let mut r = Map::new();
    let mut memory = Map::new();
    if let Some(v) = &f.memory {
        memory.insert("limit".into(), json!(bytes(v)?));
    }
    if let Some(v) = &f.memory_swap {
        memory.insert("swap".into(), json!(bytes(v)?));
    }
    if let Some(v) = &f.memory_reservation {
        memory.insert("reservation".into(), json!(bytes(v)?));
    }
    if !memory.is_empty() {
        r.insert("memory".into(), Value::Object(memory));
    }
    let mut cpu = Map::new();
    for (k, v) in [
        ("shares", f.cpu_shares.map(|v| json!(v))),
        ("quota", f.cpu_quota.map(|v| json!(v))),
        ("period", f.cpu_period.map(|v| json!(v))),
        ("realtimeRuntime", f.cpu_rt_runtime.map(|v| json!(v))),
        ("realtimePeriod", f.cpu_rt_period.map(|v| json!(v))),
        ("cpus", f.cpuset_cpus.as_ref().map(|v| json!(v))),
        ("mems", f.cpuset_mems.as_ref().map(|v| json!(v))),
    ] {
        if let Some(v) = v {
            cpu.insert(k.into(), v);
        }
    }
    if !cpu.is_empty() {
        r.insert("cpu".into(), Value::Object(cpu));
    }
    if let Some(v) = f.pids_limit {
        r.insert("pids".into(), json!({"limit": v}));
    }
    if let Some(v) = f.blkio_weight {
        r.insert("blockIO".into(), json!({"weight": v}));
    }
    if r.is_empty() {
        return Err("update: nothing to change (give --resources or a limit flag)".into());
    }
    serde_json::from_value(Value::Object(r)).map_err(|e| format!("update: {e}").into())
}

/// `ps`: JSON is the pid list; a table is `ps`'s own output (default
/// `-ef`) kept to the container's processes.
fn ps(cli: &Cli, id: &str, format: &str, args: &[String]) -> Result<(), String> {
    let pids = Container::load(&cli.root, id)
        .and_then(|c| c.pids())
        .map_err(|e| e.to_string())?;
    match format {
        "json" => {
            println!(
                "{}",
                serde_json::to_string(&pids).map_err(|e| e.to_string())?
            );
            Ok(())
        }
        "table" => {
            let args: Vec<String> = if args.is_empty() {
                vec!["-ef".into()]
            } else {
                args.to_vec()
            };
            let out = std::process::Command::new("ps")
                .args(&args)
                .output()
                .map_err(|e| format!("run ps: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "ps {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            let text = String::from_utf8_lossy(&out.stdout);
            let mut lines = text.lines();
            let header = lines.next().unwrap_or("");
            let col = header
                .split_whitespace()
                .position(|h| h == "PID")
                .ok_or("ps output has no PID column")?;
            println!("{header}");
            for line in lines {
                let pid = line
                    .split_whitespace()
                    .nth(col)
                    .and_then(|p| p.parse::<i32>().ok());
                if pid.is_some_and(|p| pids.contains(&p)) {
                    println!("{line}");
                }
            }
            Ok(())
        }
        other => Err(format!(
            "invalid format option {other:?}: use table or json"
        )),
    }
}

fn list(cli: &Cli, format: &str, quiet: bool) -> Result<(), String> {
    let states = estiba_core::list(&cli.root).map_err(|e| e.to_string())?;
    if quiet {
        for s in &states {
            println!("{}", s.id);
        }
        return Ok(());
    }
    match format {
        "json" => println!(
            "{}",
            serde_json::to_string(&states).map_err(|e| e.to_string())?
        ),
        "table" => {
            let rows: Vec<[String; 6]> = std::iter::once(
                ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from),
            )
            .chain(states.iter().map(|s| {
                [
                    s.id.clone(),
                    s.pid.to_string(),
                    s.status.to_string(),
                    s.bundle.display().to_string(),
                    s.created.clone(),
                    s.owner.clone(),
                ]
            }))
            .collect();
            let widths: Vec<usize> = (0..6)
                .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0).max(9) + 3)
                .collect();
            for r in &rows {
                let line: String = r
                    .iter()
                    .zip(&widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect();
                println!("{}", line.trim_end());
            }
        }
        other => {
            return Err(format!(
                "invalid format option {other:?}: use table or json"
            ))
        }
    }
    Ok(())
}
