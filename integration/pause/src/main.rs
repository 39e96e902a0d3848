//! A pod's sandbox process: as pid 1 of the pod it waits for signals,
//! reaps whatever orphans it inherits (SIGCHLD), and exits 0 on SIGINT or
//! SIGTERM (a pid 1 ignores signals it has no handler for, so they are
//! taken with sigwait).

fn main() {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset before
    // use; the calls take pointers to it only for their duration.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGINT, libc::SIGTERM, libc::SIGCHLD] {
            libc::sigaddset(&mut set, s);
        }
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        loop {
            let mut sig = 0;
            if libc::sigwait(&set, &mut sig) != 0 {
                continue;
            }
            if sig == libc::SIGCHLD {
                while libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) > 0 {}
            } else {
                libc::_exit(0);
            }
        }
    }
}
