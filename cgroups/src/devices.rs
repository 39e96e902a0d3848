//! v1 device rules. The container's list is the spec's rules in order,
//! then the devices every container may use (the same set runc and
//! libcgroups allow), on top of a cgroup that starts by denying every
//! device (runc's meaning: a config without rules still gets only the
//! defaults). What the kernel holds is modelled (a default, allow or deny,
//! and exceptions with access bits), and only the writes that take the
//! cgroup from what `devices.list` says to that model are made: no
//! redundant rule, and no deny-all on a cgroup already in deny mode, so
//! that re-applying the rules never cuts a running process off its
//! devices, and a rule a parent forbids is never written for nothing.

use std::collections::BTreeMap;
use std::path::Path;

use oci_spec::runtime::LinuxDeviceCgroup;

use crate::devfilter::{Rule, DEV_BLOCK};
use crate::{open_for_writes, write_to, Error, Result};

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

/// The whole list, in order: a deny-all, the spec's rules, then the
/// defaults (also what the v2 program is compiled from, where "the last
/// matching rule decides" then leaves nothing allowed by omission).
pub fn effective(rules: &[LinuxDeviceCgroup]) -> Vec<Rule> {
    let deny_all = Rule {
        allow: false,
        typ: None,
        major: None,
        minor: None,
        access: 7,
    };
    std::iter::once(deny_all)
        .chain(rules.iter().filter_map(Rule::from_spec))
        .chain(
            DEFAULT_ALLOW
                .iter()
                .map(|(t, ma, mi, a)| Rule::allow_default(*t, *ma, *mi, a)),
        )
        .collect()
}

/// A device node pattern: 'c' or 'b', major and minor (None: any).
type Node = (char, Option<i64>, Option<i64>);

/// The kernel's state of a v1 devices cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
struct State {
    /// Allow-all mode, where exceptions are denials ("a *:* rwm" in
    /// devices.list; the kernel does not list those exceptions).
    allow_all: bool,
    /// Access bits per node: allowed in deny mode, denied in allow mode.
    exceptions: BTreeMap<Node, u32>,
}

// The kernel's access bits (as devfilter's), as letters.
const LETTERS: [(u32, char); 3] = [(2, 'r'), (4, 'w'), (1, 'm')];

fn letters(bits: u32) -> String {
    LETTERS
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, c)| *c)
        .collect()
}

fn number(n: Option<i64>) -> String {
    n.map(|n| n.to_string()).unwrap_or_else(|| "*".into())
}

fn line((t, major, minor): Node, bits: u32) -> String {
    format!("{t} {}:{} {}", number(major), number(minor), letters(bits))
}

impl State {
    /// A cgroup that denies every device.
    fn deny_all() -> State {
        State {
            allow_all: false,
            exceptions: BTreeMap::new(),
        }
    }

    /// What `devices.list` says (it lists the allowed exceptions in deny
    /// mode, or "a *:* rwm" alone in allow mode).
    fn from_list(text: &str) -> Result<State> {
        let mut s = State::deny_all();
        for l in text.lines().filter(|l| !l.trim().is_empty()) {
            let bad = || Error::Io {
                path: "devices.list".into(),
                msg: format!("unexpected line {l:?}"),
            };
            let f: Vec<&str> = l.split([' ', ':']).collect();
            let [t, major, minor, access] = f[..] else {
                return Err(bad());
            };
            let num = |s: &str| match s {
                "*" => Ok(None),
                n => n.parse::<i64>().map(Some).map_err(|_| bad()),
            };
            let bits = LETTERS
                .iter()
                .filter(|(_, c)| access.contains(*c))
                .fold(0, |a, (b, _)| a | b);
            match t.chars().next() {
                Some('a') => {
                    s.allow_all = true;
                    s.exceptions.clear();
                }
                Some(k @ ('c' | 'b')) => {
                    s.apply(true, Some((k, num(major)?, num(minor)?)), bits)?
                }
                _ => return Err(bad()),
            }
        }
        Ok(s)
    }

    /// The state the rules lead to from a deny-all cgroup.
    fn target(rules: &[Rule]) -> Result<State> {
        let mut s = State::deny_all();
        for r in rules {
            let node = r.typ.map(|t| {
                let k = if t == DEV_BLOCK { 'b' } else { 'c' };
                (k, r.major, r.minor)
            });
            s.apply(r.allow, node, r.access)?;
        }
        Ok(s)
    }

