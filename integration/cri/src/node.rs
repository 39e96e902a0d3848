//! What the node sees: HTTP to a pod, a process's cgroup files.

use std::io::{Read, Write};
use std::time::Duration;

/// One GET of `/` from the node, bounded; retried while the server starts.
pub fn http_get(ip: &str, port: u16) -> Result<String, String> {
    let addr: std::net::SocketAddr = format!("{ip}:{port}").parse().map_err(|e| format!("{e}"))?;
    let mut last = String::new();
    for _ in 0..50 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(mut s) => {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let req = format!("GET / HTTP/1.0\r\nHost: {ip}\r\n\r\n");
                s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
                let mut body = String::new();
                s.read_to_string(&mut body).map_err(|e| e.to_string())?;
                return Ok(body);
            }
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("GET http://{addr}/: {last}"))
}

/// A cgroup file of `pid`'s: v1 `controller`'s `v1` file, or v2's `v2`.
pub fn cgroup_file(pid: u32, controller: &str, v1: &str, v2: &str) -> Result<String, String> {
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).map_err(|e| e.to_string())?;
    for line in cg.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrls, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or(""));
        let file = if ctrls.split(',').any(|c| c == controller) {
            format!("/sys/fs/cgroup/{ctrls}{path}/{v1}")
        } else if ctrls.is_empty() && !cg.lines().any(|l| l.contains(controller)) {
            format!("/sys/fs/cgroup{path}/{v2}")
        } else {
            continue;
        };
        return std::fs::read_to_string(&file)
            .map(|s| s.trim().to_string())
            .map_err(|e| format!("{file}: {e}"));
    }
    Err(format!("no {controller} cgroup in {cg}"))
}
