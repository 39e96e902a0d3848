//! v1 device rules: the spec's rules in order, then the devices every
//! container may use (the same set runc and libcgroups allow).

use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::{write, Result};

/// (type, major, minor, access) every container gets.
const DEFAULT_ALLOW: &[(char, Option<i64>, Option<i64>, &str)] = &[
    ('c', None, None, "m"),
    ('b', None, None, "m"),
    ('c', Some(1), Some(3), "rwm"),
    ('c', Some(1), Some(8), "rwm"),
    ('c', Some(1), Some(7), "rwm"),
    ('c', Some(5), Some(0), "rwm"),
    ('c', Some(1), Some(5), "rwm"),
    ('c', Some(1), Some(9), "rwm"),
    ('c', Some(5), Some(1), "rwm"),
    ('c', Some(136), None, "rwm"),
    ('c', Some(5), Some(2), "rwm"),
    ('c', Some(10), Some(200), "rwm"),
];

fn num(n: Option<i64>) -> String {
    n.map(|n| n.to_string()).unwrap_or_else(|| "*".into())
}

/// The devices.allow/deny line of a spec rule.
pub fn rule_line(d: &LinuxDeviceCgroup) -> String {
    let t = match d.typ() {
        Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => 'c',
        Some(LinuxDeviceType::B) => 'b',
        Some(LinuxDeviceType::P) => 'p',
        Some(LinuxDeviceType::A) | None => 'a',
    };
    if t == 'a' {
        return "a *:* rwm".replace("rwm", d.access().as_deref().unwrap_or("rwm"));
    }
    format!(
        "{t} {}:{} {}",
        num(d.major()),
        num(d.minor()),
        d.access().as_deref().unwrap_or("rwm")
    )
}

pub fn apply_v1(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    for d in rules {
        let file = if d.allow() {
            "devices.allow"
        } else {
            "devices.deny"
        };
        write(&dir.join(file), &rule_line(d))?;
    }
    for (t, major, minor, access) in DEFAULT_ALLOW {
        write(
            &dir.join("devices.allow"),
            &format!("{t} {}:{} {access}", num(*major), num(*minor)),
        )?;
    }
    Ok(())
}

/// The whole list v1 ends up with, in order, for the v2 program.
pub fn effective(rules: &[LinuxDeviceCgroup]) -> Vec<crate::devfilter::Rule> {
    rules
        .iter()
        .filter_map(crate::devfilter::Rule::from_spec)
        .chain(
            DEFAULT_ALLOW
                .iter()
                .map(|(t, ma, mi, a)| crate::devfilter::Rule::allow_default(*t, *ma, *mi, a)),
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let d: LinuxDeviceCgroup =
            serde_json::from_str(r#"{"allow":false,"access":"rwm"}"#).unwrap();
        assert_eq!(rule_line(&d), "a *:* rwm");
        let d: LinuxDeviceCgroup = serde_json::from_str(
            r#"{"allow":true,"type":"c","major":10,"minor":229,"access":"rw"}"#,
        )
        .unwrap();
        assert_eq!(rule_line(&d), "c 10:229 rw");
        let d: LinuxDeviceCgroup =
            serde_json::from_str(r#"{"allow":true,"type":"b","major":8}"#).unwrap();
        assert_eq!(rule_line(&d), "b 8:* rwm");
    }
}
