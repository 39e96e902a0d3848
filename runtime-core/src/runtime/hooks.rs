//! Running OCI hooks: the state JSON on stdin, args and env as given, a
//! timeout, and the hook's output in the error when it fails.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use oci_spec::runtime::Hook;

use crate::error::{Error, Os, Result};

/// Runs `hooks` in order; the first failure stops the list. A hook
/// without `env` gets the runtime's environment (runc: Go's nil Env).
pub fn run_all(stage: &str, hooks: &[Hook], state_json: &[u8]) -> Result<()> {
    run_all_with(stage, hooks, state_json, None)
}

/// `run_all` for the hooks that run in the container (createContainer,
/// startContainer): a hook without `env` gets the process's, as runc's
/// init gives it.
pub fn run_all_in(stage: &str, hooks: &[Hook], state_json: &[u8], env: &[String]) -> Result<()> {
    run_all_with(stage, hooks, state_json, Some(env))
}

fn run_all_with(
    stage: &str,
    hooks: &[Hook],
    state_json: &[u8],
    default_env: Option<&[String]>,
) -> Result<()> {
    for (i, h) in hooks.iter().enumerate() {
        run(h, state_json, default_env).map_err(|msg| {
            Error::Hook(format!("{stage} hook #{i} ({}): {msg}", h.path().display()))
        })?;
    }
    Ok(())
}

/// Runs a helper program (`args[0]` its name) as a hook would run, with an
/// empty environment and a bound: its output goes into the error.
pub fn run_program(
    path: &std::path::Path,
    args: &[String],
    timeout: Duration,
) -> std::result::Result<(), String> {
    let hook = oci_spec::runtime::HookBuilder::default()
        .path(path)
        .args(args.to_vec())
        .env(Vec::<String>::new())
        .timeout(timeout.as_secs().max(1) as i64)
        .build()
        .map_err(|e| e.to_string())?;
    run(&hook, b"", None)
}

/// Runs every hook of a stage whose failures are warnings (poststop): a
/// failing hook does not stop the ones after it.
pub fn run_each_warn(stage: &str, hooks: &[Hook], state_json: &[u8]) {
    for (i, h) in hooks.iter().enumerate() {
        if let Err(msg) = run(h, state_json, None) {
            crate::log::warn!("{stage} hook #{i} ({}): {msg}", h.path().display());
        }
    }
}

fn run(
    hook: &Hook,
    state_json: &[u8],
    default_env: Option<&[String]>,
) -> std::result::Result<(), String> {
    let mut child = command_for(hook, default_env)
        .spawn()
        .map_err(|e| format!("start: {}", Os::from(&e)))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is not an error.
        let _ = stdin.write_all(state_json);
    }
    let deadline = hook
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    let timed_out = || format!("timed out after {}s", hook.timeout().unwrap_or(0));
    let Some((out, err)) = read_until_closed(&mut child, deadline)? else {
        return Err(timed_out());
    };
    let status = loop {
        if let Some(s) = child
            .try_wait()
            .map_err(|e| format!("wait: {}", Os::from(&e)))?
        {
            break s;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(timed_out());
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    if status.success() {
        return Ok(());
    }
    let text = |b: &[u8]| String::from_utf8_lossy(b).trim().replace('\n', " ");
    Err(format!(
        "{status}, stdout: {}, stderr: {}",
        text(&out),
        text(&err)
    ))
}

/// The hook's command: its path, args (the first as argv[0]) and
/// environment (`"env": []` an empty one; none at all, `default_env` or
/// the runtime's), its stdio piped.
fn command_for(hook: &Hook, default_env: Option<&[String]>) -> Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(hook.path());
    let args = hook.args().as_deref().unwrap_or_default();
    if let Some((arg0, rest)) = args.split_first() {
        cmd.arg0(arg0).args(rest);
    }
    let env = match (hook.env().as_deref(), default_env) {
        (Some(env), _) => Some(env),
        (None, given) => given,
    };
    if let Some(env) = env {
        cmd.env_clear();
        for kv in env {
            if let Some((k, v)) = kv.split_once('=') {
                cmd.env(k, v);
            }
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// A hook's stdout and stderr.
type Output = (Vec<u8>, Vec<u8>);

/// The hook's stdout and stderr, both drained until they close (so a
/// chatty hook never blocks); `None`, the hook killed and reaped, when
/// `deadline` comes first.
fn read_until_closed(
    child: &mut std::process::Child,
    deadline: Option<Instant>,
) -> std::result::Result<Option<Output>, String> {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    while stdout.is_some() || stderr.is_some() {
        let timeout = match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Ok(None);
                }
                PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32)
                    .unwrap_or(PollTimeout::MAX)
            }
            None => PollTimeout::NONE,
        };
        let mut fds = Vec::new();
        if let Some(s) = &stdout {
            fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
        }
        if let Some(s) = &stderr {
            fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, timeout) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(format!("poll: {}", Os(e))),
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        let mut idx = 0;
        if stdout.is_some() {
            if ready[idx] && drain(&mut stdout, &mut out) {
                stdout = None;
            }
            idx += 1;
        }
        if stderr.is_some() && ready[idx] && drain(&mut stderr, &mut err) {
            stderr = None;
        }
    }
    Ok(Some((out, err)))
}

/// Reads what is there; true at end of file.
fn drain<R: Read>(r: &mut Option<R>, buf: &mut Vec<u8>) -> bool {
    let Some(reader) = r.as_mut() else {
        return true;
    };
    let mut chunk = [0u8; 4096];
    match reader.read(&mut chunk) {
        Ok(0) => true,
        Ok(n) => {
            if buf.len() < 64 * 1024 {
                buf.extend_from_slice(&chunk[..n]);
            }
            false
        }
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => false,
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(json: &str) -> Hook {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn hook_gets_state_on_stdin_and_args() {
        let dir = std::env::temp_dir().join(format!("estiba-hook-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out");
        let h = hook(&format!(
            r#"{{"path":"/bin/sh","args":["sh","-c","cat > {} ; echo \"$0 $1 $FOO\" >> {}","zero","one"],"env":["FOO=bar"]}}"#,
            out.display(),
            out.display()
        ));
        run_all("test", &[h], b"{\"id\":\"x\"}\n").unwrap();
        let got = std::fs::read_to_string(&out).unwrap();
        assert_eq!(got, "{\"id\":\"x\"}\nzero one bar\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn failing_hook_reports_its_stderr() {
        let h = hook(r#"{"path":"/bin/sh","args":["sh","-c","echo nope >&2; exit 3"]}"#);
        let err = run_all("prestart", &[h], b"{}").unwrap_err().to_string();
        assert!(err.contains("prestart hook #0"), "{err}");
        assert!(err.contains("nope"), "{err}");
        assert!(err.contains('3'), "{err}");
    }

    #[test]
    fn hook_timeout_kills_it() {
        let h = hook(r#"{"path":"/bin/sleep","args":["sleep","10"],"timeout":1}"#);
        let t = Instant::now();
        let err = run_all("poststop", &[h], b"{}").unwrap_err().to_string();
        assert!(err.contains("timed out"), "{err}");
        assert!(t.elapsed() < Duration::from_secs(5));
    }
}
