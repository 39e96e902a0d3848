//! runc's command line, flag for flag (runc 1.1 and the newer flags
//! engines pass), as clap definitions. Values that runc takes as strings
//! (sizes, negative numbers) are strings here too and parsed where used.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

// The global flags go before the subcommand, as runc's and crun's (both
// refuse them after it). Not clap's `global`: that copies each of them into
// every subcommand at every start (~0.07 ms of a command here).
#[derive(Parser)]
#[command(
    name = "estiba",
    about = "estiba: an OCI container runtime",
    disable_version_flag = true
)]
pub struct Cli {
    /// Root directory for container state (root's /run/estiba, else $XDG_RUNTIME_DIR/estiba)
    #[arg(long, default_value_os_t = estiba_core::default_root())]
    pub root: PathBuf,
    /// Log file (default: stderr)
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// Log format: text or json
    #[arg(long = "log-format", default_value = "text")]
    pub log_format: crate::logging::Format,
    /// Log debug messages too
    #[arg(long)]
    pub debug: bool,
    /// Place containers through systemd: linux.cgroupsPath is slice:prefix:name, a transient scope unit
    #[arg(long = "systemd-cgroup")]
    pub systemd_cgroup: bool,
    /// Whether the cgroup layer may go without a cgroup it cannot make: auto (when not root, or root only in a user namespace), true or false
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value = "auto")]
    pub rootless: String,
    /// Path to criu, for checkpoint and restore (default: criu on PATH)
    #[arg(long)]
    pub criu: Option<PathBuf>,
    /// Print the version
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// `--rootless`: None for auto; true and false as Go's ParseBool
    /// spells them (runc's parser).
    pub fn rootless(&self) -> Result<Option<bool>, String> {
        match self.rootless.as_str() {
            "auto" | "" => Ok(None),
            "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(Some(true)),
            "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(Some(false)),
            other => Err(format!(
                "invalid value {other:?} for --rootless: auto, true or false"
            )),
        }
    }
}

#[derive(Args, Clone)]
pub struct CreateFlags {
    /// Path to the bundle directory
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// Unix socket to receive the pty master of a terminal container
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Unix socket to receive a pidfd of the container's init
    #[arg(long = "pidfd-socket")]
    pub pidfd_socket: Option<PathBuf>,
    /// File to write the init's pid to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Do not use pivot_root (for a rootfs on ramfs)
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not create a new session keyring
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass N more fds (3..3+N) to the container
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    pub id: String,
}

/// The criu flags `checkpoint` and `restore` share (runc's).
#[derive(Args, Clone)]
pub struct CriuFlags {
    /// Where the criu images are
    #[arg(long = "image-path")]
    pub image_path: Option<PathBuf>,
    /// Where criu's log and work files go (default: the image path)
    #[arg(long = "work-path")]
    pub work_path: Option<PathBuf>,
    /// Allow open TCP connections
    #[arg(long = "tcp-established")]
    pub tcp_established: bool,
    /// Allow external unix sockets
    #[arg(long = "ext-unix-sk")]
    pub ext_unix_sk: bool,
    /// Allow shell jobs
    #[arg(long = "shell-job")]
    pub shell_job: bool,
    /// Handle file locks
    #[arg(long = "file-locks")]
    pub file_locks: bool,
    /// cgroups mode: soft (default), full, strict or ignore
    #[arg(long = "manage-cgroups-mode")]
    pub manage_cgroups_mode: Option<String>,
    /// Make this namespace empty instead of restoring it (network)
    #[arg(long = "empty-ns")]
    pub empty_ns: Vec<String>,
    /// Deduplicate memory images
    #[arg(long = "auto-dedup")]
    pub auto_dedup: bool,
    /// Restore memory lazily (userfaultfd)
    #[arg(long = "lazy-pages")]
    pub lazy_pages: bool,
}

#[derive(Args, Clone)]
pub struct CheckpointFlags {
    #[command(flatten)]
    pub criu: CriuFlags,
    /// Images of a previous pre-dump (relative to the image path)
    #[arg(long = "parent-path")]
    pub parent_path: Option<PathBuf>,
    /// Leave the container running after the checkpoint
    #[arg(long = "leave-running")]
    pub leave_running: bool,
    /// Skip in-flight TCP connections
    #[arg(long = "tcp-skip-in-flight")]
    pub tcp_skip_in_flight: bool,
    /// Link unlinked files back when possible
    #[arg(long = "link-remap")]
    pub link_remap: bool,
    /// Dump memory only, leaving the container running
    #[arg(long = "pre-dump")]
    pub pre_dump: bool,
    /// ADDRESS:PORT of a criu page server to send the memory to
    #[arg(long = "page-server")]
    pub page_server: Option<String>,
    /// A descriptor that gets a \0 once the lazy page server is ready
    #[arg(long = "status-fd")]
    pub status_fd: Option<i32>,
    pub id: String,
}

