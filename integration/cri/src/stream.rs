//! The CRI's streaming side, as `kubectl exec -it` uses it.

use std::time::Duration;

/// Exec with a tty through containerd's streaming server, as `kubectl
/// exec -it` reaches it: a WebSocket with Kubernetes' channel protocol
/// (each frame's first byte: 0 stdin, 1 stdout, 3 the exit status). The
/// shell is asked for its terminal and exits 4.
pub fn exec_tty(url: &str) -> Result<(String, String), String> {
    use tungstenite::client::IntoClientRequest;
    use tungstenite::Message;
    let ws_url = url.replacen("http://", "ws://", 1);
    let mut req = ws_url.into_client_request().map_err(|e| e.to_string())?;
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        tungstenite::http::HeaderValue::from_static("v4.channel.k8s.io"),
    );
    let host = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let stream = std::net::TcpStream::connect(&host).map_err(|e| format!("{host}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let (mut ws, _) = tungstenite::client(req, stream).map_err(|e| e.to_string())?;
    let mut input = vec![0u8];
    input.extend_from_slice(b"tty; exit 4\n");
    ws.send(Message::Binary(input)).map_err(|e| e.to_string())?;
    let (mut out, mut status) = (String::new(), String::new());
    while let Ok(m) = ws.read() {
        let Message::Binary(b) = m else { continue };
        match b.first() {
            Some(1) => out.push_str(&String::from_utf8_lossy(&b[1..])),
            Some(3) => status.push_str(&String::from_utf8_lossy(&b[1..])),
            _ => {}
        }
    }
    Ok((out, status))
}
