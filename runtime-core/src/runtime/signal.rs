//! Signal names and numbers as engines pass them: "KILL", "SIGKILL", "9",
//! and the real-time ones ("RTMIN+3", "SIGRTMAX-1").

use crate::error::{Error, Result};

const NAMES: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("IOT", libc::SIGIOT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("POLL", libc::SIGPOLL),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

fn rt_bounds() -> (i32, i32) {
    (libc::SIGRTMIN(), libc::SIGRTMAX())
}

/// Parses a signal as runc does; the default for `kill` is SIGTERM.
pub fn parse(s: &str) -> Result<i32> {
    let bad = || Error::Signal(s.to_string());
    let (rtmin, rtmax) = rt_bounds();
    if let Ok(n) = s.parse::<i32>() {
        return if n > 0 && n <= rtmax {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some((_, n)) = NAMES.iter().find(|(k, _)| *k == name) {
        return Ok(*n);
    }
    let rt = |base: i32, rest: &str| -> Result<i32> {
        if rest.is_empty() {
            return Ok(base);
        }
        let off: i32 = rest[1..].parse().map_err(|_| bad())?;
        let n = if rest.starts_with('+') {
            base + off
        } else if rest.starts_with('-') {
            base - off
        } else {
            return Err(bad());
        };
        if (rtmin..=rtmax).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        }
    };
    if let Some(rest) = name.strip_prefix("RTMIN") {
        return rt(rtmin, rest);
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        return rt(rtmax, rest);
    }
    Err(bad())
}

/// A signal `Container::kill` can send: 1 to SIGRTMAX, or 0 (nothing is
/// sent; the call says whether the init exists, as kill(2) does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signal(i32);

impl Signal {
    /// SIGKILL.
    pub const KILL: Signal = Signal(libc::SIGKILL);
    /// SIGTERM, `kill`'s default.
    pub const TERM: Signal = Signal(libc::SIGTERM);
    /// No signal: an existence probe.
    pub const PROBE: Signal = Signal(0);

    /// The signal numbered `n`, if there is one.
    pub fn new(n: i32) -> Result<Signal> {
        if (0..=libc::SIGRTMAX()).contains(&n) {
            Ok(Signal(n))
        } else {
            Err(Error::Signal(n.to_string()))
        }
    }

    /// Its number.
    pub fn number(self) -> i32 {
        self.0
    }
}

impl std::str::FromStr for Signal {
    type Err = Error;

    /// Names and numbers as runc takes them: "KILL", "SIGKILL", "9",
    /// "RTMIN+3", and "0" for the probe.
    fn from_str(s: &str) -> Result<Signal> {
        match s {
            "0" => Ok(Signal::PROBE),
            _ => parse(s).map(Signal),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{parse, Signal};

    #[test]
    fn the_signal_type() {
        assert_eq!("KILL".parse::<Signal>().unwrap(), Signal::KILL);
        assert_eq!("0".parse::<Signal>().unwrap(), Signal::PROBE);
        assert!(Signal::new(-1).is_err());
        assert!(Signal::new(libc::SIGRTMAX() + 1).is_err());
        assert_eq!(Signal::new(15).unwrap().number(), 15);
    }

    #[test]
    fn names_numbers_and_prefixes() {
        assert_eq!(parse("KILL").unwrap(), 9);
        assert_eq!(parse("SIGKILL").unwrap(), 9);
        assert_eq!(parse("sigterm").unwrap(), 15);
        assert_eq!(parse("9").unwrap(), 9);
        assert_eq!(parse("15").unwrap(), 15);
        assert_eq!(parse("SIGWINCH").unwrap(), 28);
        assert_eq!(parse("RTMIN").unwrap(), libc::SIGRTMIN());
        assert_eq!(parse("SIGRTMIN+2").unwrap(), libc::SIGRTMIN() + 2);
        assert_eq!(parse("RTMAX-1").unwrap(), libc::SIGRTMAX() - 1);
    }

    #[test]
    fn rejects_garbage() {
        for s in ["", "0", "-1", "999", "SIGFOO", "RTMIN+99", "RTMIN*2"] {
            assert!(parse(s).is_err(), "{s}");
        }
    }
}