    /// One write of a rule, as the kernel takes it. Taking access away
    /// from a node that a wildcard exception also covers does nothing in
    /// the kernel (it only edits exact matches): refused, rather than
    /// leaving the access in place unseen (runc refuses the same).
    fn apply(&mut self, allow: bool, node: Option<Node>, bits: u32) -> Result<()> {
        let Some(node) = node else {
            self.allow_all = allow;
            self.exceptions.clear();
            return Ok(());
        };
        if allow != self.allow_all {
            *self.exceptions.entry(node).or_default() |= bits;
            return Ok(());
        }
        let (t, major, minor) = node;
        for wider in [(t, None, minor), (t, major, None), (t, None, None)] {
            if wider != node && self.exceptions.get(&wider).is_some_and(|b| b & bits != 0) {
                return Err(Error::Apply {
                    path: "devices".into(),
                    msg: format!(
                        "linux.resources.devices: the rule {:?} ({}) cannot take effect on cgroup v1: {:?} already covers it",
                        line(node, bits),
                        if allow { "allow" } else { "deny" },
                        line(wider, self.exceptions[&wider]),
                    ),
                });
            }
        }
        if let Some(have) = self.exceptions.get_mut(&node) {
            *have &= !bits;
            if *have == 0 {
                self.exceptions.remove(&node);
            }
        }
        Ok(())
    }

    /// The writes (allow?, line) that take the cgroup from `self` to
    /// `target`. A deny-all or allow-all comes first only when the mode
    /// changes, or when `self` is in allow mode (whose exceptions
    /// devices.list does not show).
    fn transition(&self, target: &State) -> Vec<(bool, String)> {
        let mut out = vec![];
        let empty = BTreeMap::new();
        let old = if self.allow_all || self.allow_all != target.allow_all {
            out.push((target.allow_all, "a *:* rwm".to_string()));
            &empty
        } else {
            &self.exceptions
        };
        // An exception lost or narrowed: written in the default's file.
        for (node, bits) in old {
            let dropped = bits & !target.exceptions.get(node).copied().unwrap_or(0);
            if dropped != 0 {
                out.push((target.allow_all, line(*node, dropped)));
            }
        }
        for (node, bits) in &target.exceptions {
            let gained = bits & !old.get(node).copied().unwrap_or(0);
            if gained != 0 {
                out.push((!target.allow_all, line(*node, gained)));
            }
        }
        out
    }
}

/// The container's device access as an allow list (for systemd's strict
/// device policy): each node pattern with its access bits (the kernel's,
/// as devfilter's), or None where every device is allowed. An allow-all
/// list with denials in it is no allow list: an error.
pub(crate) fn allow_list(rules: &[LinuxDeviceCgroup]) -> Result<Option<Vec<(Rule, String)>>> {
    let t = State::target(&effective(rules))?;
    if t.allow_all {
        if t.exceptions.is_empty() {
            return Ok(None);
        }
        return Err(Error::Systemd(
            "linux.resources.devices: denials under an allow-all rule cannot be kept by systemd's allow-list device policy".into(),
        ));
    }
    Ok(Some(
        t.exceptions
            .iter()
            .map(|(&(t, major, minor), &bits)| {
                let typ = Some(if t == 'b' {
                    DEV_BLOCK
                } else {
                    crate::devfilter::DEV_CHAR
                });
                let rule = Rule {
                    allow: true,
                    typ,
                    major,
                    minor,
                    access: bits,
                };
                (rule, letters(bits))
            })
            .collect(),
    ))
}

fn read_list(dir: &Path) -> Result<State> {
    let path = dir.join("devices.list");
    let text = crate::read_text(&path).map_err(|e| crate::io_err(&path, e))?;
    State::from_list(&text).map_err(|e| match e {
        Error::Io { msg, .. } => Error::Io { path, msg },
        other => other,
    })
}

