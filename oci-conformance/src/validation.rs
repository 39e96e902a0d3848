//! Runs runtime-tools' `validation/*.t` programs (built elsewhere, found
//! through OCI_VALIDATION_DIR) against a runtime and compares the outcome
//! with the committed ledger, so a regression shows.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::harness::run_with_timeout;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramResult {
    pub name: String,
    pub passed: bool,
    pub ok: usize,
    pub not_ok: usize,
    pub skipped: usize,
    pub exit: i32,
    /// The first failing assertions, for the row.
    pub failing: Vec<String>,
    /// Containers the program left, which the runner deleted.
    pub left_behind: Vec<String>,
}

/// Reads a program's TAP: it passes when it exits 0 and no assertion failed.
/// Several programs report a failed lifecycle only as a YAML diagnostic
/// under a `1..0` plan (no test point at all): that counts as a failure.
pub fn parse_tap(name: &str, tap: &str, exit: i32) -> ProgramResult {
    let mut r = ProgramResult {
        name: name.to_string(),
        passed: false,
        ok: 0,
        not_ok: 0,
        skipped: 0,
        exit,
        failing: vec![],
        left_behind: vec![],
    };
    for line in tap.lines() {
        if let Some(rest) = line.strip_prefix("not ok") {
            r.not_ok += 1;
            if r.failing.len() < 3 {
                let what =
                    rest.trim_start_matches(|c: char| c.is_ascii_digit() || c == ' ' || c == '-');
                r.failing.push(what.trim().to_string());
            }
        } else if line.starts_with("ok") {
            r.ok += 1;
            if line.contains("# SKIP") || line.contains("# skip") {
                r.skipped += 1;
            }
        }
    }
    if exit != 0 && r.failing.is_empty() {
        let last = tap
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        r.failing.push(format!("exit {exit}: {}", last.trim()));
    }
    let lone_diagnostic = r.ok == 0 && tap.lines().any(|l| l == "  ---");
    if lone_diagnostic && r.failing.is_empty() {
        let err = tap
            .lines()
            .find_map(|l| l.trim().strip_prefix("\"error\": "))
            .unwrap_or("(diagnostic)");
        r.failing.push(err.chars().take(160).collect());
    }
    r.passed = exit == 0 && r.not_ok == 0 && !lone_diagnostic;
    r
}

/// Every `validation/<name>/<name>.t` under `dir`, by name.
pub fn programs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("validation"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let t = e.path().join(format!("{name}.t"));
            t.exists().then_some(t)
        })
        .collect();
    v.sort();
    v
}

