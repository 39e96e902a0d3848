//! `estiba`: the runc-compatible command line. Parses flags, calls
//! estiba-core, prints, logs, exits. No container logic lives here.

// Our own C `main` in place of std's start-up: std's reads /proc/self/maps
// for the main thread's stack bounds (glibc's pthread_getattr_np, which
// pulls ~100 KB of scanf and strtod into a static binary) and sets up a
// stack-overflow handler: 12 system calls at every command. What of it we
// rely on is done in `main` below. (Unit tests keep libtest's own main.)
#![cfg_attr(not(test), no_main)]

/// `println!` for what a command prints: a reader that went away (`| head`)
/// ends the command quietly, as a pipe's end does for runc, instead of
/// panicking.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write;
        if let Err(e) = writeln!(std::io::stdout(), $($t)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}

mod cli;
mod criu;
mod logging;
mod show;
mod update;

use cli::{Cli, Command, CreateFlags, ExecFlags};
use estiba_core::{Container, CreateOptions};

/// Whether the command line may be create, run or exec: any argument equal
/// to one of those words. A false positive (a container named `run`) only
/// costs the re-exec; the check after parsing catches anything missed.
fn may_enter_a_container() -> bool {
    std::env::args_os()
        .skip(1)
        .any(|a| a == "create" || a == "run" || a == "exec")
}

/// The process's entry, called by glibc. std's argument list is filled
/// before this from glibc's init array, so `std::env::args` works.
#[cfg(not(test))]
#[no_mangle]
pub extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    estiba_core::program_start();
    // From here, above run()'s own frame: the range must lie within the
    // stack's mapping (at least 128 KiB below where the kernel started it).
    if may_enter_a_container() {
        estiba_core::prefault_stack();
    }
    let code = run();
    // process::exit flushes stdout, as returning from std's main does.
    std::process::exit(code.into())
}

#[cfg_attr(test, allow(dead_code))]
fn run() -> u8 {
    // The CVE-2019-5736 protection before anything else, parsing included:
    // the first image does as little as it can before it is replaced.
    // A failure here is reported by the check below, once logging is set.
    if may_enter_a_container() {
        let _ = estiba_core::selfprotect::ensure_protected();
    }
    let cli = match parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // runc's convention: every failure exits 1; help is success.
            return if e.use_stderr() { 1 } else { 0 };
        }
    };
    logging::init(cli.log.clone(), cli.log_format, cli.debug);
    log::debug!(target: "estiba", "command line parsed");
    if cli.version {
        out!(
            "estiba version {}\nspec: {}",
            env!("CARGO_PKG_VERSION"),
            estiba_core::OCI_VERSION
        );
        return 0;
    }
    // Commands that put a process into a container run from a read-only
    // clone of this binary (CVE-2019-5736); nothing is done before this.
    if matches!(
        cli.command,
        Some(Command::Create(_) | Command::Run { .. } | Command::Exec(_))
    ) {
        if let Err(err) = estiba_core::selfprotect::ensure_protected() {
            logging::error(&err.to_string());
            return 1;
        }
    }
    // runc exits 255 when exec itself fails, so a caller can tell that from
    // a process that exited 1; every other failure is 1.
    let (code, prefix) = match cli.command {
        Some(Command::Exec(_)) => (255, "exec failed: "),
        _ => (1, ""),
    };
    match dispatch(&cli) {
        Ok(code) => code,
        Err(Failure::Msg(msg)) => {
            logging::error(&format!("{prefix}{msg}"));
            code
        }
    }
}

/// The command line. clap's command tree and matches are left to the
/// process's exit: freeing them costs more than all the rest of `state`.
fn parse() -> Result<Cli, clap::Error> {
    let mut command = <Cli as clap::CommandFactory>::command();
    let parsed = match command.try_get_matches_from_mut(std::env::args_os()) {
        Ok(mut m) => {
            let cli = <Cli as clap::FromArgMatches>::from_arg_matches_mut(&mut m)
                .map_err(|e| e.format(&mut command));
            std::mem::forget(m);
            cli
        }
        Err(e) => Err(e),
    };
    std::mem::forget(command);
    parsed
}

