//! An application that tells the client what the server saw; the black-box
//! tests drive it.
//!
//! Any method on any path reads the whole request body and answers 200 with
//! a JSON object: `method`, `path`, `query`, `headers` (a list of
//! `[name, value]` pairs in arrival order, repeats kept; see
//! [`HeaderOrder`]), `body_len` (bytes after de-chunking), `pid` (the
//! serving process), `peer`, `remote_port` and `scheme` (after the proxy
//! rules and a PROXY protocol header), `socket_peer` (the socket's own peer),
//! `worker_id`, `request_id` and `version`, and on a TLS connection
//! `tls_version`, `alpn` and `client_cert_subject` (mutual TLS). Some paths
//! do more first:
//!
//! - `/sleep?s=N`: waits N seconds (fractions allowed) without blocking
//!   anything;
//! - `/block?s=N`: blocks its thread N seconds, like a stuck synchronous
//!   application;
//! - `/panic`: panics (the server answers an empty 500);
//! - `/stream?n=N`: answers N chunks, streamed, instead of the JSON.
//!
//! ```text
//! cargo run --release --example echo -- --bind 127.0.0.1:8000
//! curl -d hello 'http://127.0.0.1:8000/any/path?x=1'
//! ```

use std::process::ExitCode;

use ferricorn_app_interface::response::{empty, json};
use ferricorn_app_interface::{from_fn, Request, Response};
use http::StatusCode;

#[path = "shared/echo_contract.rs"]
mod echo_contract;

async fn echo(request: Request) -> Response {
    echo_contract::act_on(request.uri()).await;
    let (parts, body) = request.into_parts();
    let body = match body.collect_limited(u64::MAX).await {
        Ok(body) => body,
        Err(e) if e.is_too_large() => return empty(StatusCode::PAYLOAD_TOO_LARGE),
        Err(_) => return empty(StatusCode::BAD_REQUEST),
    };
    if let Some(body) = echo_contract::streamed(&parts.uri) {
        let mut res = Response::new(body);
        res.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        return res;
    }
    json(
        StatusCode::OK,
        &echo_contract::describe(&parts, body.len() as u64),
    )
}

fn main() -> ExitCode {
    ferricorn_server::main(|| {
        // For the tests of the master's failure policy: an application that
        // cannot be built.
        if std::env::var_os("ECHO_FAIL_TO_BUILD").is_some() {
            return Err("ECHO_FAIL_TO_BUILD is set".into());
        }
        Ok(from_fn(echo))
    })
}