/// The runtime's containers (in its default root), by `list -q`.
fn containers(runtime: &Path) -> Vec<String> {
    let mut cmd = Command::new(runtime);
    cmd.args(["list", "-q"]);
    let out = run_with_timeout(cmd, Duration::from_secs(30));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Runs one program, then force-deletes any container it left behind
/// (some programs cannot clean up, e.g. when the spec makes their delete
/// fail); those are named in the result.
pub fn run_program(dir: &Path, program: &Path, runtime: &Path) -> ProgramResult {
    let before = containers(runtime);
    let mut r = run_program_only(dir, program, runtime);
    for id in containers(runtime)
        .into_iter()
        .filter(|c| !before.contains(c))
    {
        let mut cmd = Command::new(runtime);
        cmd.args(["delete", "--force", &id]);
        run_with_timeout(cmd, Duration::from_secs(30));
        r.left_behind.push(id);
    }
    r
}

fn run_program_only(dir: &Path, program: &Path, runtime: &Path) -> ProgramResult {
    let name = program
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut cmd = Command::new(program);
    cmd.current_dir(dir).env("RUNTIME", runtime);
    let out = run_with_timeout(cmd, Duration::from_secs(300));
    let mut tap = String::from_utf8_lossy(&out.stdout).into_owned();
    tap.push_str(&String::from_utf8_lossy(&out.stderr));
    parse_tap(&name, &tap, out.status.code().unwrap_or(128))
}

/// The ledger: `program <TAB> verdict per runtime column ... <TAB> note`,
/// with a header line naming the columns.
pub struct Ledger {
    pub columns: Vec<String>,
    pub rows: Vec<(String, Vec<String>, String)>,
}

impl Ledger {
    pub fn parse(text: &str) -> Ledger {
        let mut columns = vec![];
        let mut rows = vec![];
        for line in text.lines() {
            if let Some(h) = line.strip_prefix("# program\t") {
                columns = h.split('\t').map(str::to_string).collect();
                columns.pop(); // "note"
                continue;
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let f: Vec<&str> = line.split('\t').collect();
            let verdicts = f
                .iter()
                .skip(1)
                .take(columns.len())
                .map(|s| s.to_string())
                .collect();
            let note = f.get(columns.len() + 1).unwrap_or(&"").to_string();
            rows.push((f[0].to_string(), verdicts, note));
        }
        Ledger { columns, rows }
    }

    /// What the ledger expects of `program` in `column`.
    pub fn expects(&self, program: &str, column: &str) -> Option<bool> {
        let i = self.columns.iter().position(|c| c == column)?;
        let (_, v, _) = self.rows.iter().find(|(p, _, _)| p == program)?;
        Some(v.get(i)? == "pass")
    }
}

/// Programs expected to pass that failed (regressions) and the reverse.
pub fn compare(
    results: &[ProgramResult],
    ledger: &Ledger,
    column: &str,
) -> (Vec<String>, Vec<String>) {
    let mut worse = vec![];
    let mut better = vec![];
    for r in results {
        match ledger.expects(&r.name, column) {
            Some(true) if !r.passed => worse.push(r.name.clone()),
            Some(false) if r.passed => better.push(r.name.clone()),
            None if !r.passed => worse.push(format!("{} (not in the ledger)", r.name)),
            _ => {}
        }
    }
    (worse, better)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tap_verdicts() {
        let ok = parse_tap("a", "TAP version 13\nok 1 - x\nok 2 # SKIP y\n1..2\n", 0);
        assert!(ok.passed);
        assert_eq!((ok.ok, ok.skipped, ok.not_ok), (2, 1, 0));
        let bad = parse_tap("b", "ok 1 - x\nnot ok 2 - wrong status\n1..2\n", 0);
        assert!(!bad.passed);
        assert_eq!(bad.failing, vec!["wrong status"]);
        let died = parse_tap("c", "TAP version 13\nfailed to create\n", 1);
        assert!(!died.passed);
        assert_eq!(died.failing, vec!["exit 1: failed to create"]);
        // Silent success (the runtime errored as it should) and a lone
        // failure diagnostic.
        assert!(parse_tap("d", "TAP version 13\n", 0).passed);
        let diag = parse_tap("e", "TAP version 13\n  ---\n  {\n    \"error\": \"Hooks MUST be called\"\n  }\n  ...\n1..0\n", 0);
        assert!(!diag.passed);
        assert_eq!(diag.failing, vec!["\"Hooks MUST be called\""]);
    }

    #[test]
    fn ledger_finds_regressions() {
        let ledger = Ledger::parse(
            "# comment\n# program\testiba\trunc\tnote\nkill\tpass\tpass\t\nstart\tfail\tfail\ttest bug\n",
        );
        assert_eq!(ledger.columns, vec!["estiba", "runc"]);
        assert_eq!(ledger.expects("start", "runc"), Some(false));
        let res = |name: &str, passed| ProgramResult {
            name: name.into(),
            passed,
            ok: 1,
            not_ok: 0,
            skipped: 0,
            exit: 0,
            failing: vec![],
            left_behind: vec![],
        };
        let (worse, better) = compare(
            &[res("kill", false), res("start", true), res("new", false)],
            &ledger,
            "estiba",
        );
        assert_eq!(worse, vec!["kill", "new (not in the ledger)"]);
        assert_eq!(better, vec!["start"]);
    }
}
