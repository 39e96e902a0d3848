//! runc's checkpoint flags that change what criu may dump: each case is a
//! container criu refuses without the flag (the flag is shown to reach
//! criu), dumped with it, and restored into the same state.

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;

use super::*;

/// Whether someone holds an exclusive flock on `path` (tried from the
/// host, not blocking; a lock got is let go at once).
fn locked(path: &Path) -> bool {
    let f = std::fs::File::open(path).expect("open the lock file");
    // SAFETY: flock on a descriptor this function owns.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    r != 0
}

/// Whether `id` is still running after a refused checkpoint.
fn refused(w: &World, id: &str, args: &[&str], want: &str) {
    let o = w.estiba(args);
    let err = text(&o.stderr);
    assert!(!o.status.success(), "{args:?} was not refused");
    assert!(err.to_lowercase().contains(want), "{args:?}: {err}");
    assert_eq!(w.status(id), "running", "after a refused checkpoint");
}

/// A process holding a file lock: criu refuses it without --file-locks;
/// with the flag the lock goes with the dump (free on the host after it)
/// and is held again by the restored process.
#[test]
fn a_held_file_lock_is_dumped_with_file_locks_and_held_after_restore() {
    if !criu_works("a_held_file_lock_is_dumped_with_file_locks_and_held_after_restore") {
        return;
    }
    let mut w = World::new("criu-lock");
    let data = with_data(&mut w);
    w.install_probe();
    w.args(&["probe", "with-lock", "/data/lock", "sh", "-c", COUNT]);
    let Counting { id, bundle, rx, .. } = detached(&mut w, data.clone());
    latest(&rx, Duration::from_secs(1)).expect("counting");
    let lock = data.join("lock");
    assert!(locked(&lock), "the container does not hold the lock");
    let img = w.dir.join("img").to_string_lossy().into_owned();
    let dump = ["checkpoint", "--image-path", &img, &id];
    refused(&w, &id, &dump, "lock");
    ok(
        &w.estiba(&["checkpoint", "--file-locks", "--image-path", &img, &id]),
        "checkpoint --file-locks",
    );
    assert!(!locked(&lock), "the lock is still held after checkpoint");
    restore_with(&w, &bundle, &id, &img, &["--file-locks"]);
    assert!(locked(&lock), "the restored process does not hold the lock");
    ok(&w.estiba(&["delete", "-f", &id]), "delete");
}

/// A process writing to a unix datagram socket bound outside the container:
/// criu refuses the external peer without --ext-unix-sk; with it the
/// socket is dumped and connected to the host's socket again on restore.
/// The container shares the host's network namespace: criu finds a unix
/// socket's peer only in the namespace it dumps ("without peer"
/// otherwise, flag or not).
#[test]
fn an_external_unix_socket_is_dumped_with_ext_unix_sk_and_connected_again() {
    if !criu_works("an_external_unix_socket_is_dumped_with_ext_unix_sk_and_connected_again") {
        return;
    }
    let mut w = World::new("criu-extsk");
    w.without_namespace("network");
    with_data(&mut w);
    // The socket's name is the path it was bound at: the directory is
    // mounted at the same path inside, so the name means the same there.
    let dir = w.dir.join("sk");
    std::fs::create_dir_all(&dir).unwrap();
    let inside = w.rootfs().join(dir.strip_prefix("/").unwrap());
    std::fs::create_dir_all(&inside).unwrap();
    w.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": dir, "type": "bind", "source": dir, "options": ["rbind"]}));
    let path = dir.join("sock");
    let host = UnixDatagram::bind(&path).expect("bind the host's socket");
    host.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let heard = |host: &UnixDatagram| {
        let mut buf = [0u8; 64];
        let n = host.recv(&mut buf).expect("a number on the host's socket");
        String::from_utf8_lossy(&buf[..n])
            .trim()
            .parse::<u64>()
            .unwrap_or(0)
    };
    w.install_probe();
    let script = "i=0; while :; do echo $i >&3; echo $i; i=$((i+1)); sleep 0.05; done";
    let sock = path.to_string_lossy().into_owned();
    w.args(&["probe", "with-dgram", &sock, "sh", "-c", script]);
    let data = w.dir.join("data");
    let Counting {
        id,
        bundle,
        rx: _rx,
        ..
    } = detached(&mut w, data);
    heard(&host);
    let img = w.dir.join("img").to_string_lossy().into_owned();
    let dump = ["checkpoint", "--image-path", &img, &id];
    refused(&w, &id, &dump, "external");
    ok(
        &w.estiba(&["checkpoint", "--ext-unix-sk", "--image-path", &img, &id]),
        "checkpoint --ext-unix-sk",
    );
    // What was sent before the dump, then nothing.
    host.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut last = 0;
    let mut buf = [0u8; 64];
    while let Ok(n) = host.recv(&mut buf) {
        last = String::from_utf8_lossy(&buf[..n])
            .trim()
            .parse()
            .unwrap_or(last);
    }
    host.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    restore_with(&w, &bundle, &id, &img, &["--ext-unix-sk"]);
    let after = heard(&host);
    assert!(
        after > last && after <= last + 5,
        "after restore the socket got {after}, last before {last}"
    );
    ok(&w.estiba(&["delete", "-f", &id]), "delete");
}

