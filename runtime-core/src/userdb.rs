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
    let bytes = crate::guard::read_input(std::path::Path::new(path)).ok()?;
    String::from_utf8(bytes).ok()
}

fn passwd() -> Option<String> {
    db("/etc/passwd")
}

/// `USER[:GROUP]` when both parts are numbers (no lookup needed): the
/// uid, and the gid given or else `gid` (runc keeps the process's). None
/// when a part is a name. Empty parts are refused.
pub fn numeric_user(spec: &str, gid: u32) -> Result<Option<(u32, u32)>> {
    let (u, g) = split_user(spec)?;
    match (u.parse::<u32>(), g.map(str::parse::<u32>)) {
        (Ok(uid), None) => Ok(Some((uid, gid))),
        (Ok(uid), Some(Ok(gid))) => Ok(Some((uid, gid))),
        _ => Ok(None),
    }
}

fn split_user(spec: &str) -> Result<(&str, Option<&str>)> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if u.is_empty() || g.is_some_and(str::is_empty) {
        return Err(Error::Config(format!(
            "--user {spec:?}: expected USER[:GROUP]"
        )));
    }
    Ok((u, g))
}

/// `USER[:GROUP]` resolved in the container's own databases (run inside
/// its root): a name must have an entry; a named user without a group
/// takes its passwd gid, a numeric one keeps `gid`.
pub fn resolve_user(spec: &str, gid: u32) -> Result<(u32, u32)> {
    let (u, g) = split_user(spec)?;
    let missing = |what: &str, name: &str| {
        Error::Config(format!(
            "--user {spec:?}: no {what} {name:?} in the container's /etc/{what_file}",
            what_file = if what == "user" { "passwd" } else { "group" }
        ))
    };
    let (uid, user_gid) = match u.parse::<u32>() {
        Ok(uid) => (uid, gid),
        Err(_) => {
            let pw = passwd().unwrap_or_default();
            let found = entries(&pw).find(|e| e.0 == u).map(|e| (e.1, e.2));
            found.ok_or_else(|| missing("user", u))?
        }
    };
    let gid = match g {
        None => user_gid,
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => {
                let gr = db("/etc/group").unwrap_or_default();
                gr.lines()
                    .filter_map(|l| {
                        let f: Vec<&str> = l.split(':').collect();
                        (f.len() >= 3 && f[0] == g).then(|| f[2].parse::<u32>().ok())?
                    })
                    .next()
                    .ok_or_else(|| missing("group", g))?
            }
        },
    };
    Ok((uid, gid))
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
