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

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

#[path = "../prefork.rs"]
mod prefork;

async fn hello(_req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(
        b"Hello, World!\n",
    ))))
}

fn main() {
    let std_listener = prefork::listener_or_master("HYPER_HELLO_WORKER");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(std_listener).expect("listener");
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service_fn(hello))
                    .await;
            });
        }
    });
}
