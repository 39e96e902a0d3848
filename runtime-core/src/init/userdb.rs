//! The container's own /etc/passwd and /etc/group, read from inside its
//! root (after pivot_root or chroot) the way runc reads them: the
//! process's HOME when its environment has none, and `exec -u NAME:GROUP`.

use crate::error::{Error, Result};

/// `passwd` entries as (name, uid, gid, home); malformed lines are skipped.
fn entries(text: &str) -> impl Iterator<Item = (&str, u32, u32, &str)> {
    text.lines().filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 7 {
            return None;
        }
        Some((f[0], f[2].parse().ok()?, f[3].parse().ok()?, f[5]))
    })
}

/// A database file of the container's, if it is a readable regular file:
/// an image could put a fifo there to hang the init.
fn db(path: &str) -> Option<String> {
    let bytes = crate::config::guard::read_input(std::path::Path::new(path)).ok()?;
    String::from_utf8(bytes).ok()
}

fn passwd() -> Option<String> {
    db("/etc/passwd")
}

/// A user or group: a number, or a name in the container's database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Id {
    /// A uid or gid.
    Num(u32),
    /// A name in the container's /etc/passwd or /etc/group.
    Name(String),
}

impl Id {
    fn parse(s: &str) -> Id {
        s.parse()
            .map(Id::Num)
            .unwrap_or_else(|_| Id::Name(s.to_string()))
    }
}

/// Who an exec'd process runs as (`exec -u USER[:GROUP]`). A numeric user
/// without a group keeps the process's gid (runc); a named one takes its
/// passwd entry's. Names are looked up inside the container.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExecUser {
    /// The user.
    pub user: Id,
    /// The group, if given.
    pub group: Option<Id>,
}

impl ExecUser {
    /// uid and gid as numbers.
    pub fn ids(uid: u32, gid: Option<u32>) -> ExecUser {
        ExecUser {
            user: Id::Num(uid),
            group: gid.map(Id::Num),
        }
    }

    /// The uid and gid when both are numbers (no lookup needed): the gid
    /// given or else `gid`.
    pub(crate) fn numeric(&self, gid: u32) -> Option<(u32, u32)> {
        match (&self.user, &self.group) {
            (Id::Num(u), None) => Some((*u, gid)),
            (Id::Num(u), Some(Id::Num(g))) => Some((*u, *g)),
            _ => None,
        }
    }

    /// uid and gid, names looked up in the container's databases (run
    /// inside its root): a name must have an entry.
    pub(crate) fn resolve(&self, gid: u32) -> Result<(u32, u32)> {
        let missing = |what: &str, file: &str, name: &str| {
            Error::Config(format!(
                "--user: no {what} {name:?} in the container's /etc/{file}"
            ))
        };
        let (uid, user_gid) = match &self.user {
            Id::Num(u) => (*u, gid),
            Id::Name(n) => {
                let pw = passwd().unwrap_or_default();
                let found = entries(&pw).find(|e| e.0 == n).map(|e| (e.1, e.2));
                found.ok_or_else(|| missing("user", "passwd", n))?
            }
        };
        let gid = match &self.group {
            None => user_gid,
            Some(Id::Num(g)) => *g,
            Some(Id::Name(n)) => {
                let gr = db("/etc/group").unwrap_or_default();
                gr.lines()
                    .filter_map(|l| {
                        let f: Vec<&str> = l.split(':').collect();
                        (f.len() >= 3 && f[0] == n).then(|| f[2].parse::<u32>().ok())?
                    })
                    .next()
                    .ok_or_else(|| missing("group", "group", n))?
            }
        };
        Ok((uid, gid))
    }
}

impl std::str::FromStr for ExecUser {
    type Err = Error;

    /// `USER[:GROUP]`, each a number or a name; empty parts are refused.
    fn from_str(spec: &str) -> Result<ExecUser> {
        let (u, g) = match spec.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (spec, None),
        };
        if u.is_empty() || g.is_some_and(str::is_empty) {
            return Err(Error::Config(format!(
                "--user {spec:?}: expected USER[:GROUP]"
            )));
        }
        Ok(ExecUser {
            user: Id::parse(u),
            group: g.map(Id::parse),
        })
    }
}

/// The name of `uid` in `passwd` text (the first match).
pub(crate) fn name_of(uid: u32, passwd: &str) -> Option<&str> {
    entries(passwd).find(|e| e.1 == uid).map(|e| e.0)
}

/// HOME for `uid`: its passwd entry's (the first match, empty included),
/// else `/`, as runc does.
pub fn home_of(uid: u32, passwd: Option<&str>) -> String {
    passwd
        .and_then(|t| entries(t).find(|e| e.1 == uid).map(|e| e.3.to_string()))
        .unwrap_or_else(|| "/".to_string())
}

/// `env` with HOME added from the container's passwd when it has none.
pub fn with_home(env: &[String], uid: u32) -> Vec<String> {
    let mut env = env.to_vec();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", home_of(uid, passwd().as_deref())));
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_from_the_first_entry_else_root() {
        let pw = "root:x:0:0:root:/root:/bin/sh\nbad line\nu:x:2000:2000::/home/u:/bin/sh\nv:x:2000:2000::/other:/bin/sh\ne:x:3000:3000:::/bin/sh\n";
        assert_eq!(home_of(0, Some(pw)), "/root");
        assert_eq!(home_of(2000, Some(pw)), "/home/u");
        assert_eq!(home_of(3000, Some(pw)), "");
        assert_eq!(home_of(1000, Some(pw)), "/");
        assert_eq!(home_of(0, None), "/");
    }
}
