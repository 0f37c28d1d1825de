//! Raw bytes through the server's whole request path: the real worker
//! (`ferricorn_server::serve`) on a loopback listener in this process,
//! written to as a client would, then half-closed.
//!
//! That is our code around hyper, not hyper alone: the head capture that
//! keeps header order and spots bare LF and double framing, the request
//! line and field limits, target checks, the proxy rules for forwarding
//! headers (the fuzzer is a trusted peer, 127.0.0.1), the body limit while
//! streaming, the protocol-error-to-status match, the access log, and the
//! app-interface views of the request (`environ`, `HeaderOrder`,
//! `ConnectionInfo`).
//!
//! Input: a first byte picks the server (bit 0: default limits, or tight
//! ones so the limit paths are reachable with short inputs; the tight
//! server also reads PROXY protocol headers, `--proxy-protocol auto`); the
//! rest is sent as is.
//!
//! Oracle: no panic anywhere in the process (libFuzzer aborts on one, even
//! in a server task); no answer is a 5xx (a client's bytes are never the
//! server's fault; the application here never fails); the connection ends
//! once the client has sent everything and half-closed.
#![no_main]

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ferricorn_app_interface::response::text;
use ferricorn_app_interface::{environ, from_fn, ConnectionInfo, HeaderOrder, Request};
use ferricorn_server::config::values::parse_log_target;
use ferricorn_server::config::{BindAddr, LogLevel, ProxyProtocol};
use ferricorn_server::{logging, serve, Config, Listener, WorkerContext};
use http::StatusCode;
use libfuzzer_sys::fuzz_target;

/// Looks at the request the way applications do, reads the body, and
/// answers 200 with a body that cannot be mistaken for a status line.
async fn app(request: Request) -> ferricorn_app_interface::Response {
    let env = environ(&request);
    let fields = HeaderOrder::of(&request).len();
    let peer = ConnectionInfo::of(&request).map(|c| format!("{c:?}").len());
    match request.into_body().collect_limited(u64::MAX).await {
        Ok(body) => text(
            StatusCode::OK,
            format!("ok {} {fields} {peer:?} {}", env.len(), body.len()),
        ),
        Err(e) if e.is_too_large() => text(StatusCode::PAYLOAD_TOO_LARGE, "too large"),
        Err(_) => text(StatusCode::BAD_REQUEST, "bad body"),
    }
}

fn config(tight: bool) -> Config {
    let mut c = Config::default();
    c.bind = vec![BindAddr::Tcp(SocketAddr::from(([127, 0, 0, 1], 0)))];
    c.access_logfile = Some(parse_log_target("/dev/null").unwrap());
    c.error_logfile = parse_log_target("/dev/null").unwrap();
    c.log_level = LogLevel::Debug;
    c.keep_alive = Some(Duration::from_secs(5));
    if tight {
        c.limit_request_line = 64;
        c.limit_request_fields = 8;
        c.limit_request_field_size = 96;
        c.limit_request_body = Some(32);
        c.proxy_protocol = ProxyProtocol::Auto;
    }
    c
}

/// Starts a worker serving on a fresh port, in a thread of its own for the
/// rest of the process; returns its address.
fn start(tight: bool) -> SocketAddr {
    let config = config(tight);
    logging::init(&config).expect("logs to /dev/null");
    let listener = Listener::bind(&config.bind[0], 128).expect("bind 127.0.0.1:0");
    let addr = match listener.local_addr().expect("bound") {
        ferricorn_app_interface::ServerAddr::Tcp(a) => a,
        other => panic!("not TCP: {other}"),
    };
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        rt.block_on(serve(
            Arc::new(from_fn(app)),
            vec![listener],
            Arc::new(config),
            WorkerContext::new(1),
            std::future::pending(),
        ))
        .expect("the worker serves");
    });
    addr
}

fn server(tight: bool) -> SocketAddr {
    static DEFAULT: OnceLock<SocketAddr> = OnceLock::new();
    static TIGHT: OnceLock<SocketAddr> = OnceLock::new();
    if tight {
        *TIGHT.get_or_init(|| start(true))
    } else {
        *DEFAULT.get_or_init(|| start(false))
    }
}

/// The status codes of every response in `out`: each `HTTP/1.x NNN `.
/// Neither the application's bodies nor the server's headers can contain
/// one, so pipelined answers are found wherever they start.
fn statuses(out: &[u8]) -> Vec<u16> {
    out.windows(13)
        .filter(|w| w.starts_with(b"HTTP/1.") && w[12] == b' ')
        .filter_map(|w| std::str::from_utf8(&w[9..12]).ok()?.parse().ok())
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, bytes)) = data.split_first() else {
        return;
    };
    let addr = server(mode & 1 == 1);
    let mut s = TcpStream::connect(addr).expect("connect to the fuzzed worker");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The server may answer and close before reading everything.
    let _ = s.write_all(bytes);
    let _ = s.shutdown(Shutdown::Write);
    let mut out = Vec::new();
    if let Err(e) = s.read_to_end(&mut out) {
        // A reset after a refusal is fine; a connection left open after
        // the client said everything is not.
        assert!(
            e.kind() != std::io::ErrorKind::WouldBlock && e.kind() != std::io::ErrorKind::TimedOut,
            "no end of connection after the client half-closed"
        );
    }
    for code in statuses(&out) {
        assert!(
            code < 500,
            "answered {code}:\n{}",
            String::from_utf8_lossy(&out)
        );
    }
});
