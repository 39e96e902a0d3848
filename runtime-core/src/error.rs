//! One error type for the library. Messages are lowercase, one line, and name
//! what failed, as runc words them (engines match on some of that text).

use std::fmt;
use std::path::PathBuf;

use nix::errno::Errno;

/// An errno, displayed the way runc (Go's syscall package) prints it:
/// "no such file or directory", not "No such file or directory (os error 2)".
/// [`Os::errno`] gives the number; the field stays private so that `nix`'s
/// type is not part of this crate's API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Os(pub(crate) Errno);

impl fmt::Display for Os {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let desc = self.0.desc();
        let mut chars = desc.chars();
        if let Some(first) = chars.next() {
            write!(f, "{}{}", first.to_lowercase(), chars.as_str())?;
        }
        Ok(())
    }
}

impl From<Errno> for Os {
    fn from(e: Errno) -> Self {
        Os(e)
    }
}

impl From<&std::io::Error> for Os {
    fn from(e: &std::io::Error) -> Self {
        Os(Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
    }
}

impl std::error::Error for Os {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl Os {
    /// The errno.
    pub fn errno(&self) -> i32 {
        self.0 as i32
    }

    /// The same errno as a `std::io::Error`.
    pub fn io_error(&self) -> std::io::Error {
        std::io::Error::from_raw_os_error(self.errno())
    }
}

/// What went wrong. Each variant's message is one lowercase line in runc's
/// words (engines match on some of them); where an errno, an I/O error or a
/// JSON parse error is the cause, it is the error's `source()`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A container id that is not a name runc takes.
    #[error("invalid container ID format: {id:?}: {reason}")]
    InvalidId {
        /// The id given.
        id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No container of that id in the state root.
    #[error("container does not exist: {0}")]
    NotFound(String),
    /// The id is taken.
    #[error("container with given ID already exists: {0}")]
    Exists(String),
    /// A system call on `path` failed.
    #[error("{what} {path:?}: {err}")]
    Path {
        /// What was being done.
        what: &'static str,
        /// On what.
        path: PathBuf,
        /// The errno, also the `source()`.
        #[source]
        err: Os,
    },
    /// A system call failed.
    #[error("{context}: {err}")]
    Syscall {
        /// What was being done.
        context: String,
        /// The errno, also the `source()`.
        #[source]
        err: Os,
    },
    /// A JSON document did not parse (config.json, process.json, resources).
    #[error("invalid configuration: {what}: {source}")]
    Parse {
        /// Which document.
        what: String,
        /// The parser's error, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// A config runc would also call invalid (its words: engines and
    /// scripts match on "invalid configuration").
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Something the runtime did failed, with no errno to keep.
    #[error("{0}")]
    Sys(String),
    /// The cgroup layer's error.
    #[error(transparent)]
    Cgroup(#[from] estiba_cgroups::Error),
    /// A hook failed or timed out.
    #[error("{0}")]
    Hook(String),
    /// The operation does not fit the container's status.
    #[error("container {id} is {status}: {msg}")]
    State {
        /// The container.
        id: String,
        /// Its status.
        status: String,
        /// runc's words for the refusal.
        msg: &'static str,
    },
    /// The container's process failed while it was set up (its message).
    #[error("{0}")]
    Init(String),
    /// Not a signal name or number.
    #[error("invalid signal {0:?}")]
    Signal(String),
    /// A bounded wait ran out.
    #[error("{0}")]
    Timeout(String),
    /// A field or feature this runtime does not implement.
    #[error("{0}")]
    Unsupported(String),

    /// criu failed, with the end of its log.
    #[error("{0}")]
    Criu(String),
    /// The calling program runs from a writable executable, which a
    /// container process could reach (CVE-2019-5736): call
    /// [`crate::runtime::selfprotect::ensure_protected`] first thing in `main`.
    #[error("the runtime runs from a writable executable that container processes could reach (CVE-2019-5736): call estiba_core::selfprotect::ensure_protected() at the start of main")]
    NeedsSealedRuntime,
}

/// A result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A failed system call on a path: `"<what> <path>: <errno text>"`.
    pub fn path(what: &'static str, path: impl Into<PathBuf>, err: impl Into<Os>) -> Self {
        Error::Path {
            what,
            path: path.into(),
            err: err.into(),
        }
    }

    /// A failed system call with a free-form context.
    pub fn sys(context: impl fmt::Display, err: impl Into<Os>) -> Self {
        Error::Syscall {
            context: context.to_string(),
            err: err.into(),
        }
    }

    /// The errno behind this error, if one is.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Path { err, .. } | Error::Syscall { err, .. } => Some(err.errno()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_text_is_lowercase_without_os_error_suffix() {
        assert_eq!(Os(Errno::ENOENT).to_string(), "no such file or directory");
        assert_eq!(Os(Errno::EACCES).to_string(), "permission denied");
        let e = Error::path("open", "/x", Errno::ENOENT);
        assert_eq!(e.to_string(), "open \"/x\": no such file or directory");
    }
}
