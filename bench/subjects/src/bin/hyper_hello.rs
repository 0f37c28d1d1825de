//! The stack's limit: hyper 1 with no framework, N worker processes sharing
//! one listening socket, each on a single-threaded tokio runtime (as a
//! ferricorn worker with the default `--threads 1`).
//!
//! ```text
//! hyper-hello --bind 127.0.0.1:8000 --workers 2
//! ```
//!
//! The master binds, then starts N copies of itself that inherit the socket
//! (fd 3) and waits for them; SIGTERM/SIGINT to the process group ends all.

use std::convert::Infallible;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, FromRawFd};
use std::process::Command;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

const INHERITED_FD: i32 = 3;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

async fn hello(_req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(b"Hello, World!\n"))))
}

fn worker() {
    // SAFETY: the master put a listening TCP socket on fd 3 for us and
    // nothing else in this process owns it.
    let std_listener = unsafe { TcpListener::from_raw_fd(INHERITED_FD) };
    std_listener.set_nonblocking(true).expect("nonblocking");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(std_listener).expect("listener");
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service_fn(hello))
                    .await;
            });
        }
    });
}

fn main() {
    if std::env::var_os("HYPER_HELLO_WORKER").is_some() {
        return worker();
    }
    let bind = arg("--bind").unwrap_or_else(|| "127.0.0.1:8000".into());
    let workers: usize = arg("--workers").and_then(|w| w.parse().ok()).unwrap_or(2);
    let listener = TcpListener::bind(&bind).expect("bind");
    let fd = listener.as_raw_fd();
    let exe = std::env::current_exe().expect("current_exe");
    let mut children = Vec::new();
    for _ in 0..workers {
        let mut cmd = Command::new(&exe);
        cmd.env("HYPER_HELLO_WORKER", "1");
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
    eprintln!("Listening at: http://{} ({})", listener.local_addr().unwrap(), std::process::id());
    for mut c in children {
        let _ = c.wait();
    }
}