/// Why a command failed.
pub(crate) enum Failure {
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

fn create_options(cli: &Cli, f: &CreateFlags) -> Result<CreateOptions, Failure> {
    let mut o = CreateOptions::new(f.id.clone(), f.bundle.clone());
    o.rootless = cli.rootless()?;
    o.root = cli.root.clone();
    o.pid_file = f.pid_file.clone();
    o.console_socket = f.console_socket.clone();
    o.no_pivot = f.no_pivot;
    o.no_new_keyring = f.no_new_keyring;
    o.preserve_fds = f.preserve_fds;
    o.systemd_cgroup = cli.systemd_cgroup;
    o.pidfd_socket = f.pidfd_socket.clone();
    o.foreground = estiba_core::ForegroundOptions::runc_run();
    Ok(o)
}

fn dispatch(cli: &Cli) -> Result<u8, Failure> {
    let Some(cmd) = &cli.command else {
        return Err("no command given; see estiba --help".into());
    };
    match cmd {
        Command::Create(f) => {
            estiba_core::create(&create_options(cli, f)?)?;
        }
        Command::Start { id } => Container::load(&cli.root, id).and_then(|c| c.start())?,
        Command::State { id } => {
            let c = Container::load(&cli.root, id)?;
            out!(
                "{}",
                serde_json::to_string_pretty(&c.state()).map_err(|x| x.to_string())?
            );
        }
        Command::Kill { all, id, signal } => {
            // 0 probes that the container's init exists, as kill(2) does.
            let sig: estiba_core::signal::Signal = signal.parse()?;
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
            no_subreaper,
            flags,
        } => return run_command(cli, flags, *detach, *keep, *no_subreaper),
        Command::List { format, quiet } => show::list(cli, format, *quiet)?,
        Command::Exec(f) => return exec(cli, f),
        Command::Events {
            stats,
            interval,
            id,
        } => show::events(cli, id, *stats, interval)?,
        Command::Update(f) => {
            let resources = update::resources(f)?;
            Container::load(&cli.root, &f.id)?.update(&resources)?;
        }
        Command::Pause { id } => Container::load(&cli.root, id).and_then(|c| c.pause())?,
        Command::Resume { id } => Container::load(&cli.root, id).and_then(|c| c.resume())?,
        Command::Ps {
            format,
            id,
            ps_args,
        } => show::ps(cli, id, format, ps_args)?,
        Command::Spec { bundle, rootless } => write_spec(cli, bundle, *rootless)?,
        Command::Features => {
            out!(
                "{}",
                serde_json::to_string_pretty(&estiba_core::features()).map_err(|x| x.to_string())?
            );
        }
        Command::Checkpoint(f) => return criu::checkpoint(cli, f),
        Command::Restore(f) => return criu::restore(cli, f),
        Command::Other(args) => {
            let name = args.first().map(String::as_str).unwrap_or("");
            return Err(
                format!("command {name:?} is not supported by this version of estiba").into(),
            );
        }
    }
    Ok(0)
}

/// `run`: in the foreground (its exit code ours), or with `--detach`
/// created and started (removed again when the start fails).
fn run_command(
    cli: &Cli,
    flags: &CreateFlags,
    detach: bool,
    keep: bool,
    no_subreaper: bool,
) -> Result<u8, Failure> {
    let mut opts = create_options(cli, flags)?;
    opts.foreground.subreaper = !no_subreaper;
    if detach {
        estiba_core::create(&opts)?;
        if let Err(err) = Container::load(&cli.root, &flags.id).and_then(|c| c.start()) {
            if let Ok(c) = Container::load(&cli.root, &flags.id) {
                let _ = c.delete(true);
            }
            return Err(err.into());
        }
        return Ok(0);
    }
    let after = if keep {
        estiba_core::AfterRun::Keep
    } else {
        estiba_core::AfterRun::Delete
    };
    let code = estiba_core::run_foreground(&opts, after)?;
    Ok(code.clamp(0, 255) as u8)
}

/// `spec`: a default config.json in `bundle` (never over one).
fn write_spec(cli: &Cli, bundle: &std::path::Path, rootless: bool) -> Result<(), Failure> {
    // `estiba --rootless true spec` as well as runc's `spec --rootless`.
    let rootless = rootless || cli.rootless()? == Some(true);
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
    let text =
        serde_json::to_string_pretty(&estiba_core::default_spec(ids)).map_err(|x| x.to_string())?;
    std::fs::write(&path, text + "\n").map_err(|x| format!("write {}: {x}", path.display()))?;
    Ok(())
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
            let mut additional_gids = vec![];
            for g in &f.additional_gids {
                additional_gids.push(
                    u32::try_from(*g)
                        .map_err(|_| format!("additional-gids must be a positive number {g}"))?,
                );
            }
            let mut flags = estiba_core::ProcessFlags::default();
            flags.args = f.command.clone();
            flags.env = f.env.clone();
            flags.cwd = f.cwd.clone();
            flags.additional_gids = additional_gids;
            flags.caps = f.cap.clone();
            flags.no_new_privs = f.no_new_privs;
            flags.tty = f.tty;
            flags.apparmor = f.apparmor.clone();
            flags.process_label = f.process_label.clone();
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
    opts.foreground = estiba_core::ForegroundOptions::runc_exec();
    opts.sub_cgroups = f.cgroup.clone();
    opts.pidfd_socket = f.pidfd_socket.clone();
    if let (None, Some(u)) = (&f.process, &f.user) {
        opts.user = Some(u.parse()?);
    }
    match c.exec(&opts)? {
        estiba_core::ExecOutcome::Detached(_) => Ok(0),
        estiba_core::ExecOutcome::Exited(code) => Ok(code.clamp(0, 255) as u8),
        _ => Ok(0),
    }
}