/// Two processes in the container's own network namespace talking over an
/// established TCP connection: criu refuses it without --tcp-established;
/// with it the connection is dumped and goes on carrying the count after
/// restore.
#[test]
fn an_established_tcp_connection_goes_on_after_restore() {
    if !criu_works("an_established_tcp_connection_goes_on_after_restore") {
        return;
    }
    let mut w = World::new("criu-tcp");
    let data = with_data(&mut w);
    for set in ["bounding", "effective", "permitted"] {
        w.config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_NET_ADMIN"));
    }
    // The server writes what it gets to /data/got; the client sends a
    // number every 50 ms.
    // (The server's stdin never ends: busybox's nc stops at its EOF.)
    w.script(&format!(
        "busybox ip link set lo up; sleep 100000 | busybox nc -l -p 5000 > /data/got & sleep 0.5; \
         {COUNT} | busybox nc 127.0.0.1 5000"
    ));
    let got = data.join("got");
    let received = || {
        std::fs::read_to_string(&got)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse::<u64>().ok())
            .next_back()
            .unwrap_or(0)
    };
    let Counting {
        id,
        bundle,
        rx: _rx,
        ..
    } = detached(&mut w, data.clone());
    let end = Instant::now() + Duration::from_secs(10);
    while received() < 3 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(received() >= 3, "nothing went over the connection");
    let img = w.dir.join("img").to_string_lossy().into_owned();
    let dump = ["checkpoint", "--image-path", &img, &id];
    refused(&w, &id, &dump, "tcp");
    ok(
        &w.estiba(&["checkpoint", "--tcp-established", "--image-path", &img, &id]),
        "checkpoint --tcp-established",
    );
    let before = received();
    let o = w.estiba(&[
        "restore",
        "-d",
        "--tcp-established",
        "--image-path",
        &img,
        "--bundle",
        &bundle,
        &id,
    ]);
    ok(&o, "restore --tcp-established");
    let end = Instant::now() + Duration::from_secs(10);
    while received() <= before + 3 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        received() > before + 3,
        "the connection carries nothing after restore: {} then {}",
        before,
        received()
    );
    ok(&w.estiba(&["delete", "-f", &id]), "delete");
}

/// `--empty-ns network`: the container's network namespace is not dumped,
/// and the restored container gets a new, empty one (its loopback down,
/// the address it had gone); without the flag the address comes back.
#[test]
fn empty_ns_network_restores_a_new_empty_network_namespace() {
    if !criu_works("empty_ns_network_restores_a_new_empty_network_namespace") {
        return;
    }
    let mut w = World::new("criu-emptyns");
    for set in ["bounding", "effective", "permitted"] {
        w.config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_NET_ADMIN"));
    }
    let data = with_data(&mut w);
    w.script(&format!(
        "busybox ip link set lo up; busybox ip addr add 10.7.7.7/32 dev lo; {COUNT}"
    ));
    let Counting { id, bundle, rx, .. } = detached(&mut w, data);
    latest(&rx, Duration::from_secs(1)).expect("counting");
    let addresses = |w: &World, id: &str| {
        let o = w.estiba(&["exec", id, "busybox", "ip", "addr", "show", "lo"]);
        ok(&o, "exec ip addr");
        text(&o.stdout)
    };
    assert!(addresses(&w, &id).contains("10.7.7.7"));
    for (flags, kept) in [(&[][..], true), (&["--empty-ns", "network"][..], false)] {
        let img = w.dir.join(format!("img-{kept}"));
        let img = img.to_string_lossy().into_owned();
        let mut dump = vec!["checkpoint", "--image-path", &img];
        dump.extend(flags);
        dump.push(&id);
        ok(&w.estiba(&dump), "checkpoint");
        restore_with(&w, &bundle, &id, &img, flags);
        let seen = addresses(&w, &id);
        assert_eq!(seen.contains("10.7.7.7"), kept, "{flags:?}: {seen}");
    }
    ok(&w.estiba(&["delete", "-f", &id]), "delete");
}