/// Brings the v1 devices cgroup at `dir` to the container's list with the
/// fewest writes, then checks that the kernel holds what was asked (a
/// parent cgroup can refuse or narrow it).
pub fn apply_v1(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    let target = State::target(&effective(rules))?;
    // Each file opened once for all its rules (a fresh cgroup takes a
    // dozen allows): a path walk and a close fewer per rule.
    let (allow_path, deny_path) = (dir.join("devices.allow"), dir.join("devices.deny"));
    let (mut allow_file, mut deny_file) = (None, None);
    for (allow, l) in read_list(dir)?.transition(&target) {
        let (path, file) = match allow {
            true => (&allow_path, &mut allow_file),
            false => (&deny_path, &mut deny_file),
        };
        let f = match file {
            Some(f) => f,
            None => file.insert(open_for_writes(path)?),
        };
        write_to(f, path, &l)?;
    }
    let now = read_list(dir)?;
    if now != target && !(target.allow_all && now.allow_all) {
        return Err(Error::Apply {
            path: dir.to_path_buf(),
            msg: "linux.resources.devices: the devices cgroup does not hold the rules written (a parent cgroup narrows them)".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(rules: serde_json::Value) -> Vec<Rule> {
        let r: Vec<LinuxDeviceCgroup> = serde_json::from_value(rules).unwrap();
        r.iter().filter_map(Rule::from_spec).collect()
    }

    fn lines(w: &[(bool, String)]) -> Vec<String> {
        w.iter()
            .map(|(a, l)| format!("{} {l}", if *a { "allow" } else { "deny" }))
            .collect()
    }

    #[test]
    fn a_fresh_cgroup_gets_deny_all_then_the_allows() {
        let allow_all = State::from_list("a *:* rwm\n").unwrap();
        let t = State::target(&spec(serde_json::json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "rw"}
        ])))
        .unwrap();
        assert_eq!(
            lines(&allow_all.transition(&t)),
            ["deny a *:* rwm", "allow c 1:11 rw"]
        );
    }

    #[test]
    fn a_redundant_deny_is_never_written() {
        // deny-all, then a deny of something never allowed: nothing to
        // write for it (runc's update.bats writes such a config).
        let t = State::target(&spec(serde_json::json!([
            {"allow": false, "access": "rwm"},
            {"allow": false, "type": "c", "major": 1, "minor": 11, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}
        ])))
        .unwrap();
        let w = State::deny_all().transition(&t);
        assert_eq!(lines(&w), ["allow c 1:3 rwm"]);
        // An allow later taken back is not written either.
        let t2 = State::target(&spec(serde_json::json!([
            {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "rwm"},
            {"allow": false, "type": "c", "major": 1, "minor": 11, "access": "rwm"}
        ])))
        .unwrap();
        assert!(State::deny_all().transition(&t2).is_empty());
    }

    #[test]
    fn the_same_rules_again_write_nothing() {
        let rules = effective(
            &serde_json::from_value::<Vec<LinuxDeviceCgroup>>(
                serde_json::json!([{"allow": false, "access": "rwm"}]),
            )
            .unwrap(),
        );
        let t = State::target(&rules).unwrap();
        let listed: String = t
            .exceptions
            .iter()
            .map(|(n, b)| line(*n, *b) + "\n")
            .collect();
        let now = State::from_list(&listed).unwrap();
        assert_eq!(now, t);
        assert!(now.transition(&t).is_empty());
    }

    #[test]
    fn changes_are_minimal_and_narrowing_is_partial() {
        let now = State::from_list("c 1:3 rwm\nc 1:5 rwm\nc 136:* rwm\n").unwrap();
        let mut t = now.clone();
        t.apply(false, Some(('c', Some(1), Some(5))), 4).unwrap(); // no more w
        t.exceptions.remove(&('c', Some(136), None));
        t.apply(true, Some(('b', Some(8), Some(0))), 2).unwrap();
        assert_eq!(
            lines(&now.transition(&t)),
            ["deny c 1:5 w", "deny c 136:* rwm", "allow b 8:0 r"]
        );
    }

    #[test]
    fn a_hole_in_a_wildcard_is_refused() {
        let r = State::target(&spec(serde_json::json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "access": "rwm"},
            {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "w"}
        ])));
        assert!(r.is_err(), "{r:?}");
    }

    #[test]
    fn an_allow_all_target_from_allow_mode_resets_it() {
        let now = State::from_list("a *:* rwm\n").unwrap();
        let t =
            State::target(&spec(serde_json::json!([{"allow": true, "access": "rwm"}]))).unwrap();
        assert!(t.allow_all);
        // devices.list cannot show allow mode's denials: reset.
        assert_eq!(lines(&now.transition(&t)), ["allow a *:* rwm"]);
    }
}
