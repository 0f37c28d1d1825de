//! The process model the bench subjects share with ferricorn's defaults: a
//! master binds one listening socket and starts N copies of itself that
//! inherit it (fd 3) and serve it; SIGTERM/SIGINT to the process group ends
//! all. No supervision: the point is to measure the serving alone.

use std::net::TcpListener;
use std::os::fd::{AsRawFd, FromRawFd};
use std::process::Command;

const INHERITED_FD: i32 = 3;

/// The value after flag `name` on the command line.
pub fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// In a worker (`worker_env` set), the inherited listener; in the master,
/// binds `--bind`, starts `--workers` workers, prints the `Listening at:`
/// line the bench waits for, waits for them and exits.
pub fn listener_or_master(worker_env: &str) -> TcpListener {
    if std::env::var_os(worker_env).is_some() {
        // SAFETY: the master put a listening TCP socket on fd 3 for us and
        // nothing else in this process owns it.
        let listener = unsafe { TcpListener::from_raw_fd(INHERITED_FD) };
        listener.set_nonblocking(true).expect("nonblocking");
        return listener;
    }
    let bind = arg("--bind").unwrap_or_else(|| "127.0.0.1:8000".into());
    let workers: usize = arg("--workers").and_then(|w| w.parse().ok()).unwrap_or(2);
    let listener = TcpListener::bind(&bind).expect("bind");
    let fd = listener.as_raw_fd();
    let exe = std::env::current_exe().expect("current_exe");
    let mut children = Vec::new();
    for _ in 0..workers {
        let mut cmd = Command::new(&exe);
        cmd.args(std::env::args().skip(1)).env(worker_env, "1");
        use std::os::unix::process::CommandExt;
        // SAFETY: only async-signal-safe calls (dup2, fcntl) between fork
        // and exec. dup2 onto itself is a no-op that would keep CLOEXEC, so
        // when the socket already is fd 3 the flag is cleared instead.
        unsafe {
            cmd.pre_exec(move || {
                let rc = if fd == INHERITED_FD {
                    libc::fcntl(fd, libc::F_SETFD, 0)
                } else {
                    libc::dup2(fd, INHERITED_FD)
                };
                if rc < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        children.push(cmd.spawn().expect("spawn worker"));
    }
    eprintln!(
        "Listening at: http://{} ({})",
        listener.local_addr().unwrap(),
        std::process::id()
    );
    for mut c in children {
        let _ = c.wait();
    }
    std::process::exit(0);
}
