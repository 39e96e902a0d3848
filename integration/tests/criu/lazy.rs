//! Memory sent to a page server. Lazy migration, as runc's `checkpoint --lazy-pages` test drives it:
//! the dump serves the memory from a page server and says so on
//! `--status-fd`; criu's lazy-pages daemon fetches from it for a
//! `restore --lazy-pages` of a second container, and the dump finishes
//! once every page has moved.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::Child;

use super::*;

/// A child killed and reaped on drop, pass or fail.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Reaped {
    /// Its exit within `bound`, or None.
    fn exit(&mut self, bound: Duration) -> Option<std::process::ExitStatus> {
        let end = Instant::now() + bound;
        while Instant::now() < end {
            if let Ok(Some(st)) = self.0.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

/// One byte from `fd` within `bound`.
fn one_byte(fd: OwnedFd, bound: Duration) -> Option<u8> {
    use std::os::fd::AsFd;
    let mut p = [nix::poll::PollFd::new(
        fd.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    let ms = nix::poll::PollTimeout::try_from(bound).ok()?;
    if !matches!(nix::poll::poll(&mut p, ms), Ok(n) if n > 0) {
        return None;
    }
    let mut b = [0u8; 1];
    match std::fs::File::from(fd).read(&mut b) {
        Ok(1) => Some(b[0]),
        _ => None,
    }
}

#[test]
fn lazy_pages_move_through_a_page_server() {
    if !criu_works("lazy_pages_move_through_a_page_server") {
        return;
    }
    let uffd = Command::new("criu")
        .args(["check", "--feature", "uffd-noncoop"])
        .output()
        .expect("criu check");
    if !uffd.status.success() {
        skip!(
            "lazy_pages_move_through_a_page_server: criu finds no userfaultfd here: {}",
            text(&uffd.stderr).trim()
        );
        return;
    }
    let mut w = World::new("criu-lazy");
    let Counting {
        data,
        id,
        bundle,
        rx: _rx,
        before,
    } = counting(&mut w);
    let before = before.unwrap_or(0);
    let img = w.dir.join("img").to_string_lossy().into_owned();
    let work = w.dir.join("work").to_string_lossy().into_owned();
    // The status pipe's write end is inherited by the checkpoint (no
    // CLOEXEC), ours closed once it runs.
    let (ready, status) = nix::unistd::pipe().expect("pipe");
    let port = (27000 + std::process::id() % 1000).to_string();
    let server = format!("127.0.0.1:{port}");
    let fd = status.as_raw_fd().to_string();
    let mut dump = Reaped(
        Command::new(&w.bin)
            .arg("--root")
            .arg(&w.root)
            .args(["checkpoint", "--lazy-pages", "--page-server", &server])
            .args(["--status-fd", &fd, "--manage-cgroups-mode", "ignore"])
            .args(["--work-path", &work, "--image-path", &img, &id])
            .stderr(std::fs::File::create(w.dir.join("dump.err")).unwrap())
            .spawn()
            .expect("spawn checkpoint"),
    );
    drop(status);
    let said = one_byte(ready, Duration::from_secs(60));
    let dump_err = w.dir.join("dump.err");
    let err = || std::fs::read_to_string(&dump_err).unwrap_or_default();
    assert_eq!(said, Some(0), "no \\0 on the status fd: {}", err());
    assert!(Path::new(&img).join("inventory.img").exists());
    let _daemon = Reaped(
        Command::new("criu")
            .args(["lazy-pages", "--page-server", "--address", "127.0.0.1"])
            .args(["--port", &port, "-D", &img])
            .spawn()
            .expect("spawn criu lazy-pages"),
    );
    // The restore connects to the daemon's socket at once: wait (bounded)
    // until the daemon has made it.
    assert!(
        wait_for_path(&Path::new(&img).join("lazy-pages.socket"), 30),
        "criu lazy-pages made no socket in 30 s"
    );
    let id2 = w.id("lazy");
    let first = restore_with(
        &w,
        &bundle,
        &id2,
        &img,
        &["--lazy-pages", "--manage-cgroups-mode", "ignore"],
    );
    assert!(
        first > before,
        "restored at {first}, counted {before} before"
    );
    let st = dump.exit(Duration::from_secs(60));
    assert!(
        st.is_some_and(|s| s.success()),
        "checkpoint: {st:?}: {}",
        err()
    );
    assert!(!w.estiba(&["state", &id]).status.success(), "still there");
    let a = count_in(&data);
    let end = Instant::now() + Duration::from_secs(5);
    while count_in(&data) <= a && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        count_in(&data) > a,
        "the restored container is not counting"
    );
    ok(&w.estiba(&["delete", "-f", &id2]), "delete");
}

/// `--page-server` alone: the memory goes to criu's page server (into its
/// own directory), the rest to the image path; the two together restore.
#[test]
fn a_dump_sends_its_memory_to_a_page_server() {
    if !criu_works("a_dump_sends_its_memory_to_a_page_server") {
        return;
    }
    let mut w = World::new("criu-ps");
    let Counting {
        data,
        id,
        bundle,
        rx: _rx,
        ..
    } = counting(&mut w);
    let pages = w.dir.join("pages");
    std::fs::create_dir_all(&pages).unwrap();
    let port = (28000 + std::process::id() % 1000).to_string();
    let mut server = Reaped(
        Command::new("criu")
            .args(["page-server", "--address", "127.0.0.1", "--port", &port])
            .arg("--images-dir")
            .arg(&pages)
            .spawn()
            .expect("spawn criu page-server"),
    );
    // Listening (seen in /proc/net/tcp: a connection to try it would be
    // the one client it serves), bounded.
    let listening = format!(":{:04X} 00000000:0000 0A", port.parse::<u16>().unwrap());
    let end = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string("/proc/net/tcp").is_ok_and(|t| t.contains(&listening))
        && Instant::now() < end
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let img = w.dir.join("img");
    let img_s = img.to_string_lossy().into_owned();
    let server_addr = format!("127.0.0.1:{port}");
    ok(
        &w.estiba(&[
            "checkpoint",
            "--page-server",
            &server_addr,
            "--image-path",
            &img_s,
            &id,
        ]),
        "checkpoint --page-server",
    );
    let st = server.exit(Duration::from_secs(30));
    assert!(st.is_some_and(|s| s.success()), "page server: {st:?}");
    // The server writes the memory (pagemap and pages images), the dump
    // the rest.
    let names = |d: &Path| -> Vec<String> {
        std::fs::read_dir(d)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("pages-") || n.starts_with("pagemap-"))
            .collect()
    };
    let sent = names(&pages);
    assert!(
        sent.iter().any(|n| n.starts_with("pages-")),
        "no pages at the page server: {sent:?}"
    );
    assert!(names(&img).is_empty(), "memory in the image path too");
    for n in &sent {
        std::fs::copy(pages.join(n), img.join(n)).unwrap();
    }
    restored_where_it_stopped(&w, &bundle, &id, &img_s, &data);
}
