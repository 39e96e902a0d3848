//! `checkpoint` and `restore`: runc's flags onto the library's options.

use estiba_core::{CheckpointOptions, Container, CriuOptions, RestoreOptions};

use crate::cli::{CheckpointFlags, Cli, CriuFlags, RestoreFlags};
use crate::Failure;

/// runc's default image path: `checkpoint` in the current directory.
fn image_path(f: &CriuFlags) -> std::path::PathBuf {
    f.image_path.clone().unwrap_or_else(|| "checkpoint".into())
}

/// The flags both commands take.
fn criu_options(cli: &Cli, f: &CriuFlags) -> Result<CriuOptions, Failure> {
    let mut o = CriuOptions::default();
    o.tcp_established = f.tcp_established;
    o.ext_unix_sk = f.ext_unix_sk;
    o.shell_job = f.shell_job;
    o.file_locks = f.file_locks;
    o.manage_cgroups_mode = f.manage_cgroups_mode.clone();
    o.empty_ns = f.empty_ns.clone();
    o.auto_dedup = f.auto_dedup;
    o.lazy_pages = f.lazy_pages;
    o.criu = cli.criu.clone();
    Ok(o)
}

pub fn checkpoint(cli: &Cli, f: &CheckpointFlags) -> Result<u8, Failure> {
    let mut o = CheckpointOptions::new(image_path(&f.criu));
    o.page_server = f.page_server.as_deref().map(page_server).transpose()?;
    o.status_fd = f.status_fd.map(status_fd).transpose()?;
    o.criu = criu_options(cli, &f.criu)?;
    o.work_path = f.criu.work_path.clone();
    o.parent_path = f.parent_path.clone();
    o.leave_running = f.leave_running;
    o.tcp_skip_in_flight = f.tcp_skip_in_flight;
    o.link_remap = f.link_remap;
    o.pre_dump = f.pre_dump;
    Container::load(&cli.root, &f.id)?.checkpoint(&o)?;
    Ok(0)
}

pub fn restore(cli: &Cli, f: &RestoreFlags) -> Result<u8, Failure> {
    let mut o = RestoreOptions::new(&f.id, f.bundle.clone(), cli.root.clone());
    o.criu = criu_options(cli, &f.criu)?;
    o.image_path = image_path(&f.criu);
    o.work_path = f.criu.work_path.clone();
    o.pid_file = f.pid_file.clone();
    o.console_socket = f.console_socket.clone();
    o.lsm_profile = f.lsm_profile.clone();
    o.lsm_mount_context = f.lsm_mount_context.clone();
    o.systemd_cgroup = cli.systemd_cgroup;
    o.rootless = cli.rootless()?;
    if f.detach {
        estiba_core::restore(&o)?;
        return Ok(0);
    }
    let mut fg = estiba_core::ForegroundOptions::runc_run();
    fg.subreaper = !f.no_subreaper;
    let code = estiba_core::restore_foreground(&o, fg)?;
    Ok(code.clamp(0, 255) as u8)
}

/// runc's `--page-server ADDRESS:PORT` (the address may be empty: criu's
/// default, all addresses).
fn page_server(s: &str) -> Result<(String, u16), Failure> {
    let bad = || Failure::from(format!("--page-server {s:?}: want ADDRESS:PORT"));
    let (address, port) = s.rsplit_once(':').ok_or_else(bad)?;
    let port = port.parse().map_err(|_| bad())?;
    Ok((address.trim_matches(['[', ']']).to_string(), port))
}

/// `--status-fd N`: open and writable here, as runc checks.
fn status_fd(fd: i32) -> Result<i32, Failure> {
    let flags = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFL)
        .map_err(|e| Failure::from(format!("invalid --status-fd argument {fd}: {e}")))?;
    let mode = flags & libc::O_ACCMODE;
    if mode != libc::O_WRONLY && mode != libc::O_RDWR {
        return Err(format!("invalid --status-fd argument {fd}: not writable").into());
    }
    Ok(fd)
}
