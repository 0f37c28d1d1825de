//! The request/response translation: one keep-alive `GET /` round trip over
//! loopback through `ferricorn_server::serve` (hyper → app-interface
//! `Request` → application → `Response` → hyper), beside the same round trip
//! through bare hyper with a `service_fn`. The difference is what ferricorn
//! adds per request: connection facts, header order, limits, the Body
//! newtype, request ids.

use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use ferricorn_app_interface::{from_fn, Request};
use ferricorn_server::config::BindAddr;
use ferricorn_server::{Config, Listener, WorkerContext};
use http_body_util::Full;

async fn hello(_request: Request) -> &'static str {
    "Hello, World!\n"
}

/// Starts ferricorn's worker loop on a thread of its own; returns its address.
fn start_ferricorn() -> SocketAddr {
    let listener =
        Listener::bind(&BindAddr::Tcp("127.0.0.1:0".parse().unwrap()), 128).expect("bind");
    let addr = match listener.local_addr().expect("addr") {
        ferricorn_app_interface::ServerAddr::Tcp(a) => a,
        other => panic!("not TCP: {other:?}"),
    };
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let config = Arc::new(Config::default());
            let never = std::future::pending::<()>();
            let _ = ferricorn_server::serve(
                Arc::new(from_fn(hello)),
                vec![listener],
                config,
                WorkerContext::new(1),
                never,
            )
            .await;
        });
    });
    addr
}

/// Starts bare hyper on a thread of its own; returns its address.
fn start_hyper() -> SocketAddr {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let addr = std_listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(|_req| async {
                        Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(
                            b"Hello, World!\n",
                        ))))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
    });
    addr
}

/// One keep-alive client: sends `GET /`, reads one whole response.
struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        for _ in 0..200 {
            if let Ok(stream) = TcpStream::connect(addr) {
                stream.set_nodelay(true).unwrap();
                return Client { stream, buf: vec![0; 4096] };
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("cannot connect to {addr}");
    }

    fn round_trip(&mut self) {
        self.stream
            .write_all(b"GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: micro\r\nAccept: */*\r\n\r\n")
            .unwrap();
        let mut have = 0;
        loop {
            let n = self.stream.read(&mut self.buf[have..]).unwrap();
            assert!(n > 0, "server closed the connection");
            have += n;
            if let Some(end) = find(&self.buf[..have], b"\r\n\r\n") {
                let head = std::str::from_utf8(&self.buf[..end]).unwrap();
                assert!(head.starts_with("HTTP/1.1 200"), "{head}");
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length").then(|| v.trim().parse().ok())?
                    })
                    .expect("content-length");
                if have >= end + 4 + len {
                    return;
                }
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn bench_translation(c: &mut Criterion) {
    let mut g = c.benchmark_group("keep-alive GET / round trip");
    let mut hyper_client = Client::connect(start_hyper());
    g.bench_function("bare hyper", |b| b.iter(|| hyper_client.round_trip()));
    let mut ferricorn_client = Client::connect(start_ferricorn());
    g.bench_function("ferricorn serve", |b| b.iter(|| ferricorn_client.round_trip()));
    g.finish();
}

criterion_group!(benches, bench_translation);
criterion_main!(benches);