#[derive(Args, Clone)]
pub struct RestoreFlags {
    #[command(flatten)]
    pub criu: CriuFlags,
    /// Path to the bundle directory
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// Return once the container is restored
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// File to write the restored init's pid to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket to receive the pty master
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Do not become a subreaper while waiting
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
    /// Accepted as runc's (criu restores the mounts)
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// TYPE:NAME, the restored processes' AppArmor profile or SELinux label (default: as in the images)
    #[arg(long = "lsm-profile")]
    pub lsm_profile: Option<String>,
    /// SELinux mount context of the restored mounts (default: as in the images)
    #[arg(long = "lsm-mount-context")]
    pub lsm_mount_context: Option<String>,
    pub id: String,
}

#[derive(Args, Clone)]
pub struct ExecFlags {
    /// A process.json to run (as containerd sends it); other process flags are ignored
    #[arg(short = 'p', long)]
    pub process: Option<PathBuf>,
    /// Allocate a pseudo-terminal
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Unix socket to receive the pty master
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Unix socket to receive a pidfd of the new process
    #[arg(long = "pidfd-socket")]
    pub pidfd_socket: Option<PathBuf>,
    /// Return once the process runs
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// File to write the process's host pid to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Working directory in the container
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// Environment variable KEY=VALUE (repeatable)
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// USER[:GROUP], each a number or a name in the container's /etc/passwd and /etc/group
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Additional group id (repeatable)
    #[arg(short = 'g', long = "additional-gids", allow_negative_numbers = true)]
    pub additional_gids: Vec<i64>,
    /// Add a capability (repeatable)
    #[arg(short = 'c', long = "cap")]
    pub cap: Vec<String>,
    /// Set no_new_privs
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// AppArmor profile for the process
    #[arg(long)]
    pub apparmor: Option<String>,
    /// SELinux label for the process
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    /// Pass N more fds (3..3+N) to the process
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Existing sub-cgroup to run in: PATH, or CONTROLLER[,CONTROLLER]:PATH (v1; repeatable)
    #[arg(long)]
    pub cgroup: Vec<String>,
    /// Allow exec into a paused container
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    pub id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// `update`: runc's flags, values as runc parses them (sizes with units,
/// -1 for unlimited).
#[derive(Args, Clone)]
pub struct UpdateFlags {
    /// linux.resources JSON (as containerd sends it); "-" reads stdin. The other flags are then ignored
    #[arg(short = 'r', long)]
    pub resources: Option<PathBuf>,
    /// Block IO weight (10-1000)
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    /// CPU CFS period in microseconds
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<String>,
    /// CPU CFS quota in microseconds (-1: unlimited)
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<String>,
    /// CPU CFS burst in microseconds
    #[arg(long = "cpu-burst")]
    pub cpu_burst: Option<String>,
    /// CPU shares (relative weight)
    #[arg(long = "cpu-share", alias = "cpu-shares")]
    pub cpu_share: Option<String>,
    /// CPU realtime period in microseconds
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<String>,
    /// CPU realtime runtime in microseconds
    #[arg(long = "cpu-rt-runtime", allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<String>,
    /// 1: SCHED_IDLE for the cgroup, 0: the default
    #[arg(long = "cpu-idle")]
    pub cpu_idle: Option<String>,
    /// CPUs to use (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes to use
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Obsolete: ignored with a warning, as runc does
    #[arg(long = "kernel-memory", hide = true, allow_hyphen_values = true)]
    pub kernel_memory: Option<String>,
    /// Obsolete: ignored with a warning, as runc does
    #[arg(long = "kernel-memory-tcp", hide = true, allow_hyphen_values = true)]
    pub kernel_memory_tcp: Option<String>,
    /// Memory limit (bytes, or with k, m, g; -1: unlimited)
    #[arg(long, allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Memory plus swap limit (-1: unlimited)
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Maximum number of pids (-1: unlimited)
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Intel RDT L3 cache schema
    #[arg(long = "l3-cache-schema")]
    pub l3_cache_schema: Option<String>,
    /// Intel RDT memory bandwidth schema
    #[arg(long = "mem-bw-schema")]
    pub mem_bw_schema: Option<String>,
    pub id: String,
}

// Deferred: only the subcommand on the command line gets its flags built
// (the whole tree was 110 KB of heap and a third of a `state`'s
// instructions).
#[derive(Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// Create a container (its process waits for `start`)
    Create(CreateFlags),
    /// Start a created container
    Start { id: String },
    /// Print a container's state as JSON
    State { id: String },
    /// Send a signal to a container's init (or all its processes)
    Kill {
        /// Signal every process of the container (obsolete in runc; kept)
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
        /// Do not become a subreaper for the container's orphans while waiting
        #[arg(long = "no-subreaper")]
        no_subreaper: bool,
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
        /// A config for an unprivileged user (runc's `spec --rootless`)
        #[arg(long)]
        rootless: bool,
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
    /// Checkpoint a running container with criu
    Checkpoint(CheckpointFlags),
    /// Restore a container from a checkpoint with criu
    Restore(RestoreFlags),
    /// Any other command: refused by name
    #[command(external_subcommand)]
    Other(Vec<String>),
}
