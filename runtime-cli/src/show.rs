//! What `list`, `ps` and `events` print, in runc's formats.

use estiba_core::Container;

use crate::cli::Cli;
use crate::Failure;

/// A Go duration as runc takes it: "5s", "500ms", "1m", "1h".
fn duration(s: &str) -> Result<std::time::Duration, Failure> {
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
    let secs = match unit {
        "ns" => n / 1e9,
        "us" | "µs" => n / 1e6,
        "ms" => n / 1e3,
        "s" | "" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("invalid duration {s:?}").into()),
    };
    if secs <= 0.0 {
        return Err(format!("duration {s:?} must be positive").into());
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// `events`: one stats event, or a stats event every interval and an
/// "oom" event whenever the OOM killer strikes, until the container stops.
pub fn events(cli: &Cli, id: &str, once: bool, interval: &str) -> Result<(), Failure> {
    use std::io::Write;
    let every = duration(interval)?;
    let c = Container::load(&cli.root, id)?;
    // Each event goes out in one write: stdout's line buffer holds 1 KiB
    // and a stats event is longer, so writeln! split it, and a reader that
    // stopped the stream between the halves kept half an event.
    let print = |v: serde_json::Value| -> Result<(), Failure> {
        let mut line = v.to_string().into_bytes();
        line.push(b'\n');
        let mut out = std::io::stdout().lock();
        out.write_all(&line)
            .and_then(|_| out.flush())
            .map_err(|e| Failure::Msg(format!("write: {e}")))
    };
    let stats = |s: &estiba_core::events::Stats| serde_json::to_value(s).unwrap_or_default();
    if once {
        return print(estiba_core::event("stats", id, Some(stats(&c.stats()?))));
    }
    for e in c.events(every) {
        match e? {
            estiba_core::events::Event::Stats(s) => {
                print(estiba_core::event("stats", id, Some(stats(&s))))?
            }
            estiba_core::events::Event::Oom => print(estiba_core::event("oom", id, None))?,
            _ => {}
        }
    }
    Ok(())
}

/// `ps`: JSON is the pid list; a table is `ps`'s own output (default
/// `-ef`) kept to the container's processes.
pub fn ps(cli: &Cli, id: &str, format: &str, args: &[String]) -> Result<(), String> {
    let pids = Container::load(&cli.root, id)
        .and_then(|c| c.pids())
        .map_err(|e| e.to_string())?;
    match format {
        "json" => {
            out!(
                "{}",
                serde_json::to_string(&pids).map_err(|e| e.to_string())?
            );
            Ok(())
        }
        "table" => {
            let args: Vec<String> = if args.is_empty() {
                vec!["-ef".into()]
            } else {
                args.to_vec()
            };
            let out = std::process::Command::new("ps")
                .args(&args)
                .output()
                .map_err(|e| format!("run ps: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "ps {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            let text = String::from_utf8_lossy(&out.stdout);
            let mut lines = text.lines();
            let header = lines.next().unwrap_or("");
            let col = header
                .split_whitespace()
                .position(|h| h == "PID")
                .ok_or("ps output has no PID column")?;
            out!("{header}");
            for line in lines {
                let pid = line
                    .split_whitespace()
                    .nth(col)
                    .and_then(|p| p.parse::<i32>().ok());
                if pid.is_some_and(|p| pids.contains(&p)) {
                    out!("{line}");
                }
            }
            Ok(())
        }
        other => Err(format!(
            "invalid format option {other:?}: use table or json"
        )),
    }
}

pub fn list(cli: &Cli, format: &str, quiet: bool) -> Result<(), String> {
    let states = estiba_core::list(&cli.root).map_err(|e| e.to_string())?;
    if quiet {
        for s in &states {
            out!("{}", s.id);
        }
        return Ok(());
    }
    match format {
        "json" => out!(
            "{}",
            serde_json::to_string(&states).map_err(|e| e.to_string())?
        ),
        "table" => {
            let rows: Vec<[String; 6]> = std::iter::once(
                ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from),
            )
            .chain(states.iter().map(|s| {
                [
                    s.id.clone(),
                    s.pid.to_string(),
                    s.status.to_string(),
                    s.bundle.display().to_string(),
                    s.created.clone(),
                    s.owner.clone(),
                ]
            }))
            .collect();
            let widths: Vec<usize> = (0..6)
                .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0).max(9) + 3)
                .collect();
            for r in &rows {
                let line: String = r
                    .iter()
                    .zip(&widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect();
                out!("{}", line.trim_end());
            }
        }
        other => {
            return Err(format!(
                "invalid format option {other:?}: use table or json"
            ))
        }
    }
    Ok(())
}
