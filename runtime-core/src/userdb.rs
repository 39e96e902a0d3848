//! The container's own /etc/passwd, read from inside its root (after
//! pivot_root or chroot) the way runc reads it: the process's HOME when its
//! environment has none.

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

/// The container's passwd file, if it is a readable regular file: an image
/// could put a fifo there to hang the init.
fn passwd() -> Option<String> {
    let bytes = crate::guard::read_input(std::path::Path::new("/etc/passwd")).ok()?;
    String::from_utf8(bytes).ok()
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
