//! `--log` / `--log-format`: errors (and, with `--debug`, debug lines) as
//! text or as JSON lines `{"level","msg","time"}` — containerd shows its
//! user the last `error` line of that file.

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

struct Config {
    /// Opened once, here, in the caller's mount namespace: an exec'd
    /// process's setup runs inside the container, where the path would
    /// name another file (or none, and the lines would land on the
    /// process's stderr).
    file: Option<std::fs::File>,
    format: Format,
}

static CONFIG: OnceLock<Config> = OnceLock::new();

pub fn init(path: Option<PathBuf>, format: Format, debug: bool) {
    let file = path.and_then(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .inspect_err(|e| {
                let _ = writeln!(std::io::stderr(), "estiba: open log {}: {e}", p.display());
            })
            .ok()
    });
    if let Some(f) = &file {
        estiba_core::log::keep_fd_open(std::os::fd::AsRawFd::as_raw_fd(f));
    }
    let _ = CONFIG.set(Config { file, format });
    static LOGGER: CliLogger = CliLogger;
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(if debug {
            log::LevelFilter::Debug
        } else {
            log::LevelFilter::Warn
        });
    }
}

/// The library's lines, as runc's logrus writes them.
struct CliLogger;

impl log::Log for CliLogger {
    fn enabled(&self, meta: &log::Metadata) -> bool {
        meta.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            log::Level::Error => "error",
            log::Level::Warn => "warning",
            log::Level::Info => "info",
            log::Level::Debug | log::Level::Trace => "debug",
        };
        write(level, &record.args().to_string());
    }

    fn flush(&self) {}
}

fn line(format: Format, level: &str, msg: &str) -> String {
    let time = estiba_core::now_rfc3339();
    match format {
        Format::Json => {
            serde_json::json!({"level": level, "msg": msg, "time": time}).to_string() + "\n"
        }
        Format::Text => format!("time={time:?} level={level} msg={msg:?}\n"),
    }
}

fn write(level: &str, msg: &str) {
    let Some(cfg) = CONFIG.get() else { return };
    let text = line(cfg.format, level, msg);
    match &cfg.file {
        // One write per line: O_APPEND keeps lines from processes whole.
        Some(f) => {
            let _ = (&*f).write_all(text.as_bytes());
        }
        None => {
            let _ = std::io::stderr().write_all(text.as_bytes());
        }
    }
}

/// An error: to the log file (if any) in its format, and always one plain
/// line on stderr.
pub fn error(msg: &str) {
    if let Some(cfg) = CONFIG.get() {
        if cfg.file.is_some() {
            write("error", msg);
        }
    }
    let _ = writeln!(std::io::stderr(), "estiba: {msg}");
}

/// A warning: to the log (stderr without `--log`), as runc's logrus does.
pub fn warning(msg: &str) {
    write("warning", msg);
}
