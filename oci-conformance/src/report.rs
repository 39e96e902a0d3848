//! Results: TAP lines while running, a results file per runtime, and the
//! side-by-side table of several.

use std::collections::BTreeMap;

use crate::harness::Miss;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail,
    Skip,
}

impl Verdict {
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "skip",
        }
    }

    fn parse(s: &str) -> Option<Verdict> {
        match s {
            "pass" => Some(Verdict::Pass),
            "FAIL" => Some(Verdict::Fail),
            "skip" => Some(Verdict::Skip),
            _ => None,
        }
    }
}

pub struct Line {
    pub name: String,
    pub verdict: Verdict,
    pub why: String,
}

impl Line {
    pub fn from_outcome(name: &str, outcome: Result<(), Miss>) -> Line {
        let (verdict, why) = match outcome {
            Ok(()) => (Verdict::Pass, String::new()),
            Err(Miss::Fail(m)) => (Verdict::Fail, m),
            Err(Miss::Skip(m)) => (Verdict::Skip, m),
        };
        Line {
            name: name.to_string(),
            verdict,
            why: why.replace(['\n', '\t'], " "),
        }
    }

    /// The TAP line (plus a diagnostic for failures).
    pub fn tap(&self, n: usize) -> String {
        match self.verdict {
            Verdict::Pass => format!("ok {n} - {}", self.name),
            Verdict::Skip => format!("ok {n} - {} # SKIP {}", self.name, self.why),
            Verdict::Fail => format!("not ok {n} - {}\n  # {}", self.name, self.why),
        }
    }

    pub fn tsv(&self) -> String {
        format!("{}\t{}\t{}", self.verdict.word(), self.name, self.why)
    }

    pub fn from_tsv(l: &str) -> Option<Line> {
        let mut f = l.splitn(3, '\t');
        let verdict = Verdict::parse(f.next()?)?;
        Some(Line {
            verdict,
            name: f.next()?.to_string(),
            why: f.next().unwrap_or_default().to_string(),
        })
    }
}

/// `N passed, N failed, N skipped`.
pub fn summary(lines: &[Line]) -> String {
    let count = |v| lines.iter().filter(|l| l.verdict == v).count();
    format!(
        "{} passed, {} failed, {} skipped",
        count(Verdict::Pass),
        count(Verdict::Fail),
        count(Verdict::Skip)
    )
}

/// One row per check, one column per runtime, totals at the bottom.
pub fn table(columns: &[(String, Vec<Line>)]) -> String {
    let mut names: Vec<String> = vec![];
    let mut cells: BTreeMap<(String, usize), Verdict> = BTreeMap::new();
    for (i, (_, lines)) in columns.iter().enumerate() {
        for l in lines {
            if !names.contains(&l.name) {
                names.push(l.name.clone());
            }
            cells.insert((l.name.clone(), i), l.verdict);
        }
    }
    let width = names.iter().map(|n| n.len()).max().unwrap_or(10).min(110);
    let mut out = format!("{:width$}", "check");
    for (c, _) in columns {
        out += &format!(" {c:>8}");
    }
    out.push('\n');
    for n in &names {
        let shown: String = n.chars().take(width).collect();
        out += &format!("{shown:width$}");
        for i in 0..columns.len() {
            let v = cells.get(&(n.clone(), i)).map(|v| v.word()).unwrap_or("-");
            out += &format!(" {v:>8}");
        }
        out.push('\n');
    }
    out += &format!("{:width$}", "passed/failed/skipped");
    for (_, lines) in columns {
        let count = |v| lines.iter().filter(|l| l.verdict == v).count();
        out += &format!(
            " {:>8}",
            format!(
                "{}/{}/{}",
                count(Verdict::Pass),
                count(Verdict::Fail),
                count(Verdict::Skip)
            )
        );
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsv_round_trip_and_summary() {
        let lines = [
            Line::from_outcome("a", Ok(())),
            Line::from_outcome("b", Err(Miss::Fail("bad\nthing".into()))),
            Line::from_outcome("c", Err(Miss::Skip("no kernel".into()))),
        ];
        let back: Vec<Line> = lines
            .iter()
            .filter_map(|l| Line::from_tsv(&l.tsv()))
            .collect();
        assert_eq!(back.len(), 3);
        assert_eq!(back[1].verdict, Verdict::Fail);
        assert_eq!(back[1].why, "bad thing");
        assert_eq!(summary(&back), "1 passed, 1 failed, 1 skipped");
        assert!(lines[2].tap(3).ends_with("# SKIP no kernel"));
        assert!(lines[1].tap(2).starts_with("not ok 2 - b"));
    }

    #[test]
    fn table_lines_up_runtimes() {
        let a = vec![
            Line::from_outcome("x", Ok(())),
            Line::from_outcome("y", Ok(())),
        ];
        let b = vec![Line::from_outcome("y", Err(Miss::Fail("no".into())))];
        let t = table(&[("one".into(), a), ("two".into(), b)]);
        let rows: Vec<&str> = t.lines().collect();
        assert_eq!(rows.len(), 4);
        assert!(rows[1].starts_with('x') && rows[1].ends_with('-'));
        assert!(rows[2].contains("pass") && rows[2].ends_with("FAIL"));
        assert!(rows[3].ends_with("0/1/0"));
    }
}
